"""The expression basis: LivePortrait's relative motion with the default avatar as the driving face.

LivePortrait animates a photo by adding the driving face's change of expression deformation,
δ_d,i − δ_d,0, to the photo's own δ (Guo et al. 2024, Sec. 3.1 and the "relative motion" of its
inference code). emoflame's driving face is the default avatar, and its expression is a linear
blend of ARKit channels, so we take the change per channel once: the motion extractor M reads a
render of the avatar at rest and at each channel at weight 1, and the differences form a (K, 21,
3) basis; a clip's δ is then δ_photo + weights @ basis (driving.py). M is not linear, so this is
its first-order (secant) approximation around rest; it is computed per weights file and cached
(``$XDG_CACHE_HOME/emoflame/liveportrait``).

The renders are flat-shaded with OpenCV (a painter's algorithm over the avatar's triangles, 2×
supersampled): M only needs a face whose features move, framed as LivePortrait frames photos
(crop.py). Whether M reads a grey CG head as it reads photos can only be checked with the real
weights: ``python -m emoflame.renderers.neural.basis --weights DIR`` prints the basis's norms
per channel and writes the renders it used.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from ...core.channels import ARKIT_CHANNELS
from ...core.errors import EmoflameError
from .crop import crop_for_68
from .driving import ExpressionBasis, basis_channels

BASIS_VERSION = 1
RENDER_SIZE = 256
_BACKGROUND = 0.55
_LIGHT = np.array([-0.3, 0.4, 1.0]) / np.linalg.norm([-0.3, 0.4, 1.0])  # from the front, above, the subject's right


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/emoflame/liveportrait`` (``~/.cache/emoflame/liveportrait`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emoflame" / "liveportrait"


def _shade(points: np.ndarray, faces: np.ndarray, colors: np.ndarray, cull: bool):
    """Per-triangle depth, 2D polygon and shaded colour of the visible triangles."""
    tri = points[faces]  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    keep = normal[:, 2] > 0 if cull else np.ones(len(faces), bool)
    light = 0.35 + 0.65 * np.abs(normal @ _LIGHT)
    color = colors[faces].mean(axis=1) * light[:, None]
    return tri[keep, :, 2].mean(axis=1), tri[keep], color[keep]


def render_avatar(avatar, weights: np.ndarray, frame: np.ndarray, size: int = RENDER_SIZE) -> np.ndarray:
    """Render the avatar with its mouth interior at ARKit weights, straight on, orthographic.

    Args:
        avatar: the :class:`~emoflame.core.flame.avatar.Avatar`.
        weights: (52,) ARKit channel weights.
        frame: (2, 3) affine from the avatar's (x, −y) metres to crop pixels at ``size``
            (:func:`avatar_frame`).
        size: output side in pixels.

    Returns:
        (size, size, 3) uint8 RGB.
    """
    import cv2

    from ...core.flame.rigmap import rigmap_for_avatar

    keys = np.zeros(len(avatar.blendshape_names), np.float32)
    by_name = rigmap_for_avatar(avatar)
    keys[[avatar.blendshape_names.index(t) for t in by_name.targets]] = by_name.apply(np.asarray(weights, np.float32))
    parts = [
        (avatar.vertices_for(keys), avatar.faces, avatar.vertex_colors, True),
        (avatar.interior.vertices_for(keys), avatar.interior.faces, avatar.interior.vertex_colors, False),
    ]
    ss = 2  # supersampling
    scale = np.vstack([frame * ss, [0.0, 0.0, 1.0]])
    depth, polys, colors = [], [], []
    for verts, faces, vcol, cull in parts:
        d, tri, c = _shade(np.asarray(verts, np.float64), np.asarray(faces), np.asarray(vcol, np.float64), cull)
        xy = np.stack([tri[..., 0], -tri[..., 1], np.ones_like(tri[..., 0])], axis=-1) @ scale[:2].T
        depth.append(d), polys.append(xy), colors.append(c)
    depth, polys, colors = np.concatenate(depth), np.concatenate(polys), np.concatenate(colors)
    canvas = np.full((size * ss, size * ss, 3), _BACKGROUND * 255, np.uint8)
    fixed = np.round(polys * 16).astype(np.int32)  # 4 fractional bits for cv2's shift
    for i in np.argsort(depth):  # far to near (+z is towards the viewer)
        cv2.fillConvexPoly(canvas, fixed[i], tuple(float(v) for v in np.clip(colors[i] * 255, 0, 255)),
                           lineType=cv2.LINE_8, shift=4)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def avatar_frame(avatar, size: int = RENDER_SIZE) -> np.ndarray:
    """(2, 3) affine from the avatar's (x, −y) metres to the pixels of LivePortrait's crop of it,
    made from its rest landmarks exactly as photos are cropped (:func:`crop.crop_for_68`)."""
    lm = avatar.landmarks(avatar.vertices)
    return crop_for_68(np.stack([lm[:, 0], -lm[:, 1]], axis=1), size).matrix


def basis_renders(avatar, channels: tuple[str, ...], size: int = RENDER_SIZE) -> np.ndarray:
    """(1 + K, size, size, 3) uint8: the avatar at rest, then at each channel at weight 1."""
    frame = avatar_frame(avatar, size)
    poses = np.zeros((1 + len(channels), len(ARKIT_CHANNELS)), np.float32)
    for k, c in enumerate(channels):
        poses[1 + k, ARKIT_CHANNELS.index(c)] = 1.0
    return np.stack([render_avatar(avatar, w, frame, size) for w in poses])


@torch.no_grad()
def measure_basis(motion_extractor, renders: np.ndarray, batch: int = 8) -> np.ndarray:
    """(K, 21, 3): M's δ on each channel's render minus δ at rest (``renders[0]``)."""
    p = next(motion_extractor.parameters())
    exps = []
    for i in range(0, len(renders), batch):
        x = torch.from_numpy(renders[i:i + batch]).to(p.device, p.dtype).permute(0, 3, 1, 2) / 255.0
        exps.append(motion_extractor(x)["exp"].float().cpu().reshape(len(x), -1, 3))
    exp = torch.cat(exps).numpy()
    return (exp[1:] - exp[:1]).astype(np.float32)


def _digest(path: Path, avatar) -> str:
    """Identifies the weights file, the avatar's geometry and this module's rendering."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update("\n".join(avatar.blendshape_names).encode())
    for a in (avatar.vertices, avatar.blendshape_deltas, avatar.vertex_colors, avatar.interior.vertices):
        h.update(np.ascontiguousarray(a, np.float32).tobytes())
    h.update(f"basis v{BASIS_VERSION} {RENDER_SIZE}".encode())
    return h.hexdigest()[:24]


