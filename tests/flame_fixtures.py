"""A synthetic FLAME model on the real topology, for tests (never a real FLAME file).

Real: the template mesh and triangles (template.ply), the joint regressor, the 68-point
landmark embedding. Synthetic: shape/expression bases (smooth Gaussian bumps on the face, so the
basis is full rank and local like FLAME's), pose correctives and skinning weights (the jaw joint
drives the chin and lower lip, each eyeball its eye joint).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import trimesh

NUM_SHAPE, NUM_EXPRESSION = 300, 100
ROOT_PARENT = 2**32 - 1  # how FLAME files store the root's parent
SKIN, EYE_L, EYE_R = slice(0, 3931), slice(3931, 4477), slice(4477, 5023)


def _bumps(vertices: np.ndarray, count: int, rng: np.random.Generator, sigma: float, scale: float) -> np.ndarray:
    """(V, 3, count) smooth displacement fields centred on random front-facing skin vertices."""
    front = np.flatnonzero((vertices[SKIN, 2] > 0.0) & (vertices[SKIN, 1] > -0.1))
    centres = vertices[rng.choice(front, count, replace=False)]  # (count, 3)
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    d2 = ((vertices[:, None, :] - centres[None]) ** 2).sum(-1)  # (V, count)
    falloff = np.exp(-d2 / (2 * sigma**2))
    falloff[3931:] = 0.0  # eyeballs move only with their joints
    return scale * falloff[:, None, :] * directions.T[None]


def synthetic_flame_arrays(shared_data: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A FLAME 2020-layout dict of numpy arrays."""
    mesh = trimesh.load(shared_data / "flame" / "template.ply", process=False)
    v = np.asarray(mesh.vertices, dtype=np.float64)
    rng = np.random.default_rng(seed)
    shapedirs = np.concatenate(
        [_bumps(v, NUM_SHAPE, rng, 0.03, 0.004), _bumps(v, NUM_EXPRESSION, rng, 0.015, 0.002)], axis=2
    ).astype(np.float32)  # half the file size of float64; the loader takes either
    x, y, z = v.T
    jaw = np.clip((-0.04 - y) / 0.01, 0, 1) * np.clip(z / 0.02, 0, 1)
    neck = (1 - jaw) * np.clip((-0.1 - y) / 0.03, 0, 1)
    # Pose correctives only where the jaw and neck bend, as in FLAME: the forehead never moves.
    posedirs = rng.normal(scale=1e-3, size=(v.shape[0], 3, 36)) * (jaw + neck)[:, None, None]
    posedirs[:, :, 18:] = 0.0  # the eyes' (R - I) features correct nothing: an eye turns only its eyeball
    weights = np.zeros((v.shape[0], 5))
    weights[:, 2], weights[:, 1] = jaw, neck
    weights[:, 0] = 1 - jaw - neck
    weights[3931:] = 0.0
    weights[EYE_L, 3] = weights[EYE_R, 4] = 1.0
    regressor = np.load(shared_data / "flame" / "flame2020_joint_regressor.npz")["joint_regressor"]
    return {
        "v_template": v,
        "f": np.asarray(mesh.faces, dtype=np.uint32),
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.array([[ROOT_PARENT, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
    }


def write_numpy_pickle(arrays: dict[str, np.ndarray], path: Path) -> Path:
    """A FLAME 2023-style pickle: plain numpy arrays."""
    path.write_bytes(pickle.dumps(arrays, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def write_chumpy_pickle(arrays: dict[str, np.ndarray], path: Path, protocol: int = 2) -> Path:
    """A FLAME 2020-style pickle: chumpy ``Ch`` arrays and a scipy.sparse ``J_regressor``."""
    import chumpy
    import scipy.sparse

    data = dict(arrays)
    for key in ("v_template", "shapedirs", "weights"):
        data[key] = chumpy.array(arrays[key])
    data["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    data["bs_style"], data["bs_type"] = "lbs", "lrotmin"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


def tiny_flame_arrays() -> dict[str, np.ndarray]:
    """A valid FLAME-layout model on a tetrahedron (4 vertices, 4 faces, 300 shape + 10 expression
    components): kilobytes, so a test can corrupt one array and load it in milliseconds."""
    rng = np.random.default_rng(0)
    v_template = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]])
    weights = np.zeros((4, 5))
    weights[[0, 1, 2, 3], [0, 1, 2, 3]] = 1.0
    return {
        "v_template": v_template,
        "f": np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]], dtype=np.uint32),
        "shapedirs": rng.normal(scale=1e-3, size=(4, 3, NUM_SHAPE + 10)).astype(np.float32),
        "posedirs": rng.normal(scale=1e-4, size=(4, 3, 36)),
        "J_regressor": np.full((5, 4), 0.25),
        "weights": weights,
        "kintree_table": np.array([[ROOT_PARENT, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
    }


def write_landmark_embedding(path: Path, faces: np.ndarray, bary: np.ndarray) -> Path:
    """A static landmark embedding pickle as FLAME ships it (``lmk_face_idx``, ``lmk_b_coords``)."""
    path.write_bytes(pickle.dumps({"lmk_face_idx": faces, "lmk_b_coords": bary}, protocol=2))
    return path
