"""Rig geometry in numpy: rigid and similarity fits, rotations, first-order LBS about a joint.

One numeric home for what the avatar build (``flame_assets/build_default_avatar.py``), the rig
maps (``core.flame.rigmap``) and the Blender rig driver (``addon/rigs.py``) all need. numpy only
(no torch, no scipy), so it also runs in Blender's own Python. The differentiable LBS used in
fitting lives in :mod:`core.flame.lbs` (torch).

Methods: Umeyama, "Least-squares estimation of transformation parameters between two point
patterns" (TPAMI 1991), which with the scale fixed to 1 and no centring is Kabsch's rotation
fit; Rodrigues' rotation formula and its inverse (the rotation log map).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Similarity:
    """x → scale · R x + t.

    Attributes:
        scale: the uniform scale.
        rotation: (3, 3) rotation matrix, det +1.
        translation: (3,) in the destination's units.
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def points(self, x: np.ndarray) -> np.ndarray:
        """Map positions (..., 3)."""
        return self.scale * x @ self.rotation.T + self.translation

    def vectors(self, d: np.ndarray) -> np.ndarray:
        """Map displacements (..., 3): scaled and rotated, not translated."""
        return self.scale * d @ self.rotation.T


def _best_rotation(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rotation R minimising Σ ||R a_i − b_i||² (a, b (N, 3)), with the SVD parts Umeyama's
    scale needs: ``(R, singular values, reflection fix)``."""
    u, sigma, vt = np.linalg.svd(b.T @ a)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    return u @ fix @ vt, sigma, fix


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """Least-squares similarity taking ``src`` (N, 3) onto ``dst`` (N, 3) (Umeyama 1991).

    Returns:
        the :class:`Similarity` minimising Σ ||s R src_i + t − dst_i||², with det R = +1.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    rotation, sigma, fix = _best_rotation(a, b)
    scale = float(np.trace(np.diag(sigma) @ fix) / (a ** 2).sum())
    return Similarity(scale, rotation, mu_d - scale * rotation @ mu_s)


def fit_rotation(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(3, 3) rotation R about the origin minimising Σ ||R src_i − dst_i||² (Kabsch; src, dst (N, 3),
    e.g. eyeball vertices relative to the eye joint, rest and displaced)."""
    return _best_rotation(np.asarray(src, np.float64), np.asarray(dst, np.float64))[0]


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: (T, 3) axis-angle in radians → (T, 3, 3) rotation matrices."""
    axis_angle = np.asarray(axis_angle, np.float64).reshape(-1, 3)
    angle = np.linalg.norm(axis_angle, axis=1, keepdims=True)  # (T, 1)
    axis = axis_angle / np.maximum(angle, 1e-12)
    x, y, z = axis.T
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=1).reshape(-1, 3, 3)  # (T, 3, 3) cross matrix
    s, c = np.sin(angle)[:, :, None], np.cos(angle)[:, :, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def matrix_to_axis_angle(rotation: np.ndarray) -> np.ndarray:
    """The inverse of :func:`axis_angle_to_matrix`: (T, 3, 3) → (T, 3) axis-angle, radians in [0, π].

    Near π the axis comes from the symmetric part (R + I) / 2 = a aᵀ, where the skew part vanishes.
    """
    rotation = np.asarray(rotation, np.float64).reshape(-1, 3, 3)
    skew = np.stack([rotation[:, 2, 1] - rotation[:, 1, 2], rotation[:, 0, 2] - rotation[:, 2, 0],
                     rotation[:, 1, 0] - rotation[:, 0, 1]], axis=1) / 2  # sin(θ) a
    cos = np.clip((np.trace(rotation, axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos)
    sin = np.linalg.norm(skew, axis=1)
    out = skew * (angle / np.maximum(sin, 1e-12))[:, None]
    flipped = sin < 1e-6
    for t in np.flatnonzero(flipped & (cos < 0)):
        outer = (rotation[t] + np.eye(3)) / 2
        column = int(np.argmax(np.diag(outer)))
        axis = outer[:, column] / np.sqrt(max(outer[column, column], 1e-12))
        out[t] = axis * angle[t]
    out[flipped & (cos >= 0)] = 0.0
    return out


def rotation_about_x_basis(weights: np.ndarray, points: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """First-order LBS of a rotation about the x axis through ``joint``: the displacement per
    radian, w(v) · (x̂ × (v − joint)) (Loper et al., SMPL, eq. 2, linearised at the rest pose).

    Args:
        weights: (V,) the joint's LBS weights.
        points: (V, 3) rest positions, metres.
        joint: (3,) the joint, metres.

    Returns:
        (V, 3) metres per radian (FLAME's jaw opens with a positive rotation about x).
    """
    return np.asarray(weights)[:, None] * np.cross([1.0, 0.0, 0.0], np.asarray(points) - np.asarray(joint))


def change_of_basis(rest_axes: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) in a parent frame → the same rotations in a bone's rest frame, whose
    axes are the columns of ``rest_axes`` (3, 3): Bᵀ R B."""
    b = np.asarray(rest_axes)
    return np.einsum("ji,tjk,kl->til", b, np.asarray(rotations), b)


NECK_PLANE_NORMAL = np.array([0.0, 1.0, 1.0]) / np.sqrt(2.0)
"""Up and forward in FLAME's frame: the plane through the neck joint with this normal passes just
under the chin and through the nape, so the head (chin included) lies above it."""
NECK_FADE_M = (-0.07, -0.015)
"""Signed distances (metres) from that plane between which the head's motion fades into the neck."""


def neck_weights(vertices: np.ndarray, neck_joint: np.ndarray) -> np.ndarray:
    """(V,) skinning weights of a FLAME-topology head on its neck joint: 1 on the head, easing
    (smoothstep) to 0 down the neck, so a rotation about the joint turns the head and bends the
    neck while the shoulders' cut stays put. A stand-in for FLAME's learned LBS weights, which
    ship only with the FLAME model file.

    Args:
        vertices: (V, 3) metres in FLAME's frame (y up, +z forward).
        neck_joint: (3,) metres, FLAME's neck joint (``joint_regressor[1] @ vertices``).
    """
    distance = (np.asarray(vertices, np.float64) - np.asarray(neck_joint, np.float64)) @ NECK_PLANE_NORMAL
    lo, hi = NECK_FADE_M
    x = np.clip((distance - lo) / (hi - lo), 0.0, 1.0)
    return x * x * (3 - 2 * x)
