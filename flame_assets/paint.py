"""The default avatar's surface paint: lips, brows, eyes and the mouth's colours as textures.

Build-time code (``build_default_avatar``). FLAME's triangles are 3 mm across at the lips and
7 mm at the brows, so colours stored per vertex smear into spikes wherever a border crosses a
triangle. Instead the skin gets texture coordinates from a cylinder around the head's vertical
axis (near-isometric on the face, no overlap between the face and the back of the head) and the
lips and brows are painted into a texture in those coordinates, with soft borders of a chosen
width whatever the triangle size; the paint follows the skin as the shape keys move it. The
eyeballs are mapped by the direction from their centre (iris and pupil in a small texture), and
the mouth's inside, teeth and tongue read their colour from 1-D palettes by depth, so that an
open mouth darkens towards the back even under Workbench's studio light.

Textures are (H, W, 3) uint8 sRGB with row 0 at v = 0 (Blender's pixel order).
Curves: centripetal Catmull-Rom splines through landmarks (Yuksel, Schaefer & Keyser,
"Parameterization and applications of Catmull-Rom curves", CAD 2011).
"""

from __future__ import annotations

import numpy as np
import trimesh
from matplotlib.path import Path as PolyPath
from scipy import sparse
from scipy.spatial import cKDTree

#: The skin's texture cylinder: axis along y through (x, z) = (0, CYLINDER_Z), unrolled at
#: CYLINDER_RADIUS (metres), so u is arc length at the lips' distance from the axis.
CYLINDER_Z, CYLINDER_RADIUS = -0.03, 0.08
#: What the skin texture covers, metres: u (arc, +x the subject's left) and v (= y, up).
SKIN_UV_RANGE = ((-0.08, 0.08), (-0.09, 0.07))
SKIN_TEXTURE_SIZE = 1024  # texels a side: 0.16 mm a texel
EYE_UV_RANGE = 1.25  # eyeball coordinates span [-1.25, 1.25]: the front hemisphere is the unit disc
EYE_TEXTURE_SIZE = 256
PALETTE_SIZE = 256


def closed_catmull_rom(points: np.ndarray, samples: int = 16) -> np.ndarray:
    """A closed centripetal Catmull-Rom spline through ``points`` (K, D): (K * samples, D).

    Centripetal parameterisation (alpha = 1/2) never overshoots into cusps or loops between
    unevenly spaced points such as the lip corners and the Cupid's bow.
    """
    return _catmull_rom(np.asarray(points, np.float64), samples, closed=True)


def open_catmull_rom(points: np.ndarray, samples: int = 16) -> np.ndarray:
    """An open centripetal Catmull-Rom spline from the first to the last of ``points`` (K, D):
    ((K - 1) * samples + 1, D); the end tangents mirror the neighbouring segment."""
    p = np.asarray(points, np.float64)
    padded = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    return np.concatenate([_catmull_rom(padded, samples, closed=False), p[-1:]])


