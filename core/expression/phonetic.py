"""The phonetic engine: phones + vocal effort + a FACS emotion → 52 channel weights per frame.

Needs no trained weights. Mouth shapes come from the phones' visemes blended by dominance
functions (Cohen & Massaro, 1993: every phone's influence rises towards it and decays away from
it, and each frame is the dominance-weighted mean of the targets, per articulator group), so
neighbouring phones shape each other. Jaw and lips are two dials (Edwards et al., "JALI: an
animator-centric viseme model for expressive lip synchronization", SIGGRAPH 2016): the
jaw's opening follows the vocal effort, the take's (a whisper opens little, a shout wide) and the
frame's within the take (:mod:`core.audio.effort`, blind to the recording gain); the lips' shapes
follow the articulation, lifted a little by effort, not by loudness (a quiet F is as tucked as a
loud one). Bilabials then get their closure for certain, the emotion is added as its FACS
direction scaled by the frame-wise intensity, the brows lift on pitch accents, and a speed limit
on the mouth channels removes pops while every closure still reaches its pose. The eyes are the
pipeline's layer (:mod:`.eyes`), as for every engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.ndimage

from ..audio.effort import VocalEffort, vocal_effort
from ..audio.features import Prosody, frame_times
from ..audio.phones import Phone
from ..channels import ARKIT_CHANNELS, CHANNEL_INDEX
from ..emotion.facs import emotion_direction
from ..errors import EmotionError, SettingsError
from . import visemes as V
from .engine import Expression

CLOSURE_RAMP_S = 0.05
"""Seconds over which the guaranteed lip closure fades in before and out after a bilabial."""
JAW_QUIET_GAIN, JAW_LOUD_GAIN = 0.35, 1.2
"""Factor on the visemes' jaw opening at the take's quiet frames (:data:`core.audio.effort.RANGE_DB`
under its loud ones) and at its loud frames, at conversational effort."""
JAW_EFFORT = 0.5
"""Change of the jaw's opening per unit of the take's effort level: ×0.5 whispered, ×1.5
shouted. Loud speech lowers the jaw much further than normal speech (Schulman, "Articulatory
dynamics of loud and normal speech", JASA 85, 1989; Huber & Chandrasekaran, JSLHR 49, 2006)."""
LIP_EFFORT = 0.15
"""Change of the lips' shapes per unit of effort level: the lips hyperarticulate a little."""
ROUNDED = 0.6
"""Pucker or funnel weight at which the lips count as fully rounded (spreading yields to it)."""
OPEN_JAW = 0.3
"""jawOpen at which the lips count as fully apart (an emotion's lip press yields to it)."""
MAX_SPEED = 6.0
"""Fastest change of a mouth channel, weight per second: 0.24 between frames at 25 fps (pops are
steps above 0.25). FACEGOOD's captured speech (7 takes, 30 fps) moves jawOpen at 6.6 per second
at its 99th percentile (10.4 at the 99.9th), funnel 4.8, pucker 3.7, lip press 0.8: the limit
touches only the fastest percent of a captured jaw's frames."""
DIAL_RANGE = (0.0, 2.0)
"""Allowed values of the jaw and lips dials."""

MOUTH_COLUMNS = np.array([i for i, c in enumerate(ARKIT_CHANNELS) if c.startswith(("jaw", "mouth", "tongue", "cheek"))])
"""Columns of the channels that the speed limit covers: jaw, lips, tongue, cheeks (not the eyes,
whose blinks are fast on purpose, nor the brows)."""

_COL = {c: i for i, c in enumerate(V.MOUTH_CHANNELS)}
_JAW = _COL["jawOpen"]
_LIP_COLUMNS = np.array([i for i, c in enumerate(V.MOUTH_CHANNELS) if c != "jawOpen"])
_POSE = np.array([_COL[c] for c in V.CLOSURE_POSE])


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


@dataclass(frozen=True)
class Activity:
    """How far the jaw and the lips move, frame by frame (the JALI view: two dials).

    Attributes:
        jaw: (T,) factor on the visemes' jaw opening.
        lips: (T,) factor on the visemes' lip shapes (every mouth channel but jawOpen).
    """

    jaw: np.ndarray
    lips: np.ndarray


def articulation(effort: VocalEffort, jaw: float = 1.0, lips: float = 1.0, take_effort: bool = True) -> Activity:
    """The jaw's and the lips' activity from the vocal effort and the two dials.

    jaw(t) = ``jaw`` × (1 + :data:`JAW_EFFORT` × level) × (:data:`JAW_QUIET_GAIN` → :data:`JAW_LOUD_GAIN`
    along ``effort.relative``); lips = ``lips`` × (1 + :data:`LIP_EFFORT` × level). Every term is
    independent of the recording gain (:mod:`core.audio.effort`).

    Args:
        effort: the take's :class:`core.audio.effort.VocalEffort` (T frames).
        jaw: the jaw dial, multiplies the jaw's opening (1 as measured; 0 keeps it shut).
        lips: the lips dial, multiplies the lips' rounding, spreading, tuck and opening.
        take_effort: use the take's effort level (False: every take counts as conversational,
            only the loudness within the take moves the jaw).
    """
    level = effort.level if take_effort else 0.0
    dynamics = JAW_QUIET_GAIN + (JAW_LOUD_GAIN - JAW_QUIET_GAIN) * effort.relative.astype(np.float64)
    n = len(dynamics)
    return Activity(jaw * (1 + JAW_EFFORT * level) * dynamics, np.full(n, lips * (1 + LIP_EFFORT * level)))


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
    the dominance-weighted mean of the segments' targets, within its group (jaw, rounding, lip
    opening: :data:`visemes.CHANNEL_GROUP`), so a consonant that does not care about rounding
    (α ≈ 0 there) leaves the vowels' rounding alone.

    Args:
        phones: contiguous phones.
        times: (T,) seconds of the frames.

    Returns:
        (T, len(MOUTH_CHANNELS)) float32.
    """
    groups = int(V.CHANNEL_GROUP.max()) + 1
    num = np.zeros((len(times), len(V.MOUTH_CHANNELS)))
    den = np.full((len(times), groups), 1e-9)
    for start, end, vis in viseme_segments(phones):
        reach = 7.0 / vis.rate  # beyond this the dominance is below 0.1 %
        lo, hi = np.searchsorted(times, [start - reach, end + reach * V.CARRY_FACTOR])
        if lo >= hi:
            continue
        t = times[lo:hi]
        decay = np.where(t < start, vis.rate * (start - t), np.where(t > end, vis.rate * V.CARRY_FACTOR * (t - end), 0.0))
        dom = np.exp(-decay)[:, None] * np.asarray(vis.dominance)[None, :]  # (t, groups)
        num[lo:hi] += dom[:, V.CHANNEL_GROUP] * vis.vector[None, :]
        den[lo:hi] += dom
    return (num / den[:, V.CHANNEL_GROUP]).astype(np.float32)


def closure_envelope(phones: list[Phone], times: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Where the lips must be shut, and their pose there.

    Returns:
        ``(envelope, pose)``: envelope (T,) in [0, 1], 1 during bilabials (at least on the frame
        nearest each one, however short), easing to 0 over :data:`CLOSURE_RAMP_S` either side;
        pose (T, len(MOUTH_CHANNELS)) the nearest bilabial's targets (:data:`visemes.CLOSED`).
    """
    env = np.zeros(len(times))
    pose = np.tile(V.VISEMES["P"].vector, (len(times), 1))
    for start, end, vis in viseme_segments(phones):
        if not vis.closure:
            continue
        nearest = round(0.5 * (start + end) * fps) / fps
        start, end = min(start, nearest), max(end, nearest)
        lo, hi = np.searchsorted(times, [start - CLOSURE_RAMP_S, end + CLOSURE_RAMP_S])
        t = times[lo:hi]
        gap = np.maximum(start - t, 0) + np.maximum(t - end, 0)
        x = np.clip(1 - gap / CLOSURE_RAMP_S, 0, 1)
        x = x * x * (3 - 2 * x)
        stronger = x >= env[lo:hi]
        pose[lo:hi][stronger] = vis.vector
        env[lo:hi] = np.maximum(env[lo:hi], x)
    return env, pose


