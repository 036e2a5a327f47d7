"""LivePortrait's implicit-keypoint algebra (Guo et al. 2024, Sec. 3.1, Eq. 2), in torch.

x = s · (x_c · R + δ) + t: canonical keypoints x_c (B, K, 3) as row vectors, the head rotation
R (B, 3, 3) acting on rows, the expression deformation δ (B, K, 3), scale s (B, 1) and translation
t (B, 3) whose z is dropped. Keypoint axes: x right, y down, z into the image (networks.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BIN_DEGREES = 3.0
BIN_OFFSET_DEGREES = 97.5  # bin i covers 3i - 97.5 degrees: 66 bins span about ±99°


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """Pose-angle logits (B, 66) -> degrees (B,): the softmax expectation of the bin index × 3° − 97.5°."""
    index = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return (torch.softmax(logits, dim=-1) * index).sum(-1) * BIN_DEGREES - BIN_OFFSET_DEGREES


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Row-vector rotation (B, 3, 3) from angles (B,) in degrees: (Rz(roll) · Ry(yaw) · Rx(pitch))ᵀ.

    ``points @ R`` rotates row vectors (B, K, 3) by the column-vector rotation Rz·Ry·Rx in the
    keypoint axes (x right, y down, z into the image).
    """
    p, y, r = (torch.deg2rad(a.reshape(-1)) for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(p), torch.zeros_like(p)

    def mat(rows):
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    rx = mat([[one, zero, zero], [zero, p.cos(), -p.sin()], [zero, p.sin(), p.cos()]])
    ry = mat([[y.cos(), zero, y.sin()], [zero, one, zero], [-y.sin(), zero, y.cos()]])
    rz = mat([[r.cos(), -r.sin(), zero], [r.sin(), r.cos(), zero], [zero, zero, one]])
    return (rz @ ry @ rx).transpose(-1, -2)


def matrix_to_angles(rotation: torch.Tensor) -> torch.Tensor:
    """Column-vector rotations (..., 3, 3) in keypoint axes -> (..., 3) pitch, yaw, roll in degrees,
    the inverse of :func:`rotation_matrix` (which returns the transpose) for |yaw| < 90°."""
    yaw = torch.asin((-rotation[..., 2, 0]).clamp(-1.0, 1.0))
    pitch = torch.atan2(rotation[..., 2, 1], rotation[..., 2, 2])
    roll = torch.atan2(rotation[..., 1, 0], rotation[..., 0, 0])
    return torch.rad2deg(torch.stack([pitch, yaw, roll], dim=-1))


@dataclass
class Motion:
    """What the motion extractor M says about one or more images (per-image tensors on one device).

    Attributes:
        kp: (B, K, 3) canonical keypoints x_c.
        angles: (B, 3) pitch, yaw, roll in degrees.
        exp: (B, K, 3) expression deformation δ.
        scale: (B, 1).
        t: (B, 3) translation (its z is not used).
    """

    kp: torch.Tensor
    angles: torch.Tensor
    exp: torch.Tensor
    scale: torch.Tensor
    t: torch.Tensor

    @classmethod
    def from_raw(cls, raw: dict[str, torch.Tensor]) -> "Motion":
        """Decode M's raw outputs (:class:`networks.MotionExtractor`)."""
        b = raw["kp"].shape[0]
        angles = torch.stack([bins_to_degrees(raw[k]) for k in ("pitch", "yaw", "roll")], dim=-1)
        return cls(kp=raw["kp"].reshape(b, -1, 3), angles=angles, exp=raw["exp"].reshape(b, -1, 3),
                   scale=raw["scale"], t=raw["t"])


def transform_keypoints(kp: torch.Tensor, rotation: torch.Tensor, exp: torch.Tensor, scale: torch.Tensor,
                        t: torch.Tensor) -> torch.Tensor:
    """Eq. 2 of LivePortrait: s · (x_c · R + δ) + (tx, ty, 0) -> (B, K, 3).

    Args:
        kp: (B, K, 3) canonical keypoints; rotation: (B, 3, 3) row-vector rotation
        (:func:`rotation_matrix`); exp: (B, K, 3); scale: (B, 1); t: (B, 3).
    """
    x = (kp @ rotation + exp) * scale[:, :, None]
    shift = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=-1)
    return x + shift[:, None, :]


def stitch(mlp, x_s: torch.Tensor, x_d: torch.Tensor) -> torch.Tensor:
    """The stitching module S (Sec. 3.2): x_d + Δ from S([x_s, x_d]), with a shared (tx, ty) shift.

    Args: mlp: the 126 -> 65 KeypointMLP; x_s, x_d: (B, K, 3). Returns (B, K, 3).
    """
    b, k, _ = x_d.shape
    delta = mlp(torch.cat([x_s.reshape(b, -1), x_d.reshape(b, -1)], dim=1))
    out = x_d + delta[:, : 3 * k].reshape(b, k, 3)
    return out + torch.cat([delta[:, 3 * k: 3 * k + 2], delta.new_zeros(b, 1)], dim=1)[:, None, :]


def retarget(mlp, x_s: torch.Tensor, ratios: torch.Tensor) -> torch.Tensor:
    """An eye or lip retargeting module (Sec. 3.3): Δ (B, K, 3) from [x_s (B, K·3), ratios (B, r)]."""
    b, k, _ = x_s.shape
    return mlp(torch.cat([x_s.reshape(b, -1), ratios], dim=1)).reshape(b, k, 3)
