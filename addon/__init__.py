"""The Blender side of emoflame: everything that imports bpy (docs/architecture.md).

Registration only defines classes and properties: torch, numpy-heavy code and the models load
when Generate starts, so enabling the extension is instant.
"""

import bpy

from . import command, exports, generate, operators, panel, preferences, properties

classes = (
    preferences.EmoflamePreferences,
    *properties.classes,
    *operators.classes,
    *exports.classes,
    *panel.classes,
)


def register():
    """Register the classes, the scene properties and the ``blender -c emoflame`` command."""
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register_properties()
    command.register_command()


def unregister():
    """Undo :func:`register` in reverse; a running Generate is cancelled first."""
    for session in list(generate.ACTIVE):
        session.cancel()
    command.unregister_command()
    properties.unregister_properties()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
