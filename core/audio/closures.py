"""A second opinion on recognised bilabials from the signal itself.

Phone recognition invents bilabials (an M where the audio is N or D, P's inside vowels), and a
lip closure in the wrong place is the most visible lip-sync error there is. A real closure
silences the mouth: during the hold of P/B nothing is radiated above the voice bar, and the
murmur of M passes almost nothing above 1 kHz through the nose (Stevens, "Acoustic Phonetics",
2000, ch. 7 and 9), while every vowel keeps its second and third formants there. A recognised
bilabial whose 1–5 kHz level does not fall far below the utterance's loud frames is re-labelled
as the alveolar of the same manner (P→T, B→D, M→N), which keeps the jaw and timing but leaves
the lips open. (The signal cannot tell M from N: a nasal recognised as M is kept.)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.signal

from .load import SAMPLE_RATE
from .phones import SPHINX_FPS, Phone, frame_level

BAND_HZ = (1000.0, 5000.0)
STOP_LEVEL_DB = -30.0
"""P/B: the hold is near-silent. On arctic_a0007 the P of "superlative" sits at -43 dB under the
loud frames; a vowel stretch mislabelled P at -26 dB."""
NASAL_LEVEL_DB = -15.0
"""M: the nasal murmur keeps a little energy (-18 to -25 dB for the nasals of arctic_a0007);
vowels stay above -15 dB."""
QUANTILE = 25
"""Percentile of the level inside the phone that is compared: robust to its edges."""

_ALVEOLAR = {"P": "T", "B": "D", "M": "N"}


def band_level(samples: np.ndarray) -> np.ndarray:
    """(M,) dB: RMS level in 1–5 kHz in 10 ms frames (frame j covers samples [160 j, 160 (j+1))),
    relative to the recording's 95th percentile."""
    sos = scipy.signal.butter(4, BAND_HZ, "bandpass", fs=SAMPLE_RATE, output="sos")
    level = 20 * np.log10(np.maximum(frame_level(scipy.signal.sosfilt(sos, samples)), 1e-7))
    return level - np.percentile(level, 95)


def closure_level(level: np.ndarray, phone: Phone) -> float:
    """dB (≤ 0 mostly): the 1–5 kHz level inside ``phone`` relative to the loud frames."""
    start = int(round(phone.start * SPHINX_FPS))
    inside = level[start : max(int(round(phone.end * SPHINX_FPS)), start + 1)]
    return float(np.percentile(inside, QUANTILE)) if len(inside) else 0.0


def confirm_bilabials(samples: np.ndarray, phones: list[Phone]) -> list[Phone]:
    """Keep recognised P, B, M only where the signal shows a closure; re-label the others.

    Args:
        samples: (N,) float32 mono at 16 kHz.
        phones: recognised phones (:func:`.phones.recognise_phones`).

    Returns:
        The same phones, unconfirmed bilabials renamed P→T, B→D, M→N.
    """
    level = band_level(samples)
    out = []
    for p in phones:
        if p.name in _ALVEOLAR:
            needed = NASAL_LEVEL_DB if p.name == "M" else STOP_LEVEL_DB
            if closure_level(level, p) > needed:
                p = dataclasses.replace(p, name=_ALVEOLAR[p.name])
        out.append(p)
    return out
