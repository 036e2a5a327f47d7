"""Visemes: the mouth shape of every CMU phone, as targets on the ARKit mouth channels, with the
dominance that governs how strongly each phone holds its shape against its neighbours.

Classes follow the viseme groups of the MPEG-4 FAP set and the Oculus/Preston Blair sets
(PP, FF, TH, DD, kk, CH, SS, nn, RR, aa, E, I, O, U); diphthongs are two targets in sequence.
The vowels fall into three kinds that must look different (Edwards et al., "JALI: an
animator-centric viseme model for expressive lip synchronization", SIGGRAPH 2016):
rounded (UW, UH, OW, AO, OY and the approximants W, R) with the lips funnelled and puckered and
the corners drawn in; spread (IY, IH, EY, EH) with the corners drawn out; open (AA, AE, AH, AW)
carried by the jaw. The labiodentals F, V tuck the lower lip under the upper teeth (lower lip
rolled in, upper lip raised off the teeth); TH, DH and L show the tongue on rigs that have a
``tongueOut`` shape (the default avatar has none: there they show only the jaw and lip opening
that lets the tongue be seen).

Dominance parameters follow Cohen & Massaro, "Modeling coarticulation in synthetic visual
speech" (Models and Techniques in Computer Animation, 1993), per articulator group (jaw, lip
rounding/spreading, lip opening): bilabials and labiodentals are highly dominant and fast on the
lips (they must get there), lingual consonants (t, d, n, k, g, h, y, l, s, z, th) barely
constrain the lips and leave their rounding entirely to the surrounding vowels, so a rounded
vowel stays rounded across them and a spread one spread; lip rounding reaches far ahead
(anticipatory rounding over several consonants, Benguerel & Cowan 1974).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..channels import CHANNEL_INDEX

MOUTH_CHANNELS: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthRollLower", "mouthRollUpper",
    "mouthLowerDown_L", "mouthLowerDown_R", "mouthUpperUp_L", "mouthUpperUp_R", "mouthPress_L",
    "mouthPress_R", "mouthStretch_L", "mouthStretch_R", "mouthShrugUpper", "tongueOut",
)
"""The channels the visemes drive (the entries of :attr:`Viseme.vector`)."""

JAW, ROUND, LIPS = 0, 1, 2
"""Dominance groups: the jaw; the lips' rounding and spreading (funnel, pucker, stretch: the
corners' width); the lips' opening and closing with the tongue."""
ROUNDING = ("mouthFunnel", "mouthPucker", "mouthStretch_L", "mouthStretch_R")
CHANNEL_GROUP = np.array([JAW if c == "jawOpen" else ROUND if c in ROUNDING else LIPS for c in MOUTH_CHANNELS])

LIP_OPENING = ("jawOpen", "mouthLowerDown_L", "mouthLowerDown_R", "mouthUpperUp_L", "mouthUpperUp_R",
               "mouthFunnel", "mouthPucker", "mouthStretch_L", "mouthStretch_R", "tongueOut")
"""Channels that part or shape the lips: at a bilabial closure an emotion's share of them yields."""

CLOSURE_POSE = ("jawOpen", "mouthClose", "mouthLowerDown_L", "mouthLowerDown_R", "mouthUpperUp_L", "mouthUpperUp_R",
                "mouthFunnel", "mouthPress_L", "mouthPress_R", "mouthRollLower", "mouthRollUpper", "mouthShrugUpper",
                "tongueOut")
"""The visemes' channels that a bilabial closure sets to its own pose, whatever the neighbours
and the dials: those that open the lips and those that press them. Pucker and stretch (they do
not part the lips: under 1 mm on the default avatar) keep their coarticulated values, so a "b"
between rounded vowels stays rounded."""

LIP_CLOSING = ("mouthClose", "mouthPress_L", "mouthPress_R", "mouthRollLower", "mouthRollUpper",
               "mouthShrugLower", "mouthShrugUpper")
"""Channels that push the lips together (press, roll, the chin raiser's shrug): at a closure an
emotion's share of them would push one lip through the other."""


