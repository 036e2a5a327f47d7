"""The semantic expression channels every engine predicts and every rig map consumes.

The 52 ARKit blendshape names, written with ``_L``/``_R`` suffixes (the ICT FaceKit
spelling, ``mouthSmile_L``); ARKit's own ``mouthSmileLeft`` spelling is accepted as an alias
by :func:`canonical_channel`. "Left" is the subject's left (+x on FLAME and ICT heads).
"""

ARKIT_CHANNELS: tuple[str, ...] = (
    "browDown_L", "browDown_R", "browInnerUp", "browOuterUp_L", "browOuterUp_R",
    "cheekPuff", "cheekSquint_L", "cheekSquint_R",
    "eyeBlink_L", "eyeBlink_R", "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R",
    "eyeLookOut_L", "eyeLookOut_R", "eyeLookUp_L", "eyeLookUp_R", "eyeSquint_L", "eyeSquint_R",
    "eyeWide_L", "eyeWide_R",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimple_L", "mouthDimple_R", "mouthFrown_L", "mouthFrown_R",
    "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R", "mouthPress_L",
    "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R", "mouthStretch_L",
    "mouthStretch_R", "mouthUpperUp_L", "mouthUpperUp_R",
    "noseSneer_L", "noseSneer_R", "tongueOut",
)

CHANNEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_CHANNELS)}


def canonical_channel(name: str) -> str | None:
    """Return the canonical channel for a rig's shape-key name, or None if it is not one.

    Accepts ``mouthSmile_L``, ``mouthSmileLeft`` and ``MouthSmileLeft`` (case-insensitive,
    an optional ``.L``/``_l``/``Left`` side suffix), as Faceit, ICT FaceKit and Ready Player Me
    rigs spell them.
    """
    low = name.strip().replace(".", "_").lower()
    if low in _LOWER:  # jawLeft, mouthRight: "Left"/"Right" is part of the name, not a side
        return _LOWER[low]
    for suffix, side in (("left", "_l"), ("right", "_r"), ("_l", "_l"), ("_r", "_r")):
        if low.endswith(suffix):
            return _LOWER.get(low[: -len(suffix)] + side)
    return None


_LOWER = {name.lower(): name for name in ARKIT_CHANNELS}
