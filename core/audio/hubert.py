"""Audio front ends for the learned models: HuBERT when its weights are on disk, else log-mel.

The learned models (P and T, Xu et al. Sec. 3) are conditioned on per-frame audio features. The
paper uses a pretrained speech encoder; no model hub is reachable on most render nodes, so the
default front end is the one that needs no download: 80 log-mel bands plus prosody (loudness,
log-F0, voicing) on the animation frame grid, 83 values a frame. HuBERT is loaded from a local
folder (``from_pretrained`` with ``local_files_only``) when ``$EMOFLAME_HUBERT`` names one.
A checkpoint records the front end it was trained on, and inference uses that one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from .features import N_MELS, log_mel, num_frames, prosody, to_frame_grid
from .load import SAMPLE_RATE

LOGMEL = "logmel_prosody"
HUBERT = "hubert"
FRONT_ENDS = (LOGMEL, HUBERT)

HUBERT_ENV = "EMOFLAME_HUBERT"
"""Environment variable naming a local HuBERT folder (config.json + model weights), e.g. a copy
of facebook/hubert-base-ls960."""


def feature_dim(name: str) -> int:
    """Values per frame of front end ``name`` (83 for log-mel + prosody, 768 for HuBERT base)."""
    if name == LOGMEL:
        return N_MELS + 3
    if name == HUBERT:
        return 768
    raise ValueError(f"unknown audio front end {name!r}; choose one of {', '.join(FRONT_ENDS)}")


def audio_features(samples: np.ndarray, fps: float, name: str = LOGMEL) -> np.ndarray:
    """Per-frame audio features for the learned models.

    Args:
        samples: (N,) float32 mono at 16 kHz (``core.audio.load.load_audio``).
        fps: animation frame rate (Hz).
        name: ``"logmel_prosody"`` (no download) or ``"hubert"`` (weights in ``$EMOFLAME_HUBERT``).

    Returns:
        (T, D) float32, T = ``num_frames(len(samples) / 16000, fps)``, D = :func:`feature_dim`.
        Log-mel + prosody columns: 80 log-mel bands (natural log of power), loudness (dBFS / 20),
        log2(F0 / 100 Hz) where voiced else 0, voicing (0/1).

    Raises:
        ModelFileError: HuBERT asked for and no weights found at ``$EMOFLAME_HUBERT``.
        ValueError: unknown front end name.
    """
    if name == LOGMEL:
        mel = log_mel(samples, fps)
        pro = prosody(samples, fps)
        f0 = np.where(pro.f0 > 0, np.log2(np.maximum(pro.f0, 1.0) / 100.0), 0.0)
        extra = np.stack([pro.loudness / 20.0, f0, pro.voiced.astype(np.float32)], axis=1)
        return np.concatenate([mel, extra], axis=1).astype(np.float32)
    if name == HUBERT:
        return _hubert_features(samples, fps)
    raise ValueError(f"unknown audio front end {name!r}; choose one of {', '.join(FRONT_ENDS)}")


_HUBERT_CACHE: dict[str, object] = {}


def hubert_folder() -> Path:
    """The local HuBERT folder named by ``$EMOFLAME_HUBERT``.

    Raises:
        ModelFileError: the variable is unset or the folder has no config.json.
    """
    folder = os.environ.get(HUBERT_ENV, "")
    if not folder or not (Path(folder) / "config.json").is_file():
        raise ModelFileError(
            f"HuBERT weights not found (${HUBERT_ENV}={folder!r}); copy a HuBERT folder "
            f"(config.json + model.safetensors, e.g. facebook/hubert-base-ls960) to disk and set "
            f"{HUBERT_ENV} to it, or use the '{LOGMEL}' front end, which needs no download"
        )
    return Path(folder)


def _hubert_features(samples: np.ndarray, fps: float) -> np.ndarray:
    import torch
    from transformers import HubertModel

    folder = hubert_folder()
    model = _HUBERT_CACHE.get(str(folder))
    if model is None:
        model = HubertModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True).eval()
        _HUBERT_CACHE[str(folder)] = model
    with torch.no_grad():
        hidden = model(torch.from_numpy(samples[None].astype(np.float32))).last_hidden_state[0].numpy()
    # HuBERT emits one vector every 20 ms (320 samples).
    n = num_frames(len(samples) / SAMPLE_RATE, fps)
    return to_frame_grid(hidden, n, fps, hop_seconds=320 / SAMPLE_RATE)
