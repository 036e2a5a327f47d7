"""Emotion over time: the track forms, their errors, the eased mix, and takes on real speech whose
emotion changes (both engines): the change is blended in the emotion's space, not cut."""

import numpy as np
import pytest

from emoflame import animate
from emoflame.core.emotion.adapter import level_norm
from emoflame.core.emotion.facs import emotion_direction
from emoflame.core.emotion.track import EmotionTrack, read_emotion_track
from emoflame.core.emotion.vocabulary import read_emotion
from emoflame.core.errors import EmotionError, IntensityError

TRANSITION = 0.3


@pytest.fixture(scope="module")
def wav(shared_data):
    return shared_data / "speech" / "arctic_a0007.wav"


def test_the_forms_of_a_track(tmp_path):
    text = read_emotion_track("neutral@0, Furious@2.5,sad@6")
    assert [e.name for e in text.emotions] == ["neutral", "angry", "sad"] and text.starts == (0.0, 2.5, 6.0)
    pairs = read_emotion_track([("happy", 0), ("disgust", 1.25)])
    assert pairs.names == ("happy", "disgusted") and pairs.intensities is None
    late = read_emotion_track("angry@1")  # before the first change the face is at rest
    assert late.names == ("neutral", "angry") and late.starts == (0.0, 1.0)
    single = read_emotion_track("quietly furious", free_text=True)
    assert single.names == (None,) and single.starts == (0.0,)
    csv = tmp_path / "track.csv"
    csv.write_text("time,emotion,intensity\n0,neutral,0\n1.5,angry,0.9\n3,sad,0.5\n")
    filed = read_emotion_track(str(csv))
    assert filed.names == ("neutral", "angry", "sad") and filed.intensities == (0.0, 0.9, 0.5)
    assert filed.intensity(np.array([0.0, 2.0, 3.5])) == pytest.approx([0.0, 0.9, 0.5])


@pytest.mark.parametrize("value, message", [
    ("neutral@0,angry@", "give seconds as a number"), ("neutral@0,@2", "emotion@seconds"),
    ("angry@2,sad@1", "must increase"), ("angry@-1", "0 or more seconds"), ("angry@nan", "finite time"),
    ("neutral@0,bananas@1", "unknown emotion 'bananas'"), ([("happy",)], "not an \\(emotion, seconds\\) pair"),
])
def test_a_malformed_track_names_its_problem(value, message):
    with pytest.raises(EmotionError, match=message):
        read_emotion_track(value)


def test_a_malformed_track_file_names_its_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,feeling\n0,happy\n")
    with pytest.raises(EmotionError, match="header must be 'time,emotion'"):
        read_emotion_track(bad)
    bad.write_text("time,emotion,intensity\n0,happy,1.5\n")
    with pytest.raises(IntensityError, match="line 2: the intensity is 1.5"):
        read_emotion_track(bad)
    with pytest.raises(EmotionError, match="transition"):
        read_emotion_track("happy", transition=60)


def test_the_mix_eases_from_whatever_holds():
    track = EmotionTrack(tuple(read_emotion(e) for e in ("neutral", "angry", "sad")), (0.0, 1.0, 1.1), transition=0.3)
    times = np.arange(0, 2, 0.001)
    mix = track.mix(times)
    assert np.allclose(mix.sum(axis=1), 1.0)
    # continuous: no step beyond the steepest slope of the two smoothsteps that overlap here
    assert np.abs(np.diff(mix, axis=0)).max() < 2 * 1.5 / 0.3 * 0.001
    assert mix[times < 1.0, 0].min() == 1.0 and mix[times >= 1.4, 2].min() == pytest.approx(1.0)
    # sad starts before anger has fully taken over: it takes over from the blend at 1.1 s
    at = np.searchsorted(times, 1.1)
    assert 0 < mix[at, 1] < 1 and mix[at, 2] == 0.0
    assert track.presence(times)[times >= 1.3].min() == pytest.approx(1.0)


@pytest.mark.parametrize("engine", ["phonetic", "learned"])
def test_neutral_then_angry_changes_without_a_jump(wav, engine):
    clip = animate(wav, emotion="neutral@0,angry@1.5", intensity=0.9, engine=engine, seed=1, progress=False)
    times = np.arange(clip.num_frames) / clip.fps
    brow = (clip.channel("browDown_L") + clip.channel("browDown_R")) / 2
    assert brow[times < 1.4].max() < 0.1 and brow[times > 2.0].min() > 0.5  # measured ~0.0 / 0.8 phonetic
    # The steepest change the eased transition allows, with the visemes' and brows' own motion on top.
    allowed = 1.5 / TRANSITION / clip.fps * emotion_direction("angry").max() * 0.9
    assert np.abs(np.diff(brow)).max() <= allowed * 1.3
    assert clip.emotion_track == (("neutral", 0.0), ("angry", 1.5)) and clip.emotion == "neutral → angry"
    assert clip.intensity[times < 1.5].max() == 0.0 and clip.intensity[times > 1.8].min() == pytest.approx(0.9)
    if engine == "learned":  # the latent's norm is the intensity's, through the transition too
        norms = np.linalg.norm(clip.emotion_latent, axis=1)
        np.testing.assert_allclose(norms, level_norm(clip.intensity), atol=1e-3)


def test_the_learned_latent_turns_from_one_emotion_to_the_next_at_a_constant_norm(wav):
    clip = animate(wav, emotion="happy@0,sad@2", intensity=0.8, engine="learned", seed=2, progress=False)
    times = np.arange(clip.num_frames) / clip.fps
    latent = clip.emotion_latent
    norms = np.linalg.norm(latent, axis=1)
    assert np.allclose(norms, level_norm(np.float32(0.8)), atol=1e-3)  # never dips through the origin
    happy, sad = latent[0] / norms[0], latent[-1] / norms[-1]
    toward_sad = latent @ sad / norms
    during = (times >= 2.0) & (times <= 2.0 + TRANSITION)
    assert np.all(np.diff(toward_sad[during]) > 0)  # turning steadily towards sad
    assert latent[times < 2.0] @ happy / norms[times < 2.0] == pytest.approx(1.0, abs=1e-5)


def test_a_track_must_fit_the_recording_and_the_phonetic_engine_reads_no_free_text(wav):
    with pytest.raises(EmotionError, match="'angry' starts at 9 s but the recording is 4.00 s"):
        animate(wav, emotion="neutral@0,angry@9", intensity=0.5, progress=False)
    with pytest.raises(EmotionError, match="unknown emotion 'quietly furious'"):
        animate(wav, emotion="neutral@0,quietly furious@1", intensity=0.5, progress=False)
