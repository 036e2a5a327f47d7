"""One take's request: a recording, its settings and the files to write. What ``emoflame animate``
runs once and ``emoflame batch`` runs per manifest line, through the same function (the writer the
command line gives: ``cli.write_take``)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

KINDS = {
    "blend": ".blend", "clip": ".npz", "glb": ".glb", "gltf": ".gltf", "fbx": ".fbx", "usd": ".usd",
    "usdc": ".usdc", "usda": ".usda", "csv": ".csv", "flame": ".flame.npz", "mp4": ".mp4",
}
"""Output kinds and the suffix a batch gives each (``clip`` is the AnimationClip, ``flame`` the FLAME
parameters, ``csv`` the Live Link Face CSV)."""


@dataclass(frozen=True)
class Output:
    """A file to write: ``path`` (absolute) and its ``kind`` (a key of :data:`KINDS`)."""

    path: Path
    kind: str


@dataclass(frozen=True)
class TakeRequest:
    """Everything one take needs (picklable: it crosses into worker processes).

    Attributes:
        audio: the recording (absolute path).
        outputs: the files to write, in the order they are printed and reported.
        emotion: an emotion, a synonym, free text or an emotion track ("neutral@0,angry@2.5").
        intensity: ``"audio"``, a constant in [0, 1] or a curve file's path.
        transcript: the words, a text file's path, or None (the engine's default).
        fps, seed, engine, head_motion: as ``core.pipeline.animate``.
        transition: seconds one emotion of a track eases into the next, or None for animate's default.
        jaw, lips: the phonetic engine's articulation dials in [0, 2], as ``core.pipeline.animate``.
        flame_model: a user's FLAME model file, or None for the default avatar.
        render_engine, resolution: for an ``mp4`` output (Blender's engines, or ``portrait`` /
            ``neural`` from ``portrait``); resolution None for the engine's default.
        portrait: the photo a photo engine animates (a path), "default" for the shipped one, or None.
        progress: show progress bars on stderr.
    """

    audio: Path
    outputs: tuple[Output, ...]
    emotion: str = "neutral"
    intensity: str | float = "audio"
    transcript: str | None = None
    fps: float = 25.0
    seed: int | str = 0
    engine: str = "phonetic"
    head_motion: bool = True
    transition: float | None = None
    jaw: float = 1.0
    lips: float = 1.0
    flame_model: Path | None = None
    render_engine: str = "workbench"
    resolution: int | None = None
    portrait: Path | str | None = None
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def inputs(self) -> list[Path]:
        """The files this take reads, which no output may overwrite: the audio, the FLAME model,
        and the transcript, intensity curve or emotion track where they name an existing file."""
        found = [Path(self.audio)] + ([Path(self.flame_model)] if self.flame_model else [])
        found += [Path(self.portrait)] if self.portrait not in (None, "default") else []
        for value in (self.transcript, self.intensity, self.emotion):
            if isinstance(value, (str, os.PathLike)) and str(value).strip() and len(str(value)) < 4096:
                try:
                    path = Path(os.path.expanduser(str(value)))
                    if path.is_file():
                        found.append(path)
                except (OSError, ValueError):
                    pass
        return found

    def settings(self) -> dict:
        """The settings that decide the take's content, as JSON-ready values (for :func:`take_key`)."""
        return {
            "emotion": self.emotion, "intensity": self.intensity, "transcript": self.transcript, "fps": self.fps,
            "seed": str(self.seed), "engine": self.engine, "head_motion": self.head_motion, "transition": self.transition,
            "jaw": self.jaw, "lips": self.lips, "render_engine": self.render_engine, "resolution": self.resolution, "portrait": str(self.portrait),
            "outputs": sorted(o.kind for o in self.outputs), **self.extra,
        }


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def take_key(request: TakeRequest, version: str) -> str:
    """A digest of what makes a take what it is: the audio's bytes, every input file's bytes, the
    settings and emoflame's version. Equal keys mean a finished take need not be made again.

    Raises:
        OSError: an input cannot be read.
    """
    inputs = {str(p): file_sha256(p) for p in request.inputs()}
    text = json.dumps({"version": version, "inputs": inputs, "settings": request.settings()}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()