@dataclass(frozen=True)
class Viseme:
    """A mouth shape and its coarticulation parameters.

    Attributes:
        targets: channel (a mouth channel; a name without side means both ``_L`` and ``_R``) →
            weight in [0, 1].
        dominance: (jaw, rounding, lips) magnitudes α of the dominance function, one per group
            (:data:`CHANNEL_GROUP`).
        rate: θ in 1/s: how fast the dominance decays away from the phone (anticipation);
            carry-over decays at :data:`CARRY_FACTOR` times this rate.
        closure: the lips must meet (P, B, M).
    """

    targets: dict[str, float]
    dominance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    rate: float = 18.0
    closure: bool = False
    vector: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        v = np.zeros(len(MOUTH_CHANNELS), np.float32)
        for name, weight in self.targets.items():
            for channel in (name,) if name in MOUTH_CHANNELS else (name + "_L", name + "_R"):
                v[MOUTH_CHANNELS.index(channel)] = weight
        object.__setattr__(self, "vector", v)


CARRY_FACTOR = 1.4
"""Carry-over coarticulation is shorter than anticipation (Cohen & Massaro, 1993)."""

CLOSED = {"jawOpen": 0.04, "mouthClose": 0.04, "mouthPress": 0.45, "mouthRollLower": 0.15, "mouthRollUpper": 0.08}
"""The bilabial closure: jaw nearly shut, mouthClose cancelling what is left of the jaw's
opening at the lips, lips pressed."""

LINGUAL = 0.05
"""Rounding dominance of consonants made with the tongue: the lips' width comes from the vowels."""

