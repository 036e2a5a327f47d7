"""The shipped learned engine (P, M, T) on real speech: shapes, seeds, emotions, lip sync, errors."""

import numpy as np
import pytest

from emoflame.core.audio.features import num_frames
from emoflame.core.audio.load import load_audio
from emoflame.core.audio.speech import analyse_speech
from emoflame.core.channels import CHANNEL_INDEX
from emoflame.core.emotion.adapter import level_norm
from emoflame.core.emotion.track import read_emotion_track
from emoflame.core.errors import IntensityError, ModelFileError, SettingsError
from emoflame.core.expression.engines import load_engine
from emoflame.core.expression.eyes import EYE_CHANNELS
from emoflame.core.expression.learned import LearnedEngine, load_learned_engine
from emoflame.core.intensity.learned import load_learned_intensity
from emoflame.core.settings import Settings


@pytest.fixture(scope="module")
def engine():
    return load_learned_engine()


@pytest.fixture(scope="module")
def arctic(shared_data):
    return load_audio(shared_data / "speech" / "arctic_a0007.wav")[0]


@pytest.fixture(scope="module")
def speech(arctic):
    return analyse_speech(arctic, 25.0, phones=False)


def generate(engine, speech, emotion, intensity):
    out = engine.generate(speech, read_emotion_track(emotion, free_text=True), intensity)
    return out.weights, out.emotion_latent


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="emotion_adapter.pt"):
        LearnedEngine.load(folder=tmp_path)
    with pytest.raises(ModelFileError, match="intensity_predictor.pt"):
        load_learned_intensity("cpu", str(tmp_path))


def test_the_device_setting_is_read_on_every_load(engine):
    # The loaders are cached per device: asking for CUDA after a CPU run must not hand back the
    # cached CPU engine (this machine has no GPU, so the CUDA request is refused).
    assert load_engine("learned", Settings(device="cpu")) is engine and engine.device.type == "cpu"
    with pytest.raises(SettingsError, match="no GPU"):
        load_engine("learned", Settings(device="cuda"))
    with pytest.raises(SettingsError, match="auto, cpu, cuda"):
        Settings(device="tpu")


def test_intensity_is_seeded_and_on_the_frame_grid(arctic, speech):
    predictor = load_learned_intensity()
    a = predictor.predict(speech, seed=1)
    assert a.shape == (num_frames(len(arctic) / 16000, 25.0),) == (100,) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, predictor.predict(speech, seed=1))
    assert not np.array_equal(a, predictor.predict(speech, seed=2))
    fast = analyse_speech(arctic, 60.0, phones=False)
    assert predictor.predict(fast).shape == (num_frames(len(arctic) / 16000, 60.0),)


def test_generate_follows_speech_emotion_and_intensity(engine, speech):
    n = 100
    neutral, latent0 = generate(engine, speech, "neutral", np.zeros(n, np.float32))
    assert neutral.shape == (n, 52) and latent0.shape == (n, 896) and not latent0.any()
    assert not neutral[:, EYE_CHANNELS].any()  # T learned no eyes: the eye layer owns them
    # the jaw follows the voice: loud frames open the mouth more than quiet ones
    jaw = neutral[:, CHANNEL_INDEX["jawOpen"]]
    assert np.corrcoef(jaw, speech.prosody.loudness)[0, 1] > 0.3
    ramp = np.linspace(0, 1, n, dtype=np.float32)
    happy, latent = generate(engine, speech, "joyful", ramp)  # a synonym: stored embedding
    assert np.allclose(np.linalg.norm(latent, axis=1), level_norm(ramp), atol=0.1)  # the last frame interpolates the 30 fps grid
    smile = happy[:, CHANNEL_INDEX["mouthSmile_L"]] - neutral[:, CHANNEL_INDEX["mouthSmile_L"]]
    assert smile[-10:].mean() > 0.3 and smile[-10:].mean() > smile[:10].mean() + 0.25
    angry = generate(engine, speech, "quietly furious", np.full(n, 0.8, np.float32))[0]  # free text
    assert (angry - neutral)[:, CHANNEL_INDEX["browDown_L"]].mean() > 0.2


def test_bad_intensity_is_refused(engine, speech):
    with pytest.raises(IntensityError, match="100 values"):
        generate(engine, speech, "happy", np.zeros(50, np.float32))
    with pytest.raises(IntensityError, match=r"\[0, 1\]"):
        generate(engine, speech, "happy", np.full(100, 1.5, np.float32))


def test_hubert_without_weights_says_where_to_put_them(arctic, tmp_path):
    from emoflame.core.audio.frontends import audio_features

    for folder in ("", str(tmp_path)):
        with pytest.raises(ModelFileError, match="EMOFLAME_HUBERT.*HuBERT Weights preference"):
            audio_features(arctic, 30.0, "hubert", folder)
    with pytest.raises(ValueError, match="logmel_prosody"):
        audio_features(arctic, 30.0, "wav2vec")
    assert audio_features(arctic, 30.0).shape == (120, 83)
