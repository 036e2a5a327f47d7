"""The FLAME head model as a torch module: buffers from a model file, the forward in ``lbs``.

Names and behaviour follow smplx's ``FLAME`` (``betas``, ``expression``, ``global_orient``,
``neck_pose``, ``jaw_pose``, ``leye_pose``, ``reye_pose``, ``transl``), with the file loaded
through :mod:`.loading` (no code runs) and 68 landmarks from a static barycentric embedding.
Reference: Li et al., "Learning a model of facial shape and expression from 4D scans",
SIGGRAPH Asia 2017, Sec. 3.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ModelFileError
from .lbs import lbs, vertices2landmarks
from .loading import (SHAPE_SPACE_DIM, check_flame_arrays, file_sha256, load_flame_arrays,
                      load_landmark_embedding)

log = logging.getLogger(__name__)

EXPRESSION_SPACE_DIM = 100
JOINT_NAMES = ("global", "neck", "jaw", "eye_L", "eye_R")
"""FLAME's 5 joints in pose order; ``eye_L`` is the subject's left (+x)."""


@dataclass
class FlameOutput:
    """What :meth:`FLAME.forward` returns (all metres, in the model's dtype and device).

    Attributes:
        vertices: (B, V, 3) posed vertices, V = 5023.
        joints: (B, 5, 3) posed joints in :data:`JOINT_NAMES` order.
        landmarks: (B, L, 3) landmarks, L = 68 for the static 68-point embedding.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    landmarks: torch.Tensor


class FLAME(nn.Module):
    """FLAME: template + shape + expression blendshapes, pose correctives, 5-joint LBS.

    Model data lives in buffers (``v_template`` (V, 3), ``shapedirs`` (V, 3, num_betas +
    num_expression), ``posedirs`` (36, V * 3), ``J_regressor`` (5, V), ``parents`` (5,),
    ``lbs_weights`` (V, 5), ``faces`` (F, 3), ``lmk_faces_idx`` (L,), ``lmk_bary_coords``
    (L, 3)), so ``.to(device, dtype)`` moves all of it.

    Args:
        arrays: the model file's arrays (:func:`.loading.load_flame_arrays`), checked by
            :func:`.loading.check_flame_arrays` before any buffer is built.
        lmk_faces_idx: (L,) integer face index per landmark, each in [0, F).
        lmk_bary_coords: (L, 3) finite barycentric coordinates per landmark.
        num_betas: shape components to use, at most 300 (fewer if the file has fewer).
        num_expression: expression components to use, at most 100 (fewer if the file has fewer).
        dtype: floating dtype of the buffers.
        source: what to name in messages (the model file's path).

    Raises:
        ModelFileError: any check of :func:`.loading.check_flame_arrays` fails (the array, what
            was found and the fix named), or the landmark embedding does not fit the faces.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        lmk_faces_idx: np.ndarray,
        lmk_bary_coords: np.ndarray,
        num_betas: int = SHAPE_SPACE_DIM,
        num_expression: int = EXPRESSION_SPACE_DIM,
        dtype: torch.dtype = torch.float32,
        source: str = "FLAME arrays",
    ):
        super().__init__()
        check_flame_arrays(arrays, source)
        faces = arrays["f"]
        lmk_faces_idx, lmk_bary_coords = np.asarray(lmk_faces_idx), np.asarray(lmk_bary_coords)
        _check_landmarks(lmk_faces_idx, lmk_bary_coords, len(faces), source)
        v_template, shapedirs, posedirs = arrays["v_template"], arrays["shapedirs"], arrays["posedirs"]
        self.num_betas = min(num_betas, SHAPE_SPACE_DIM)
        self.num_expression = min(num_expression, shapedirs.shape[2] - SHAPE_SPACE_DIM)
        parents = arrays["kintree_table"][0].astype(np.int64)
        parents[0] = -1  # the file stores the root's parent as 2**32 - 1

        def buffer(name, value, kind=dtype):
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(value), dtype=kind))

        buffer("v_template", v_template)
        buffer(
            "shapedirs",
            np.concatenate(
                [shapedirs[:, :, : self.num_betas],
                 shapedirs[:, :, SHAPE_SPACE_DIM: SHAPE_SPACE_DIM + self.num_expression]],
                axis=2,
            ),
        )
        buffer("posedirs", posedirs.reshape(-1, posedirs.shape[-1]).T)  # (36, V * 3)
        buffer("J_regressor", arrays["J_regressor"])
        buffer("lbs_weights", arrays["weights"])
        buffer("parents", parents, torch.int64)
        buffer("faces", faces.astype(np.int64), torch.int64)
        buffer("lmk_faces_idx", lmk_faces_idx.astype(np.int64), torch.int64)
        buffer("lmk_bary_coords", lmk_bary_coords)
        self.source_path: Path | None = None
        self.file_sha256: str | None = None

    def extra_repr(self) -> str:
        return (f"num_betas={self.num_betas}, num_expression={self.num_expression}, "
                f"num_vertices={self.v_template.shape[0]}, source={self.source_path}")

    @property
    def expression_dirs(self) -> torch.Tensor:
        """(V, 3, num_expression) expression basis, metres per unit coefficient."""
        return self.shapedirs[:, :, self.num_betas:]

    def forward(
        self,
        betas: torch.Tensor | None = None,
        expression: torch.Tensor | None = None,
        global_orient: torch.Tensor | None = None,
        neck_pose: torch.Tensor | None = None,
        jaw_pose: torch.Tensor | None = None,
        leye_pose: torch.Tensor | None = None,
        reye_pose: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> FlameOutput:
        """Posed vertices, joints and landmarks. Any argument left out is zero.

        Args:
            betas: (B, n) shape coefficients, n <= num_betas (missing trailing ones are zero).
            expression: (B, n) expression coefficients, n <= num_expression.
            global_orient, neck_pose, jaw_pose, leye_pose, reye_pose: (B, 3) axis-angle, radians.
            transl: (B, 3) translation, metres.

        Returns:
            :class:`FlameOutput` with ``vertices`` (B, V, 3), ``joints`` (B, 5, 3) and
            ``landmarks`` (B, L, 3), metres.

        Raises:
            ValueError: batch sizes disagree, or more coefficients than the model has.
        """
        given = [t for t in (betas, expression, global_orient, neck_pose, jaw_pose, leye_pose, reye_pose, transl)
                 if t is not None]
        batch = given[0].shape[0] if given else 1
        if any(t.shape[0] != batch for t in given):
            raise ValueError(f"FLAME inputs disagree in batch size: {[tuple(t.shape) for t in given]}")
        like = self.v_template
        coefficients = torch.cat(
            [_padded(betas, self.num_betas, batch, like, "betas"),
             _padded(expression, self.num_expression, batch, like, "expression")], dim=1)
        pose = torch.cat(
            [_padded(p, 3, batch, like, name) for name, p in
             (("global_orient", global_orient), ("neck_pose", neck_pose), ("jaw_pose", jaw_pose),
              ("leye_pose", leye_pose), ("reye_pose", reye_pose))], dim=1)  # (B, 15)
        vertices, joints = lbs(coefficients, pose, self.v_template, self.shapedirs, self.posedirs,
                               self.J_regressor, self.parents, self.lbs_weights)
        if transl is not None:
            vertices = vertices + transl.unsqueeze(1)
            joints = joints + transl.unsqueeze(1)
        landmarks = vertices2landmarks(vertices, self.faces, self.lmk_faces_idx, self.lmk_bary_coords)
        return FlameOutput(vertices=vertices, joints=joints, landmarks=landmarks)


def _padded(value: torch.Tensor | None, size: int, batch: int, like: torch.Tensor, name: str) -> torch.Tensor:
    """(B, size) in ``like``'s dtype/device: zeros if None, zero-padded if shorter."""
    if value is None:
        return like.new_zeros(batch, size)
    if value.dim() != 2 or value.shape[1] > size:
        raise ValueError(f"{name} has shape {tuple(value.shape)}, expected (B, n) with n <= {size}")
    value = value.to(like)
    return torch.nn.functional.pad(value, [0, size - value.shape[1]])


def _check_landmarks(faces_idx: np.ndarray, bary: np.ndarray, num_faces: int, source: str) -> None:
    """(L,) integer indices in [0, num_faces) and (L, 3) finite coordinates, else ModelFileError."""
    fix = "give the landmark embedding made for this model (flame_static_embedding_68.pkl), or none"
    if faces_idx.ndim != 1 or faces_idx.dtype.kind not in "iu" or bary.shape != (len(faces_idx), 3):
        raise ModelFileError(f"{source}: a landmark embedding of indices {faces_idx.shape} {faces_idx.dtype} and "
                             f"coordinates {bary.shape}, needs (L,) integers and (L, 3); {fix}")
    low, high = (int(faces_idx.min()), int(faces_idx.max())) if len(faces_idx) else (0, 0)
    if low < 0 or high >= num_faces:
        raise ModelFileError(f"{source}: the landmark embedding refers to face {low if low < 0 else high}, but "
                             f"the model has faces 0 to {num_faces - 1}; {fix}")
    if bary.dtype.kind not in "iuf" or not np.isfinite(bary).all():
        raise ModelFileError(f"{source}: the landmark embedding's coordinates are not finite numbers; {fix}")


def load_flame_model(
    path: str | Path,
    landmark_embedding: str | Path | None = None,
    num_betas: int = SHAPE_SPACE_DIM,
    num_expression: int = EXPRESSION_SPACE_DIM,
    dtype: torch.dtype = torch.float32,
) -> FLAME:
    """Load a user's FLAME model file safely (no code in it runs) as a :class:`FLAME` module.

    Args:
        path: FLAME 2020 ``generic_model.pkl``, FLAME 2023 ``flame2023.pkl`` or
            ``flame2023_Open.pkl`` (from https://flame.is.tue.mpg.de).
        landmark_embedding: a 68-point static embedding pickle (``lmk_face_idx``,
            ``lmk_b_coords``); None uses the default avatar's embedding (the same 68 points,
            shipped in ``flame_assets``).
        num_betas, num_expression, dtype: as :class:`FLAME`.

    Returns:
        The model on CPU, with ``source_path`` and ``file_sha256`` set (the rig-map cache key).

    Raises:
        FileNotFoundError: ``path`` or ``landmark_embedding`` does not exist.
        ModelFileError: the file refuses to load safely (code, bombs, forged dtypes), is not a
            FLAME file (missing keys named), or has arrays that fail
            :func:`.loading.check_flame_arrays` (shape, dtype, finiteness, faces, kinematic tree).
            Never a raw pickle, memory, recursion or index error.
    """
    path = Path(path).expanduser()
    arrays = load_flame_arrays(path)
    if landmark_embedding is None:
        from .avatar import default_avatar

        avatar = default_avatar()
        lmk_faces_idx, lmk_bary_coords = avatar.landmark_faces, avatar.landmark_bary
    else:
        lmk_faces_idx, lmk_bary_coords = load_landmark_embedding(landmark_embedding)
    model = FLAME(arrays, lmk_faces_idx, lmk_bary_coords, num_betas, num_expression, dtype, source=str(path))
    model.source_path = path
    model.file_sha256 = file_sha256(path)
    log.info("loaded FLAME model %s (%d shape, %d expression components)", path, model.num_betas,
             model.num_expression)
    return model
