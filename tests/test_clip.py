import numpy as np
import pytest

from emoflame.core.channels import ARKIT_CHANNELS, canonical_channel
from emoflame.core.clip import AnimationClip


def _clip(n=10):
    rng = np.random.default_rng(0)
    return AnimationClip(
        fps=25, intensity=np.linspace(0, 1, n), emotion_latent=rng.normal(size=(n, 4)),
        weights=rng.uniform(size=(n, len(ARKIT_CHANNELS))), channels=ARKIT_CHANNELS,
        jaw_pose=np.zeros((n, 3)), emotion="happy", audio_path="a.wav", audio_offset=0.5,
        meta={"engine": "phonetic"},
    )


def test_save_load_round_trip(tmp_path):
    clip = _clip()
    back = AnimationClip.load(clip.save(tmp_path / "c.npz"))
    assert back.fps == 25 and back.channels == ARKIT_CHANNELS and back.emotion == "happy"
    np.testing.assert_array_equal(back.weights, clip.weights)
    np.testing.assert_array_equal(back.emotion_latent, clip.emotion_latent)
    assert back.audio_offset == 0.5 and back.meta == {"engine": "phonetic"}
    assert back.duration == pytest.approx(10 / 25)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="weights have shape"):
        AnimationClip(fps=25, intensity=np.zeros(5), emotion_latent=np.zeros((5, 0)),
                      weights=np.zeros((4, 52)), channels=ARKIT_CHANNELS)


def test_load_refuses_foreign_npz(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not an AnimationClip"):
        AnimationClip.load(tmp_path / "x.npz")


def test_channel_aliases():
    assert len(ARKIT_CHANNELS) == 52 == len(set(ARKIT_CHANNELS))
    assert canonical_channel("mouthSmileLeft") == "mouthSmile_L"
    assert canonical_channel("MouthSmile_R") == "mouthSmile_R"
    assert canonical_channel("jawOpen") == "jawOpen"
    assert canonical_channel("eyeBlink.L") == "eyeBlink_L"
    assert canonical_channel("Exp12") is None
    for name in ("jawLeft", "jawRight", "mouthLeft", "mouthRight"):
        assert canonical_channel(name) == name
    assert canonical_channel("browInnerUp") == "browInnerUp"
