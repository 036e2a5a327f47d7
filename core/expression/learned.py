"""LearnedEngine: the trained P, M and T of Xu et al. behind one small API.

Loads the committed checkpoints in ``flame_assets/`` (``intensity_predictor.pt``,
``emotion_adapter.pt``, ``expression_transformer.pt``; see their ``*_CARD.md``) with
``weights_only=True``. The models were trained at 30 fps: they run on a 30 fps grid and their
outputs are resampled to the clip's frame rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..audio.features import num_frames
from ..audio.hubert import audio_features
from ..audio.load import SAMPLE_RATE
from ..channels import ARKIT_CHANNELS
from ..emotion.adapter import AdapterConfig, EmotionAdapter, emotion_condition
from ..emotion.text import text_encoder
from ..emotion.vocabulary import canonical_emotion
from ..errors import EmotionError, IntensityError
from ..intensity.predictor import IntensityPredictor, PredictorConfig
from ..train.common import load_checkpoint
from .transformer import ExpressionTransformer, TransformerConfig

ASSETS = Path(__file__).resolve().parents[2] / "flame_assets"
MODEL_FPS = 30.0
CHUNK = 600
"""Frames (20 s) per transformer pass; longer recordings go in overlapping chunks."""
OVERLAP = 30


def _resample(x: np.ndarray, src_fps: float, dst_fps: float, n: int) -> np.ndarray:
    """(M, ...) frames at ``src_fps`` → (n, ...) frames at ``dst_fps`` (frame i at i / fps s; linear)."""
    if src_fps == dst_fps and len(x) == n:
        return x
    src = np.arange(len(x)) / src_fps
    dst = np.arange(n) / dst_fps
    flat = x.reshape(len(x), -1)
    out = np.stack([np.interp(dst, src, c) for c in flat.T], axis=1)
    return out.reshape((n,) + x.shape[1:]).astype(np.float32)


class LearnedEngine:
    """Speech → intensity (P), emotion latent (M), expression weights (T).

    Build with :meth:`load`. All per-frame outputs are on the frame grid of ``fps``:
    T = ``ceil(duration × fps)`` frames, frame i at i / fps seconds.
    """

    def __init__(self, predictor, p_meta, adapter, a_meta, transformer, t_meta, device="cpu"):
        self.device = torch.device(device)
        self.predictor, self.p_meta = predictor, p_meta
        self.adapter, self.a_meta = adapter, a_meta
        self.transformer, self.t_meta = transformer, t_meta
        self.front_end = t_meta["front_end"]
        self._emb = {e: np.asarray(v, np.float32) for e, v in zip(a_meta["emotions"], a_meta["emotion_text_embeddings"])}

    @classmethod
    def load(cls, device: str = "cpu", folder: str | Path = ASSETS) -> "LearnedEngine":
        """Load the three checkpoints from ``folder`` (default: the package's ``flame_assets``).

        Raises:
            ModelFileError: a checkpoint is missing or malformed (the message names the file).
        """
        folder = Path(folder)
        p, pc = load_checkpoint(folder / "intensity_predictor.pt", IntensityPredictor, PredictorConfig, device)
        a, ac = load_checkpoint(folder / "emotion_adapter.pt", EmotionAdapter, AdapterConfig, device)
        t, tc = load_checkpoint(folder / "expression_transformer.pt", ExpressionTransformer, TransformerConfig, device)
        return cls(p, pc["meta"], a, ac["meta"], t, tc["meta"], device)

    def _features(self, samples: np.ndarray, meta: dict) -> torch.Tensor:
        x = audio_features(np.asarray(samples, np.float32), MODEL_FPS, meta["front_end"])
        x = (x - np.asarray(meta["feature_mean"], np.float32)) / np.asarray(meta["feature_std"], np.float32)
        return torch.from_numpy(x)[None].to(self.device)

    def predict_intensity(self, samples: np.ndarray, fps: float, seed: int = 0, temperature: float = 0.667) -> np.ndarray:
        """Frame-wise emotion intensity from the speaking tone (P, Xu et al. Sec. 3.2).

        Args:
            samples: (N,) float32 mono at 16 kHz.
            fps: frame rate of the result (Hz).
            seed: seeds the prior sample (same seed, same curve).
            temperature: scale of the prior's noise; 0 gives the most likely curve.

        Returns:
            (T,) float32 in [0, 1].
        """
        x = self._features(samples, self.p_meta)
        gen = torch.Generator(self.device).manual_seed(int(seed))
        curve = self.predictor.sample(x, temperature=float(temperature), generator=gen)[0].cpu().numpy()
        return np.clip(_resample(curve, MODEL_FPS, fps, self._frames(samples, fps)), 0.0, 1.0)

    def text_embedding(self, emotion: str) -> tuple[str, np.ndarray]:
        """The emotion's canonical name (or the free text) and its text embedding.

        The 8 MEAD emotions and their synonyms use the embeddings stored in the checkpoint (no
        text model needed); other text goes through the text encoder M was trained with.

        Raises:
            EmotionError: empty text.
            ModelFileError: free text and the text encoder's weights are missing.
        """
        text = " ".join(str(emotion).split())
        if not text:
            raise EmotionError("the emotion is empty; give a word such as 'happy' or a phrase such as 'quietly furious'")
        try:
            name = canonical_emotion(text)
            return name, self._emb[name]
        except EmotionError:
            return text, text_encoder(self.a_meta["text_encoder"]).encode([text])[0]

    def generate(self, samples: np.ndarray, fps: float, emotion: str, intensity: np.ndarray,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Lip-synced emotional expression (M then T, Xu et al. Sec. 3.3–3.4).

        Args:
            samples: (N,) float32 mono at 16 kHz.
            fps: frame rate (Hz).
            emotion: a MEAD emotion, a synonym, or free text ("quietly furious").
            intensity: (T,) in [0, 1] on the ``fps`` grid (e.g. :meth:`predict_intensity`).
            seed: seeds M's normal sample z.

        Returns:
            ``(weights (T, 52) over ARKIT_CHANNELS in [0, 1], emotion_latent (T, 896))``; the
            latent is all zeros for neutral.

        Raises:
            IntensityError: ``intensity`` has the wrong length or leaves [0, 1].
        """
        n = self._frames(samples, fps)
        intensity = np.asarray(intensity, np.float32).reshape(-1)
        if len(intensity) != n or not np.all((intensity >= 0) & (intensity <= 1)):
            raise IntensityError(f"intensity must be {n} values in [0, 1] (one per frame at {fps} fps), "
                                 f"got {len(intensity)} in [{intensity.min():.3g}, {intensity.max():.3g}]")
        x = self._features(samples, self.t_meta)
        m = x.shape[1]
        curve = torch.from_numpy(_resample(intensity, fps, MODEL_FPS, m))[None].to(self.device)
        name, emb = self.text_embedding(emotion)
        with torch.no_grad():
            z = torch.randn(1, self.adapter.cfg.z_dim, generator=torch.Generator().manual_seed(int(seed))).to(self.device)
            feature = self.adapter(z, torch.from_numpy(emb)[None].to(self.device))
            neutral = torch.tensor([name == "neutral"], device=self.device)
            latent = emotion_condition(self.transformer.cfg.intensity_mode, feature, curve, neutral)  # (1, M, 896)
            weights = self._run_transformer(x, latent)
        return _resample(weights, MODEL_FPS, fps, n), _resample(latent[0].cpu().numpy(), MODEL_FPS, fps, n)

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

    @staticmethod
    def _frames(samples: np.ndarray, fps: float) -> int:
        return num_frames(len(samples) / SAMPLE_RATE, fps)
