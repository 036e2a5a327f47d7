"""Phones and their timings from a recording, with pocketsphinx (CMU Sphinx; en-us acoustic model,
CMUdict and phone language model ship in its wheel, so nothing is downloaded).

Two ways: phone recognition (an ``allphone`` search under the shipped phone bigram model), or,
given a transcript, forced alignment to it (word segmentation, then phone alignment inside the
words). Alignment is far more accurate; recognition is what works without text.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from .load import SAMPLE_RATE
from ..errors import TranscriptError
from .transcript import guess_pronunciation, words_of

log = logging.getLogger(__name__)

SPHINX_FPS = 100
"""pocketsphinx analysis frames per second."""
HOP = SAMPLE_RATE // SPHINX_FPS

CHUNK_S = 30.0
"""Recognition decodes a long recording in pieces of about this many seconds, cut at its
quietest moments: in parallel on several cores, with progress, in bounded memory."""

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


PEAK = 0.9
"""Full scale fraction the loudest sample is brought to before decoding."""


def to_pcm16(samples: np.ndarray) -> bytes:
    """(N,) float32 → raw 16-bit little-endian PCM, the only input pocketsphinx reads, its peak at
    :data:`PEAK` of full scale: the same take recorded louder or quieter decodes to the same phones
    (a hot take would clip in 16 bits, and the decoder's acoustic scores depend on the level)."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    scaled = np.asarray(samples, np.float64) * (PEAK / peak if peak > 0 else 1.0)
    return (np.clip(scaled, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def recognise_phones(samples: np.ndarray, progress: bool = False) -> list[Phone]:
    """Phone recognition without a transcript.

    Recordings longer than :data:`CHUNK_S` are cut at their quietest moments and the pieces are
    decoded in worker processes, one per core (pocketsphinx holds the GIL, so threads would not
    help); the result does not depend on the number of cores.

    Args:
        samples: (N,) float32 mono at 16 kHz.
        progress: show a tqdm bar over the pieces.

    Returns:
        Contiguous phones covering the recording, silences as ``SIL``. Expect about 4 phones in
        10 wrong; bilabials in particular are over-detected (see :mod:`.closures`).
    """
    cuts = chunk_bounds(samples)
    pieces = [to_pcm16(samples[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    bar = tqdm(total=len(pieces), desc="phones", unit="piece", disable=not progress or len(pieces) < 2, leave=False)
    with bar:
        decoded = _in_workers(decode_phones, pieces, bar)
    phones = [
        Phone(_plain(word), (cut // HOP + start) / SPHINX_FPS, (cut // HOP + end + 1) / SPHINX_FPS)
        for cut, segments in zip(cuts, decoded) for word, start, end in segments
    ]
    return _merge_silence(phones)


def chunk_bounds(samples: np.ndarray, chunk_s: float = CHUNK_S) -> list[int]:
    """Sample indices [0, …, N] that cut a recording into pieces of about ``chunk_s`` seconds,
    each cut on a 10 ms frame boundary at the quietest 100 ms within 5 s of the nominal cut."""
    pieces = int(np.ceil(len(samples) / SAMPLE_RATE / chunk_s))
    if pieces < 2:
        return [0, len(samples)]
    energy = frame_level(samples) ** 2
    n = len(energy)
    smooth = np.convolve(energy, np.ones(10) / 10, mode="same")
    cuts = [0]
    for k in range(1, pieces):
        nominal = k * n // pieces
        lo, hi = max(cuts[-1] // HOP + 100, nominal - 500), min(n - 100, nominal + 500)
        if lo < hi:
            cuts.append(int(lo + np.argmin(smooth[lo:hi])) * HOP)
    return cuts + [len(samples)]


def _in_workers(work, pieces: list, bar: tqdm) -> list:
    """``[work(piece) for piece in pieces]``, in worker processes, one per core (pocketsphinx
    holds the GIL, so threads would not help); errors ``work`` raises reach the caller."""
    workers = min(len(pieces), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    # fork, not spawn or forkserver: those re-import the caller's __main__ in every worker, which
    # re-runs a user's script that lacks an `if __name__ == "__main__"` guard. The workers only
    # run pocketsphinx on the pieces. Elsewhere than Linux the pieces are decoded one after another.
    if workers > 1 and sys.platform.startswith("linux"):
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                out = []
                for result in pool.map(work, pieces):
                    out.append(result)
                    bar.update()
                return out
        except (OSError, BrokenProcessPool) as exc:
            log.warning("decoding in one process: worker processes failed (%s)", exc)
            bar.reset()
    out = []
    for piece in pieces:
        out.append(work(piece))
        bar.update()
    return out


def decode_phones(pcm: bytes) -> list[tuple[str, int, int]]:
    """Phone segments ``(phone, first frame, last frame)`` (10 ms frames, inclusive) of 16 kHz
    16-bit PCM, decoded as one utterance by a fresh decoder."""
    decoder = _phone_decoder()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    return [(s.word, s.start_frame, s.end_frame) for s in decoder.seg() or []]


def align_phones(samples: np.ndarray, transcript: str) -> list[Phone]:
    """Forced alignment of a transcript's phones to the recording.

    Two passes (pocketsphinx 5): word boundaries from a search restricted to the transcript,
    then phone and state alignment inside them. Words missing from CMUdict get a letter-to-sound
    guess (:func:`.transcript.guess_pronunciation`), acronyms it lacks ("PBX") are spelled letter
    by letter, and when the words do not align with numbers read as cardinals, they are tried
    read digit by digit (as phone numbers are said).

    Args:
        samples: (N,) float32 mono at 16 kHz.
        transcript: the words spoken (any case and punctuation).

    Returns:
        Contiguous phones covering the recording, silences as ``SIL``.

    Raises:
        TranscriptError: the transcript does not match the recording (the aligner finds no path,
            or leaves speech outside the words, or stretches a word over sounds it does not fit).
    """
    known = _align_decoder()
    spell = lambda token: known.lookup_word(token.lower()) is None  # noqa: E731 - an acronym CMUdict lacks
    readings = [words_of(transcript, spell=spell)]
    with_digits = words_of(transcript, digits=True, spell=spell)
    if with_digits != readings[0]:
        readings.append(with_digits)
    for attempt, words in enumerate(readings):
        try:
            return _align_words(samples, words)
        except TranscriptError:
            if attempt == len(readings) - 1:
                raise


def align_timed_words(samples: np.ndarray, words, progress: bool = False) -> list[Phone]:
    """Forced alignment to words that carry their times (Whisper's, :class:`.recognition.Word`).

    A recording longer than :data:`CHUNK_S` is cut at its quietest moments (:func:`chunk_bounds`),
    each word goes to the piece that holds its middle, and the pieces are aligned
    (:func:`align_phones`) in worker processes: one alignment of a whole hour held over 4 GB
    and took 19 minutes (pocketsphinx's search grows faster than the recording), the pieces take
    bounded memory and both cores. Shorter recordings are aligned whole.

    Args:
        samples: (N,) float32 mono at 16 kHz.
        words: the words in order, each with ``text``, ``start`` and ``end`` (seconds).
        progress: show a tqdm bar over the pieces.

    Returns:
        Contiguous phones covering the recording, silences as ``SIL``.

    Raises:
        TranscriptError: a piece's words do not match its audio (see :func:`align_phones`).
    """
    cuts = chunk_bounds(samples)
    if len(cuts) == 2:
        return align_phones(samples, " ".join(w.text for w in words))
    pieces = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        inside = [w.text for w in words if a <= 0.5 * (w.start + w.end) * SAMPLE_RATE < b]
        pieces.append((samples[a:b], " ".join(inside)))
    bar = tqdm(total=len(pieces), desc="alignment", unit="piece", disable=not progress, leave=False)
    with bar:
        aligned = _in_workers(_align_piece, pieces, bar)
    return _merge_silence([Phone(p.name, p.start + a / SAMPLE_RATE, p.end + a / SAMPLE_RATE)
                           for a, phones in zip(cuts, aligned) for p in phones])


def _align_piece(piece: tuple[np.ndarray, str]) -> list[Phone]:
    samples, text = piece
    if not text.strip():  # no word in this piece: a pause
        return [Phone("SIL", 0.0, len(samples) / SAMPLE_RATE)]
    return align_phones(samples, text)


PAD_S = 0.1
"""Seconds of silence added at both ends before aligning: pocketsphinx's second pass otherwise
fails on some recordings that start or end in speech ("Failed to stop utterance processing")."""


def _align_words(samples: np.ndarray, words: list[str]) -> list[Phone]:
    pad = int(PAD_S * SAMPLE_RATE)
    padded = np.concatenate([np.zeros(pad, np.float32), samples, np.zeros(pad, np.float32)])
    pcm = to_pcm16(padded)
    decoder = _align_decoder()
    for word in sorted(set(words)):
        if decoder.lookup_word(word) is None:
            decoder.add_word(word, guess_pronunciation(word), False)
    try:
        decoder.set_align_text(" ".join(words))
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
    except RuntimeError as exc:
        raise TranscriptError(_MISMATCH.format(why=f"the aligner stopped: {exc}")) from None
    shift = pad // HOP  # frames of padding, taken off every time
    phones = [] if alignment is None else [
        Phone(_plain(p.name), max(p.start - shift, 0) / SPHINX_FPS, max(p.start + p.duration - shift, 0) / SPHINX_FPS)
        for word in alignment for p in word
    ]
    duration = len(samples) / SAMPLE_RATE
    phones = [Phone(p.name, min(p.start, duration), min(p.end, duration)) for p in phones]
    phones = [p for p in phones if p.end > p.start]  # the padding's silence, clipped away
    if not phones:
        raise TranscriptError(_MISMATCH.format(why="the phone alignment failed"))
    _check_alignment(padded, spans)
    return _merge_silence(phones)


_MISMATCH = ("the transcript does not match the recording ({why}); correct the transcript, "
             "or leave it out to recognise the speech")

POOR_FIT = -4.0
"""Mean log acoustic likelihood per 10 ms frame below which an aligned word fits the audio
poorly. Words that match score -0.6 to -2.6 on arctic_a0007 (16 kHz), but down to -4.7 on the
8 kHz telephone prompts; a one-word transcript stretched over a sentence scores -5.2."""
POOR_SHARE = 0.25
"""Share of the long words (0.2 s or more) that may fit poorly before the transcript counts as
not matching: correct transcripts of the telephone prompts stay under it, another prompt's text
has 60-79 % of its long words below :data:`POOR_FIT`."""


def _check_alignment(samples: np.ndarray, spans: list[tuple[str, int, int, float]]) -> None:
    level = 20 * np.log10(np.maximum(frame_level(samples), 1e-5))
    speech = level > np.percentile(level, 95) - 20  # clearly speech, not room noise or breaths
    in_words = np.zeros(len(level), bool)
    long_fits = []
    for word, start, end, ascore in spans:
        if word in ("<sil>", "<s>", "</s>", "[NOISE]"):
            continue
        in_words[start : end + 1] = True
        frames = end - start + 1
        if frames >= 20:
            long_fits.append((np.log(max(ascore, 1e-300)) / frames, word, frames))
    poor = sorted(f for f in long_fits if f[0] < POOR_FIT)
    if long_fits and len(poor) > POOR_SHARE * len(long_fits):
        _, word, frames = poor[0]
        raise TranscriptError(_MISMATCH.format(why=f"'{word}' is stretched over {frames / 100:.1f} s of sounds it does not fit"))
    outside = (speech & ~in_words[: len(speech)]).sum() / SPHINX_FPS
    # a cough or a laugh in a long take is not a missing sentence
    if outside > max(0.4, 0.03 * speech.sum() / SPHINX_FPS):
        raise TranscriptError(_MISMATCH.format(why=f"{outside:.1f} s of speech lie outside its words"))


LEVEL_BLOCK = 6000
"""Frames (60 s) squared in float64 at a time: an hour at once would take 0.9 GB."""


def frame_level(signal: np.ndarray) -> np.ndarray:
    """(N // 160,) float64 RMS of each 10 ms frame (pocketsphinx's frames) of a 16 kHz signal."""
    n = len(signal) // HOP
    level = np.empty(n, np.float64)
    for lo in range(0, n, LEVEL_BLOCK):
        hi = min(n, lo + LEVEL_BLOCK)
        frames = signal[lo * HOP: hi * HOP].reshape(hi - lo, HOP).astype(np.float64)
        level[lo:hi] = np.sqrt(np.mean(frames ** 2, axis=1))
    return level


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


def phone_error_rate(reference: list[Phone], hypothesis: list[Phone]) -> float:
    """Phone error rate: Levenshtein distance between the two phone sequences, silences left
    out, over the reference's length (0 is perfect; above 1 is possible).

    Raises:
        ValueError: the reference has no phones but silence.
    """
    ref = [p.name for p in reference if p.name != "SIL"]
    hyp = [p.name for p in hypothesis if p.name != "SIL"]
    if not ref:
        raise ValueError("the reference phones are all silence; a phone error rate needs speech")
    distance = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        previous, distance[0] = distance.copy(), i
        for j, h in enumerate(hyp, 1):
            distance[j] = min(previous[j] + 1, distance[j - 1] + 1, previous[j - 1] + (r != h))
    return float(distance[-1]) / len(ref)
