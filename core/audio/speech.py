"""What the speech analysis finds in a recording, once, for every engine and every layer.

:func:`analyse_speech` runs the prosody (loudness, pitch) and, for engines that need them, the
phones: forced alignment to the transcript given, or to an automatic transcript (Whisper,
:mod:`.recognition`) by default, or phone recognition with the bilabial check of
:mod:`.closures` when there are no words (or recognising them failed). The result, a
:class:`Speech`, is what the expression engines and the eye and head layers read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import logging

from ..errors import ModelFileError, TranscriptError
from .closures import confirm_bilabials
from .features import Prosody, num_frames, prosody
from .load import SAMPLE_RATE
from .phones import Phone, align_phones, align_timed_words, recognise_phones

log = logging.getLogger(__name__)

AUTO, NONE = "auto", "none"
"""The transcript modes: words recognised by Whisper (the default), or none (phone recognition)."""

PAUSE_S = 0.2
"""Seconds: the shortest silence that counts as a pause (a phrase boundary)."""


@dataclass(frozen=True)
class Speech:
    """A recording and what the analysis found in it, on the animation frame grid.

    Attributes:
        samples: (N,) float32 mono at 16 kHz.
        fps: frames per second of the grid.
        num_frames: T.
        prosody: loudness, F0 and voicing, each (T,).
        phones: contiguous phones covering the recording, or None when no engine needed them.
        phone_source: how the phones were found: ``"aligned to transcript"``, ``"aligned to the
            automatic transcript"``, ``"recognised"``, ``"recognised (…why the automatic transcript
            was not used)"`` or ``"none"``.
        transcript: the words the phones are aligned to, or "".
    """

    samples: np.ndarray
    fps: float
    num_frames: int
    prosody: Prosody
    phones: tuple[Phone, ...] | None = None
    phone_source: str = "none"
    transcript: str = ""
    _features: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return len(self.samples) / SAMPLE_RATE

    def audio_features(self, front_end: str, fps: float, hubert_dir: str = "") -> np.ndarray:
        """(M, D) features of a learned model's front end at its frame rate ``fps``
        (:func:`.frontends.audio_features`), computed once per recording: the intensity
        predictor and the expression transformer read the same ones.

        Raises:
            ModelFileError: HuBERT asked for and its weights are missing.
        """
        from .frontends import audio_features

        key = (front_end, float(fps), hubert_dir)
        if key not in self._features:
            self._features[key] = audio_features(self.samples, fps, front_end, hubert_dir)
        return self._features[key]

    def pauses(self, min_length: float = PAUSE_S) -> list[float]:
        """Seconds at which silences of at least ``min_length`` begin after speech: from the
        phones when there are some, else from the loudness (:func:`pauses_in_loudness`)."""
        if self.phones is None:
            return pauses_in_loudness(self.prosody.loudness, self.fps, min_length)
        phones = self.phones
        return [p.start for i, p in enumerate(phones) if p.name == "SIL" and i > 0 and p.end - p.start >= min_length]


def speech_phones(samples: np.ndarray, transcript: str | None = None, progress: bool = False) -> list[Phone]:
    """Phones of a recording: aligned to ``transcript`` when one is given, else recognised.

    Recognised bilabials that the signal does not confirm are re-labelled
    (:func:`.closures.confirm_bilabials`); aligned ones are trusted.

    Raises:
        TranscriptError: see :func:`.phones.align_phones`.
    """
    if transcript is not None:
        return align_phones(samples, transcript)
    return confirm_bilabials(samples, recognise_phones(samples, progress))


def is_transcript_mode(transcript, mode: str) -> bool:
    """Whether ``transcript`` is the mode word ``mode`` ("auto", "none"; any case, spaces around)."""
    return isinstance(transcript, str) and transcript.strip().lower() == mode


def analyse_speech(samples: np.ndarray, fps: float, *, phones: bool, transcript: str | None = AUTO,
                   whisper_model: str = "", progress: bool = False) -> Speech:
    """Prosody and, when ``phones`` is True, the phones of a recording.

    Args:
        samples: (N,) float32 mono at 16 kHz.
        fps: frames per second of the animation.
        phones: find the phones (the engine needs them).
        transcript: the words spoken, to align to; ``"auto"`` or None (default) to align to the
            words Whisper recognises, falling back to phone recognition when it finds none or they
            do not align (said in ``phone_source``); ``"none"`` for phone recognition.
        whisper_model: a local faster-whisper model folder, or "" for the bundled tiny.en.
        progress: show phone recognition's progress bar on long recordings.

    Raises:
        TranscriptError: a given transcript does not match the recording.
        ModelFileError: ``whisper_model`` names a folder that is not a faster-whisper model.
    """
    n = num_frames(len(samples) / SAMPLE_RATE, fps)
    tracks = prosody(samples, fps)
    if not phones:
        return Speech(samples, fps, n, tracks)
    if transcript is None or is_transcript_mode(transcript, AUTO):
        found, source, text = _phones_from_recognised_words(samples, whisper_model, progress)
    elif is_transcript_mode(transcript, NONE):
        found, source, text = speech_phones(samples, None, progress), "recognised", ""
    else:
        found, source, text = align_phones(samples, transcript), "aligned to transcript", transcript
    return Speech(samples, fps, n, tracks, tuple(found), source, text)


def _phones_from_recognised_words(samples: np.ndarray, whisper_model: str, progress: bool):
    """(phones, source, transcript): aligned to Whisper's words, else recognised, saying why."""
    from .recognition import transcribe

    try:
        words = transcribe(samples, whisper_model or None)
        return align_timed_words(samples, words.words, progress), "aligned to the automatic transcript", words.text
    except TranscriptError as exc:
        why = str(exc).split(";")[0]
    except ModelFileError as exc:
        if whisper_model:  # the folder the user chose is broken: say so rather than work around it
            raise
        why = f"no speech recognition model ({str(exc).split(';')[0]})"
    log.warning("lips from recognised phones: %s", why)
    return speech_phones(samples, None, progress), f"recognised (the automatic transcript failed: {why})", ""


def pauses_in_loudness(loudness: np.ndarray, fps: float, min_length: float = PAUSE_S,
                       below_peak_db: float = 35.0) -> list[float]:
    """Seconds at which pauses begin, from the loudness track alone (no phones needed).

    Args:
        loudness: (T,) RMS level in dBFS on the frame grid (:func:`.features.prosody`).
        fps: frames per second.
        min_length: shortest pause, seconds.
        below_peak_db: a frame is quiet this many dB under the recording's loud (95th percentile) level.

    Returns:
        Start times (seconds) of quiet runs of at least ``min_length`` that follow sound.
    """
    quiet = loudness < np.percentile(loudness, 95) - below_peak_db
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    starts, stops = edges[::2], edges[1::2]
    return [start / fps for start, stop in zip(starts, stops) if start > 0 and (stop - start) / fps >= min_length]
