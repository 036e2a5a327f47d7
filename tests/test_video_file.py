"""renderers.video_file.write_mp4: H.264 + AAC from frames and the real recording, written atomically."""

import wave

import av
import numpy as np
import pytest

from emoflame.core.errors import OutputError, SettingsError
from emoflame.renderers.video_file import AUDIO_RATE, write_mp4


def _frames(n, h=64, w=80):
    """Frames whose grey level counts up, so each one is recognisable after decoding."""
    return [np.full((h, w, 3), 8 + 4 * i, np.uint8) for i in range(n)]


def _read(path):
    with av.open(str(path)) as c:
        video = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = [f.to_ndarray() for f in c.decode(audio=0)] if c.streams.audio else []
    return video, (np.concatenate(audio, axis=1) if audio else None)


def _no_leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir()) == sorted(keep)


def test_frames_and_the_recording_from_its_offset(shared_data, tmp_path):
    wav = shared_data / "speech" / "arctic_a0007.wav"
    out = write_mp4(_frames(50), 25.0, tmp_path / "take.mp4", audio_path=wav, audio_offset=1.0, progress=False)
    video, audio = _read(out)
    assert len(video) == 50 and video[0].shape == (64, 80, 3)
    assert np.abs(np.array([f.mean() for f in video[:3]]) - [8, 12, 16]).max() < 1.5  # in order, lossy
    # 2.0 s of sound (50 frames at 25 fps), give or take one AAC frame of 1024 samples
    assert abs(audio.shape[1] / AUDIO_RATE - 2.0) < 1100 / AUDIO_RATE
    # the sound is the recording's seconds 1.0-3.0: its loudness envelope follows the source's
    with wave.open(str(wav)) as w:
        source = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64) / 32768
        rate = w.getframerate()
    src = np.abs(source[rate:3 * rate]).reshape(40, -1).mean(1)
    got = np.abs(audio[0, : 2 * AUDIO_RATE]).reshape(40, -1).mean(1)
    assert np.corrcoef(src, got)[0, 1] > 0.9
    assert _no_leftovers(tmp_path, ["take.mp4"])


def test_odd_sizes_are_padded_not_cut(tmp_path):
    frames = [np.zeros((51, 77, 3), np.uint8) for _ in range(3)]
    frames[0][:, -1] = 255  # the last column must survive
    video, audio = _read(write_mp4(frames, 30, tmp_path / "odd.mp4", progress=False))
    assert video[0].shape == (52, 78, 3) and audio is None
    assert video[0][:51, 76].mean() > 200 and video[0][:51, :70].mean() < 10


def test_an_existing_file_is_kept_unless_forced(tmp_path):
    out = tmp_path / "take.mp4"
    out.write_bytes(b"the user's video")
    with pytest.raises(OutputError, match="exists"):
        write_mp4(_frames(3), 25, out, progress=False)
    assert out.read_bytes() == b"the user's video"
    write_mp4(_frames(3), 25, out, force=True, progress=False)
    assert len(_read(out)[0]) == 3
    assert _no_leftovers(tmp_path, ["take.mp4"])


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_write_leaves_nothing_and_out_untouched(tmp_path, interruption):
    out = tmp_path / "take.mp4"
    out.write_bytes(b"the user's video")

    def frames():
        yield from _frames(5)
        raise interruption("stopped while encoding")

    with pytest.raises(interruption):
        write_mp4(frames(), 25, out, force=True, progress=False)
    assert out.read_bytes() == b"the user's video"
    assert _no_leftovers(tmp_path, ["take.mp4"])
    with pytest.raises(interruption):
        write_mp4(frames(), 25, tmp_path / "new.mp4", progress=False)
    assert _no_leftovers(tmp_path, ["take.mp4"])


def test_bad_input_is_refused_before_or_without_a_file(tmp_path):
    with pytest.raises(SettingsError, match="fps"):
        write_mp4(_frames(2), 0, tmp_path / "a.mp4", progress=False)
    with pytest.raises(SettingsError, match="no frames"):
        write_mp4([], 25, tmp_path / "b.mp4", progress=False)
    with pytest.raises(SettingsError, match="one size"):
        write_mp4(_frames(2) + _frames(1, 32, 32), 25, tmp_path / "c.mp4", progress=False)
    with pytest.raises(SettingsError, match="uint8"):
        write_mp4([np.zeros((8, 8), np.float32)], 25, tmp_path / "d.mp4", progress=False)
    with pytest.raises(OutputError, match="folder"):
        write_mp4(_frames(2), 25, tmp_path / "missing" / "e.mp4", progress=False)
    assert _no_leftovers(tmp_path, [])
