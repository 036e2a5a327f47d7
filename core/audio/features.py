"""Features on the animation frame grid: log-mel and prosody (loudness, F0).

The frame grid: frame i shows the face at time ``i / fps`` seconds (Blender frame ``i + 1``), and
a feature for frame i summarises the audio around that instant. Features are computed at a
10 ms hop (the rate speech front ends use) and resampled to the grid by linear interpolation, so
any frame rate works, 24, 25, 29.97, 30 or 60 fps alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import librosa
import numpy as np
import soxr

from .load import SAMPLE_RATE

HOP = SAMPLE_RATE // 100
"""Samples between analysis frames: 10 ms."""

N_MELS = 80


def num_frames(duration: float, fps: float) -> int:
    """Frames that cover ``duration`` seconds at ``fps`` (the last frame may run past the end)."""
    return max(1, math.ceil(round(duration * fps, 6)))


def frame_times(n: int, fps: float) -> np.ndarray:
    """(n,) float64 seconds: the instant each frame shows."""
    return np.arange(n) / fps


def to_frame_grid(series: np.ndarray, n: int, fps: float, hop_seconds: float = HOP / SAMPLE_RATE) -> np.ndarray:
    """Resample a (M,) or (M, C) series with one row every ``hop_seconds`` (row j centred at
    ``j * hop_seconds``) to the (n,) or (n, C) animation frame grid at ``fps``."""
    src = np.arange(len(series)) * hop_seconds
    dst = frame_times(n, fps)
    if series.ndim == 1:
        return np.interp(dst, src, series).astype(np.float32)
    return np.stack([np.interp(dst, src, col) for col in series.T], axis=1).astype(np.float32)


def log_mel(samples: np.ndarray, fps: float, n_mels: int = N_MELS) -> np.ndarray:
    """Log-mel spectrogram on the frame grid.

    Args:
        samples: (N,) float32 mono at 16 kHz (:func:`core.audio.load.load_audio`).
        fps: frames per second of the animation.
        n_mels: mel bands (80, 25 ms windows, 10 ms hop, 0–8 kHz).

    Returns:
        (T, n_mels) float32, natural log of mel power, T = :func:`num_frames`.
    """
    mel = librosa.feature.melspectrogram(
        y=samples, sr=SAMPLE_RATE, n_fft=512, win_length=400, hop_length=HOP, n_mels=n_mels,
        fmin=0.0, fmax=SAMPLE_RATE / 2,
    )
    n = num_frames(len(samples) / SAMPLE_RATE, fps)
    return to_frame_grid(np.log(mel.T + 1e-6), n, fps)


@dataclass(frozen=True)
class Prosody:
    """Prosodic tracks on the frame grid, each (T,).

    Attributes:
        loudness: RMS level in dB full scale (25 ms windows).
        f0: fundamental frequency in Hz from YIN, 0 where unvoiced.
        voiced: True where the frame is voiced speech (loud enough and periodic).
    """

    loudness: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray

    def semitones(self) -> np.ndarray:
        """(T,) pitch in semitones above the speaker's median voiced F0 in this recording (0 where
        unvoiced, and everywhere when fewer than 3 frames are voiced): the speaker-normalised pitch
        that accents and arousal are measured on."""
        if self.voiced.sum() < 3:
            return np.zeros(len(self.f0), np.float64)
        semitones = 12 * np.log2(np.maximum(self.f0, 1.0) / np.median(self.f0[self.voiced]))
        return np.where(self.voiced, semitones, 0.0)


F0_MIN, F0_MAX = 60.0, 500.0
"""Hz: the range of speaking voices searched by YIN."""


def prosody(samples: np.ndarray, fps: float) -> Prosody:
    """Loudness and pitch of the voice, per frame.

    Voicing: a frame is voiced where it is within 25 dB of the recording's loud frames and YIN's
    estimate is stable against its neighbours (octave jumps and noise make it wander).

    Args:
        samples: (N,) float32 mono at 16 kHz.
        fps: frames per second of the animation.

    Returns:
        :class:`Prosody` with T = :func:`num_frames` frames.
    """
    rms = librosa.feature.rms(y=samples, frame_length=400, hop_length=HOP, center=True)[0]
    loudness = 20 * np.log10(np.maximum(rms, 1e-5))
    # Speaking F0 needs no more than 4 kHz of bandwidth: YIN at 8 kHz halves its cost.
    low_rate = SAMPLE_RATE // 2
    f0 = librosa.yin(soxr.resample(samples, SAMPLE_RATE, low_rate), fmin=F0_MIN, fmax=F0_MAX, sr=low_rate,
                     frame_length=512, hop_length=HOP // 2)
    f0 = np.pad(f0, (0, max(0, len(loudness) - len(f0))), mode="edge")[: len(loudness)]
    loud = loudness > np.percentile(loudness, 95) - 25
    log_f0 = np.log2(f0)
    steady = np.abs(log_f0 - _median3(log_f0)) < 0.1
    voiced = loud & steady & (f0 < F0_MAX * 0.98)
    n = num_frames(len(samples) / SAMPLE_RATE, fps)
    voiced_grid = to_frame_grid(voiced.astype(np.float32), n, fps) > 0.5
    f0_grid = to_frame_grid(np.where(voiced, f0, 0.0), n, fps)
    return Prosody(
        loudness=to_frame_grid(loudness, n, fps),
        f0=np.where(voiced_grid, f0_grid, 0.0).astype(np.float32),
        voiced=voiced_grid,
    )


def _median3(x: np.ndarray) -> np.ndarray:
    padded = np.pad(x, 1, mode="edge")
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
