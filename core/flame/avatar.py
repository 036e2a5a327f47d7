"""The default avatar: the FLAME mean head with ICT FaceKit's ARKit-named expression shape keys.

Built by ``python -m emoflame.flame_assets.build_default_avatar --data ../shared/data`` into
``flame_assets/default_avatar.npz`` (no pickled objects); see ``flame_assets/AVATAR_CARD.md``.
FLAME: Li et al., "Learning a model of facial shape and expression from 4D scans" (SIGGRAPH
Asia 2017), CC BY 4.0. ICT FaceKit: Li et al., "Learning Formation of Physically-Based Face
Attributes" (CVPR 2020), MIT.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ModelFileError, RigError

FORMAT_VERSION = 2
ASSET = Path(__file__).resolve().parents[2] / "flame_assets" / "default_avatar.npz"
REBUILD = "python -m emoflame.flame_assets.build_default_avatar --data ../shared/data"


INTERIOR_PARTS = ("gums", "tongue", "teeth", "throat")
"""What each value of :attr:`MouthInterior.parts` names."""

TEXTURES = ("skin", "eyes", "teeth", "mouth")
"""The avatar's textures: the skin (lips, brows), the eyeballs, and the 1-D palettes of the
teeth and of the mouth's lining, gums and tongue."""


@dataclass(frozen=True)
class MouthInterior:
    """Teeth, gums and tongue that sit inside the avatar's mouth (from ICT FaceKit).

    Attributes:
        vertices: (N, 3) float32 metres, in the avatar's frame.
        faces: (F, 3) int32 triangles.
        blendshape_deltas: (S, N, 3) float32 metres, same names and order as the avatar's.
        vertex_colors: (N, 3) float32 in [0, 1] (teeth, gums and tongue).
        parts: (N,) int8 index into :data:`INTERIOR_PARTS`.
        uv: (N, 2) float32 texture coordinates into the 'teeth' palette (teeth) or the
            'mouth' palette (the rest).
    """

    vertices: np.ndarray
    faces: np.ndarray
    blendshape_deltas: np.ndarray
    vertex_colors: np.ndarray
    parts: np.ndarray
    uv: np.ndarray

    def vertices_for(self, weights: np.ndarray) -> np.ndarray:
        """Interior positions for weights (S,) or (T, S) -> (N, 3) or (T, N, 3) metres."""
        return self.vertices + np.tensordot(np.asarray(weights, np.float32), self.blendshape_deltas, axes=1)


