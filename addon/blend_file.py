"""Scene timing and saving the .blend atomically, never over a user's file unless asked."""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from ..core.errors import OutputError


def set_scene_timing(scene: bpy.types.Scene, fps: float, frame_start: int, frame_end: int) -> None:
    """Set the scene's frame rate and frame range.

    Blender stores the rate as an integer ``fps`` over a float ``fps_base``: 25 → 25/1,
    29.97 → 30/1.001.

    Args:
        fps: frames per second (Hz), > 0.
        frame_start, frame_end: the inclusive frame range.
    """
    scene.render.fps = max(1, round(fps))
    scene.render.fps_base = scene.render.fps / fps
    scene.frame_start = frame_start
    scene.frame_end = max(frame_start, frame_end)
    scene.frame_current = frame_start


def save_blend(path, *, force: bool = False) -> Path:
    """Save the current Blender session to ``path`` atomically.

    The file is written to a temporary name in the same folder and renamed onto ``path``, so a
    failure (disk full, Blender error) never leaves a half-written .blend, and a reader never
    sees one. The session keeps its own file path (the save is a copy).

    Args:
        path: the .blend to write.
        force: replace ``path`` if it exists.

    Returns:
        The absolute path written.

    Raises:
        OutputError: if ``path`` exists and ``force`` is False, or its folder cannot be written.
    """
    path = Path(path).resolve()
    if path.exists() and not force:
        raise OutputError(f"{path} already exists; choose another name or pass --force to replace it")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"cannot write to the folder {path.parent}; choose a folder you can write")
    temporary = str(path.with_name(f".{path.name}.{os.getpid()}.tmp.blend"))
    try:
        try:
            result = bpy.ops.wm.save_as_mainfile(filepath=temporary, copy=True, check_existing=False,
                                                 compress=True)
        except RuntimeError as exc:  # root passes os.access on a read-only file system
            raise OutputError(f"cannot write to the folder {path.parent} ({str(exc).strip()}); "
                              f"choose a folder you can write") from None
        if "FINISHED" not in result:
            raise OutputError(f"Blender could not save {path}; check the disk space and the folder")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
