"""The phonetic engine: phones + loudness + a FACS emotion → 52 channel weights per frame.

Needs no trained weights. Mouth shapes come from the phones' visemes blended by dominance
functions (Cohen & Massaro, 1993: every phone's influence rises towards it and decays away from
it, and each frame is the dominance-weighted mean of the targets), so neighbouring phones shape
each other and nothing pops. Bilabials then get their closure for certain, the jaw follows the
loudness, the emotion is added as its FACS direction scaled by the frame-wise intensity, and the
brows lift on pitch accents. The eyes are the pipeline's layer (:mod:`.eyes`), as for every engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage

from ..audio.features import Prosody, frame_times
from ..audio.phones import Phone
from ..channels import CHANNEL_INDEX
from ..emotion.facs import emotion_direction
from ..errors import EmotionError
from . import visemes as V
from .engine import Expression

CLOSURE_RAMP_S = 0.05
"""Seconds over which the guaranteed lip closure fades in before and out after a bilabial."""
JAW_RANGE_DB = 30.0
"""The jaw opens from :data:`JAW_QUIET_GAIN` of its viseme target at this many dB below the
utterance's loud frames, up to :data:`JAW_LOUD_GAIN` at them."""
JAW_QUIET_GAIN, JAW_LOUD_GAIN = 0.35, 1.2
JAW_SMOOTH_S = 0.02
ROUNDED = 0.6
"""Pucker or funnel weight at which the lips count as fully rounded (spreading yields to it)."""
OPEN_JAW = 0.3
"""jawOpen at which the lips count as fully apart (an emotion's lip press yields to it)."""


@dataclass(frozen=True)
class MouthTrack:
    """The visemes' part of the face.

    Attributes:
        weights: (T, 52) float32 over ``ARKIT_CHANNELS``, non-zero on the mouth channels.
        closure: (T,) in [0, 1]: 1 where a bilabial holds the lips shut.
        rounding: (T,) in [0, 1]: how rounded the lips are (pucker / funnel).
    """

    weights: np.ndarray
    closure: np.ndarray
    rounding: np.ndarray


def viseme_segments(phones: list[Phone]) -> list[tuple[float, float, V.Viseme]]:
    """(start, end, viseme) per phone; a diphthong becomes its two targets, half the time each."""
    out = []
    for p in phones:
        if p.name in V.DIPHTHONGS:
            first, second = V.DIPHTHONGS[p.name]
            mid = 0.5 * (p.start + p.end)
            out += [(p.start, mid, V.VISEMES[first]), (mid, p.end, V.VISEMES[second])]
        else:
            out.append((p.start, p.end, V.VISEMES.get(p.name, V.VISEMES["SIL"])))
    return out


def coarticulate(phones: list[Phone], times: np.ndarray) -> np.ndarray:
    """Blend the visemes' targets with dominance functions (Cohen & Massaro, 1993, eqs. 1–2).

    Dominance of segment s on group g at time t: ``α_sg · exp(−θ_s · τ)``, τ the seconds from t
    to the segment (0 inside it), θ larger after the segment than before it. A channel's value is
    the dominance-weighted mean of the segments' targets.

    Args:
        phones: contiguous phones.
        times: (T,) seconds of the frames.

    Returns:
        (T, len(MOUTH_CHANNELS)) float32.
    """
    num = np.zeros((len(times), len(V.MOUTH_CHANNELS)))
    den = np.full((len(times), 2), 1e-9)
    for start, end, vis in viseme_segments(phones):
        reach = 7.0 / vis.rate  # beyond this the dominance is below 0.1 %
        lo, hi = np.searchsorted(times, [start - reach, end + reach * V.CARRY_FACTOR])
        if lo >= hi:
            continue
        t = times[lo:hi]
        decay = np.where(t < start, vis.rate * (start - t), np.where(t > end, vis.rate * V.CARRY_FACTOR * (t - end), 0.0))
        dom = np.exp(-decay)[:, None] * np.asarray(vis.dominance)[None, :]  # (t, 2)
        num[lo:hi] += dom[:, V.CHANNEL_GROUP] * vis.vector[None, :]
        den[lo:hi] += dom
    return (num / den[:, V.CHANNEL_GROUP]).astype(np.float32)


