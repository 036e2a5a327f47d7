"""Head motion on real speech: nods on pitch accents, conversational amplitudes, rest in silence,
the emotions' postures, no drift, smooth and the same at any frame rate.

Recordings: arctic_a0007 and the asterisk prompts demo-instruct and basic-pbx-ivr-main (the ones
the generator was tuned on). demo-congrats, priv-callee-options and tt-monkeys are held out of
tuning and of these tests; ``benchmarks/bench_head_motion.py`` reports on them separately.
"""

import numpy as np
import pytest

from emoflame.core.audio.features import prosody
from emoflame.core.audio.load import SAMPLE_RATE, load_audio
from emoflame.core.emotion.vocabulary import MEAD_EMOTIONS
from emoflame.core.errors import EmotionError, IntensityError, SettingsError
from emoflame.core.expression import head
from emoflame.core.flame.geometry import axis_angle_to_matrix

FPS = 25
LONG_TAKE = ("asterisk-demo-instruct", "asterisk-basic-pbx-ivr-main")  # 99 s with the gap


def speech(shared_data, name):
    return load_audio(shared_data / "speech" / f"{name}.wav")[0]


@pytest.fixture(scope="module")
def arctic_padded(shared_data):
    """arctic_a0007 (4 s) followed by 3 s of digital silence, at 25 fps."""
    samples = np.concatenate([speech(shared_data, "arctic_a0007"), np.zeros(3 * SAMPLE_RATE, np.float32)])
    return prosody(samples, FPS)


@pytest.fixture(scope="module")
def long_take(shared_data):
    """Two asterisk prompts joined by 0.5 s of silence: 99 s of one speaker, at 25 fps."""
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    first, second = (speech(shared_data, name) for name in LONG_TAKE)
    return prosody(np.concatenate([first, gap, second]), FPS)


@pytest.fixture(scope="module")
def ivr(shared_data):
    """asterisk-basic-pbx-ivr-main (25 s) at 25 and at 60 fps."""
    samples = speech(shared_data, "asterisk-basic-pbx-ivr-main")
    return {fps: prosody(samples, fps) for fps in (25, 60)}


def motion_deg(tracks, emotion="neutral", level=0.0, seed=0, fps=FPS):
    return np.degrees(head.head_motion(tracks, fps, emotion, np.full(len(tracks.f0), level), seed))


def test_shape_dtype_and_determinism(long_take):
    n = len(long_take.f0)
    pose = head.head_motion(long_take, FPS, "happy", np.full(n, 0.5), 7)
    assert pose.shape == (n, 3) and pose.dtype == np.float32 and np.isfinite(pose).all()
    assert np.array_equal(pose, head.head_motion(long_take, FPS, "happy", np.full(n, 0.5), 7))
    other = head.head_motion(long_take, FPS, "happy", np.full(n, 0.5), 8)
    assert np.degrees(np.abs(pose - other)).max(axis=0).min() > 0.5  # every axis moves differently


def test_free_text_gets_no_posture(long_take):
    assert np.array_equal(motion_deg(long_take, None, 1.0), motion_deg(long_take, "neutral", 1.0))


def test_amplitudes_are_conversational(long_take):
    """A few degrees (Graf et al. 2002; Busso et al. 2007): neither still nor a puppet. Measured on
    this take (seeds 0–2): p5–p95 spans of pitch 3.4–3.8°, yaw 3.8–4.1°, roll 1.8–2.2°; max |angle|
    4.2–5.0°, 2.9–3.8°, 1.7–2.6°."""
    for seed in range(3):
        pose = motion_deg(long_take, seed=seed)
        span = np.percentile(pose, 95, axis=0) - np.percentile(pose, 5, axis=0)
        assert np.all(span >= [2.0, 1.2, 0.8]) and np.all(span <= [8.0, 6.0, 4.0])
        assert np.all(np.abs(pose).max(axis=0) <= [8.0, 6.0, 4.0])


def test_nods_land_on_pitch_accents(long_take):
    pose = head.head_motion(long_take, FPS, "neutral", np.zeros(len(long_take.f0)), 0)
    accents, nods = head.pitch_accents(long_take, FPS), head.nod_times(pose, FPS)
    assert len(nods) >= 0.5 * len(accents) > 20
    share = head.share_near(nods, accents, 0.12)
    rng = np.random.default_rng(0)
    voiced_times = np.flatnonzero(long_take.voiced) / FPS
    chance = np.mean([head.share_near(nods, rng.choice(voiced_times, len(accents), replace=False), 0.12)
                      for _ in range(200)])
    assert share >= 0.75 and share >= chance + 0.4  # measured 0.88 against 0.25


def test_head_comes_to_rest_in_a_long_silence(arctic_padded):
    pose = motion_deg(arctic_padded)
    times = np.arange(len(pose)) / FPS
    speaking, silent = times < 4.0, times >= 5.5  # the last 1.5 s of the 3 s of silence
    assert np.abs(pose[silent]).max() < 0.35  # measured 0.23° (1.05° while speaking)
    assert np.abs(pose[silent]).max() < 0.5 * np.abs(pose[speaking]).max()
    assert np.abs(np.diff(pose[silent], axis=0) * FPS).max() < 0.5  # deg/s: nothing but a slow drift
    assert not np.any(head.nod_times(np.radians(pose), FPS) >= 4.5)


