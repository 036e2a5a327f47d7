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
    # Frames in voiced phones of its forced alignment: 0.59; Praat calls 0.50 voiced (YIN called
    # 0.2 of the unvoiced phones voiced as well).
    assert 0.4 < p.voiced.mean() < 0.7
    assert 110 < np.median(p.f0[p.voiced]) < 140  # 126 Hz, a male voice


# Hostile and damaged recordings (issue 13): each is refused before any allocation it asks for,
# with one line that names the problem and the fix.

def _flac_with_header(source, target, *, rate=None, channels=None, frames=None):
    """``source`` (a FLAC) with its STREAMINFO rate, channel count or total frames rewritten."""
    data = bytearray(source.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO is the first metadata block
    at = 8 + 10  # rate (20 bits), channels - 1 (3), bits per sample - 1 (5), total frames (36)
    value = int.from_bytes(data[at: at + 8], "big")
    old_rate, old_channels, bits, old_frames = value >> 44, ((value >> 41) & 7) + 1, (value >> 36) & 31, value & (2**36 - 1)
    value = ((rate or old_rate) << 44) | (((channels or old_channels) - 1) << 41) | (bits << 36) | (frames or old_frames)
    data[at: at + 8] = value.to_bytes(8, "big")
    target.write_bytes(bytes(data))
    return target


@pytest.fixture
def arctic(shared_data):
    x, rate = soundfile.read(shared_data / "speech" / "arctic_a0007.wav", dtype="float32")
    assert rate == 16000
    return x


def test_streamed_decoding_equals_reading_the_whole_file(shared_data, tmp_path, monkeypatch):
    import soxr

    from emoflame.core.audio import load

    x, rate = soundfile.read(shared_data / "speech" / "asterisk-tt-monkeys.wav", dtype="float32")
    stereo = np.stack([x, 0.25 * x[::-1]], axis=1)
    path = tmp_path / "stereo_8k.wav"
    soundfile.write(path, stereo, rate, subtype="FLOAT")
    whole = soxr.resample(stereo.mean(axis=1), rate, SAMPLE_RATE)
    monkeypatch.setattr(load, "BLOCK_VALUES", 2 * 4096)  # 4096 frames a block: 32 blocks
    y, _ = load_audio(path)
    assert y.dtype == np.float32 and np.array_equal(y, whole)


def test_nan_or_infinite_samples_are_refused_with_their_time(arctic, tmp_path):
    for bad in (np.nan, np.inf, -np.inf):
        x = arctic.copy()
        x[int(1.25 * 16000)] = bad
        path = tmp_path / "broken.wav"
        soundfile.write(path, x, 16000, subtype="FLOAT")
        with pytest.raises(AudioError, match=r"not numbers \(NaN or infinite\), the first at 1\.250 s.*re-export"):
            load_audio(path)
    # a float64 file beyond float32's range decodes as infinity
    path = tmp_path / "huge.wav"
    soundfile.write(path, np.where(np.arange(len(arctic)) == 100, 1e300, arctic), 16000, subtype="DOUBLE")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(path)


def test_integer_values_stored_as_floats_are_refused(arctic, tmp_path):
    path = tmp_path / "int_scale.wav"
    soundfile.write(path, arctic * 32767, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"magnitude .* dB above full scale.*normalise it to \[-1, 1\]"):
        load_audio(path)
    soundfile.write(path, arctic * 4, 16000, subtype="FLOAT")  # hot but plausible: kept as it is
    assert np.allclose(load_audio(path)[0], arctic * 4)


def test_headerless_raw_pcm_says_how_to_convert_it(arctic, tmp_path):
    path = tmp_path / "take.raw"
    path.write_bytes((arctic * 32767).astype("<i2").tobytes())
    with pytest.raises(AudioError, match=r"take.raw is headerless raw PCM.*ffmpeg -f s16le -ar 16000 -ac 1 -i take.raw take.wav"):
        load_audio(path)


def test_a_flac_header_that_claims_more_than_the_file_holds(arctic, tmp_path):
    real = tmp_path / "real.flac"
    soundfile.write(real, arctic, 16000)
    assert load_audio(real)[0].shape == arctic.shape
    # 2.3 billion frames × 8 channels at the highest FLAC rate: 3,510 s, under the hour, and
    # 70 GiB of float32 if it were allocated from the header.
    bomb = _flac_with_header(real, tmp_path / "bomb.flac", rate=655_350, channels=8, frames=2_300_000_000)
    info = soundfile.info(str(bomb))
    assert (info.frames, info.channels) == (2_300_000_000, 8) and info.duration < 3600
    with pytest.raises(AudioError, match=r"claims 2,300,000,000 frames × 8 channels \(3,510 s\) but the file holds only \d+ KiB.*damaged or forged"):
        load_audio(bomb)


def test_sample_rates_outside_speech_are_refused(arctic, tmp_path):
    # 7000 samples declared at 2 Hz: an hour of "audio" that resampling would blow up 8000 times
    path = tmp_path / "2hz.wav"
    soundfile.write(path, arctic[:7000], 2)
    with pytest.raises(AudioError, match=r"sample rate of 2 Hz, outside 4000-768000 Hz: its header is damaged"):
        load_audio(path)
    soundfile.write(path, arctic, 4000)  # the lowest rate accepted (the speech plays 4 times slower)
    assert len(load_audio(path)[0]) == pytest.approx(4 * len(arctic), abs=4)


def test_paths_that_are_not_audio_files(tmp_path):
    with pytest.raises(AudioError, match="is a folder; give the audio file itself"):
        load_audio(tmp_path)
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio("/dev/zero")
    folder = tmp_path / "a.wav"
    folder.mkdir()
    with pytest.raises(AudioError, match="is a folder"):
        load_audio(folder)


def test_over_an_hour_is_refused_while_decoding_when_the_header_understates_it(tmp_path, monkeypatch):
    import types

    from emoflame.core.audio import load

    # A WAV header's length is clamped to the file, so shorten the hour rather than write one,
    # and let the header claim one frame (as an MP3 without a length tag can).
    monkeypatch.setattr(load, "MAX_DURATION", 2.0)
    real_info = soundfile.info
    monkeypatch.setattr(load.soundfile, "info", lambda p: types.SimpleNamespace(**{
        **{k: getattr(real_info(p), k) for k in ("samplerate", "channels", "format", "subtype")}, "frames": 1}))
    path = tmp_path / "long.wav"
    soundfile.write(path, 0.1 * np.sin(np.arange(16000 * 4) / 10.0).astype(np.float32), 16000)
    with pytest.raises(AudioError, match="is 0 minutes long; emoflame animates up to an hour"):
        load_audio(path)


def test_what_a_decoder_prints_becomes_the_message_not_extra_lines(tmp_path, capfd):
    # libmpg123 writes its complaint straight to file descriptor 2; libsndfile then says "File
    # does not exist or is not a regular file", which is not the problem.
    path = tmp_path / "junk.mp3"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match=r"cannot read .*junk.mp3 as audio \(Giving up searching valid MPEG header"):
        load_audio(path)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
