"""Lip sync on the default avatar, measured as an animator sees it: vowel shapes that differ,
no pops, closures that reach their pose, the same animation at any recording gain, and a jaw
that follows the vocal effort. Figures from benchmarks/bench_lipsync_english.py's measures."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.signal

from emoflame.core.audio.effort import vocal_effort
from emoflame.core.audio.features import num_frames, prosody
from emoflame.core.audio.load import load_audio
from emoflame.core.audio.phones import align_phones
from emoflame.core.audio.speech import Speech, analyse_speech
from emoflame.core.channels import CHANNEL_INDEX
from emoflame.core.emotion.track import read_emotion_track
from emoflame.core.expression import visemes as V
from emoflame.core.expression.phonetic import PhoneticEngine

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_lipsync_english.py"
FPS = 25.0
HEDGEWARS = [Path(os.environ.get("EMOFLAME_HEDGEWARS_VOICE", "/nonexistent")),
             Path("/usr/share/games/hedgewars/Data/Sounds/voices/Default")]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_lipsync_english", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rig():
    from emoflame.core.flame.avatar import default_avatar
    from emoflame.core.flame.rigmap import rigmap_for_avatar

    avatar = default_avatar()
    return avatar, rigmap_for_avatar(avatar)


def read(shared_data, name):
    return load_audio(shared_data / "speech" / name)[0]


def speech_of(samples, phones, fps=FPS):
    return Speech(samples, fps, num_frames(len(samples) / 16000, fps), prosody(samples, fps), tuple(phones),
                  "aligned to transcript")


def weights(speech, engine=None, emotion="neutral", level=0.0):
    engine = engine or PhoneticEngine()
    return engine.generate(speech, read_emotion_track(emotion), np.full(speech.num_frames, level, np.float32)).weights


@pytest.fixture(scope="module")
def arctic(shared_data, bench):
    samples = read(shared_data, "arctic_a0007.wav")
    return samples, align_phones(samples, bench.TEXTS["arctic_a0007.wav"])


@pytest.fixture(scope="module")
def congrats(shared_data, bench):
    samples = read(shared_data, "asterisk-demo-congrats.wav")
    return samples, align_phones(samples, bench.TEXTS["asterisk-demo-congrats.wav"])


def test_rounded_vowels_are_narrower_than_spread_ones(arctic, bench, rig):
    samples, phones = arctic
    speech = speech_of(samples, phones)
    f = bench.figures(weights(speech), FPS, phones, *rig, speech.prosody.loudness)
    # "you", "always", "superlative" against "see", "it", "in", "degree": 11.1 mm measured
    assert f["width_diff"] >= 6.0, f
    # the open vowels open with the jaw: "always" (AO), "want" (AA) against "see" (IY)
    gap, _ = bench.lip_geometry(*rig, weights(speech))
    open_, spread = [[gap[int(round(0.5 * (p.start + p.end) * FPS))] for p in phones if p.name in names]
                     for names in (("AA", "AO", "AH"), ("IY",))]
    assert np.mean(open_) > np.mean(spread) + 4.0


def test_labiodentals_tuck_the_lower_lip(arctic):
    samples, phones = arctic
    w = weights(speech_of(samples, phones))
    v = next(p for p in phones if p.name == "V")  # the V of "superlative"
    frames = np.arange(int(np.ceil(v.start * FPS)), int(np.floor(v.end * FPS)) + 1)
    assert w[frames, CHANNEL_INDEX["mouthRollLower"]].max() > 0.4
    assert w[frames, CHANNEL_INDEX["mouthUpperUp_L"]].max() > 0.1  # upper lip off the teeth
    # the tongue shows on rigs that have one: TH and DH ("the" is not in this line; L is)
    l_ = next(p for p in phones if p.name == "L")
    assert w[int(round(0.5 * (l_.start + l_.end) * FPS)), CHANNEL_INDEX["tongueOut"]] > 0.02


@pytest.mark.parametrize("fps", [25.0, 60.0])
def test_no_pops_on_real_speech(arctic, congrats, bench, fps):
    for samples, phones in (arctic, congrats):
        speech = speech_of(samples, phones, fps)
        for emotion in ("neutral", "happy", "surprised"):  # the emotion yields at closures and to rounding
            count, largest = bench.pops(weights(speech, emotion=emotion, level=1.0), fps)
            assert count == 0 and largest <= 0.25, (emotion, largest)


def test_no_pops_with_recognised_phones(shared_data, bench):
    speech = analyse_speech(read(shared_data, "asterisk-demo-congrats.wav"), FPS, phones=True, transcript="none")
    count, largest = bench.pops(weights(speech, emotion="happy", level=1.0), FPS)
    assert count == 0, largest


@pytest.mark.parametrize("dials", [{}, {"jaw": 1.6, "lips": 0.3}, {"jaw": 0.4, "lips": 2.0}])
def test_closures_reach_their_pose(congrats, bench, rig, dials):
    samples, phones = congrats
    speech = speech_of(samples, phones)
    w = weights(speech, PhoneticEngine(**dials), emotion="happy", level=1.0)
    gap, _ = bench.lip_geometry(*rig, w)
    closed = dict(zip(V.MOUTH_CHANNELS, V.VISEMES["P"].vector))
    opening = [CHANNEL_INDEX[c] for c in V.CLOSURE_POSE if closed[c] == 0]
    pressing = [CHANNEL_INDEX[c] for c in ("mouthPress_L", "mouthPress_R", "mouthRollLower", "mouthRollUpper")]
    least = np.array([0.3, 0.3, V.CLOSED["mouthRollLower"], V.CLOSED["mouthRollUpper"]])  # M presses least
    bilabials = [p for p in phones if p.name in ("P", "B", "M")]
    assert len(bilabials) == 14
    for p in bilabials:
        frames = np.arange(int(np.ceil(p.start * FPS)), int(np.floor(p.end * FPS)) + 1)
        frames = frames if len(frames) else [int(round(0.5 * (p.start + p.end) * FPS))]
        # the speed limit has not blurred it: every frame of the bilabial holds the pose ...
        assert np.abs(w[np.ix_(frames, opening)]).max() < 1e-4, p
        assert np.all(w[np.ix_(frames, pressing)] >= least - 1e-4), p
        jaw = w[frames, CHANNEL_INDEX["jawOpen"]]
        assert jaw.max() < 0.06 and np.all(w[frames, CHANNEL_INDEX["mouthClose"]] >= jaw - 1e-4)
        # ... and the lips meet (the avatar rests at -0.4 mm; pressed lips a little below)
        assert gap[frames].max() <= 1.5 and gap[frames].min() > -4.0, (p, gap[frames])


def test_gain_does_not_change_the_animation(arctic, congrats, bench, rig, shared_data):
    for (samples, _), name in ((arctic, "arctic_a0007.wav"), (congrats, "asterisk-demo-congrats.wav")):
        gaps = []
        for db in (0.0, -12.0, 6.0):
            speech = analyse_speech(samples * 10 ** (db / 20), FPS, phones=True, transcript=bench.TEXTS[name])
            gaps.append(bench.lip_geometry(*rig, weights(speech))[0])
            effort = vocal_effort(speech.samples, speech.prosody, FPS)
            assert abs(effort.level - vocal_effort(samples, prosody(samples, FPS), FPS).level) < 0.02
        for other in gaps[1:]:
            assert np.abs(other - gaps[0]).mean() <= 1.0  # 0.00-0.27 mm measured


def whispered(samples: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same recording with its voicing replaced by noise: LPC resynthesis (order 16, 25 ms
    frames, 50 % overlap, autocorrelation method) of each frame's spectral envelope excited by white noise of the
    residual's level, as a whisper keeps the vocal tract's filter and loses the voice."""
    rng = np.random.default_rng(seed)
    n, hop = 400, 200
    window = np.hanning(n + 1)[:n]
    out = np.zeros(len(samples) + n)
    for start in range(0, len(samples) - n, hop):
        frame = samples[start : start + n].astype(np.float64) * window
        if np.abs(frame).max() < 1e-6:
            continue
        r = np.correlate(frame, frame, 'full')[n - 1 : n + 16]  # autocorrelation method (Levinson)
        coeffs = np.concatenate([[1.0], -scipy.linalg.solve_toeplitz(r[:16], r[1:17])])
        level = scipy.signal.lfilter(coeffs, [1.0], frame).std()
        out[start : start + n] += scipy.signal.lfilter([1.0], coeffs, level * rng.standard_normal(n)) * window
    return out[: len(samples)].astype(np.float32)


