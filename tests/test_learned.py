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


# --- issue 9: gain-invariant inputs, closures and rests from the alignment, the capture's range ---

GAINS_DB = (-12.0, 6.0)
P_OF_SUPERLATIVE = (2.32, 2.44)
"""Seconds inside the P of "superlative" in arctic_a0007 (aligned at 2.30-2.46 s)."""
TRAILING_PAUSE = (3.64, 3.85)
"""Seconds inside arctic_a0007's closing silence (aligned from 3.49 s), 0.15 s in from its ends."""


@pytest.fixture(scope="module")
def lip_gap():
    """(T, 52) weights → (T,) inner-lip gap of the default avatar, mm (landmarks 61-63 minus 65-67,
    as benchmarks/bench_lipsync_english.py measures it)."""
    from emoflame.core.flame.avatar import default_avatar
    from emoflame.core.intensity.pseudo_labels import avatar_vertices

    avatar = default_avatar()

    def gap(weights):
        lmk = avatar.landmarks(avatar_vertices(weights, avatar))
        return 1000 * (lmk[:, 61:64, 1].mean(axis=1) - lmk[:, 65:68, 1].mean(axis=1))

    return gap


@pytest.fixture(scope="module")
def arctic_auto(arctic):
    """arctic_a0007 at 25 fps with its phones aligned to the automatic transcript."""
    return analyse_speech(arctic, 25.0, phones=True)


def frames(speech, span):
    t = np.arange(speech.num_frames) / speech.fps
    return (t >= span[0]) & (t <= span[1])


def test_intensity_ignores_the_recording_gain(arctic, speech):
    predictor = load_learned_intensity()
    assert predictor.ckpt["meta"]["front_end"] == "logmel_prosody_take"
    base = predictor.predict(speech)
    assert base.max() - base.min() > 0.1  # it still follows the voice within the take
    for db in GAINS_DB:
        copy = predictor.predict(analyse_speech(arctic * np.float32(10 ** (db / 20)), 25.0, phones=False))
        assert np.abs(copy - base).mean() < 0.05, db


def test_the_old_front_end_followed_the_gain(arctic):
    # Why the front end changed: the same features without the take's level normalisation move
    # by the gain in every band (2 ln 10^(12/20) = 2.76 nepers of power at -12 dB).
    from emoflame.core.audio.frontends import audio_features

    quiet = arctic * np.float32(10 ** (-12 / 20))
    old = audio_features(arctic, 25.0, "logmel_prosody") - audio_features(quiet, 25.0, "logmel_prosody")
    new = audio_features(arctic, 25.0, "logmel_prosody_take") - audio_features(quiet, 25.0, "logmel_prosody_take")
    assert old[:, :40].mean() > 2.0 and abs(old[:, 80].mean() - 0.6) < 0.01  # loudness column: dB / 20
    assert np.abs(new).max() < 1e-3


def test_learned_lips_ignore_the_recording_gain(engine, arctic, arctic_auto, lip_gap):
    neutral = read_emotion_track("neutral")
    zeros = np.zeros(arctic_auto.num_frames, np.float32)
    base = lip_gap(engine.generate(arctic_auto, neutral, zeros).weights)
    for db in GAINS_DB:
        copy = analyse_speech(arctic * np.float32(10 ** (db / 20)), 25.0, phones=True)
        assert np.abs(lip_gap(engine.generate(copy, neutral, zeros).weights) - base).mean() < 1.0, db


def test_learned_lips_close_on_the_p_of_superlative(engine, arctic_auto, lip_gap):
    assert arctic_auto.phone_source == "aligned to the automatic transcript" and engine.needs_phones
    inside = frames(arctic_auto, P_OF_SUPERLATIVE)
    n = arctic_auto.num_frames
    for emotion, level in (("neutral", 0.0), ("surprised", 1.0), ("happy", 0.8)):
        weights = generate(engine, arctic_auto, emotion, np.full(n, level, np.float32))[0]
        assert lip_gap(weights)[inside].max() <= 1.5, emotion
    # T alone (no phones) leaves them apart there: the alignment is what closes them
    unaligned = analyse_speech(arctic_auto.samples, 25.0, phones=False)
    assert lip_gap(generate(engine, unaligned, "neutral", np.zeros(n, np.float32))[0])[inside].max() > 1.5


