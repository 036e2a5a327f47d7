"""Scene timing and saving the .blend atomically, never over a user's file unless asked."""

from __future__ import annotations

import logging
from pathlib import Path

import bpy

from ..core.errors import OutputError
from ..core.outputs import atomic_write, disk_full_error, free_bytes, native_stdout_to, output_path, write_error

MIN_FREE_BYTES = 1 << 20
"""Below this much free space, a save that silently failed is put down to a full disk."""


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


def write_blend(path, *, target=None) -> Path:
    """Save the current Blender session as a copy to exactly ``path`` (a temporary name of a
    ``core.outputs.Transaction``; the session keeps its own file path). Blender's "Info: Saved copy
    as ..." goes to stderr with debug logging, nowhere otherwise: stdout holds only the paths a
    command prints.

    Args:
        path: the .blend to create.
        target: the file ``path`` will become, for messages (``path`` itself by default).

    Raises:
        OutputError: Blender could not write it: a full disk (named as such), a folder it cannot
            write.
    """
    path, target = Path(path), Path(target or path)
    debug = logging.getLogger("emoflame").isEnabledFor(logging.DEBUG)
    try:
        with native_stdout_to("stderr" if debug else "null"):
            result = bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True, check_existing=False, compress=True)
    except RuntimeError as exc:  # root passes os.access on a read-only file system
        raise write_error(exc, target) from None
    if "FINISHED" not in result or not path.is_file():
        if free_bytes(path.parent) < MIN_FREE_BYTES:
            raise disk_full_error(target)
        raise OutputError(f"Blender could not save {target}; check the disk space and the folder")
    return path


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
    target = output_path(path)
    return atomic_write(target, lambda temporary: write_blend(temporary, target=target), force=force)
