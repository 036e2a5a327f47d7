"""Still frames of a take on the default avatar, rendered by Blender, as arrays: for contact sheets,
read-backs by an independent face reader (MediaPipe) and tests.

The scene is the one ``emoflame animate`` saves (``addon.scene.build_scene``: the avatar, its
head rig, the take) framed by the same camera as the MP4 (``blender_video.frame_face``); a view
turns the camera about the face's centre (three-quarter: 35° towards the subject's left).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..addon.compat import set_image_output
from ..addon.scene import build_scene
from .blender_video import configure_render, frame_face, quiet_stdout

VIEWS = {"front": 0.0, "three_quarter": 35.0}
"""Degrees the camera turns about the face, towards the subject's left."""


MOUTH = (48, 54, 33, 57)
"""68-point landmarks that frame a close-up of the mouth (lip corners, nose base, lower lip)."""


def render_stills(clip, frames, *, views=("front",), resolution: int = 512, engine: str = "workbench",
                  margin: float = 1.6, landmarks=None) -> dict[str, list[np.ndarray]]:
    """Render chosen frames of ``clip`` on the default avatar.

    Args:
        clip: an AnimationClip.
        frames: clip frame indices (0-based) to render.
        views: names from :data:`VIEWS`.
        resolution: the square image's side in pixels (even).
        engine: ``workbench`` (fast on a CPU), ``eevee`` or ``cycles``.
        margin: the camera's framing margin around the framed landmarks (smaller is closer).
        landmarks: indices of the 68 landmarks to frame (:data:`MOUTH` for a close-up of the
            mouth); all 68, the whole face, when None. The lights of EEVEE and Cycles, which
            stand at the camera's distance, are dimmed by the square of the distances so that a
            close-up is lit as the whole face is.

    Returns:
        ``{view: [(resolution, resolution, 3) uint8 RGB per frame]}``.

    Raises:
        ValueError: an unknown view or landmark, or a frame outside the clip.
    """
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise ValueError(f"unknown views {unknown}; choose from {', '.join(VIEWS)}")
    bad = [f for f in frames if not 0 <= f < clip.num_frames]
    if bad:
        raise ValueError(f"frames {bad} are outside the clip's 0..{clip.num_frames - 1}")
    chosen = list(range(68)) if landmarks is None else [int(i) for i in landmarks]
    if not chosen or not all(0 <= i < 68 for i in chosen):
        raise ValueError(f"landmarks {landmarks} are not indices of the 68 face landmarks (0..67)")
    scene, face, all_landmarks = build_scene(clip)
    configure_render(scene, engine=engine, resolution=resolution)
    landmarks = all_landmarks[chosen]
    whole_camera = frame_face(scene, face, all_landmarks).location.copy()  # also brings matrix_world up to date
    centre = Vector(np.asarray([face.matrix_world @ Vector(p) for p in landmarks]).mean(axis=0))
    whole = (whole_camera - centre).length
    camera = frame_face(scene, face, landmarks, margin=margin)
    for light in (o for o in scene.objects if o.type == "LIGHT"):
        light.data.energy *= ((camera.location - centre).length / whole) ** 2
    set_image_output(scene.render.image_settings, "PNG")
    scene.render.image_settings.color_mode = "RGB"
    front = camera.matrix_world.copy()
    scene_frames = clip.scene_frames(scene.frame_start)
    out: dict[str, list[np.ndarray]] = {v: [] for v in views}
    with tempfile.TemporaryDirectory(prefix="emoflame-stills-") as folder:
        for view in views:
            turn = Matrix.Translation(centre) @ Matrix.Rotation(math.radians(VIEWS[view]), 4, "Z") @ Matrix.Translation(-centre)
            camera.matrix_world = turn @ front
            for f in frames:
                scene.frame_set(int(scene_frames[f]))
                scene.render.filepath = str(Path(folder) / f"{view}_{f}.png")
                with quiet_stdout():
                    bpy.ops.render.render(write_still=True)
                out[view].append(_read_png(scene.render.filepath))
    return out


def _read_png(path: str) -> np.ndarray:
    image = bpy.data.images.load(path)
    try:
        width, height = image.size
        pixels = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    # Blender's pixels are bottom-up and, for an 8-bit PNG, the file's sRGB values in [0, 1].
    rgb = pixels.reshape(height, width, 4)[::-1, :, :3]
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