def expression_basis(models, avatar=None, cache: str | Path | None = None) -> ExpressionBasis:
    """The expression basis for these weights and avatar, from the cache or measured (≈ 50 renders
    and one batch of M per channel group; seconds on a GPU, about a minute on 2 CPU cores).

    Args:
        models: :class:`~.weights.LivePortraitModels` (its ``motion`` and ``folder`` are used).
        avatar: the driving avatar; the default avatar when None.
        cache: folder of cached bases; :func:`cache_dir` when None.
    """
    if avatar is None:
        from ...core.flame.avatar import default_avatar

        avatar = default_avatar()
    from .weights import FILES

    digest = _digest(Path(models.folder) / FILES["motion"], avatar)
    path = Path(cache or cache_dir()) / f"basis-{digest}.npz"
    channels = basis_channels(avatar)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                cached = ExpressionBasis(tuple(z["channels"].tolist()), z["deltas"], json.loads(str(z["meta"])))
            if cached.channels == channels:
                return cached
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache entry is measured again and overwritten
    deltas = measure_basis(models.motion, basis_renders(avatar, channels))
    basis = ExpressionBasis(channels, deltas, {"digest": digest, "version": BASIS_VERSION})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, channels=np.array(channels), deltas=deltas, meta=np.array(json.dumps(basis.meta)))
    os.replace(tmp, path)
    return basis


def main(argv=None) -> None:
    """Print the basis norms per channel for a weights folder and save the renders (needs the weights)."""
    import argparse

    import cv2

    from ...core.flame.avatar import default_avatar
    from .weights import load_liveportrait

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--weights", help="LivePortrait weights folder (default: $EMOFLAME_LIVEPORTRAIT)")
    parser.add_argument("--renders", default="basis_renders.png", help="contact sheet of the renders")
    args = parser.parse_args(argv)
    try:
        models = load_liveportrait(args.weights)
    except EmoflameError as exc:
        raise SystemExit(f"error: {exc}") from None
    avatar = default_avatar()
    basis = expression_basis(models, avatar)
    for c, d in zip(basis.channels, basis.deltas):
        print(f"{c:18s} |Δδ| = {np.linalg.norm(d):.4f}")
    renders = basis_renders(avatar, basis.channels)
    rows = [np.hstack(list(renders[i:i + 8]) + [np.zeros_like(renders[0])] * (8 - len(renders[i:i + 8])))
            for i in range(0, len(renders), 8)]
    cv2.imwrite(args.renders, cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"renders (rest, then {', '.join(basis.channels)}): {args.renders}")


if __name__ == "__main__":
    main()