def test_learned_lips_rest_closed_in_a_pause(engine, arctic_auto, shared_data, lip_gap):
    n = arctic_auto.num_frames
    gap = lip_gap(generate(engine, arctic_auto, "neutral", np.zeros(n, np.float32))[0])
    assert gap[frames(arctic_auto, TRAILING_PAUSE)].max() <= 1.5
    assert gap[frames(arctic_auto, (0.0, 0.22))].max() <= 1.5  # the opening silence
    assert np.percentile(gap, 95) > 8.0  # and they open when the voice does
    # "... dial 502 | to attempt ...": T alone keeps the mouth open through this pause
    samples = load_audio(shared_data / "speech" / "asterisk-demo-instruct.wav")[0][160_000:232_000]
    aligned = analyse_speech(samples, 25.0, phones=True)
    pause = max((p for p in aligned.phones if p.name == "SIL"), key=lambda p: p.end - p.start)
    assert aligned.phone_source == "aligned to the automatic transcript" and pause.end - pause.start >= 0.4
    inside = frames(aligned, (pause.start + 0.15, pause.end - 0.15))
    zeros = np.zeros(aligned.num_frames, np.float32)
    assert lip_gap(generate(engine, aligned, "neutral", zeros)[0])[inside].max() <= 1.5
    unaligned = analyse_speech(samples, 25.0, phones=False)
    assert lip_gap(generate(engine, unaligned, "neutral", zeros)[0])[inside].max() > 1.5


def test_a_malformed_calibration_is_refused():
    from emoflame.core.expression.learned import calibrate, read_calibration

    good = {"channels": ["jawOpen"], "scale": [1.5], "offset": [-0.05], "captured": ["jawOpen", "mouthFunnel"]}
    w = np.full((3, 52), 0.2, np.float32)
    w[:, CHANNEL_INDEX["jawOpen"]] = [0.02, 0.3, 0.8]
    out = calibrate(w, read_calibration(good))
    assert np.allclose(out[:, CHANNEL_INDEX["jawOpen"]], [0.0, 0.4, 1.0])
    assert np.allclose(out[:, CHANNEL_INDEX["mouthFunnel"]], 0.2) and not out[:, CHANNEL_INDEX["cheekSquint_L"]].any()
    assert np.array_equal(calibrate(w, read_calibration(None)), w)
    for bad in ({**good, "channels": ["jawShut"]}, {**good, "scale": [0.5]}, {**good, "offset": [float("nan")]},
                {**good, "scale": [1.5, 2.0]}, {"channels": ["jawOpen"]}, {**good, "captured": ["eyebrows"]}):
        with pytest.raises(ModelFileError, match="calibration"):
            read_calibration(bad)


# --- Hostile and broken checkpoint files (issue 13): one ModelFileError naming the file ---------

import copy  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from emoflame.core.checkpoints import load_checkpoint  # noqa: E402
from emoflame.core.intensity.predictor import IntensityPredictor, PredictorConfig  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "flame_assets"


