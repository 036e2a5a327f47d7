"""How an AnimationClip drives LivePortrait's implicit keypoints (pure maths, no weights needed).

Every clip channel reaches the keypoints through exactly one of three routes:

* **Head pose**: ``clip.head_pose`` (T, 3), axis-angle radians in FLAME's frame (y up, +z
  forward, +x the subject's left; zeros when the clip has none) becomes pitch, yaw and roll in
  LivePortrait's keypoint frame (x right, y down, z into the image), added to the photo's own
  angles, as LivePortrait's own pose editing does (upstream ``gradio_pipeline``).
* **Eyes and lips** through the retargeting MLPs (LivePortrait Sec. 3.3), whose inputs are the
  source keypoints and "ratios": an eye's opening over its width, the inner lips' opening over
  the mouth's width. The clip's ratios are measured on the default avatar posed by the clip's eye
  channels (``EYE_CHANNELS``) and lip-opening channels (``LIP_CHANNELS``) alone. Eyes are
  relative: the photo's own openness times the avatar's, (r − r_shut) / (r_rest − r_shut) with
  r_shut the avatar's ratio at eyeBlink = 1, so a full blink reaches 0 and rest keeps the photo's
  eyes; the lips are absolute (the avatar's ratio), so a photo with parted lips still closes
  them on an M. Each MLP's output at the photo's own ratios is subtracted, so "no change" is
  exactly zero motion. Which eye R_eyes expects first is not documented upstream; the subject's
  right eye (image left) is given first.
* **Expression deformation δ**: every other channel through a linear basis (K, 21, 3):
  δ = δ_source + weights @ basis. The basis is LivePortrait's relative-motion idea with the default
  avatar as the driving face: the motion extractor's δ on renders of the avatar at each channel
  at weight 1, minus its δ at rest (``basis.py`` builds it, once per weights file, cached).

Then x_d = s · (x_c · R_d + δ_d) + t (LivePortrait Eq. 2), + Δ_eyes + Δ_lip, then the stitching
MLP S (Sec. 3.2) so the face's border stays where the photo has it for pasting back.

Known limits: R_eyes takes one target for both eyes, so a wink closes both eyes halfway;
``clip.jaw_pose`` is not read (the engines carry the jaw in ``jawOpen``); ``tongueOut`` has no
avatar shape, so it moves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...core.channels import ARKIT_CHANNELS, canonical_channel
from .keypoints import Motion, matrix_to_angles, retarget, rotation_matrix, stitch, transform_keypoints

EYE_CHANNELS = ("eyeBlink_L", "eyeBlink_R", "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R")
"""Channels whose eye opening goes through R_eyes (and not through the expression basis)."""
LIP_CHANNELS = ("jawOpen", "mouthClose")
"""Channels whose lip opening goes through R_lip (and not through the expression basis)."""

# iBUG 68-point indices on the avatar's landmarks (Avatar.landmarks).
_EYES_68 = (((36, 39), ((37, 41), (38, 40))),  # subject's right eye: corners, (upper, lower) pairs
            ((42, 45), ((43, 47), (44, 46))))  # subject's left eye
_MOUTH_CORNERS_68 = (48, 54)
_INNER_LIPS_68 = (62, 66)

# MediaPipe Face Landmarker (478 points) indices for the same measures on a photo.
_EYES_MP = (((33, 133), ((159, 145),)),         # subject's right eye (image left)
            ((362, 263), ((386, 374),)))        # subject's left eye
_MOUTH_CORNERS_MP = (61, 291)
_INNER_LIPS_MP = (13, 14)

MAX_EYE_OPENING = 1.5  # eyeWide may open past rest, but not absurdly
_FLAME_TO_KEYPOINT_AXES = np.diag([1.0, -1.0, -1.0])  # FLAME (x, y up, z forward) -> (x, y down, z in)


def _dist(points: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1)


def _eye_ratios(points: np.ndarray, eyes) -> np.ndarray:
    out = []
    for (c0, c1), pairs in eyes:
        opening = np.mean([_dist(points, u, l) for u, l in pairs], axis=0)
        out.append(opening / np.maximum(_dist(points, c0, c1), 1e-9))
    return np.stack(out, axis=-1)


def ratios_from_68(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eye and lip ratios from the avatar's iBUG-68 landmarks (..., 68, 3), metres, y up.

    Returns:
        ``(eye (..., 2), lip (...,))``: each eye's lid opening over its corner-to-corner width
        (the subject's right eye, image left, first), and the inner lips' vertical gap over the
        mouth-corner width (0 when they touch or press past each other). Unitless; an open eye is
        about 0.3.
    """
    points = np.asarray(landmarks, np.float64)
    gap = points[..., _INNER_LIPS_68[0], 1] - points[..., _INNER_LIPS_68[1], 1]
    width = np.maximum(_dist(points, *_MOUTH_CORNERS_68), 1e-9)
    return _eye_ratios(points, _EYES_68), np.maximum(gap, 0.0) / width


