"""Audio front ends of the learned models: log-mel + prosody (no download) or HuBERT.

The learned models (P and T, Xu et al. Sec. 3) are conditioned on per-frame audio features. The
paper uses a pretrained speech encoder; no model hub is reachable on most render nodes, so the
front ends that need no download are 80 log-mel bands plus prosody (loudness, log-F0, voicing) on
the animation frame grid, 83 values a frame: ``logmel_prosody`` reads the recording as it is, and
``logmel_prosody_take`` first brings the take to a reference level (its loud frames at
:data:`REFERENCE_DBFS`), so that the microphone gain changes nothing while the spectral shape,
the pitch and the level of each frame relative to the take's loud frames stay. HuBERT
(:mod:`.hubert`) is read from a local folder when the settings name one. A checkpoint records the
front end and the frame rate it was trained on, and inference uses those
(:func:`checkpoint_features`).
"""

from __future__ import annotations

import numpy as np

from ..checkpoints import model_fps
from .features import N_MELS, frame_rms, log_mel, prosody

LOGMEL = "logmel_prosody"
LOGMEL_TAKE = "logmel_prosody_take"
HUBERT = "hubert"
FRONT_ENDS = (LOGMEL, LOGMEL_TAKE, HUBERT)

LOUD_PERCENTILE = 95.0
"""The take's loud frames: this percentile of its 25 ms frame levels (dBFS)."""
REFERENCE_DBFS = -20.0
"""Where ``logmel_prosody_take`` puts a take's loud frames (the FACEGOOD training takes' sit at
-16.6 to -17.3 dBFS as recorded)."""
MAX_GAIN_DB = 40.0
"""Largest boost of a quiet take: a take whose loud frames are under -60 dBFS is noise or silence,
not speech to be brought up to a speaking level."""


def take_level(samples: np.ndarray) -> float:
    """dBFS of a take's loud frames: :data:`LOUD_PERCENTILE` of its 25 ms RMS levels (10 ms hop).

    Args:
        samples: (N,) float mono at 16 kHz.
    """
    return float(np.percentile(20 * np.log10(np.maximum(frame_rms(samples), 1e-10)), LOUD_PERCENTILE))


def level_normalised(samples: np.ndarray) -> np.ndarray:
    """(N,) float32 ``samples`` scaled so that :func:`take_level` is :data:`REFERENCE_DBFS`
    (boosted by at most :data:`MAX_GAIN_DB`): the same take recorded at any gain gives the same
    samples, up to rounding and clipping."""
    gain_db = min(REFERENCE_DBFS - take_level(samples), MAX_GAIN_DB)
    return np.asarray(samples, np.float32) * np.float32(10 ** (gain_db / 20))  # one float32 copy, however long


def feature_dim(name: str) -> int:
    """Values per frame of front end ``name`` (83 for log-mel + prosody, 768 for HuBERT base).

    Raises:
        ValueError: unknown front end name.
    """
    if name in (LOGMEL, LOGMEL_TAKE):
        return N_MELS + 3
    if name == HUBERT:
        return 768
    raise ValueError(f"unknown audio front end {name!r}; choose one of {', '.join(FRONT_ENDS)}")


def audio_features(samples: np.ndarray, fps: float, name: str = LOGMEL, hubert_dir: str = "") -> np.ndarray:
    """Per-frame audio features for the learned models.

    Args:
        samples: (N,) float32 mono at 16 kHz (``core.audio.load.load_audio``).
        fps: frame rate of the features (Hz).
        name: ``"logmel_prosody"``, ``"logmel_prosody_take"`` (no download; the second
            gain-invariant) or ``"hubert"``.
        hubert_dir: the local HuBERT folder, for ``"hubert"``.

    Returns:
        (T, D) float32, T = ``num_frames(len(samples) / 16000, fps)``, D = :func:`feature_dim`.
        Log-mel + prosody columns: 80 log-mel bands (natural log of power), loudness (dBFS / 20),
        log2(F0 / 100 Hz) where voiced else 0, voicing (0/1); for ``"logmel_prosody_take"`` the
        bands and the loudness are those of :func:`level_normalised` samples, so relative to the
        take's loud frames.

    Raises:
        ModelFileError: HuBERT asked for and no weights found in ``hubert_dir``.
        ValueError: unknown front end name.
    """
    if name == LOGMEL_TAKE:
        return audio_features(level_normalised(samples), fps, LOGMEL)
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
