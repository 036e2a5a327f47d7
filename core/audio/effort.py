"""Vocal effort: how hard the speaker drives the voice, measured so that the recording gain does
not change it.

A louder voice is not a louder recording. Raising vocal effort tilts the voice's spectrum
towards the high frequencies (the glottis closes faster, so the harmonics above 1 kHz gain more
than those below), raises F0, and whispering drops the voicing altogether (Traunmüller &
Eriksson, "Acoustic effects of variation in vocal effort by men, women, and children", JASA 107,
2000; Liénard & Di Benedetto, "Effect of vocal effort on spectral properties of vowels", JASA
106, 1999; the alpha ratio of Sundberg & Nordenberg, JASA 120, 2006, and of eGeMAPS, Eyben et al.
2016). Every measure here is a ratio or a level relative to the take itself, so scaling the
samples by any gain leaves it unchanged:

- the take's effort :attr:`VocalEffort.level` from the spectral tilt of its voiced speech
  (energy 1-4 kHz over 300 Hz-1 kHz, in dB: the upper edge keeps telephone-band recordings
  comparable, the lower one microphone and line high-passes) and its share of voiced frames (a
  whisper has none);
- the frame-wise :attr:`VocalEffort.relative`: each frame's loudness against the take's own loud
  frames, lifted on pitch accents (F0 above the speaker's median in the take).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage

from .features import N_FFT, Prosody, power_spectra, to_frame_grid
from .load import SAMPLE_RATE

LOW_BAND_HZ, HIGH_BAND_HZ = (300.0, 1000.0), (1000.0, 4000.0)
"""The bands whose energy ratio is the spectral tilt."""
TILT_CONVERSATIONAL_DB = -13.0
"""Tilt of conversational speech: -11 to -14 dB on the repository's read prompts (arctic_a0007,
the asterisk prompts) and on FACEGOOD's captured speech; level 0."""
TILT_SPAN_DB = 18.0
"""dB of tilt from conversational to the strongest effort (level 1): shouted game lines reach
+8 to +16 dB (Hedgewars' Default voice), the same speaker's quiet lines -9 to -16 dB."""
SPEECH_DB = 15.0
"""Frames within this many dB of the take's loud frames (95th percentile) are its voiced
nuclei, whose tilt is measured (quieter frames are consonants, breath and reverberation)."""
VOICED_WHISPER, VOICED_FULL = 0.12, 0.3
"""Shares of voiced speech frames: at and below the first the take is whispered (level -1;
whispered speech has no voicing, and pitch trackers find a few spurious voiced frames in its
noise: 8 % on a noise-excited resynthesis of arctic_a0007), at and above the second the tilt
alone sets the level (voiced speech: 75-97 % on the repository's recordings, 33 % on the
shortest shouted game line, "drat", whose stop and frication fill half of it)."""
RANGE_DB = 30.0
""":attr:`VocalEffort.relative` rises from 0 at this many dB below the take's loud frames to 1
at them."""
ACCENT_PER_SEMITONE = 0.02
"""Lift of :attr:`VocalEffort.relative` per semitone of F0 above the speaker's median."""
SMOOTH_S = 0.02


@dataclass(frozen=True)
class VocalEffort:
    """The vocal effort of one take.

    Attributes:
        level: the take's effort in [-1, 1]: -1 whispered, 0 conversational, 1 shouted.
        tilt_db: median spectral tilt of the voiced speech frames, dB (energy 1-4 kHz over
            300 Hz-1 kHz); NaN when no frame is voiced.
        voiced: share of the speech frames (within :data:`SPEECH_DB` of the loud ones) that are
            voiced, in [0, 1].
        f0_hz: median F0 of the voiced frames, Hz (0 when none); reported, not used in
            ``level`` (a high F0 may be a shout or a high voice).
        relative: (T,) float32 in [0, 1 + accents], frame-wise effort within the take: loudness
            relative to the take's loud frames, lifted on pitch accents.
    """

    level: float
    tilt_db: float
    voiced: float
    f0_hz: float
    relative: np.ndarray


def spectral_tilt(samples: np.ndarray) -> np.ndarray:
    """(M,) dB per 10 ms frame (frame j centred at ``j * 10 ms``, 25 ms windows): energy in
    :data:`HIGH_BAND_HZ` over :data:`LOW_BAND_HZ`. Gain-invariant by construction."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    low_bins = (freqs >= LOW_BAND_HZ[0]) & (freqs < LOW_BAND_HZ[1])
    high_bins = (freqs >= HIGH_BAND_HZ[0]) & (freqs < HIGH_BAND_HZ[1])
    blocks = [(power[:, high_bins].sum(axis=1), power[:, low_bins].sum(axis=1), power.max())
              for _, power in power_spectra(np.asarray(samples, np.float32))]
    high, low = (np.concatenate([b[i] for b in blocks]) for i in (0, 1))
    floor = 1e-12 * max(max(b[2] for b in blocks), 1e-30)  # relative, so digital silence stays gain-invariant
    return 10 * np.log10((high + floor) / (low + floor))


def vocal_effort(samples: np.ndarray, tracks: Prosody, fps: float) -> VocalEffort:
    """Measure a take's vocal effort, independent of its recording gain.

    Args:
        samples: (N,) float32 mono at 16 kHz.
        tracks: the take's prosody on the animation frame grid (T frames,
            :func:`.features.prosody`).
        fps: frames per second of that grid.

    Returns:
        :class:`VocalEffort` with ``relative`` on the same T frames.
    """
    n = len(tracks.loudness)
    loudness = tracks.loudness.astype(np.float64)
    loud = np.percentile(loudness, 95)
    tilt = to_frame_grid(spectral_tilt(samples), n, fps).astype(np.float64)
    speech = loudness > loud - SPEECH_DB
    nuclei = speech & tracks.voiced
    voiced = float(nuclei.sum() / max(speech.sum(), 1))
    tilt_db = float(np.median(tilt[nuclei])) if nuclei.any() else float("nan")
    tilt_level = np.clip((tilt_db - TILT_CONVERSATIONAL_DB) / TILT_SPAN_DB, -1.0, 1.0) if nuclei.any() else -1.0
    share = float(np.clip((voiced - VOICED_WHISPER) / (VOICED_FULL - VOICED_WHISPER), 0.0, 1.0))
    level = float(share * tilt_level - (1.0 - share))
    f0_hz = float(np.median(tracks.f0[tracks.voiced])) if tracks.voiced.any() else 0.0

    smooth = SMOOTH_S * fps
    smoothed = scipy.ndimage.gaussian_filter1d(loudness, smooth, mode="nearest")
    relative = np.clip((smoothed - (loud - RANGE_DB)) / RANGE_DB, 0.0, 1.0)
    accent = scipy.ndimage.gaussian_filter1d(np.clip(tracks.semitones(), 0.0, 12.0), 4 * smooth, mode="nearest")
    relative = relative + ACCENT_PER_SEMITONE * accent * (relative > 0)
    return VocalEffort(level, tilt_db, voiced, f0_hz, relative.astype(np.float32))
