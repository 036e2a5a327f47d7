"""Read any common audio file as mono float32 at 16 kHz, refusing what cannot be animated.

The file is decoded block by block (the channels averaged, each block resampled to 16 kHz by
one soxr stream), so memory holds the 16 kHz result and one block, whatever the file's rate,
channel count or header claims. What the header says is checked before anything is decoded
(sample rate, length, and length against the file's size where the format bounds it); every
decoded block is checked to hold finite numbers at a plausible scale.

Non-finite samples (NaN, infinity) are refused rather than repaired: they mean a damaged file
or a broken export, Blender's sound strip would play the same file, and any repair (zeros,
interpolation) would animate a recording that nobody has heard.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
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

MIN_SAMPLE_RATE = 4_000
"""Hz. Below this no speech is left (telephone speech is 8 kHz); a lower rate in a header is
a damaged or mislabelled file (a 2 Hz header turns 1 s of audio into an hour)."""

MAX_SAMPLE_RATE = 768_000
"""Hz. The highest rate audio interfaces record at; a higher one is a damaged header."""

MAX_PEAK = 1000.0
"""Largest sample magnitude accepted (60 dB above full scale). Floating-point files may go
somewhat above 1.0; values like 32767 are integer samples stored as floats at the wrong scale."""

BLOCK_VALUES = 1 << 22
"""Decoded values (frames × channels) per block: 16 MiB of float32."""

_FLAC_MAX_BLOCK = 65_535
_FLAC_MIN_FRAME_BYTES = 10
"""A FLAC frame codes at most 65,535 samples per channel in at least 10 bytes (header with a
16-bit block size, a constant subframe per channel, CRC), so a real file of F frames has at
least ``F / 65535 × 10`` bytes: a smaller one has a header that lies about its length."""

_UNKNOWN_LENGTH = 1 << 62
"""libsndfile reports a stream of unknown length (a FLAC written while recording) as 2⁶³ − 1 frames."""

_DAMAGED_HEADER = ("{path}: its header claims {claim} but the file holds only {size}, so the header is damaged or "
                   "forged; export the recording again (e.g. ffmpeg -i {name} {target})")


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a wav, flac, ogg or mp3 file at any sample rate, mono or multichannel.

    Channels are averaged to mono and the signal is resampled to :data:`SAMPLE_RATE` with soxr
    (its default high quality), block by block.

    Args:
        path: the recording.

    Returns:
        ``(samples, SAMPLE_RATE)``: samples (N,) float32 at 16 kHz, in [-1, 1] for integer
        formats (floating-point files keep their scale, at most :data:`MAX_PEAK`).

    Raises:
        AudioError: the file is missing, not a regular file, unreadable, headerless raw PCM, not
            audio, has a header that is damaged (a sample rate outside 4–768 kHz, a length its
            size cannot hold), is over an hour, fails to decode, holds NaN or infinite samples
            or samples beyond :data:`MAX_PEAK`, is empty, or is all silent; the message names
            the file, the problem and what to do.
    """
    path = Path(path)
    _check_file(path)
    info = _header(path)
    _check_header(path, info)
    samples = _decode(path, info)
    if len(samples) < MIN_DURATION * SAMPLE_RATE:
        raise AudioError(f"{path} is empty ({len(samples) / SAMPLE_RATE:.3f} s of audio); give a recording of speech")
    level = peak_dbfs(samples)
    if level < SILENCE_DBFS:
        raise AudioError(f"{path} is silent (loudest 10 ms at {level:.0f} dBFS); check the recording or its gain")
    return samples, SAMPLE_RATE


def _check_file(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AudioError(f"audio file not found: {path} (check the path)") from None
    except OSError as exc:
        raise AudioError(f"cannot open the audio file {path} ({exc.strerror}); check the path and its permissions") from None
    if stat.S_ISDIR(mode):
        raise AudioError(f"{path} is a folder; give the audio file itself (wav, flac, ogg or mp3)")
    if not stat.S_ISREG(mode):
        raise AudioError(f"{path} is not a regular file (a device, pipe or socket); give an audio file on disk")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise AudioError(f"cannot open the audio file {path} ({exc.strerror}); check its permissions") from None


@contextlib.contextmanager
def _decoder_messages():
    """Collect what the decoders print on the process's stderr (libmpg123 writes "error: Giving up
    searching valid MPEG header…" straight to file descriptor 2) instead of letting it out: a
    refusal is one line that says what is wrong. Yields a list that holds the first line they
    wrote once the block ends."""
    collected: list[str] = []
    for stream in (sys.stdout, sys.stderr):  # what Python holds in its buffers goes out first, not here
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield collected
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield collected
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = [line.strip() for line in capture.read(4096).decode("utf-8", "replace").splitlines() if line.strip()]
            collected.extend(lines[:1])


def _header(path: Path):
    try:
        with _decoder_messages() as said:
            return soundfile.info(str(path))
    except TypeError:
        # soundfile takes a .raw file as headerless PCM and asks the caller for its layout.
        raise AudioError(
            f"{path} is headerless raw PCM: nothing in it says its sample rate, channels or sample format; "
            f"convert it to wav giving them, e.g. ffmpeg -f s16le -ar 16000 -ac 1 -i {path.name} {_wav_name(path)}"
        ) from None
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        # libsndfile says "File does not exist or is not a regular file" when libmpg123 gives up.
        why = _decoder_line(said) or _first_line(exc)
        raise AudioError(
            f"cannot read {path} as audio ({why}); use wav, flac, ogg or mp3 "
            f"(convert others with: ffmpeg -i {path.name} {_wav_name(path)})"
        ) from None


def _check_header(path: Path, info) -> None:
    rate = info.samplerate
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{path} declares a sample rate of {rate} Hz, outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz: its header "
            f"is damaged or wrong; export the recording again at 16000 Hz or more"
        )
    if not 0 < info.frames < _UNKNOWN_LENGTH:
        return  # the decoder finds the length (and stops past an hour)
    size = path.stat().st_size
    if info.format == "FLAC" and size < info.frames / _FLAC_MAX_BLOCK * _FLAC_MIN_FRAME_BYTES:
        channels = f"{info.channels} channel" + ("s" if info.channels != 1 else "")
        raise AudioError(_DAMAGED_HEADER.format(
            path=path, name=path.name, target=_wav_name(path), size=_bytes(size),
            claim=f"{info.frames:,} frames × {channels} ({info.frames / rate:,.0f} s)"))
    if info.frames / rate > MAX_DURATION:
        raise AudioError(_too_long(path, info.frames / rate))


