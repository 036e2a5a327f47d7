"""Rebuild ``flame_assets/default_avatar.npz``: the FLAME mean head with ICT FaceKit's expressions.

    python -m emoflame.flame_assets.build_default_avatar --data ../shared/data

Steps (AVATAR_CARD.md gives the figures):
1. Similarity ICT -> FLAME on the 68-point landmarks 17-67 (the jawlines disagree by 9-30 mm).
2. Non-rigid ICP of FLAME's skin (vertices 0-3930) onto ICT's skin, eye and mouth sockets.
3. Upper/lower lip labels on both meshes; each FLAME skin vertex takes the closest point on an
   ICT triangle of the same label (else ``jawOpen`` tears the mouth corners). FLAME's inner lip
   surfaces, which pass through each other at rest, take their registered shape.
4. Every ICT expression blendshape is carried through that correspondence (skin to skin);
   nothing moves on the head, ears or neck behind the jaw's angle. ICT's eyeLook shapes move
   only the lids, so FLAME's eyeballs get the gaze rotation (GAZE_ANGLE) about its eye joints.
5. Blink: FLAME's eye opens wider than ICT's, so ``eyeBlink`` is scaled near each eye by the
   ratio of openings; the shapes that MediaPipe reads weaker on FLAME's face than on ICT's own
   (brow lowerer, cheek raise, lid tightener, dimpler) are scaled by SHAPE_GAIN.
6. ICT's teeth, gums, tongue and mouth socket and their deltas come over by the similarity, shifted by the
   registration's offset at the lips, as the avatar's mouth interior.
7. Vertex colours (skin, lips, eyebrows, sclera, iris, pupil, teeth, gums) and quality figures.

The output is deterministic: same data, same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from scipy import sparse
from scipy.sparse import csgraph

from ..core.flame.geometry import fit_similarity
from ..core.flame.avatar import FORMAT_VERSION, INTERIOR_PARTS
from ..core.flame.loading import load_landmark_embedding
from . import ict_transfer as transfer
from . import paint

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
FLAME_SKIN = range(0, 3931)
FLAME_EYEBALL = {"L": range(3931, 4477), "R": range(4477, 5023)}  # L = subject's left, +x
ICT_NARROW_FACE_END = 6706  # ICT "narrow face area" [0:6705]: where the transfer error is measured
ICT_FACE_END = 9409  # ICT "full face area" vertices [0:9408]
ICT_HEAD_END = 11248  # ICT "head and neck" [9409:11247]: never moved by an expression
ICT_SKIN_END = 14062  # face, head, mouth socket and eye sockets: the registration target
ICT_INTERIOR = {"socket": range(11248, 13294), "gums_tongue": range(14062, 17039), "teeth": range(17039, 21451)}
# 68-point landmarks: 36-41 the subject's right eye (-x), 42-47 the left eye (+x).
EYE_LANDMARKS = {"R": (36, 39, (37, 41), (38, 40)), "L": (42, 45, (43, 47), (44, 46))}
GAZE_ANGLE = {"Up": np.radians(25.0), "Down": np.radians(25.0), "In": np.radians(30.0), "Out": np.radians(30.0)}
FACE_FADE_Z = (-0.02, 0.02)  # metres along +z: no expression behind the first, all of it before the second
BLINK_FADE = (0.008, 0.018)  # metres from the eye centre: full ratio inside, none beyond
# The transfer carries ICT's displacements faithfully (68-landmark displacement 0.95-1.05 of
# ICT's for every shape), yet on FLAME's face some read weaker than on ICT's own head: MediaPipe
# Face Landmarker on Workbench renders (docs/make_avatar_contact_sheet.py, shape_readback) of
# each shape pair at weight 1, ICT's original beside the avatar. FLAME's brows sit higher above
# its wider-open eyes, so ICT's 3.4 mm brow lowering closes the gap between MediaPipe's brow and
# lid landmarks by 0.017 eye spans against ICT's 0.039 (at 2x: 0.036); its lids open 9.6 mm
# against ICT's 8.0, so the cheek raise and the lid tightener read eyeSquint 0.18 and 0.16
# against ICT's 0.31 and 0.21 (at 1.75x and 1.5x: 0.32 and 0.21); the dimpler reads
# mouthSmile 0.32 against 0.57 (1.25x: 0.56). Those shapes are scaled by these gains; the
# others read at least as strongly as ICT's (docs/avatar_shape_readback.json).
SHAPE_GAIN = {"browDown": 2.0, "cheekSquint": 1.75, "eyeSquint": 1.5, "mouthDimple": 1.25}
SKIN_RGB = (0.78, 0.60, 0.50)
LIP_RGB = (0.70, 0.42, 0.40)
SCLERA_RGB = (0.74, 0.72, 0.68)
IRIS_RGB = (0.10, 0.06, 0.035)  # dark: MediaPipe reads light irises as eye-look
PUPIL_RGB = (0.02, 0.02, 0.02)
IRIS_ANGLE, PUPIL_ANGLE = 0.50, 0.20  # radians from the eyeball's forward axis
BROW_RGB = (0.22, 0.15, 0.10)  # painted eyebrows: brow motion reads to eyes and to MediaPipe
BROW_OPACITY = 0.85
# Neutral brows (front view, mm): the head sits 1 mm below FLAME's innermost brow landmark,
# the arch at its middle landmark, the tail level with the head; FLAME's outer landmark lies
# 7 mm below its inner one, which painted as is reads as a worried slant.
BROW_HEAD_DROP_MM, BROW_TAIL_RISE_MM = 1.0, 0.0
BROW_HALF_WIDTH_MM = (3.0, 2.7, 2.3, 1.6, 0.5)  # head, three along the brow, tail
BROW_SOFT_MM = 0.6
# FLAME's outer-lip landmarks lie on the lips' bulge, inside the vermilion border: the painted
# contour stretches away from where the lips meet by these factors (upper, lower lip).
LIP_GROW = (1.08, 1.25)
LIP_SOFT_MM = 0.6  # half-width of the vermilion border's blend
LIP_SEAL_OVERLAP_MM, LIP_SEAL_REACH_MM, LIP_SEAL_FALLOFF_MM = 0.3, 2.5, 3.0  # see seal_lips
TEETH_RGB, GUMS_RGB, TONGUE_RGB = (0.86, 0.83, 0.74), (0.66, 0.32, 0.33), (0.62, 0.30, 0.31)
# ICT's tongue lies level with the lower teeth and fills an open mouth like a slab: its top
# (above TONGUE_BODY_Y; metres) lowers by TONGUE_DROP_MM at rest in front (of TONGUE_FRONT_Z)
# and, as the jaw opens, by TONGUE_OPEN_DROP_MM more all the way back to its root (in front of
# TONGUE_ROOT_Z), as a tongue does for an open vowel; nothing moves at its root and underside.
TONGUE_DROP_MM, TONGUE_OPEN_DROP_MM = 4.5, 5.0
TONGUE_BODY_Y, TONGUE_FRONT_Z, TONGUE_ROOT_Z = (-0.060, -0.044), (0.0, 0.020), (-0.015, 0.0)
# ICT's upper incisors reach 0.9 mm below its lower ones (a shallow overbite; 2-3 mm is usual)
# and, behind FLAME's sealed lips, do not show even at an open vowel: the upper teeth and gums
# lower by UPPER_TEETH_DROP_MM, the jaw's teeth, gums and tongue by as much at the back molars
# (they stay in occlusion) and not at all at the front (the lower incisors show as before).
UPPER_TEETH_DROP_MM = 1.0
# 1-D palettes (position, sRGB) read by depth: the mouth's lining, gums and tongue share the
# 'tongue' material; the lining meets the painted lips at 0.40 in the lips' own colour.
MOUTH_PALETTE = [
    (0.00, (0.10, 0.035, 0.04)),  # the throat
    (0.25, (0.36, 0.13, 0.14)),  # the lining deep inside
    (0.40, tuple(0.88 * c for c in LIP_RGB)),  # the inner lip where the lips meet
    (0.45, tuple(0.6 * c for c in GUMS_RGB)),  # gums by the back teeth
    (0.55, GUMS_RGB),  # gums by the front teeth
    # the back of the tongue, 0.8 of its tip: at 0.35 of it the tongue seen through an open mouth
    # read as one flat maroon hole with the cavity behind it (three of four blind viewers of the
    # portrait sheets); the shadow inside and the throat's own colour keep the cavity dark
    (0.70, tuple(0.8 * c for c in TONGUE_RGB)),
    (1.00, TONGUE_RGB),  # its tip
]
TEETH_PALETTE = [(0.0, (0.40, 0.37, 0.32)), (1.0, TEETH_RGB)]  # back molars in shadow, front teeth lit


def load_flame(data: Path) -> dict:
    """FLAME template (V, F), the 68-point landmark embedding and the joint regressor."""
    mesh = trimesh.load(data / "flame" / "template.ply", process=False)
    landmark_faces, landmark_bary = load_landmark_embedding(data / "flame" / "flame_static_embedding_68.pkl")
    return {
        "vertices": np.asarray(mesh.vertices, np.float64),
        "faces": np.asarray(mesh.faces, np.int64),
        "landmark_faces": landmark_faces,
        "landmark_bary": landmark_bary,
        "joint_regressor": np.load(data / "flame" / "flame2020_joint_regressor.npz")["joint_regressor"],
    }


def ict_names(data: Path) -> list[str]:
    """ICT's expression list, then the other expression OBJs it ships (cheekRaiser); no pupils."""
    names = json.loads((data / "ict_facekit" / "vertex_indices.json").read_text())["expressions"]
    extra = sorted(
        p.stem for p in (data / "ict_facekit").glob("*.obj")
        if p.stem not in names and p.stem != "generic_neutral_mesh" and not p.stem.startswith("PupilDilate")
    )
    return list(names) + extra


