"""Rig maps: the semantic expression channels (ARKit names) → a target rig's controls.

Three kinds of target (docs/architecture.md, "Where things go"):

* a rig whose shape keys carry ARKit names (the default avatar, Faceit, ICT, Ready Player Me):
  matched by name (:func:`rigmap_for_shape_keys`, :func:`rigmap_for_avatar`);
* any linear basis on the FLAME topology (the MPI Blender add-on's ``Exp1..Exp100`` keys, a
  FLAME model's expression ``shapedirs``): least squares over the face region
  (:func:`rigmap_by_least_squares`);
* a real FLAME model: 100 expression coefficients plus the jaw rotation, fitted through LBS,
  and the eye rotations, cached per model file (:func:`rigmap_for_flame`).

Every map is linear, ``targets = weights @ matrix``, so it applies to a whole clip at once.
Only the FLAME fit needs torch, and imports it itself: a Blender without torch builds and
applies the other maps.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..channels import ARKIT_CHANNELS, canonical_channel
from ..errors import ModelFileError, RigError

log = logging.getLogger(__name__)

CACHE_VERSION = 3
"""Bump when the fit in :func:`rigmap_for_flame` changes, so stale cached maps are not reused."""
FLAME_TARGETS = tuple(f"expression_{i:03d}" for i in range(100)) + tuple(
    f"{pose}_{i}" for pose in ("jaw_pose", "leye_pose", "reye_pose") for i in range(3))
"""A FLAME model's controls: 100 expression coefficients, then jaw, left-eye and right-eye axis-angle."""
_EYES = (("eyeball_L", 3), ("eyeball_R", 4))  # avatar mask, FLAME joint (leye_pose, reye_pose order)
JAW_CHANNELS = ("jawOpen", "jawLeft", "jawRight", "jawForward")
"""The channels whose FLAME fit may turn the jaw (ARKit's jaw-bone channels)."""
STILL_METRES = 1e-7
"""A channel whose largest displacement on a region is below this does not move it (float32 noise)."""
JAW_REFIT_RADIANS = 1e-3
"""Channels whose linear fit turns the jaw by more than this are refitted through LBS."""
_SIDES = ("left", "right", "_l", "_r", ".l", ".r")  # lower-case side suffixes, as canonical_channel reads them


