"""ExpressionTransformer T: audio + re-normalized emotion feature → expression channels per frame.

Xu et al. (Sec. 3.4) feed the re-normalized emotion feature to the audio-to-expression
transformer as an extra token. Here the sequence is [emotion token; audio tokens]: the emotion
token is the projection of the clip's mean emotion feature (what the emotion is), and each audio
token also receives the projection of its own frame's feature (how strongly it shows at that
frame, since the norm changes per frame). Attention is restricted to a window of ``window``
frames either side so the model runs on recordings of any length; a depthwise convolution
before the encoder gives the tokens their local order.

Output: the 52 ARKit channel weights in [0, 1] (``jawOpen`` carries the jaw).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..channels import ARKIT_CHANNELS


@dataclass
class TransformerConfig:
    feature_dim: int = 83       # audio features per frame
    emotion_dim: int = 896      # M's output size
    d_model: int = 128
    heads: int = 4
    layers: int = 4
    window: int = 15            # frames either side a token attends to (0.5 s at 30 fps)
    dropout: float = 0.1
    channels: int = len(ARKIT_CHANNELS)
    intensity_mode: str = "renorm"   # "renorm" (the method), "concat" or "scale" (Table 3 baselines)


class ExpressionTransformer(nn.Module):
    """T. forward(features (B, T, D), emotion (B, T, 896), mask (B, T) bool) → weights (B, T, 52), unclipped.

    ``intensity_mode`` selects how intensity reaches the emotion input (the Table 3 ablation):
    "renorm" and "scale" take the feature as given (re-normalized to t(L̂), or scaled by L̂);
    "concat" takes a unit-norm feature plus the intensity scalar in an extra input column.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        extra = 1 if cfg.intensity_mode == "concat" else 0
        self.audio_in = nn.Linear(cfg.feature_dim, d)
        self.local = nn.Conv1d(d, d, 7, padding=3, groups=d)
        self.emotion_in = nn.Linear(cfg.emotion_dim + extra, d)
        self.emotion_token = nn.Linear(cfg.emotion_dim + extra, d)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, 4 * d, cfg.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, cfg.channels))

    def _attention_mask(self, t: int, device) -> torch.Tensor:
        idx = torch.arange(t, device=device)
        far = (idx[:, None] - idx[None, :]).abs() > self.cfg.window
        full = torch.zeros(t + 1, t + 1, dtype=torch.bool, device=device)
        full[1:, 1:] = far  # the emotion token sees and is seen by every frame
        return full

    def forward(self, features: torch.Tensor, emotion: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = features.shape
        m = mask[..., None].float()
        x = self.audio_in(features)
        x = x + self.local(x.transpose(1, 2)).transpose(1, 2)
        x = x + self.emotion_in(emotion)
        mean_emotion = (emotion * m).sum(1) / m.sum(1).clamp_min(1)
        tokens = torch.cat([self.emotion_token(mean_emotion)[:, None], x], dim=1)
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=mask.device), ~mask], dim=1)
        h = self.encoder(tokens, mask=self._attention_mask(t, features.device), src_key_padding_mask=pad)
        return self.out(h[:, 1:])
