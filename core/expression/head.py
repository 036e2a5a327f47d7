"""Head and neck motion for a talking head: nods on accents, idle sway, rest in silence, and the
emotion's posture, as FLAME neck-joint rotations.

The pose is FLAME's neck joint relative to rest, an axis-angle (rotation) vector in FLAME's frame:
y up, +z forward (out of the nose), +x the subject's left. By the right-hand rule:

- about +x (pitch): a positive angle turns +y toward +z, so the top of the head goes forward and
  the nose down: **positive = nod down / chin down, negative = chin up / head back**;
- about +y (yaw): a positive angle turns +z toward +x: **positive = the face turns to the subject's
  left**, negative to the subject's right;
- about +z (roll): a positive angle turns +x toward +y: the left ear rises and the top of the head
  goes to the subject's right: **positive = head tilted toward the right shoulder**, negative toward
  the left.

Components are generated directly as rotation vectors and added. At these angles the components
read as pitch, yaw and roll: the rotation vector (7°, 6°, 2°), the largest posture, differs from
the three rotations applied one after another by 0.4° (second-order cross terms).

What moves the head, and the sources:

- Nods and small tilts and turns on pitch accents and stressed syllables. Speakers' head movements
  cluster on stressed syllables and at phrase junctures (Hadar, Steiner, Grant & Rose, "Head
  movement correlates of juncture and stress at sentence level", Language and Speech 26, 1983;
  "Kinematics of head movements accompanying speech during conversation", Human Movement
  Science 2, 1983), follow F0 and loudness (Yehia, Kuratate & Vatikiotis-Bateson, J. Phonetics 30,
  2002; Munhall et al., "Visual prosody and speech intelligibility", Psychological Science 15(2),
  2004), and nods, tilts and turns accompany pitch accents, most often as nods (Graf, Cosatto,
  Strom & Huang, "Visual prosody: facial movements accompanying speech", IEEE FG 2002). A nod's
  downward stroke is placed on the accent (its apex lands ~0.1 s later, inside the accented
  syllable: Esteve-Gibert et al., J. Acoust. Soc. Am. 141(6), 2017), after a slow lift, and each
  lift–strike–return gesture has zero net displacement, so nodding never drifts the head down.
- Slow idle sway: smoothed noise of two time scales (not periodic), a few tenths of a degree to
  about 1.5°, and a small change of head position at each pause (Hadar et al.'s wide movements at
  junctures).
- Rest in long silences: the sway and phrase positions fade to a fifth of their size when nothing
  has been voiced for about a second, and the nods stop (there are no accents); the posture stays
  as long as the intensity holds it.
- The emotion's posture, scaled by the (smoothed) intensity: head lowered in sadness, chin down in
  anger, head back in surprise and fear, raised and tilted in happiness, turned away in disgust,
  tilted back and turned in contempt (Darwin, "The Expression of the Emotions in Man and Animals",
  1872; Wallbott, "Bodily expression of emotion", Eur. J. Soc. Psychol. 28, 1998; Dael, Mortillaro
  & Scherer, "Emotion expression in body action and posture", Emotion 12(5), 2012). Emotional
  speech also moves the head more (anger, happiness) or less (sadness) than neutral speech (Busso,
  Deng, Grimm, Neumann & Narayanan, "Rigid head motion in expressive speech animation: analysis and
  synthesis", IEEE TASLP 15(3), 2007, for anger and happiness; Wallbott 1998 for the low movement
  activity of sadness): :data:`ACTIVITY`, whose values are this module's choices.

Amplitudes: conversational head rotations are a few degrees (Graf et al. 2002; Busso et al. 2007;
Hadar et al. 1983); the values here are set inside that range, not fitted to a corpus.

Everything random is drawn from ``numpy.random.default_rng(seed)`` as smooth functions of time in
seconds, so the same seed gives the same motion, and the same motion in seconds at 24, 25, 30 or
60 fps.

The second part of the module holds the measures the tests and the benchmark use (pitch accents
from F0 peaks, nods from the pitch velocity); the generator does not use them.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import scipy.interpolate
import scipy.ndimage
import scipy.signal
import scipy.special

from ..audio.features import Prosody
from ..emotion.vocabulary import canonical_emotion
from ..errors import IntensityError, SettingsError

# Nods (degrees and seconds).
NOD_DEG = 2.5
"""Downward apex of a nod on the strongest accent (prominence 1), degrees; weaker accents nod less."""
NOD_STROKE_S = 0.22
"""Seconds of the downward stroke, centred on the accent."""
NOD_HOLD_S = 0.04
NOD_RETURN_S = 0.45
"""Seconds of the slower return after the apex."""
NOD_LIFT_S = 1.0
"""Seconds over which the head lifts slightly before the stroke (the nod's preparation)."""
NOD_SPREAD = 0.25
"""Standard deviation of a nod's size around its accent's prominence (a fraction)."""
TILT_SD, TURN_SD = 0.4, 0.3
"""Roll and yaw on an accent, as standard deviations in units of the nod's pitch amplitude."""
NOD_VARIATION_S = 0.15
"""Correlation time of that variation: accents further apart than this vary independently."""

# Accents (the generator's own detector: pitch above the median and loudness above speaking level).
PITCH_SPAN_ST = 4.0
"""Semitones above the speaker's median at which the pitch term of prominence reaches 1."""
LOUD_SPAN_DB = 6.0
"""dB above the median voiced level at which the loudness (stress) term reaches 1."""
PITCH_WEIGHT = 0.6
OCTAVE_SPIKE_S = 0.1
ACCENT_SMOOTH_S = 0.08
ACCENT_THRESHOLD, ACCENT_FULL = 0.25, 0.7
"""Prominence (0–1) at which a peak starts to nod, and at which it nods fully."""
ACCENT_STANDOUT = 0.15
"""Prominence by which a peak must rise above its surroundings to nod fully."""
ACCENT_MIN_GAP_S = 0.4
"""Seconds within which a higher accent suppresses a lower one, so that the head nods on accents
rather than on every syllable."""

# Sway, phrase shifts, rest.
SWAY_SD_DEG = ((0.5, 0.7, 0.35), (0.25, 0.3, 0.15))
"""Per-axis (pitch, yaw, roll) standard deviation of the slow and the faster sway, degrees."""
SWAY_TIMESCALE_S = (2.0, 0.6)
PHRASE_SD_DEG = (0.6, 1.0, 0.6)
"""Per-axis standard deviation of the head position taken at a pause, degrees."""
PHRASE_SHIFT_S = 0.6
PHRASE_TIMESCALE_S = 0.3
"""Correlation time of the phrase positions: pauses further apart than this take unrelated ones."""
DRIFT_WINDOW_S = 8.0
"""Random motion is high-passed at this time scale so that it never settles off rest."""
SPEECH_GAP_S = 0.7
"""Unvoiced gaps shorter than this are still speech (the head keeps moving through them)."""
ENVELOPE_SMOOTH_S = 0.5
REST_FLOOR = 0.2
"""Share of the sway left in a long silence."""
PAUSE_S = 0.25
"""Unvoiced gap (seconds) that counts as half a pause when no pauses are given."""

# Emotion.
POSTURE_DEG: dict[str, tuple[float, float, float]] = {
    "neutral": (0.0, 0.0, 0.0),
    "happy": (-3.0, 0.0, 3.0),
    "sad": (7.0, 0.0, 0.0),
    "angry": (4.0, 0.0, 0.0),
    "fearful": (-4.0, 2.0, 0.0),
    "disgusted": (-3.0, 6.0, 2.0),
    "surprised": (-6.0, 0.0, 0.0),
    "contempt": (-4.0, 3.0, 2.0),
}
"""(pitch down, yaw to the subject's left, roll to the right) degrees at intensity 1. Yaw and roll
go to a side drawn from the seed (one side per take). Rotation only: the forward thrust of an
angry head or the pull-back of a fearful one (translations) is left to the rig."""
ACTIVITY: dict[str, float] = {
    "neutral": 1.0, "happy": 1.25, "sad": 0.7, "angry": 1.35, "fearful": 1.1, "disgusted": 1.0,
    "surprised": 1.2, "contempt": 0.85,
}
"""Gain on nods and sway at intensity 1 (1 + (gain − 1) · intensity in between)."""
POSTURE_SMOOTH_S = 0.25
"""The intensity is smoothed over this many seconds before it moves the head (no snapping)."""

NOISE_KNOT_S = 0.05
NOISE_BLOCK_S = 10.0


def head_motion(prosody: Prosody, fps: float, emotion, intensity: np.ndarray, seed: int, *,
                pauses: list[float] | None = None) -> np.ndarray:
    """The head's rotation for every frame of a take.

    Args:
        prosody: loudness (dBFS), f0 (Hz) and voiced, each (T,) on the frame grid at ``fps``
            (:func:`core.audio.features.prosody`).
        fps: frames per second.
        emotion: one of the 8 MEAD emotions (or a synonym), or None for free text (no posture, no
            activity gain); or a ``core.emotion.track.EmotionTrack``, whose mix blends the
            postures and activity gains of its emotions frame by frame.
        intensity: (T,) emotion intensity in [0, 1]; scales the posture and the activity gain.
        seed: non-negative int; the same seed gives the same motion.
        pauses: seconds at which pauses begin (the eye layer's); by default, unvoiced gaps of about
            :data:`PAUSE_S` or more after speech (:func:`pauses_in_voicing`).

    Returns:
        (T, 3) float32 axis-angle radians of FLAME's neck joint relative to rest, in FLAME's frame
        (see the module docstring for the signs: +x nods down, +y turns to the subject's left, +z
        tilts toward the right shoulder).

    Raises:
        SettingsError: fps not a positive finite number, or a seed that is not a non-negative int.
        IntensityError: intensity not finite or outside [0, 1].
        EmotionError: an emotion that is none of the 8 (pass None for free text).
        ValueError: tracks of different lengths, or pauses that are not finite seconds ≥ 0.
    """
    emotion, intensity, pauses = _checked(prosody, fps, emotion, intensity, seed, pauses)
    n = len(prosody.f0)
    if n == 0:
        return np.zeros((0, 3), np.float32)
    times = np.arange(n) / fps
    duration = n / fps
    sway_rng, accent_rng, phrase_rng, posture_rng = np.random.default_rng(seed).spawn(4)
    pauses, pause_weights = pauses_in_voicing(prosody.voiced, fps) if pauses is None else (pauses, np.ones(len(pauses)))

    smooth_intensity = scipy.ndimage.gaussian_filter1d(intensity, POSTURE_SMOOTH_S * fps, mode="nearest")
    names, mix = _emotion_mix(emotion, times)  # (K,), (T, K)
    gain = 1.0 + (mix @ np.array([ACTIVITY.get(name, 1.0) for name in names]) - 1.0) * smooth_intensity  # (T,)

    accent_t, accent_w = accents(prosody, fps)
    nods = nod_track(times, accent_t, nod_amplitudes(accent_t, accent_w, accent_rng, duration))
    targets = _smooth_noise(phrase_rng, duration, PHRASE_SD_DEG, PHRASE_TIMESCALE_S)
    wander = sway(times, sway_rng) + phrase_shifts(times, pauses, pause_weights, targets)
    wander = wander - scipy.ndimage.gaussian_filter1d(wander, DRIFT_WINDOW_S * fps, axis=0, mode="reflect")
    envelope = speech_envelope(prosody.voiced, fps)
    degrees = gain[:, None] * (nods + envelope[:, None] * wander)
    degrees += smooth_intensity[:, None] * (mix @ postures(names, posture_rng))
    return np.radians(degrees).astype(np.float32)


def _checked(prosody, fps, emotion, intensity, seed, pauses):
    if not isinstance(fps, (int, float, np.integer, np.floating)) or not math.isfinite(fps) or fps <= 0:
        raise SettingsError(f"fps must be a positive number of frames per second, not {fps!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SettingsError(f"seed must be a non-negative integer, not {seed!r}")
    n = len(prosody.f0)
    if len(prosody.loudness) != n or len(prosody.voiced) != n:
        raise ValueError(f"prosody tracks differ in length: loudness {len(prosody.loudness)}, "
                         f"f0 {n}, voiced {len(prosody.voiced)}")
    intensity = np.asarray(intensity, np.float64)
    if intensity.shape != (n,):
        raise ValueError(f"intensity must be ({n},) like the prosody, not {intensity.shape}")
    if not np.isfinite(intensity).all() or intensity.min(initial=0) < 0 or intensity.max(initial=0) > 1:
        raise IntensityError("intensity must be finite and between 0 and 1; clip or rescale the curve")
    if isinstance(emotion, str):
        emotion = canonical_emotion(emotion)
    if pauses is not None:
        pauses = [float(p) for p in pauses]
        if not all(math.isfinite(p) and p >= 0 for p in pauses):
            raise ValueError(f"pauses must be finite seconds ≥ 0, not {pauses!r}")
    return emotion, intensity, pauses


def prominence(prosody: Prosody, fps: float) -> np.ndarray:
    """(T,) prominence in [0, 1]: pitch above the speaker's median (:func:`robust_semitones`, reaching 1 at
    :data:`PITCH_SPAN_ST` semitones) and loudness above the median voiced level (1 at
    :data:`LOUD_SPAN_DB`), weighted :data:`PITCH_WEIGHT` : the rest, on voiced frames, smoothed over
    :data:`ACCENT_SMOOTH_S` seconds. Pitch accents and stressed syllables both raise it."""
    if prosody.voiced.sum() < 3:
        return np.zeros(len(prosody.f0))
    pitch = np.clip(robust_semitones(prosody, fps) / PITCH_SPAN_ST, 0, 1)
    level = np.median(prosody.loudness[prosody.voiced])
    loud = np.clip((prosody.loudness - level) / LOUD_SPAN_DB, 0, 1)
    raw = np.where(prosody.voiced, PITCH_WEIGHT * pitch + (1 - PITCH_WEIGHT) * loud, 0.0)
    return scipy.ndimage.gaussian_filter1d(raw, ACCENT_SMOOTH_S * fps, mode="nearest")


def robust_semitones(prosody: Prosody, fps: float) -> np.ndarray:
    """(T,) :meth:`Prosody.semitones` median-filtered over :data:`OCTAVE_SPIKE_S` (at least 3
    frames): YIN's single-frame octave jumps (±12–20 semitones) are not accents."""
    width = max(3, round(OCTAVE_SPIKE_S * fps) | 1)
    return scipy.ndimage.median_filter(prosody.semitones(), size=width, mode="nearest")


def accents(prosody: Prosody, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """The accents the head nods on, and how strongly: local maxima of :func:`prominence`.

    A peak's weight rises from 0 at :data:`ACCENT_THRESHOLD` to 1 at :data:`ACCENT_FULL`, is scaled
    down when it stands less than :data:`ACCENT_STANDOUT` above its surroundings, and is suppressed
    by a higher peak within :data:`ACCENT_MIN_GAP_S` (softly: two peaks of nearly equal height share
    the nod). Every factor is continuous in the prominence, so the small differences between the
    same speech sampled at 25 and at 60 fps move a nod a little rather than drop it.

    Returns:
        ``(times, weights)``: (A,) seconds, placed between frames by a parabola through the peak and
        its neighbours, and (A,) weights in [0, 1].
    """
    s = prominence(prosody, fps)
    peaks, _ = scipy.signal.find_peaks(s, height=ACCENT_THRESHOLD)
    peaks = peaks[(peaks > 0) & (peaks < len(s) - 1)]
    standout = scipy.signal.peak_prominences(s, peaks)[0]
    left, mid, right = s[peaks - 1], s[peaks], s[peaks + 1]
    curvature = left - 2 * mid + right
    offset = np.clip(0.5 * (left - right) / np.where(curvature < 0, curvature, -np.inf), -0.5, 0.5)
    times, heights = (peaks + offset) / fps, mid - 0.25 * (left - right) * offset
    standout = np.clip(standout / ACCENT_STANDOUT, 0, 1)
    weights = np.clip((heights - ACCENT_THRESHOLD) / (ACCENT_FULL - ACCENT_THRESHOLD), 0, 1) * standout
    return times, weights * _suppression(times, heights, standout)


def _suppression(times: np.ndarray, heights: np.ndarray, standout: np.ndarray) -> np.ndarray:
    """(A,) factor in (0, 1]: each higher peak within :data:`ACCENT_MIN_GAP_S` takes a share that
    grows as it gets nearer and higher (a logistic in the height difference, 0.05 wide) and as it
    stands out (``standout`` (A,) in [0, 1]: a shoulder that has just become a peak takes none)."""
    keep = np.ones(len(times))
    for k in range(1, len(times)):
        gap = times[k:] - times[:-k]  # (A - k,) seconds between peak i and peak i + k
        if gap.min(initial=np.inf) >= ACCENT_MIN_GAP_S:
            break
        near = 1 - _smoothstep(gap / ACCENT_MIN_GAP_S)
        later_higher = scipy.special.expit((heights[k:] - heights[:-k]) / 0.05)
        keep[:-k] *= 1 - near * later_higher * standout[k:]
        keep[k:] *= 1 - near * (1 - later_higher) * standout[:-k]
    return keep


def nod_amplitudes(times: np.ndarray, weights: np.ndarray, rng: np.random.Generator, duration: float) -> np.ndarray:
    """(A, 3) degrees of each accent's gesture: pitch :data:`NOD_DEG` · weight, varied by
    :data:`NOD_SPREAD`; roll and yaw signed, :data:`TILT_SD` and :data:`TURN_SD` of the pitch. The
    variation is a smooth random function of the accent's time, so an accent found a few ms earlier
    at another frame rate nods the same."""
    field = _smooth_noise(rng, duration, (NOD_SPREAD, TILT_SD, TURN_SD), NOD_VARIATION_S)(times).reshape(-1, 3)
    pitch = NOD_DEG * weights * np.clip(1 + field[:, 0], 0.5, 1.5)
    return np.stack([pitch, pitch * field[:, 1], pitch * field[:, 2]], axis=1)


def nod_kernel(t: np.ndarray) -> np.ndarray:
    """A unit nod against time from its accent, seconds (N,) → (N,): a slow lift before, the
    downward stroke across the accent (fastest at t = 0), the apex (1) just after, a slower return.
    C2 (:func:`_smoothstep` pieces) and zero in area: a run of nods leaves the mean pose at rest."""
    half = NOD_STROKE_S / 2
    stroke = _smoothstep((t + half) / NOD_STROKE_S)
    back = _smoothstep((t - half - NOD_HOLD_S) / NOD_RETURN_S)
    lift = _smoothstep((t + half + NOD_LIFT_S) / NOD_LIFT_S) - stroke
    return (stroke - back) - _LIFT_RATIO * lift


_LIFT_RATIO = (NOD_STROKE_S / 2 + NOD_HOLD_S + NOD_RETURN_S / 2) / (NOD_LIFT_S / 2 + NOD_STROKE_S / 2)
"""Height of the lift that cancels the area of the stroke and return."""
_NOD_SPAN = (-NOD_STROKE_S / 2 - NOD_LIFT_S, NOD_STROKE_S / 2 + NOD_HOLD_S + NOD_RETURN_S)


def nod_track(times: np.ndarray, accent_times: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
    """(T, 3) degrees: the sum of one :func:`nod_kernel` per accent, scaled per axis.

    Args:
        times: (T,) seconds of the frames.
        accent_times: (A,) seconds.
        amplitudes: (A, 3) degrees (pitch, yaw, roll) per accent.
    """
    out = np.zeros((len(times), 3))
    for t0, amplitude in zip(accent_times, amplitudes):
        lo, hi = np.searchsorted(times, [t0 + _NOD_SPAN[0], t0 + _NOD_SPAN[1]])
        out[lo:hi] += nod_kernel(times[lo:hi] - t0)[:, None] * amplitude
    return out


def sway(times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, 3) degrees of idle sway: the sum of smoothed noise at :data:`SWAY_TIMESCALE_S`, with
    :data:`SWAY_SD_DEG` per axis."""
    end = times[-1] if len(times) else 0.0
    layers = zip(rng.spawn(len(SWAY_TIMESCALE_S)), SWAY_SD_DEG, SWAY_TIMESCALE_S)
    return sum(_smooth_noise(r, end, sd, scale)(times) for r, sd, scale in layers)


def phrase_shifts(times: np.ndarray, pauses: np.ndarray, weights: np.ndarray,
                  targets: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(T, 3) degrees: at each pause (P,) seconds the head eases over :data:`PHRASE_SHIFT_S` toward
    a new position ``targets(pause time)`` (3,), by the pause's weight (P,) in [0, 1], and holds it
    until the next pause."""
    steps = np.zeros((len(times) + 1, 3))
    ease = np.zeros((len(times), 3))
    current = np.zeros(3)
    for start, weight in sorted(zip(pauses, weights)):
        target = current + weight * (np.asarray(targets(np.array([start])), np.float64).reshape(3) - current)
        lo, hi = np.searchsorted(times, [start, start + PHRASE_SHIFT_S])
        steps[hi] += target - current
        ease[lo:hi] += _smoothstep((times[lo:hi] - start) / PHRASE_SHIFT_S)[:, None] * (target - current)
        current = target
    return np.cumsum(steps, axis=0)[:-1] + ease


def speech_envelope(voiced: np.ndarray, fps: float) -> np.ndarray:
    """(T,) in [:data:`REST_FLOOR`, 1]: 1 while speaking (voiced, gaps under :data:`SPEECH_GAP_S`
    bridged), easing down to the floor in longer silences over about :data:`ENVELOPE_SMOOTH_S` s."""
    speaking = _bridge_gaps(np.asarray(voiced, bool), round(SPEECH_GAP_S * fps))
    smooth = scipy.ndimage.gaussian_filter1d(speaking.astype(np.float64), ENVELOPE_SMOOTH_S * fps, mode="nearest")
    return REST_FLOOR + (1 - REST_FLOOR) * smooth


def postures(emotions, rng: np.random.Generator) -> np.ndarray:
    """(K, 3) degrees at intensity 1 of each emotion: :data:`POSTURE_DEG` with yaw and roll on one
    side for the take, drawn from ``rng``; zeros for None (free text)."""
    out = np.zeros((len(emotions), 3))
    if all(emotion is None for emotion in emotions):
        return out
    side = rng.choice([-1.0, 1.0])
    for k, emotion in enumerate(emotions):
        if emotion is not None:
            out[k] = np.asarray(POSTURE_DEG[emotion]) * np.array([1.0, side, side])
    return out


def _emotion_mix(emotion, times: np.ndarray) -> tuple[tuple, np.ndarray]:
    """The emotions (K,) and their (T, K) mix: one emotion's is a column of ones."""
    if hasattr(emotion, "mix"):
        return emotion.names, emotion.mix(times)
    return (emotion,), np.ones((len(times), 1))


def pauses_in_voicing(voiced: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Pauses from the voicing alone: unvoiced gaps after voiced speech (flicker under 40 ms
    smoothed away), each weighted from 0 for a gap of :data:`PAUSE_S` − 0.1 s to 1 for one of
    :data:`PAUSE_S` + 0.1 s, so that a gap near the limit makes only a small shift.

    Returns:
        ``(starts, weights)``: (P,) seconds and (P,) weights in (0, 1].
    """
    steady = scipy.ndimage.gaussian_filter1d(np.asarray(voiced, np.float64), 0.04 * fps, mode="nearest") > 0.5
    starts, stops = _runs(~steady)
    weights = _smoothstep(((stops - starts) / fps - PAUSE_S + 0.1) / 0.2)
    keep = (starts > 0) & (weights > 0)
    return starts[keep] / fps, weights[keep]


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (exclusive) frames of the True runs of a (T,) bool mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return edges[::2], edges[1::2]


def _bridge_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """``mask`` with False runs shorter than ``max_gap`` frames between True runs set True."""
    out = mask.copy()
    starts, stops = _runs(~mask)
    for a, b in zip(starts, stops):
        if a > 0 and b < len(mask) and b - a < max_gap:
            out[a:b] = True
    return out


def _smooth_noise(rng: np.random.Generator, duration: float, sd,
                  timescale: float) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth random function of time: seconds (N,) → (N, 3), zero-mean Gaussian with standard
    deviation ``sd`` (3,) per column and correlation time ``timescale`` seconds (white noise on a
    :data:`NOISE_KNOT_S` grid, Gaussian-smoothed, joined by a cubic spline). The grid covers whole
    :data:`NOISE_BLOCK_S` blocks past ``duration``, so a take's length in frames does not change it."""
    span = (math.ceil(duration / NOISE_BLOCK_S) + 1) * NOISE_BLOCK_S
    count = round(span / NOISE_KNOT_S) + 1
    sigma = timescale / NOISE_KNOT_S
    knots = scipy.ndimage.gaussian_filter1d(rng.standard_normal((count, 3)), sigma, axis=0, mode="reflect")
    knots *= math.sqrt(2 * math.sqrt(math.pi) * sigma) * np.asarray(sd, np.float64)  # unit variance after smoothing
    return scipy.interpolate.CubicSpline(np.arange(count) * NOISE_KNOT_S, knots, axis=0)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 → 1 with zero slope and zero curvature at both ends (the quintic "smootherstep"), x
    clipped to [0, 1]: motion built from it is C2, so velocity and acceleration never jump."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


# Measures for the tests and the benchmark, defined from the signal and the pose alone.

ACCENT_MIN_ST = 2.0
"""A pitch accent: a voiced F0 peak at least this many semitones above the speaker's median."""
ACCENT_SPACING_S = 0.2
NOD_MIN_DEG_S = 5.0
"""A nod: a peak of downward pitch velocity of at least this many degrees a second (the sway stays
around 1°/s)."""
NOD_SPACING_S = 0.2


def pitch_accents(prosody: Prosody, fps: float) -> np.ndarray:
    """(A,) seconds of pitch accents: local maxima of voiced F0 (:func:`robust_semitones`) at least
    :data:`ACCENT_MIN_ST` above the median, standing 1 semitone above their surroundings, at least
    :data:`ACCENT_SPACING_S` apart."""
    peaks, _ = scipy.signal.find_peaks(robust_semitones(prosody, fps), height=ACCENT_MIN_ST,
                                       distance=max(1, round(ACCENT_SPACING_S * fps)), prominence=1.0)
    return peaks / fps


def nod_times(pose: np.ndarray, fps: float) -> np.ndarray:
    """(N,) seconds of nods in a (T, 3) axis-angle pose (radians): peaks of the downward pitch
    velocity (d/dt of the x component, +x down) of at least :data:`NOD_MIN_DEG_S`, at least
    :data:`NOD_SPACING_S` apart."""
    velocity = np.gradient(np.degrees(np.asarray(pose, np.float64)[:, 0])) * fps  # deg/s, + downward
    peaks, _ = scipy.signal.find_peaks(velocity, height=NOD_MIN_DEG_S, distance=max(1, round(NOD_SPACING_S * fps)))
    return peaks / fps


def share_near(events: np.ndarray, targets: np.ndarray, window: float = 0.12) -> float:
    """Share of ``events`` (E,) seconds that lie within ``window`` seconds of one of ``targets`` (A,)
    seconds; nan when there are no events."""
    events, targets = np.asarray(events, np.float64), np.asarray(targets, np.float64)
    if len(events) == 0:
        return float("nan")
    if len(targets) == 0:
        return 0.0
    return float(np.mean(np.abs(events[:, None] - targets[None, :]).min(axis=1) <= window))
