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


def load_engine(name: str, settings: Settings, *, jaw: float = 1.0, lips: float = 1.0) -> ExpressionEngine:
    """The engine called ``name``, loaded for ``settings`` (cached per device and weight folders by
    its loader, so a changed setting loads anew).

    Args:
        name: one of ``core.expression.ENGINES``.
        settings: device and weight folders.
        jaw, lips: the phonetic engine's articulation dials in [0, 2] (JALI's jaw and lips).

    Raises:
        SettingsError: an unknown engine, a device that is not there, a dial out of range, or
            dials for the learned engine (which has none).
        ModelFileError: the learned engine's checkpoints are missing or malformed.
    """
    cls = engine_class(name)
    if name == "phonetic":
        return cls(jaw=jaw, lips=lips)
    if (jaw, lips) != (1.0, 1.0):
        raise SettingsError(f"the jaw and lips dials drive the phonetic engine; the {name} engine has none "
                            "(leave them at 1 or choose --engine phonetic)")
    from .learned import load_learned_engine

    return load_learned_engine(settings.torch_device(), settings.hubert_dir, settings.clip_checkpoint,
                               settings.clip_arch)
