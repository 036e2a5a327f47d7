"""Building blocks of the LivePortrait networks (Guo et al., "LivePortrait: Efficient Portrait
Animation with Stitching and Retargeting Control", 2024, Sec. 3; face-vid2vid's blocks, Wang et al.
CVPR 2021, Sec. 3).

Attribute names are part of the checkpoint format: every ``self.<name>`` that holds parameters
is a segment of a tensor name in the released ``.pth`` files (see
``tests/fixtures/liveportrait_manifest.json``), so they are kept exactly as the files spell them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvNormAct2d(nn.Module):
    """3×3 conv → BatchNorm → ReLU (or LeakyReLU 0.01), same resolution: (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, leaky: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)
        self.leaky = leaky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        return F.leaky_relu(x) if self.leaky else F.relu(x)


class Down2d(ConvNormAct2d):
    """ConvNormAct2d then 2×2 average pooling: (B, C_in, H, W) -> (B, C_out, H/2, W/2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(super().forward(x), 2)


class Down3d(nn.Module):
    """3×3×3 conv → BatchNorm → ReLU → pool H and W by 2: (B, C_in, D, H, W) -> (B, C_out, D, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), (1, 2, 2))


class Up3d(nn.Module):
    """Nearest upsampling of H and W by 2 → 3×3×3 conv → BatchNorm → ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=(1, 2, 2))
        return F.relu(self.norm(self.conv(x)))


class Residual3d(nn.Module):
    """Pre-activation 3D residual block (BN → ReLU → conv, twice), shape-preserving."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm3d(channels)
        self.norm2 = nn.BatchNorm3d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(y)))


def _widths(expansion: int, levels: int, cap: int) -> list[int]:
    """Feature widths of an hourglass: expansion·2^i capped, i = 0..levels."""
    return [min(cap, expansion * 2 ** i) for i in range(levels + 1)]


class HourglassEncoder(nn.Module):
    """``levels`` Down3d blocks; returns the input and every level's output (for skips)."""

    def __init__(self, expansion: int, in_channels: int, levels: int, cap: int):
        super().__init__()
        w = _widths(expansion, levels, cap)
        self.down_blocks = nn.ModuleList(
            Down3d(in_channels if i == 0 else w[i], w[i + 1]) for i in range(levels)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class HourglassDecoder(nn.Module):
    """Up3d blocks from the deepest level back up, concatenating the encoder's skips, then a
    3×3×3 conv → BatchNorm → ReLU at ``expansion + in_channels`` channels."""

    def __init__(self, expansion: int, in_channels: int, levels: int, cap: int):
        super().__init__()
        w = _widths(expansion, levels, cap)
        self.up_blocks = nn.ModuleList(
            Up3d(w[i + 1] * (1 if i == levels - 1 else 2), w[i]) for i in reversed(range(levels))
        )
        self.out_channels = expansion + in_channels
        self.conv = nn.Conv3d(self.out_channels, self.out_channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_channels)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        skips = list(skips)
        x = skips.pop()
        for block in self.up_blocks:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return F.relu(self.norm(self.conv(x)))


class Hourglass3d(nn.Module):
    """3D U-Net: (B, C_in, D, H, W) -> (B, expansion + C_in, D, H, W); H, W divisible by 2^levels."""

    def __init__(self, expansion: int, in_channels: int, levels: int, cap: int):
        super().__init__()
        self.encoder = HourglassEncoder(expansion, in_channels, levels, cap)
        self.decoder = HourglassDecoder(expansion, in_channels, levels, cap)
        self.out_channels = self.decoder.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class SPADE(nn.Module):
    """Spatially-adaptive normalisation (Park et al., CVPR 2019, Sec. 3): instance-normalise
    ``x`` (B, C, H, W), then scale by 1 + γ(seg) and shift by β(seg), with γ, β from a small
    conv net on ``seg`` (B, C_seg, h, w) resized (nearest) to H×W."""

    hidden = 128

    def __init__(self, channels: int, seg_channels: int):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(seg_channels, self.hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(self.hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(self.hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        hidden = self.mlp_shared(F.interpolate(seg, size=x.shape[2:], mode="nearest"))
        return F.instance_norm(x) * (1 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)


class SPADEResBlock(nn.Module):
    """SPADE residual block with spectrally normalised convs (Park et al., Sec. 3; Miyato et al.,
    ICLR 2018): (B, C_in, H, W) -> (B, C_out, H, W); a learned 1×1 shortcut when C_in != C_out.

    Spectral normalisation keeps ``weight_orig``, ``weight_u`` and ``weight_v`` per conv, the
    released files' format; in eval mode the stored u, v give σ without power iterations.
    """

    def __init__(self, in_channels: int, out_channels: int, seg_channels: int):
        super().__init__()
        middle = min(in_channels, out_channels)
        sn = nn.utils.spectral_norm
        self.conv_0 = sn(nn.Conv2d(in_channels, middle, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(middle, out_channels, 3, padding=1))
        self.norm_0 = SPADE(in_channels, seg_channels)
        self.norm_1 = SPADE(middle, seg_channels)
        self.learned_shortcut = in_channels != out_channels
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(in_channels, out_channels, 1, bias=False))
            self.norm_s = SPADE(in_channels, seg_channels)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, H, W) (ConvNeXt's stem and downsampling norm)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's GRN (Woo et al., CVPR 2023, Sec. 3.2) on channels-last (B, H, W, C):
    x + γ·(x·N(x)) + β, N = per-channel L2 norm over H, W divided by its mean over channels."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True)  # (B, 1, 1, C)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        return x + self.gamma * (x * n) + self.beta


class ConvNeXtBlock(nn.Module):
    """ConvNeXt V2 block: 7×7 depthwise conv → LayerNorm → 4× MLP with GELU and GRN, residual."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GlobalResponseNorm(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # (B, H, W, C)
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)
