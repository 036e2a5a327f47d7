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

:func:`detect_face_landmarks` finds the face through the portrait animator's detector (one
detector, one set of checks, the shipped model); the renderer takes any callable with its
signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROP_SCALE = 2.3
CROP_SHIFT_UP = 0.125
FEATHER = 0.08            # fraction of the crop side over which the paste-back mask fades out


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


def detect_face_landmarks(photo: np.ndarray) -> np.ndarray:
    """The one face's 478 MediaPipe landmarks in a photo, (478, 2) float64 pixels (x right, y down),
    with the portrait animator's checks (``renderers.portrait.face.detect_face``: one face, big
    enough, not a profile) and its shipped Face Landmarker model.

    Raises:
        PortraitError: no face, more than one face, a tiny face or a profile view.
    """
    from ..portrait.face import detect_face

    return np.asarray(detect_face(photo).points[:, :2], np.float64)