def closure_envelope(phones: list[Phone], times: np.ndarray, fps: float) -> np.ndarray:
    """(T,) in [0, 1]: 1 during bilabials (at least on the frame nearest each one, however short),
    easing to 0 over :data:`CLOSURE_RAMP_S` either side."""
    env = np.zeros(len(times))
    for start, end, vis in viseme_segments(phones):
        if not vis.closure:
            continue
        nearest = round(0.5 * (start + end) * fps) / fps
        start, end = min(start, nearest), max(end, nearest)
        lo, hi = np.searchsorted(times, [start - CLOSURE_RAMP_S, end + CLOSURE_RAMP_S])
        t = times[lo:hi]
        gap = np.maximum(start - t, 0) + np.maximum(t - end, 0)
        x = np.clip(1 - gap / CLOSURE_RAMP_S, 0, 1)
        env[lo:hi] = np.maximum(env[lo:hi], x * x * (3 - 2 * x))
    return env


def jaw_gain(loudness: np.ndarray, fps: float) -> np.ndarray:
    """(T,) factor on the jaw's viseme opening from loudness in dB, normalised per utterance.
    The loudness is smoothed over ~40 ms first: the jaw is slower than the voice's flutter."""
    loudness = scipy.ndimage.gaussian_filter1d(loudness.astype(np.float64), JAW_SMOOTH_S * fps, mode="nearest")
    loud = np.percentile(loudness, 95)
    level = np.clip((loudness - (loud - JAW_RANGE_DB)) / JAW_RANGE_DB, 0, 1)
    return JAW_QUIET_GAIN + (JAW_LOUD_GAIN - JAW_QUIET_GAIN) * level


def mouth_track(phones: list[Phone], loudness: np.ndarray, fps: float) -> MouthTrack:
    """Visemes with coarticulation, jaw by loudness, and sure bilabial closures.

    Args:
        phones: contiguous phones of the recording.
        loudness: (T,) dB per frame (:func:`core.audio.features.prosody`).
        fps: frames per second.

    Returns:
        :class:`MouthTrack` with T frames.
    """
    times = frame_times(len(loudness), fps)
    mouth = coarticulate(phones, times)
    col = {c: i for i, c in enumerate(V.MOUTH_CHANNELS)}
    mouth[:, col["jawOpen"]] = np.clip(mouth[:, col["jawOpen"]] * jaw_gain(loudness, fps), 0, 1)
    closure = closure_envelope(phones, times, fps)
    for name in V.LIP_OPENING:
        closed = V.CLOSED.get(name, 0.0)
        mouth[:, col[name]] = (1 - closure) * mouth[:, col[name]] + closure * closed
    # mouthClose cancels, at the lips, whatever opening the jaw still has at the closure.
    mouth[:, col["mouthClose"]] = np.maximum(mouth[:, col["mouthClose"]], closure * mouth[:, col["jawOpen"]])
    weights = np.zeros((len(times), len(CHANNEL_INDEX)), np.float32)
    weights[:, V.MOUTH_INDEX] = mouth
    rounding = np.clip(np.maximum(mouth[:, col["mouthPucker"]], mouth[:, col["mouthFunnel"]]) / ROUNDED, 0, 1)
    return MouthTrack(weights, closure.astype(np.float32), rounding.astype(np.float32))


_CLOSING = np.array([CHANNEL_INDEX[c] for c in V.LIP_CLOSING])
# At a closure the emotion lets go of every channel that moves the lips: those that part them,
# those that push them together, and the nose wrinkler (AU9), whose levator also lifts the
# upper lip (3 mm at disgust's grade on the default avatar).
_AT_CLOSURE = np.array([CHANNEL_INDEX[c] for c in V.LIP_OPENING + V.LIP_CLOSING + ("noseSneer_L", "noseSneer_R")])
_SPREADING = np.array([CHANNEL_INDEX[c] for c in ("mouthSmile_L", "mouthSmile_R", "mouthStretch_L",
                                                   "mouthStretch_R", "mouthDimple_L", "mouthDimple_R")])