VISEMES: dict[str, Viseme] = {
    "SIL": Viseme({}, dominance=(0.8, 0.8, 0.8), rate=12.0),
    # bilabials: the lips meet; P and B build pressure, M is softer
    "P": Viseme(CLOSED, dominance=(4.0, 0.4, 6.0), rate=25.0, closure=True),
    "B": Viseme(CLOSED, dominance=(4.0, 0.4, 6.0), rate=25.0, closure=True),
    "M": Viseme({**CLOSED, "mouthPress": 0.3}, dominance=(4.0, 0.4, 6.0), rate=25.0, closure=True),
    # labiodentals: lower lip rolled in under the upper teeth, upper lip lifted off them
    "F": Viseme({"jawOpen": 0.06, "mouthRollLower": 0.7, "mouthUpperUp": 0.25, "mouthShrugUpper": 0.1},
                dominance=(2.0, 0.3, 5.0), rate=22.0),
    "V": Viseme({"jawOpen": 0.06, "mouthRollLower": 0.65, "mouthUpperUp": 0.22, "mouthShrugUpper": 0.1},
                dominance=(2.0, 0.3, 5.0), rate=22.0),
    # dentals: tongue tip between the teeth
    "TH": Viseme({"jawOpen": 0.12, "tongueOut": 0.35, "mouthLowerDown": 0.12}, dominance=(1.2, LINGUAL, 1.5)),
    "DH": Viseme({"jawOpen": 0.1, "tongueOut": 0.25, "mouthLowerDown": 0.1}, dominance=(1.0, LINGUAL, 1.2)),
    # lingual consonants: the lips follow the vowels
    "T": Viseme({"jawOpen": 0.12, "mouthLowerDown": 0.05}, dominance=(0.8, LINGUAL, 0.3)),
    "D": Viseme({"jawOpen": 0.12, "mouthLowerDown": 0.05}, dominance=(0.8, LINGUAL, 0.3)),
    "N": Viseme({"jawOpen": 0.1}, dominance=(0.7, LINGUAL, 0.3)),
    "L": Viseme({"jawOpen": 0.18, "tongueOut": 0.2, "mouthLowerDown": 0.08}, dominance=(0.7, LINGUAL, 0.4)),
    "K": Viseme({"jawOpen": 0.16}, dominance=(0.6, LINGUAL, 0.2)),
    "G": Viseme({"jawOpen": 0.16}, dominance=(0.6, LINGUAL, 0.2)),
    "NG": Viseme({"jawOpen": 0.14}, dominance=(0.6, LINGUAL, 0.2)),
    "HH": Viseme({"jawOpen": 0.2}, dominance=(0.3, LINGUAL, 0.1)),
    "Y": Viseme({"jawOpen": 0.08, "mouthStretch": 0.3}, dominance=(0.8, 0.6, 0.6)),
    # sibilants: teeth nearly closed; S spreads a little, SH protrudes
    "S": Viseme({"jawOpen": 0.05, "mouthStretch": 0.2, "mouthUpperUp": 0.1, "mouthLowerDown": 0.1},
                dominance=(2.0, 0.2, 0.8), rate=22.0),
    "Z": Viseme({"jawOpen": 0.05, "mouthStretch": 0.18, "mouthUpperUp": 0.1, "mouthLowerDown": 0.1},
                dominance=(2.0, 0.2, 0.8), rate=22.0),
    "SH": Viseme({"jawOpen": 0.08, "mouthFunnel": 0.45, "mouthPucker": 0.35, "mouthUpperUp": 0.12,
                  "mouthLowerDown": 0.12}, dominance=(2.0, 2.0, 2.0)),
    "ZH": Viseme({"jawOpen": 0.08, "mouthFunnel": 0.45, "mouthPucker": 0.35, "mouthUpperUp": 0.12,
                  "mouthLowerDown": 0.12}, dominance=(2.0, 2.0, 2.0)),
    "CH": Viseme({"jawOpen": 0.08, "mouthFunnel": 0.4, "mouthPucker": 0.3, "mouthUpperUp": 0.1,
                  "mouthLowerDown": 0.1}, dominance=(2.0, 2.0, 2.0)),
    "JH": Viseme({"jawOpen": 0.08, "mouthFunnel": 0.4, "mouthPucker": 0.3, "mouthUpperUp": 0.1,
                  "mouthLowerDown": 0.1}, dominance=(2.0, 2.0, 2.0)),
    # rounded approximants: rounding reaches ahead
    "W": Viseme({"jawOpen": 0.05, "mouthPucker": 0.85, "mouthFunnel": 0.3}, dominance=(1.0, 3.0, 1.5), rate=10.0),
    "R": Viseme({"jawOpen": 0.12, "mouthPucker": 0.45, "mouthFunnel": 0.3}, dominance=(0.8, 1.5, 1.0), rate=12.0),
    # open vowels: the jaw
    "AA": Viseme({"jawOpen": 0.6, "mouthLowerDown": 0.25, "mouthUpperUp": 0.1}),
    "AE": Viseme({"jawOpen": 0.48, "mouthLowerDown": 0.25, "mouthUpperUp": 0.15, "mouthStretch": 0.25}),
    "AH": Viseme({"jawOpen": 0.42, "mouthLowerDown": 0.15}),
    # spread vowels: the corners drawn out
    "EH": Viseme({"jawOpen": 0.32, "mouthLowerDown": 0.15, "mouthStretch": 0.35}, dominance=(1.0, 1.5, 1.0)),
    "IH": Viseme({"jawOpen": 0.2, "mouthLowerDown": 0.1, "mouthStretch": 0.4}, dominance=(1.0, 1.5, 1.0)),
    "IY": Viseme({"jawOpen": 0.12, "mouthStretch": 0.5, "mouthUpperUp": 0.1}, dominance=(1.0, 2.0, 1.0)),
    # rounded vowels: funnel and pucker draw the corners in
    "AO": Viseme({"jawOpen": 0.42, "mouthFunnel": 0.5, "mouthPucker": 0.35}, dominance=(1.0, 2.0, 1.0), rate=12.0),
    "ER": Viseme({"jawOpen": 0.2, "mouthFunnel": 0.3, "mouthPucker": 0.35}, dominance=(1.0, 1.2, 1.0), rate=12.0),
    "UH": Viseme({"jawOpen": 0.18, "mouthFunnel": 0.4, "mouthPucker": 0.6}, dominance=(1.0, 2.0, 1.0), rate=12.0),
    "UW": Viseme({"jawOpen": 0.1, "mouthPucker": 0.85, "mouthFunnel": 0.35}, dominance=(1.0, 3.0, 1.5), rate=10.0),
}

DIPHTHONGS: dict[str, tuple[str, str]] = {
    "AW": ("AA", "UH"), "AY": ("AA", "IY"), "EY": ("EH", "IY"), "OW": ("AO", "UW"), "OY": ("AO", "IY"),
}
"""Diphthongs glide from their first target to their second over the phone's duration."""

MOUTH_INDEX = np.array([CHANNEL_INDEX[c] for c in MOUTH_CHANNELS])
"""Columns of the mouth channels in ``ARKIT_CHANNELS`` order."""
