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
   ratio of openings.
6. ICT's teeth, gums and tongue and their deltas come over by the similarity, shifted by the
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
from pathlib import Path

import numpy as np
import trimesh

from ..core.flame.geometry import fit_similarity
from ..core.flame.avatar import FORMAT_VERSION
from ..core.flame.loading import load_landmark_embedding
from . import ict_transfer as transfer

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
FLAME_SKIN = range(0, 3931)
FLAME_EYEBALL = {"L": range(3931, 4477), "R": range(4477, 5023)}  # L = subject's left, +x
ICT_NARROW_FACE_END = 6706  # ICT "narrow face area" [0:6705]: where the transfer error is measured
ICT_FACE_END = 9409  # ICT "full face area" vertices [0:9408]
ICT_HEAD_END = 11248  # ICT "head and neck" [9409:11247]: never moved by an expression
ICT_SKIN_END = 14062  # face, head, mouth socket and eye sockets: the registration target
ICT_INTERIOR = {"gums_tongue": range(14062, 17039), "teeth": range(17039, 21451)}
# 68-point landmarks: 36-41 the subject's right eye (-x), 42-47 the left eye (+x).
EYE_LANDMARKS = {"R": (36, 39, (37, 41), (38, 40)), "L": (42, 45, (43, 47), (44, 46))}
GAZE_ANGLE = {"Up": np.radians(25.0), "Down": np.radians(25.0), "In": np.radians(30.0), "Out": np.radians(30.0)}
FACE_FADE_Z = (-0.02, 0.02)  # metres along +z: no expression behind the first, all of it before the second
BLINK_FADE = (0.008, 0.018)  # metres from the eye centre: full ratio inside, none beyond
SKIN_RGB = (0.78, 0.60, 0.50)
LIP_RGB = (0.70, 0.42, 0.40)
SCLERA_RGB = (0.74, 0.72, 0.68)
IRIS_RGB = (0.10, 0.06, 0.035)  # dark: MediaPipe reads light irises as eye-look
PUPIL_RGB = (0.02, 0.02, 0.02)
IRIS_ANGLE, PUPIL_ANGLE = 0.50, 0.20  # radians from the eyeball's forward axis
BROW_RGB = (0.28, 0.20, 0.14)  # painted eyebrows: brow motion reads to eyes and to MediaPipe
BROW_HALF_WIDTH = (0.0045, 0.0025)  # metres, at the nasal end and at the tail
MOUTH_RGB = (0.42, 0.20, 0.20)  # the inner lip surfaces, as seen through an open mouth
TEETH_RGB, GUMS_RGB = (0.86, 0.83, 0.74), (0.66, 0.32, 0.33)


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
    """ICT neutral (cm), triangles, landmark vertex ids and (S, 26719, 3) expression deltas (cm)."""
    folder = data / "ict_facekit"
    neutral, faces = transfer.read_obj(folder / "generic_neutral_mesh.obj")
    names = ict_names(data)
    deltas = np.stack([transfer.read_obj(folder / f"{n}.obj", with_faces=False)[0] - neutral for n in names])
    lmk = json.loads((folder / "vertex_indices.json").read_text())["idx_to_landmark_verts"]
    return {"vertices": neutral, "faces": faces, "names": names, "deltas": deltas, "landmarks": np.asarray(lmk)}


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


def inner_lip_tuck(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray, lmk: np.ndarray) -> np.ndarray:
    """(V,) weight in [0, 1] of the mouth's inner surfaces: 1 from the mouth hole's rim to the
    inner lip contour (landmark 62 above, 66 below), falling smoothly to 0 at the outer lip
    contour (51, 57); 0 elsewhere.

    Args:
        vertices: (V, 3) skin vertices; faces: (F, 3) skin triangles; labels: (V,) UPPER/LOWER.
        lmk: (68, 3) landmarks.
    """
    rim = transfer.boundary_vertices(faces)
    rim = rim[vertices[rim, 1] > lmk[8, 1]]  # the mouth hole, not the neck
    dist = transfer.surface_distance(vertices, faces, rim)

    def reach(landmark: int) -> float:
        return dist[np.argmin(np.linalg.norm(vertices - lmk[landmark], axis=1))]

    weight = np.zeros(len(vertices))
    for label, inner, outer in ((transfer.UPPER, 62, 51), (transfer.LOWER, 66, 57)):
        weight = np.where(labels == label, _smoothstep((reach(outer) - dist) / (reach(outer) - reach(inner))), weight)
    return weight


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


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


