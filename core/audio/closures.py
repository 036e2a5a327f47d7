"""A second opinion on recognised bilabials from the signal itself.

Phone recognition invents bilabials (an M where the audio is N or D, P's inside vowels), and a
lip closure in the wrong place is the most visible lip-sync error there is. A real closure
silences the mouth's high frequencies: during the hold of P/B almost nothing is radiated, and
the murmur of M passes only low frequencies through the nose (Stevens, "Acoustic Phonetics",
2000, ch. 7 and 9). A recognised bilabial whose 2–8 kHz energy does not drop well below its
neighbours' is re-labelled as the alveolar of the same manner (P→T, B→D, M→N), which keeps the
jaw and timing but leaves the lips open.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.signal

from .features import HOP
from .load import SAMPLE_RATE
from .phones import SPHINX_FPS, Phone

HIGH_BAND_HZ = 2000.0
STOP_DROP_DB = 25.0
"""P/B: the hold is near-silent; on arctic_a0007 the P of "superlative" drops 47 dB."""
NASAL_DROP_DB = 15.0
"""M: the nasal murmur keeps some energy, so less is asked of it."""
FLANK_S = 0.08
"""Seconds either side of the phone where its neighbours' high-band level is taken."""

_ALVEOLAR = {"P": "T", "B": "D", "M": "N"}


def high_band_level(samples: np.ndarray) -> np.ndarray:
    """(M,) dB: RMS level above 2 kHz in 10 ms frames (frame j covers samples [160 j, 160 (j+1)))."""
    sos = scipy.signal.butter(4, HIGH_BAND_HZ, "highpass", fs=SAMPLE_RATE, output="sos")
    high = scipy.signal.sosfilt(sos, samples)
    n = len(high) // HOP
    rms = np.sqrt(np.mean(high[: n * HOP].reshape(n, HOP) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-6))


def closure_drop(level: np.ndarray, phone: Phone) -> float:
    """dB by which the high band inside ``phone`` falls below the louder of its neighbours."""
    start, end = int(round(phone.start * SPHINX_FPS)), max(int(round(phone.end * SPHINX_FPS)), int(round(phone.start * SPHINX_FPS)) + 1)
    flank = int(round(FLANK_S * SPHINX_FPS))
    inside = level[start:end]
    around = np.concatenate([level[max(0, start - flank) : start], level[end : end + flank]])
    if not len(inside) or not len(around):
        return 0.0
    return float(around.max() - inside.min())


def confirm_bilabials(samples: np.ndarray, phones: list[Phone]) -> list[Phone]:
    """Keep recognised P, B, M only where the signal shows a closure; re-label the others.

    Args:
        samples: (N,) float32 mono at 16 kHz.
        phones: recognised phones (:func:`.phones.recognise_phones`).

    Returns:
        The same phones, unconfirmed bilabials renamed P→T, B→D, M→N.
    """
    level = high_band_level(samples)
    out = []
    for p in phones:
        if p.name in _ALVEOLAR:
            needed = NASAL_DROP_DB if p.name == "M" else STOP_DROP_DB
            if closure_drop(level, p) < needed:
                p = dataclasses.replace(p, name=_ALVEOLAR[p.name])
        out.append(p)
    return out
