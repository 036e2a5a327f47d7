"""Where each expression engine is found and loaded, by name (``core.expression.ENGINES``)."""

from __future__ import annotations

from ..errors import SettingsError
from ..settings import Settings
from . import ENGINES
from .engine import ExpressionEngine


def engine_class(name: str) -> type:
    """The class of the engine called ``name`` (its ``needs_phones`` and ``free_text``), without
    loading any weights.

    Raises:
        SettingsError: an unknown engine.
    """
    if name == "phonetic":
        from .phonetic import PhoneticEngine

        return PhoneticEngine
    if name == "learned":
        from .learned import LearnedEngine

        return LearnedEngine
    raise SettingsError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")


def load_engine(name: str, settings: Settings) -> ExpressionEngine:
    """The engine called ``name``, loaded for ``settings`` (cached per device and weight folders by
    its loader, so a changed setting loads anew).

    Raises:
        SettingsError: an unknown engine, or a device that is not there.
        ModelFileError: the learned engine's checkpoints are missing or malformed.
    """
    cls = engine_class(name)
    if name != "learned":
        return cls()  # nothing to load
    from .learned import load_learned_engine

    return load_learned_engine(settings.torch_device(), settings.hubert_dir, settings.clip_checkpoint,
                               settings.clip_arch)