def load_ict(data: Path) -> dict:
    """ICT neutral (cm), triangles, their UV islands, landmark vertex ids and (S, 26719, 3)
    expression deltas (cm)."""
    folder = data / "ict_facekit"
    neutral, faces = transfer.read_obj(folder / "generic_neutral_mesh.obj")
    names = ict_names(data)
    deltas = np.stack([transfer.read_obj(folder / f"{n}.obj", with_faces=False)[0] - neutral for n in names])
    lmk = json.loads((folder / "vertex_indices.json").read_text())["idx_to_landmark_verts"]
    islands = transfer.uv_islands(folder / "generic_neutral_mesh.obj")
    return {"vertices": neutral, "faces": faces, "names": names, "deltas": deltas, "landmarks": np.asarray(lmk),
            "islands": islands}


def embed(vertices: np.ndarray, faces: np.ndarray, lmk_faces: np.ndarray, lmk_bary: np.ndarray) -> np.ndarray:
    """(..., V, 3) -> (..., L, 3) barycentric landmark positions."""
    return np.einsum("...lkc,lk->...lc", vertices[..., faces[lmk_faces], :], lmk_bary)


def mouth_box(lmk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A box between the inner lip corners (landmarks 60, 64), nose base to chin, lips in front."""
    inset = 0.15 * (lmk[64, 0] - lmk[60, 0])
    lo = np.array([lmk[60, 0] + inset, 0.5 * (lmk[57, 1] + lmk[8, 1]), lmk[48:68, 2].min() - 0.012])
    hi = np.array([lmk[64, 0] - inset, 0.5 * (lmk[33, 1] + lmk[51, 1]), 1.0])
    return lo, hi


def eye_box(lmk: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """A box between one eye's corners, above and below the lids, in front of the eyeball."""
    a, b, _, _ = EYE_LANDMARKS[side]
    ring = lmk[min(a, b) : min(a, b) + 6]
    inset = 0.2 * abs(lmk[b, 0] - lmk[a, 0])
    x0, x1 = sorted((lmk[a, 0], lmk[b, 0]))
    y = ring[:, 1].mean()
    lids = lmk[[p for pair in EYE_LANDMARKS[side][2:] for p in pair]]
    lo = np.array([x0 + inset, y - 0.010, lids[:, 2].mean() - 0.003])  # the socket lies behind
    hi = np.array([x1 - inset, y + 0.010, 1.0])
    return lo, hi


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: which 2-D ``points`` (N, 2) lie inside the closed ``polygon`` (M, 2) (even-odd rule)."""
    inside = np.zeros(len(points), bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, 0)):
        crosses = (y0 > points[:, 1]) != (y1 > points[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (points[:, 1] - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (points[:, 0] < x_at)
    return inside


def lip_region(vertices: np.ndarray, lmk: np.ndarray, grow: float = 1.1) -> np.ndarray:
    """(V,) bool: vertices inside the outer lip contour (landmarks 48-59, grown about its centre),
    seen from the front, and no further back than the mouth's inner surfaces."""
    ring = lmk[48:60, :2]
    ring = ring.mean(0) + grow * (ring - ring.mean(0))
    return inside_polygon(vertices[:, :2], ring) & (vertices[:, 2] > lmk[48:68, 2].min() - 0.012)


@dataclass(frozen=True)
class LipCoordinates:
    """Where each skin vertex lies between the mouth hole's rim and the painted outer lip contour.

    Attributes:
        inside: (V,) bool, the lips and the mouth's inner surfaces: the side of the contour
            that holds the mouth hole (found on the mesh with the edges that cross the contour
            cut, so a fold of the inner lip that shows beside the corners is still inside).
        t: (V,) in [0, 1] inside: distance along the surface from the rim over that distance
            plus the one to the contour (0 at the rim, 1 at the contour); 1 outside. Unlike a
            distance from the rim, it stays true at the corners, where the lips are thin.
        t_inner: label (UPPER, LOWER) -> t at the inner lip contour (landmarks 62, 66).
    """

    inside: np.ndarray
    t: np.ndarray
    t_inner: dict[int, float]


def lip_coordinates(vertices: np.ndarray, faces: np.ndarray, lmk: np.ndarray) -> LipCoordinates:
    """:class:`LipCoordinates` of the skin (vertices (V, 3), faces (F, 3), landmarks (68, 3)).

    Raises:
        ValueError: if the contour does not separate the lips from the rest of the skin.
    """
    from scipy.spatial import cKDTree

    contour_xy = lip_contour_xy(lmk)
    contour = paint.lift_front(vertices, faces, contour_xy)[0]
    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1), axis=0)
    near_contour = cKDTree(contour).query(vertices)[0]
    candidate = np.flatnonzero((near_contour[edges] < 0.006).all(1))
    cut = np.zeros(len(edges), bool)
    cut[candidate] = _segments_cross(vertices[edges[candidate, 0], :2], vertices[edges[candidate, 1], :2], contour_xy)
    n = len(vertices)
    kept = edges[~cut]
    graph = sparse.coo_matrix((np.ones(len(kept)), (kept[:, 0], kept[:, 1])), shape=(n, n))
    _, comp = csgraph.connected_components(graph, directed=False)
    rim = transfer.boundary_vertices(faces)
    rim = rim[vertices[rim, 1] > lmk[8, 1]]  # the mouth hole, not the neck
    inside = comp == comp[rim[0]]
    if inside.all() or not inside[np.argmin(np.linalg.norm(vertices - lmk[62], axis=1))]:
        raise ValueError("the painted lip contour does not separate the lips from the face; check LIP_GROW")
    inner_faces = faces[inside[faces].all(1)]
    d_rim = transfer.surface_distance(vertices, inner_faces, rim)
    seeds = np.unique(edges[cut])
    seeds = seeds[inside[seeds]]
    d_out = _distance_from_seeds(vertices, inner_faces, seeds, near_contour[seeds])
    t = np.ones(len(vertices))
    t[inside] = d_rim[inside] / np.maximum(d_rim[inside] + d_out[inside], 1e-12)
    t_inner = {label: float(t[np.argmin(np.linalg.norm(vertices - lmk[k], axis=1))])
               for label, k in ((transfer.UPPER, 62), (transfer.LOWER, 66))}
    return LipCoordinates(inside, t, t_inner)


