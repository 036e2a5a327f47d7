"""A Blender session built for one clip: the head, its take, the sound and the timing.

What ``emoflame animate`` saves as its .blend (and renders): the scene is emptied and rebuilt,
so nothing of a previous clip remains.
"""

from __future__ import annotations

import bpy

from ..core.flame.avatar import default_avatar
from . import rigs
from .avatar_object import add_avatar_object, add_flame_object
from .blend_file import set_scene_timing
from .sound import add_sound_strip


def build_scene(clip, flame_model=None):
    """Empty the Blender session and build the scene for ``clip``.

    The default avatar (shape keys and a head rig), or, with ``flame_model`` (a model file's path
    or a loaded ``core.flame.model.FLAME``), that FLAME model as
    an MPI-style rig (Exp and Pose keys, neck, jaw and eye bones); the take written by
    ``addon.rigs`` as new Actions (shape keys, and the bones: the head's motion, an MPI rig's jaw
    and eyes). Then the recording as a sound strip on frame 1, the frame rate and range.

    Returns:
        ``(scene, face_object, landmarks)``: landmarks (68, 3) in the face object's local
        coordinates, metres, for framing the camera.
    """
    # Factory startup without factory preferences: inside Blender (`blender -c emoflame`) a
    # preferences reset would disable the running extension.
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    scene = bpy.context.scene
    avatar = default_avatar()
    if flame_model is None:
        face = add_avatar_object(avatar)
        landmarks = avatar.landmarks(avatar.vertices)
    else:
        from ..core.exports import load_model  # torch, only for a user's model

        model = load_model(flame_model)
        face = add_flame_object(model)
        landmarks = avatar.landmarks(model.v_template.numpy())
    rigs.write_take(rigs.prepare_target(rigs.describe_target(face), avatar), clip)
    first = 1
    set_scene_timing(scene, clip.fps, first, int(clip.scene_frames(first)[-1]))
    if clip.audio_path:
        add_sound_strip(scene, clip.audio_path, frame_start=first)
    return scene, face, landmarks


def show_face_in_viewports() -> None:
    """Open the saved file on the face: every 3D viewport looks through the camera, shaded with
    the avatar's vertex colours (iris and pupil included)."""
    for screen in bpy.data.screens:
        for area in screen.areas:
            for space in area.spaces:
                if space.type == "VIEW_3D":
                    space.shading.color_type = "VERTEX"
                    space.region_3d.view_perspective = "CAMERA"