@dataclass(frozen=True)
class Avatar:
    """A FLAME-topology head with named expression blendshapes.

    Attributes:
        vertices: (5023, 3) float32 metres, the FLAME mean head (y up, +z forward, +x the
            subject's left).
        faces: (9976, 3) int32 triangles.
        blendshape_names: (S,) ICT FaceKit / ARKit names ('jawOpen', 'mouthSmile_L', ...).
        blendshape_deltas: (S, 5023, 3) float32 metres, the displacement at weight 1.
        landmark_faces: (68,) int64 triangle index per 68-point landmark.
        landmark_bary: (68, 3) float32 barycentric coordinates of each landmark.
        joint_regressor: (5, 5023) float32, one row per joint of ``core.flame.JOINT_NAMES``.
        masks: bool (5023,) per part: 'skin', 'eyeball_L', 'eyeball_R', 'face' (where
            expressions act), 'lips', 'lip_upper', 'lip_lower', 'mouth_inner' (the mouth's
            inner surfaces, drawn in the mouth's colours).
        vertex_colors: (5023, 3) float32 in [0, 1]: for renderers that colour by vertex, the
            textures' best linear fit over the triangles (coarse: they are 3-7 mm across).
        interior: the :class:`MouthInterior`.
        face_uv: (9976, 3, 2) float32 texture coordinates per triangle corner: the skin's into
            the 'skin' texture, the eyeballs' into 'eyes', the mouth's inner surfaces' into
            the 'mouth' palette.
        textures: name (:data:`TEXTURES`) -> (H, W, 3) uint8 sRGB, row 0 at v = 0.
        lip_contour_faces: (K,) int32 and lip_contour_bary: (K, 3) float32: the painted outer
            lip contour (the vermilion border) embedded on the mesh, in order around the lips.
    """

    vertices: np.ndarray
    faces: np.ndarray
    blendshape_names: tuple[str, ...]
    blendshape_deltas: np.ndarray
    landmark_faces: np.ndarray
    landmark_bary: np.ndarray
    joint_regressor: np.ndarray
    masks: dict[str, np.ndarray]
    vertex_colors: np.ndarray
    interior: MouthInterior
    face_uv: np.ndarray
    textures: dict[str, np.ndarray]
    lip_contour_faces: np.ndarray
    lip_contour_bary: np.ndarray

    @property
    def num_vertices(self) -> int:
        """Number of vertices (5023 on the FLAME topology)."""
        return len(self.vertices)

    def weight_vector(self, weights) -> np.ndarray:
        """Weights as a float32 array (S,) or (T, S) in the order of ``blendshape_names``.

        Args:
            weights: (S,) or (T, S) array-like, or {name: weight} (missing names are 0).

        Raises:
            RigError: (a ValueError) on a wrong length, an unknown name (the message lists valid
                names), or a weight that is not a finite number.
        """
        if isinstance(weights, dict):
            unknown = sorted(set(weights) - set(self.blendshape_names), key=str)
            if unknown:
                raise RigError(
                    f"unknown blendshape name(s) {unknown}; the avatar has: {', '.join(self.blendshape_names)}"
                )
            out = np.zeros(len(self.blendshape_names), np.float32)
            for name, w in weights.items():
                try:
                    out[self.blendshape_names.index(name)] = w
                except (TypeError, ValueError):
                    out[self.blendshape_names.index(name)] = np.nan  # named below
        else:
            try:
                out = np.asarray(weights, np.float32)
            except (TypeError, ValueError):
                raise RigError("the blendshape weights are not numbers; give an (S,) or (T, S) array of "
                               "floats, or a {name: weight} dict") from None
        if out.ndim not in (1, 2) or out.shape[-1] != len(self.blendshape_names):
            raise RigError(
                f"weights have shape {out.shape}; expected (S,) or (T, S) with S = {len(self.blendshape_names)} "
                "in the order of avatar.blendshape_names (or pass a {name: weight} dict)"
            )
        bad = ~np.isfinite(out)
        if bad.any():
            name = self.blendshape_names[int(np.argwhere(bad)[0][-1])]
            raise RigError(f"the weight of {name!r} is not a finite number; give finite blendshape weights")
        return out

    def vertices_for(self, weights) -> np.ndarray:
        """Posed vertices for blendshape weights (linear blendshapes on the mean head).

        Args:
            weights: (S,), (T, S) or {name: weight}; see :meth:`weight_vector`.

        Returns:
            (5023, 3) or (T, 5023, 3) float32 metres.
        """
        w = self.weight_vector(weights)
        return self.vertices + np.tensordot(w, self.blendshape_deltas, axes=1)

    def landmarks(self, vertices: np.ndarray) -> np.ndarray:
        """68 facial landmarks through the barycentric embedding: (..., 5023, 3) -> (..., 68, 3)."""
        corners = np.asarray(vertices)[..., self.faces[self.landmark_faces], :]  # (..., 68, 3, 3)
        return np.einsum("...lkc,lk->...lc", corners, self.landmark_bary)

    def lip_contour(self, vertices: np.ndarray) -> np.ndarray:
        """The painted outer lip contour on posed vertices: (..., 5023, 3) -> (..., K, 3)."""
        corners = np.asarray(vertices)[..., self.faces[self.lip_contour_faces], :]  # (..., K, 3, 3)
        return np.einsum("...lkc,lk->...lc", corners, self.lip_contour_bary)


def load_avatar(path: str | Path) -> Avatar:
    """Load an avatar .npz written by ``build_default_avatar`` (never unpickles).

    Raises:
        ModelFileError: if the file is missing, unreadable, of another format version, or
            lacks arrays; the message says how to rebuild it.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"default avatar file not found: {path}; rebuild it with: {REBUILD}")
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read avatar file {path} ({exc}); rebuild it with: {REBUILD}") from None
    if int(a.get("format_version", -1)) != FORMAT_VERSION:
        raise ModelFileError(f"{path} is not a version {FORMAT_VERSION} avatar file; rebuild it with: {REBUILD}")
    try:
        return Avatar(
            vertices=a["vertices"],
            faces=a["faces"],
            blendshape_names=tuple(str(n) for n in a["blendshape_names"]),
            blendshape_deltas=a["blendshape_deltas"],
            landmark_faces=a["landmark_faces"].astype(np.int64),
            landmark_bary=a["landmark_bary"],
            joint_regressor=a["joint_regressor"],
            masks={k[5:]: a[k] for k in a if k.startswith("mask_")},
            vertex_colors=a["vertex_colors"],
            interior=MouthInterior(
                a["interior_vertices"], a["interior_faces"], a["interior_deltas"], a["interior_colors"],
                a["interior_parts"], a["interior_uv"],
            ),
            face_uv=a["face_uv"],
            textures={name: a[f"texture_{name}"] for name in TEXTURES},
            lip_contour_faces=a["lip_contour_faces"],
            lip_contour_bary=a["lip_contour_bary"],
        )
    except KeyError as exc:
        raise ModelFileError(f"avatar file {path} lacks the array {exc}; rebuild it with: {REBUILD}") from None


@lru_cache(maxsize=1)
def default_avatar() -> Avatar:
    """The default avatar every emoflame output lands on (cached; loads ``flame_assets/default_avatar.npz``).

    Raises:
        ModelFileError: if the asset is missing or malformed, naming the file and the rebuild command.
    """
    return load_avatar(ASSET)
