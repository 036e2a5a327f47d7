"""Blinks and small eye movements, so the face is alive between and during words.

Blinks: spontaneous blinking runs at about 26 a minute while talking and 17 at rest
(Bentivoglio et al., Movement Disorders 1997), and clusters at phrase boundaries and pauses
(Nakano & Kitazawa, Exp. Brain Res. 2010; Cummins, 2012). A blink closes in 70–100 ms, holds
briefly and opens two to three times slower (Evinger et al., IOVS 1991), 0.1–0.4 s in all.

Eye movements: while talking, gaze rests on the listener with small saccades every second or
so (a few degrees, 20–50 ms each) and glances aside at phrase starts (Argyle & Cook, "Gaze and
Mutual Gaze", 1976).

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed gives the same eyes.
A layer that every expression engine gets (:func:`add_eyes`).
"""

from __future__ import annotations

import numpy as np

from ..channels import CHANNEL_INDEX

BLINK_INTERVAL_S = 2.6
"""Mean seconds between spontaneous blinks while talking (≈ 23 a minute)."""
MIN_BLINK_GAP_S = 0.8
PAUSE_BLINK_PROBABILITY = 0.7
"""Chance of a blink at a pause (``core.audio.speech.Speech.pauses``)."""
FIXATION_S = 1.1
"""Mean seconds between small saccades."""
GAZE_SD_DEG = (2.5, 1.5)
"""Standard deviation of gaze offsets, (yaw, pitch) degrees, around the listener."""
LOOK_RANGE_DEG = 25.0
"""Degrees of eye rotation that an eyeLook channel reaches at weight 1."""
SACCADE_S = 0.04

EYE_CHANNELS = [i for name, i in CHANNEL_INDEX.items() if name.startswith(("eyeBlink", "eyeLook"))]
"""Columns of the channels this layer drives (blinks and gaze)."""


def blink_times(duration: float, pauses: list[float], rng: np.random.Generator) -> list[float]:
    """Seconds at which the lids are fully closed.

    Args:
        duration: length of the take in seconds.
        pauses: seconds at which pauses begin (phrase ends).
        rng: the random generator.
    """
    events = [t + rng.uniform(0.03, 0.12) for t in pauses if rng.random() < PAUSE_BLINK_PROBABILITY]
    t = rng.uniform(0.3, BLINK_INTERVAL_S)
    while t < duration:
        events.append(t)
        t += max(MIN_BLINK_GAP_S, rng.gamma(3.0, BLINK_INTERVAL_S / 3.0))
    kept: list[float] = []
    for t in sorted(events):
        if (not kept or t - kept[-1] >= MIN_BLINK_GAP_S) and t < duration - 0.05:
            kept.append(t)
    return kept


def blink_curve(times: np.ndarray, closed_at: list[float], fps: float, rng: np.random.Generator) -> np.ndarray:
    """(T,) eyelid closure in [0, 1]: each blink closes in 60–100 ms, holds 20–40 ms and opens in
    140–240 ms; its full closure lands on a frame so that every frame rate shows it."""
    curve = np.zeros(len(times))
    for t in closed_at:
        peak = round(t * fps) / fps
        close, hold, reopen = rng.uniform(0.06, 0.1), rng.uniform(0.02, 0.04), rng.uniform(0.14, 0.24)
        depth = 1.0 if rng.random() > 0.15 else rng.uniform(0.6, 0.85)  # some blinks are partial
        lo, hi = np.searchsorted(times, [peak - close, peak + hold + reopen])
        t = times[lo:hi]
        before = np.clip((t - (peak - close)) / close, 0, 1)
        after = np.clip(1 - (t - (peak + hold)) / reopen, 0, 1)
        shape = np.where(t <= peak, _ease(before), np.where(t <= peak + hold, 1.0, _ease(after)))
        curve[lo:hi] = np.maximum(curve[lo:hi], depth * shape)
    return curve