def test_a_whisper_opens_the_jaw_less(arctic, bench, rig):
    samples, phones = arctic
    whisper = whispered(samples)
    normal, quiet = (vocal_effort(s, prosody(s, FPS), FPS) for s in (samples, whisper))
    assert normal.voiced > 0.6 and quiet.voiced < 0.15 and quiet.level == -1.0
    assert -0.3 < normal.level < 0.4  # a read sentence: conversational (0.13 measured)
    widest = [bench.lip_geometry(*rig, weights(speech_of(s, phones)))[0].max() for s in (samples, whisper)]
    assert widest[0] - widest[1] >= 5.0, widest  # 14.8 vs 8.2 mm measured
    # at the same gain: the whisper is not small because it is quieter
    louder = whisper * np.abs(samples).max() / np.abs(whisper).max()
    assert bench.lip_geometry(*rig, weights(speech_of(louder, phones)))[0].max() < widest[0] - 5.0


def hedgewars_voice():
    return next((folder for folder in HEDGEWARS if (folder / "Ouch.ogg").exists()), None)


@pytest.mark.skipif(hedgewars_voice() is None, reason="Hedgewars' Default voice not installed "
                    "(apt-get install hedgewars-data, or EMOFLAME_HEDGEWARS_VOICE=<folder>)")
def test_a_shout_opens_the_jaw_more(bench, rig):
    # one real speaker, the same vowel (AW): "coward" said quietly, "ouch!" shouted; both
    # normalised to the same peak, so that only the voice tells them apart
    folder = hedgewars_voice()
    widest, levels = {}, {}
    for stem, text in (("Coward", "coward"), ("Ouch", "ouch")):
        samples = load_audio(folder / f"{stem}.ogg")[0]
        samples = 0.5 * samples / np.abs(samples).max()
        speech = speech_of(samples, align_phones(samples, text))
        levels[stem] = vocal_effort(samples, speech.prosody, FPS).level
        widest[stem] = {e: bench.lip_geometry(*rig, weights(speech, PhoneticEngine(effort=e)))[0].max()
                        for e in (True, False)}
    assert levels["Ouch"] - levels["Coward"] > 0.6  # +0.72 against -0.18 measured
    assert widest["Ouch"][True] - widest["Coward"][True] >= 5.0, widest  # 19.0 vs 11.8 mm
    assert abs(widest["Ouch"][False] - widest["Coward"][False]) < 2.5  # the words alone: 1.8 mm
