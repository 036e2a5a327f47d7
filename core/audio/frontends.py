"""Audio front ends of the learned models: log-mel + prosody (no download) or HuBERT.

The learned models (P and T, Xu et al. Sec. 3) are conditioned on per-frame audio features. The
paper uses a pretrained speech encoder; no model hub is reachable on most render nodes, so the
default front end is the one that needs no download: 80 log-mel bands plus prosody (loudness,
log-F0, voicing) on the animation frame grid, 83 values a frame. HuBERT (:mod:`.hubert`) is read
from a local folder when the settings name one. A checkpoint records the front end and the frame
rate it was trained on, and inference uses those (:func:`checkpoint_features`).
"""

from __future__ import annotations

import numpy as np

from ..checkpoints import model_fps
from .features import N_MELS, log_mel, prosody

LOGMEL = "logmel_prosody"
HUBERT = "hubert"
FRONT_ENDS = (LOGMEL, HUBERT)


def feature_dim(name: str) -> int:
    """Values per frame of front end ``name`` (83 for log-mel + prosody, 768 for HuBERT base).

    Raises:
        ValueError: unknown front end name.
    """
    if name == LOGMEL:
        return N_MELS + 3
    if name == HUBERT:
        return 768
    raise ValueError(f"unknown audio front end {name!r}; choose one of {', '.join(FRONT_ENDS)}")


def audio_features(samples: np.ndarray, fps: float, name: str = LOGMEL, hubert_dir: str = "") -> np.ndarray:
    """Per-frame audio features for the learned models.

    Args:
        samples: (N,) float32 mono at 16 kHz (``core.audio.load.load_audio``).
        fps: frame rate of the features (Hz).
        name: ``"logmel_prosody"`` (no download) or ``"hubert"``.
        hubert_dir: the local HuBERT folder, for ``"hubert"``.

    Returns:
        (T, D) float32, T = ``num_frames(len(samples) / 16000, fps)``, D = :func:`feature_dim`.
        Log-mel + prosody columns: 80 log-mel bands (natural log of power), loudness (dBFS / 20),
        log2(F0 / 100 Hz) where voiced else 0, voicing (0/1).

    Raises:
        ModelFileError: HuBERT asked for and no weights found in ``hubert_dir``.
        ValueError: unknown front end name.
    """
    if name == LOGMEL:
        mel = log_mel(samples, fps)
        pro = prosody(samples, fps)
        f0 = np.where(pro.f0 > 0, np.log2(np.maximum(pro.f0, 1.0) / 100.0), 0.0)
        extra = np.stack([pro.loudness / 20.0, f0, pro.voiced.astype(np.float32)], axis=1)
        return np.concatenate([mel, extra], axis=1).astype(np.float32)
    if name == HUBERT:
        from .hubert import hubert_features

        return hubert_features(samples, fps, hubert_dir)
    raise ValueError(f"unknown audio front end {name!r}; choose one of {', '.join(FRONT_ENDS)}")


def checkpoint_features(speech, ckpt: dict, hubert_dir: str = "") -> tuple[np.ndarray, float]:
    """The features a checkpoint's model reads: its front end at its frame rate, standardised by
    the statistics of its training data (``meta["feature_mean"]``, ``meta["feature_std"]``).

    Args:
        speech: the recording's ``core.audio.speech.Speech`` (which computes each front end once).
        ckpt: the checkpoint dict (``core.checkpoints.load_checkpoint``).
        hubert_dir: the local HuBERT folder, if the checkpoint was trained on HuBERT.

    Returns:
        ``(features (M, D) float32, fps)``: M frames at the model's frame rate ``fps`` (Hz).

    Raises:
        ModelFileError: the checkpoint records no frame rate, or HuBERT weights are missing.
    """
    meta = ckpt["meta"]
    fps = model_fps(ckpt)
    x = speech.audio_features(meta["front_end"], fps, hubert_dir)
    x = (x - np.asarray(meta["feature_mean"], np.float32)) / np.asarray(meta["feature_std"], np.float32)
    return x.astype(np.float32), fps
