"""AnimationClip: the one object that crosses every boundary (core → addon, renderers, disk)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


@dataclass
class AnimationClip:
    """Frame-wise emotional facial animation on the semantic channels.

    Attributes:
        fps: frames per second of every per-frame array.
        intensity: (T,) float32 in [0, 1], the frame-wise emotion intensity.
        emotion_latent: (T, D) float32, the learned engine's emotion latent per frame: the emotion
            adapter's feature re-normalised to the intensity's norm (Xu et al., Sec. 3.3), D = 896.
            D is 0 for engines without a latent: the phonetic engine's emotion is a FACS
            direction on the channels themselves (``core.emotion.facs``), not a latent.
        weights: (T, K) float32 expression weights, mostly in [0, 1], one column per channel.
        channels: (K,) channel names (ARKit names, see ``core.channels``), the columns of
            ``weights``.
        jaw_pose: (T, 3) float32 axis-angle jaw rotation in radians, or None when the jaw is
            carried by the ``jawOpen`` channel alone.
        emotion: the words the user asked for ("happy", "quietly furious").
        audio_path: the recording the clip was made from, or "" if none.
        audio_offset: seconds into the recording at which frame 0 starts.
        meta: free-form provenance (engine, seed, versions), JSON-serialisable.

    Raises:
        ValueError: on construction, if the arrays disagree in length or shape.
    """

    fps: float
    intensity: np.ndarray
    emotion_latent: np.ndarray
    weights: np.ndarray
    channels: tuple[str, ...]
    jaw_pose: np.ndarray | None = None
    emotion: str = "neutral"
    audio_path: str = ""
    audio_offset: float = 0.0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fps = float(self.fps)
        self.intensity = np.asarray(self.intensity, dtype=np.float32).reshape(-1)
        self.weights = np.asarray(self.weights, dtype=np.float32)
        self.channels = tuple(str(c) for c in self.channels)
        n = len(self.intensity)
        latent = np.asarray(self.emotion_latent, dtype=np.float32)
        self.emotion_latent = latent.reshape(n, -1) if latent.size else np.zeros((n, 0), np.float32)
        if self.fps <= 0:
            raise ValueError(f"AnimationClip fps must be positive, got {self.fps}")
        if self.weights.shape != (n, len(self.channels)):
            raise ValueError(
                f"AnimationClip weights have shape {self.weights.shape}, expected "
                f"({n}, {len(self.channels)}) = (frames of intensity, number of channels)"
            )
        if self.jaw_pose is not None:
            self.jaw_pose = np.asarray(self.jaw_pose, dtype=np.float32)
            if self.jaw_pose.shape != (n, 3):
                raise ValueError(f"AnimationClip jaw_pose has shape {self.jaw_pose.shape}, expected ({n}, 3)")

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
        """Write the clip to ``path`` (.npz, no pickled objects) and return the path."""
        path = Path(path)
        header = {
            "format_version": FORMAT_VERSION, "fps": self.fps, "channels": list(self.channels),
            "emotion": self.emotion, "audio_path": self.audio_path,
            "audio_offset": self.audio_offset, "meta": self.meta,
        }
        arrays = {"intensity": self.intensity, "emotion_latent": self.emotion_latent, "weights": self.weights}
        if self.jaw_pose is not None:
            arrays["jaw_pose"] = self.jaw_pose
        with open(path, "wb") as f:
            np.savez_compressed(f, header=np.array(json.dumps(header)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "AnimationClip":
        """Read a clip written by :meth:`save`.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if the file is not an AnimationClip .npz or is from a newer format.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no AnimationClip at {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                arrays = {k: data[k] for k in data.files if k != "header"}
        except (KeyError, ValueError, OSError) as exc:
            raise ValueError(f"{path} is not an AnimationClip file written by emoflame ({exc})") from exc
        if header.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path} was written by a newer emoflame (format {header['format_version']}); upgrade emoflame")
        return cls(
            fps=header["fps"], intensity=arrays["intensity"], emotion_latent=arrays["emotion_latent"],
            weights=arrays["weights"], channels=tuple(header["channels"]), jaw_pose=arrays.get("jaw_pose"),
            emotion=header["emotion"], audio_path=header["audio_path"],
            audio_offset=header["audio_offset"], meta=header.get("meta", {}),
        )
