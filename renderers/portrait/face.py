"""The face in a photo: MediaPipe Face Landmarker's 478 landmarks, 52 blendshape scores and head pose.

MediaPipe Face Landmarker (Apache-2.0; ``face_landmarker.task`` ships beside this file, see
NOTICE-mediapipe.txt): Kartynnik et al., "Real-time Facial Surface Geometry from Monocular
Video on Mobile GPUs" (2019) for the mesh, Grishchenko et al., "Attention Mesh" (2020) for the
lips, eyes and irises refinement, and the blendshape model of the MediaPipe release.

:func:`detect_face` is the front door's check of a portrait: exactly one face, large enough and
turned towards the camera, each refusal a :class:`PortraitError` naming the fix.
:class:`FaceReader` keeps one landmarker open for many frames (the benchmark reads videos back).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
import logging
from pathlib import Path

import numpy as np

from ...core.errors import PortraitError
from ...core.outputs import native_stderr_held

log = logging.getLogger(__name__)
MODEL = Path(__file__).resolve().with_name("face_landmarker.task")

MIN_EYE_SPAN_PX = 40.0
"""Least distance between the eyes' outer corners (landmarks 33 and 263), pixels. Measured on the
default portrait scaled down (``benchmarks/bench_portrait.py --scales``): at 115, 79, 63, 51 and
40 px the rendered lips still follow the clip (Pearson r 0.90, 0.87, 0.87, 0.87, 0.86 as
MediaPipe reads them back) and shut on the P of arctic_a0007 (gap 0.003-0.009 eye spans), while
at 33 px MediaPipe's own landmarks, and so the fit, turn coarse (its face crop is 256² from a
face a few dozen pixels wide). Below it the message asks for a larger or closer photo."""
MAX_YAW_DEGREES = 35.0
"""Beyond this the far side of the face is hidden and cannot be warped from the photo."""

OUTER_EYE_CORNERS = (33, 263)
INNER_LIP_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LIP_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
"""The inner-lip contour from corner to corner, upper and lower (MediaPipe's mesh indices)."""
EYE_UPPER = {"L": (362, 398, 384, 385, 386, 387, 388, 466, 263), "R": (33, 246, 161, 160, 159, 158, 157, 173, 133)}
EYE_LOWER = {"L": (362, 382, 381, 380, 374, 373, 390, 249, 263), "R": (33, 7, 163, 144, 145, 153, 154, 155, 133)}
"""Lid margins per eye; L is the subject's left (on the right of a photo of a face)."""


def inner_lip_gap(points: np.ndarray) -> np.ndarray:
    """Mean distance between the upper and lower inner lip (points 2-8 of each contour): MediaPipe
    landmarks (..., 478, D) in any unit (pixels read off a photo, metres on the avatar) -> (...)."""
    points = np.asarray(points)
    up, down = points[..., list(INNER_LIP_UPPER[2:-2]), :], points[..., list(INNER_LIP_LOWER[2:-2]), :]
    return np.linalg.norm(up - down, axis=-1).mean(axis=-1)


@dataclass(frozen=True)
class FaceReading:
    """What MediaPipe reads of one face.

    Attributes:
        points: (478, 3) float64: x, y in image pixels (y down) and MediaPipe's relative depth z
            in the same pixel scale (smaller is nearer the camera).
        blendshapes: ARKit-named scores in [0, 1] (``eyeBlinkLeft``...; MediaPipe's names).
        pose: (4, 4) MediaPipe's facial transformation matrix (canonical face -> camera, cm).
        size: (height, width) of the image, pixels.
    """

    points: np.ndarray
    blendshapes: dict[str, float]
    pose: np.ndarray
    size: tuple[int, int]

    @property
    def eye_span(self) -> float:
        """Distance between the eyes' outer corners, pixels."""
        a, b = OUTER_EYE_CORNERS
        return float(np.linalg.norm(self.points[a, :2] - self.points[b, :2]))

    @property
    def yaw_degrees(self) -> float:
        """How far the face is turned left or right of the camera, degrees (0 = frontal)."""
        r = self.pose[:3, :3]
        return math.degrees(math.atan2(r[0, 2], r[2, 2]))

    def inner_lip_gap(self) -> float:
        """Mean distance between the upper and lower inner lip (points 2-8 of each contour), pixels."""
        return float(inner_lip_gap(self.points[:, :2]))

    def eye_opening(self, side: str) -> float:
        """Mean lid-to-lid distance of one eye ('L' or 'R'), divided by that eye's width."""
        up = self.points[list(EYE_UPPER[side][2:-2]), :2]
        down = self.points[list(EYE_LOWER[side][2:-2]), :2]
        corners = self.points[[EYE_UPPER[side][0], EYE_UPPER[side][-1]], :2]
        return float(np.linalg.norm(up - down, axis=1).mean() / np.linalg.norm(corners[0] - corners[1]))


def model_path() -> Path:
    """The shipped ``face_landmarker.task``.

    Raises:
        PortraitError: it is missing (a broken install).
    """
    if not MODEL.is_file():
        raise PortraitError(f"MediaPipe's face model is missing at {MODEL}; reinstall emoflame")
    return MODEL


class FaceReader:
    """One MediaPipe Face Landmarker kept open (IMAGE mode, up to two faces so that a second is seen).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, num_faces: int = 2):
        import mediapipe as mp

        options = mp.tasks.vision.FaceLandmarkerOptions(
            base_options=mp.tasks.BaseOptions(model_asset_path=str(model_path())),
            running_mode=mp.tasks.vision.RunningMode.IMAGE, num_faces=num_faces,
            output_face_blendshapes=True, output_facial_transformation_matrixes=True)
        self._mp = mp
        # MediaPipe's C++ logging prints its start-up chatter to file descriptor 2 before it can
        # be configured: held, and logged at debug level, so the command's stderr keeps one line
        # per problem.
        with native_stderr_held() as held:
            self._landmarker = mp.tasks.vision.FaceLandmarker.create_from_options(options)
        if held.text.strip():
            log.debug("mediapipe: %s", held.text.strip())

    def __enter__(self) -> "FaceReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._landmarker.close()

    def read(self, image: np.ndarray) -> list[FaceReading]:
        """Every face found in ``image`` ((H, W, 3) uint8 RGB), nearest the detector's order."""
        image = np.ascontiguousarray(image)
        result = self._landmarker.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=image))
        h, w = image.shape[:2]
        faces = []
        for i, marks in enumerate(result.face_landmarks):
            points = np.array([(p.x * w, p.y * h, p.z * w) for p in marks], np.float64)
            scores = {c.category_name: float(c.score) for c in result.face_blendshapes[i]}
            faces.append(FaceReading(points, scores, np.asarray(result.facial_transformation_matrixes[i]), (h, w)))
        return faces


