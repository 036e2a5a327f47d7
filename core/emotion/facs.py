"""Each emotion as a FACS-based direction in the 52-channel (ARKit) space.

An emotion's prototype is a set of action units (AUs) from EMFACS (Friesen & Ekman, 1983; the
emotion predictions tabulated in Ekman, Friesen & Hager, "FACS Investigator's Guide", 2002, and
as Table 11-1 of the 1978 FACS manual; the appearance of each emotion in Ekman & Friesen,
"Unmasking the Face", 1975), each at a FACS intensity grade (A trace … E maximum). Every AU maps to the ARKit channels that
move the same muscles. The direction is the expression at full intensity; the frame-wise
intensity scales it, so the emotion's norm at frame i is ``intensity[i] * |direction|`` (the
"direction is the type, norm is the intensity" view of Xu et al., Sec. 3.3, and EmoHead).
"""

from __future__ import annotations

import numpy as np

from ..channels import CHANNEL_INDEX
from ..errors import EmotionError
from .vocabulary import MEAD_EMOTIONS

__all__ = ["MEAD_EMOTIONS", "AU_CHANNELS", "AU_REACH", "EMOTION_AUS", "GRADE", "emotion_direction"]

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

AU_REACH: dict[str, float] = {"AU26": 0.5}
"""Channel weight of an AU at grade E where its ARKit channel spans more than the AU: ``jawOpen``
at 1 is the jaw stretched wide open (AU27, mouth stretch); the jaw drop AU26 lets the jaw fall
by relaxing the muscles that hold it shut, about half as far."""

GRADE = {"A": 0.2, "B": 0.4, "C": 0.6, "D": 0.8, "E": 1.0}
"""FACS intensity grades → channel weight (× :data:`AU_REACH`) at full emotion intensity: the
five grades as fifths of the AU's range, as intensity coders score them 1–5 (FACS 2002: A
trace, B slight, C marked or pronounced, D severe or extreme, E maximum; DISFA and OpenFace
code AU intensity on the same 0–5 scale). An emotion at full intensity shows its
characteristic AUs at E: a furious brow is fully lowered."""

EMOTION_AUS: dict[str, dict[str, str]] = {
    "neutral": {},
    # 6+12: the felt (Duchenne) smile, the eyes narrowed from below by the cheeks
    "happy": {"AU6": "E", "AU12": "E"},
    # 1+4+15 (+17), lids drooping and gaze down (54+64): inner brows up and drawn together,
    # lip corners down, the chin pushing the lower lip up
    "sad": {"AU1": "E", "AU4": "C", "AU15": "E", "AU17": "C", "AU43": "A", "AU64": "B"},
    # 4+5+7+10+17+23: brows down and together, the glare of raised upper and tightened lids,
    # lips pressed thin with the chin raised, the upper lip lifting off the teeth a little
    "angry": {"AU4": "E", "AU5": "C", "AU7": "D", "AU10": "B", "AU17": "B", "AU23": "D"},
    # 1+2+4+5+20+26: brows up and drawn together, eyes wide, lips stretched, the jaw dropping
    "fearful": {"AU1": "E", "AU2": "D", "AU4": "C", "AU5": "E", "AU20": "E", "AU26": "C"},
    # 9+10+17 (+15, 4): the nose wrinkled, the upper lip raised, the lower lip pushed up
    "disgusted": {"AU9": "E", "AU10": "D", "AU17": "C", "AU15": "B", "AU4": "B"},
    # 1+2+5+26: brows up, eyes wide, the jaw dropped
    "surprised": {"AU1": "E", "AU2": "E", "AU5": "D", "AU26": "E"},
    # R12+R14: a one-sided smirk, the corner pulled up and dimpled on one side only
    "contempt": {"R12": "C", "R14": "E"},
}
"""EMFACS prototypes (Friesen & Ekman 1983; the prediction table of the FACS Investigator's
Guide, Ekman, Friesen & Hager 2002: surprise 1+2+5B+26, fear 1+2+4+5+20+25/26, happiness 6+12, sadness 1+4+15
(+17, 54+64), disgust 9(+16+15+26)/9+17/10+17, anger 4+5+7+10+23 / 4+5+7+17+23/24, contempt R12A+R14A)
with the grades emoflame uses at full intensity: the AUs that make the emotion at E, the ones
that accompany it lower. Surprise's upper lid raiser (5B in the table) is at D, so that full
astonishment opens the eyes wide; contempt's smirk is graded up from its table's trace (A) so
that it reads at full intensity."""


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
            direction[CHANNEL_INDEX[channel]] = GRADE[grade] * AU_REACH.get(au, 1.0)
    return direction
