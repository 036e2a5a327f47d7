"""Training data from the FACEGOOD takes: standardised audio features, ARKit weights, intensity labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d

from ..intensity.pseudo_labels import raw_intensity
from .facegood import FPS, load_take, take_features

INTENSITY_SMOOTHING = 31
"""Frames (about 1 s at 30 fps) over which the per-frame L_i is averaged into an intensity label:
an emotion's intensity moves at the pace of phrases, not of syllables."""


@dataclass
class Sequence:
    """One take ready for training: features (T, D) raw, weights (T, 52), valid (52,) bool,
    raw_label (T,) smoothed unnormalised L_i."""

    name: str
    features: np.ndarray
    weights: np.ndarray
    valid: np.ndarray
    raw_label: np.ndarray


def load_sequences(data_root: Path, takes, front_end: str, cache_dir: Path) -> list[Sequence]:
    """Load ``takes`` of ``data_root/facegood`` with cached features (see ``take_features``)."""
    out = []
    for name in takes:
        take = load_take(Path(data_root) / "facegood", name)
        feats = take_features(take, front_end, cache_dir)
        n = len(feats)
        weights = take.weights[:n] * take.valid  # uncaptured channels stay at rest
        out.append(Sequence(name, feats, weights, take.valid, intensity_label_raw(weights)))
    return out


def intensity_label_raw(weights: np.ndarray) -> np.ndarray:
    """(T,) L_i (channel-weight keypoints against the rest pose) averaged over ~1 s."""
    return uniform_filter1d(raw_intensity(weights), INTENSITY_SMOOTHING, mode="nearest").astype(np.float32)


def feature_stats(seqs: list[Sequence]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation (D,) over all frames of ``seqs``."""
    x = np.concatenate([s.features for s in seqs])
    return x.mean(0).astype(np.float32), (x.std(0) + 1e-5).astype(np.float32)


def sample_windows(rng: np.random.Generator, seqs: list[Sequence], window: int, batch: int):
    """Random windows, takes drawn in proportion to length.

    Returns:
        ``(features (B, W, D), weights (B, W, 52), raw_label (B, W))`` float32 arrays.
    """
    lengths = np.array([len(s.features) - window for s in seqs], float)
    picks = rng.choice(len(seqs), size=batch, p=lengths / lengths.sum())
    f, w, l = [], [], []
    for i in picks:
        s = seqs[i]
        start = rng.integers(0, len(s.features) - window)
        f.append(s.features[start:start + window])
        w.append(s.weights[start:start + window])
        l.append(s.raw_label[start:start + window])
    return np.stack(f), np.stack(w), np.stack(l)


__all__ = ["FPS", "Sequence", "load_sequences", "feature_stats", "sample_windows", "intensity_label_raw"]
