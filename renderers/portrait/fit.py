"""Fit the default avatar to a portrait: camera, the photo's own expression, and what is left over.

1. MediaPipe's blendshape scores of the photo, read as ARKit channels, are the first guess of
   its expression (a smiling photo reads mouthSmile ≈ 0.9).
2. A first camera from the 3D landmarks (Umeyama's similarity, :func:`camera.camera_from_3d`).
3. Camera and the expression channels of :data:`FIT_CHANNELS` refined together by bounded
   least squares (``scipy.optimize.least_squares``, trust-region reflective) on the 2D distance
   between MediaPipe's landmarks and the same surface points of the avatar (LSMR steps: scipy's
   SVD-based step takes over a second per call on a busy 2-core machine, LSMR milliseconds), each landmark
   weighted by how well the correspondence pins it (its spread across the views that built
   it), the inner lips and lids more, and the expression pulled towards MediaPipe's reading.
4. What the avatar's mean FLAME shape cannot match (this person's own face) is a smooth 2D
   correction: a thin-plate spline through the landmarks' residuals
   (``scipy.interpolate.RBFInterpolator``), evaluated at every avatar vertex's rest projection,
   so that the avatar's lips, lids and irises lie on the photo's.

The photo's rest expression is what the animation is measured from: every frame moves the
photo by (avatar posed by the clip) − (avatar at this rest expression), so a smile in the
photo is undone where the clip does not smile and a closed lip in the clip closes the photo's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.channels import ARKIT_CHANNELS, canonical_channel
from ...core.flame.geometry import axis_angle_to_matrix
from .camera import Camera, camera_from_3d
from .correspondence import Correspondence
from .face import EYE_LOWER, EYE_UPPER, INNER_LIP_LOWER, INNER_LIP_UPPER, FaceReading
from .mesh import AvatarMesh

FIT_CHANNELS = (
    "jawOpen", "mouthClose", "mouthSmile_L", "mouthSmile_R", "mouthStretch_L", "mouthStretch_R",
    "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthPucker", "mouthLowerDown_L", "mouthLowerDown_R",
    "mouthUpperUp_L", "mouthUpperUp_R", "mouthPress_L", "mouthPress_R", "mouthRollLower", "mouthRollUpper",
    "eyeBlink_L", "eyeBlink_R", "eyeWide_L", "eyeWide_R", "eyeSquint_L", "eyeSquint_R",
    "browInnerUp", "browDown_L", "browDown_R", "browOuterUp_L", "browOuterUp_R", "cheekSquint_L", "cheekSquint_R",
)
"""Channels whose rest value is fitted to the photo's landmarks; the others keep MediaPipe's reading."""
PRIOR = 0.15
"""Pull of each fitted channel towards MediaPipe's score, in eye spans per unit weight."""
SPREAD_MM = 2.0
"""A landmark whose correspondence spread this much across views counts half."""
DETAIL_WEIGHT = 4.0
"""Extra weight of the inner-lip and lid-margin landmarks: what the animation opens and closes."""
SMOOTHING = 1e-3
"""The correction spline's smoothing (in eye spans²): keeps it from folding on one misread landmark."""


@dataclass(frozen=True)
class PortraitFit:
    """The avatar as the photo shows it.

    Attributes:
        camera: the weak-perspective :class:`Camera`.
        rest: (K,) float32 the photo's expression on the ARKit channels (``ARKIT_CHANNELS`` order).
        correction: (N, 2) float64 pixels added to every stacked avatar vertex's projection
            (the person's own shape), rest and posed alike.
        residual_px: (478,) distance between MediaPipe's landmarks and the fitted avatar's
            (camera and expression only, before the correction), pixels.
        reading: what MediaPipe read of the photo.
    """

    camera: Camera
    rest: np.ndarray
    correction: np.ndarray
    residual_px: np.ndarray
    reading: FaceReading


def mediapipe_channels(scores: dict[str, float]) -> np.ndarray:
    """MediaPipe's blendshape scores ({'eyeBlinkLeft': 0.1, ...}) -> (52,) float32 on
    ``ARKIT_CHANNELS``, channels it does not score (tongueOut) at 0."""
    out = np.zeros(len(ARKIT_CHANNELS), np.float32)
    for name, score in scores.items():
        channel = canonical_channel(name)
        if channel in ARKIT_CHANNELS:
            out[ARKIT_CHANNELS.index(channel)] = score
    return out


