"""Emotion-agnostic intensity pseudo-labels (Xu et al., Sec. 3.1).

L_i = Σ_k |K_i,k − K^N_k|: the L1 distance of frame i's expression keypoints from the same
person's neutral face, normalised to [0, 1]. It says how far the face is from rest, whatever the
emotion, so one labeller serves every emotion and the captured speech alike.

Keypoints: with an avatar, the 68 landmarks of the avatar driven by the weights (millimetres;
channels → shape keys through ``rigmap_for_avatar``, then ``Avatar.vertices_for`` and
``Avatar.landmarks``); without one, the channel weights themselves (each channel one keypoint
coordinate, the rig's rest pose at 0). The P training labels use the channel weights (the
FACEGOOD rig is not the avatar); the evaluation's controllability figures use the avatar.
"""

from __future__ import annotations

import numpy as np

from ..channels import ARKIT_CHANNELS


def keypoints(weights: np.ndarray, avatar=None, channels: tuple[str, ...] = ARKIT_CHANNELS) -> np.ndarray:
    """Expression keypoints per frame.

    Args:
        weights: (T, K) channel weights, columns named by ``channels``.
        avatar: an ``Avatar`` (core.flame.avatar) or None.
        channels: the names of the columns of ``weights``.

    Returns:
        (T, P) float32: the avatar's 68 landmarks flattened (P = 204, millimetres) or the
        weights (P = K).
    """
    weights = np.asarray(weights, np.float32)
    if avatar is None:
        return weights
    lmk = avatar.landmarks(avatar_vertices(weights, avatar, channels))  # (T, 68, 3) metres
    return (lmk.reshape(len(weights), -1) * 1000.0).astype(np.float32)


def avatar_vertices(weights: np.ndarray, avatar, channels: tuple[str, ...] = ARKIT_CHANNELS) -> np.ndarray:
    """(T, K) channel weights → (T, 5023, 3) avatar vertices (metres) through the avatar's rig map."""
    from ..flame.rigmap import rigmap_for_avatar

    rig = rigmap_for_avatar(avatar)
    index = {n: i for i, n in enumerate(channels)}
    semantic = np.zeros((len(weights), len(rig.channels)), np.float32)
    for k, name in enumerate(rig.channels):
        if name in index:
            semantic[:, k] = weights[:, index[name]]
    controls = rig.apply(semantic)  # (T, M) over rig.targets
    return avatar.vertices_for(_to_avatar_order(controls, rig.targets, avatar.blendshape_names))


def _to_avatar_order(controls: np.ndarray, targets, names) -> np.ndarray:
    out = np.zeros((len(controls), len(names)), np.float32)
    col = {n: i for i, n in enumerate(names)}
    for m, name in enumerate(targets):
        out[:, col[name]] = controls[:, m]
    return out


def raw_intensity(weights: np.ndarray, neutral: np.ndarray | None = None, avatar=None,
                  channels: tuple[str, ...] = ARKIT_CHANNELS) -> np.ndarray:
    """Unnormalised L_i = Σ|K_i − K^N| per frame.

    Args:
        weights: (T, K) channel weights of the frames to label.
        neutral: (K,) or (T, K) weights of the same person's neutral face (default: the rig's
            rest pose, all zeros); (T, K) labels each frame against its own neutral frame, e.g.
            the same speech generated without emotion.
        avatar, channels: as in :func:`keypoints`.

    Returns:
        (T,) float32, in keypoint units (weights, or millimetres on the avatar).
    """
    weights = np.asarray(weights, np.float32)
    base = np.zeros(weights.shape[1], np.float32) if neutral is None else np.asarray(neutral, np.float32)
    k = keypoints(weights, avatar, channels)
    kn = keypoints(np.broadcast_to(base, weights.shape), avatar, channels)
    return np.abs(k - kn).sum(axis=1).astype(np.float32)


def pseudo_intensity(weights: np.ndarray, neutral: np.ndarray | None = None, avatar=None,
                     channels: tuple[str, ...] = ARKIT_CHANNELS, scale: float | None = None) -> np.ndarray:
    """Intensity pseudo-labels in [0, 1] (Xu et al., Sec. 3.1).

    Args:
        weights, neutral, avatar, channels: as in :func:`raw_intensity`.
        scale: the raw L that counts as intensity 1 (e.g. a training set's 99th percentile, or
            the L of an emotion at full strength); None normalises this sequence by its own 99th
            percentile.

    Returns:
        (T,) float32 in [0, 1].

    Raises:
        ValueError: weights are not (T, K) with K = len(channels), or scale is not positive.
    """
    weights = np.asarray(weights, np.float32)
    if weights.ndim != 2 or weights.shape[1] != len(channels):
        raise ValueError(f"weights must be (frames, {len(channels)}), got {weights.shape}")
    raw = raw_intensity(weights, neutral, avatar, channels)
    if scale is None:
        scale = float(np.percentile(raw, 99)) if len(raw) else 1.0
    if not scale > 0:
        raise ValueError(f"pseudo-intensity scale must be positive, got {scale}: the sequence never leaves neutral")
    return np.clip(raw / scale, 0.0, 1.0).astype(np.float32)


def label_clip(clip, avatar=None, scale: float | None = None) -> np.ndarray:
    """(T,) pseudo-intensity of an ``AnimationClip``'s expression weights against the rest pose."""
    return pseudo_intensity(clip.weights, avatar=avatar, channels=clip.channels, scale=scale)
