"""The camera that sees the avatar as the photo sees the face: weak perspective (scaled orthographic).

A portrait is taken from 0.5 m or more, where the face's own depth (about 0.1 m) changes the
magnification by a few percent; a weak-perspective camera has six parameters that 478
landmarks fix firmly, and its projection is linear in the vertices, so the avatar's expression
fits through it by linear least squares. Image = s · (R X)[x, y] + t, depth = s · (R X)[z]; the
camera frame has x right, y down and z away from the camera (a right-handed frame: FLAME's
y-up, z-forward frame is turned 180° about x to face it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.flame.geometry import fit_similarity

FLAME_TO_CAMERA = np.diag([1.0, -1.0, -1.0])
"""A head looking into the camera: FLAME's +y (up) is the image's −y, +z (out of the nose) points
at the camera."""


@dataclass(frozen=True)
class Camera:
    """A weak-perspective camera.

    Attributes:
        scale: pixels per metre.
        rotation: (3, 3) FLAME frame -> camera frame.
        translation: (2,) image position of the FLAME origin, pixels.
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FLAME-frame points (..., 3) metres -> image positions (..., 2) pixels and depth (...,)
        pixels (larger is farther)."""
        cam = self.scale * np.asarray(points, np.float64) @ self.rotation.T
        return cam[..., :2] + self.translation, cam[..., 2]


def camera_from_3d(model: np.ndarray, image: np.ndarray) -> Camera:
    """A first camera from 3D correspondences (Umeyama's similarity, :func:`fit_similarity`).

    Args:
        model: (N, 3) avatar points, metres, FLAME frame.
        image: (N, 3) the same points as MediaPipe gives them: x, y pixels and relative depth z
            in pixels (MediaPipe's z shares x's scale).
    """
    fit = fit_similarity(model, image)
    return Camera(fit.scale, fit.rotation, fit.translation[:2])
