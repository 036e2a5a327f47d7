"""The one interface every expression engine implements.

An engine turns what the speech analysis found (``core.audio.speech.Speech``), the emotion track
read at the front door (``core.emotion.track.EmotionTrack``) and a frame-wise intensity into expression
weights on the 52 ARKit channels. The pipeline adds the layers every engine gets (eyes, head) on
top; a new engine registers its name in ``core.expression.ENGINES`` and its loader in
:mod:`.engines`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np


@dataclass(frozen=True)
class Expression:
    """An engine's output for one take.

    Attributes:
        weights: (T, 52) float32 over ``ARKIT_CHANNELS`` in [0, 1]; the eye channels are left to
            the eye layer (zero unless the emotion itself moves the lids or gaze).
        emotion_latent: (T, D) float32, the engine's emotion latent per frame (Xu et al.'s
            re-normalised feature, D = 896), or (T, 0) for an engine without one.
    """

    weights: np.ndarray
    emotion_latent: np.ndarray


class ExpressionEngine(Protocol):
    """What the pipeline calls. ``needs_phones``: :func:`core.audio.speech.analyse_speech` must find
    the phones; ``free_text``: the engine reads emotions beyond the 8 MEAD names."""

    name: ClassVar[str]
    needs_phones: ClassVar[bool]
    free_text: ClassVar[bool]

    def generate(self, speech, track, intensity: np.ndarray, seed: int = 0) -> Expression:
        """Args: speech (``Speech``), track (``core.emotion.track.EmotionTrack``: one emotion or
        several over time), intensity (T,) in [0, 1], seed.
        Returns: the :class:`Expression` on ``speech``'s frame grid."""
