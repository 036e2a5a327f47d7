"""Write frames to an MP4 (H.264 video, AAC sound from the recording) with PyAV, atomically.

The one encoder for emoflame's own frame renderers (the portrait animator, the neural renderer).
PyAV (FFmpeg's libraries, bundled in its wheel with libx264 and FFmpeg's AAC encoder) encodes;
the file is written to a hidden temporary name beside ``out`` and renamed onto ``out`` only
once it is complete and reads back with every frame, so an interrupted or failed write
(KeyboardInterrupt included) leaves no partial file and ``out`` as it was.

Frame sizes: H.264 in 4:2:0 needs even sides, so an odd width or height gets one more column or
row, a copy of the last (nothing is cut off).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..core.errors import AudioError, OutputError, SettingsError

CRF = 18
"""x264's constant rate factor: 18 is visually lossless for talking heads (and keeps a still
background still: its blocks are skipped, not re-quantised)."""
PRESET = "veryfast"
AUDIO_RATE = 48000


def write_mp4(frames: Iterable[np.ndarray], fps: float, out: str | os.PathLike, *, audio_path: str | os.PathLike | None = None,
              audio_offset: float = 0.0, force: bool = False, progress: bool = True, total: int | None = None) -> Path:
    """Encode RGB frames (and the recording's sound) into an MP4 at ``out``.

    Args:
        frames: (H, W, 3) uint8 RGB arrays, all of one size (odd sides are padded to even).
        fps: frames per second, in (0, 240].
        out: the .mp4 to write.
        audio_path: the recording (any format FFmpeg reads) to mux as AAC, or None for no sound.
        audio_offset: seconds into the recording at which frame 0 starts (``clip.audio_offset``);
            the sound is cut to the video's length.
        force: replace an existing ``out`` (only at the final rename, once the new file is good).
        progress: show a tqdm progress bar.
        total: the number of frames, for the progress bar (``len(frames)`` when it has one).

    Returns:
        ``out`` as a Path.

    Raises:
        OutputError: ``out`` exists and ``force`` is False (checked before encoding and again at
            the rename), or its folder cannot be written.
        SettingsError: a bad ``fps`` or ``audio_offset``, no frames, or frames that are not
            (H, W, 3) uint8 of one size.
        AudioError: the recording cannot be read.
        RuntimeError: the written file does not read back with every frame (nothing is left).
    """
    import av
    from tqdm import tqdm

    out = Path(out)
    fps = _positive(fps, "fps", 240.0)
    if not (math.isfinite(float(audio_offset)) and audio_offset >= 0):
        raise SettingsError(f"audio_offset is {audio_offset}; give the seconds into the recording, 0 or more")
    if out.exists() and not force:
        raise OutputError(f"{out} exists; pass force=True (--force) to replace it, or choose another name")
    if not out.parent.is_dir():
        raise OutputError(f"the folder {out.parent} does not exist; create it or write elsewhere")
    if audio_path is not None and not Path(audio_path).is_file():
        raise AudioError(f"no recording at {audio_path}; give the audio the clip was made from")
    temporary = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.part{out.suffix or '.mp4'}")
    if total is None and hasattr(frames, "__len__"):
        total = len(frames)
    rate = Fraction(fps).limit_denominator(1001)
    written = 0
    try:
        with av.open(str(temporary), mode="w", format="mp4") as container:
            video = sound = None
            bar = tqdm(total=total, unit="frame", desc="encoding", disable=not progress)
            try:
                for frame in frames:
                    frame = _checked(frame, written)
                    if video is None:  # every stream exists before the first packet (the header)
                        size = frame.shape[:2]
                        video = container.add_stream("libx264", rate=rate)
                        video.height, video.width = size[0] + size[0] % 2, size[1] + size[1] % 2
                        video.pix_fmt = "yuv420p"
                        video.options = {"crf": str(CRF), "preset": PRESET}
                        if audio_path is not None:
                            sound = _Sound(container, Path(audio_path), float(audio_offset))
                    elif frame.shape[:2] != size:
                        raise SettingsError(f"frame {written} is {frame.shape[1]}x{frame.shape[0]}, the first was "
                                            f"{size[1]}x{size[0]}; every frame must have one size")
                    if frame.shape[0] % 2 or frame.shape[1] % 2:
                        frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
                    for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                        container.mux(packet)
                    written += 1
                    if sound is not None:
                        sound.until(written / fps)
                    bar.update()
                if video is None:
                    raise SettingsError("no frames to write; the clip has no frames")
                for packet in video.encode():
                    container.mux(packet)
                if sound is not None:
                    sound.finish(written / fps)
            finally:
                bar.close()
                if sound is not None:
                    sound.close()
        _verify(temporary, written)
        if out.exists() and not force:
            raise OutputError(f"{out} appeared while encoding; pass force=True (--force) to replace it")
        os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return out


def _positive(value, what: str, most: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{what} is {value!r}; give a number") from None
    if not (math.isfinite(number) and 0 < number <= most):
        raise SettingsError(f"{what} is {number}; it must lie in (0, {most:g}]")
    return number


def _checked(frame, index: int) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8 or min(frame.shape[:2]) < 2:
        raise SettingsError(f"frame {index} is {frame.shape} {frame.dtype}; frames must be (H, W, 3) uint8 RGB")
    return np.ascontiguousarray(frame)


class _Sound:
    """The recording from ``offset`` on, resampled and encoded as AAC in step with the video
    (so that the file interleaves), cut at the video's end."""

    def __init__(self, container, path: Path, offset: float):
        import av

        try:
            self.source = av.open(str(path))
        except av.error.FFmpegError as exc:
            raise AudioError(f"cannot read the recording {path} ({exc}); give a WAV, FLAC, MP3 or other audio file") from None
        if not self.source.streams.audio:
            self.source.close()
            raise AudioError(f"{path} has no sound stream; give the recording the clip was made from")
        layout = "mono" if self.source.streams.audio[0].channels == 1 else "stereo"
        self.container = container
        self.stream = container.add_stream("aac", rate=AUDIO_RATE, layout=layout)
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=AUDIO_RATE)
        self.decoded = self.source.decode(audio=0)
        self.skip = int(round(offset * AUDIO_RATE))
        self.pts = 0
        self.layout = layout
        self.pending = np.zeros((1 if layout == "mono" else 2, 0), np.float32)  # decoded, not yet encoded

    def until(self, seconds: float) -> None:
        """Encode the sound up to ``seconds`` after frame 0 (or the recording's end)."""
        keep = int(round(seconds * AUDIO_RATE))
        while self.pts < keep:
            if self.pending.shape[1] == 0 and not self._decode():
                return
            take = self.pending[:, : keep - self.pts]
            self.pending = self.pending[:, take.shape[1]:]
            self._encode(take)

    def _decode(self) -> bool:
        """Move the next decoded chunk, after the offset, into ``pending``; False at the end."""
        while self.decoded is not None:
            try:
                chunks = self.resampler.resample(next(self.decoded))
            except StopIteration:
                self.decoded = None
                chunks = self.resampler.resample(None)
            samples = [c.to_ndarray() for c in chunks]
            if not samples:
                continue
            samples = np.concatenate(samples, axis=1)
            cut = min(self.skip, samples.shape[1])
            self.skip -= cut
            if samples.shape[1] > cut:
                self.pending = samples[:, cut:]
                return True
        return False

    def _encode(self, samples: np.ndarray) -> None:
        import av

        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32), format="fltp", layout=self.layout)
        frame.sample_rate = AUDIO_RATE
        frame.pts = self.pts
        self.pts += samples.shape[1]
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def finish(self, seconds: float) -> None:
        self.until(seconds)
        for packet in self.stream.encode(None):
            self.container.mux(packet)

    def close(self) -> None:
        self.source.close()


def _verify(path: Path, expected: int) -> None:
    """The file opens and holds ``expected`` video frames (its packets, read without decoding)."""
    import av

    try:
        with av.open(str(path)) as container:
            count = sum(1 for packet in container.demux(video=0) if packet.size)
    except av.error.FFmpegError as exc:
        raise RuntimeError(f"the video written to {path} does not read back ({exc})") from None
    if count != expected:
        raise RuntimeError(f"the video written to {path} holds {count} frames, {expected} were encoded")