def _decode(path: Path, info) -> np.ndarray:
    rate, channels = info.samplerate, info.channels
    limit = int(MAX_DURATION * rate) + rate  # a header may understate the length: the data decides
    known = info.frames if 0 <= info.frames < _UNKNOWN_LENGTH else 60 * rate
    expected = int(np.ceil(min(known, limit) * SAMPLE_RATE / rate)) + 64
    out = np.empty(expected, np.float32)
    filled = decoded = 0
    stream = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
    block = max(1024, BLOCK_VALUES // max(1, channels))
    try:
        with _decoder_messages() as said, soundfile.SoundFile(str(path)) as audio:
            while True:
                values = audio.read(block, dtype="float32", always_2d=True)
                last = len(values) < block
                _check_values(path, values, decoded, rate)
                decoded += len(values)
                if decoded > limit:
                    raise AudioError(_too_long(path, decoded / rate))
                mono = values[:, 0] if values.shape[1] == 1 else values.mean(axis=1)
                if stream is not None:
                    mono = stream.resample_chunk(mono, last=last)
                if filled + len(mono) > len(out):
                    out = np.resize(out, max(2 * len(out), filled + len(mono)))
                out[filled: filled + len(mono)] = mono
                filled += len(mono)
                if last:
                    break
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise AudioError(f"cannot decode {path} after {decoded / rate:.1f} s ({_decoder_line(said) or _first_line(exc)}); "
                         f"is the file complete? Export it again") from None
    # A header that overstated the length leaves most of the buffer unused: give it back.
    return out[:filled].copy() if filled < len(out) // 2 else out[:filled]


def _check_values(path: Path, values: np.ndarray, offset: int, rate: int) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        bad = ~finite.all(axis=1)
        first = (offset + int(np.argmax(bad))) / rate
        raise AudioError(
            f"{path} holds samples that are not numbers (NaN or infinite), the first at {first:.3f} s: the file is "
            f"damaged or was exported from a broken effect chain; fix or re-export it (as 16-bit PCM wav, say)"
        )
    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak > MAX_PEAK:
        raise AudioError(
            f"{path} has samples of magnitude {peak:.3g} ({20 * np.log10(peak):.0f} dB above full scale): a "
            f"floating-point file at the wrong scale (integer sample values stored as floats?); normalise it to "
            f"[-1, 1] and export it again"
        )


def _too_long(path: Path, seconds: float) -> str:
    return (f"{path} is {seconds / 60:.0f} minutes long; emoflame animates up to an hour at a time: split it into "
            f"lines of dialogue")


def _wav_name(path: Path) -> str:
    return f"{path.stem}_fixed.wav" if path.suffix.lower() == ".wav" else f"{path.stem}.wav"


def _bytes(size: int) -> str:
    return f"{size:,} bytes" if size < 10_000 else f"{size / 1024:,.0f} KiB"


def _decoder_line(said: list[str]) -> str:
    """The decoder's own message without its source location ("[src/libmpg123/parse.c:…] error: ")."""
    if not said:
        return ""
    text = said[0].split("] ", 1)[-1] if said[0].startswith("[") else said[0]
    return text.removeprefix("error: ").strip()[:200]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def peak_dbfs(samples: np.ndarray, window: int = SAMPLE_RATE // 100) -> float:
    """Level of the loudest ``window`` samples (default 10 ms), RMS in dB full scale.

    Args:
        samples: (N,) float mono.
        window: samples per window; a recording shorter than one window is one window.

    Returns:
        dB full scale (at least -200).
    """
    n = len(samples) // window * window or len(samples)
    if not n:
        return -200.0
    width = min(window, n)
    step = width * max(1, (1 << 20) // width)  # float64 squares of ~1 M samples at a time, not of the recording
    loudest = max(
        np.sqrt(np.mean(samples[i: min(i + step, n)].reshape(-1, width).astype(np.float64) ** 2, axis=1)).max()
        for i in range(0, n, step)
    )
    return float(20 * np.log10(max(loudest, 1e-10)))
