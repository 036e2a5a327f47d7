"""EmotionAdapter M and the intensity re-normalization (Xu et al., Sec. 3.3).

M maps a 16-d standard-normal sample z and the text embedding of the emotion's name to an
896-d emotion feature: 8 fully connected layers of 384 units with ReLU, the text embedding
concatenated to the hidden state after the 4th layer. The feature's direction is the emotion
type; its norm is then set per frame to t(L̂), the intensity level's norm: levels 1, 2, 3
(L̂ = 1/3, 2/3, 1) have norms 5, 15, 30, linear in between, and neutral (L̂ = 0, or the
emotion "neutral") sits at the origin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

LEVEL_INTENSITIES = np.array([0.0, 1 / 3, 2 / 3, 1.0], np.float32)
LEVEL_NORMS = np.array([0.0, 5.0, 15.0, 30.0], np.float32)
"""t(L): intensity 0 (neutral) → norm 0; MEAD levels 1, 2, 3 → norms 5, 15, 30 (Xu et al.)."""


@dataclass
class AdapterConfig:
    z_dim: int = 16        # the normal sample's size
    text_dim: int = 384    # the text encoder's embedding size (MiniLM 384, CLIP ViT-B-32 512)
    hidden: int = 384
    layers: int = 8
    text_after: int = 4    # the text embedding joins after this many layers
    out_dim: int = 896


class EmotionAdapter(nn.Module):
    """M (Xu et al.): (z (B, 16), text (B, text_dim)) → emotion feature (B, 896)."""

    def __init__(self, cfg: AdapterConfig):
        super().__init__()
        self.cfg = cfg
        dims_in = [cfg.z_dim] + [cfg.hidden] * (cfg.layers - 1)
        dims_in[cfg.text_after] += cfg.text_dim
        dims_out = [cfg.hidden] * (cfg.layers - 1) + [cfg.out_dim]
        self.fc = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))

    def forward(self, z: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        h = z
        for k, layer in enumerate(self.fc):
            if k == self.cfg.text_after:
                h = torch.cat([h, text], dim=-1)
            h = layer(h)
            if k < len(self.fc) - 1:
                h = torch.relu(h)
        return h


def level_norm(intensity: np.ndarray | torch.Tensor):
    """t(L): per-frame target norm, piecewise linear through (0, 0), (1/3, 5), (2/3, 15), (1, 30).

    Args:
        intensity: (T,) or (B, T) in [0, 1] (numpy or torch; values outside are clipped).

    Returns:
        the same shape and type: norms in [0, 30].
    """
    if isinstance(intensity, torch.Tensor):
        x = intensity.clamp(0, 1)
        xs = torch.as_tensor(LEVEL_INTENSITIES, device=x.device)
        ys = torch.as_tensor(LEVEL_NORMS, device=x.device)
        seg = torch.bucketize(x, xs[1:-1])  # 0, 1 or 2
        x0, x1, y0, y1 = xs[seg], xs[seg + 1], ys[seg], ys[seg + 1]
        return y0 + (x - x0) / (x1 - x0) * (y1 - y0)
    return np.interp(np.clip(intensity, 0, 1), LEVEL_INTENSITIES, LEVEL_NORMS).astype(np.float32)


def renormalize(feature: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
    """Re-normalization (Xu et al., Eq. 5): the emotion direction scaled to t(L̂) per frame.

    Args:
        feature: (B, D) emotion features M(z, f_e), one per sequence, or (B, T, D) one per frame
            (an emotion track).
        intensity: (B, T) frame-wise intensity in [0, 1].

    Returns:
        (B, T, D): feature / ||feature|| · t(L̂_i).
    """
    return _per_frame(_unit(feature), intensity) * level_norm(intensity)[..., None]


def emotion_condition(mode: str, feature: torch.Tensor, intensity: torch.Tensor, neutral: torch.Tensor) -> torch.Tensor:
    """T's per-frame emotion input (B, T, 896 [+1]); rows where ``neutral`` is True are zero.

    ``mode`` is how intensity reaches T: "renorm" (the method) M/|M| · t(L); the Table 3
    baselines of Xu et al.: "scale" M · L, and "concat" [M/|M|, L].

    Args:
        feature: (B, D), or (B, T, D) per frame.
        intensity: (B, T) in [0, 1].
        neutral: (B,) per sequence, or (B, T) per frame.

    Raises:
        ValueError: unknown mode.
    """
    keep = (~neutral).float()
    keep = keep[:, None, None] if keep.dim() == 1 else keep[..., None]
    if mode == "renorm":
        return renormalize(feature, intensity) * keep
    if mode == "scale":
        return _per_frame(feature, intensity) * intensity[..., None] * keep
    if mode == "concat":
        x = torch.cat([_per_frame(_unit(feature), intensity), intensity[..., None]], dim=-1)
        return x * keep
    raise ValueError(f"unknown intensity_mode {mode!r}; choose renorm, scale or concat")


def _unit(feature: torch.Tensor) -> torch.Tensor:
    return feature / feature.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def _per_frame(feature: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
    """(B, T, D): a per-sequence (B, D) feature repeated on every frame of ``intensity`` (B, T)."""
    return feature if feature.dim() == 3 else feature[:, None, :].expand(-1, intensity.shape[1], -1)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of unit directions, row by row: (T, D) ``a`` towards (D,) ``b`` by
    (T,) fractions ``t`` in [0, 1] (Shoemake, "Animating rotation with quaternion curves",
    SIGGRAPH 1985); nearly equal directions fall back to normalised linear interpolation."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)[:, None]
    cos = np.clip(a @ b, -1.0, 1.0)[:, None]
    omega = np.arccos(cos)
    sin = np.sin(omega)
    close = sin < 1e-6
    safe = np.where(close, 1.0, sin)
    out = np.where(close, (1 - t) * a + t * b, (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / safe)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
