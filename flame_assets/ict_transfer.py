"""Registration of one face mesh onto another and blendshape transfer through the correspondence.

Build-time code of the default avatar (``flame_assets/build_default_avatar.py``), never imported
at run time: read an OBJ in file order, register a source surface onto a
target with non-rigid ICP, label upper/lower pieces around an opening (mouth, eyelids) so that a
correspondence never crosses it, and carry per-vertex displacements from the target topology to
the source topology by barycentric interpolation.

Methods (the similarity fit is ``core.flame.geometry.fit_similarity``): non-rigid ICP, Amberg et al., "Optimal Step Nonrigid ICP
Algorithms for Surface Registration" (CVPR 2007), as implemented by
``trimesh.registration.nricp_amberg``; deformation transfer by closest-point correspondence in
the spirit of Sumner & Popovic, "Deformation Transfer for Triangle Meshes" (SIGGRAPH 2004).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from scipy import sparse
from scipy.sparse import csgraph

from ..core.errors import ModelFileError

UPPER, LOWER = 1, 2


def read_obj(path: str | Path, with_faces: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an OBJ's ``v`` and ``f`` records in file order (no seam splitting, no merging).

    trimesh splits vertices on UV seams and cannot merge them back on meshes whose parts touch
    (ICT FaceKit's lashes sit exactly on the lids), so the records are read as written.

    Args:
        path: the .obj file.
        with_faces: also parse faces; polygons are fan-triangulated.

    Returns:
        vertices (N, 3) float64 in the file's units, and triangles (F, 3) int64 (0-based) or
        None when ``with_faces`` is False.

    Raises:
        ModelFileError: if the file is missing or has no vertices.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"OBJ file not found: {path}; check the --data folder")
    verts, tris = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("v "):
                verts.append(line[2:])
            elif with_faces and line.startswith("f "):
                idx = [int(tok.split("/", 1)[0]) - 1 for tok in line[2:].split()]
                tris.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1))
    if not verts:
        raise ModelFileError(f"{path} holds no 'v' records; is it an OBJ mesh?")
    vertices = np.array([row.split()[:3] for row in verts], dtype=np.float64)
    return vertices, (np.asarray(tris, dtype=np.int64) if with_faces else None)


def uv_islands(path: str | Path) -> np.ndarray:
    """(F,) UV-island id of every triangle of an OBJ, in :func:`read_obj`'s triangle order.

    Triangles that share a texture vertex (``vt``) are in one island. ICT FaceKit lays out
    parts that share a mesh in islands of their own (the tongue's top and underside apart from
    the gums), which tells them apart where the geometry is one connected piece.

    Raises:
        ModelFileError: if the file is missing or a face has no texture indices.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"OBJ file not found: {path}; check the --data folder")
    tris = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("f "):
                try:
                    idx = [int(tok.split("/")[1]) - 1 for tok in line[2:].split()]
                except (IndexError, ValueError):
                    raise ModelFileError(f"{path} has a face without texture coordinates: {line.strip()}") from None
                tris.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1))
    tris = np.asarray(tris, np.int64)
    n = int(tris.max()) + 1
    adj = sparse.coo_matrix((np.ones(tris.size), (tris.ravel(), np.roll(tris, 1, 1).ravel())), shape=(n, n))
    _, comp = csgraph.connected_components(adj, directed=False)
    return comp[tris[:, 0]]


def register_nonrigid(
    source: trimesh.Trimesh,
    target: trimesh.Trimesh,
    landmark_faces: np.ndarray,
    landmark_bary: np.ndarray,
    landmark_targets: np.ndarray,
    steps: tuple[tuple[float, float, float, int], ...] = (
        (0.02, 10.0, 0.5, 10),
        (0.01, 5.0, 0.5, 10),
        (0.005, 2.5, 0.5, 10),
        (0.002, 0.0, 0.0, 10),
    ),
) -> np.ndarray:
    """Deform ``source`` onto ``target`` with non-rigid ICP (Amberg et al. 2007).

    Args:
        source: the mesh to deform (V, 3), e.g. FLAME's skin, metres.
        target: the surface to fit, already in the source's frame (similarity applied).
        landmark_faces: (L,) triangle index into ``source.faces`` per landmark.
        landmark_bary: (L, 3) barycentric coordinates of each landmark.
        landmark_targets: (L, 3) where each landmark should land.
        steps: (stiffness, landmark weight, normal weight, iterations) per stage, soft to
            stiff-free; the stiffness is relative to the mesh scale of a head in metres.

    Returns:
        (V, 3) float64 registered source vertices.
    """
    return np.asarray(
        trimesh.registration.nricp_amberg(
            source,
            target,
            source_landmarks=(landmark_faces, landmark_bary),
            target_positions=landmark_targets,
            steps=[list(s) for s in steps],
            distance_threshold=0.02,
        ),
        dtype=np.float64,
    )


