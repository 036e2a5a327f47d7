"""The learned engine: the emotion adapter M and the audio-to-expression transformer T of Xu et al.

Loads the committed checkpoints ``flame_assets/emotion_adapter.pt`` and
``flame_assets/expression_transformer.pt`` (see their ``*_CARD.md``) with ``weights_only=True``.
The models run at the frame rate their checkpoint records; the intensity comes in on the clip's
frame grid and the weights go back out on it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ..audio.features import to_frame_grid
from ..audio.frontends import checkpoint_features
from ..channels import ARKIT_CHANNELS
from ..checkpoints import load_checkpoint
from ..emotion.adapter import AdapterConfig, EmotionAdapter, emotion_condition
from ..emotion.text import text_encoder
from ..errors import IntensityError
from .engine import Expression
from .eyes import EYE_CHANNELS
from .transformer import ExpressionTransformer, TransformerConfig

ASSETS = Path(__file__).resolve().parents[2] / "flame_assets"
CHUNK = 600
"""Model frames per transformer pass (20 s at 30 fps); longer recordings go in overlapping chunks."""
OVERLAP = 30


class LearnedEngine:
    """Speech + emotion + intensity → expression weights (M then T, Xu et al. Sec. 3.3–3.4).

    Build with :func:`load_learned_engine` (or :meth:`load`). Reads free-text emotions: the 8 MEAD
    emotions and their synonyms use the embeddings stored in M's checkpoint, other text goes
    through the text encoder M was trained with.

    Args:
        adapter, a_ckpt: M in eval mode and its checkpoint dict.
        transformer, t_ckpt: T in eval mode and its checkpoint dict.
        device: ``'cpu'`` or ``'cuda'``.
        hubert_dir: the local HuBERT folder, for checkpoints trained on HuBERT features.
        clip_checkpoint, clip_arch: the CLIP text encoder's local weights, for an M trained on CLIP.
    """

    name = "learned"
    needs_phones = False
    free_text = True

    def __init__(self, adapter, a_ckpt, transformer, t_ckpt, device="cpu", hubert_dir="", clip_checkpoint="",
                 clip_arch="ViT-B-32"):
        self.device = torch.device(device)
        self.adapter, self.a_ckpt = adapter, a_ckpt
        self.transformer, self.t_ckpt = transformer, t_ckpt
        self.hubert_dir, self.clip = hubert_dir, (clip_checkpoint, clip_arch)
        meta = a_ckpt["meta"]
        self._emb = {e: np.asarray(v, np.float32) for e, v in zip(meta["emotions"], meta["emotion_text_embeddings"])}

    @classmethod
    def load(cls, device: str = "cpu", folder: str | Path = ASSETS, **options) -> "LearnedEngine":
        """Load M and T from ``folder`` (default: the package's ``flame_assets``); ``options`` are the
        constructor's ``hubert_dir``, ``clip_checkpoint`` and ``clip_arch``.

        Raises:
            ModelFileError: a checkpoint is missing or malformed (the message names the file).
        """
        folder = Path(folder)
        a, ac = load_checkpoint(folder / "emotion_adapter.pt", EmotionAdapter, AdapterConfig, device)
        t, tc = load_checkpoint(folder / "expression_transformer.pt", ExpressionTransformer, TransformerConfig, device)
        return cls(a, ac, t, tc, device, **options)

    def text_embedding(self, emotion) -> np.ndarray:
        """(E,) float32 unit text embedding of an ``Emotion``: stored for the 8 and their synonyms,
        encoded for free text.

        Raises:
            ModelFileError: free text and the text encoder's weights are missing.
        """
        if emotion.name is not None:
            return self._emb[emotion.name]
        return text_encoder(self.a_ckpt["meta"]["text_encoder"], *self.clip).encode([emotion.text])[0]

    def generate(self, speech, emotion, intensity: np.ndarray, seed: int = 0) -> Expression:
        """Lip-synced emotional expression.

        Args:
            speech: ``core.audio.speech.Speech`` (T frames at ``speech.fps``).
            emotion: ``core.emotion.vocabulary.Emotion`` (one of the 8, a synonym or free text).
            intensity: (T,) in [0, 1], the frame-wise intensity.
            seed: seeds M's normal sample z.

        Returns:
            :class:`Expression`: weights (T, 52) in [0, 1] with the eye channels at 0 (T learned
            none: the capture's eye channels are empty), and the re-normalised emotion latent
            (T, 896), all zeros for neutral.

        Raises:
            IntensityError: ``intensity`` has the wrong length or leaves [0, 1].
            ModelFileError: free text without the text encoder's weights; HuBERT weights missing.
        """
        n = speech.num_frames
        intensity = np.asarray(intensity, np.float32).reshape(-1)
        if len(intensity) != n or not np.all((intensity >= 0) & (intensity <= 1)):
            raise IntensityError(f"intensity must be {n} values in [0, 1] (one per frame at {speech.fps:g} fps), "
                                 f"got {len(intensity)} in [{intensity.min():.3g}, {intensity.max():.3g}]")
        x, model_fps = checkpoint_features(speech, self.t_ckpt, self.hubert_dir)
        x = torch.from_numpy(x)[None].to(self.device)
        m = x.shape[1]
        curve = torch.from_numpy(to_frame_grid(intensity, m, model_fps, 1.0 / speech.fps))[None].to(self.device)
        emb = self.text_embedding(emotion)
        with torch.no_grad():
            z = torch.randn(1, self.adapter.cfg.z_dim, generator=torch.Generator().manual_seed(int(seed))).to(self.device)
            feature = self.adapter(z, torch.from_numpy(emb)[None].to(self.device))
            neutral = torch.tensor([emotion.name == "neutral"], device=self.device)
            latent = emotion_condition(self.transformer.cfg.intensity_mode, feature, curve, neutral)  # (1, M, 896)
            weights = self._run_transformer(x, latent)
        weights = to_frame_grid(weights, n, speech.fps, 1.0 / model_fps)
        weights[:, EYE_CHANNELS] = 0.0
        return Expression(weights, to_frame_grid(latent[0].cpu().numpy(), n, speech.fps, 1.0 / model_fps))

    def _run_transformer(self, x: torch.Tensor, latent: torch.Tensor) -> np.ndarray:
        """T over overlapping chunks, cross-faded, so memory stays flat on long recordings."""
        m = x.shape[1]
        out = np.zeros((m, len(ARKIT_CHANNELS)), np.float32)
        weight = np.zeros((m, 1), np.float32)
        start = 0
        while True:
            stop = min(m, start + CHUNK)
            mask = torch.ones(1, stop - start, dtype=torch.bool, device=self.device)
            y = self.transformer(x[:, start:stop], latent[:, start:stop], mask)[0].clamp(0, 1).cpu().numpy()
            ramp = np.ones((stop - start, 1), np.float32)
            if start > 0:
                k = min(OVERLAP, stop - start)
                ramp[:k, 0] = np.linspace(0.0, 1.0, k + 2)[1:-1]
            out[start:stop] += y * ramp
            weight[start:stop] += ramp
            if stop == m:
                break
            start = stop - OVERLAP
        return out / np.maximum(weight, 1e-6)


def load_learned_engine(device: str = "cpu", hubert_dir: str = "", clip_checkpoint: str = "",
                        clip_arch: str = "ViT-B-32", folder: str | Path = ASSETS) -> LearnedEngine:
    """:meth:`LearnedEngine.load`, once per distinct set of arguments (a changed device or weight
    folder loads anew).

    Raises:
        ModelFileError: a checkpoint is missing or malformed.
    """
    return _cached_engine(device, hubert_dir, clip_checkpoint, clip_arch, str(folder))


@functools.lru_cache(maxsize=2)
def _cached_engine(device: str, hubert_dir: str, clip_checkpoint: str, clip_arch: str, folder: str) -> LearnedEngine:
    return LearnedEngine.load(device, folder, hubert_dir=hubert_dir, clip_checkpoint=clip_checkpoint,
                              clip_arch=clip_arch)
