"""FLAME layer: safe model-file loading, LBS, the FLAME module, the default avatar, rig maps.

Names are imported on first use, so ``core.flame.avatar`` (numpy only) does not pay for torch.
"""

from ..lazy import lazy_attributes

JOINT_NAMES = ("root", "neck", "jaw", "left_eye", "right_eye")
"""FLAME's joints in the model's order (global, neck, jaw, left eye, right eye; +x is the subject's
left): the rows of a joint regressor, and the bone names of FLAME rigs in Blender (the MPI FLAME
add-on's, and those emoflame builds)."""

_PUBLIC = {
    "FLAME": ".model",
    "FlameOutput": ".model",
    "load_flame_model": ".model",
    "load_pickle": ".loading",
    "RestrictedUnpickler": ".loading",
    "RigMap": ".rigmap",
    "rigmap_for_avatar": ".rigmap",
    "rigmap_for_shape_keys": ".rigmap",
    "rigmap_by_least_squares": ".rigmap",
    "rigmap_for_flame": ".rigmap",
}

__all__ = sorted(_PUBLIC)

__getattr__ = lazy_attributes(__name__, _PUBLIC)