def mouth_track(phones: list[Phone], activity: Activity, fps: float) -> MouthTrack:
    """Visemes with coarticulation, scaled by the jaw's and lips' activity, with sure closures.

    Args:
        phones: contiguous phones of the recording.
        activity: the jaw's and lips' factors per frame (:func:`articulation`), T frames.
        fps: frames per second.

    Returns:
        :class:`MouthTrack` with T frames; on a bilabial's frames the closure pose
        (:data:`visemes.CLOSURE_POSE`) exactly, whatever the dials.
    """
    times = frame_times(len(activity.jaw), fps)
    mouth = coarticulate(phones, times).astype(np.float64)
    mouth[:, _JAW] *= activity.jaw
    mouth[:, _LIP_COLUMNS] *= activity.lips[:, None]
    np.clip(mouth, 0.0, 1.0, out=mouth)
    closure, pose = closure_envelope(phones, times, fps)
    mouth[:, _POSE] = (1 - closure[:, None]) * mouth[:, _POSE] + closure[:, None] * pose[:, _POSE]
    # mouthClose cancels, at the lips, whatever opening the jaw still has at the closure.
    mouth[:, _COL["mouthClose"]] = np.maximum(mouth[:, _COL["mouthClose"]], closure * mouth[:, _JAW])
    weights = np.zeros((len(times), len(CHANNEL_INDEX)), np.float32)
    weights[:, V.MOUTH_INDEX] = mouth
    rounding = np.clip(np.maximum(mouth[:, _COL["mouthPucker"]], mouth[:, _COL["mouthFunnel"]]) / ROUNDED, 0, 1)
    return MouthTrack(weights, closure.astype(np.float32), rounding.astype(np.float32))


