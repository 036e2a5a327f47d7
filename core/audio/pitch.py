"""Fundamental frequency (F0) and voicing of speech with Praat, through praat-parselmouth.

Praat's autocorrelation pitch tracker (Boersma, "Accurate short-term analysis of the fundamental
frequency and the harmonics-to-noise ratio of a sampled sound", IFA Proceedings 17, 1993): F0
candidates from the normalised autocorrelation of each window, then a Viterbi path through them
that also decides voicing. It is compiled C++ in the parselmouth wheel, so the first call costs
no JIT compile (librosa's YIN costs ~20 s of numba compiling in a fresh environment).
"""

from __future__ import annotations

import numpy as np

from ..errors import AudioError, SettingsError
from .load import SAMPLE_RATE

HOP = SAMPLE_RATE // 100
"""Samples between frames: 10 ms, the grid of ``librosa.feature.rms(hop_length=160, center=True)``."""

PERIODS_PER_WINDOW = 3.0
"""Praat's autocorrelation window: 3 periods of the lowest F0 (50 ms at 60 Hz)."""


def f0_track(samples: np.ndarray, fmin: float = 60.0, fmax: float = 500.0) -> tuple[np.ndarray, np.ndarray]:
    """F0 and voicing on the 10 ms grid.

    Praat's ``To Pitch (ac)`` at its standard settings (15 candidates, silence threshold 0.03 of
    the recording's peak, voicing threshold 0.45, octave cost 0.01, octave-jump cost 0.35,
    voiced/unvoiced cost 0.14), its frames placed on frame j's centre ``j * 10 ms`` by padding
    the recording with silence.

    Args:
        samples: (N,) float mono at 16 kHz (:func:`.load.load_audio`).
        fmin: lowest F0 searched, Hz (also sets the window: 3 / fmin seconds).
        fmax: highest F0 searched, Hz; ``fmin < fmax <= 8000``.

    Returns:
        ``(f0, voiced)``: f0 (M,) float32 Hz, 0 where unvoiced; voiced (M,) bool; M = 1 + N // 160,
        frame j centred at ``j * 0.01`` s (the frames of ``librosa.feature.rms(y, hop_length=160,
        center=True)``).

    Raises:
        AudioError: ``samples`` is not a 1-D array of finite numbers.
        SettingsError: ``fmin``/``fmax`` not finite, not positive, or not ``fmin < fmax <= 8000``.
    """
    import parselmouth

    samples = np.asarray(samples)
    if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.number) or not np.isfinite(samples).all():
        raise AudioError(f"pitch tracking needs (N,) finite mono samples at {SAMPLE_RATE} Hz, got shape "
                         f"{samples.shape}, dtype {samples.dtype}; read audio with load_audio")
    if not (np.isfinite(fmin) and np.isfinite(fmax) and 0 < fmin < fmax <= SAMPLE_RATE / 2):
        raise SettingsError(f"pitch range {fmin}-{fmax} Hz; give 0 < fmin < fmax <= {SAMPLE_RATE // 2} Hz "
                            f"(speech: 60-500)")
    frames = 1 + len(samples) // HOP
    # Praat centres its frames in the sound. A sound spanning (frames - 1) hops, plus one window and
    # half a hop, plus a hop at each end, has frames + 2 frames, the first at -1 hop: frame j of
    # ours is its frame j + 1. The extra hop keeps the padding longer than N's remainder over the grid.
    hop_s = HOP / SAMPLE_RATE
    pad = int(np.ceil((PERIODS_PER_WINDOW / fmin + 0.5 * hop_s) / 2 * SAMPLE_RATE)) + HOP
    padded = np.zeros((frames - 1) * HOP + 2 * pad, np.float64)
    padded[pad : pad + len(samples)] = samples
    sound = parselmouth.Sound(padded, sampling_frequency=SAMPLE_RATE, start_time=-pad / SAMPLE_RATE)
    pitch = sound.to_pitch_ac(time_step=hop_s, pitch_floor=float(fmin), pitch_ceiling=float(fmax))
    assert pitch.n_frames == frames + 2 and abs(pitch.xs()[1]) < 1e-9, (pitch.n_frames, frames, pitch.xs()[:2])
    f0 = np.nan_to_num(pitch.selected_array["frequency"][1 : frames + 1], nan=0.0)
    voiced = f0 > 0
    return np.where(voiced, f0, 0.0).astype(np.float32), voiced
