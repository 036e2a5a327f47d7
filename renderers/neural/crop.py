"""Face crop and paste-back for the neural renderer.

LivePortrait works on a square crop around the face: the crop is turned so that the line from
the eyes' midpoint to the mouth's is vertical, its side is 2.3 times the landmarks' extent and its
centre sits 0.125 sides above theirs (upstream ``crop_config``: scale 2.3, vy_ratio −0.125), and
the crop is fed to the networks at 256² while the generator returns 512². Here the extent is
that of the iBUG-68 region (jaw line from ear to ear, brows, eyes, nose, mouth), taken from
MediaPipe's 478 landmarks for photos (:func:`face_region_points`) and from the avatar's own 68
landmarks for its renders, so both are framed alike. Paste-back warps the 512² output into the
photo through the inverse similarity and blends it with a feathered square mask (the stitching
MLP keeps the crop's border where the photo has it).

:func:`detect_face_landmarks` is the one place that finds the face; the renderer takes any
callable with its signature, so the portrait animator's detector can replace it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.errors import EmoflameError, ModelFileError

CROP_SCALE = 2.3
CROP_SHIFT_UP = 0.125
MIN_FACE_PX = 30          # eye-to-mouth span (px) below which a face is too small: the 256² crop would be mostly upsampling
MIN_EYE_WIDTH_RATIO = 0.45  # narrower/wider eye width below this: a profile view
FEATHER = 0.08            # fraction of the crop side over which the paste-back mask fades out

_REPO = Path(__file__).resolve().parents[2]
LANDMARKER_ENV = "EMOFLAME_FACE_LANDMARKER"
LANDMARKER_PLACES = (_REPO / "flame_assets" / "face_landmarker.task",
                     _REPO.parent / "shared" / "data" / "models" / "face_landmarker.task")


class PortraitError(EmoflameError, ValueError):
    """A photo that cannot be animated: no face, several faces, a tiny face or a profile view."""


@dataclass(frozen=True)
class Crop:
    """A similarity from photo pixels to a square crop.

    Attributes:
        matrix: (2, 3) float64 affine, photo (x, y) pixels -> crop pixels.
        size: side of the crop in pixels.
    """

    matrix: np.ndarray
    size: int

    def resized(self, size: int) -> "Crop":
        """The same region at another side length."""
        return Crop(self.matrix * (size / self.size), size)

    def inverse(self) -> np.ndarray:
        """(2, 3) affine, crop pixels -> photo pixels."""
        a = np.vstack([self.matrix, [0.0, 0.0, 1.0]])
        return np.linalg.inv(a)[:2]

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Photo points (N, 2) -> crop points (N, 2)."""
        return np.asarray(points, np.float64)[:, :2] @ self.matrix[:, :2].T + self.matrix[:, 2]


def crop_for(region: np.ndarray, eyes: np.ndarray, mouth: np.ndarray, size: int = 512,
             scale: float = CROP_SCALE, shift_up: float = CROP_SHIFT_UP) -> Crop:
    """LivePortrait's face crop from landmarks (image pixels, y down).

    Args:
        region: (N, 2) points whose extent is the face (iBUG-68-like).
        eyes: (M, 2) eye points; mouth: (L, 2) mouth points; their means set the vertical axis.
        size: crop side in pixels.

    Returns:
        A :class:`Crop` whose square is ``scale`` × the region's larger extent along the face's
        axes, centred on the region's centre moved up by ``shift_up`` × the side.
    """
    down = np.mean(mouth, axis=0) - np.mean(eyes, axis=0)
    down = down / max(np.linalg.norm(down), 1e-9)
    right = np.array([down[1], -down[0]])  # down turned a quarter towards the image's right
    axes = np.stack([right, down])  # rows: the crop's x and y directions in the photo
    local = np.asarray(region, np.float64)[:, :2] @ axes.T
    lo, hi = local.min(axis=0), local.max(axis=0)
    side = float((hi - lo).max()) * scale
    centre = ((lo + hi) / 2) @ axes - shift_up * side * down
    a = axes * (size / side)  # photo -> crop, rotation and scale
    return Crop(np.hstack([a, (size / 2 - a @ centre)[:, None]]), size)


# MediaPipe Face Landmarker indices: the face oval from ear to ear through the chin (its points at
# and below the eyes), brows, eyes, nose and mouth: the part of the face iBUG's 68 points cover.
_MP_OVAL = (10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172, 176, 234, 251,
            284, 288, 297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389, 397, 400, 454)
_MP_BROWS = (46, 52, 53, 63, 65, 66, 70, 105, 276, 282, 283, 293, 295, 296, 300, 334)
_MP_EYES = (33, 133, 159, 145, 362, 263, 386, 374)
_MP_MOUTH = (61, 291, 0, 17, 13, 14)
_MP_NOSE = (1, 4, 5, 195, 197, 168)
# iBUG 68: eyes 36–47, mouth 48–67.
IBUG_EYES = tuple(range(36, 48))
IBUG_MOUTH = tuple(range(48, 68))


