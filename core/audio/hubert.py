"""HuBERT features from a local folder (``from_pretrained`` with ``local_files_only``): the
pretrained speech encoder of Xu et al.'s front end, when the user has its weights on disk
(``Settings.hubert_dir``, ``$EMOFLAME_HUBERT``); :mod:`.frontends` picks it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ..settings import ENVIRONMENT
from .features import num_frames, to_frame_grid
from .load import SAMPLE_RATE

HOP_S = 320 / SAMPLE_RATE
"""HuBERT emits one vector every 20 ms (320 samples)."""

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


def hubert_features(samples: np.ndarray, fps: float, folder: str) -> np.ndarray:
    """(T, 768) float32 last hidden states of the HuBERT model in ``folder`` on the frame grid at
    ``fps`` (T = ``num_frames``). The model is loaded once per folder.

    Raises:
        ModelFileError: see :func:`hubert_folder`.
    """
    import torch
    from transformers import HubertModel

    path = hubert_folder(folder)
    model = _MODELS.get(str(path))
    if model is None:
        model = HubertModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True).eval()
        _MODELS[str(path)] = model
    with torch.no_grad():
        hidden = model(torch.from_numpy(samples[None].astype(np.float32))).last_hidden_state[0].numpy()
    n = num_frames(len(samples) / SAMPLE_RATE, fps)
    return to_frame_grid(hidden, n, fps, hop_seconds=HOP_S)