def ratios_from_mediapipe(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ratios of :func:`ratios_from_68` from MediaPipe's 478 face landmarks (..., 478, 2+) in
    image coordinates (y down); the lip gap is measured across the line of the mouth corners."""
    points = np.asarray(landmarks, np.float64)[..., :2]
    corners = points[..., _MOUTH_CORNERS_MP[1], :] - points[..., _MOUTH_CORNERS_MP[0], :]
    width = np.maximum(np.linalg.norm(corners, axis=-1), 1e-9)
    down = np.stack([-corners[..., 1], corners[..., 0]], axis=-1) / width[..., None]
    gap = ((points[..., _INNER_LIPS_MP[1], :] - points[..., _INNER_LIPS_MP[0], :]) * down).sum(-1)
    return _eye_ratios(points, _EYES_MP), np.maximum(gap, 0.0) / width


def head_pose_to_angles(head_pose: np.ndarray) -> np.ndarray:
    """FLAME head rotations (T, 3) axis-angle radians -> (T, 3) pitch, yaw, roll degrees in keypoint axes.

    The rotation is conjugated into LivePortrait's axes (x right, y down, z into the image) and
    decomposed as :func:`keypoints.rotation_matrix` composes (Rz·Ry·Rx), so zero pose gives zeros.
    """
    from scipy.spatial.transform import Rotation

    head_pose = np.asarray(head_pose, np.float64).reshape(-1, 3)
    c = _FLAME_TO_KEYPOINT_AXES
    rot = c @ Rotation.from_rotvec(head_pose).as_matrix() @ c  # (T, 3, 3), column vectors
    return matrix_to_angles(torch.from_numpy(rot)).numpy()


def clip_head_pose(clip) -> np.ndarray:
    """(T, 3) float32 head pose of a clip; zeros when it has no ``head_pose`` (or it is None).

    Raises:
        ValueError: a head pose that is not (T, 3) or not finite.
    """
    pose = getattr(clip, "head_pose", None)
    if pose is None:
        return np.zeros((clip.num_frames, 3), np.float32)
    pose = np.asarray(pose, np.float32)
    if pose.shape != (clip.num_frames, 3) or not np.isfinite(pose).all():
        raise ValueError(f"clip.head_pose must be finite with shape ({clip.num_frames}, 3), got {pose.shape}")
    return pose


@dataclass(frozen=True)
class ClipDrive:
    """A clip turned into what the keypoints need, frame by frame.

    Attributes:
        fps: frames per second.
        angles: (T, 3) pitch, yaw, roll degrees to add to the photo's.
        eye_opening: (T,) the photo's eye-open ratio is multiplied by this (1 = as in the photo).
        lip_ratio: (T,) target inner-lip opening over mouth width (0 = closed).
        expression: (T, K) weights of the expression-basis channels.
        channels: (K,) their names (ARKit), the rows of an :class:`ExpressionBasis`.
    """

    fps: float
    angles: np.ndarray
    eye_opening: np.ndarray
    lip_ratio: np.ndarray
    expression: np.ndarray
    channels: tuple[str, ...]

    @property
    def num_frames(self) -> int:
        return len(self.angles)


def basis_channels(avatar) -> tuple[str, ...]:
    """The ARKit channels driven through the expression basis: all that the avatar can show,
    except those routed through the retargeting MLPs."""
    from ...core.flame.rigmap import rigmap_for_avatar

    shown = set(ARKIT_CHANNELS) - set(rigmap_for_avatar(avatar).unmatched)
    return tuple(c for c in ARKIT_CHANNELS if c in shown and c not in EYE_CHANNELS + LIP_CHANNELS)


def channel_landmarks(avatar) -> tuple[np.ndarray, np.ndarray]:
    """The avatar's 68 landmarks at rest (68, 3) and per ARKit channel at weight 1 (52, 68, 3), metres.

    Landmarks are a fixed barycentric combination of vertices, so they are linear in the weights.
    """
    from ...core.flame.rigmap import channel_deltas

    rest = avatar.landmarks(avatar.vertices)
    moved = avatar.landmarks(avatar.vertices[None] + channel_deltas(avatar, ARKIT_CHANNELS))
    return rest, moved - rest[None]


def arkit_weights(clip) -> np.ndarray:
    """(T, 52) float32 clip weights on ``ARKIT_CHANNELS`` (columns the clip lacks are 0).

    Raises:
        ValueError: non-finite weights.
    """
    weights = np.asarray(clip.weights, np.float32)
    if not np.isfinite(weights).all():
        raise ValueError("the clip's weights hold NaN or infinite values")
    out = np.zeros((weights.shape[0], len(ARKIT_CHANNELS)), np.float32)
    for j, name in enumerate(clip.channels):
        c = canonical_channel(name)
        if c is not None:
            out[:, ARKIT_CHANNELS.index(c)] = weights[:, j]
    return out


def clip_drive(clip, avatar=None) -> ClipDrive:
    """Turn an :class:`~emoflame.core.clip.AnimationClip` into a :class:`ClipDrive`.

    Args:
        clip: ``weights`` (T, K) over ``channels``, ``fps``, optional ``head_pose`` (T, 3).
        avatar: the avatar whose geometry measures the eye and lip ratios; the default avatar
            when None.

    Raises:
        ValueError: non-finite weights or a malformed head pose.
    """
    if avatar is None:
        from ...core.flame.avatar import default_avatar

        avatar = default_avatar()
    weights = arkit_weights(clip)  # (T, 52)
    rest, per_channel = channel_landmarks(avatar)

    def posed(names):
        idx = [ARKIT_CHANNELS.index(n) for n in names]
        return rest[None] + np.einsum("tk,kld->tld", weights[:, idx], per_channel[idx])

    eye_rest, _ = ratios_from_68(rest)
    # At eyeBlink = 1 the lids meet; what the landmarks still measure there is lid thickness.
    eye_shut = np.array([ratios_from_68(rest + per_channel[ARKIT_CHANNELS.index(n)])[0][i]
                         for i, n in enumerate(("eyeBlink_R", "eyeBlink_L"))])
    eye, _ = ratios_from_68(posed(EYE_CHANNELS))
    _, lip = ratios_from_68(posed(LIP_CHANNELS))
    opening = np.clip(((eye - eye_shut) / (eye_rest - eye_shut)).mean(axis=-1), 0.0, MAX_EYE_OPENING)
    channels = basis_channels(avatar)
    return ClipDrive(
        fps=float(clip.fps),
        angles=head_pose_to_angles(clip_head_pose(clip)).astype(np.float32),
        eye_opening=opening.astype(np.float32),
        lip_ratio=lip.astype(np.float32),
        expression=weights[:, [ARKIT_CHANNELS.index(c) for c in channels]],
        channels=channels,
    )


@dataclass(frozen=True)
class ExpressionBasis:
    """A linear map from channel weights to LivePortrait's expression deformation.

    Attributes:
        channels: (K,) ARKit channel names.
        deltas: (K, 21, 3) float32, the change in δ for each channel at weight 1.
        meta: provenance (weights digest, avatar digest, version).
    """

    channels: tuple[str, ...]
    deltas: np.ndarray
    meta: dict

    def delta(self, weights: np.ndarray, channels: tuple[str, ...]) -> np.ndarray:
        """(T, K') weights over ``channels`` -> (T, 21, 3) Δδ; channels the basis lacks move nothing."""
        weights = np.asarray(weights, np.float32)
        rows = {c: i for i, c in enumerate(self.channels)}
        out = np.zeros((weights.shape[0],) + self.deltas.shape[1:], np.float32)
        for j, c in enumerate(channels):
            if c in rows:
                out += weights[:, j, None, None] * self.deltas[rows[c]]
        return out


@dataclass
class Source:
    """The photo as LivePortrait sees it (one image).

    Attributes:
        motion: M's output for the 256² crop (batch of 1).
        eye_ratio: (2,) the photo's eye-open ratios (:func:`ratios_from_mediapipe`).
        lip_ratio: the photo's lip-open ratio.
    """

    motion: Motion
    eye_ratio: np.ndarray
    lip_ratio: float

    def keypoints(self) -> torch.Tensor:
        """x_s (1, 21, 3)."""
        m = self.motion
        return transform_keypoints(m.kp, rotation_matrix(*m.angles.unbind(-1)), m.exp, m.scale, m.t)


def driven_keypoints(source: Source, drive: ClipDrive, basis: ExpressionBasis | None, stitching_mlp=None,
                     eye_mlp=None, lip_mlp=None, frames: slice = slice(None)) -> torch.Tensor:
    """The driving keypoints x_d for frames of a clip: (T', 21, 3) on the source's device.

    Args:
        source: the photo's motion and ratios.
        drive: from :func:`clip_drive`.
        basis: the expression basis; None keeps the photo's δ (no expression change).
        stitching_mlp, eye_mlp, lip_mlp: LivePortrait's S, R_eyes and R_lip; a None MLP skips its step.
        frames: which frames (a slice of range(T)).
    """
    m = source.motion
    dev, dt = m.kp.device, m.kp.dtype
    idx = range(drive.num_frames)[frames]
    n = len(idx)

    def tensor(a):
        return torch.as_tensor(np.asarray(a, np.float32)[idx.start:idx.stop:idx.step], dtype=dt, device=dev)

    angles = m.angles + tensor(drive.angles)  # (T', 3)
    exp = m.exp.expand(n, -1, -1)
    if basis is not None:
        exp = exp + tensor(basis.delta(drive.expression, drive.channels))
    x_d = transform_keypoints(m.kp.expand(n, -1, -1), rotation_matrix(*angles.unbind(-1)), exp,
                              m.scale.expand(n, -1), m.t.expand(n, -1))
    x_s = source.keypoints().expand(n, -1, -1)
    if eye_mlp is not None:
        c_s = torch.as_tensor(source.eye_ratio, dtype=dt, device=dev).reshape(1, 2).expand(n, 2)
        own = c_s.mean(dim=1, keepdim=True)
        target = own * tensor(drive.eye_opening)[:, None]
        x_d = x_d + retarget(eye_mlp, x_s, torch.cat([c_s, target], 1)) - retarget(eye_mlp, x_s, torch.cat([c_s, own], 1))
    if lip_mlp is not None:
        c_s = torch.full((n, 1), float(source.lip_ratio), dtype=dt, device=dev)
        target = tensor(drive.lip_ratio)[:, None]
        x_d = x_d + retarget(lip_mlp, x_s, torch.cat([c_s, target], 1)) - retarget(lip_mlp, x_s, torch.cat([c_s, c_s], 1))
    if stitching_mlp is not None:
        x_d = stitch(stitching_mlp, x_s, x_d)
    return x_d
