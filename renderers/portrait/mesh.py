"""The avatar as one triangle list: skin, eyeballs and the mouth interior, posed by weights and a head pose.

The portrait animator rasterises everything the camera may see in one pass, so that the lips
hide the teeth and the lids the eyeballs by depth alone. Head motion is FLAME's neck rotation
(``clip.head_pose``, axis-angle radians about the neck joint in FLAME's frame) applied as a
rigid rotation of the head that fades out down the neck: every vertex above the chin turns
fully, the neck blends to still over :data:`NECK_BLEND_METRES` below it (standing in for
FLAME's linear-blend-skinning weights, which the default avatar does not carry).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.channels import ARKIT_CHANNELS
from ...core.errors import RigError
from ...core.flame import JOINT_NAMES
from ...core.flame.avatar import INTERIOR_PARTS
from ...core.flame.rigmap import rigmap_for_avatar
from ...core.flame.geometry import axis_angle_to_matrix

SKIN, EYEBALL, MOUTH_INNER, INTERIOR = 0, 1, 2, 3
"""Kinds of triangle: photo skin (warped), eyeball (warped), the mouth's inner surfaces and the
teeth, gums, tongue and throat (both painted from the avatar)."""
NECK_BLEND_METRES = 0.06
"""Height over which the head's rotation fades to nothing down the neck."""
CHIN_LANDMARK = 8          # iBUG-68's chin
CHIN_MARGIN_METRES = 0.01  # the jaw's underside turns with the head too


@dataclass(frozen=True)
class AvatarMesh:
    """The default avatar's skin, eyeballs and mouth interior as one mesh.

    Attributes:
        avatar: the :class:`~emoflame.core.flame.avatar.Avatar`.
        faces: (F, 3) int64 indices into the stacked vertices (the avatar's 5023, then the
            interior's).
        kind: (F,) int8 :data:`SKIN`, :data:`EYEBALL`, :data:`MOUTH_INNER` or :data:`INTERIOR`.
        teeth: (F,) bool, the interior's teeth (colour-matched to the photo's whites; the rest
            of the interior to its lips).
        lips: (F,) bool, skin triangles all of whose corners lie on the avatar's lips.
        neck: (3,) FLAME's neck joint at rest, metres.
        head_weight: (N,) how much of the head's rotation each stacked vertex takes, in [0, 1].
        to_avatar: (52, S) float32, ARKit channel weights (``ARKIT_CHANNELS``) -> the avatar's
            blendshape weights (``avatar.blendshape_names``), from the avatar's rig map.
        vertex_colors: (N, 3) float32 in [0, 1], the stacked vertices' colours.
        full_from: the height (FLAME y, metres) above which the head turns fully.
    """

    avatar: object
    faces: np.ndarray
    kind: np.ndarray
    teeth: np.ndarray
    lips: np.ndarray
    neck: np.ndarray
    head_weight: np.ndarray
    to_avatar: np.ndarray
    vertex_colors: np.ndarray
    full_from: float

    @classmethod
    def of(cls, avatar) -> "AvatarMesh":
        n = avatar.num_vertices
        faces = np.vstack([avatar.faces, avatar.interior.faces + n]).astype(np.int64)
        kind = np.full(len(faces), SKIN, np.int8)
        skin_faces = avatar.faces
        eye = avatar.masks["eyeball_L"] | avatar.masks["eyeball_R"]
        kind[: len(skin_faces)][eye[skin_faces].all(axis=1)] = EYEBALL
        # the band where the lips turn inwards too: warped, it stretched the photo's lip seam into
        # a pale ring around every open mouth
        kind[: len(skin_faces)][avatar.masks["mouth_inner"][skin_faces].any(axis=1)] = MOUTH_INNER
        kind[len(skin_faces):] = INTERIOR
        teeth = np.zeros(len(faces), bool)
        teeth[len(skin_faces):] = avatar.interior.parts[avatar.interior.faces[:, 0]] == INTERIOR_PARTS.index("teeth")
        lips = np.zeros(len(faces), bool)
        lips[: len(skin_faces)] = (kind[: len(skin_faces)] == SKIN) & avatar.masks["lips"][skin_faces].all(axis=1)
        neck = (avatar.joint_regressor @ avatar.vertices)[JOINT_NAMES.index("neck")]
        rest = np.vstack([avatar.vertices, avatar.interior.vertices])
        full_from = float(avatar.landmarks(avatar.vertices)[CHIN_LANDMARK, 1]) - CHIN_MARGIN_METRES
        rigmap = rigmap_for_avatar(avatar)
        to_avatar = np.zeros((len(rigmap.channels), len(avatar.blendshape_names)), np.float32)
        to_avatar[:, [avatar.blendshape_names.index(name) for name in rigmap.targets]] = rigmap.matrix
        colours = np.vstack([avatar.vertex_colors, avatar.interior.vertex_colors]).astype(np.float32)
        return cls(avatar, faces, kind, teeth, lips, neck, head_weight(rest[:, 1], full_from), to_avatar, colours, full_from)

    def avatar_weights(self, weights: np.ndarray, channels) -> np.ndarray:
        """Channel weights (T, K) whose columns ``channels`` names (a clip's) -> (T, S) float32
        avatar blendshape weights.

        Raises:
            RigError: a channel name that is not an ARKit channel.
        """
        unknown = [name for name in channels if name not in ARKIT_CHANNELS]
        if unknown:
            raise RigError(f"channels {unknown} are not ARKit channels; the portrait animator drives "
                           "core.channels.ARKIT_CHANNELS")
        rows = [ARKIT_CHANNELS.index(name) for name in channels]
        return np.asarray(weights, np.float32) @ self.to_avatar[rows]

    @property
    def num_vertices(self) -> int:
        return len(self.head_weight)

    def posed(self, weights: np.ndarray, head_pose: np.ndarray | None = None) -> np.ndarray:
        """Stacked vertices (N, 3) metres for avatar blendshape weights (S,) and a head pose
        (3,) axis-angle radians about the neck joint (None: still)."""
        a = self.avatar
        v = np.vstack([a.vertices_for(weights), a.interior.vertices_for(weights)]).astype(np.float64)
        if head_pose is None or not np.any(head_pose):
            return v
        rotation = axis_angle_to_matrix(head_pose)[0]
        turned = (v - self.neck) @ rotation.T + self.neck
        return v + self.head_weight[:, None] * (turned - v)


def head_weight(height: np.ndarray, full_from: float) -> np.ndarray:
    """Share of the head's rotation at FLAME heights ``height`` (any shape, metres): 1 above
    ``full_from``, a smoothstep down to 0 over :data:`NECK_BLEND_METRES` below it."""
    t = np.clip((np.asarray(height, np.float64) - full_from) / NECK_BLEND_METRES + 1.0, 0.0, 1.0)
    return t * t * (3 - 2 * t)