def _segments_cross(a: np.ndarray, b: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(E,) bool: does 2-D segment a_i b_i cross any edge of the closed ``polygon`` (M, 2)?"""
    c, d = polygon, np.roll(polygon, -1, 0)

    def orient(p, q, r):  # sign of the turn p -> q -> r, broadcast (E, M)
        return np.sign((q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0]))

    a_, b_ = a[:, None], b[:, None]
    c_, d_ = c[None], d[None]
    return ((orient(a_, b_, c_) != orient(a_, b_, d_)) & (orient(c_, d_, a_) != orient(c_, d_, b_))).any(1)


def _distance_from_seeds(vertices: np.ndarray, faces: np.ndarray, seeds: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(V,) shortest distance along the edges from a set of seed vertices that start at
    ``offsets`` (their own distance from the source curve): Dijkstra from a virtual source."""
    n = len(vertices)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    length = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    rows = np.concatenate([edges[:, 0], np.full(len(seeds), n)])
    cols = np.concatenate([edges[:, 1], seeds])
    graph = sparse.coo_matrix((np.concatenate([length, np.maximum(offsets, 1e-9)]), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
    graph = graph.maximum(graph.T)
    return csgraph.dijkstra(graph, indices=n)[:n]


def inner_lip_tuck(coords: LipCoordinates, labels: np.ndarray) -> np.ndarray:
    """(V,) weight in [0, 1] of the mouth's inner surfaces: 1 from the mouth hole's rim to the
    inner lip contour (landmark 62 above, 66 below), falling smoothly to 0 at the painted outer
    lip contour; 0 outside it. ``labels`` (V,): UPPER/LOWER."""
    weight = np.zeros(len(coords.t))
    for label in (transfer.UPPER, transfer.LOWER):
        t_in = coords.t_inner[label]
        w = _smoothstep((1.0 - coords.t) / (1.0 - t_in))
        weight = np.where((labels == label) & coords.inside, w, weight)
    return weight


def seal_lips(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray, inside: np.ndarray, lmk: np.ndarray) -> np.ndarray:
    """(V, 3) vertical displacements that close the lips at rest.

    Where the lips meet, between the inner corners (landmarks 60, 64), each lip vertex
    (``inside`` the lip contour, UPPER or LOWER in ``labels``) that sees the other lip straight
    below (above) it within LIP_SEAL_REACH_MM moves half of that gap plus half of
    LIP_SEAL_OVERLAP_MM towards it, so that the lips press together a little; its neighbours
    follow, less with distance (over LIP_SEAL_FALLOFF_MM), and nothing moves at the corners.
    """
    from scipy.spatial import cKDTree

    centre, half_width = 0.5 * (lmk[60, 0] + lmk[64, 0]), 0.5 * (lmk[64, 0] - lmk[60, 0])
    lateral = _smoothstep((1.0 - np.abs(vertices[:, 0] - centre) / half_width) / 0.2)  # 0 at the inner corners
    shift = np.zeros_like(vertices)
    for label, other, down in ((transfer.UPPER, transfer.LOWER, -1.0), (transfer.LOWER, transfer.UPPER, 1.0)):
        mine = np.flatnonzero(inside & (labels == label) & (lateral > 0))
        target = trimesh.Trimesh(vertices, faces[(inside & (labels == other))[faces].all(1)], process=False)
        hits, ray, _ = target.ray.intersects_location(vertices[mine], np.tile([0.0, down, 0.0], (len(mine), 1)),
                                                      multiple_hits=False)
        gap = np.full(len(mine), np.inf)
        gap[ray] = np.abs(hits[:, 1] - vertices[mine[ray], 1])
        meet = gap < LIP_SEAL_REACH_MM * 1e-3
        if not meet.any():
            continue
        move = 0.5 * (gap[meet] + LIP_SEAL_OVERLAP_MM * 1e-3) * lateral[mine[meet]]
        # each lip vertex takes the largest move of the meeting vertices near it, faded by distance
        near = cKDTree(vertices[mine[meet]])
        dist, k = near.query(vertices[mine], k=min(8, int(meet.sum())))
        dist, k = dist.reshape(len(mine), -1), k.reshape(len(mine), -1)
        fade = _smoothstep(1.0 - dist / (LIP_SEAL_FALLOFF_MM * 1e-3))
        shift[mine, 1] = down * (fade * move[k]).max(1)
    return shift


def mouth_depth(coords: LipCoordinates, labels: np.ndarray) -> np.ndarray:
    """(V,) in [0, 1]: 0 at the mouth hole's rim, 1 at the inner lip contour and beyond."""
    depth = np.ones(len(coords.t))
    for label in (transfer.UPPER, transfer.LOWER):
        depth = np.where(labels == label, np.clip(coords.t / coords.t_inner[label], 0.0, 1.0), depth)
    return depth


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def shape_gains(names: list[str]) -> np.ndarray:
    """(S,) the factor on each blendshape's transferred deltas: SHAPE_GAIN for both sides of a
    pair (``browDown`` scales ``browDown_L`` and ``browDown_R``), 1 elsewhere."""
    return np.array([SHAPE_GAIN.get(n[:-2] if n.endswith(("_L", "_R")) else n, 1.0) for n in names])


def eye_opening(lmk: np.ndarray, side: str) -> float:
    """Mean distance between the upper and lower lid landmarks of one eye."""
    _, _, p, q = EYE_LANDMARKS[side]
    return float(np.mean([np.linalg.norm(lmk[p[0]] - lmk[p[1]]), np.linalg.norm(lmk[q[0]] - lmk[q[1]])]))


def gaze_deltas(names: list[str], vertices: np.ndarray, joint_regressor: np.ndarray) -> np.ndarray:
    """(S, V, 3): each ``eyeLook*`` shape turns its eyeball about the eye joint by GAZE_ANGLE.

    ICT FaceKit's eyeLook shapes move only the lids (its eyeballs are meant to be rotated by a
    rig), so the build adds the rotation that ARKit's eyeLook channels stand for.
    """
    out = np.zeros((len(names),) + vertices.shape)
    centres = {"L": joint_regressor[3] @ vertices, "R": joint_regressor[4] @ vertices}
    for s, name in enumerate(names):
        if not name.startswith("eyeLook"):
            continue
        direction, side = name[len("eyeLook") :].split("_")
        angle = GAZE_ANGLE[direction]
        if direction in ("In", "Out"):
            # +x is the subject's left: the left eye looks in towards -x, the right eye towards +x
            toward_plus_x = (direction == "Out") == (side == "L")
            c, s_ = np.cos(angle), np.sin(angle) * (1 if toward_plus_x else -1)
            rot = np.array([[c, 0.0, s_], [0.0, 1.0, 0.0], [-s_, 0.0, c]])
        else:
            c, s_ = np.cos(angle), np.sin(angle) * (1 if direction == "Up" else -1)
            rot = np.array([[1.0, 0.0, 0.0], [0.0, c, s_], [0.0, -s_, c]])
        idx = np.asarray(FLAME_EYEBALL[side])
        out[s, idx] = (vertices[idx] - centres[side]) @ rot.T + centres[side] - vertices[idx]
    return out


def lip_line_xy(lmk: np.ndarray) -> np.ndarray:
    """(5, 2) where the lips meet in the front view, corner to corner: the inner lip contour's
    corners (60, 64) and the midpoints of its upper and lower landmarks (61-63, 67-65)."""
    mid = 0.5 * (lmk[[61, 62, 63], :2] + lmk[[67, 66, 65], :2])
    return np.concatenate([lmk[[60], :2], mid, lmk[[64], :2]])


def lip_contour_xy(lmk: np.ndarray, samples: int = 16) -> np.ndarray:
    """(12 * samples, 2) the painted outer lip contour in the front view: a closed spline
    through landmarks 48-59, each pushed away from the lip line by LIP_GROW (corners kept)."""
    line = lip_line_xy(lmk)
    ring = lmk[48:60, :2].copy()
    at = np.interp(ring[:, 0], line[:, 0], line[:, 1])
    upper, lower = np.arange(1, 6), np.arange(7, 12)  # 49-53, 55-59
    ring[upper, 1] = at[upper] + LIP_GROW[0] * (ring[upper, 1] - at[upper])
    ring[lower, 1] = at[lower] + LIP_GROW[1] * (ring[lower, 1] - at[lower])
    return paint.closed_catmull_rom(ring, samples)


def brow_outline_xy(lmk: np.ndarray, side: str) -> np.ndarray:
    """A neutral eyebrow's outline in the front view, (M, 2) metres, closed.

    The centre line runs from the brow's head (nasal end) through FLAME's brow landmarks to a
    tail level with the head (BROW_HEAD_DROP_MM, BROW_TAIL_RISE_MM); the half-width tapers along
    BROW_HALF_WIDTH_MM, with a round head and a pointed tail.
    """
    idx = [21, 20, 19, 18, 17] if side == "R" else [22, 23, 24, 25, 26]  # head to tail
    p = lmk[idx, :2].copy()
    p[0, 1] -= BROW_HEAD_DROP_MM * 1e-3
    p[4] = p[3] + 0.8 * (p[4] - p[3])  # FLAME's last landmark runs round the temple
    p[4, 1] = p[0, 1] + BROW_TAIL_RISE_MM * 1e-3
    p[3, 1] = 0.5 * (p[2, 1] + p[4, 1]) + 0.3 * (p[3, 1] - 0.5 * (p[2, 1] + p[4, 1]))
    centre = paint.open_catmull_rom(p, 16)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(centre, axis=0), axis=1))])
    knots = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    half = 1e-3 * np.interp(s / s[-1] * knots[-1], knots, BROW_HALF_WIDTH_MM)
    tangent = np.gradient(centre, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    normal *= np.sign(normal[len(normal) // 2, 1])  # upwards
    upper, lower = centre + half[:, None] * normal, centre - half[:, None] * normal
    cap = np.linspace(0.0, np.pi, 12)[1:-1]  # the head's round end, from the lower edge to the upper
    back = -tangent[0]
    head = centre[0] + half[0] * (np.outer(np.cos(cap), -normal[0]) + np.outer(np.sin(cap), back))
    return np.concatenate([upper, lower[::-1], head])


def interior_parts(ict_faces: np.ndarray, islands: np.ndarray, interior_idx: np.ndarray, jaw_delta: np.ndarray,
                   vertices: np.ndarray) -> np.ndarray:
    """(N,) index into INTERIOR_PARTS for ICT's interior vertices (``interior_idx``).

    Teeth by ICT's vertex range. The gums-and-tongue mesh is one piece; its UV islands tell
    the parts apart: the tongue is what the jaw carries (over half the mean motion of the most
    carried island) lying away from the teeth (median over 5 mm); what the jaw barely carries,
    away from the teeth, is the throat and soft palate. ICT's mouth socket (the cheeks' and
    lips' inner lining, its own range) is painted as the throat is: without it, an open mouth
    seen from the side shows the skin's inner side, lit as skin.
    """
    from scipy.spatial import cKDTree

    part = np.full(len(interior_idx), INTERIOR_PARTS.index("gums"), np.int8)
    is_teeth = interior_idx >= ICT_INTERIOR["teeth"].start
    part[is_teeth] = INTERIOR_PARTS.index("teeth")
    local = np.full(int(interior_idx.max()) + 1, -1)
    local[interior_idx] = np.arange(len(interior_idx))
    gt = (ict_faces >= ICT_INTERIOR["gums_tongue"].start).all(1) & (ict_faces < ICT_INTERIOR["gums_tongue"].stop).all(1)
    teeth = cKDTree(vertices[interior_idx[is_teeth]])
    stats = {}
    for island in np.unique(islands[gt]):
        vs = local[np.unique(ict_faces[gt & (islands == island)])]
        to_teeth = np.median(teeth.query(vertices[interior_idx[vs]])[0])
        stats[island] = (vs, np.linalg.norm(jaw_delta[vs], axis=1).mean(), to_teeth)
    most = max(motion for _, motion, _ in stats.values())
    for vs, motion, distance in stats.values():
        if distance > 0.005:
            part[vs] = INTERIOR_PARTS.index("tongue" if motion > 0.5 * most else "throat")
    part[interior_idx < ICT_INTERIOR["gums_tongue"].start] = INTERIOR_PARTS.index("throat")  # the cheeks' lining
    return part


def bite_drop(vertices: np.ndarray, parts: np.ndarray, jaw_delta: np.ndarray) -> np.ndarray:
    """(N,) in [0, 1]: how much of UPPER_TEETH_DROP_MM each interior vertex takes: 1 for the upper
    teeth and gums; for what ``jaw_delta`` (N, 3) carries (over 5 mm at jawOpen 1), 1 at the back
    molars falling linearly to 0 at the front incisors; 0 for the throat."""
    teeth = parts == INTERIOR_PARTS.index("teeth")
    z_back, z_front = vertices[teeth, 2].min(), vertices[teeth, 2].max()
    back = 1.0 - np.clip((vertices[:, 2] - z_back) / (z_front - z_back), 0.0, 1.0)
    carried = np.linalg.norm(jaw_delta, axis=1) > 0.005
    return np.where(carried, back, 1.0) * (parts != INTERIOR_PARTS.index("throat"))


def tongue_drop(vertices: np.ndarray, parts: np.ndarray, front: tuple[float, float]) -> np.ndarray:
    """(N,) in [0, 1]: how much of a tongue lowering each interior vertex takes: its top (by
    TONGUE_BODY_Y) in front of ``front`` (z metres, none behind the first, all past the second);
    0 off the tongue."""
    height = _smoothstep((vertices[:, 1] - TONGUE_BODY_Y[0]) / (TONGUE_BODY_Y[1] - TONGUE_BODY_Y[0]))
    ahead = _smoothstep((vertices[:, 2] - front[0]) / (front[1] - front[0]))
    return height * ahead * (parts == INTERIOR_PARTS.index("tongue"))


def paint_avatar(fv: np.ndarray, ff: np.ndarray, skin: np.ndarray, eyeball: dict, lmk: np.ndarray, mucosa: np.ndarray,
                 mucosa_depth: np.ndarray, interior_v: np.ndarray, parts: np.ndarray) -> dict:
    """Texture coordinates, textures, vertex colours and the lip contour (``flame_assets.paint``).

    Args:
        fv, ff: the rest head (5023, 3) metres and its faces (F, 3).
        skin: (5023,) bool; eyeball: side -> (5023,) bool.
        lmk: (68, 3) landmarks of the rest head.
        mucosa: (5023,) bool, the mouth's inner surfaces drawn with the 'tongue' material.
        mucosa_depth: (5023,) in [0, 1], 0 at the mouth hole's rim, 1 where the lips meet.
        interior_v: (N, 3) the interior at rest; parts: (N,) index into INTERIOR_PARTS.

    Returns:
        the arrays ``face_uv`` (F, 3, 2), ``interior_uv`` (N, 2), ``texture_*``,
        ``vertex_colors`` (5023, 3), ``interior_colors`` (N, 3), ``lip_contour_faces`` (K,),
        ``lip_contour_bary`` (K, 3), ``mask_mouth_inner`` (5023,).
    """
    skin_ids = np.flatnonzero(skin[ff].all(1))
    skin_faces = ff[skin_ids]
    lips_3d, lip_tri, lip_bary = paint.lift_front(fv, skin_faces, lip_contour_xy(lmk))
    line_3d = paint.lift_front(fv, skin_faces, paint.open_catmull_rom(lip_line_xy(lmk), 16))[0]
    brows = [paint.cylinder_uv(paint.lift_front(fv, skin_faces, brow_outline_xy(lmk, side))[0]) for side in ("R", "L")]
    textures = {
        "skin": paint.paint_skin(SKIN_RGB, paint.cylinder_uv(lips_3d), LIP_RGB, paint.cylinder_uv(line_3d), brows,
                                 BROW_RGB, lip_soft_mm=LIP_SOFT_MM, brow_soft_mm=BROW_SOFT_MM, brow_opacity=BROW_OPACITY),
        "eyes": paint.paint_eye(SCLERA_RGB, IRIS_RGB, PUPIL_RGB, IRIS_ANGLE, PUPIL_ANGLE),
        "mouth": paint.palette(MOUTH_PALETTE),
        "teeth": paint.palette(TEETH_PALETTE),
    }
    # per-vertex coordinates: the skin cylinder, eyeballs by direction, the lining by depth
    uv = paint.normalise_skin_uv(paint.cylinder_uv(fv))
    for side, mask in eyeball.items():
        uv[mask] = paint.eye_uv(fv[mask], fv[mask].mean(0))  # the eyeball's centre (its joint lies 1.3 mm behind)
    lining = np.column_stack([0.25 + 0.15 * mucosa_depth, np.full(len(fv), 0.5)])
    uv[mucosa] = lining[mucosa]
    face_uv = uv[ff]
    is_skin_face = np.zeros(len(ff), bool)
    is_skin_face[skin_ids] = ~mucosa[skin_faces].all(1)
    face_uv[is_skin_face] = paint.skin_corner_uv(fv, ff[is_skin_face])
    # per-vertex colours for renderers that colour by vertex: the textures' best linear fit
    which = np.where(is_skin_face, 0, np.where(mucosa[ff].all(1), 2, 1))  # skin, eyes, the mouth's lining
    rgb = paint.project_to_vertices(fv, ff, face_uv, [textures["skin"], textures["eyes"], textures["mouth"]], which)
    # the interior: gums, tongue and throat darken towards the back, the teeth likewise
    teeth = parts == INTERIOR_PARTS.index("teeth")
    z_front, z_back = interior_v[teeth, 2].max(), interior_v[teeth, 2].min() - 0.005
    front = np.clip((interior_v[:, 2] - z_back) / (z_front - z_back), 0.0, 1.0)
    u = np.select(
        [teeth, parts == INTERIOR_PARTS.index("tongue"), parts == INTERIOR_PARTS.index("throat")],
        [np.sqrt(front), 0.70 + 0.30 * front ** 0.7, 0.25 * front],
        0.45 + 0.10 * front,
    )
    interior_uv = np.column_stack([u, np.full(len(u), 0.5)])
    interior_rgb = np.where(teeth[:, None], paint.sample(textures["teeth"], interior_uv),
                            paint.sample(textures["mouth"], interior_uv))
    return {
        "face_uv": face_uv.astype(np.float32),
        "interior_uv": interior_uv.astype(np.float32),
        **{f"texture_{k}": v for k, v in textures.items()},
        "vertex_colors": rgb.astype(np.float32),
        "interior_colors": interior_rgb.astype(np.float32),
        "lip_contour_faces": skin_ids[lip_tri].astype(np.int32),
        "lip_contour_bary": lip_bary.astype(np.float32),
        "mask_mouth_inner": mucosa,
    }


def build(data: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Build the avatar arrays and the quality report from the shared data folder.

    Returns:
        (arrays for ``default_avatar.npz``, a JSON-ready dict of quality figures).

    Raises:
        ModelFileError: if a data file is missing.
    """
    flame, ict = load_flame(data), load_ict(data)
    fv, ff = flame["vertices"], flame["faces"]
    flame_lmk = embed(fv, ff, flame["landmark_faces"], flame["landmark_bary"])
    ict_lmk_cm = ict["vertices"][ict["landmarks"]]
    sim = fit_similarity(ict_lmk_cm[17:], flame_lmk[17:])
    iv = sim.points(ict["vertices"])
    ict_lmk = iv[ict["landmarks"]]
    ict_deltas = sim.vectors(ict["deltas"])  # (S, 26719, 3) metres, FLAME frame
    report = {
        "similarity_scale": sim.scale,
        "landmark_rms_mm": 1e3 * float(np.sqrt(((ict_lmk[17:] - flame_lmk[17:]) ** 2).sum(1).mean())),
    }

    # 2. register FLAME's skin onto ICT's skin and sockets
    skin = np.zeros(len(fv), bool)
    skin[FLAME_SKIN] = True
    skin_faces = ff[skin[ff].all(1)]
    face_index = np.full(len(ff), -1)
    face_index[skin[ff].all(1)] = np.arange(len(skin_faces))
    ict_skin_faces = ict["faces"][(ict["faces"] < ICT_SKIN_END).all(1)]
    registered = transfer.register_nonrigid(
        trimesh.Trimesh(fv[skin], skin_faces, process=False),
        trimesh.Trimesh(iv, ict_skin_faces, process=False),
        face_index[flame["landmark_faces"][17:]],
        flame["landmark_bary"][17:],
        ict_lmk[17:],
    )
    fit = trimesh.proximity.closest_point(trimesh.Trimesh(iv, ict_skin_faces, process=False), registered)[1]
    report["registration_mean_mm"] = 1e3 * float(fit.mean())
    report["registration_p95_mm"] = 1e3 * float(np.percentile(fit, 95))

    # 3. upper/lower lip labels on both meshes, then the same-label correspondence
    ict_face_skin = ict["faces"][(ict["faces"] < ICT_FACE_END).all(1)]
    flame_lips = transfer.label_opening(fv[skin], skin_faces, *mouth_box(flame_lmk))
    ict_lips = transfer.label_opening(iv, ict_skin_faces, *mouth_box(ict_lmk), split_faces=ict_face_skin)
    corr = transfer.closest_correspondence(
        registered, iv, ict_skin_faces, flame_lips, transfer.face_labels(ict_skin_faces, ict_lips)
    )
    # FLAME's lips pass through each other at rest (the lower lip's inner surface rises 4-5 mm
    # behind the upper lip): give the inner lip surfaces their registered shape (on ICT's
    # lips, which only touch), fading out towards the painted outer lip contour.
    coords = lip_coordinates(fv[skin], skin_faces, flame_lmk)
    tuck = inner_lip_tuck(coords, flame_lips)
    moved = tuck[:, None] * (registered - fv[skin])
    fv = fv.copy()
    fv[skin] += moved
    report["inner_lip_tuck"] = {"vertices": int((tuck > 0).sum()), "max_mm": 1e3 * float(np.linalg.norm(moved, axis=1).max())}
    # ... and still 1 mm apart, which shows the teeth: close them (the lips touch at rest; step 4
    # undoes it as the jaw opens)
    seal = seal_lips(fv[skin], skin_faces, flame_lips, coords.inside, flame_lmk)
    fv[skin] += seal
    report["lip_seal"] = {"vertices": int((np.abs(seal).sum(1) > 0).sum()), "max_mm": 1e3 * float(np.abs(seal).max())}

    # 4. carry the deltas: skin through the correspondence, then the eyeballs' gaze
    names = ict["names"]
    deltas = np.zeros((len(names),) + fv.shape)
    deltas[:, skin] = corr.carry(ict_deltas)
    in_face = np.zeros(len(fv), bool)
    on_head = (corr.target_faces >= ICT_FACE_END) & (corr.target_faces < ICT_HEAD_END)
    in_face[skin] = ~on_head.any(1) & (corr.distance < 0.005)  # face, mouth and eye sockets
    # ICT's jaw and cheek shapes spread 2-4 mm onto its ears and the back of its head: fade them
    # out from the jaw's angle backwards, so that only the face moves
    fade = np.clip((fv[:, 2] - FACE_FADE_Z[0]) / (FACE_FADE_Z[1] - FACE_FADE_Z[0]), 0.0, 1.0)
    in_face &= fade > 0
    deltas *= (fade * in_face)[:, None]
    deltas += gaze_deltas(names, fv, flame["joint_regressor"])
    # the lips part with the jaw: at jawOpen 1 the seal is undone, so the mouth opens as far as
    # ICT's does (sealed lips stay shut with jawOpen and mouthClose together)
    deltas[names.index("jawOpen"), skin] -= seal

    # 5. blink: FLAME's eyes open wider than ICT's
    report["blink_scale"] = {}
    for side in ("L", "R"):
        ratio = eye_opening(flame_lmk, side) / eye_opening(ict_lmk, side)
        a, b, _, _ = EYE_LANDMARKS[side]
        centre = flame_lmk[min(a, b) : min(a, b) + 6].mean(0)
        dist = np.linalg.norm(fv - centre, axis=1)
        fade = np.clip((BLINK_FADE[1] - dist) / (BLINK_FADE[1] - BLINK_FADE[0]), 0.0, 1.0)
        scale = 1.0 + (ratio - 1.0) * fade * skin
        deltas[names.index(f"eyeBlink_{side}")] *= scale[:, None]
        report["blink_scale"][side] = ratio
    # ... and the shapes that read weaker on FLAME's face than on ICT's are scaled up
    gains = shape_gains(names)
    deltas *= gains[:, None, None]
    report["shape_gain"] = {n: float(g) for n, g in zip(names, gains) if g != 1.0}

    # 6. the mouth interior, by the similarity, shifted as the registration moved the lips
    outer_lips = np.zeros(len(fv), bool)
    outer_lips[skin] = (tuck < 1.0) & lip_region(fv[skin], flame_lmk)
    offset = (fv[outer_lips] - registered[outer_lips[skin]]).mean(0)
    interior_idx = np.concatenate([np.arange(ICT_INTERIOR["socket"].start, ICT_INTERIOR["socket"].stop),
                                   np.arange(ICT_INTERIOR["gums_tongue"].start, ICT_INTERIOR["teeth"].stop)])
    remap = np.full(len(iv), -1)
    remap[interior_idx] = np.arange(len(interior_idx))
    interior_faces = remap[ict["faces"][(remap[ict["faces"]] >= 0).all(1)]]
    interior_v = iv[interior_idx] + offset
    interior_d = ict_deltas[:, interior_idx] * gains[:, None, None]
    parts = interior_parts(ict["faces"], ict["islands"], interior_idx, interior_d[names.index("jawOpen")], iv)
    interior_v[:, 1] -= UPPER_TEETH_DROP_MM * 1e-3 * bite_drop(interior_v, parts, interior_d[names.index("jawOpen")])
    interior_v[:, 1] -= TONGUE_DROP_MM * 1e-3 * tongue_drop(interior_v, parts, TONGUE_FRONT_Z)
    interior_d[names.index("jawOpen"), :, 1] -= TONGUE_OPEN_DROP_MM * 1e-3 * tongue_drop(interior_v, parts, TONGUE_ROOT_Z)
    report["interior_offset_mm"] = (1e3 * offset).tolist()

    # 7. paint and masks
    eyeball = {side: np.isin(np.arange(len(fv)), np.asarray(rng)) for side, rng in FLAME_EYEBALL.items()}
    rest_lmk = embed(fv, ff, flame["landmark_faces"], flame["landmark_bary"])
    mucosa = np.zeros(len(fv), bool)
    mucosa[skin] = tuck >= 1.0
    depth = np.zeros(len(fv))
    depth[skin] = mouth_depth(lip_coordinates(fv[skin], skin_faces, rest_lmk), flame_lips)
    painted = paint_avatar(fv, ff, skin, eyeball, rest_lmk, mucosa, depth, interior_v, parts)
    lip_mask = skin & lip_region(fv, flame_lmk)
    lip_labels = np.zeros(len(fv), np.int8)
    lip_labels[skin] = flame_lips
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "vertices": fv.astype(np.float32),
        "faces": ff.astype(np.int32),
        "blendshape_names": np.array(names),
        "blendshape_deltas": deltas.astype(np.float32),
        "landmark_faces": flame["landmark_faces"],
        "landmark_bary": flame["landmark_bary"].astype(np.float32),
        "joint_regressor": flame["joint_regressor"].astype(np.float32),
        "mask_skin": skin,
        "mask_eyeball_L": eyeball["L"],
        "mask_eyeball_R": eyeball["R"],
        "mask_face": in_face,
        "mask_lips": lip_mask,
        "mask_lip_upper": lip_mask & (lip_labels == transfer.UPPER),
        "mask_lip_lower": lip_mask & (lip_labels == transfer.LOWER),
        "interior_vertices": interior_v.astype(np.float32),
        "interior_faces": interior_faces.astype(np.int32),
        "interior_deltas": interior_d.astype(np.float32),
        "interior_parts": parts,
        **painted,
    }
    context = {"ict_vertices": iv, "ict_deltas": ict_deltas, "ict_faces": ict["faces"], "registered": registered,
               "ict_lips": ict_lips, "ict_lmk": ict_lmk, "flame_lmk": flame_lmk, "lip_labels": lip_labels}
    report.update(quality(arrays, context))
    return arrays, report


def quality(arrays: dict, ctx: dict) -> dict:
    """Transfer error, mirror symmetry, NaN, lip and lid gaps: the figures of AVATAR_CARD.md."""
    names = [str(n) for n in arrays["blendshape_names"]]
    fv = arrays["vertices"].astype(np.float64)
    deltas = arrays["blendshape_deltas"].astype(np.float64)
    skin = arrays["mask_skin"]
    faces = arrays["faces"]
    skin_faces = faces[skin[faces].all(1)]
    reg = fv.copy()
    reg[skin] = ctx["registered"]
    # map FLAME's deltas back onto ICT's narrow face area and compare with ICT's own
    face_pts = ctx["ict_vertices"][:ICT_NARROW_FACE_END]
    back = transfer.closest_correspondence(
        face_pts, reg, skin_faces, ctx["ict_lips"][:ICT_NARROW_FACE_END], transfer.face_labels(skin_faces, ctx["lip_labels"])
    )
    mapped = back.carry(deltas / shape_gains(names)[:, None, None])  # the transfer's own error, before the gains
    ict_narrow = ctx["ict_deltas"][:, :ICT_NARROW_FACE_END]
    moving = np.linalg.norm(ict_narrow, axis=2) > 1e-4  # vertices ICT moves by more than 0.1 mm
    err = {}
    for s, name in enumerate(names):
        m = moving[s] & (back.distance < 0.003)
        err[name] = float(np.linalg.norm(mapped[s, m] - ict_narrow[s, m]) / max(np.linalg.norm(ict_narrow[s, m]), 1e-12))
    ict_face = ctx["ict_deltas"][:, :ICT_FACE_END]
    parts = arrays["mask_eyeball_L"] * 1 + arrays["mask_eyeball_R"] * 2
    mirror = transfer.mirror_correspondence(fv, faces, parts, {1: 2, 2: 1})
    ict_face_faces = ctx["ict_faces"][(ctx["ict_faces"] < ICT_FACE_END).all(1)]
    ict_mirror = transfer.mirror_correspondence(ctx["ict_vertices"][:ICT_FACE_END], ict_face_faces)
    sym = {}
    for name in names:
        if name.endswith("_L") and name[:-2] + "_R" in names:
            a, b = names.index(name), names.index(name[:-2] + "_R")
            sym[name[:-2]] = {
                "avatar": transfer.mirror_error(deltas[a], deltas[b], mirror, np.ones(len(fv), bool)),
                "ict": transfer.mirror_error(ict_face[a], ict_face[b], ict_mirror, np.ones(ICT_FACE_END, bool)),
            }
    lo, hi = mouth_box(ctx["flame_lmk"])
    middle = (fv[:, 0] > lo[0]) & (fv[:, 0] < hi[0])  # between the corners, where the lips meet
    up, low = arrays["mask_lip_upper"] & middle, arrays["mask_lip_lower"] & middle
    jaw, close = names.index("jawOpen"), names.index("mouthClose")
    lips = {}
    for label, pose in (("rest", fv), ("jawOpen", fv + deltas[jaw]), ("jawOpen+mouthClose", fv + deltas[jaw] + deltas[close])):
        gap, crossings = transfer.closure(pose, faces, up, low)
        lips[label] = {"gap_mm": 1e3 * gap, "crossings": crossings}
    # the same figures on ICT's own head, for reference: its lips touch at rest
    iv, ict_d = ctx["ict_vertices"], ctx["ict_deltas"]
    lo, hi = mouth_box(ctx["ict_lmk"])
    ict_lip = lip_region(iv, ctx["ict_lmk"]) & (iv[:, 0] > lo[0]) & (iv[:, 0] < hi[0])
    ict_lip[ICT_SKIN_END:] = False
    for label, pose in (("rest", iv), ("jawOpen", iv + ict_d[jaw]), ("jawOpen+mouthClose", iv + ict_d[jaw] + ict_d[close])):
        gap, crossings = transfer.closure(
            pose, ctx["ict_faces"], ict_lip & (ctx["ict_lips"] == transfer.UPPER), ict_lip & (ctx["ict_lips"] == transfer.LOWER)
        )
        lips[label].update({"ict_gap_mm": 1e3 * gap, "ict_crossings": crossings})
    lids = {}
    for side in ("L", "R"):
        lo, hi = eye_box(ctx["flame_lmk"], side)
        lid = transfer.label_opening(fv, skin_faces, lo, hi)
        near = np.all((fv >= lo - [0.004, 0.004, 0.0]) & (fv <= hi + [0.004, 0.004, 0.0]), axis=1)
        s = names.index(f"eyeBlink_{side}")
        lids[side] = {}
        for label, pose in (("open", fv), ("eyeBlink", fv + deltas[s])):
            gap, crossings = transfer.closure(pose, faces, near & (lid == transfer.UPPER), near & (lid == transfer.LOWER))
            lids[side][label] = {"gap_mm": 1e3 * gap, "crossings": crossings}
    return {
        "transfer_error": err,
        "transfer_error_median": float(np.median(list(err.values()))),
        "mirror_error": sym,
        "nan": int(sum(np.isnan(a).sum() for a in arrays.values() if a.dtype.kind == "f")),
        "lips": lips,
        "lids": lids,
    }


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed .npz with fixed entry dates, so that a rebuild gives the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (flame/, ict_facekit/)")
    parser.add_argument("--out", type=Path, default=HERE / "default_avatar.npz", help="output .npz")
    parser.add_argument("--report", type=Path, default=HERE / "default_avatar_quality.json", help="quality figures (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arrays, report = build(args.data)
    save_npz(args.out, arrays)
    args.report.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    log.info("wrote %s (%.1f MB) and %s", args.out, args.out.stat().st_size / 1e6, args.report)


if __name__ == "__main__":
    main()
