"""Features on the animation frame grid: log-mel and prosody (loudness, F0).

numpy and Praat (:mod:`.pitch`) only: no JIT compiler, so the first run in a fresh environment
is as fast as the next (librosa's numba compiled for 35-50 s on its first import here; the
log-mel and RMS below reproduce its ``melspectrogram`` and ``rms`` with centred, zero-padded
frames to within 1e-6).

The frame grid: frame i shows the face at time ``i / fps`` seconds (Blender frame ``i + 1``), and
a feature for frame i summarises the audio around that instant. Features are computed at a
10 ms hop (the rate speech front ends use) and resampled to the grid by linear interpolation, so
any frame rate works, 24, 25, 29.97, 30 or 60 fps alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .load import SAMPLE_RATE
from .pitch import f0_track

HOP = SAMPLE_RATE // 100
"""Samples between analysis frames: 10 ms."""

N_MELS = 80
N_FFT = 512
WINDOW = 400
"""Samples of the analysis window: 25 ms."""
BLOCK = 6000
"""Frames (60 s) transformed at a time, so an hour-long recording stays in bounded memory."""


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
    # Column by column into float32: stacking float64 columns held (n, C) twice in float64
    # (1.3 GB for an hour's 896-d emotion latent).
    out = np.empty((n, series.shape[1]), np.float32)
    for c in range(series.shape[1]):
        out[:, c] = np.interp(dst, src, series[:, c])
    return out


def log_mel(samples: np.ndarray, fps: float, n_mels: int = N_MELS) -> np.ndarray:
    """Log-mel spectrogram on the frame grid.

    Args:
        samples: (N,) float32 mono at 16 kHz (:func:`core.audio.load.load_audio`).
        fps: frames per second of the animation.
        n_mels: mel bands (80, 25 ms windows, 10 ms hop, 0–8 kHz).

    Returns:
        (T, n_mels) float32, natural log of mel power, T = :func:`num_frames`.
    """
    filters = mel_filters(n_mels).T  # (N_FFT // 2 + 1, n_mels)
    mel = np.empty((_frame_count(len(samples), N_FFT), n_mels), np.float32)
    for lo, power in power_spectra(samples):
        mel[lo:lo + len(power)] = np.log(power @ filters + 1e-6)
    n = num_frames(len(samples) / SAMPLE_RATE, fps)
    return to_frame_grid(mel, n, fps)


def power_spectra(samples: np.ndarray):
    """Power spectra of the 25 ms frames centred every 10 ms (a periodic Hann window of WINDOW
    samples centred in the N_FFT-point frame, librosa's ``stft(n_fft=512, win_length=400,
    center=True)`` squared), :data:`BLOCK` frames at a time: yields ``(index of the first frame,
    (m, N_FFT // 2 + 1) float64 power)``; bin k is at ``k * SAMPLE_RATE / N_FFT`` Hz."""
    window = np.zeros(N_FFT)
    start = (N_FFT - WINDOW) // 2
    window[start:start + WINDOW] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)
    for lo, frames in centred_frames(samples, N_FFT):
        yield lo, np.abs(np.fft.rfft(frames * window, axis=1)) ** 2


def centred_frames(samples: np.ndarray, length: int, block: int = BLOCK):
    """The ``length``-sample frames centred every 10 ms, zero-padded at the ends, :data:`BLOCK`
    frames at a time: yields ``(index of the first frame, (m, length) float64 frames)``, frame j
    centred on sample j × HOP, 1 + N // HOP frames in all. Only a block is ever in float64 (an
    hour's recording in float64 at once took 0.46 GB, twice over)."""
    half = length // 2
    for lo in range(0, _frame_count(len(samples), length), block):
        hi = min(_frame_count(len(samples), length), lo + block)
        first, stop = lo * HOP - half, (hi - 1) * HOP - half + length  # the block's span, in samples
        piece = np.zeros(stop - first, np.float64)
        a, b = max(first, 0), min(stop, len(samples))
        if b > a:
            piece[a - first: b - first] = samples[a:b]
        yield lo, np.lib.stride_tricks.sliding_window_view(piece, length)[::HOP]


def _frame_count(n: int, length: int) -> int:
    return len(range(0, n + 2 * (length // 2) - length + 1, HOP))


def frame_rms(samples: np.ndarray) -> np.ndarray:
    """(1 + N // HOP,) float64 RMS of the WINDOW-sample frames centred every 10 ms."""
    return np.concatenate([np.sqrt(np.mean(frames ** 2, axis=1)) for _, frames in centred_frames(samples, WINDOW)])


def mel_filters(n_mels: int = N_MELS, fmin: float = 0.0, fmax: float = SAMPLE_RATE / 2) -> np.ndarray:
    """(n_mels, N_FFT // 2 + 1) triangular mel filters on Slaney's mel scale (linear to 1 kHz,
    logarithmic above), each normalised to unit area (Slaney, "Auditory Toolbox", 1998), the
    filter bank the learned models were trained with."""
    def to_mel(hz):
        hz = np.asarray(hz, np.float64)
        return np.where(hz >= 1000, 15 + np.log(np.maximum(hz, 1e-10) / 1000) / (np.log(6.4) / 27), hz / (200 / 3))

    def to_hz(mel):
        return np.where(mel >= 15, 1000 * np.exp(np.log(6.4) / 27 * (mel - 15)), mel * 200 / 3)

    fft_hz = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))  # (n_mels + 2,) Hz
    ramps = edges[:, None] - fft_hz[None, :]
    widths = np.diff(edges)
    rising, falling = -ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[:, None]


@dataclass(frozen=True)
class Prosody:
    """Prosodic tracks on the frame grid, each (T,).

    Attributes:
        loudness: RMS level in dB full scale (25 ms windows).
        f0: fundamental frequency in Hz from Praat's autocorrelation tracker, 0 where unvoiced.
        voiced: True where the frame is voiced speech (Praat's voicing decision).
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
"""Hz: the range of speaking voices searched."""


def prosody(samples: np.ndarray, fps: float) -> Prosody:
    """Loudness and pitch of the voice, per frame.

    Args:
        samples: (N,) float32 mono at 16 kHz.
        fps: frames per second of the animation.

    Returns:
        :class:`Prosody` with T = :func:`num_frames` frames: loudness from 25 ms RMS, F0 and
        voicing from Praat (:func:`.pitch.f0_track`, Boersma, "Accurate short-term analysis of the
        fundamental frequency and the harmonics-to-noise ratio of a sampled sound", 1993).
    """
    loudness = 20 * np.log10(np.maximum(frame_rms(samples), 1e-5))
    f0, voiced = f0_track(samples, F0_MIN, F0_MAX)  # same 10 ms frames as the loudness
    n = num_frames(len(samples) / SAMPLE_RATE, fps)
    voiced_grid = to_frame_grid(voiced.astype(np.float32), n, fps) > 0.5
    f0_grid = to_frame_grid(f0, n, fps)
    return Prosody(
        loudness=to_frame_grid(loudness, n, fps),
        f0=np.where(voiced_grid, f0_grid, 0.0).astype(np.float32),
        voiced=voiced_grid,
    )
