"""Read any common audio file as mono float32 at 16 kHz, refusing what cannot be animated."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile
import soxr

from ..errors import AudioError

SAMPLE_RATE = 16_000
"""Hz. Every feature in emoflame (pocketsphinx, HuBERT, log-mel) works at this rate."""

MAX_DURATION = 3600.0
"""Seconds. Longer recordings are refused: split them into lines of dialogue."""

MIN_DURATION = 0.1
"""Seconds. Shorter than two frames at 25 fps is not a line of dialogue."""

SILENCE_DBFS = -60.0
"""A recording whose loudest 10 ms stays below this RMS level (dB full scale) is silent."""


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a wav, flac, ogg or mp3 file at any sample rate, mono or multichannel.

    Channels are averaged to mono and the signal is resampled to :data:`SAMPLE_RATE` with soxr.

    Args:
        path: the recording.

    Returns:
        ``(samples, SAMPLE_RATE)``: samples (N,) float32 in [-1, 1] at 16 kHz.

    Raises:
        AudioError: the file is missing, unreadable, empty, all silent, or over an hour; the
            message names the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path} (check the path)")
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise AudioError(
            f"cannot read {path} as audio ({exc}); use wav, flac, ogg or mp3 "
            f"(convert others with: ffmpeg -i {path.name} {path.stem}.wav)"
        ) from None
    if info.duration > MAX_DURATION:
        raise AudioError(
            f"{path} is {info.duration / 60:.0f} minutes long; emoflame animates up to an hour "
            f"at a time: split it into lines of dialogue"
        )
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise AudioError(f"cannot decode {path} ({exc}); is the file complete?") from None
    samples = samples.mean(axis=1)
    if len(samples) < MIN_DURATION * rate:
        raise AudioError(f"{path} is empty ({len(samples) / rate:.3f} s of audio); give a recording of speech")
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32)
    if peak_dbfs(samples) < SILENCE_DBFS:
        raise AudioError(
            f"{path} is silent (loudest 10 ms at {peak_dbfs(samples):.0f} dBFS); "
            f"check the recording or its gain"
        )
    return samples, SAMPLE_RATE


def peak_dbfs(samples: np.ndarray, window: int = SAMPLE_RATE // 100) -> float:
    """Level of the loudest ``window`` samples (default 10 ms), RMS in dB full scale."""
    n = len(samples) // window * window or len(samples)
    frames = samples[:n].reshape(-1, min(window, n)) if n else np.zeros((1, 1), np.float32)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)).max()
    return float(20 * np.log10(max(rms, 1e-10)))
