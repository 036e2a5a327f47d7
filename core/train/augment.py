"""Emotional variety for captured speech that has none (the FACEGOOD takes carry no emotion labels).

The augmentation adds an emotion's FACS expression (``core.emotion.facs.emotion_direction``,
EMFACS prototypes) to the captured neutral-ish speech, scaled frame by frame by an intensity
curve, with the lips yielding at closures:

    target_c(t) = clip(speech_c(t) + I(t) · d_e,c · y_c(t), 0, 1)

where y_c(t) = 1 − closure(t) for the channels that open the lips (jawOpen, mouthLowerDown_*,
mouthUpperUp_*) and 1 elsewhere, closure(t) = clip(max(mouthPress_*, mouthRoll*) / 0.2, 0, 1)
from the capture itself. Why this is justified: an emotion's facial action units and the
articulators' speech movements superpose largely additively in the face (the premise of FACS
coding of speaking faces and of the phonetic engine), except that a bilabial closure (m, b, p)
must stay closed whatever the emotion: a surprised or fearful jaw drop may not open it. The
intensity curves are random and smooth, so the model learns to follow any curve, which is what
Xu et al.'s frame-wise control asks of it.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from ..channels import CHANNEL_INDEX

OPENING = [CHANNEL_INDEX[c] for c in ("jawOpen", "mouthLowerDown_L", "mouthLowerDown_R", "mouthUpperUp_L", "mouthUpperUp_R")]
CLOSING = [CHANNEL_INDEX[c] for c in ("mouthPress_L", "mouthPress_R", "mouthRollLower", "mouthRollUpper")]
CLOSURE_FULL = 0.2
"""A press or roll weight at which the lips count as fully closed."""


def closure(speech: np.ndarray) -> np.ndarray:
    """(..., T) in [0, 1]: how closed the lips are in the captured (..., T, 52) speech weights."""
    return np.clip(speech[..., CLOSING].max(axis=-1) / CLOSURE_FULL, 0.0, 1.0)


def emotional_targets(speech: np.ndarray, direction: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """Add an emotion to captured speech (see the module docstring).

    Args:
        speech: (B, T, 52) captured weights over ARKIT_CHANNELS.
        direction: (B, 52) the emotion's full-intensity FACS expression.
        intensity: (B, T) intensity curve in [0, 1].

    Returns:
        (B, T, 52) float32 in [0, 1].
    """
    add = intensity[..., None] * direction[:, None, :]
    add[..., OPENING] *= (1.0 - closure(speech))[..., None]
    return np.clip(speech + add, 0.0, 1.0).astype(np.float32)


def random_intensity_curves(rng: np.random.Generator, batch: int, frames: int, fps: float = 30.0) -> np.ndarray:
    """(B, T) smooth random intensity curves in [0, 1]: a third constant, the rest piecewise
    linear through random levels every 0.5–2 s, smoothed over 0.2 s."""
    out = np.empty((batch, frames), np.float32)
    t = np.arange(frames)
    for b in range(batch):
        if rng.random() < 1 / 3:
            out[b] = rng.random()
            continue
        knots = [0.0]
        while knots[-1] < frames:
            knots.append(knots[-1] + rng.uniform(0.5, 2.0) * fps)
        out[b] = np.interp(t, knots, rng.random(len(knots)))
        out[b] = uniform_filter1d(out[b], max(1, int(0.2 * fps)), mode="nearest")
    return out