def face_region_points(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe landmarks (478, 2+) -> (N, 2) the iBUG-68-like region: oval points no higher than
    the eyes' line, plus brows, eyes, nose and mouth."""
    p = np.asarray(landmarks, np.float64)[:, :2]
    eyes, mouth = p[list(_MP_EYES)], p[list(_MP_MOUTH[:2])]
    down = mouth.mean(0) - eyes.mean(0)
    down /= max(np.linalg.norm(down), 1e-9)
    eye_level = float(eyes.mean(0) @ down)
    oval = p[list(_MP_OVAL)]
    lower = oval[oval @ down >= eye_level]
    return np.vstack([lower, p[list(_MP_BROWS + _MP_EYES + _MP_NOSE + _MP_MOUTH)]])


def crop_for_mediapipe(landmarks: np.ndarray, size: int = 512) -> Crop:
    """:func:`crop_for` on MediaPipe's 478 landmarks (photo pixels)."""
    p = np.asarray(landmarks, np.float64)[:, :2]
    return crop_for(face_region_points(p), p[list(_MP_EYES)], p[[61, 291]], size)


def crop_for_68(landmarks: np.ndarray, size: int = 512) -> Crop:
    """:func:`crop_for` on iBUG-68 landmarks (image pixels): all 68 are the region."""
    p = np.asarray(landmarks, np.float64)[:, :2]
    return crop_for(p, p[list(IBUG_EYES)], p[[48, 54]], size)


def warp_to_crop(image: np.ndarray, crop: Crop) -> np.ndarray:
    """(H, W, 3) uint8 photo -> (size, size, 3) uint8 crop (bilinear; outside the photo: edge pixels)."""
    import cv2

    return cv2.warpAffine(image, crop.matrix, (crop.size, crop.size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def feather_mask(size: int, feather: float = FEATHER) -> np.ndarray:
    """(size, size) float32 in [0, 1]: 1 inside, a cosine fade to 0 over ``feather`` × size at the edges."""
    ramp = max(int(round(size * feather)), 1)
    d = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    edge = 0.5 - 0.5 * np.cos(np.pi * np.clip(d / ramp, 0.0, 1.0))
    return np.minimum(edge[:, None], edge[None, :])


class PasteBack:
    """Blends generated crops back into the photo they came from (one photo, many frames)."""

    def __init__(self, photo: np.ndarray, crop: Crop):
        import cv2

        self.photo = photo
        self.crop = crop
        self.back = crop.inverse()
        h, w = photo.shape[:2]
        mask = cv2.warpAffine(feather_mask(crop.size), self.back, (w, h), flags=cv2.INTER_LINEAR)
        self.mask = mask[..., None]
        self.base = photo.astype(np.float32) * (1.0 - self.mask)

    def __call__(self, generated: np.ndarray) -> np.ndarray:
        """(size', size', 3) uint8 crop (any side; resized to the crop's) -> (H, W, 3) uint8 photo frame."""
        import cv2

        if generated.shape[0] != self.crop.size:
            back = Crop(self.crop.matrix * (generated.shape[0] / self.crop.size), generated.shape[0]).inverse()
        else:
            back = self.back
        h, w = self.photo.shape[:2]
        face = cv2.warpAffine(generated, back, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.clip(self.base + face.astype(np.float32) * self.mask + 0.5, 0, 255).astype(np.uint8)


def landmarker_path(path: str | os.PathLike | None = None) -> Path:
    """The MediaPipe Face Landmarker model: ``path``, ``$EMOFLAME_FACE_LANDMARKER``, or the first of
    ``LANDMARKER_PLACES`` that exists.

    Raises:
        ModelFileError: none of them exists.
    """
    for candidate in (path, os.environ.get(LANDMARKER_ENV) or None, *LANDMARKER_PLACES):
        if candidate is not None and Path(candidate).is_file():
            return Path(candidate)
    where = ", ".join(str(p) for p in LANDMARKER_PLACES)
    raise ModelFileError(f"MediaPipe's face_landmarker.task (Apache-2.0) was not found at {path or where}; "
                         f"put it there or set {LANDMARKER_ENV}=/path/to/face_landmarker.task")


def detect_face_landmarks(photo: np.ndarray, model_path: str | os.PathLike | None = None) -> np.ndarray:
    """The one face's 478 MediaPipe landmarks in a photo, (478, 2) float64 pixels (x right, y down).

    Args:
        photo: (H, W, 3) uint8 RGB.
        model_path: the Face Landmarker ``.task`` file (see :func:`landmarker_path`).

    Raises:
        PortraitError: no face, more than one face, a face whose eyes-to-mouth span is under
            ``MIN_FACE_PX`` pixels, or a profile view.
        ModelFileError: no landmarker model.
    """
    import mediapipe as mp

    photo = np.ascontiguousarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise PortraitError(f"the photo must be an (H, W, 3) uint8 RGB image, got {photo.shape} {photo.dtype}")
    options = mp.tasks.vision.FaceLandmarkerOptions(
        base_options=mp.tasks.BaseOptions(model_asset_path=str(landmarker_path(model_path))),
        running_mode=mp.tasks.vision.RunningMode.IMAGE, num_faces=2)
    with mp.tasks.vision.FaceLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=photo))
    faces = result.face_landmarks
    if not faces:
        raise PortraitError("no face found in the photo; use a photo with one face seen from the front")
    if len(faces) > 1:
        raise PortraitError(f"{len(faces)} faces found in the photo; crop it to the one face to animate")
    h, w = photo.shape[:2]
    points = np.array([(p.x * w, p.y * h) for p in faces[0]], np.float64)
    span = np.linalg.norm(points[[61, 291]].mean(0) - points[list(_MP_EYES)].mean(0))
    if span < MIN_FACE_PX:
        raise PortraitError(f"the face is too small ({span:.0f} px from eyes to mouth, at least {MIN_FACE_PX} "
                            "needed); use a larger or closer photo")
    widths = np.linalg.norm(points[133] - points[33]), np.linalg.norm(points[263] - points[362])
    if min(widths) < MIN_EYE_WIDTH_RATIO * max(widths):
        raise PortraitError("the face is seen from the side; use a photo of the face from the front")
    return points