class _Touch:
    """Pickles as a call of os.system: loading it with plain pickle would create ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


@pytest.fixture(scope="module")
def predictor_ckpt():
    return torch.load(ASSETS / "intensity_predictor.pt", weights_only=True)


def _changed(ckpt, change):
    ckpt = copy.deepcopy(ckpt)
    change(ckpt)
    return ckpt


_BROKEN = {  # name: (what to write, given the shipped checkpoint; words of the message)
    "junk": (b"not a checkpoint" * 10, "not a zip-format torch file"),
    "empty": (b"", "an empty file"),
    "truncated": (lambda c: _bytes_of(c)[:50_000], "not a zip-format torch file"),
    "legacy_format": (lambda c: _bytes_of(c, legacy=True), "not a zip-format torch file"),
    "a_list": (lambda c: [1, 2, 3], "expected a dict with 'model' and 'config', found list"),
    "unknown_config_entry": (lambda c: _changed(c, lambda k: k["config"].update(bogus=1)), "unknown config entries ['bogus']"),
    "text_in_config": (lambda c: _changed(c, lambda k: k["config"].update(hidden="64")), "config hidden = '64'"),
    "a_billion_layers": (lambda c: _changed(c, lambda k: k["config"].update(wavenet_layers=10**9)),
                         "builds more than the 144 weights the file holds"),
    "ten_million_wide": (lambda c: _changed(c, lambda k: k["config"].update(hidden=10**7)),
                         "asks for more than 250,000,000 weights"),
    "nan_weight": (lambda c: _changed(c, lambda k: k["model"]["cond_in.weight"].fill_(float("nan"))),
                   "weight 'cond_in.weight' holds NaN or infinity"),
    "wrong_shape": (lambda c: _changed(c, lambda k: k["model"].update({"cond_in.weight": torch.zeros(3)})),
                    "weight 'cond_in.weight' has shape (3,), the config needs (64, 83, 3)"),
    "missing_weight": (lambda c: _changed(c, lambda k: k["model"].pop("cond_in.weight")), "missing weights ['cond_in.weight']"),
    "integer_weight": (lambda c: _changed(c, lambda k: k["model"].update({"cond_in.weight": torch.zeros(64, 83, 3, dtype=torch.int64)})),
                       "is torch.int64, expected torch.float32"),
    "fps_nan": (lambda c: _changed(c, lambda k: k["meta"].update(fps=float("nan"))), "meta fps = nan"),
    "zero_deviation": (lambda c: _changed(c, lambda k: k["meta"].update(feature_std=[0.0] * 83)), "feature_std has values <= 0"),
    "short_mean": (lambda c: _changed(c, lambda k: k["meta"].update(feature_mean=[0.0] * 10)), "feature_mean is not 83 finite"),
    "no_meta": (lambda c: _changed(c, lambda k: k.update(meta={})), "meta lacks fps, front_end, feature_mean, feature_std"),
}


def _bytes_of(obj, legacy=False) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


@pytest.mark.parametrize("name", list(_BROKEN))
def test_a_broken_checkpoint_is_named_with_its_problem(tmp_path, predictor_ckpt, name):
    content, words = _BROKEN[name]
    content = content(predictor_ckpt) if callable(content) else content
    path = tmp_path / "intensity_predictor.pt"
    path.write_bytes(content if isinstance(content, bytes) else _bytes_of(content))
    with pytest.raises(ModelFileError) as error:
        load_checkpoint(path, IntensityPredictor, PredictorConfig)
    message = str(error.value)
    assert message.startswith(f"{path} is not a valid emoflame IntensityPredictor checkpoint (") and words in message
    assert message.endswith("reinstall emoflame or retrain it (see its _CARD.md)") and "\n" not in message


def test_a_checkpoint_that_holds_code_is_refused_as_possibly_malicious(tmp_path, predictor_ckpt):
    marker = tmp_path / "pwned"
    for kind in ("emotion_adapter.pt", "expression_transformer.pt", "intensity_predictor.pt"):
        (tmp_path / kind).write_bytes((ASSETS / kind).read_bytes())
    (tmp_path / "emotion_adapter.pt").write_bytes(_bytes_of({**predictor_ckpt, "x": _Touch(marker)}))
    with pytest.raises(ModelFileError, match=r"emotion_adapter.pt holds code or objects other than tensors \(.*"
                                             r"GLOBAL posix.system.*\), so it was not loaded: it may be malicious"):
        LearnedEngine.load(folder=tmp_path)
    assert not marker.exists()


def test_a_zip_bomb_checkpoint_is_refused_before_it_inflates(tmp_path):
    import zipfile

    path = tmp_path / "intensity_predictor.pt"
    with zipfile.ZipFile(ASSETS / "intensity_predictor.pt") as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for member in source.infolist():
            data = source.read(member.filename)
            out.writestr(member.filename, data + (b"\0" * 50_000_000 if member.filename.endswith("/data/0") else b""))
    with pytest.raises(ModelFileError, match=r"its members expand to [\d,]+ bytes from [\d,]+: a zip bomb"):
        load_learned_intensity("cpu", str(tmp_path))


# --- HuBERT folders: never random weights, never the quadratic attention of an hour ----------------


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory):
    """A HuBERT of base width (768) with one layer and random weights (a file layout, not a model
    to use), saved with save_pretrained as a real folder is; per-frame layer norms in its feature
    extractor (HuBERT Large's layout; Base's group norm takes statistics over the whole window)."""
    from transformers import HubertConfig, HubertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder = tmp_path_factory.mktemp("hubert")
    config = HubertConfig(hidden_size=768, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                          conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=16,
                          feat_extract_norm="layer")
    torch.manual_seed(0)
    HubertModel(config).save_pretrained(folder)
    return folder


def _hubert_copy(source, target, change):
    import shutil

    shutil.copytree(source, target)
    change(target)
    return str(target)


def _save_tensors(path, tensors):
    from safetensors.torch import save_file

    save_file(tensors, path)


def _tensors(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


_HUBERT_BROKEN = {
    "empty_safetensors": (lambda d: (d / "model.safetensors").write_bytes(b""), "an empty file"),
    "no_tensors": (lambda d: _save_tensors(d / "model.safetensors", {}), "of the model's weights are missing"),
    "half_the_tensors": (lambda d: _save_tensors(d / "model.safetensors", {
        k: v for i, (k, v) in enumerate(_tensors(d).items()) if i % 2}), "transformers would fill them with random numbers"),
    "nan_weights": (lambda d: _save_tensors(d / "model.safetensors", {
        k: v * float("nan") if i == 3 else v for i, (k, v) in enumerate(_tensors(d).items())}), "NaN or infinity"),
    "wrong_shape": (lambda d: _save_tensors(d / "model.safetensors", {
        k: torch.zeros(3) if i == 3 else v for i, (k, v) in enumerate(_tensors(d).items())}), "weights of other shapes"),
    "config_not_json": (lambda d: (d / "config.json").write_text("{not json"), "config.json is not a HuBERT config"),
    "config_a_million_layers": (lambda d: (d / "config.json").write_text(__import__("json").dumps(
        {**__import__("json").loads((d / "config.json").read_text()), "num_hidden_layers": 10**6})),
        "builds more than the"),
    "pickle_weights_only": (lambda d: ((d / "model.safetensors").unlink(), torch.save({}, d / "pytorch_model.bin")),
                            "has no model.safetensors (found: config.json, pytorch_model.bin)"),
}


@pytest.mark.parametrize("name", list(_HUBERT_BROKEN))
def test_a_hubert_folder_that_is_not_all_there_is_refused(tiny_hubert, tmp_path, name):
    from emoflame.core.audio.hubert import load_hubert

    change, words = _HUBERT_BROKEN[name]
    folder = _hubert_copy(tiny_hubert, tmp_path / "hubert", change)
    with pytest.raises(ModelFileError) as error:
        load_hubert(folder)
    message = str(error.value)
    assert words in message and "EMOFLAME_HUBERT" in message and "\n" not in message


def test_hubert_windows_line_up_with_one_pass(tiny_hubert):
    """Long recordings go through HuBERT in overlapping windows. With the transformer layer taken
    out, each output frame depends on the audio around it only, so away from the cross-faded
    overlaps the windows must give exactly the one-pass frames: any misplaced frame shows."""
    from emoflame.core.audio.hubert import HOP_S, hubert_hidden_states, load_hubert

    model = load_hubert(str(tiny_hubert))
    model.encoder.layers = torch.nn.ModuleList()
    x = np.random.default_rng(0).standard_normal(16000 * 9).astype(np.float32) * 0.1
    whole = hubert_hidden_states(model, x, chunk_s=60.0)
    windows = hubert_hidden_states(model, x, chunk_s=3.0, overlap_s=1.0)
    assert windows.shape == whole.shape == (449, 768)
    step = int(2.0 / HOP_S)  # windows start every 2 s (3 s long, 1 s overlap): frames 100, 200, ...
    clear = np.ones(len(whole), bool)
    for start in range(step, len(whole), step):
        clear[start - 10: start + int(1.0 / HOP_S) + 10] = False  # the overlap and its edges
    assert clear.sum() > 150
    np.testing.assert_allclose(windows[clear], whole[clear], atol=1e-5)
    short = x[: 16000 * 2]
    np.testing.assert_array_equal(hubert_hidden_states(model, short, chunk_s=3.0), hubert_hidden_states(model, short))
