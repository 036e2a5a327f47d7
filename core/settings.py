"""Run-time settings of the core: where the learned models run and where optional weights live.

One typed, immutable object passed to :func:`core.pipeline.animate` (and through the worker's
request), never read from a running Blender's ``os.environ``: the command line and the Python
API start from the environment (:meth:`Settings.from_environment`), the add-on from its
preferences. Every loader that depends on a setting takes it as an argument, so its cache is keyed
on it and a changed preference takes effect on the next run.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .errors import SettingsError

DEVICES = ("auto", "cpu", "cuda")
"""``auto``: CUDA when torch sees a GPU, else the CPU."""

ENVIRONMENT = {
    "device": "EMOFLAME_DEVICE",
    "hubert_dir": "EMOFLAME_HUBERT",
    "clip_checkpoint": "EMOFLAME_CLIP",
    "clip_arch": "EMOFLAME_CLIP_ARCH",
    "whisper_model": "EMOFLAME_WHISPER",
}
"""The environment variable behind each setting, for the command line and the Python API."""


@dataclass(frozen=True)
class Settings:
    """Where the learned models run and where optional weights are.

    Attributes:
        device: ``auto``, ``cpu`` or ``cuda`` (:data:`DEVICES`).
        hubert_dir: a local HuBERT folder (``from_pretrained`` layout), or "" for none.
        clip_checkpoint: a local open_clip checkpoint for the CLIP text encoder, or "".
        clip_arch: the open_clip architecture of that checkpoint.
        whisper_model: a local faster-whisper model folder for automatic transcripts, or "" for the
            bundled Whisper tiny.en.

    Raises:
        SettingsError: on construction, for an unknown device or a value that is not text.
    """

    device: str = "auto"
    hubert_dir: str = ""
    clip_checkpoint: str = ""
    clip_arch: str = "ViT-B-32"
    whisper_model: str = ""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, str):
                raise SettingsError(f"the setting {field.name} is {value!r}; give it as text")
        object.__setattr__(self, "device", self.device.strip().lower())
        if self.device not in DEVICES:
            raise SettingsError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)} "
                                f"(${ENVIRONMENT['device']} or the add-on's Device preference)")

    @classmethod
    def from_environment(cls, environ: dict | None = None) -> "Settings":
        """The settings that ``$EMOFLAME_DEVICE``, ``$EMOFLAME_HUBERT``, ``$EMOFLAME_CLIP``,
        ``$EMOFLAME_CLIP_ARCH`` and ``$EMOFLAME_WHISPER`` give (defaults where unset).

        Raises:
            SettingsError: an unknown ``$EMOFLAME_DEVICE``.
        """
        environ = os.environ if environ is None else environ
        return cls(**{name: environ[var] for name, var in ENVIRONMENT.items() if environ.get(var)})

    @classmethod
    def from_dict(cls, values: dict) -> "Settings":
        """Rebuild settings from :meth:`to_dict` (the worker's request).

        Raises:
            SettingsError: an unknown key, or a value that is not text.
        """
        if not isinstance(values, dict):
            raise SettingsError(f"settings must be a mapping of names to text, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"unknown settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict:
        """The settings as plain text values (JSON-ready)."""
        return dataclasses.asdict(self)

    def torch_device(self) -> str:
        """``'cpu'`` or ``'cuda'``: :attr:`device` with ``auto`` resolved (imports torch).

        Raises:
            SettingsError: ``cuda`` asked for and torch sees no GPU.
        """
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise SettingsError(f"device 'cuda' asked for but torch sees no GPU; set {ENVIRONMENT['device']}=cpu "
                                "or auto (or the add-on's Device preference)")
        return self.device
