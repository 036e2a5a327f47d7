"""A take as FLAME parameters: what a FLAME-based pipeline (smplx, a neural renderer, a
reconstruction method) reads instead of shape keys.

The clip's 52 channels go through the model's rig map (:func:`core.flame.rigmap.rigmap_for_flame`:
least squares over the face, the jaw refitted through LBS, the eyeballs as rotations; cached per
model file), so the file drives exactly the head ``emoflame animate --flame-model`` builds. Names
and layout follow FLAME's (Li et al. 2017) and smplx's: axis-angle radians, one row per frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..flame.rigmap import FLAME_TARGETS

NUM_EXPRESSION = 100
ARRAYS = ("expression", "jaw_pose", "neck_pose", "leye_pose", "reye_pose")


def flame_parameters(clip, model, avatar=None, cache_dir=None) -> dict[str, np.ndarray]:
    """The clip as FLAME parameters.

    Args:
        clip: an AnimationClip (``weights`` (T, K) over ARKit channels, optional ``jaw_pose`` and
            ``head_pose`` (T, 3) radians).
        model: a :class:`core.flame.model.FLAME` (``load_flame_model``).
        avatar: the avatar whose channels are mapped; the default avatar when None.
        cache_dir: the rig-map cache (default ``~/.cache/emoflame/rigmaps``).

    Returns:
        ``expression`` (T, 100) float32 (zeros past the model's own expression count),
        ``jaw_pose``, ``neck_pose`` (the clip's head motion about FLAME's neck joint), ``leye_pose``,
        ``reye_pose`` (T, 3) float32 axis-angle radians, and ``fps`` (a 0-d float64).
    """
    from ..flame.avatar import default_avatar
    from ..flame.rigmap import rigmap_for_flame

    rigmap = rigmap_for_flame(model, avatar if avatar is not None else default_avatar(), cache_dir=cache_dir)
    known = [k for k, channel in enumerate(clip.channels) if channel in rigmap.channels]
    values = rigmap.apply(np.asarray(clip.weights)[:, known], channels=[clip.channels[k] for k in known])  # (T, M)
    column = {target: j for j, target in enumerate(rigmap.targets)}
    n = clip.num_frames

    def block(names) -> np.ndarray:
        out = np.zeros((n, len(names)), np.float32)
        for j, name in enumerate(names):
            if name in column:
                out[:, j] = values[:, column[name]]
        return out

    jaw = block(FLAME_TARGETS[100:103])
    if clip.jaw_pose is not None:  # as addon.rigs keys the jaw bone: the fitted turn plus the clip's own
        jaw = jaw + np.asarray(clip.jaw_pose, np.float32)
    neck = np.asarray(clip.head_pose, np.float32) if clip.head_pose is not None else np.zeros((n, 3), np.float32)
    return {
        "expression": block(FLAME_TARGETS[:NUM_EXPRESSION]),
        "jaw_pose": jaw,
        "neck_pose": neck,
        "leye_pose": block(FLAME_TARGETS[103:106]),
        "reye_pose": block(FLAME_TARGETS[106:109]),
        "fps": np.float64(clip.fps),
    }


def write(clip, path: str | Path, model, avatar=None) -> Path:
    """Write :func:`flame_parameters` to exactly ``path`` as an uncompressed .npz (no pickles)
    (callers write to a temporary name and rename: :mod:`core.outputs`).

    Raises:
        OSError: the file cannot be written.
    """
    path = Path(path)
    with open(path, "wb") as f:  # a file object: numpy would append .npz to a name
        np.savez(f, **flame_parameters(clip, model, avatar))
    return path