@dataclass(frozen=True)
class RigMap:
    """A linear map from semantic channel weights to a rig's controls.

    Attributes:
        channels: (K,) source channels (:data:`core.channels.ARKIT_CHANNELS`).
        targets: (M,) the rig's controls: shape-key names, or ``expression_000``..
            ``expression_099`` and ``jaw_pose_0..2`` (axis-angle, radians) for a FLAME model.
        matrix: (K, M) float32; ``targets = weights @ matrix``.
        residual: per mapped channel, the relative fit residual ||fit - target|| / ||target||
            on the face region (0.0 for a map by name, which is exact).
        unmatched: channels with no target on this rig (their rows of ``matrix`` are zero).
    """

    channels: tuple[str, ...]
    targets: tuple[str, ...]
    matrix: np.ndarray
    residual: dict[str, float]
    unmatched: tuple[str, ...]

    def apply(self, weights: np.ndarray, channels: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Map channel weights to target values.

        Args:
            weights: (T, K) or (K,) channel weights (``AnimationClip.weights``).
            channels: the names of ``weights``' columns if they are not :attr:`channels` in
                order (``AnimationClip.channels``); channels this map does not know raise.

        Returns:
            (T, M) or (M,) float32 target values, columns in :attr:`targets` order.

        Raises:
            RigError: a column count or channel name that does not fit this map.
        """
        weights = np.asarray(weights, dtype=np.float32)
        if channels is None:
            matrix = self.matrix
        else:
            index = {name: i for i, name in enumerate(self.channels)}
            unknown = [name for name in channels if name not in index]
            if unknown:
                raise RigError(f"channels {unknown} are not in this rig map; use ARKit channel names "
                               f"(core.channels.ARKIT_CHANNELS)")
            matrix = self.matrix[[index[name] for name in channels]]
        if weights.shape[-1] != matrix.shape[0]:
            raise RigError(f"weights have {weights.shape[-1]} columns, the rig map expects {matrix.shape[0]} "
                           f"channels; pass channels= with the names of the columns")
        return weights @ matrix

    def save(self, path: str | Path) -> None:
        """Write the map as ``.npz`` (no pickle)."""
        np.savez(
            path,
            channels=np.array(self.channels), targets=np.array(self.targets), matrix=self.matrix,
            residual_channels=np.array(list(self.residual), dtype=str),
            residual=np.array(list(self.residual.values()), dtype=np.float64),
            unmatched=np.array(self.unmatched, dtype=str),
        )

    @classmethod
    def load(cls, path: str | Path) -> "RigMap":
        """Read a map written by :meth:`save`.

        Raises:
            ModelFileError: not a rig-map file.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(
                    channels=tuple(data["channels"].tolist()), targets=tuple(data["targets"].tolist()),
                    matrix=data["matrix"].astype(np.float32),
                    residual=dict(zip(data["residual_channels"].tolist(), data["residual"].tolist())),
                    unmatched=tuple(data["unmatched"].tolist()),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ModelFileError(f"{path}: not a rig-map file ({exc}); delete it to rebuild it") from exc


def _channel_of(name: str) -> tuple[str | None, bool]:
    """(channel, is_half) for a shape-key name: ``browInnerUp_L`` is half of ``browInnerUp``."""
    channel = canonical_channel(name)
    if channel is not None:
        return channel, False
    low = name.strip().lower()
    for suffix in _SIDES:
        if low.endswith(suffix):
            whole = canonical_channel(name.strip()[: -len(suffix)].rstrip("_."))
            # Only a channel without sides of its own is split across two keys.
            if whole is not None and canonical_channel(whole + "_L") is None:
                return whole, True
    return None, False


def rigmap_for_shape_keys(names, channels: tuple[str, ...] = ARKIT_CHANNELS) -> RigMap:
    """Map channels to a rig's shape keys by ARKit name.

    ``mouthSmile_L``, ``mouthSmileLeft`` and ``MouthSmile.L`` all match ``mouthSmile_L``
    (:func:`core.channels.canonical_channel`). A channel without sides that the rig splits in
    two (``browInnerUp`` → ``browInnerUp_L`` and ``browInnerUp_R``; ``cheekPuff``) drives both
    halves at full weight, unless the rig also has the whole key. Keys that match no channel
    (``Basis``, ``cheekRaiser_L``) are left out of :attr:`RigMap.targets`, so they keep their
    values.

    Args:
        names: the rig's shape-key names, in any order.
        channels: source channels, default all 52 ARKit channels.

    Returns:
        A :class:`RigMap` with 0/1 entries and residual 0.0 for every matched channel.
    """
    whole: dict[str, list[str]] = {}
    halves: dict[str, list[str]] = {}
    for name in names:
        channel, is_half = _channel_of(name)
        if channel is not None:
            (halves if is_half else whole).setdefault(channel, []).append(name)
    driven = {c: whole.get(c) or halves.get(c, []) for c in channels}
    targets = tuple(name for name in names if any(name in keys for keys in driven.values()))
    column = {name: j for j, name in enumerate(targets)}
    matrix = np.zeros((len(channels), len(targets)), dtype=np.float32)
    for k, channel in enumerate(channels):
        for name in driven[channel]:
            matrix[k, column[name]] = 1.0
    return RigMap(
        channels=tuple(channels), targets=targets, matrix=matrix,
        residual={c: 0.0 for c in channels if driven[c]},
        unmatched=tuple(c for c in channels if not driven[c]),
    )


def rigmap_for_avatar(avatar, channels: tuple[str, ...] = ARKIT_CHANNELS) -> RigMap:
    """Map channels to the default avatar's shape keys (:attr:`Avatar.blendshape_names`), by name.

    ``tongueOut`` stays unmatched unless the avatar has it. See :func:`rigmap_for_shape_keys`.
    """
    return rigmap_for_shape_keys(avatar.blendshape_names, channels)


def channel_deltas(avatar, channels: tuple[str, ...] = ARKIT_CHANNELS) -> np.ndarray:
    """(K, V, 3) float64 displacement of each channel at weight 1 on the avatar, metres.

    A channel the avatar splits in two (``browInnerUp``) is the sum of its halves; an
    unmatched channel is zero.
    """
    by_name = rigmap_for_avatar(avatar, channels)
    index = {name: s for s, name in enumerate(avatar.blendshape_names)}
    deltas = np.asarray(avatar.blendshape_deltas, dtype=np.float64)[[index[t] for t in by_name.targets]]
    return np.einsum("km,mvc->kvc", by_name.matrix.astype(np.float64), deltas)


def rigmap_by_least_squares(
    avatar,
    basis_deltas: np.ndarray,
    target_names,
    region: str = "face",
    channels: tuple[str, ...] = ARKIT_CHANNELS,
    limited: dict[str, tuple[str, ...]] | None = None,
) -> RigMap:
    """Map channels onto any linear basis on the FLAME topology by least squares.

    For each channel k, the coefficients x_k minimise ||sum_m x_km B_m - D_k||^2 over the
    vertices of ``avatar.masks[region]``, where D_k is the channel's displacement on the avatar
    (:func:`channel_deltas`) and B_m the basis. Works for a FLAME model's expression
    ``shapedirs`` (transposed to (M, V, 3)) and for the MPI Blender add-on's ``Exp1..Exp100``
    shape keys (their deltas from the basis key), or a basis with extra columns (a jaw
    rotation's linearisation, as :func:`rigmap_for_flame` does).

    Args:
        avatar: the :class:`Avatar` whose channels are mapped (``blendshape_names``,
            ``blendshape_deltas`` (S, V, 3), ``masks``).
        basis_deltas: (M, V, 3) displacement of each target control at value 1, metres.
        target_names: (M,) names of the target controls.
        region: the avatar mask the fit runs over (default the face).
        channels: source channels.
        limited: target name -> the only channels that may use it, e.g. a jaw target for
            :data:`JAW_CHANNELS`, so that a smile never turns the jaw.

    Returns:
        A :class:`RigMap` whose ``residual`` is ||fit - D_k|| / ||D_k|| over the region; a
        channel that does not move the region is unmatched.

    Raises:
        RigError: the basis is not on the avatar's topology, names and basis disagree in
            length, or the avatar has no such mask.
    """
    basis = np.asarray(basis_deltas, dtype=np.float64)
    target_names = tuple(target_names)
    num_vertices = np.asarray(avatar.blendshape_deltas).shape[1]
    if basis.ndim != 3 or basis.shape[1:] != (num_vertices, 3) or basis.shape[0] != len(target_names):
        raise RigError(
            f"basis has shape {basis.shape} for {len(target_names)} targets; expected "
            f"({len(target_names)}, {num_vertices}, 3) on the FLAME topology"
        )
    if region not in avatar.masks:
        raise RigError(f"the avatar has no '{region}' mask; choose one of {sorted(avatar.masks)}")
    mask = np.asarray(avatar.masks[region], dtype=bool)
    limited = limited or {}
    A = basis[:, mask].reshape(len(target_names), -1).T  # (N * 3, M)
    D = channel_deltas(avatar, channels)[:, mask].reshape(len(channels), -1).T  # (N * 3, K)
    X = np.zeros((len(target_names), len(channels)))  # (M, K)
    # Channels that may use the same targets are solved together (at most two groups).
    allowed = np.array([[c in limited.get(t, (c,)) for t in target_names] for c in channels])  # (K, M)
    for columns in np.unique(allowed, axis=0):
        rows = np.flatnonzero((allowed == columns).all(axis=1))
        X[np.ix_(columns, rows)] = np.linalg.lstsq(A[:, columns], D[:, rows], rcond=None)[0]
    norms = np.linalg.norm(D, axis=0)
    moving = np.abs(D).max(axis=0) > STILL_METRES
    X[:, ~moving] = 0.0
    errors = np.linalg.norm(A @ X - D, axis=0)
    return RigMap(
        channels=tuple(channels), targets=target_names, matrix=X.T.astype(np.float32),
        residual={c: float(errors[k] / norms[k]) for k, c in enumerate(channels) if moving[k]},
        unmatched=tuple(c for k, c in enumerate(channels) if not moving[k]),
    )


def _jaw_columns(flame, params: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(C, N, 3, 3) d vertices[mask] / d jaw_pose at ``params`` (C, E + 3), by central differences."""
    import torch

    num_expression = flame.num_expression
    columns = []
    for i in range(3):
        step = torch.zeros_like(params)
        step[:, num_expression + i] = 1e-6
        ahead, behind = params + step, params - step
        columns.append((flame(expression=ahead[:, :num_expression], jaw_pose=ahead[:, num_expression:]).vertices
                        - flame(expression=behind[:, :num_expression], jaw_pose=behind[:, num_expression:]).vertices
                        )[:, mask] / 2e-6)
    return torch.stack(columns, dim=-1)


def _refine_through_lbs(flame, avatar, linear: RigMap, region: str, steps: int) -> RigMap:
    """Refit the linear map's coefficients through the full FLAME forward (rotations are not linear).

    Each channel k that turns the jaw (more than :data:`JAW_REFIT_RADIANS`) is refitted on its
    own: (expression_k, jaw_k) minimise ||FLAME(expression_k, jaw_k) - (template + D_k)||^2
    over the region, from the linear solution, by Gauss-Newton. The Jacobian's expression columns are the basis turned by each
    vertex's blended skinning rotation (exact but for the joints' slight dependence on the
    expression); its jaw columns are central differences. The map stays linear in the weights:
    at weight w a channel gives w * (expression_k, jaw_k), for the jaw a rotation by w times the
    fitted angle.
    """
    import torch

    # Without a jaw rotation FLAME is linear in the expression: the linear fit is already exact
    # (its error grows as the square of the angle, under 1e-6 relative at 1 mrad).
    # The linear map's last three columns are the jaw's.
    moving = [k for k, c in enumerate(linear.channels)
              if c in linear.residual and np.abs(linear.matrix[k, -3:]).max() > JAW_REFIT_RADIANS]
    if not moving:
        return linear
    dtype = flame.v_template.dtype
    mask = torch.as_tensor(np.asarray(avatar.masks[region], dtype=bool))
    num_expression = flame.num_expression
    deltas = torch.as_tensor(channel_deltas(avatar, linear.channels)[moving], dtype=dtype)[:, mask]
    goal = flame.v_template[mask] + deltas  # (K', N, 3)
    params = torch.tensor(linear.matrix[moving], dtype=dtype)  # (K', E + 3)
    basis = flame.expression_dirs[mask]  # (N, 3, E)
    weights = flame.lbs_weights[mask]  # (N, J)

    def fitted(p):
        return flame(expression=p[:, :num_expression], jaw_pose=p[:, num_expression:]).vertices[:, mask]

    def gauss_newton(p, target):
        residual = fitted(p) - target  # (C, N, 3)
        for _ in range(steps):
            rotations = _blended_rotations(flame, p, weights)  # (C, N, 3, 3)
            expression_columns = torch.einsum("cnij,njm->cnim", rotations, basis)  # (C, N, 3, E)
            jacobian = torch.cat([expression_columns, _jaw_columns(flame, p, mask)], dim=-1)
            jacobian = jacobian.reshape(p.shape[0], -1, p.shape[1])  # (C, N * 3, E + 3)
            # Normal equations: (E + 3)^2 systems instead of a QR of the tall Jacobian (10x faster).
            normal = jacobian.transpose(1, 2) @ jacobian  # (C, E + 3, E + 3)
            update = -torch.linalg.solve(normal, jacobian.transpose(1, 2) @ residual.reshape(p.shape[0], -1, 1))[..., 0]
            trial = p + update
            trial_residual = fitted(trial) - target
            # A channel keeps a step only if it lowers its error (plain Gauss-Newton can overshoot).
            better = trial_residual.flatten(1).norm(dim=1) < residual.flatten(1).norm(dim=1)  # (C,)
            if not better.any():
                break
            p = torch.where(better[:, None], trial, p)
            residual = torch.where(better[:, None, None], trial_residual, residual)
            if update[better].abs().max() < 1e-7:
                break
        return p

    with torch.no_grad():
        # Chunks of channels keep the Jacobians (C, N * 3, E + 3) to tens of MB.
        params = torch.cat([gauss_newton(params[i:i + 8], goal[i:i + 8]) for i in range(0, len(moving), 8)])
        errors = (fitted(params) - goal).flatten(1).norm(dim=1) / deltas.flatten(1).norm(dim=1)
    matrix = linear.matrix.copy()
    matrix[moving] = params.numpy().astype(np.float32)
    residual = dict(linear.residual)
    residual.update({linear.channels[k]: float(e) for k, e in zip(moving, errors)})
    return RigMap(linear.channels, linear.targets, matrix, residual, linear.unmatched)


def _blended_rotations(flame, params: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(K, N, 3, 3) linear part of each vertex's skinning transform, for expression + jaw ``params``."""
    import torch

    from .lbs import batch_rigid_transform, batch_rodrigues, blend_shapes, vertices2joints

    num_expression = flame.num_expression
    batch = params.shape[0]
    pose = torch.zeros(batch, 5, 3, dtype=params.dtype)
    pose[:, 2] = params[:, num_expression:]
    rot_mats = batch_rodrigues(pose.reshape(-1, 3)).reshape(batch, 5, 3, 3)
    shaped = flame.v_template + blend_shapes(params[:, :num_expression], flame.expression_dirs)
    _, transforms = batch_rigid_transform(rot_mats, vertices2joints(flame.J_regressor, shaped), flame.parents)
    return torch.einsum("nj,kjab->knab", weights, transforms[:, :, :3, :3])


def _avatar_digest(avatar) -> str:
    digest = hashlib.sha256("\n".join(avatar.blendshape_names).encode())
    digest.update(np.ascontiguousarray(avatar.blendshape_deltas, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(avatar.masks["face"]).tobytes())
    return digest.hexdigest()


def eye_rotations(avatar, channels: tuple[str, ...] = ARKIT_CHANNELS) -> tuple[np.ndarray, dict[str, float]]:
    """Each channel's eyeball motion on the avatar as FLAME eye rotations.

    The eyeballs of a FLAME head turn rigidly about the eye joints, so each channel's eyeball
    displacement is fitted by the rotation about the avatar's eye joint that best maps the
    rest eyeball onto the displaced one (Kabsch, :func:`.geometry.fit_rotation`; numpy only, so
    it runs in Blender's own Python).

    Args:
        avatar: the :class:`Avatar` (``vertices``, ``joint_regressor``, masks ``eyeball_L`` and
            ``eyeball_R``, ``blendshape_names``, ``blendshape_deltas``).
        channels: source channels.

    Returns:
        ``(rotations (K, 6), residual)``: the left then right eye axis-angle (radians) per
        channel at weight 1, zero for channels that do not move an eyeball; and, for those that
        do, the relative residual ||R p - (p + d)|| / ||d|| over both eyeballs.
    """
    from .geometry import fit_rotation, matrix_to_axis_angle

    deltas = channel_deltas(avatar, channels)  # (K, V, 3)
    vertices = np.asarray(avatar.vertices, dtype=np.float64)
    joints = np.asarray(avatar.joint_regressor, dtype=np.float64) @ vertices  # (5, 3)
    rotations = np.zeros((len(channels), 6))
    residual = {}
    for k, channel in enumerate(channels):
        error = norm = 0.0
        for e, (mask_name, joint) in enumerate(_EYES):
            mask = np.asarray(avatar.masks[mask_name], dtype=bool)
            displacement = deltas[k, mask]
            if np.abs(displacement).max() < STILL_METRES:
                continue
            rest = vertices[mask] - joints[joint]
            rotation = fit_rotation(rest, rest + displacement)
            rotations[k, 3 * e: 3 * e + 3] = matrix_to_axis_angle(rotation)[0]
            error += float(((rest @ rotation.T - rest - displacement) ** 2).sum())
            norm += float((displacement ** 2).sum())
        if norm:
            residual[channel] = (error / norm) ** 0.5
    return rotations, residual


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/emoflame/rigmaps`` (``~/.cache/emoflame/rigmaps`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emoflame" / "rigmaps"


def rigmap_for_flame(model, avatar, cache_dir: str | Path | None = None, region: str = "face",
                     steps: int = 10) -> RigMap:
    """Map channels to a FLAME model's expression coefficients, jaw and eye poses, cached per model file.

    The avatar's channel displacements (FLAME topology) are fitted over the face region by
    least squares (:func:`rigmap_by_least_squares`) on the model's expression ``shapedirs``.
    The jaw channels (:data:`JAW_CHANNELS`) also get the jaw rotation: their linear fit adds
    the rotation's Jacobian through LBS at the zero pose, then they are refitted through the
    full FLAME forward, so the jaw's share is a true rotation about the jaw joint (the avatar's
    ``jawOpen`` is mostly jaw rotation, which FLAME's expression basis does not carry). Other
    channels never turn the jaw, so a smile cannot twist it. The eyeballs' share (gaze) becomes
    ``leye_pose``/``reye_pose`` (:func:`eye_rotations`). The result is cached as ``.npz`` under
    ``cache_dir``, keyed by the model file's SHA-256, the avatar's content and
    :data:`CACHE_VERSION`.

    Args:
        model: a :class:`FLAME` from :func:`load_flame_model` (``file_sha256`` set) or built in
            memory (then nothing is cached).
        avatar: the :class:`Avatar` whose channels are mapped.
        cache_dir: where maps are cached; default :func:`default_cache_dir`.
        region: the avatar mask the fit runs over.
        steps: at most this many Gauss-Newton iterations of the refit through LBS.

    Returns:
        A :class:`RigMap` with targets :data:`FLAME_TARGETS` (``expression_000``..``_099``
        cut to the model's expression count, then ``jaw_pose_0..2``, ``leye_pose_0..2``,
        ``reye_pose_0..2`` in radians) and the relative residual per channel after the refit
        (on the face region, or on the eyeballs for a channel that moves only them).
    """
    cache_path = None
    if model.file_sha256:
        key = hashlib.sha256(f"{model.file_sha256}:{_avatar_digest(avatar)}:{region}:{CACHE_VERSION}".encode())
        cache_path = Path(cache_dir or default_cache_dir()) / f"flame_{key.hexdigest()[:32]}.npz"
        if cache_path.is_file():
            return RigMap.load(cache_path)
    import torch

    flame = copy.deepcopy(model).to("cpu", torch.float64)  # the caller's model keeps its device and dtype
    num_expression = flame.num_expression
    targets = FLAME_TARGETS[:num_expression] + FLAME_TARGETS[100:103]
    with torch.no_grad():
        expression = flame.expression_dirs.permute(2, 0, 1)  # (E, V, 3)
        everywhere = torch.ones(flame.v_template.shape[0], dtype=torch.bool)
        jaw = _jaw_columns(flame, flame.v_template.new_zeros(1, num_expression + 3), everywhere)[0]  # (V, 3, 3)
    # The jaw enters the linear fit as its rotation's Jacobian through LBS at the zero pose.
    basis = torch.cat([expression, jaw.permute(2, 0, 1)]).numpy()  # (E + 3, V, 3)
    linear = rigmap_by_least_squares(avatar, basis, targets, region,
                                     limited={t: JAW_CHANNELS for t in targets[num_expression:]})
    fitted = _refine_through_lbs(flame, avatar, linear, region, steps)
    eyes, eye_residual = eye_rotations(avatar, fitted.channels)
    rigmap = RigMap(
        channels=fitted.channels, targets=fitted.targets + FLAME_TARGETS[103:],
        matrix=np.concatenate([fitted.matrix, eyes.astype(np.float32)], axis=1),
        residual={**eye_residual, **fitted.residual},  # the face's residual where a channel moves both
        unmatched=tuple(c for c in fitted.unmatched if c not in eye_residual),
    )
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_path.with_suffix(".partial.npz")
        rigmap.save(partial)
        partial.replace(cache_path)  # atomic: a concurrent reader never sees half a file
        log.info("cached the FLAME rig map of %s at %s", model.source_path, cache_path)
    return rigmap
