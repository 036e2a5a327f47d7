"""Carry a displacement field known on part of an image smoothly over the rest (push-pull).

Off the avatar (hair, the head's outline, the collar) the photo must move as the avatar's edge
next to it moves, fading out towards the background; a field that jumps at the avatar's
silhouette would tear the image there. Push-pull (Gortler et al., "The Lumigraph", SIGGRAPH
1996, Sec. 3.4) fills the unknown pixels from an image pyramid of the known ones: every pixel
takes the known values nearest it, blended over a distance that grows with the gap, and the
known pixels keep theirs exactly. About 2 ms for a 512² field here (OpenCV's pyramids).
"""

from __future__ import annotations

import numpy as np

COVERAGE_GAIN = 4.0
"""A pyramid pixel this many times its coverage counts as known (clipped to 1)."""


def push_pull(values: np.ndarray, known: np.ndarray, levels: int = 8) -> np.ndarray:
    """Extend a field smoothly from where it is known over where it is not.

    Args:
        values: (h, w, C) float32, meaningful where ``known``.
        known: (h, w) bool.
        levels: pyramid depth from half resolution; gaps up to about 2**levels pixels fill
            from both sides.

    Returns:
        (h, w, C) float32: off ``known``, the nearby known values blended (0 if none is known);
        on ``known``, the same at half resolution; a caller keeps its own values there.
    """
    mask = known.astype(np.float32)[..., None]
    weighted = [_down(values * mask)]  # premultiplied by coverage; the finest level is the caller's
    masks = [_down(mask)]
    for _ in range(levels - 1):
        if min(masks[-1].shape[:2]) < 4:
            break
        weighted.append(_down(weighted[-1]))
        masks.append(_down(masks[-1]))
    fill = weighted[-1] / np.maximum(masks[-1], 1e-6)
    for level in range(len(masks) - 2, -1, -1):
        # "over": this level's known values (normalised) in front of the coarser fill, a pixel
        # counted as known from a quarter covered; with its bare coverage as the weight, a
        # pixel next to the known ones took half its value from ever farther ones
        known_here = masks[level]
        alpha = np.clip(known_here * COVERAGE_GAIN, 0.0, 1.0)
        fill = alpha * (weighted[level] / np.maximum(known_here, 1e-6)) + (1.0 - alpha) * _up(fill, known_here.shape)
    return _up(fill, values.shape)


def _down(a: np.ndarray) -> np.ndarray:
    import cv2

    out = cv2.pyrDown(a)
    return out.reshape(out.shape[:2] + a.shape[2:])


def _up(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    import cv2

    out = cv2.pyrUp(a, dstsize=(shape[1], shape[0]))
    return out.reshape(out.shape[:2] + a.shape[2:])