def limit_speed(weights: np.ndarray, fps: float, hold: np.ndarray, columns: np.ndarray = MOUTH_COLUMNS,
                max_speed: float = MAX_SPEED) -> np.ndarray:
    """No channel of ``columns`` changes faster than ``max_speed`` per second; held frames keep
    their values exactly; curves already slower than the limit are left as they are.

    The held values first bound their neighbours (within the limit's reach of each held frame);
    then the curve becomes the mean of its largest speed-limited function below it and its
    smallest one above it (grey-scale erosion and dilation with a cone: the lower and upper
    Lipschitz envelopes). Both equal the curve where it is slow enough and at the held frames, so
    their mean does too; a step too fast for the limit becomes a ramp centred on it, and a spike
    keeps half its height. Zero-phase: nothing lags.

    Args:
        weights: (T, C) in [0, 1].
        fps: frames per second.
        hold: (T,) bool, the frames whose values must stay (the bilabials' closures).
        columns: the columns limited.
        max_speed: weight per second.

    Returns:
        (T, C) float32, a new array.
    """
    step = max_speed / fps
    reach = int(math.ceil(1.0 / step))  # weights lie in [0, 1]: no cone reaches further
    cone = step * np.abs(np.arange(-reach, reach + 1, dtype=np.float64))[:, None]
    x = weights[:, columns].astype(np.float64)
    if hold.any():
        far = 2.0 + step * reach
        ceiling = scipy.ndimage.grey_erosion(np.where(hold[:, None], x, far), structure=-cone, mode="nearest")
        floor = scipy.ndimage.grey_dilation(np.where(hold[:, None], x, -far), structure=-cone, mode="nearest")
        x = np.minimum(np.maximum(x, floor), ceiling)
    below = scipy.ndimage.grey_erosion(x, structure=-cone, mode="nearest")
    above = scipy.ndimage.grey_dilation(x, structure=-cone, mode="nearest")
    out = weights.astype(np.float32, copy=True)
    out[:, columns] = 0.5 * (below + above)
    return out


_CLOSING = np.array([CHANNEL_INDEX[c] for c in V.LIP_CLOSING])
# At a closure the emotion lets go of every channel that moves the lips: those that part them,
# those that push them together, and the nose wrinkler (AU9), whose levator also lifts the
# upper lip (3 mm at disgust's grade on the default avatar).
_AT_CLOSURE = np.array([CHANNEL_INDEX[c] for c in V.LIP_OPENING + V.LIP_CLOSING + ("noseSneer_L", "noseSneer_R")])
_BROW_DOWN = np.array([CHANNEL_INDEX[c] for c in ("browDown_L", "browDown_R")])
_SPREADING = np.array([CHANNEL_INDEX[c] for c in ("mouthSmile_L", "mouthSmile_R", "mouthStretch_L",
                                                   "mouthStretch_R", "mouthDimple_L", "mouthDimple_R")])


