"""animate() end to end on real speech: the AnimationClip contract, seeds, controls, errors."""

import numpy as np
import pytest
import soundfile

from emoflame import animate
from emoflame.core.audio.features import prosody
from emoflame.core.audio.load import load_audio
from emoflame.core.errors import TranscriptError
from emoflame.core.channels import ARKIT_CHANNELS
from emoflame.core.clip import AnimationClip
from emoflame.core.errors import AudioError, EmotionError, IntensityError, SettingsError

TEXT = "and you always want to see it in the superlative degree"


@pytest.fixture(scope="module")
def wav(shared_data):
    return shared_data / "speech" / "arctic_a0007.wav"


@pytest.fixture(scope="module")
def happy(wav):
    return animate(wav, emotion="joyful", transcript=TEXT, seed=7, progress=False)


def test_the_clip_contract(happy, wav, tmp_path):
    assert isinstance(happy, AnimationClip)
    assert happy.channels == ARKIT_CHANNELS and happy.fps == 25.0
    assert happy.num_frames == 100 and happy.duration == pytest.approx(soundfile.info(wav).duration, abs=0.04)
    assert happy.audio_path == str(wav) and happy.audio_offset == 0.0
    assert happy.emotion == "joyful" and happy.meta["emotion_class"] == "happy"
    assert happy.meta["phones"] == "aligned to transcript" and happy.meta["engine"] == "phonetic"
    assert 0 <= happy.weights.min() and happy.weights.max() <= 1
    assert 0 <= happy.intensity.min() and happy.intensity.max() <= 1 and happy.intensity.std() > 0.05
    assert happy.emotion_latent.shape == (100, 0)  # the phonetic engine's emotion is FACS, not a latent
    loaded = AnimationClip.load(happy.save(tmp_path / "clip.npz"))
    assert np.array_equal(loaded.weights, happy.weights)


def test_lips_closed_on_the_aligned_bilabial_and_jaw_follows_loudness(happy, wav):
    hold = np.arange(58, 62)  # frames 58-61: 2.32-2.44 s, inside the P at 2.30-2.46 s
    assert happy.channel("jawOpen")[hold].max() < 0.06 and happy.channel("mouthPress_L")[hold].min() > 0.3
    assert happy.channel("mouthSmile_L")[hold].min() > 0.5  # still happy while the lips close
    loudness = prosody(load_audio(wav)[0], 25.0).loudness
    assert np.corrcoef(happy.channel("jawOpen"), loudness)[0, 1] > 0.7


def test_same_seed_same_clip(happy, wav):
    again = animate(wav, emotion="happy", transcript=TEXT, seed=7, progress=False)
    assert np.array_equal(again.weights, happy.weights)
    # The seed draws the eyes and P's prior sample: at a constant intensity only the eyes differ.
    one, other = (animate(wav, emotion="happy", intensity=0.8, transcript=TEXT, seed=s, progress=False) for s in (7, 8))
    differs = np.abs(other.weights - one.weights).max(axis=0) > 0
    assert differs.any() and all(ARKIT_CHANNELS[i].startswith("eye") for i in np.flatnonzero(differs))


def test_recognised_phones_and_intensity_controls(wav, tmp_path):
    curve = tmp_path / "ramp.csv"
    curve.write_text("time,intensity\n0,0\n4,1\n")
    ramp = animate(wav, emotion="sad", intensity=curve, fps=30, transcript="none", progress=False)  # recognised phones
    assert ramp.meta["phones"] == "recognised" and ramp.num_frames == 120
    assert np.allclose(ramp.intensity, np.clip(np.arange(120) / 30 / 4, 0, 1), atol=1e-6)
    brow = ramp.channel("browInnerUp")  # AU1 of sadness follows the ramp
    assert brow[:30].mean() < 0.2 < 0.5 < brow[-30:].mean()
    assert ramp.channel("mouthPress_L")[int(2.38 * 30)] > 0.3  # the recognised P, confirmed by the signal


def test_bad_input_is_refused_before_any_work(wav, tmp_path):
    with pytest.raises(EmotionError, match="choose one of"):
        animate(tmp_path / "missing.wav", emotion="hangry")  # the emotion is checked first
    with pytest.raises(AudioError, match="not found"):
        animate(tmp_path / "missing.wav")
    with pytest.raises(IntensityError, match="must lie in"):
        animate(wav, intensity=2.0, transcript=TEXT, progress=False)
    with pytest.raises(TranscriptError, match="does not match"):
        animate(wav, transcript="the quick brown fox jumps over the lazy dog", progress=False)
    with pytest.raises(SettingsError, match="unknown engine"):
        animate(wav, engine="magic")
    with pytest.raises(SettingsError, match="fps"):
        animate(wav, fps=0)


def test_learned_engine_reads_free_text_and_keeps_the_eyes_alive(wav):
    furious = animate(wav, emotion="quietly furious", engine="learned", seed=3, progress=False)
    calm = animate(wav, emotion="neutral", engine="learned", seed=3, progress=False)
    assert furious.weights.shape == (100, 52) and furious.meta["engine"] == "learned"
    assert furious.emotion_latent.shape == (100, 896) and not calm.emotion_latent.any()
    # Anger lowers the brows (AU4); the text encoder places "quietly furious" near angry.
    assert furious.channel("browDown_L").mean() > calm.channel("browDown_L").mean() + 0.1
    assert furious.channel("eyeBlink_L").max() > 0.8  # blinks from the eye model, not from T
    again = animate(wav, emotion="quietly furious", engine="learned", seed=3, progress=False)
    np.testing.assert_array_equal(again.weights, furious.weights)


def test_audio_intensity_comes_from_the_learned_predictor_for_both_engines(wav):
    phonetic = animate(wav, emotion="sad", engine="phonetic", progress=False)
    learned = animate(wav, emotion="sad", engine="learned", progress=False)
    assert phonetic.meta["intensity_source"] == learned.meta["intensity_source"] == "learned predictor P"
    np.testing.assert_allclose(phonetic.intensity, learned.intensity)
    assert phonetic.intensity.std() > 0.05  # frame-wise, not a constant


def test_the_words_are_recognised_and_aligned_by_default_and_recognition_failing_falls_back(wav, monkeypatch, tmp_path):
    auto = animate(wav, emotion="neutral", intensity=0.0, progress=False)
    assert auto.meta["phones"] == "aligned to the automatic transcript"
    assert "superlative degree" in auto.meta["transcript"]  # Whisper tiny.en hears the line word for word
    assert auto.channel("jawOpen")[58:62].max() < 0.06  # the P of "superlative" closes without a typed transcript
    none = animate(wav, emotion="neutral", intensity=0.0, transcript="none", progress=False)
    assert none.meta["phones"] == "recognised" and "transcript" not in none.meta
    from emoflame.core.audio import recognition
    from emoflame.core.errors import ModelFileError, TranscriptError

    def deaf(*args, **kwargs):
        raise TranscriptError("no speech was recognised in the recording; give the transcript")

    monkeypatch.setattr(recognition, "transcribe", deaf)
    fallback = animate(wav, emotion="neutral", intensity=0.0, progress=False)
    assert fallback.meta["phones"] == "recognised (the automatic transcript failed: no speech was recognised in the recording)"
    np.testing.assert_array_equal(fallback.weights, none.weights)
    monkeypatch.undo()
    with pytest.raises(ModelFileError, match="Whisper model folder not found"):
        animate(wav, progress=False, settings=emoflame_settings(whisper_model=str(tmp_path / "nowhere")))


def emoflame_settings(**values):
    from emoflame.core.settings import Settings

    return Settings(**values)
