import numpy as np
import pytest
import soundfile

from emoflame.core.audio.features import log_mel, num_frames, prosody
from emoflame.core.audio.load import SAMPLE_RATE, load_audio
from emoflame.core.errors import AudioError


def test_8khz_stereo_flac_becomes_16khz_mono(shared_data, tmp_path):
    x, rate = soundfile.read(shared_data / "speech" / "asterisk-tt-monkeys.wav", dtype="float32")
    assert rate == 8000
    stereo = tmp_path / "stereo.flac"
    soundfile.write(stereo, np.stack([x, 0.5 * x], axis=1), rate)
    y, sr = load_audio(stereo)
    assert sr == SAMPLE_RATE
    assert len(y) == pytest.approx(2 * len(x), abs=2)
    rms = lambda a: float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))
    assert rms(y) == pytest.approx(0.75 * rms(x), rel=0.02)


@pytest.mark.parametrize("fmt", ["OGG", "MP3"])
def test_compressed_formats(shared_data, tmp_path, fmt):
    x, rate = soundfile.read(shared_data / "speech" / "arctic_a0007.wav", dtype="float32")
    path = tmp_path / f"a.{fmt.lower()}"
    soundfile.write(path, x, rate, format=fmt)
    y, _ = load_audio(path)
    assert abs(len(y) - len(x)) < 0.05 * rate


def test_bad_audio_is_refused_with_the_reason(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(tmp_path / "text.wav")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    soundfile.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match="silent"):
        load_audio(tmp_path / "silent.wav")


def test_over_an_hour_is_refused_before_decoding(tmp_path):
    path = tmp_path / "long.wav"
    with soundfile.SoundFile(path, "w", samplerate=8000, channels=1, subtype="PCM_U8", format="WAV") as f:
        f.write(np.zeros(8000 * 3601, np.float32))  # 28 MB, header says 60 min 1 s
    with pytest.raises(AudioError, match="split it"):
        load_audio(path)


def test_features_on_the_frame_grid(shared_data):
    x, _ = load_audio(shared_data / "speech" / "arctic_a0007.wav")
    for fps in (24, 25, 29.97, 60):
        n = num_frames(4.0, fps)
        assert log_mel(x, fps).shape == (n, 80)
        assert prosody(x, fps).loudness.shape == (n,)
    p = prosody(x, 25)
    # The recording opens with ~0.5 s of room noise before "and": quiet and unvoiced.
    assert p.loudness[:10].max() < p.loudness.max() - 25
    assert not p.voiced[:10].any()
    assert 0.5 < p.voiced.mean() < 0.9
    assert 90 < np.median(p.f0[p.voiced]) < 200
