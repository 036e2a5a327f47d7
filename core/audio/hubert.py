"""HuBERT features from a local folder (``from_pretrained`` with ``local_files_only``): the
pretrained speech encoder of Xu et al.'s front end, when the user has its weights on disk
(``Settings.hubert_dir``, ``$EMOFLAME_HUBERT``); :mod:`.frontends` picks it.

The folder is untrusted until checked: ``config.json`` small and a valid HuBERT config whose
model is bounded in size (built first on torch's ``meta`` device, which costs no memory);
``model.safetensors`` a safetensors file (no code can run from one) that supplies every weight
of the model at the right shape — transformers otherwise fills what is missing with random
weights and carries on — and only finite numbers.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ..settings import ENVIRONMENT
from .features import num_frames, to_frame_grid
from .load import SAMPLE_RATE

HOP_S = 320 / SAMPLE_RATE
"""HuBERT emits one vector every 20 ms (320 samples)."""

FEATURE_DIM = 768
"""Values per frame of HuBERT base, the model emoflame's HuBERT checkpoints read."""

CHUNK_S = 30.0
"""Seconds of audio per HuBERT pass: its attention is quadratic in length (an hour in one pass
would need terabytes), so long recordings go in overlapping windows, cross-faded; 30 s is about
the longest utterance HuBERT saw in training (LibriSpeech's run to 35 s)."""
OVERLAP_S = 2.0

MAX_CONFIG_BYTES = 1 << 20
MAX_WEIGHT_BYTES = 8 << 30
"""HuBERT X-Large in float32 is 3.8 GB."""

UNUSED_AT_INFERENCE = ("masked_spec_embed",)
"""Weights only training uses (SpecAugment's mask vector): a checkpoint may leave them out."""

_MODELS: dict[str, object] = {}


def hubert_folder(folder: str) -> Path:
    """``folder`` checked to hold a HuBERT model.

    Raises:
        ModelFileError: ``folder`` is empty or has no config.json.
    """
    if not folder or not (Path(folder) / "config.json").is_file():
        raise ModelFileError(
            f"HuBERT weights not found ({folder!r}); copy a HuBERT folder (config.json + model.safetensors, e.g. "
            f"facebook/hubert-base-ls960) to disk and set {ENVIRONMENT['hubert_dir']} (or the add-on's HuBERT "
            "Weights preference) to it, or use the 'logmel_prosody' front end, which needs no download"
        )
    return Path(folder)


def load_hubert(folder: str):
    """The HuBERT model in ``folder``, checked (see the module's docstring), in eval mode on the CPU.

    Raises:
        ModelFileError: no config.json or model.safetensors; either damaged, too large or not a
            HuBERT base model; weights missing, misshapen or not finite (the message names the
            file and what to do).
    """
    import torch
    from transformers import HubertConfig, HubertModel

    from ..checkpoints import MAX_MODEL_VALUES, ModelTooLarge, build_on_meta, check_weights_file, one_line, weights_error

    path = hubert_folder(folder)
    fix = (f"copy the original HuBERT base folder (e.g. facebook/hubert-base-ls960: config.json + model.safetensors) "
           f"and point {ENVIRONMENT['hubert_dir']} at it")
    config_file, weights = path / "config.json", path / "model.safetensors"

    def refuse(file, why):
        return ModelFileError(f"{file} is not a HuBERT {'config' if file == config_file else 'model'} ({why}); {fix}")

    if config_file.stat().st_size > MAX_CONFIG_BYTES:
        raise refuse(config_file, f"{config_file.stat().st_size:,} bytes of config")
    try:
        values = json.loads(config_file.read_text(encoding="utf-8"))
        if not isinstance(values, dict):
            raise ValueError(f"a JSON {type(values).__name__}, not an object")
        config = HubertConfig(**values)
    except Exception as exc:  # noqa: BLE001 - a hostile config may fail transformers in any way
        raise refuse(config_file, one_line(exc)) from None
    if config.hidden_size != FEATURE_DIM:
        raise refuse(config_file, f"hidden_size {config.hidden_size}: emoflame's models read HuBERT base features, "
                                  f"{FEATURE_DIM} values a frame")
    if not weights.is_file():
        found = ", ".join(sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".safetensors", ".json"))[:5])
        raise ModelFileError(f"{path} has no model.safetensors (found: {found or 'nothing'}); only safetensors weights "
                             f"are read (no code can run from them): {fix}")
    check_weights_file(weights, "a HuBERT model.safetensors", fix, MAX_WEIGHT_BYTES)
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as f:
            stored = len(list(f.keys()))
    except Exception as exc:  # noqa: BLE001
        raise refuse(weights, one_line(exc)) from None
    try:
        build_on_meta(lambda: HubertModel(config), held=stored, max_values=MAX_MODEL_VALUES)
    except ModelTooLarge as exc:
        raise refuse(config_file, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a config the model's constructor refuses, in any way
        raise refuse(config_file, f"it builds no model: {one_line(exc)}") from None
    try:
        with _quiet_transformers():
            model, info = HubertModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True,
                                                      output_loading_info=True)
    except Exception as exc:  # noqa: BLE001 - an untrusted file may fail transformers in any way
        if "mismatch" in str(exc).lower():
            raise refuse(weights, "weights of other shapes than its config.json gives") from None
        raise weights_error(weights, "a HuBERT model.safetensors", fix, exc) from None
    missing = sorted(set(info.get("missing_keys", ())) - set(UNUSED_AT_INFERENCE))
    mismatched = sorted(info.get("mismatched_keys", ()))
    if missing or mismatched:
        what = f"{len(missing)} of the model's weights are missing ({', '.join(missing[:3])}…)" if missing else \
            f"weights of the wrong shape ({', '.join(map(str, mismatched[:3]))})"
        raise refuse(weights, f"{what}: transformers would fill them with random numbers")
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise refuse(weights, "its weights hold NaN or infinity")
    return model.eval()


