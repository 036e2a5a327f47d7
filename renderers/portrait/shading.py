"""Colours of the avatar's surfaces at rasterised pixels: textures, vertex colours, a key light.

What the portrait animator paints from the avatar itself (the mouth interior, the mouth's inner
surfaces) and what ``build_correspondence`` renders for MediaPipe to read. Lambert shading
with one light from above the camera and an ambient term: enough for teeth, gums and tongue,
which the photo's colours then correct (:mod:`.mouth`).
"""

from __future__ import annotations

import numpy as np

LIGHT = np.array([0.3, -0.6, -1.0]) / np.linalg.norm([0.3, -0.6, -1.0])
"""Towards the light in the camera frame (x right, y down, z away): above, a little to the right."""
AMBIENT = 0.35
DIFFUSE = 0.75
_ROW = 1024  # cv2.remap maps are at most 32767 rows: sample long point lists as rows of this length


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals: (V, 3) positions, (F, 3) faces -> (V, 3)."""
    v = np.asarray(vertices, np.float64)
    n = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])  # (F, 3), |n| = 2 area
    out = np.zeros_like(v)
    for k in range(3):
        np.add.at(out, faces[:, k], n)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def lambert(normals: np.ndarray) -> np.ndarray:
    """(n, 3) unit normals in the camera frame -> (n,) brightness factor (ambient + diffuse)."""
    n = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return AMBIENT + DIFFUSE * np.clip(n @ LIGHT, 0.0, 1.0)


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, 3) uint8 texture (row 0 at v = 0) at (n, 2) uv in [0, 1]
    -> (n, 3) float32 in [0, 1]."""
    import cv2

    n = len(uv)
    if n == 0:
        return np.zeros((0, 3), np.float32)
    rows = -(-n // _ROW)
    h, w = texture.shape[:2]
    maps = np.zeros((rows * _ROW, 2), np.float32)
    maps[:n] = np.asarray(uv, np.float32) * (w - 1, h - 1)
    maps = maps.reshape(rows, _ROW, 2)
    out = cv2.remap(texture, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 3)[:n].astype(np.float32) / 255.0


def paint(mesh, vertices: np.ndarray, rotation: np.ndarray, triangle: np.ndarray, bary: np.ndarray,
          normals: np.ndarray | None = None) -> np.ndarray:
    """The avatar's own colours at rasterised pixels, lit.

    Args:
        mesh: the :class:`~.mesh.AvatarMesh`.
        vertices: (N, 3) its posed stacked vertices, metres (FLAME frame).
        rotation: (3, 3) the camera's rotation (FLAME -> camera frame).
        triangle: (n,) stacked-face index per pixel; bary: (n, 3) barycentric coordinates.
        normals: (N, 3) vertex normals in the FLAME frame (computed from ``vertices`` when None).

    Returns:
        (n, 3) float32 linear-ish RGB in [0, 1]: skin, eyeball and mouth-lining triangles from
        the avatar's textures, teeth, gums and tongue from their vertex colours.
    """
    from .mesh import EYEBALL, INTERIOR, MOUTH_INNER, SKIN

    a = mesh.avatar
    kind = mesh.kind[triangle]
    colour = np.zeros((len(triangle), 3), np.float32)
    on_avatar = kind != INTERIOR
    idx = np.flatnonzero(on_avatar)
    uv = np.einsum("nk,nkc->nc", bary[idx], a.face_uv[triangle[idx]])
    for k, texture in ((SKIN, "skin"), (EYEBALL, "eyes"), (MOUTH_INNER, "mouth")):
        sel = kind[idx] == k
        colour[idx[sel]] = sample_texture(a.textures[texture], uv[sel])
    inner = np.flatnonzero(~on_avatar)
    colours = mesh.vertex_colors
    colour[inner] = np.einsum("nk,nkc->nc", bary[inner], colours[mesh.faces[triangle[inner]]])
    if normals is None:
        normals = vertex_normals(vertices, mesh.faces)
    n = np.einsum("nk,nkc->nc", bary, normals[mesh.faces[triangle]]) @ np.asarray(rotation).T
    return np.clip(colour * lambert(n)[:, None], 0.0, 1.0)
