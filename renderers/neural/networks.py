"""The five LivePortrait networks, loadable from the released checkpoints.

Guo et al., "LivePortrait: Efficient Portrait Animation with Stitching and Retargeting Control"
(arXiv 2407.03168, 2024), Sec. 3.1 (F, M, W, G, built on face-vid2vid, Wang et al. CVPR 2021)
and Sec. 3.2–3.3 (the stitching module S and the eye and lip retargeting modules R_eyes, R_lip).
Each config's defaults are the released configuration (upstream ``src/config/models.yaml``);
the tensor names and shapes they produce are pinned by ``tests/fixtures/liveportrait_manifest.json``.

Coordinates: keypoints and sampling grids are in [-1, 1] with x to the image's right, y down and
z into the image, in that order (what ``grid_sample`` reads for a (D, H, W) volume).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (
    ChannelsFirstLayerNorm, ConvNeXtBlock, ConvNormAct2d, Down2d, Hourglass3d, Residual3d, SPADEResBlock,
)


# ---------------------------------------------------------------- F: appearance feature extractor

@dataclass(frozen=True)
class AppearanceConfig:
    image_channels: int = 3
    expansion: int = 64          # width of the first conv; doubles per down block
    down_blocks: int = 2         # 256² image -> 64² features
    max_features: int = 512      # channels before the 2D -> 3D reshape
    volume_channels: int = 32    # C of the (C, D, H, W) feature volume
    volume_depth: int = 16       # D; max_features = volume_channels × volume_depth
    residual_blocks: int = 6


class AppearanceFeatureExtractor(nn.Module):
    """F: source image (B, 3, H, W) in [0, 1] -> feature volume f_s (B, 32, 16, H/4, W/4)."""

    def __init__(self, cfg: AppearanceConfig = AppearanceConfig()):
        super().__init__()
        if cfg.volume_channels * cfg.volume_depth != cfg.max_features:
            raise ValueError("AppearanceConfig: volume_channels × volume_depth must equal max_features")
        self.cfg = cfg
        widths = [min(cfg.max_features, cfg.expansion * 2 ** i) for i in range(cfg.down_blocks + 1)]
        self.first = ConvNormAct2d(cfg.image_channels, cfg.expansion)
        self.down_blocks = nn.ModuleList(Down2d(widths[i], widths[i + 1]) for i in range(cfg.down_blocks))
        self.second = nn.Conv2d(widths[-1], cfg.max_features, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(cfg.residual_blocks):
            self.resblocks_3d.add_module(f"3dr{i}", Residual3d(cfg.volume_channels))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.first(image)
        for block in self.down_blocks:
            x = block(x)
        x = self.second(x)  # (B, 512, h, w)
        b, _, h, w = x.shape
        return self.resblocks_3d(x.view(b, self.cfg.volume_channels, self.cfg.volume_depth, h, w))


# ---------------------------------------------------------------------------- M: motion extractor

@dataclass(frozen=True)
class MotionConfig:
    num_kp: int = 21
    num_bins: int = 66                      # pose angle classes of 3°, see keypoints.bins_to_degrees
    depths: tuple[int, ...] = (3, 3, 9, 3)  # ConvNeXt V2-tiny (Woo et al., CVPR 2023)
    dims: tuple[int, ...] = (96, 192, 384, 768)
    in_channels: int = 3


class ConvNeXtV2Heads(nn.Module):
    """ConvNeXt V2 trunk, global average pooling, and one linear head per motion quantity."""

    def __init__(self, cfg: MotionConfig):
        super().__init__()
        dims = cfg.dims
        self.downsample_layers = nn.ModuleList([
            nn.Sequential(nn.Conv2d(cfg.in_channels, dims[0], kernel_size=4, stride=4), ChannelsFirstLayerNorm(dims[0]))
        ] + [
            nn.Sequential(ChannelsFirstLayerNorm(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
            for i in range(len(dims) - 1)
        ])
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(dim) for _ in range(depth))) for dim, depth in zip(dims, cfg.depths)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.fc_kp = nn.Linear(dims[-1], 3 * cfg.num_kp)
        self.fc_scale = nn.Linear(dims[-1], 1)
        self.fc_pitch = nn.Linear(dims[-1], cfg.num_bins)
        self.fc_yaw = nn.Linear(dims[-1], cfg.num_bins)
        self.fc_roll = nn.Linear(dims[-1], cfg.num_bins)
        self.fc_t = nn.Linear(dims[-1], 3)
        self.fc_exp = nn.Linear(dims[-1], 3 * cfg.num_kp)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        x = self.norm(x.mean(dim=(-2, -1)))  # (B, 768)
        return {name: getattr(self, f"fc_{name}")(x) for name in ("kp", "pitch", "yaw", "roll", "t", "exp", "scale")}


class MotionExtractor(nn.Module):
    """M: image (B, 3, 256, 256) in [0, 1] -> raw motion dict.

    Returns:
        ``kp`` (B, 63) canonical keypoints x_c, ``exp`` (B, 63) expression deformation δ,
        ``pitch``/``yaw``/``roll`` (B, 66) bin logits (:func:`keypoints.bins_to_degrees`),
        ``t`` (B, 3) translation, ``scale`` (B, 1).
    """

    def __init__(self, cfg: MotionConfig = MotionConfig()):
        super().__init__()
        self.cfg = cfg
        self.detector = ConvNeXtV2Heads(cfg)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.detector(image)


# ------------------------------------------------------------------------------ W: warping module

@dataclass(frozen=True)
class DenseMotionConfig:
    expansion: int = 32
    max_features: int = 1024
    levels: int = 5        # hourglass depth: H, W divisible by 2^levels
    depth: int = 16        # D of the feature volume
    compress: int = 4      # channels the feature volume is squeezed to before warping per keypoint


@dataclass(frozen=True)
class WarpingConfig:
    num_kp: int = 21
    expansion: int = 64
    max_features: int = 512
    down_blocks: int = 2
    volume_channels: int = 32
    occlusion: bool = True
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)


def coordinate_grid(d: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(D, H, W, 3) grid of (x, y, z) in [-1, 1], corners on the first and last voxel centres."""
    axes = [torch.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device) for n in (d, h, w)]
    z, y, x = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def keypoint_heatmaps(kp: torch.Tensor, d: int, h: int, w: int, variance: float = 0.01) -> torch.Tensor:
    """Gaussian blobs exp(-|g - kp|² / 2σ²) of keypoints (B, K, 3) on a grid -> (B, K, D, H, W)."""
    grid = coordinate_grid(d, h, w, kp)  # (D, H, W, 3)
    diff = grid[None, None] - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / variance)