def check_photo(photo) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB: a path (PNG, JPEG, anything Pillow reads) or an array
    ((H, W, 3) or (H, W, 4) uint8; alpha is dropped).

    Raises:
        PortraitError: unreadable file or an array of another shape or type.
        FileNotFoundError: no file at the path.
    """
    if isinstance(photo, (str, os.PathLike)):
        from PIL import Image, UnidentifiedImageError

        path = Path(photo)
        if not path.is_file():
            raise FileNotFoundError(f"no photo at {path}")
        try:
            with Image.open(path) as im:
                from PIL import ImageOps

                photo = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise PortraitError(f"{path} is not an image Pillow can read ({exc}); give a PNG or JPEG photo") from None
    photo = np.asarray(photo)
    if photo.ndim == 3 and photo.shape[2] == 4:
        photo = photo[..., :3]
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise PortraitError(f"the photo must be an (H, W, 3) uint8 RGB image, got shape {photo.shape} of {photo.dtype}")
    if min(photo.shape[:2]) < 32:
        raise PortraitError(f"the photo is {photo.shape[1]}x{photo.shape[0]} pixels; give a photo of a face, "
                            f"at least {2 * MIN_EYE_SPAN_PX:.0f} pixels across the face")
    return np.ascontiguousarray(photo)


def detect_face(photo: np.ndarray, reader: FaceReader | None = None) -> FaceReading:
    """The one face of a portrait, checked.

    Args:
        photo: (H, W, 3) uint8 RGB.
        reader: an open :class:`FaceReader` (one is opened and closed when None).

    Returns:
        The :class:`FaceReading` of the face.

    Raises:
        PortraitError: no face; more than one face; eyes' outer corners less than
            :data:`MIN_EYE_SPAN_PX` apart; the face turned more than :data:`MAX_YAW_DEGREES`.
    """
    if reader is None:
        with FaceReader() as own:
            return detect_face(photo, own)
    faces = reader.read(photo)
    if not faces:
        raise PortraitError("no face found in the photo; give a photo with one face seen from the front, "
                            "well lit and not covered")
    if len(faces) > 1:
        raise PortraitError(f"{len(faces)} faces found in the photo; crop it to the one face to animate")
    face = faces[0]
    if abs(face.yaw_degrees) > MAX_YAW_DEGREES:
        raise PortraitError(f"the face is turned {abs(face.yaw_degrees):.0f} degrees from the camera (a profile "
                            f"view; at most {MAX_YAW_DEGREES:.0f}); give a photo of the face from the front")
    if face.eye_span < MIN_EYE_SPAN_PX:
        scale = MIN_EYE_SPAN_PX / max(face.eye_span, 1.0)
        raise PortraitError(f"the face is too small: {face.eye_span:.0f} pixels between the eyes' outer corners, "
                            f"at least {MIN_EYE_SPAN_PX:.0f} needed; give a photo {scale:.1f}x larger or "
                            "cropped closer to the face")
    return face
