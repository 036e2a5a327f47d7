"""emoflame: speech to emotional, lip-synced facial animation for FLAME heads.

One tree, two front doors (docs/architecture.md): Blender loads this folder as an extension and calls
:func:`register`; Python users ``import emoflame``. Nothing heavy (torch, bpy) is imported
here, so enabling the extension and importing the package are instant.
"""

from .core.lazy import lazy_attributes

__version__ = "0.1.0"

# Public name → module that defines it, imported on first use.
_PUBLIC = {
    "AnimationClip": ".core.clip",
    "ARKIT_CHANNELS": ".core.channels",
    "animate": ".core.pipeline",
    "default_avatar": ".core.flame.avatar",
    "load_flame_model": ".core.flame.model",
    "render_portrait": ".renderers.portrait.render",
}

__all__ = sorted(_PUBLIC)

__getattr__ = lazy_attributes(__name__, _PUBLIC)


def register():
    """Blender extension entry point."""
    from .addon import register as _register

    _register()


def unregister():
    """Blender extension exit point."""
    from .addon import unregister as _unregister

    _unregister()