POSTURE_CHECKS = {
    # emotion: the posture's signed minimum per axis at intensity 1 (pitch down, |yaw|, |roll|), degrees
    "sad": (5.0, None, None),
    "angry": (2.5, None, None),
    "surprised": (-4.0, None, None),
    "fearful": (-2.5, 1.0, None),
    "happy": (-2.0, None, 2.0),
    "disgusted": (-2.0, 4.0, 1.0),
    "contempt": (-2.5, 2.0, 1.0),
}


@pytest.mark.parametrize("emotion", sorted(POSTURE_CHECKS))
def test_emotion_posture_scales_with_intensity(long_take, emotion):
    neutral = motion_deg(long_take).mean(axis=0)
    shift = {level: motion_deg(long_take, emotion, level).mean(axis=0) - neutral for level in (0.5, 1.0)}
    pitch, yaw, roll = POSTURE_CHECKS[emotion]
    for level, (dp, dy, dr) in shift.items():
        assert dp * np.sign(pitch) >= abs(pitch) * level  # sad lowers the head, surprise takes it back, ...
        assert yaw is None or abs(dy) >= yaw * level
        assert roll is None or abs(dr) >= roll * level
    assert np.allclose(shift[1.0], 2 * shift[0.5], atol=0.15)


def test_sign_convention_as_documented(long_take):
    """FLAME: y up, +z out of the nose, +x the subject's left. +x pitches the face down (sad's
    posture points the nose down), +y turns it to the subject's left, +z tilts the crown to the
    subject's right."""
    nose, crown = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    sad = np.radians(motion_deg(long_take, "sad", 1.0).mean(axis=0))
    assert (axis_angle_to_matrix(sad[None])[0] @ nose)[1] < -np.sin(np.radians(5.0))
    turn, tilt = axis_angle_to_matrix(np.radians([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]))
    assert (turn @ nose)[0] > 0.08 and (tilt @ crown)[0] < -0.08


def test_anger_moves_the_head_more_than_sadness(long_take):
    spread = {e: motion_deg(long_take, e, 1.0).std(axis=0) for e in ("angry", "neutral", "sad")}
    assert np.all(spread["angry"] > 1.3 * spread["neutral"]) and np.all(spread["neutral"] > 1.2 * spread["sad"])


def test_no_drift_over_a_long_neutral_take(long_take):
    """The issue asks for the mean pose within 1° of rest over ≥ 60 s; measured ≤ 0.015° here."""
    assert len(long_take.f0) / FPS >= 60
    for seed in range(5):
        assert np.all(np.abs(motion_deg(long_take, seed=seed).mean(axis=0)) < 0.5)


def test_smooth_at_25_and_60_fps(ivr):
    """C1: velocity bounded and continuous. A velocity jump would not shrink with the frame step;
    here the largest frame-to-frame velocity change at 60 fps is half that at 25 fps (12.5 against
    25.2°/s; 25/60 = 0.42 is the limit for a smooth curve, 1 for a kink). Peak velocity 55°/s."""
    jump = {}
    for fps, tracks in ivr.items():
        velocity = np.diff(motion_deg(tracks, "angry", 1.0, fps=fps), axis=0) * fps  # deg/s
        assert np.abs(velocity).max() < 80
        jump[fps] = np.abs(np.diff(velocity, axis=0)).max()
    assert jump[60] < 0.6 * jump[25]


def test_same_motion_in_seconds_at_25_and_60_fps(ivr):
    """Measured: mean |difference| 0.07°, p99 0.38°, max 0.95° (prosody computed at each rate)."""
    at25 = motion_deg(ivr[25], "happy", 0.7, seed=3, fps=25)
    at60 = motion_deg(ivr[60], "happy", 0.7, seed=3, fps=60)
    times = np.arange(len(at25)) / 25
    resampled = np.stack([np.interp(times, np.arange(len(at60)) / 60, at60[:, k]) for k in range(3)], axis=1)
    difference = np.abs(at25 - resampled)
    assert difference.mean() < 0.15 and np.percentile(difference, 99) < 0.8 and difference.max() < 2.0


def test_rejects_bad_input(arctic_padded):
    n = len(arctic_padded.f0)
    with pytest.raises(SettingsError):
        head.head_motion(arctic_padded, 0, "sad", np.zeros(n), 0)
    with pytest.raises(SettingsError):
        head.head_motion(arctic_padded, float("nan"), "sad", np.zeros(n), 0)
    with pytest.raises(SettingsError):
        head.head_motion(arctic_padded, FPS, "sad", np.zeros(n), -1)
    with pytest.raises(IntensityError):
        head.head_motion(arctic_padded, FPS, "sad", np.full(n, 1.5), 0)
    with pytest.raises(IntensityError):
        head.head_motion(arctic_padded, FPS, "sad", np.full(n, np.nan), 0)
    with pytest.raises(ValueError):
        head.head_motion(arctic_padded, FPS, "sad", np.zeros(n - 1), 0)
    with pytest.raises(EmotionError):
        head.head_motion(arctic_padded, FPS, "quietly furious", np.zeros(n), 0)
    assert head.head_motion(arctic_padded, FPS, "joyful", np.zeros(n), 0).shape == (n, 3)
    assert set(head.POSTURE_DEG) == set(MEAD_EMOTIONS) == set(head.ACTIVITY)