def _landmark_weights(corr: Correspondence) -> np.ndarray:
    w = 1.0 / (1.0 + (corr.spread_mm / SPREAD_MM) ** 2)
    detail = list(INNER_LIP_UPPER + INNER_LIP_LOWER) + [i for side in "LR" for i in EYE_UPPER[side] + EYE_LOWER[side]]
    w[detail] *= DETAIL_WEIGHT
    return w


def fit_portrait(reading: FaceReading, mesh: AvatarMesh, corr: Correspondence, to_avatar: np.ndarray) -> PortraitFit:
    """Fit camera, rest expression and correction to one photo's MediaPipe reading.

    Args:
        reading: :func:`face.detect_face`'s result.
        mesh: the avatar as one mesh (:class:`AvatarMesh`).
        corr: the MediaPipe-to-FLAME :class:`Correspondence`.
        to_avatar: (52, S) ARKit channels -> the avatar's blendshape weights.

    Returns:
        The :class:`PortraitFit`.
    """
    from scipy.interpolate import RBFInterpolator
    from scipy.optimize import least_squares

    avatar = mesh.avatar
    faces = avatar.faces
    target = reading.points[:, :2]
    span = reading.eye_span
    base = corr.points(avatar.vertices, faces)  # (478, 3) surface points at rest
    deltas = np.einsum("ks,slc->klc", to_avatar, corr.points(avatar.blendshape_deltas, faces))  # (K, 478, 3)
    guess = mediapipe_channels(reading.blendshapes).astype(np.float64)
    fitted = np.array([ARKIT_CHANNELS.index(c) for c in FIT_CHANNELS])
    weight = np.sqrt(_landmark_weights(corr))[:, None]

    def points(channels):
        return base + np.tensordot(channels, deltas, axes=1)

    camera = camera_from_3d(points(guess), reading.points)

    def unpack(x):
        # the camera as a turn (axis-angle) of the first one's rotation, a log-scale and a shift:
        # well-conditioned near the first camera, whose rotation is near 180 degrees about x
        channels = guess.copy()
        channels[fitted] = x[6:]
        turn = axis_angle_to_matrix(x[:3])[0]
        return Camera(camera.scale * float(np.exp(x[3])), turn @ camera.rotation, camera.translation + x[4:6]), channels

    def residuals(x):
        cam, channels = unpack(x)
        image, _ = cam.project(points(channels))
        return np.concatenate([((image - target) * weight / span).ravel(), PRIOR * (x[6:] - guess[fitted])])

    def jacobian(x):
        # the camera's six columns by central differences, the channels' exactly (projection is linear)
        cam, _ = unpack(x)
        columns = []
        for i in range(6):
            step = np.zeros_like(x)
            step[i] = 1e-6
            columns.append((residuals(x + step) - residuals(x - step)) / 2e-6)
        image_deltas = cam.scale * deltas[fitted] @ cam.rotation[:2].T  # (k, 478, 2)
        land = (image_deltas * weight / span).reshape(len(fitted), -1).T
        prior = PRIOR * np.eye(len(fitted))
        return np.hstack([np.column_stack(columns), np.vstack([land, prior])])

    x0 = np.concatenate([np.zeros(6), guess[fitted]])
    lo = np.concatenate([np.full(6, -np.inf), np.zeros(len(fitted))])
    hi = np.concatenate([np.full(6, np.inf), np.ones(len(fitted))])
    solution = least_squares(residuals, np.clip(x0, lo + 1e-9, hi - 1e-9), jac=jacobian, bounds=(lo, hi),
                             method="trf", tr_solver="lsmr", x_scale="jac", max_nfev=100)
    camera, channels = unpack(solution.x)
    image, _ = camera.project(points(channels))
    offset = target - image  # (478, 2) what the mean shape misses
    rest_weights = channels.astype(np.float32) @ to_avatar
    rest_points, _ = camera.project(mesh.posed(rest_weights))
    spline = RBFInterpolator(image / span, offset, kernel="thin_plate_spline", smoothing=SMOOTHING,
                             degree=1)
    correction = spline(rest_points / span)
    return PortraitFit(camera, channels.astype(np.float32), correction, np.linalg.norm(offset, axis=1), reading)
