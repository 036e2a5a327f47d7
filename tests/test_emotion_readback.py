"""The 8 emotions read on the default avatar in takes of real speech: MediaPipe Face Landmarker's
scores on a few 320 px front renders per take (benchmarks/bench_emotion_readback.py gives the
figures at 512 px, every intensity and five recordings)."""

import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import emoflame
from emoflame.core.emotion.vocabulary import MEAD_EMOTIONS

pytest.importorskip("bpy")
pytest.importorskip("mediapipe")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_emotion_readback as readback  # noqa: E402

HELD_OUT = "asterisk-demo-congrats"  # not looked at while tuning the prototypes
RESOLUTION = 320
FRAMES = 2  # rest and speech frames read per take, each
RISE = 0.08  # measured at 1 over 0: 0.14-0.68 on rest frames, 0.13-0.67 on speech frames


@pytest.fixture(scope="module")
def readings():
    from emoflame.renderers.portrait.face import FaceReader

    out = {}
    with tempfile.TemporaryDirectory() as tmp, FaceReader(num_faces=1) as reader:
        for name in (readback.FIT_RECORDING, HELD_OUT):
            wav = readback.excerpt(readback.RECORDINGS[name], Path(tmp), max_s=5.0)
            out[name] = readback.read_recording(wav, list(MEAD_EMOTIONS), (0.0, 1.0), FRAMES, RESOLUTION, reader,
                                                log=lambda _: None)
    return out


@pytest.mark.parametrize("part", ["rest", "speech"])
def test_characteristic_channels_read_higher_at_full_intensity(readings, part):
    for name, r in readings.items():
        assert len(getattr(r, part)) == FRAMES, (name, part)
        for emotion in MEAD_EMOTIONS[1:]:
            low, high = (readback.characteristic(r, emotion, i, part) for i in (0.0, 1.0))
            assert high > low + RISE, (name, part, emotion, low, high)


def test_the_emotion_shows_in_a_pause(readings):
    """On silent frames (before and after the line, at least 0.12 s from any speech sound) a
    classifier fitted on another recording's silent frames names every emotion."""
    fit, test = readings[readback.FIT_RECORDING], readings[HELD_OUT]
    model = readback.NearestCentroid.fit({e: fit.scores[(e, 1.0)]["rest"]
                                          for e in MEAD_EMOTIONS})
    named = [model.emotions[model.predict(test.scores[(e, 1.0)]["rest"].mean(0))[0]]
             for e in MEAD_EMOTIONS]
    assert sum(a == b for a, b in zip(named, MEAD_EMOTIONS)) >= 7, named


def test_a_classifier_fitted_on_one_recording_tells_the_emotions_apart_on_another(readings):
    fit, test = readings[readback.FIT_RECORDING], readings[HELD_OUT]
    model = readback.NearestCentroid.fit({e: readback.take_features(fit, e, 1.0) for e in MEAD_EMOTIONS})
    takes, _ = readback.confusion(model, [test], 1.0)
    assert np.trace(takes) >= 7, takes


def test_an_emotion_at_intensity_zero_is_the_neutral_take():
    wav = readback.RECORDINGS[readback.FIT_RECORDING]
    neutral = emoflame.animate(wav, emotion="neutral", intensity=0.0, transcript="none", progress=False)
    angry = emoflame.animate(wav, emotion="angry", intensity=0.0, transcript="none", progress=False)
    np.testing.assert_array_equal(neutral.weights, angry.weights)