def combine(mouth: MouthTrack, emotion: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Add the emotion and the prosodic brows to the mouth so that they do not fight.

    The visemes own the lips where they need them: at a bilabial closure the emotion's lip
    channels (jaw drop, lip raisers and depressors, stretch, press, chin raiser, nose wrinkler)
    yield, so a happy "m" still closes and an angry one does not crush the lips into each other; on rounded vowels its spreading (smile, stretch, dimple) yields to the pucker;
    and its lip press yields while the jaw is open for a vowel.

    Args:
        mouth: the visemes' track.
        emotion: (T, 52) the emotion's channels (direction × intensity).
        face: (T, 52) brow raises (:func:`prosodic_brows`).

    Returns:
        (T, 52) float32 in [0, 1].
    """
    emotion = emotion.copy()
    emotion[:, _AT_CLOSURE] *= 1 - mouth.closure[:, None]
    emotion[:, _SPREADING] *= 1 - 0.9 * mouth.rounding[:, None]  # AU12 and AU18 pull the corners opposite ways
    openness = np.clip(mouth.weights[:, CHANNEL_INDEX["jawOpen"]] / OPEN_JAW, 0, 1)
    emotion[:, _CLOSING] *= 1 - openness[:, None]
    return np.clip(mouth.weights + emotion + face, 0.0, 1.0).astype(np.float32)


BROW_RAISE = 0.25
"""browInnerUp / browOuterUp weight on the strongest pitch accent of the utterance."""


def prosodic_brows(tracks: Prosody, fps: float) -> np.ndarray:
    """(T, 52) brow raises on pitch accents.

    Speakers lift their brows with the pitch peaks that mark emphasis (Cavé et al., "About the
    relationship between eyebrow movements and F0 variations", ICSLP 1996; Granström & House,
    J. Acoust. Soc. Am. 2005, brow raises as prominence cues). An accent here is voiced pitch
    above the speaker's median, in semitones, smoothed over ~0.1 s and normalised per utterance.
    """
    out = np.zeros((len(tracks.f0), len(CHANNEL_INDEX)), np.float32)
    if tracks.voiced.sum() < 3:
        return out
    accent = np.clip(tracks.semitones(), 0, None)
    accent = scipy.ndimage.gaussian_filter1d(accent, 0.08 * fps, mode="nearest")
    top = np.percentile(accent, 99)
    raise_ = BROW_RAISE * np.clip(accent / max(top, 1e-6), 0, 1)
    for name in ("browInnerUp", "browOuterUp_L", "browOuterUp_R"):
        out[:, CHANNEL_INDEX[name]] = raise_
    return out


class PhoneticEngine:
    """The phonetic engine behind ``engine="phonetic"``: needs the phones, reads the 8 emotions
    (and their synonyms), has no emotion latent."""

    name = "phonetic"
    needs_phones = True
    free_text = False

    def generate(self, speech, track, intensity: np.ndarray, seed: int = 0) -> Expression:
        """Animate a recording: visemes, the emotion's FACS direction scaled by the intensity, and
        brow raises on pitch accents. With an emotion track the FACS directions are blended frame
        by frame with the track's mix (:meth:`EmotionTrack.mix`).

        Args:
            speech: ``core.audio.speech.Speech`` with its phones.
            track: ``core.emotion.track.EmotionTrack`` whose emotions are among the 8 MEAD emotions.
            intensity: (T,) in [0, 1], the frame-wise emotion intensity.
            seed: unused (the engine is deterministic); the eye layer takes the seed.

        Returns:
            :class:`Expression`: weights (T, 52) float32 in [0, 1] over ``ARKIT_CHANNELS``, the
            eye channels holding only the emotion's own (sad's drooping lids); latent (T, 0).

        Raises:
            EmotionError: free text, which this engine cannot read.
        """
        free = [e.text for e in track.emotions if e.name is None]
        if free:
            raise EmotionError(f"the phonetic engine reads the 8 emotions and their synonyms, not {free[0]!r}; "
                               "choose one of them, or use the learned engine for free text")
        mouth = mouth_track(list(speech.phones), speech.prosody.loudness, speech.fps)
        directions = np.stack([emotion_direction(name) for name in track.names])  # (K, 52)
        mix = track.mix(frame_times(speech.num_frames, speech.fps)).astype(np.float32)  # (T, K)
        emotion_weights = np.asarray(intensity, np.float32)[:, None] * (mix @ directions)
        weights = combine(mouth, emotion_weights, prosodic_brows(speech.prosody, speech.fps))
        return Expression(weights, np.zeros((len(weights), 0), np.float32))
