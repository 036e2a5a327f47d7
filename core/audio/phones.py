"""Phones and their timings from a recording, with pocketsphinx (CMU Sphinx; en-us acoustic model,
CMUdict and phone language model ship in its wheel, so nothing is downloaded).

Two ways: phone recognition (an ``allphone`` search under the shipped phone bigram model), or,
given a transcript, forced alignment to it (word segmentation, then phone alignment inside the
words). Alignment is far more accurate; recognition is what works without text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .features import HOP
from .transcript import TranscriptError, guess_pronunciation, words_of

SPHINX_FPS = 100
"""pocketsphinx analysis frames per second."""

PHONE_LANGUAGE_WEIGHT = 2.0
"""Language-model weight of phone recognition: 2.0 gives a phone error rate of ~0.42 on
arctic_a0007 against its forced alignment where the default 6.5 gives 0.58 (NOTES.md)."""

CMU_PHONES = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
).split()
"""The 39 phones of CMUdict (no stress marks); silence is ``SIL``."""


@dataclass(frozen=True)
class Phone:
    """One phone: a CMU phone name (or ``SIL``) over ``[start, end)`` seconds."""

    name: str
    start: float
    end: float


def _phone_decoder():
    """A fresh decoder for every recording: a reused one carries its cepstral-mean estimate
    over from the last recording and gives different phones for the same audio."""
    from pocketsphinx import Decoder, get_model_path

    phone_lm = os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin")
    return Decoder(allphone=phone_lm, lm=None, backtrace=True, lw=PHONE_LANGUAGE_WEIGHT, loglevel="FATAL")


def _align_decoder():
    from pocketsphinx import Decoder

    return Decoder(loglevel="FATAL")


def to_pcm16(samples: np.ndarray) -> bytes:
    """(N,) float32 in [-1, 1] → raw 16-bit little-endian PCM, the only input pocketsphinx reads."""
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def recognise_phones(samples: np.ndarray) -> list[Phone]:
    """Phone recognition without a transcript.

    Args:
        samples: (N,) float32 mono at 16 kHz.

    Returns:
        Contiguous phones covering the recording, silences as ``SIL``. Expect about 4 phones in
        10 wrong; bilabials in particular are over-detected (see :mod:`.closures`).
    """
    decoder = _phone_decoder()
    decoder.start_utt()
    decoder.process_raw(to_pcm16(samples), full_utt=True)
    decoder.end_utt()
    segments = [(s.word, s.start_frame, s.end_frame) for s in decoder.seg() or []]
    return _merge_silence([
        Phone(_plain(word), start / SPHINX_FPS, (end + 1) / SPHINX_FPS) for word, start, end in segments
    ])


def align_phones(samples: np.ndarray, transcript: str) -> list[Phone]:
    """Forced alignment of a transcript's phones to the recording.

    Two passes (pocketsphinx 5): word boundaries from a search restricted to the transcript,
    then phone and state alignment inside them. Words missing from CMUdict get a letter-to-sound
    guess (:func:`.transcript.guess_pronunciation`).

    Args:
        samples: (N,) float32 mono at 16 kHz.
        transcript: the words spoken (any case and punctuation).

    Returns:
        Contiguous phones covering the recording, silences as ``SIL``.

    Raises:
        TranscriptError: the transcript does not match the recording (the aligner finds no path,
            or leaves speech outside the words, or stretches a word over sounds it does not fit).
    """
    words = words_of(transcript)
    pcm = to_pcm16(samples)
    decoder = _align_decoder()
    for word in sorted(set(words)):
        if decoder.lookup_word(word) is None:
            decoder.add_word(word, guess_pronunciation(word), False)
    try:
        decoder.set_align_text(" ".join(words))
    except RuntimeError as exc:
        raise TranscriptError(f"cannot align to the transcript ({exc}); check its words") from None
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    spans = [(s.word, s.start_frame, s.end_frame, s.ascore) for s in decoder.seg() or []]
    if not spans:
        raise TranscriptError(_MISMATCH.format(why="no alignment of its words fits the audio"))
    decoder.set_alignment()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    alignment = decoder.get_alignment()
    phones = [] if alignment is None else [
        Phone(_plain(p.name), p.start / SPHINX_FPS, (p.start + p.duration) / SPHINX_FPS)
        for word in alignment for p in word
    ]
    if not phones:
        raise TranscriptError(_MISMATCH.format(why="the phone alignment failed"))
    _check_alignment(samples, spans)
    return _merge_silence(phones)


_MISMATCH = ("the transcript does not match the recording ({why}); correct the transcript, "
             "or leave it out to recognise the speech")

POOR_FIT = -4.0
"""Mean log acoustic likelihood per 10 ms frame below which an aligned word does not fit the
audio. Words that match score -0.6 to -2.6 on arctic_a0007; a one-word transcript stretched
over a sentence scores -5.2."""


def _check_alignment(samples: np.ndarray, spans: list[tuple[str, int, int, float]]) -> None:
    rms = np.sqrt(np.mean(_frames(samples, HOP) ** 2, axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-5))
    speech = level > np.percentile(level, 95) - 20  # clearly speech, not room noise or breaths
    in_words = np.zeros(len(level), bool)
    for word, start, end, ascore in spans:
        if word in ("<sil>", "<s>", "</s>", "[NOISE]"):
            continue
        in_words[start : end + 1] = True
        frames = end - start + 1
        fit = np.log(max(ascore, 1e-300)) / frames
        if frames >= 20 and fit < POOR_FIT:
            raise TranscriptError(_MISMATCH.format(why=f"'{word}' is stretched over {frames / 100:.1f} s of sounds it does not fit"))
    outside = (speech & ~in_words[: len(speech)]).sum() / SPHINX_FPS
    if outside > 0.4:
        raise TranscriptError(_MISMATCH.format(why=f"{outside:.1f} s of speech lie outside its words"))


def _frames(samples: np.ndarray, hop: int) -> np.ndarray:
    n = len(samples) // hop
    return samples[: n * hop].reshape(n, hop).astype(np.float64)


def _plain(name: str) -> str:
    """'AH1' → 'AH'; pocketsphinx's silences and fillers ('SIL', '+NSN+', '<sil>') → 'SIL'."""
    name = name.rstrip("012").upper()
    return name if name in CMU_PHONES else "SIL"


def _merge_silence(phones: list[Phone]) -> list[Phone]:
    merged: list[Phone] = []
    for p in phones:
        if merged and p.name == "SIL" and merged[-1].name == "SIL":
            merged[-1] = Phone("SIL", merged[-1].start, p.end)
        else:
            merged.append(p)
    return merged


def speech_phones(samples: np.ndarray, transcript: str | None = None) -> list[Phone]:
    """Phones of a recording: aligned to ``transcript`` when one is given, else recognised.

    Recognised bilabials that the signal does not confirm are re-labelled
    (:func:`.closures.confirm_bilabials`); aligned ones are trusted.

    Raises:
        TranscriptError: see :func:`align_phones`.
    """
    if transcript is not None:
        return align_phones(samples, transcript)
    from .closures import confirm_bilabials

    return confirm_bilabials(samples, recognise_phones(samples))
