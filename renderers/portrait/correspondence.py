"""MediaPipe's 478 face landmarks as surface points of the FLAME mesh (``mediapipe_flame.npz``).

Made by :mod:`.build_correspondence` (renders of the default avatar read by MediaPipe, each
landmark carried back onto the triangle under it). A surface point is a triangle of FLAME's
9976 and barycentric coordinates in it, so it follows the mesh through every expression and
holds for any head on the FLAME topology.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...core.errors import ModelFileError

log = logging.getLogger(__name__)

OUT = Path(__file__).resolve().with_name("mediapipe_flame.npz")
REBUILD = "python -m emoflame.renderers.portrait.build_correspondence"


@dataclass(frozen=True)
class Correspondence:
    """Where MediaPipe's landmarks sit on the FLAME mesh.

    Attributes:
        triangle: (478,) int32 index into the avatar's faces.
        bary: (478, 3) float32 barycentric coordinates in that triangle.
        spread_mm: (478,) how far the views that built it disagreed, mm (a landmark's reliability).
    """

    triangle: np.ndarray
    bary: np.ndarray
    spread_mm: np.ndarray

    def points(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """The landmarks on posed avatar vertices (..., 5023, 3) -> (..., 478, 3)."""
        corners = np.asarray(vertices)[..., faces[self.triangle], :]  # (..., 478, 3, 3)
        return np.einsum("...lkc,lk->...lc", corners, self.bary)


def avatar_digest(avatar) -> str:
    """SHA-256 of the avatar's rest skin and faces: what the correspondence was built on."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(avatar.vertices, np.float32).tobytes())
    h.update(np.ascontiguousarray(avatar.faces, np.int32).tobytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def _load(path: Path) -> tuple[Correspondence, str]:
    if not path.is_file():
        raise ModelFileError(f"the MediaPipe-to-FLAME correspondence {path} is missing; rebuild it with: {REBUILD}")
    try:
        with np.load(path, allow_pickle=False) as z:
            c = Correspondence(z["triangle"].astype(np.int64), z["bary"], z["spread_mm"])
            digest = str(z["avatar_sha256"])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"cannot read {path} ({exc}); rebuild it with: {REBUILD}") from None
    if c.triangle.shape != (478,) or c.bary.shape != (478, 3):
        raise ModelFileError(f"{path} holds {c.triangle.shape[0]} landmarks, not 478; rebuild it with: {REBUILD}")
    return c, digest


def correspondence(avatar, path: Path = OUT) -> Correspondence:
    """The correspondence for ``avatar`` (a FLAME-topology avatar).

    A correspondence built on another rest shape still names surface points of the same
    topology; it is used with a warning that says how to rebuild it.

    Raises:
        ModelFileError: the file is missing or malformed, or the avatar is not on the FLAME topology.
    """
    c, digest = _load(Path(path))
    if c.triangle.max() >= len(avatar.faces):
        raise ModelFileError(f"the avatar has {len(avatar.faces)} triangles; the MediaPipe correspondence needs "
                             "FLAME's topology (9976)")
    if digest != avatar_digest(avatar):
        log.warning("the MediaPipe-to-FLAME correspondence was built on another avatar shape; rebuild it with: %s",
                    REBUILD)
    return c
