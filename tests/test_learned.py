"""The shipped learned engine (P, M, T) on real speech: shapes, seeds, emotions, lip sync, errors."""

import numpy as np
import pytest

from emoflame.core.audio.features import num_frames, prosody
from emoflame.core.audio.load import load_audio
from emoflame.core.channels import CHANNEL_INDEX
from emoflame.core.emotion.adapter import level_norm
from emoflame.core.errors import IntensityError, ModelFileError
from emoflame.core.expression.learned import LearnedEngine


@pytest.fixture(scope="module")
def engine():
    return LearnedEngine.load()


@pytest.fixture(scope="module")
def arctic(shared_data):
    return load_audio(shared_data / "speech" / "arctic_a0007.wav")[0]


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="intensity_predictor.pt"):
        LearnedEngine.load(folder=tmp_path)


def test_intensity_is_seeded_and_on_the_frame_grid(engine, arctic):
    a = engine.predict_intensity(arctic, 25.0, seed=1)
    assert a.shape == (num_frames(len(arctic) / 16000, 25.0),) == (100,) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, engine.predict_intensity(arctic, 25.0, seed=1))
    assert not np.array_equal(a, engine.predict_intensity(arctic, 25.0, seed=2))
    assert engine.predict_intensity(arctic, 60.0).shape == (num_frames(len(arctic) / 16000, 60.0),)


def test_generate_follows_speech_emotion_and_intensity(engine, arctic):
    n = 100
    neutral, latent0 = engine.generate(arctic, 25.0, "neutral", np.zeros(n, np.float32))
    assert neutral.shape == (n, 52) and latent0.shape == (n, 896) and not latent0.any()
    # the jaw follows the voice: loud frames open the mouth more than quiet ones
    loud = prosody(arctic, 25.0).loudness
    jaw = neutral[:, CHANNEL_INDEX["jawOpen"]]
    assert np.corrcoef(jaw, loud)[0, 1] > 0.3
    ramp = np.linspace(0, 1, n, dtype=np.float32)
    happy, latent = engine.generate(arctic, 25.0, "joyful", ramp)  # a synonym: stored embedding
    assert np.allclose(np.linalg.norm(latent, axis=1), level_norm(ramp), atol=0.1)  # the last frame interpolates the 30 fps grid
    smile = happy[:, CHANNEL_INDEX["mouthSmile_L"]] - neutral[:, CHANNEL_INDEX["mouthSmile_L"]]
    assert smile[-10:].mean() > 0.3 and smile[-10:].mean() > smile[:10].mean() + 0.25
    angry = engine.generate(arctic, 25.0, "quietly furious", np.full(n, 0.8, np.float32))[0]  # free text
    assert (angry - neutral)[:, CHANNEL_INDEX["browDown_L"]].mean() > 0.2


def test_bad_intensity_is_refused(engine, arctic):
    with pytest.raises(IntensityError, match="100 values"):
        engine.generate(arctic, 25.0, "happy", np.zeros(50, np.float32))
    with pytest.raises(IntensityError, match=r"\[0, 1\]"):
        engine.generate(arctic, 25.0, "happy", np.full(100, 1.5, np.float32))


def test_hubert_without_weights_says_where_to_put_them(monkeypatch, arctic):
    from emoflame.core.audio.hubert import audio_features

    monkeypatch.delenv("EMOFLAME_HUBERT", raising=False)
    with pytest.raises(ModelFileError, match="EMOFLAME_HUBERT"):
        audio_features(arctic, 30.0, "hubert")
    with pytest.raises(ValueError, match="logmel_prosody"):
        audio_features(arctic, 30.0, "wav2vec")
    assert audio_features(arctic, 30.0).shape == (120, 83)