def _catmull_rom(p: np.ndarray, samples: int, closed: bool) -> np.ndarray:
    k = len(p)
    out = []
    for i in range(k) if closed else range(1, k - 2):
        p0, p1, p2, p3 = p[(i - 1) % k], p[i], p[(i + 1) % k], p[(i + 2) % k]
        t1 = np.linalg.norm(p1 - p0) ** 0.5
        t2 = t1 + np.linalg.norm(p2 - p1) ** 0.5
        t3 = t2 + np.linalg.norm(p3 - p2) ** 0.5
        t = np.linspace(t1, t2, samples, endpoint=False)[:, None]
        a1 = (t1 - t) / t1 * p0 + t / t1 * p1
        a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
        a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
        b1 = (t2 - t) / t2 * a1 + t / t2 * a2
        b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
        out.append((t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2)
    return np.concatenate(out)


def lift_front(vertices: np.ndarray, faces: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Put 2-D front-view points on the surface: the front-most hit of a ray along -z.

    Args:
        vertices: (V, 3) metres, +z forward; faces: (F, 3).
        xy: (K, 2) points in the front view (x, y), metres.

    Returns:
        points (K, 3) on the surface, their triangle ids (K,) into ``faces`` and barycentric
        coordinates (K, 3), so that the points can be posed with the mesh.

    Raises:
        ValueError: if a ray misses the surface (a point outside the silhouette).
    """
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    origins = np.column_stack([xy, np.full(len(xy), vertices[:, 2].max() + 1.0)])
    hits, ray, tri = mesh.ray.intersects_location(origins, np.tile([0.0, 0.0, -1.0], (len(xy), 1)), multiple_hits=True)
    points = np.zeros((len(xy), 3))
    face_ids = np.zeros(len(xy), np.int64)
    for i in range(len(xy)):
        mine = np.flatnonzero(ray == i)
        if len(mine) == 0:
            raise ValueError(f"front-view point {xy[i]} is outside the surface's silhouette")
        j = mine[np.argmax(hits[mine, 2])]
        points[i], face_ids[i] = hits[j], tri[j]
    bary = trimesh.triangles.points_to_barycentric(vertices[faces[face_ids]], points)
    return points, face_ids, bary


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def cylinder_uv(points: np.ndarray) -> np.ndarray:
    """(N, 3) metres -> (N, 2) skin texture coordinates in metres (arc length, height)."""
    theta = np.arctan2(points[:, 0], points[:, 2] - CYLINDER_Z)
    return np.column_stack([CYLINDER_RADIUS * theta, points[:, 1]])


def skin_corner_uv(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3, 2) normalised skin texture coordinates per triangle corner.

    Per corner, not per vertex: a triangle that straddles the cylinder's seam at the back of
    the head takes its corners on one side (beyond the texture, where it repeats its skin-
    coloured edge), instead of spanning the whole face.
    """
    theta = np.arctan2(vertices[:, 0], vertices[:, 2] - CYLINDER_Z)[faces]  # (F, 3)
    seam = np.ptp(theta, axis=1) > np.pi
    theta = np.where(seam[:, None] & (theta < 0), theta + 2 * np.pi, theta)
    uv = np.stack([CYLINDER_RADIUS * theta, vertices[faces, 1]], axis=-1)
    return normalise_skin_uv(uv)


def normalise_skin_uv(uv: np.ndarray) -> np.ndarray:
    """Metres on the texture cylinder -> [0, 1] texture coordinates (outside: beyond the edges)."""
    lo = np.array([SKIN_UV_RANGE[0][0], SKIN_UV_RANGE[1][0]])
    hi = np.array([SKIN_UV_RANGE[0][1], SKIN_UV_RANGE[1][1]])
    return (uv - lo) / (hi - lo)


def _texel_centres_m(size: int) -> np.ndarray:
    """(size, size, 2) the skin texture's texel centres in cylinder metres, row 0 at the bottom."""
    (u0, u1), (v0, v1) = SKIN_UV_RANGE
    u = u0 + (np.arange(size) + 0.5) / size * (u1 - u0)
    v = v0 + (np.arange(size) + 0.5) / size * (v1 - v0)
    return np.stack(np.meshgrid(u, v), axis=-1)


def polygon_distance(points: np.ndarray, polygon: np.ndarray, step: float = 5e-5) -> np.ndarray:
    """(N,) signed distance (negative inside) from 2-D ``points`` (N, 2) to a closed ``polygon``
    (M, 2), both in the same units; the boundary is resampled every ``step``."""
    dist = cKDTree(_resample(np.concatenate([polygon, polygon[:1]]), step)).query(points)[0]
    return np.where(PolyPath(polygon).contains_points(points), -dist, dist)


def paint_skin(skin_rgb, lip_polygon_uv: np.ndarray, lip_rgb, lip_line_uv: np.ndarray, brows_uv: list[np.ndarray],
               brow_rgb, *, lip_soft_mm: float, brow_soft_mm: float, brow_opacity: float,
               size: int = SKIN_TEXTURE_SIZE) -> np.ndarray:
    """The skin texture: skin colour, the lips inside their contour, the brows inside their outlines.

    Args:
        skin_rgb, lip_rgb, brow_rgb: sRGB colours in [0, 1].
        lip_polygon_uv: (M, 2) the outer lip contour on the texture cylinder, metres.
        lip_line_uv: (K, 2) where the lips meet (the inner lip contour), metres: the lips
            darken a little towards it, as wet, shadowed lips do.
        brows_uv: each brow's outline (M, 2), metres.
        lip_soft_mm, brow_soft_mm: half-width of each border's blend, millimetres.
        brow_opacity: how much of the brow colour covers the skin at a brow's core.

    Returns:
        (size, size, 3) uint8 sRGB, row 0 at the bottom.
    """
    texels = _texel_centres_m(size).reshape(-1, 2)
    rgb = np.tile(np.asarray(skin_rgb, np.float64), (len(texels), 1))
    d_lip = polygon_distance(texels, lip_polygon_uv) * 1e3  # mm
    to_line = cKDTree(_resample(lip_line_uv, 5e-5)).query(texels)[0] * 1e3
    wet = 0.12 * _smoothstep(1.0 - to_line / 3.0)  # darker within 3 mm of where the lips meet
    lip = np.asarray(lip_rgb) * (1.0 - wet[:, None])
    a = _smoothstep((lip_soft_mm - d_lip) / (2 * lip_soft_mm))[:, None]
    rgb = (1 - a) * rgb + a * lip
    for outline in brows_uv:
        d = polygon_distance(texels, outline) * 1e3
        core = _smoothstep((brow_soft_mm - d) / (2 * brow_soft_mm))
        a = (brow_opacity * core * _brow_density(texels, outline))[:, None]
        rgb = (1 - a) * rgb + a * np.asarray(brow_rgb)
    return _to_uint8(rgb.reshape(size, size, 3))


def _resample(polyline: np.ndarray, step: float) -> np.ndarray:
    """Points along a polyline (K, D) at most ``step`` apart, its vertices included."""
    nxt = polyline[1:]
    parts = [a + (b - a) * t[:, None]
             for a, b in zip(polyline[:-1], nxt)
             for t in [np.linspace(0, 1, max(2, int(np.ceil(np.linalg.norm(b - a) / step))), endpoint=False)]]
    return np.concatenate(parts + [polyline[-1:]])


def _brow_density(texels: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """(N,) in [0.6, 1]: a brow is sparse at its nasal head, dense along its body and thins
    towards the tail; by the position along the brow's long axis (the outline's first point is
    on the head's side, :func:`brow_outline_xy` order)."""
    centre = outline.mean(0)
    spread = outline - centre
    axis = np.linalg.svd(spread, full_matrices=False)[2][0]
    axis *= np.sign((outline[0] - centre) @ axis)  # towards the head
    along = (texels - centre) @ axis
    span = spread @ axis
    t = np.clip((span.max() - along) / (span.max() - span.min()), 0.0, 1.0)  # 0 at the head, 1 at the tail
    return np.interp(t, [0.0, 0.25, 0.7, 1.0], [0.6, 1.0, 1.0, 0.75])


def eye_uv(vertices: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(N, 2) eyeball texture coordinates in [0, 1]: the front hemisphere (+z) as the unit disc
    (orthographic, straight ahead at the centre), the back one folded outside it."""
    d = vertices - centre
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    rho = np.linalg.norm(d[:, :2], axis=1)
    scale = np.where(d[:, 2] >= 0, 1.0, (2.0 - rho) / np.maximum(rho, 1e-9))
    return (d[:, :2] * scale[:, None] / EYE_UV_RANGE + 1.0) / 2.0


def paint_eye(sclera_rgb, iris_rgb, pupil_rgb, iris_angle: float, pupil_angle: float, size: int = EYE_TEXTURE_SIZE,
              seed: int = 0) -> np.ndarray:
    """The eyeball texture for :func:`eye_uv`: sclera, an iris with a darker limbal ring and soft
    radial fibres, a pupil; angles (radians) from the forward axis. (size, size, 3) uint8."""
    c = (np.arange(size) + 0.5) / size * 2 * EYE_UV_RANGE - EYE_UV_RANGE
    x, y = np.meshgrid(c, c)
    rho = np.hypot(x, y)
    angle = np.where(rho <= 1.0, np.arcsin(np.clip(rho, 0, 1)), np.pi / 2 + (rho - 1.0))
    rng = np.random.default_rng(seed)
    k = rng.uniform(0, 2 * np.pi, 2)
    fibres = 0.5 + 0.5 * np.sin(np.arctan2(y, x) * 23 + 2 * np.sin(np.arctan2(y, x) * 5 + k[0]) + k[1])
    iris = np.asarray(iris_rgb) * (0.85 + 0.3 * fibres[..., None])
    limbus = _smoothstep((angle - 0.80 * iris_angle) / (0.2 * iris_angle))[..., None]
    iris = iris * (1.0 - 0.45 * limbus)
    a_iris = _smoothstep((iris_angle + 0.02 - angle) / 0.04)[..., None]
    a_pupil = _smoothstep((pupil_angle + 0.015 - angle) / 0.03)[..., None]
    rgb = (1 - a_iris) * np.asarray(sclera_rgb) + a_iris * iris
    rgb = (1 - a_pupil) * rgb + a_pupil * np.asarray(pupil_rgb)
    return _to_uint8(rgb)


def palette(stops: list[tuple[float, tuple[float, float, float]]], size: int = PALETTE_SIZE) -> np.ndarray:
    """A 1-D palette texture (4, size, 3) uint8 from (position in [0, 1], sRGB) stops,
    interpolated linearly; the colour at coordinate u is ``sample_palette(texture, u)``."""
    pos = np.array([s[0] for s in stops])
    cols = np.array([s[1] for s in stops], np.float64)
    u = (np.arange(size) + 0.5) / size
    row = np.stack([np.interp(u, pos, cols[:, c]) for c in range(3)], axis=-1)
    return _to_uint8(np.tile(row, (4, 1, 1)))


def sample(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a texture (H, W, 3) uint8 at (N, 2) coordinates in [0, 1] (clamped at
    the edges, as Blender's 'EXTEND'): (N, 3) float sRGB in [0, 1]."""
    h, w = texture.shape[:2]
    x = np.clip(uv[:, 0] * w - 0.5, 0, w - 1)
    y = np.clip(uv[:, 1] * h - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    t = texture.astype(np.float64) / 255.0
    top = (1 - fx) * t[y0, x0] + fx * t[y0, x1]
    bottom = (1 - fx) * t[y1, x0] + fx * t[y1, x1]
    return (1 - fy) * top + fy * bottom


def project_to_vertices(vertices: np.ndarray, faces: np.ndarray, corner_uv: np.ndarray, textures: list[np.ndarray],
                        face_texture: np.ndarray, order: int = 6) -> np.ndarray:
    """Per-vertex colours whose linear interpolation over the triangles best matches the textures.

    The L2 projection of the textured surface onto piecewise-linear colours: solve M c = b with
    the mass matrix M_ij = integral of phi_i phi_j and b_i = integral of phi_i T, both by the
    centroid rule on ``order``**2 sub-triangles of each triangle. Unlike a sample at each vertex,
    a feature narrower than the triangles (a 6 mm brow on 7 mm triangles) keeps its total
    darkness, spread over the vertices around it, instead of vanishing between them.

    Args:
        vertices: (V, 3) metres; faces: (F, 3); corner_uv: (F, 3, 2) texture coordinates.
        textures: the (H, W, 3) uint8 textures; face_texture: (F,) which one each face reads.

    Returns:
        (V, 3) sRGB in [0, 1]; vertices on no face are 0.
    """
    from scipy.sparse.linalg import spsolve

    i, j = np.meshgrid(np.arange(order), np.arange(order), indexing="ij")
    up = (i + j <= order - 1).ravel()
    down = (i + j <= order - 2).ravel()
    a = np.concatenate([(i.ravel()[up] + 1 / 3), (i.ravel()[down] + 2 / 3)]) / order
    b = np.concatenate([(j.ravel()[up] + 1 / 3), (j.ravel()[down] + 2 / 3)]) / order
    bary = np.column_stack([a, b, 1.0 - a - b])  # (order**2, 3), each point a sub-triangle's centroid
    area = 0.5 * np.linalg.norm(np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]],
                                         vertices[faces[:, 2]] - vertices[faces[:, 0]]), axis=1)
    weight = area / len(bary)  # (F,) each point's share of its triangle
    uv = np.einsum("kc,fcd->fkd", bary, corner_uv)  # (F, K, 2)
    colour = np.zeros(uv.shape[:2] + (3,))
    for t, texture in enumerate(textures):
        chosen = face_texture == t
        colour[chosen] = sample(texture, uv[chosen].reshape(-1, 2)).reshape(-1, len(bary), 3)
    n = len(vertices)
    local = weight[:, None, None] * np.einsum("kc,kd->cd", bary, bary)[None]  # (F, 3, 3)
    rows = np.repeat(faces, 3, axis=1).ravel()
    cols = np.tile(faces, (1, 3)).ravel()
    mass = sparse.coo_matrix((local.ravel(), (rows, cols)), shape=(n, n)).tocsc()
    rhs = np.zeros((n, 3))
    np.add.at(rhs, faces.ravel(), (weight[:, None, None] * np.einsum("kc,fkd->fcd", bary, colour)).reshape(-1, 3))
    used = np.unique(faces)
    out = np.zeros((n, 3))
    out[used] = spsolve(mass[used][:, used], rhs[used])
    return np.clip(out, 0.0, 1.0)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
