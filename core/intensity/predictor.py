"""IntensityPredictor P: audio → frame-wise emotion intensity (Xu et al., Sec. 3.2 and supplementary).

A conditional VAE over the intensity curve L (T,), conditioned on audio features c (T, D):

* posterior q(z | L, c): Conv1d (stride 2) → ReLU → LayerNorm → non-causal WaveNet → (μ, log σ);
  z lives at half the frame rate, ``z_channels`` values a step;
* decoder p(L | z, c): WaveNet → ConvTranspose1d (stride 2) → ReLU → LayerNorm → 1×1 Conv →
  sigmoid, the mean of a Gaussian with fixed σ;
* prior p(z | c): a normalizing flow — affine Conv1d coupling layers, each followed by a channel
  flip — onto a Gaussian whose mean and scale come from the audio.

Training maximises the Monte-Carlo ELBO (one reparameterised sample of z). Inference samples the
prior at a temperature and decodes, so one recording gives different plausible curves per seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class PredictorConfig:
    feature_dim: int = 83     # audio features per frame (log-mel + prosody)
    hidden: int = 64          # channels of every WaveNet
    z_channels: int = 4       # latent values per half-rate step (even: the coupling splits them)
    wavenet_layers: int = 6   # dilations 1, 2, 4, ... per WaveNet
    kernel: int = 5
    flows: int = 4            # coupling layers, each followed by a flip
    sigma: float = 0.1        # decoder's fixed standard deviation (intensity units)


class LayerNorm1d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, T) tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class WaveNet(nn.Module):
    """Non-causal WaveNet: gated dilated Conv1d layers with a global conditioning input.

    forward(x (B, H, T), cond (B, H, T), mask (B, 1, T)) → (B, H, T), the sum of skip outputs.
    """

    def __init__(self, hidden: int, layers: int, kernel: int):
        super().__init__()
        self.hidden = hidden
        self.dilated = nn.ModuleList(
            nn.Conv1d(hidden, 2 * hidden, kernel, dilation=2**i, padding=(kernel - 1) * 2**i // 2)
            for i in range(layers)
        )
        self.cond = nn.Conv1d(hidden, 2 * hidden * layers, 1)
        self.res_skip = nn.ModuleList(nn.Conv1d(hidden, 2 * hidden, 1) for _ in range(layers))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        g = self.cond(cond).chunk(len(self.dilated), dim=1)
        out = torch.zeros_like(x)
        for conv, rs, gi in zip(self.dilated, self.res_skip, g):
            a, b = (conv(x) + gi).chunk(2, dim=1)
            res, skip = rs(torch.tanh(a) * torch.sigmoid(b)).chunk(2, dim=1)
            x = (x + res) * mask
            out = out + skip
        return out * mask


class Coupling(nn.Module):
    """Affine coupling on the second half of z's channels, given the first half and the audio;
    the channels are flipped afterwards so the next layer transforms the other half."""

    def __init__(self, cfg: PredictorConfig):
        super().__init__()
        half = cfg.z_channels // 2
        self.pre = nn.Conv1d(half, cfg.hidden, 1)
        self.net = WaveNet(cfg.hidden, 3, cfg.kernel)
        self.post = nn.Conv1d(cfg.hidden, 2 * half, 1)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, z, cond, mask, reverse=False):
        if reverse:
            z = z.flip(1)
        za, zb = z.chunk(2, dim=1)
        shift, log_scale = self.post(self.net(self.pre(za) * mask, cond, mask)).chunk(2, dim=1)
        log_scale = torch.tanh(log_scale) * mask
        if not reverse:
            zb = (zb * torch.exp(log_scale) + shift) * mask
            logdet = log_scale.sum(dim=(1, 2))
        else:
            zb = (zb - shift) * torch.exp(-log_scale) * mask
            return torch.cat([za, zb], dim=1), -log_scale.sum(dim=(1, 2))
        return torch.cat([za, zb], dim=1).flip(1), logdet


def _gauss_logp(x, mean, log_std, mask):
    lp = -0.5 * math.log(2 * math.pi) - log_std - 0.5 * ((x - mean) * torch.exp(-log_std)) ** 2
    return (lp * mask).sum(dim=(1, 2))


class IntensityPredictor(nn.Module):
    """P (Xu et al.): a conditional VAE with a flow prior that maps audio features to intensity.

    Shapes: features (B, T, D) float32 (standardised audio features on the frame grid),
    intensity (B, T) in [0, 1], mask (B, T) bool (True on real frames).
    """

    def __init__(self, cfg: PredictorConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.cond_in = nn.Conv1d(cfg.feature_dim, h, 3, padding=1)
        # posterior q(z | L, c)
        self.enc_in = nn.Conv1d(1, h, 4, stride=2, padding=1)
        self.enc_norm = LayerNorm1d(h)
        self.enc_wn = WaveNet(h, cfg.wavenet_layers, cfg.kernel)
        self.enc_out = nn.Conv1d(h, 2 * cfg.z_channels, 1)
        # decoder p(L | z, c)
        self.dec_in = nn.Conv1d(cfg.z_channels, h, 1)
        self.dec_wn = WaveNet(h, cfg.wavenet_layers, cfg.kernel)
        self.dec_up = nn.ConvTranspose1d(h, h, 4, stride=2, padding=1)
        self.dec_norm = LayerNorm1d(h)
        self.dec_out = nn.Conv1d(h, 1, 1)
        self.dec_cond = nn.Conv1d(h, h, 1)
        # prior p(z | c): base Gaussian from the audio, then the flow
        self.prior_base = nn.Conv1d(h, 2 * cfg.z_channels, 1)
        self.flows = nn.ModuleList(Coupling(cfg) for _ in range(cfg.flows))

    def _cond(self, features, mask):
        """(B, T, D) → full-rate (B, H, T) and half-rate (B, H, T/2) conditioning, T made even."""
        x = features.transpose(1, 2)
        m = mask[:, None].float()
        if x.shape[-1] % 2:
            x, m = F.pad(x, (0, 1)), F.pad(m, (0, 1))
        c = torch.relu(self.cond_in(x)) * m
        c_half = F.avg_pool1d(c, 2)
        m_half = F.max_pool1d(m, 2)
        return c, m, c_half, m_half

    def _decode(self, z, c, m, c_half, m_half):
        h = self.dec_wn(self.dec_in(z) * m_half, c_half, m_half)
        h = self.dec_norm(torch.relu(self.dec_up(h))) + self.dec_cond(c)
        return torch.sigmoid(self.dec_out(h))[:, 0] * m[:, 0]

    def forward(self, features: torch.Tensor, intensity: torch.Tensor, mask: torch.Tensor) -> dict:
        """Negative Monte-Carlo ELBO per frame and its terms.

        Returns:
            dict with ``loss`` (scalar: −ELBO / frames), ``recon`` (Gaussian NLL / frame),
            ``kl`` (log q(z) − log p(z) / frame) and ``mean`` (B, T) the reconstruction.
        """
        c, m, c_half, m_half = self._cond(features, mask)
        target = intensity * mask
        if target.shape[-1] != m.shape[-1]:
            target = F.pad(target, (0, 1))
        h = self.enc_norm(torch.relu(self.enc_in(target[:, None]))) * m_half
        mu_q, logs_q = self.enc_out(self.enc_wn(h, c_half, m_half)).chunk(2, dim=1)
        z = (mu_q + torch.randn_like(mu_q) * torch.exp(logs_q)) * m_half
        log_q = _gauss_logp(z, mu_q, logs_q, m_half)
        u, logdet = z, torch.zeros(z.shape[0], device=z.device)
        for flow in self.flows:
            u, ld = flow(u, c_half, m_half)
            logdet = logdet + ld
        mu_p, logs_p = self.prior_base(c_half).chunk(2, dim=1)
        log_p = _gauss_logp(u, mu_p, logs_p, m_half) + logdet
        mean = self._decode(z, c, m, c_half, m_half)
        frames = m.sum()
        recon = (((mean - target) ** 2 / (2 * self.cfg.sigma**2)) * m[:, 0]).sum() / frames
        kl = (log_q - log_p).sum() / frames
        return {"loss": recon + kl, "recon": recon, "kl": kl, "mean": mean[:, : intensity.shape[-1]]}

    @torch.no_grad()
    def sample(self, features: torch.Tensor, mask: torch.Tensor | None = None, temperature: float = 0.667,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw intensity curves from the prior.

        Args:
            features: (B, T, D) standardised audio features.
            mask: (B, T) bool, default all True.
            temperature: scale of the prior's noise (0 gives the prior's mode through the flow).
            generator: a seeded ``torch.Generator`` for repeatable draws.

        Returns:
            (B, T) float32 in [0, 1].
        """
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        c, m, c_half, m_half = self._cond(features, mask)
        mu_p, logs_p = self.prior_base(c_half).chunk(2, dim=1)
        eps = torch.randn(mu_p.shape, generator=generator, device=mu_p.device)
        u = (mu_p + eps * torch.exp(logs_p) * temperature) * m_half
        for flow in reversed(self.flows):
            u, _ = flow(u, c_half, m_half, reverse=True)
        return self._decode(u, c, m, c_half, m_half)[:, : features.shape[1]]