def surface_distance(vertices: np.ndarray, faces: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """(V,) shortest distance along the mesh edges from the nearest of ``sources`` (vertex ids);
    inf for vertices not connected to any source."""
    return csgraph.dijkstra(_edge_graph(vertices, faces), indices=sources, min_only=True)


def boundary_vertices(faces: np.ndarray) -> np.ndarray:
    """Sorted ids of the vertices on the mesh's open boundaries (edges used by one triangle)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    return np.unique(edges[trimesh.grouping.group_rows(edges, require_count=1)])


def _edge_graph(vertices: np.ndarray, faces: np.ndarray) -> sparse.csr_matrix:
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    length = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    n = len(vertices)
    graph = sparse.coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    return graph.maximum(graph.T)


def label_opening(
    vertices: np.ndarray,
    faces: np.ndarray,
    box_min: np.ndarray,
    box_max: np.ndarray,
    split_faces: np.ndarray | None = None,
) -> np.ndarray:
    """Label every vertex as above (UPPER) or below (LOWER) an opening such as the mouth.

    Inside a box that lies between the opening's corners, the surface falls into two pieces
    (upper and lower lip, or upper and lower lid). Each vertex of the mesh takes the label of
    the piece that is nearer along the surface, so a closest-point correspondence restricted
    to equal labels never pairs an upper-lip vertex with the lower lip (which tears the mouth
    corners under ``jawOpen``).

    Args:
        vertices: (V, 3) positions; y is up.
        faces: (F, 3) triangles over which distances along the surface are measured.
        box_min, box_max: (3,) corners of the box between the opening's corners.
        split_faces: (G, 3) triangles whose in-box part must split in two (default ``faces``);
            e.g. only the outer skin, where an inner mouth socket would join the lips.

    Returns:
        (V,) int8 labels: UPPER, LOWER, or 0 for vertices not connected to either piece.

    Raises:
        ValueError: if the in-box surface does not split into an upper and a lower piece.
    """
    split_faces = faces if split_faces is None else split_faces
    inside = np.all((vertices >= box_min) & (vertices <= box_max), axis=1)
    box_faces = split_faces[inside[split_faces].all(1)]
    if len(box_faces) == 0:
        raise ValueError("no triangles inside the opening's box; check the landmarks that place it")
    n = len(vertices)
    adj = sparse.coo_matrix(
        (np.ones(3 * len(box_faces)), (box_faces.ravel(), np.roll(box_faces, 1, 1).ravel())), shape=(n, n)
    )
    _, comp = csgraph.connected_components(adj, directed=False)
    used = np.unique(box_faces)
    ids, counts = np.unique(comp[used], return_counts=True)
    if len(ids) < 2:
        raise ValueError("the surface inside the opening's box is one piece: the opening is closed there")
    big = ids[np.argsort(counts)[-2:]]
    pieces = [used[comp[used] == c] for c in big]
    pieces.sort(key=lambda p: vertices[p, 1].mean(), reverse=True)  # upper piece first
    dist = np.stack([surface_distance(vertices, faces, p) for p in pieces])
    labels = np.where(dist[0] <= dist[1], UPPER, LOWER).astype(np.int8)
    labels[~np.isfinite(dist.min(0))] = 0
    return labels


def face_labels(faces: np.ndarray, vertex_labels: np.ndarray) -> np.ndarray:
    """(F,) label per triangle: the majority label of its three vertices."""
    lab = vertex_labels[faces]
    return np.where((lab == UPPER).sum(1) >= 2, UPPER, LOWER).astype(np.int8)


@dataclass(frozen=True)
class Correspondence:
    """Each source vertex as a point on a target triangle: ``faces`` (V,), ``bary`` (V, 3)."""

    target_faces: np.ndarray  # (V, 3) int64: the target vertex indices of the matched triangle
    bary: np.ndarray  # (V, 3) float64
    distance: np.ndarray  # (V,) float64, distance to the matched point (source units)

    def carry(self, target_values: np.ndarray) -> np.ndarray:
        """Interpolate per-target-vertex values (..., N, C) at the source vertices -> (..., V, C)."""
        picked = target_values[..., self.target_faces, :]  # (..., V, 3, C)
        return np.einsum("...vkc,vk->...vc", picked, self.bary)


def closest_correspondence(
    points: np.ndarray,
    target_vertices: np.ndarray,
    target_faces: np.ndarray,
    point_labels: np.ndarray | None = None,
    face_label: np.ndarray | None = None,
) -> Correspondence:
    """Match each point to the closest point on the target surface, optionally within equal labels.

    Args:
        points: (V, 3) query positions (registered source vertices).
        target_vertices: (N, 3) target positions, same frame.
        target_faces: (F, 3) target triangles.
        point_labels: (V,) label per point; a point matches only triangles of its label.
        face_label: (F,) label per target triangle (see :func:`face_labels`).

    Returns:
        the :class:`Correspondence`.
    """
    n = len(points)
    tri_idx = np.zeros((n, 3), np.int64)
    bary = np.zeros((n, 3))
    dist = np.zeros(n)
    groups = [(np.ones(n, bool), np.ones(len(target_faces), bool))]
    if point_labels is not None:
        groups = [(point_labels == lab, face_label == lab) for lab in np.unique(point_labels)]
    for pts_mask, tri_mask in groups:
        if not pts_mask.any():
            continue
        sub_faces = target_faces[tri_mask]
        mesh = trimesh.Trimesh(target_vertices, sub_faces, process=False)
        closest, d, tri = trimesh.proximity.closest_point(mesh, points[pts_mask])
        corners = target_vertices[sub_faces[tri]]
        b = trimesh.triangles.points_to_barycentric(corners, closest)
        b = np.clip(np.nan_to_num(b, nan=1.0 / 3.0), 0.0, 1.0)
        tri_idx[pts_mask] = sub_faces[tri]
        bary[pts_mask] = b / b.sum(1, keepdims=True)
        dist[pts_mask] = d
    return Correspondence(tri_idx, bary, dist)


def mirror_correspondence(vertices: np.ndarray, faces: np.ndarray, parts: np.ndarray | None = None,
                          mirror_part: dict[int, int] | None = None) -> Correspondence:
    """Each vertex's reflection through x = 0 as a point on the surface (for symmetry checks).

    Args:
        vertices: (V, 3) positions, x = 0 the plane of symmetry.
        faces: (F, 3) triangles.
        parts: (V,) int part id per vertex (skin, left eyeball, right eyeball), so that a
            reflected vertex lands on the mirrored part, not on whatever surface is nearest.
        mirror_part: part id -> the id of its mirror image (default: itself).
    """
    reflected = vertices * np.array([-1.0, 1.0, 1.0])
    if parts is None:
        return closest_correspondence(reflected, vertices, faces)
    mirror_part = mirror_part or {}
    target = np.array([mirror_part.get(int(p), int(p)) for p in parts])
    return closest_correspondence(reflected, vertices, faces, target, parts[faces[:, 0]])


def mirror_error(deltas_a: np.ndarray, deltas_b: np.ndarray, mirror: Correspondence, mask: np.ndarray) -> float:
    """Relative difference between ``deltas_b`` and the reflection of ``deltas_a``, on ``mask``.

    Args:
        deltas_a, deltas_b: (V, 3) displacements of a left/right pair.
        mirror: from :func:`mirror_correspondence` on the rest mesh.
        mask: (V,) bool vertices to compare.

    Returns:
        ||reflect(a) - b|| / ||b|| over the masked vertices (0 = perfect mirror images).
    """
    reflected = mirror.carry(deltas_a) * np.array([-1.0, 1.0, 1.0])
    num = np.linalg.norm((reflected - deltas_b)[mask])
    den = np.linalg.norm(deltas_b[mask])
    return float(num / max(den, 1e-12))


def closure(vertices: np.ndarray, faces: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> tuple[float, int]:
    """How an opening (lips, lids) closes: the gap between its two sides and how often they cross.

    Args:
        vertices: (V, 3) posed positions.
        faces: (F, 3) triangles.
        upper, lower: (V,) bool masks of the two sides.

    Returns:
        (gap, crossings): the smallest distance from an upper vertex to the lower surface
        (source units), and the number of lower-side edges that pass through the upper
        surface (0 when the sides do not interpenetrate).
    """
    up_faces, low_faces = faces[upper[faces].all(1)], faces[lower[faces].all(1)]
    low_mesh = trimesh.Trimesh(vertices, low_faces, process=False)
    gap = float(trimesh.proximity.closest_point(low_mesh, vertices[upper])[1].min())
    edges = np.unique(np.sort(np.concatenate([low_faces[:, [0, 1]], low_faces[:, [1, 2]], low_faces[:, [2, 0]]]), 1), axis=0)
    start, vec = vertices[edges[:, 0]], vertices[edges[:, 1]] - vertices[edges[:, 0]]
    length = np.linalg.norm(vec, axis=1)
    up_mesh = trimesh.Trimesh(vertices, up_faces, process=False)
    hits, ray, _ = up_mesh.ray.intersects_location(start, vec / length[:, None], multiple_hits=True)
    if len(ray) == 0:
        return gap, 0
    crossing = np.linalg.norm(hits - start[ray], axis=1) < length[ray]
    return gap, int(len(np.unique(ray[crossing])))
