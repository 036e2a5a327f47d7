"""Exports that need no Blender: the Live Link Face CSV (:mod:`.livelink`) and FLAME parameters
(:mod:`.flame_params`). The formats Blender's own exporters write (glTF, FBX, USD) are in
``addon/exports.py``, from the same scene as the .blend.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError, OutputError

CORE_SUFFIXES = (".csv", ".npz")
"""Formats written here: Live Link Face CSV, FLAME parameters."""
BLENDER_SUFFIXES = (".glb", ".gltf", ".fbx", ".usd", ".usdc", ".usda")
"""Formats Blender's exporters write (``addon.exports``)."""
SUFFIXES = (".blend",) + BLENDER_SUFFIXES + CORE_SUFFIXES
"""Every suffix ``emoflame animate -o`` and ``addon.exports.export`` write."""


def write_core_export(clip, path: Path, flame_model=None) -> Path:
    """Write ``clip`` as the core format its suffix names to exactly ``path`` (a temporary name of
    a :class:`core.outputs.Transaction`, say).

    Args:
        path: ``.csv`` (Live Link Face) or ``.npz`` (FLAME parameters).
        flame_model: a loaded :class:`core.flame.model.FLAME` or a model file's path; needed for .npz.

    Raises:
        OutputError: a suffix that is not a core format.
        ModelFileError: .npz without a FLAME model.
        OSError: the file cannot be written.
    """
    from . import flame_params, livelink

    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return livelink.write(clip, path)
    if suffix == ".npz":
        return flame_params.write(clip, path, load_model(flame_model))
    raise OutputError(f"{path}: {suffix or 'no suffix'} is not a format emoflame writes without Blender; "
                      f"use {' or '.join(CORE_SUFFIXES)}")


def load_model(flame_model):
    """A FLAME module from a loaded model or a model file's path.

    Raises:
        ModelFileError: None (a FLAME parameter file needs the user's FLAME model), or a file that
            fails to load safely.
    """
    if flame_model is None:
        raise ModelFileError("a FLAME parameter .npz needs your FLAME model: give --flame-model generic_model.pkl "
                             "(or flame2023.pkl, from https://flame.is.tue.mpg.de); the AnimationClip itself is --clip")
    if isinstance(flame_model, (str, Path)):
        from ..flame.model import load_flame_model

        return load_flame_model(Path(flame_model))
    return flame_model


def export(clip, path, *, flame_model=None, force: bool = False) -> Path:
    """Write ``clip`` to ``path`` as a Live Link Face CSV (.csv) or FLAME parameters (.npz),
    atomically (a temporary beside it, renamed when complete).

    Raises:
        OutputError: ``path`` exists without ``force``, cannot be written (a full disk named), or
            has another suffix (``addon.exports.export`` writes .blend, .glb, .gltf, .fbx, .usd*).
        ModelFileError: .npz without ``flame_model``.
    """
    from ..outputs import atomic_write, output_path

    path = output_path(path)
    if path.suffix.lower() not in CORE_SUFFIXES:
        raise OutputError(f"{path} should end in {' or '.join(CORE_SUFFIXES)} here; .blend, .glb, .gltf, .fbx, "
                          f".usdc and .usda go through emoflame.addon.exports.export")
    model = load_model(flame_model) if path.suffix.lower() == ".npz" else None
    return atomic_write(path, lambda temporary: write_core_export(clip, temporary, model), force=force)