class DenseMotionNetwork(nn.Module):
    """Predicts the dense 3D flow from driving to source space, mixing K + 1 rigid candidate
    flows (the identity and one translation per keypoint) by a softmax mask, and an occlusion map.
    """

    def __init__(self, cfg: DenseMotionConfig, num_kp: int, feature_channels: int, occlusion: bool):
        super().__init__()
        self.num_kp = num_kp
        self.hourglass = Hourglass3d(cfg.expansion, (num_kp + 1) * (cfg.compress + 1), cfg.levels, cfg.max_features)
        self.mask = nn.Conv3d(self.hourglass.out_channels, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channels, cfg.compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(cfg.compress)
        self.occlusion = (nn.Conv2d(self.hourglass.out_channels * cfg.depth, 1, kernel_size=7, padding=3)
                          if occlusion else None)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args: feature (B, C, D, H, W); keypoints (B, K, 3).

        Returns ``deformation`` (B, D, H, W, 3) sampling grid, ``mask`` (B, K+1, D, H, W) and, if
        configured, ``occlusion_map`` (B, 1, H, W) in (0, 1).
        """
        b, _, d, h, w = feature.shape
        k = self.num_kp
        feature = F.relu(self.norm(self.compress(feature)))  # (B, c, D, H, W)
        identity = coordinate_grid(d, h, w, kp_source)[None, None]  # (1, 1, D, H, W, 3)
        shifted = identity - kp_driving[:, :, None, None, None, :] + kp_source[:, :, None, None, None, :]
        candidates = torch.cat([identity.expand(b, 1, d, h, w, 3), shifted], dim=1)  # (B, K+1, D, H, W, 3)

        repeated = feature[:, None].expand(b, k + 1, *feature.shape[1:]).reshape(b * (k + 1), -1, d, h, w)
        warped = F.grid_sample(repeated, candidates.reshape(b * (k + 1), d, h, w, 3), align_corners=False)
        warped = warped.view(b, k + 1, -1, d, h, w)

        heat = keypoint_heatmaps(kp_driving, d, h, w) - keypoint_heatmaps(kp_source, d, h, w)
        heat = torch.cat([heat.new_zeros(b, 1, d, h, w), heat], dim=1)[:, :, None]  # (B, K+1, 1, D, H, W)

        prediction = self.hourglass(torch.cat([heat, warped], dim=2).view(b, -1, d, h, w))
        mask = F.softmax(self.mask(prediction), dim=1)  # (B, K+1, D, H, W)
        deformation = (candidates * mask[..., None]).sum(dim=1)  # (B, D, H, W, 3)
        out = {"mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)))
        return out


class WarpingModule(nn.Module):
    """W: warps the source volume f_s by the flow that takes x_s to x_d, flattens depth into
    channels and mixes: (B, 32, 16, h, w) -> ``out`` (B, 256, h, w), times the occlusion map.
    """

    def __init__(self, cfg: WarpingConfig = WarpingConfig()):
        super().__init__()
        self.cfg = cfg
        width = cfg.expansion * 2 ** cfg.down_blocks
        self.dense_motion_network = DenseMotionNetwork(cfg.dense_motion, cfg.num_kp, cfg.volume_channels, cfg.occlusion)
        self.third = ConvNormAct2d(cfg.max_features, width, leaky=True)
        self.fourth = nn.Conv2d(width, width, kernel_size=1)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args: feature (B, 32, 16, h, w) from F; keypoints (B, 21, 3).

        Returns ``out`` (B, 256, h, w), ``deformation`` (B, 16, h, w, 3) and ``occlusion_map``
        (B, 1, h, w) (None when the config has no occlusion).
        """
        motion = self.dense_motion_network(feature, kp_driving, kp_source)
        warped = F.grid_sample(feature, motion["deformation"], align_corners=False)
        b, c, d, h, w = warped.shape
        out = self.fourth(self.third(warped.view(b, c * d, h, w)))
        occlusion = motion.get("occlusion_map")
        if occlusion is not None:
            out = out * occlusion
        return {"out": out, "deformation": motion["deformation"], "occlusion_map": occlusion}


# ----------------------------------------------------------------------------- G: SPADE generator

@dataclass(frozen=True)
class GeneratorConfig:
    expansion: int = 64
    max_features: int = 512
    down_blocks: int = 2       # the warped feature has expansion × 2^down_blocks = 256 channels
    out_features: int = 64     # channels of the last residual block
    upscale: int = 2           # pixel-shuffle factor: 256² decoded -> 512² image
    middle_blocks: int = 6


class SpadeGenerator(nn.Module):
    """G: warped feature (B, 256, h, w) -> image (B, 3, 8h, 8w) in (0, 1) (512² from 64²).

    The feature is both the input and SPADE's conditioning map (Sec. 3.1 of LivePortrait).
    """

    def __init__(self, cfg: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        if cfg.middle_blocks != 6:
            raise ValueError("GeneratorConfig.middle_blocks: the released generator has 6 (G_middle_0..5)")
        self.cfg = cfg
        seg = min(cfg.max_features, cfg.expansion * 2 ** cfg.down_blocks)
        self.fc = nn.Conv2d(seg, 2 * seg, 3, padding=1)
        for i in range(cfg.middle_blocks):
            self.add_module(f"G_middle_{i}", SPADEResBlock(2 * seg, 2 * seg, seg))
        self.up_0 = SPADEResBlock(2 * seg, seg, seg)
        self.up_1 = SPADEResBlock(seg, cfg.out_features, seg)
        if cfg.upscale > 1:
            self.conv_img = nn.Sequential(
                nn.Conv2d(cfg.out_features, 3 * cfg.upscale ** 2, 3, padding=1), nn.PixelShuffle(cfg.upscale)
            )
        else:
            self.conv_img = nn.Conv2d(cfg.out_features, 3, 3, padding=1)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = self.fc(feature)
        for i in range(self.cfg.middle_blocks):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))


# --------------------------------------------------------------- S, R_lip, R_eyes: keypoint MLPs

@dataclass(frozen=True)
class MLPConfig:
    input_size: int
    hidden_sizes: tuple[int, ...]
    output_size: int


STITCHING = MLPConfig(126, (128, 128, 64), 65)       # [x_s, x_d] (2 × 63) -> Δx_d (63) + Δ(tx, ty)
LIP = MLPConfig(65, (128, 128, 64), 63)              # [x_s, c_s,lip, c_d,lip] -> Δx (63)
EYE = MLPConfig(66, (256, 256, 128, 128, 64), 63)    # [x_s, c_s,eye L, c_s,eye R, c_d,eye] -> Δx (63)


class KeypointMLP(nn.Module):
    """The stitching and retargeting MLPs: Linear/ReLU stack, (B, input_size) -> (B, output_size)."""

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        sizes = (cfg.input_size, *cfg.hidden_sizes)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], cfg.output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