def brow_weight(vertices: np.ndarray, lmk: np.ndarray) -> np.ndarray:
    """(V,) in [0, 1]: how much each vertex belongs to a painted eyebrow, by its distance from
    the brow landmarks' polylines (17-21, 22-26), thicker towards the nose."""
    weight = np.zeros(len(vertices))
    for start in (17, 22):
        line = lmk[start : start + 5]
        inner = 0 if start == 22 else 4  # the brow's nasal end is its thick end
        for k in range(4):
            a, b = line[k], line[k + 1]
            t = np.clip((vertices - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0)
            dist = np.linalg.norm(vertices - (a + t[:, None] * (b - a)), axis=1)
            along = np.abs(k + t - inner) / 4.0  # 0 at the nasal end, 1 at the tail
            half_width = BROW_HALF_WIDTH[0] + (BROW_HALF_WIDTH[1] - BROW_HALF_WIDTH[0]) * along
            weight = np.maximum(weight, _smoothstep((half_width - dist) / (0.5 * half_width)))
    return weight * (vertices[:, 2] > lmk[17:27, 2].min() - 0.01)


def eye_colours(vertices: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Sclera, iris and pupil by angle around the eyeball's forward (+z) axis."""
    centre = vertices[idx].mean(0)
    d = vertices[idx] - centre
    angle = np.arccos(np.clip(d[:, 2] / np.linalg.norm(d, axis=1), -1, 1))
    rgb = np.tile(SCLERA_RGB, (len(idx), 1))
    rgb[angle < IRIS_ANGLE] = IRIS_RGB
    rgb[angle < PUPIL_ANGLE] = PUPIL_RGB
    return rgb


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
    # lips, which only touch), fading out towards the outer lip contour (landmarks 51, 57).
    tuck = inner_lip_tuck(fv[skin], skin_faces, flame_lips, flame_lmk)
    moved = tuck[:, None] * (registered - fv[skin])
    fv = fv.copy()
    fv[skin] += moved
    report["inner_lip_tuck"] = {"vertices": int((tuck > 0).sum()), "max_mm": 1e3 * float(np.linalg.norm(moved, axis=1).max())}

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

    # 6. the mouth interior, by the similarity, shifted as the registration moved the lips
    outer_lips = np.zeros(len(fv), bool)
    outer_lips[skin] = (tuck < 1.0) & lip_region(fv[skin], flame_lmk)
    offset = (fv[outer_lips] - registered[outer_lips[skin]]).mean(0)
    interior_idx = np.arange(ICT_INTERIOR["gums_tongue"].start, ICT_INTERIOR["teeth"].stop)
    remap = np.full(len(iv), -1)
    remap[interior_idx] = np.arange(len(interior_idx))
    interior_faces = remap[ict["faces"][(remap[ict["faces"]] >= 0).all(1)]]
    interior_rgb = np.tile(GUMS_RGB, (len(interior_idx), 1))
    interior_rgb[interior_idx >= ICT_INTERIOR["teeth"].start] = TEETH_RGB
    report["interior_offset_mm"] = (1e3 * offset).tolist()

    # 7. colours and masks
    lip_mask = skin & lip_region(fv, flame_lmk)
    rgb = np.tile(SKIN_RGB, (len(fv), 1))
    rgb[lip_mask] = LIP_RGB
    brow = brow_weight(fv, flame_lmk)[:, None] * skin[:, None]
    rgb = (1.0 - brow) * rgb + brow * np.array(BROW_RGB)
    inner = np.zeros(len(fv), bool)
    inner[skin] = tuck >= 1.0
    inner &= np.abs(fv[:, 0] - flame_lmk[[60, 64], 0].mean()) < 0.5 * (flame_lmk[64, 0] - flame_lmk[60, 0])
    inner &= (fv[:, 1] > flame_lmk[57, 1]) & (fv[:, 1] < flame_lmk[51, 1])
    rgb[inner] = MOUTH_RGB  # inside the mouth, between the lips; not the skin by the corners
    eyeball = {}
    for side, rng in FLAME_EYEBALL.items():
        idx = np.asarray(rng)
        rgb[idx] = eye_colours(fv, idx)
        eyeball[side] = np.isin(np.arange(len(fv)), idx)
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
        "vertex_colors": rgb.astype(np.float32),
        "interior_vertices": (iv[interior_idx] + offset).astype(np.float32),
        "interior_faces": interior_faces.astype(np.int32),
        "interior_deltas": ict_deltas[:, interior_idx].astype(np.float32),
        "interior_colors": interior_rgb.astype(np.float32),
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
    mapped = back.carry(deltas)
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