def gaze_curve(times: np.ndarray, pauses: list[float], rng: np.random.Generator) -> np.ndarray:
    """(T, 2) gaze (yaw to the subject's left, pitch up) in degrees: fixations joined by fast
    saccades, with a glance aside after some pauses and a slow drift of a fraction of a degree."""
    starts = [0.0]
    while starts[-1] < times[-1]:
        starts.append(starts[-1] + rng.gamma(2.0, FIXATION_S / 2.0))
    starts += [t + 0.1 for t in pauses if rng.random() < 0.5]
    starts = sorted(starts)
    targets = rng.normal(0.0, GAZE_SD_DEG, size=(len(starts), 2))
    targets[rng.random(len(starts)) < 0.35] = 0.0  # back to the listener's eyes
    # Each saccade adds its step to every later frame (a cumulative sum) and eases in over SACCADE_S.
    steps = np.zeros((len(times) + 1, 2))
    ease = np.zeros((len(times), 2))
    current = np.zeros(2)
    for start, target in zip(starts, targets):
        lo, hi = np.searchsorted(times, [start, start + SACCADE_S])
        steps[hi] += target - current
        ease[lo:hi] += _ease((times[lo:hi] - start) / SACCADE_S)[:, None] * (target - current)
        current = target
    gaze = np.cumsum(steps, axis=0)[:-1] + ease
    drift = np.cumsum(rng.normal(0.0, 0.05, size=(len(times), 2)), axis=0)
    return gaze + drift - np.linspace(0, 1, len(times))[:, None] * drift[-1]


def eye_weights(num_frames: int, fps: float, pauses: list[float], seed: int = 0) -> np.ndarray:
    """Blinks and gaze as channel weights.

    Args:
        num_frames: T.
        fps: frames per second.
        pauses: seconds at which pauses in the speech begin.
        seed: random seed; the same seed gives the same weights.

    Returns:
        (T, 52) float32 over ``ARKIT_CHANNELS``: eyeBlink_L/R and eyeLook{In,Out,Up,Down}_L/R,
        zeros elsewhere.
    """
    rng = np.random.default_rng(seed)
    times = np.arange(num_frames) / fps
    duration = num_frames / fps
    blink = blink_curve(times, blink_times(duration, pauses, rng), fps, rng)
    yaw, pitch = (gaze_curve(times, pauses, rng) / LOOK_RANGE_DEG).T
    w = np.zeros((num_frames, len(CHANNEL_INDEX)), np.float32)
    for side in "LR":
        w[:, CHANNEL_INDEX[f"eyeBlink_{side}"]] = blink
    # Looking to the subject's left turns the left eye outward and the right eye inward.
    w[:, CHANNEL_INDEX["eyeLookOut_L"]] = w[:, CHANNEL_INDEX["eyeLookIn_R"]] = np.clip(yaw, 0, 1)
    w[:, CHANNEL_INDEX["eyeLookIn_L"]] = w[:, CHANNEL_INDEX["eyeLookOut_R"]] = np.clip(-yaw, 0, 1)
    for side in "LR":
        w[:, CHANNEL_INDEX[f"eyeLookUp_{side}"]] = np.clip(pitch, 0, 1)
        w[:, CHANNEL_INDEX[f"eyeLookDown_{side}"]] = np.clip(-pitch, 0, 1)
    return w


def _ease(x: np.ndarray) -> np.ndarray:
    """Smoothstep: 0 → 1 with zero slope at both ends."""
    return x * x * (3 - 2 * x)


def add_eyes(weights: np.ndarray, speech, seed: int = 0) -> np.ndarray:
    """The eye layer: blinks and gaze (:func:`eye_weights`) added to an engine's expression.

    Args:
        weights: (T, 52) the engine's weights over ``ARKIT_CHANNELS``, in [0, 1].
        speech: the recording's ``core.audio.speech.Speech`` (its pauses time the blinks).
        seed: random seed.

    Returns:
        (T, 52) float32 in [0, 1].
    """
    eyes = eye_weights(len(weights), speech.fps, speech.pauses(), seed)
    return np.clip(weights + eyes, 0.0, 1.0).astype(np.float32)
