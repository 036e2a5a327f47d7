"""Build ``mediapipe_flame.npz``: where each of MediaPipe's 478 face landmarks sits on the FLAME mesh.

Run once (and again whenever the default avatar's geometry changes)::

    python -m emoflame.renderers.portrait.build_correspondence

Method: the default avatar (textured skin, lips and brows, dark-iris eyeballs, mouth interior)
is rendered through weak-perspective cameras in :data:`VIEWS` (head turned left/right and up/
down, the jaw a little open so that the inner lips part), MediaPipe Face Landmarker reads each
render, and every landmark is carried back onto the triangle under it (the render's own
triangle-ID raster), as a surface point (triangle, barycentric coordinates) of the avatar at
rest. Across views each landmark keeps the surface point nearest the median of its rest
positions (so one misread view does not move it). The iris points (468-477) are kept on the
eyeballs and every other point on the skin (a lid-margin point that lands on the eyeball takes
the nearest skin pixel within :data:`SNAP_PX`). The file also records each landmark's spread
across views (mm), how it was made, and the avatar it was made from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ...core.flame.avatar import default_avatar
from ...core.flame.geometry import axis_angle_to_matrix
from .camera import FLAME_TO_CAMERA, Camera
from .correspondence import OUT, avatar_digest
from .face import FaceReader
from .mesh import EYEBALL, MOUTH_INNER, SKIN, AvatarMesh
from .raster import Rasterizer
from .shading import paint

SIZE = 512
FACE_SPAN_PX = 300.0  # the 68 landmarks' width in the render
VIEWS = tuple((yaw, pitch, jaw) for yaw in (-15.0, 0.0, 15.0) for pitch in (-8.0, 0.0, 8.0) for jaw in (0.15, 0.3))
"""(yaw, pitch degrees, jawOpen weight) of each render."""
SNAP_PX = 4
BACKGROUND = 0.35


def render(mesh: AvatarMesh, raster: Rasterizer, weights: np.ndarray, yaw: float, pitch: float):
    """One render of the avatar: (SIZE, SIZE, 3) uint8, its :class:`Raster` and camera."""
    a = mesh.avatar
    v = mesh.posed(weights)
    rotation = FLAME_TO_CAMERA @ axis_angle_to_matrix(np.radians([pitch, yaw, 0.0]))[0]
    marks = a.landmarks(v[: a.num_vertices])
    scale = FACE_SPAN_PX / float(np.ptp(marks[:, 0]))
    centre, _ = Camera(scale, rotation, np.zeros(2)).project(marks.mean(0))
    camera = Camera(scale, rotation, SIZE / 2 - centre)
    points, depth = camera.project(v)
    r = raster(points, depth)
    hit = r.covered
    image = np.full((SIZE, SIZE, 3), BACKGROUND, np.float32)
    image[hit] = paint(mesh, v, rotation, r.triangle[hit], r.bary[hit])
    return (image * 255 + 0.5).astype(np.uint8), r


def surface_points(mesh: AvatarMesh, r, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (478, 2) pixels -> (478,) triangle (−1 where none) and (478, 3) barycentric
    coordinates under each, iris points on eyeballs and the rest on skin."""
    tri = np.full(len(landmarks), -1, np.int64)
    bary = np.zeros((len(landmarks), 3))
    kind = np.where(r.covered, mesh.kind[np.maximum(r.triangle, 0)], -1)
    h, w = r.shape
    for i, (x, y) in enumerate(landmarks):
        want = (EYEBALL,) if i >= 468 else (SKIN, MOUTH_INNER)
        best = None
        cx, cy = int(round(x)), int(round(y))
        for dy in range(-SNAP_PX, SNAP_PX + 1):
            for dx in range(-SNAP_PX, SNAP_PX + 1):
                px, py = cx + dx, cy + dy
                if 0 <= px < w and 0 <= py < h and kind[py, px] in want:
                    d = dx * dx + dy * dy
                    if best is None or d < best[0]:
                        best = (d, px, py)
        if best is not None:
            _, px, py = best
            tri[i], bary[i] = r.triangle[py, px], r.bary[py, px]
    return tri, bary


def build(out: Path = OUT) -> dict:
    """Render, read, carry back and combine; write ``out``. Returns a summary."""
    avatar = default_avatar()
    mesh = AvatarMesh.of(avatar)
    raster = Rasterizer(mesh.faces, (SIZE, SIZE))
    rest = np.vstack([avatar.vertices, avatar.interior.vertices]).astype(np.float64)
    jaw = avatar.blendshape_names.index("jawOpen")
    candidates = []  # per view: (tri (478,), bary (478, 3))
    with FaceReader(num_faces=1) as reader:
        for yaw, pitch, jaw_open in VIEWS:
            weights = np.zeros(len(avatar.blendshape_names), np.float32)
            weights[jaw] = jaw_open
            image, r = render(mesh, raster, weights, yaw, pitch)
            faces = reader.read(image)
            if not faces:
                continue
            candidates.append(surface_points(mesh, r, faces[0].points[:, :2]))
    raster.close()
    if len(candidates) < len(VIEWS) // 2:
        raise RuntimeError(f"MediaPipe found the avatar in {len(candidates)} of {len(VIEWS)} renders; "
                           "the renders are not face-like enough to build a correspondence")
    tris = np.stack([c[0] for c in candidates])    # (views, 478)
    barys = np.stack([c[1] for c in candidates])   # (views, 478, 3)
    found = tris >= 0
    positions = np.einsum("vlk,vlkc->vlc", barys, rest[mesh.faces[np.maximum(tris, 0)]])
    positions[~found] = np.nan
    median = np.nanmedian(positions, axis=0)        # (478, 3)
    dist = np.linalg.norm(positions - median, axis=2)
    dist[~found] = np.inf
    pick = np.argmin(dist, axis=0)
    idx = np.arange(tris.shape[1])
    triangle, bary = tris[pick, idx], barys[pick, idx]
    if np.any(triangle < 0):
        raise RuntimeError(f"landmarks {np.flatnonzero(triangle < 0).tolist()} landed on no avatar surface")
    spread_mm = np.nanmedian(np.where(found, dist, np.nan), axis=0) * 1000
    how = {"method": __doc__.split("\n\n")[2].replace("\n", " "), "views": VIEWS, "size_px": SIZE,
           "face_span_px": FACE_SPAN_PX, "views_read": len(candidates),
           "command": "python -m emoflame.renderers.portrait.build_correspondence"}
    np.savez_compressed(out, triangle=triangle.astype(np.int32), bary=bary.astype(np.float32),
                        spread_mm=spread_mm.astype(np.float32), avatar_sha256=np.array(avatar_digest(avatar)),
                        how=np.array(json.dumps(how)))
    return {"views_read": len(candidates), "spread_mm_median": float(np.median(spread_mm)),
            "spread_mm_p95": float(np.percentile(spread_mm, 95)), "out": str(out)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    print(json.dumps(build(parser.parse_args(argv).out), indent=1))


if __name__ == "__main__":
    main()
