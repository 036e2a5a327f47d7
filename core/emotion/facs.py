"""Each emotion as a FACS-based direction in the 52-channel (ARKit) space.

An emotion's prototype is a set of action units (AUs) from EMFACS (Friesen & Ekman, 1983; the
prototypes tabulated in Ekman, Friesen & Hager, "FACS Investigator's Guide", 2002, Table 10-1),
each at a FACS intensity grade (A trace … E maximum). Every AU maps to the ARKit channels that
move the same muscles. The direction is the expression at full intensity; the frame-wise
intensity scales it, so the emotion's norm at frame i is ``intensity[i] * |direction|`` (the
"direction is the type, norm is the intensity" view of Xu et al., Sec. 3.3, and EmoHead).
"""

from __future__ import annotations

import numpy as np

from ..channels import CHANNEL_INDEX
from ..errors import EmotionError
from .vocabulary import MEAD_EMOTIONS

__all__ = ["MEAD_EMOTIONS", "AU_CHANNELS", "EMOTION_AUS", "emotion_direction"]

AU_CHANNELS: dict[str, tuple[str, ...]] = {
    "AU1": ("browInnerUp",),                      # inner brow raiser
    "AU2": ("browOuterUp_L", "browOuterUp_R"),    # outer brow raiser
    "AU4": ("browDown_L", "browDown_R"),          # brow lowerer
    "AU5": ("eyeWide_L", "eyeWide_R"),            # upper lid raiser
    "AU6": ("cheekSquint_L", "cheekSquint_R"),    # cheek raiser
    "AU7": ("eyeSquint_L", "eyeSquint_R"),        # lid tightener
    "AU9": ("noseSneer_L", "noseSneer_R"),        # nose wrinkler
    "AU10": ("mouthUpperUp_L", "mouthUpperUp_R"), # upper lip raiser
    "AU12": ("mouthSmile_L", "mouthSmile_R"),     # lip corner puller
    "R12": ("mouthSmile_R",),                     # unilateral (right) lip corner puller
    "R14": ("mouthDimple_R",),                    # unilateral dimpler
    "AU15": ("mouthFrown_L", "mouthFrown_R"),     # lip corner depressor
    "AU16": ("mouthLowerDown_L", "mouthLowerDown_R"),  # lower lip depressor
    "AU17": ("mouthShrugLower",),                 # chin raiser
    "AU20": ("mouthStretch_L", "mouthStretch_R"), # lip stretcher
    "AU23": ("mouthPress_L", "mouthPress_R"),     # lip tightener
    "AU26": ("jawOpen",),                         # jaw drop
    "AU43": ("eyeBlink_L", "eyeBlink_R"),         # eyes closing (lids drooping)
    "AU64": ("eyeLookDown_L", "eyeLookDown_R"),   # eyes down
}
"""FACS action unit → ARKit channels (Apple ARKit ARFaceAnchor.BlendShapeLocation docs name the
same muscle actions)."""

GRADE = {"A": 0.15, "B": 0.3, "C": 0.5, "D": 0.7, "E": 0.9}
"""FACS intensity grades → channel weight at full emotion intensity."""

EMOTION_AUS: dict[str, dict[str, str]] = {
    "neutral": {},
    "happy": {"AU6": "C", "AU12": "D"},                                   # 6+12
    "sad": {"AU1": "D", "AU4": "B", "AU15": "C", "AU17": "B", "AU43": "A", "AU64": "A"},  # 1+4+15 (+17), lids and gaze down
    "angry": {"AU4": "E", "AU5": "B", "AU7": "D", "AU10": "B", "AU17": "B", "AU23": "C"},  # 4+5+7+10+17+23
    "fearful": {"AU1": "D", "AU2": "C", "AU4": "B", "AU5": "D", "AU20": "C", "AU26": "A"},  # 1+2+4+5+20+26
    "disgusted": {"AU9": "D", "AU10": "C", "AU15": "B", "AU17": "B", "AU4": "A"},  # 9+10+15+17
    "surprised": {"AU1": "D", "AU2": "D", "AU5": "C", "AU26": "B"},       # 1+2+5B+26
    "contempt": {"R12": "B", "R14": "C"},                                 # R12A+R14A
}
"""EMFACS prototypes with the grades emoflame uses at full intensity."""


def emotion_direction(emotion: str) -> np.ndarray:
    """The FACS expression of an emotion at full intensity.

    Args:
        emotion: one of :data:`MEAD_EMOTIONS` (a word read by ``vocabulary.read_emotion``).

    Returns:
        (52,) float32 over ``ARKIT_CHANNELS``; zeros for neutral.

    Raises:
        EmotionError: not one of the 8; the message lists the choices.
    """
    if emotion not in EMOTION_AUS:
        raise EmotionError(f"unknown emotion {emotion!r}; choose one of {', '.join(MEAD_EMOTIONS)} "
                           "(read other words with core.emotion.vocabulary.read_emotion first)")
    direction = np.zeros(len(CHANNEL_INDEX), np.float32)
    for au, grade in EMOTION_AUS[emotion].items():
        for channel in AU_CHANNELS[au]:
            direction[CHANNEL_INDEX[channel]] = GRADE[grade]
    return direction
