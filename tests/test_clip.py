import json
import resource
import zipfile

import numpy as np
import pytest

from emoflame.core.channels import ARKIT_CHANNELS, canonical_channel
from emoflame.core.clip import AnimationClip
from emoflame.core.errors import ClipError


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


def test_head_pose_and_emotion_track_round_trip(tmp_path):
    clip = _clip()
    clip.head_pose = np.full((10, 3), 0.02, np.float32)
    clip.emotion_track = (("neutral", 0.0), ("angry", 0.2))
    back = AnimationClip.load(AnimationClip(**vars(clip)).save(tmp_path / "c.npz"))
    np.testing.assert_array_equal(back.head_pose, clip.head_pose)
    assert back.emotion_track == (("neutral", 0.0), ("angry", 0.2))


def test_a_version_1_file_still_loads(tmp_path):
    clip = _clip()
    header = {"format_version": 1, "fps": 25.0, "channels": list(ARKIT_CHANNELS), "emotion": "happy",
              "audio_path": "a.wav", "audio_offset": 0.0, "meta": {}}
    np.savez_compressed(tmp_path / "v1.npz", header=np.array(json.dumps(header)), intensity=clip.intensity,
                        emotion_latent=clip.emotion_latent, weights=clip.weights)
    back = AnimationClip.load(tmp_path / "v1.npz")
    assert back.head_pose is None and back.emotion_track == () and back.num_frames == 10


@pytest.mark.parametrize("change, message", [
    ({"fps": float("nan")}, "fps is nan"), ({"fps": 1000}, r"fps is 1000.0; it must lie in \(0, 240\]"),
    ({"intensity": np.full(10, 1.5)}, r"intensity leaves \[0, 1\]"),
    ({"weights": np.full((10, 52), np.inf)}, "weights holds NaN or infinite"),
    ({"head_pose": np.zeros((9, 3))}, r"head_pose has shape \(9, 3\)"),
    ({"emotion_track": (("angry", 1.0),)}, "must start at 0 s"),
    ({"audio_offset": -1}, "audio_offset is -1.0"),
])
def test_bad_numbers_are_refused_on_construction(change, message):
    with pytest.raises(ClipError, match=message):
        AnimationClip(**{**vars(_clip()), **change})


def test_damaged_and_hostile_clip_files_are_refused_without_allocating(tmp_path, monkeypatch):
    good = _clip().save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    listed = tmp_path / "listed.npz"
    np.savez(listed, header=np.array(json.dumps([1, 2])), intensity=np.zeros(3))
    for path, message in ((truncated, "damaged"), (empty, "damaged"), (listed, "header of type list")):
        with pytest.raises(ClipError, match=message):
            AnimationClip.load(path)
    # A zip bomb: zeros compress a thousandfold; its size is refused before decompressing. (The
    # limit is lowered here so the bomb is quick to make: 160 MB against 64 MB, as 2.5 GB against 2 GiB.)
    monkeypatch.setattr("emoflame.core.clip.MAX_FILE_BYTES", 64 << 20)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.npy", _npy(np.array(json.dumps({"format_version": 2}))))
        with archive.open("weights.npy", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(160):
                member.write(chunk)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ClipError, match="more than an AnimationClip can hold"):
        AnimationClip.load(bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start < 50_000  # kB: nothing decompressed


def _npy(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
