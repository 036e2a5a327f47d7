"""F0 and voicing with Praat (core.audio.pitch) on real speech and on signals of known pitch."""

import subprocess
import sys

import numpy as np
import pytest

from emoflame.core.audio.load import load_audio
from emoflame.core.audio.phones import align_phones
from emoflame.core.audio.pitch import f0_track
from emoflame.core.errors import AudioError, SettingsError

ARCTIC_TEXT = "and you always want to see it in the superlative degree"
RATE = 16000


def tone(freq: float, seconds: float, harmonics: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, harmonics + 1))
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


@pytest.fixture(scope="module")
def arctic(shared_data):
    return load_audio(shared_data / "speech" / "arctic_a0007.wav")[0]


def test_frames_lie_on_the_10ms_grid_of_librosa_rms():
    for n in (17, 1600, 16000, 16159, 16160, 64001):
        f0, voiced = f0_track(np.zeros(n, np.float32))
        assert f0.shape == voiced.shape == (1 + n // 160,)
        assert f0.dtype == np.float32 and voiced.dtype == bool
    # A tone switched on at 1.000 s: frame 100 is centred on the onset, so voicing starts within a
    # frame or two of it (a window half on silence).
    signal = np.concatenate([np.zeros(RATE, np.float32), tone(200.0, 1.0, harmonics=5)])
    _, voiced = f0_track(signal)
    assert abs(int(np.argmax(voiced)) - 100) <= 2


def test_a_150hz_tone_reads_150hz():
    for harmonics in (1, 8):
        f0, voiced = f0_track(tone(150.0, 2.0, harmonics))
        assert voiced.all()
        assert np.median(f0) == pytest.approx(150.0, rel=0.001)
        assert np.all(np.abs(f0 - 150.0) < 1.5)  # ± 1 % on every frame, the edges included


def test_a_high_search_range_keeps_the_grid():
    # fmin 400 Hz: Praat's window (7.5 ms) is shorter than a hop, the padding must not be.
    for n in (16000, 16159):
        f0, voiced = f0_track(tone(600.0, n / RATE), fmin=400.0, fmax=1000.0)
        assert f0.shape == (1 + n // 160,) and np.median(f0[voiced]) == pytest.approx(600.0, rel=0.002)


def test_a_glide_is_followed_without_lag():
    seconds = 3.0
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(100 * 2 ** (t / seconds)) / RATE  # 100 → 200 Hz
    wave = sum(np.sin(k * phase) / k for k in range(1, 11)).astype(np.float32) * 0.1
    f0, voiced = f0_track(wave)
    truth = 100 * 2 ** (np.arange(len(f0)) * 0.01 / seconds)
    inner = slice(10, -10)
    assert voiced[inner].all()
    assert np.abs(12 * np.log2(f0[inner] / truth[inner])).max() < 0.01  # semitones: 0.001 measured; 10 ms late reads 0.04


def test_silence_is_unvoiced():
    f0, voiced = f0_track(np.zeros(2 * RATE, np.float32))
    assert not voiced.any() and not f0.any()


def test_the_arctic_speaker(arctic):
    f0, voiced = f0_track(arctic)
    assert len(f0) == 1 + len(arctic) // 160 == 401
    assert np.median(f0[voiced]) == pytest.approx(126.3, abs=3.0)  # an adult male voice
    assert 0.4 < voiced.mean() < 0.6
    assert np.all((f0[voiced] >= 60) & (f0[voiced] <= 500)) and not f0[~voiced].any()
    # Voicing follows the phones of the forced alignment: vowels, nasals and liquids voiced;
    # voiceless consonants and silence not (20 ms at each boundary left out).
    sonorant = set("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW M N NG L R W Y".split())
    voiceless = set("S SH F TH HH P T K CH SIL".split())
    label = np.full(len(f0), -1)
    for p in align_phones(arctic, ARCTIC_TEXT):
        a, b = round(p.start * 100) + 2, round(p.end * 100) - 2
        if b > a and (p.name in sonorant or p.name in voiceless):
            label[a:b] = p.name in sonorant
    known = label >= 0
    assert (voiced[known] == (label[known] == 1)).mean() > 0.88  # 0.905 measured (YIN's voicing: 0.819)
    assert voiced[label == 0].mean() < 0.05  # 0.016 measured (YIN: 0.254)


def test_a_female_voice_on_a_telephone_line(shared_data):
    samples = load_audio(shared_data / "speech" / "asterisk-demo-congrats.wav")[0]  # 8 kHz, fundamental band-limited
    f0, voiced = f0_track(samples)
    assert np.median(f0[voiced]) == pytest.approx(198.0, abs=8.0)
    assert 0.6 < voiced.mean() < 0.8


def test_no_jit_compiler_is_loaded():
    code = ("import sys, numpy as np; from emoflame.core.audio.pitch import f0_track; "
            "f0_track(np.zeros(1600, np.float32)); print(sorted(m for m in ('numba', 'librosa') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_input_is_refused():
    with pytest.raises(AudioError):
        f0_track(np.zeros((2, 1600), np.float32))
    with pytest.raises(AudioError):
        f0_track(np.full(1600, np.inf, np.float32))
    for fmin, fmax in ((200.0, 100.0), (0.0, 500.0), (60.0, 9000.0), (float("nan"), 500.0)):
        with pytest.raises(SettingsError, match="pitch range"):
            f0_track(tone(150.0, 0.5), fmin, fmax)
