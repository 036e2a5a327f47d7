"""Open a .blend made by ``emoflame animate`` and print, as one JSON line, what playing it gives.

Run as ``python tests/read_take.py TAKE.blend`` with any Python that has bpy (4.5 or 5.0): the
cross-version test runs it under both Blenders on the same file and compares the numbers. It
reads through Blender's own API only (no emoflame import), so it measures the file, not the code.

Printed: the reading Blender's version and the file's, the scene's frame rate and range, the
sound strips, the render settings, the shape-key take (Action, slot, custom properties), every
F-curve evaluated on every frame of the range, and the shape-key values the animation system
sets on every frame (``scene.frame_set``), the check that the take plays.
"""

import json
import sys
from pathlib import Path

import bpy
from bpy_extras.anim_utils import action_get_channelbag_for_slot

HEAD = "emoflame_head"


def read(path: str) -> dict:
    bpy.ops.wm.open_mainfile(filepath=path)
    scene = bpy.context.scene
    frames = list(range(scene.frame_start, scene.frame_end + 1))
    editor = scene.sequence_editor
    sounds = [{"name": s.name, "frame_start": s.frame_start, "frames": s.frame_final_duration,
               "file": str(Path(bpy.path.abspath(s.sound.filepath)).resolve())}
              for s in (editor.strips_all if editor else ()) if s.type == "SOUND"]
    render = scene.render
    key = bpy.data.objects[HEAD].data.shape_keys
    data = key.animation_data
    action, slot = data.action, data.action_slot
    channelbag = action_get_channelbag_for_slot(action, slot)
    curves = {f.data_path: [f.evaluate(frame) for frame in frames] for f in channelbag.fcurves}
    played = {block.name: [] for block in key.key_blocks[1:]}
    for frame in frames:
        scene.frame_set(frame)
        for block in key.key_blocks[1:]:
            played[block.name].append(block.value)
    return {
        "blender": list(bpy.app.version), "file_blender": list(bpy.data.version),
        "fps": render.fps / render.fps_base, "frames": [scene.frame_start, scene.frame_end],
        "sounds": sounds,
        "render": [render.engine, render.image_settings.file_format, render.ffmpeg.format, render.ffmpeg.codec,
                   render.ffmpeg.audio_codec],
        "action": action.name, "slot": slot.identifier,
        "properties": {k: action[k] for k in ("emoflame_take", "emoflame_emotion", "emoflame_fps") if k in action},
        "curves": curves, "played": played,
    }


if __name__ == "__main__":
    print("TAKE " + json.dumps(read(sys.argv[1])))