def combine(mouth: MouthTrack, emotion: np.ndarray, face: np.ndarray, fps: float) -> np.ndarray:
    """Add the emotion and the prosodic brows to the mouth so that they do not fight, then hold
    the mouth to :data:`MAX_SPEED`.

    The visemes own the lips where they need them: at a bilabial closure the emotion's lip
    channels (jaw drop, lip raisers and depressors, stretch, press, chin raiser, nose wrinkler)
    yield, so a happy "m" still closes and an angry one does not crush the lips into each other;
    on rounded vowels its spreading (smile, stretch, dimple) yields to the pucker (not at a
    closure, where the lips are shut and the smile is what shows); and its lip press yields while
    the jaw is open for a vowel. Everything else of the emotion (brows, lids, cheeks, the lip
    corners' smile or frown, the nose) holds through speech and pauses alike, and the prosodic
    brow raises yield where the emotion lowers the brows (an angry accent does not lift them
    into a worried look). The yielding and the visemes can change faster
    than a mouth moves (a smile giving way to a pucker in one frame): :func:`limit_speed` ramps
    every such step, keeping the closures' frames as they are.

    Args:
        mouth: the visemes' track.
        emotion: (T, 52) the emotion's channels (direction × intensity).
        face: (T, 52) brow raises (:func:`prosodic_brows`).
        fps: frames per second.

    Returns:
        (T, 52) float32 in [0, 1].
    """
    emotion = emotion.copy()
    emotion[:, _AT_CLOSURE] *= 1 - mouth.closure[:, None]
    # AU12 and AU18 pull the corners opposite ways; with the lips shut the smile is what shows
    emotion[:, _SPREADING] *= 1 - 0.9 * (mouth.rounding * (1 - mouth.closure))[:, None]
    openness = np.clip(mouth.weights[:, CHANNEL_INDEX["jawOpen"]] / OPEN_JAW, 0, 1)
    emotion[:, _CLOSING] *= 1 - openness[:, None]
    # a lowered brow (anger, disgust) is not lifted on the pitch accents
    face = face * (1 - np.clip(emotion[:, _BROW_DOWN].max(axis=1), 0, 1))[:, None]
    weights = np.clip(mouth.weights + emotion + face, 0.0, 1.0)
    return limit_speed(weights, fps, hold=mouth.closure >= 1.0 - 1e-6)


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
    (and their synonyms), has no emotion latent.

    Args:
        jaw: the jaw dial in [0, 2]: multiplies how far the jaw opens (1 as the voice's effort
            says; 0.5 mumbled, 1.5 wide).
        lips: the lips dial in [0, 2]: multiplies the lips' rounding, spreading, tuck and
            opening (0 a ventriloquist's lips, which still close on bilabials).
        effort: follow the take's vocal effort (a whisper opens less, a shout more); False treats
            every take as conversational, the loudness within it still moving the jaw.

    Raises:
        SettingsError: a dial that is not a finite number in [0, 2].
    """

    name = "phonetic"
    needs_phones = True
    free_text = False

    def __init__(self, jaw: float = 1.0, lips: float = 1.0, effort: bool = True) -> None:
        self.jaw = _dial(jaw, "jaw")
        self.lips = _dial(lips, "lips")
        self.effort = bool(effort)

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
            eye channels holding only the emotion's own (sad's drooping lids), no mouth channel
            faster than :data:`MAX_SPEED`; latent (T, 0).

        Raises:
            EmotionError: free text, which this engine cannot read.
        """
        free = [e.text for e in track.emotions if e.name is None]
        if free:
            raise EmotionError(f"the phonetic engine reads the 8 emotions and their synonyms, not {free[0]!r}; "
                               "choose one of them, or use the learned engine for free text")
        effort = vocal_effort(speech.samples, speech.prosody, speech.fps)
        activity = articulation(effort, self.jaw, self.lips, take_effort=self.effort)
        mouth = mouth_track(list(speech.phones), activity, speech.fps)
        directions = np.stack([emotion_direction(name) for name in track.names])  # (K, 52)
        mix = track.mix(frame_times(speech.num_frames, speech.fps)).astype(np.float32)  # (T, K)
        emotion_weights = np.asarray(intensity, np.float32)[:, None] * (mix @ directions)
        weights = combine(mouth, emotion_weights, prosodic_brows(speech.prosody, speech.fps), speech.fps)
        return Expression(weights, np.zeros((len(weights), 0), np.float32))


def _dial(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (math.isfinite(number) and DIAL_RANGE[0] <= number <= DIAL_RANGE[1]):
        raise SettingsError(f"the {name} dial is {value!r}; give a number from {DIAL_RANGE[0]:g} to {DIAL_RANGE[1]:g} "
                            f"(1 as the voice says, 0.5 half as far, 1.5 half again)")
    return number
