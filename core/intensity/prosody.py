"""Frame-wise emotion intensity from prosody: the model-free baseline of the learned predictor P.

``resolve_intensity`` falls back to it when no predictor is given (the learned P of Xu et al. is
the default behind ``intensity="audio"``, :mod:`.learned`).

Xu et al. (Sec. 3.2) find that how strongly an emotion shows follows the speaking tone from
moment to moment. Loudness and pitch movement are the two prosodic cues of vocal arousal that
need no model (Juslin & Laukka, Psychol. Bull. 2003, Table 7: intensity and F0 variability rise
with emotional activation). Both are normalised per utterance, so a whispered line and a shouted
one each use the whole range.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from ..audio.features import Prosody, prosody

LOUDNESS_WEIGHT = 0.6
"""Share of loudness in the arousal score; pitch movement has the rest."""
SMOOTH_S = 0.15
"""Seconds: Gaussian smoothing sigma, so the emotion swells with phrases, not syllables."""
REST_LEVEL = 0.2
"""Intensity where the arousal score is lowest: the emotion never vanishes within a take."""


def prosody_intensity(samples: np.ndarray, fps: float, tracks: Prosody | None = None) -> np.ndarray:
    """Emotion intensity per frame from loudness and pitch movement.

    Args:
        samples: (N,) float32 mono at 16 kHz.
        fps: frames per second.
        tracks: the recording's :func:`core.audio.features.prosody`, if already computed.

    Returns:
        (T,) float32 in [REST_LEVEL, 1]: the utterance's calmest stretch at REST_LEVEL, its most
        aroused at 1.
    """
    tracks = tracks if tracks is not None else prosody(samples, fps)
    loud = _spread(tracks.loudness, tracks.loudness > np.percentile(tracks.loudness, 95) - 30)
    pitch = np.zeros_like(tracks.f0)
    if tracks.voiced.sum() >= 3:
        pitch = _spread(np.abs(tracks.semitones()), tracks.voiced)  # distance from the speaker's median pitch
    score = LOUDNESS_WEIGHT * loud + (1 - LOUDNESS_WEIGHT) * pitch
    score = scipy.ndimage.gaussian_filter1d(score.astype(np.float64), SMOOTH_S * fps, mode="nearest")
    lo, hi = np.percentile(score, [5, 95])
    score = np.clip((score - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return (REST_LEVEL + (1 - REST_LEVEL) * score).astype(np.float32)


def _spread(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Map values to [0, 1] by their 5th and 95th percentiles over ``where``; 0 outside it."""
    if not where.any():
        return np.zeros(len(values))
    lo, hi = np.percentile(values[where], [5, 95])
    return np.where(where, np.clip((values - lo) / max(hi - lo, 1e-6), 0.0, 1.0), 0.0)
