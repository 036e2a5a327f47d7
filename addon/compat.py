"""Where Blender 4.5 LTS and 5.0 differ in the API emoflame uses, and nothing else.

Everything else (slotted Actions, channelbags, ``sequence_editor.strips``/``strips_all``, sound
strips, shape keys, colour attributes, ``register_cli_command``, the extension builder) is the
same in both and is called directly. Each difference below was found by running the tests under
both ``bpy`` 4.5.15 and 5.0.1 (``.ci/blender45``); the 5.0 branch is what the code did before 4.5
was supported.
"""

from __future__ import annotations

import bpy

#: Blender 5.0 renamed EEVEE Next back to EEVEE; 4.5 only knows ``BLENDER_EEVEE_NEXT``.
EEVEE_ENGINE = "BLENDER_EEVEE" if bpy.app.version >= (5, 0, 0) else "BLENDER_EEVEE_NEXT"

# 4.5's ActionChannelbagFCurves.new takes (data_path, index) only: no group_name.
_FCURVE_NEW_TAKES_GROUP = bpy.app.version >= (5, 0, 0)


def node_tree(id_block) -> bpy.types.NodeTree:
    """The shader node tree of a Material or World, with its default nodes.

    Blender 5.0 gives every new Material and World a node tree (``use_nodes`` is always on);
    4.5 makes them without one (``node_tree`` is None until ``use_nodes`` is set), which then
    holds the same default nodes ("Principled BSDF" + "Material Output", "Background" +
    "World Output").
    """
    if id_block.node_tree is None:
        id_block.use_nodes = True
    return id_block.node_tree


def new_fcurve(channelbag, data_path: str, index: int = 0, group_name: str = "") -> bpy.types.FCurve:
    """A new F-curve in an Action's channelbag, in the F-curve group ``group_name`` if given.

    5.0 takes ``group_name`` in ``fcurves.new``; 4.5 refuses the argument, so the group is
    found or made in ``channelbag.groups`` and assigned, which gives the same channel groups.
    """
    if _FCURVE_NEW_TAKES_GROUP:
        return channelbag.fcurves.new(data_path, index=index, group_name=group_name)
    fcurve = channelbag.fcurves.new(data_path, index=index)
    if group_name:
        fcurve.group = channelbag.groups.get(group_name) or channelbag.groups.new(group_name)
    return fcurve


def assigned_channelbag(animation_data):
    """The channelbag (its ``fcurves``) of the Action and slot assigned in ``animation_data``,
    or None when there is none.

    Same call on both versions: 5.0's ``animdata_get_channelbag_for_assigned_slot`` is this
    one-liner, and 4.5 lacks it.
    """
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    if animation_data is None:
        return None
    return action_get_channelbag_for_slot(animation_data.action, animation_data.action_slot)


def set_movie_output(image_settings) -> None:
    """Make the render output a movie (FFmpeg), before its container and codecs are set.

    5.0 splits the output into a media type and a format: ``media_type = 'VIDEO'`` comes first
    (setting ``file_format = 'FFMPEG'`` raises there). 4.5 has no ``media_type``: FFmpeg is one
    of the file formats.
    """
    if hasattr(image_settings, "media_type"):
        image_settings.media_type = "VIDEO"
    else:
        image_settings.file_format = "FFMPEG"


def set_image_output(image_settings, file_format: str = "PNG") -> None:
    """Make the render output still images in ``file_format`` ('PNG', 'JPEG', 'OPEN_EXR', …).

    On 5.0 a movie output (:func:`set_movie_output`) has to become ``media_type = 'IMAGE'``
    before an image format can be chosen; 4.5 has image and movie formats in one list.
    """
    if hasattr(image_settings, "media_type"):
        image_settings.media_type = "IMAGE"
    image_settings.file_format = file_format
