"""AnimationClip: the one object that crosses every boundary (core → addon, renderers, disk)."""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ClipError

FORMAT_VERSION = 2
"""2 added ``head_pose`` and ``emotion_track``; version 1 files load with neither."""

MAX_FPS = 240.0
MAX_SECONDS = 3600.0
MAX_LATENT = 4096
MAX_FILE_BYTES = 2 << 30
"""Bytes a clip file may hold once decompressed: a 1-hour learned-engine take at 60 fps is 0.8 GB."""
_HEADER_BYTES = 1 << 20


@dataclass
class AnimationClip:
    """Frame-wise emotional facial animation on the semantic channels.

    Attributes:
        fps: frames per second of every per-frame array, in (0, 240].
        intensity: (T,) float32 in [0, 1], the frame-wise emotion intensity.
        emotion_latent: (T, D) float32, the learned engine's emotion latent per frame: the emotion
            adapter's feature re-normalised to the intensity's norm (Xu et al., Sec. 3.3), D = 896.
            D is 0 for engines without a latent: the phonetic engine's emotion is a FACS
            direction on the channels themselves (``core.emotion.facs``), not a latent.
        weights: (T, K) float32 expression weights, mostly in [0, 1], one column per channel.
        channels: (K,) channel names (ARKIT names, see ``core.channels``), the columns of
            ``weights``.
        jaw_pose: (T, 3) float32 axis-angle jaw rotation in radians, or None when the jaw is
            carried by the ``jawOpen`` channel alone.
        head_pose: (T, 3) float32 axis-angle rotation of the head about FLAME's neck joint, radians,
            in FLAME's frame (y up, +z forward, +x the subject's left), relative to rest; or None
            for a still head.
        emotion: the words the user asked for ("happy", "quietly furious"); with an emotion
            track, its first emotion.
        emotion_track: ``((words, start seconds), ...)`` when the emotion changes within the take,
            each holding until the next, starts increasing from 0; empty for one emotion.
        audio_path: the recording the clip was made from, or "" if none.
        audio_offset: seconds into the recording at which frame 0 starts.
        meta: free-form provenance (engine, seed, versions), JSON-serialisable.

    Raises:
        ClipError: on construction, if a number is not finite or out of range, or the arrays
            disagree in length or shape (a ``ValueError``).
    """

    fps: float
    intensity: np.ndarray
    emotion_latent: np.ndarray
    weights: np.ndarray
    channels: tuple[str, ...]
    jaw_pose: np.ndarray | None = None
    head_pose: np.ndarray | None = None
    emotion: str = "neutral"
    emotion_track: tuple[tuple[str, float], ...] = ()
    audio_path: str = ""
    audio_offset: float = 0.0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fps = _number(self.fps, "fps")
        if not 0 < self.fps <= MAX_FPS:
            raise ClipError(f"AnimationClip fps is {self.fps}; it must lie in (0, {MAX_FPS:g}]")
        self.audio_offset = _number(self.audio_offset, "audio_offset")
        if self.audio_offset < 0:
            raise ClipError(f"AnimationClip audio_offset is {self.audio_offset} s; it must be 0 or more")
        self.intensity = _finite(self.intensity, "intensity").reshape(-1)
        n = len(self.intensity)
        if np.any((self.intensity < 0) | (self.intensity > 1)):
            raise ClipError("AnimationClip intensity leaves [0, 1]; every frame's intensity is a fraction")
        self.channels = tuple(str(c) for c in self.channels)
        if len(set(self.channels)) != len(self.channels):
            raise ClipError("AnimationClip channels repeat a name; each column of weights needs its own")
        self.weights = _finite(self.weights, "weights")
        if self.weights.shape != (n, len(self.channels)):
            raise ClipError(
                f"AnimationClip weights have shape {self.weights.shape}, expected "
                f"({n}, {len(self.channels)}) = (frames of intensity, number of channels)"
            )
        latent = _finite(self.emotion_latent, "emotion_latent")
        self.emotion_latent = latent.reshape(n, -1) if latent.size else np.zeros((n, 0), np.float32)
        for name in ("jaw_pose", "head_pose"):
            pose = getattr(self, name)
            if pose is not None:
                pose = _finite(pose, name)
                if pose.shape != (n, 3):
                    raise ClipError(f"AnimationClip {name} has shape {pose.shape}, expected ({n}, 3)")
                setattr(self, name, pose)
        self.emotion = str(self.emotion)
        self.emotion_track = tuple((str(words), _number(start, "an emotion track time"))
                                   for words, start in self.emotion_track)
        starts = [start for _, start in self.emotion_track]
        if starts and (starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:]))):
            raise ClipError(f"AnimationClip emotion_track starts at {starts}; it must start at 0 s and increase")

    @property
    def num_frames(self) -> int:
        return len(self.intensity)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_frames / self.fps

    def scene_frames(self, frame_start: int = 1) -> np.ndarray:
        """(T,) int64 Blender frame of each clip frame when the recording starts on scene frame
        ``frame_start``: frame i, at ``audio_offset + i / fps`` seconds into the audio, lands on
        ``frame_start + round(audio_offset × fps) + i``."""
        return frame_start + round(self.audio_offset * self.fps) + np.arange(self.num_frames, dtype=np.int64)

    def channel(self, name: str) -> np.ndarray:
        """(T,) weights of one channel; KeyError names the channels there are."""
        try:
            return self.weights[:, self.channels.index(name)]
        except ValueError:
            raise KeyError(f"channel {name!r} is not in this clip; it has {', '.join(self.channels)}") from None

    def save(self, path: str | Path) -> Path:
        """Write the clip to ``path`` (.npz, no pickled objects) and return the path.

        Raises:
            OSError: the file cannot be written (the caller writes to a temporary name and renames).
        """
        path = Path(path)
        header = {
            "format_version": FORMAT_VERSION, "fps": self.fps, "channels": list(self.channels),
            "emotion": self.emotion, "emotion_track": [list(entry) for entry in self.emotion_track],
            "audio_path": self.audio_path, "audio_offset": self.audio_offset, "meta": self.meta,
        }
        arrays = {"intensity": self.intensity, "emotion_latent": self.emotion_latent, "weights": self.weights}
        for name in ("jaw_pose", "head_pose"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        with open(path, "wb") as f:
            np.savez_compressed(f, header=np.array(json.dumps(header)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "AnimationClip":
        """Read a clip written by :meth:`save`, within bounds: every array's size is read from its
        header and checked (against :data:`MAX_FILE_BYTES` and the clip's limits) before anything
        is decompressed, so a damaged or hostile file cannot make it allocate without bound.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ClipError: if ``path`` is a folder, or the file is not an AnimationClip .npz, is damaged, too large, or from a
                newer format (the message says which).
        """
        path = Path(path)
        if path.is_dir():
            raise ClipError(f"{path} is a folder; give the AnimationClip's .npz file in it")
        if not path.is_file():
            raise FileNotFoundError(f"no AnimationClip at {path}")
        try:
            with zipfile.ZipFile(path) as archive:
                header, arrays = _read_archive(archive, path)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, ClipError):
                raise
            raise ClipError(f"{path} is not an AnimationClip file written by emoflame, or it is damaged ({exc}); "
                            "write it again with emoflame") from None
        try:
            return cls(
                fps=header["fps"], intensity=arrays["intensity"], emotion_latent=arrays["emotion_latent"],
                weights=arrays["weights"], channels=tuple(header["channels"]), jaw_pose=arrays.get("jaw_pose"),
                head_pose=arrays.get("head_pose"), emotion=header["emotion"],
                emotion_track=tuple(tuple(entry) for entry in header.get("emotion_track", ())),
                audio_path=header["audio_path"], audio_offset=header["audio_offset"], meta=header.get("meta", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ClipError):
                raise ClipError(f"{path}: {exc}") from None
            raise ClipError(f"{path} lacks or garbles the clip's {exc}; write it again with emoflame") from None


def _read_archive(archive: zipfile.ZipFile, path: Path) -> tuple[dict, dict]:
    """The header (a dict) and the arrays of an open clip archive, sizes checked before reading."""
    members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    if "header" not in members:
        raise ClipError(f"{path} is not an AnimationClip file written by emoflame (no header)")
    if sum(info.file_size for info in members.values()) > MAX_FILE_BYTES or members["header"].file_size > _HEADER_BYTES:
        raise ClipError(f"{path} holds more than an AnimationClip can hold ({MAX_FILE_BYTES >> 20} MiB "
                        "decompressed): it is damaged or not a clip")
    header = json.loads(str(_read_array(archive, members["header"], path)))
    if not isinstance(header, dict):
        raise ClipError(f"{path} has a header of type {type(header).__name__}; it is not an AnimationClip file")
    version = header.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ClipError(f"{path} was written by a newer emoflame (format {version}); upgrade emoflame")
    arrays = {}
    for name in ("intensity", "emotion_latent", "weights", "jaw_pose", "head_pose"):
        if name in members:
            arrays[name] = _read_array(archive, members[name], path)
    return header, arrays


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """One ``.npy`` member, read only after its declared dtype and shape are checked against the
    clip's limits and the member's real size (no object arrays, nothing pickled)."""
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ClipError(f"{path}: {info.filename} is a .npy of version {version}, which emoflame does not write")
        shape, _, dtype = read_header[version](stream)
    if dtype.hasobject or dtype.kind not in "fU" or len(shape) > 2:
        raise ClipError(f"{path}: {info.filename} is a {dtype} array of {len(shape)} dimensions; a clip holds "
                        "float arrays and a text header")
    frames = shape[0] if shape else 1
    columns = shape[1] if len(shape) == 2 else 1
    if frames > MAX_SECONDS * MAX_FPS or columns > MAX_LATENT:
        raise ClipError(f"{path}: {info.filename} claims shape {shape}, more than a clip of an hour at "
                        f"{MAX_FPS:g} fps holds")
    if math.prod(shape) * dtype.itemsize > info.file_size:
        raise ClipError(f"{path}: {info.filename} claims shape {shape} but holds {info.file_size} bytes: "
                        "the file is damaged")
    with archive.open(info) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


def _number(value, what: str) -> float:
    try:
        if isinstance(value, (str, bytes, bool)):  # float("25") would pass text for a number
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ClipError(f"AnimationClip {what} is {value!r}; give a number") from None
    if not math.isfinite(number):
        raise ClipError(f"AnimationClip {what} is {number}; give a finite number")
    return number


def _finite(values, what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise ClipError(f"AnimationClip {what} is not an array of numbers") from None
    if not np.all(np.isfinite(array)):
        raise ClipError(f"AnimationClip {what} holds NaN or infinite values; every value must be finite")
    return array