@contextlib.contextmanager
def _quiet_transformers():
    """No progress bars and no load report from transformers: emoflame reports what matters."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def hubert_features(samples: np.ndarray, fps: float, folder: str) -> np.ndarray:
    """(T, 768) float32 last hidden states of the HuBERT model in ``folder`` on the frame grid at
    ``fps`` (T = ``num_frames``). The model is loaded once per folder (:func:`load_hubert`);
    recordings longer than :data:`CHUNK_S` go through it in windows overlapping by
    :data:`OVERLAP_S`, cross-faded linearly, so memory grows with the length, not its square.

    Raises:
        ModelFileError: see :func:`hubert_folder` and :func:`load_hubert`.
    """
    path = hubert_folder(folder)
    model = _MODELS.get(str(path))
    if model is None:
        model = _MODELS[str(path)] = load_hubert(folder)
    hidden = hubert_hidden_states(model, samples)
    n = num_frames(len(samples) / SAMPLE_RATE, fps)
    return to_frame_grid(hidden, n, fps, hop_seconds=HOP_S)


def hubert_hidden_states(model, samples: np.ndarray, chunk_s: float = CHUNK_S, overlap_s: float = OVERLAP_S) -> np.ndarray:
    """(M, D) float32 last hidden states of ``model`` (a transformers HuBERT) over ``samples``
    ((N,) 16 kHz), one every 20 ms; in one pass up to ``chunk_s`` seconds, else in windows that
    start on 20 ms frame boundaries and overlap by ``overlap_s`` seconds, cross-faded linearly.

    Beyond one window the result is not the one-pass result: attention sees its window only, and
    HuBERT Base's group norm takes its statistics over the window (as over one training
    utterance) rather than over the whole recording."""
    import torch

    hop = round(HOP_S * SAMPLE_RATE)
    window = int(chunk_s / HOP_S) * hop
    step = window - int(overlap_s / HOP_S) * hop
    with torch.no_grad():
        def run(piece):
            return model(torch.from_numpy(np.ascontiguousarray(piece, np.float32))[None]).last_hidden_state[0].numpy()

        if len(samples) <= window:
            return run(samples)
        total = int(model._get_feat_extract_output_lengths(torch.tensor(len(samples))))
        out = np.zeros((total, model.config.hidden_size), np.float32)
        weight = np.zeros((total, 1), np.float32)
        overlap = (window - step) // hop
        for start in range(0, len(samples), step):
            hidden = run(samples[start: start + window])
            first = start // hop
            hidden = hidden[: total - first]
            ramp = np.ones((len(hidden), 1), np.float32)
            if start > 0:
                k = min(overlap, len(hidden))
                ramp[:k, 0] = np.linspace(0.0, 1.0, k + 2)[1:-1]
            out[first: first + len(hidden)] += hidden * ramp
            weight[first: first + len(hidden)] += ramp
            if start + window >= len(samples):
                break
        return out / np.maximum(weight, 1e-6)
