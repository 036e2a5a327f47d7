"""What Generate animates: recognise the target rig and write a take onto it.

Three kinds of target:

* the default avatar (a mesh made by ``avatar_object.add_avatar_object``), driven through
  ``rigmap_for_avatar``;
* an object made by the MPI FLAME Blender add-on: shape keys ``Exp1..Exp100`` and
  ``Pose1..Pose36`` and an armature with ``neck``, ``jaw``, ``left_eye`` and ``right_eye`` bones.
  The semantic channels are fitted by least squares onto the rig's own Exp deltas plus the jaw
  bone's rotation (linearised about the rest pose, from the ``jaw`` vertex group); the jaw angle
  goes to the jaw bone, the gaze channels (eyeLook*) to the eye bones as the rotations that move
  the default avatar's eyeballs, and the correctives of those joints (``Pose10..Pose36``) are
  keyed to ``(R - I)`` of their rotations, as FLAME's ``posedirs`` expect (Li et al., "Learning a
  model of facial shape and expression from 4D scans", Sec. 3: pose blendshapes driven by the
  elements of ``R(θ) - R(θ*)``);
* any mesh whose shape keys carry ARKit names (Faceit, ICT FaceKit, Ready Player Me), by name,
  with the matched channels reported.

Name-level recognition (:func:`describe_target`) is cheap, so the panel can call it while
drawing; :func:`prepare_target` does the numeric work when Generate starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy

from ..core.channels import ARKIT_CHANNELS
from ..core.errors import RigError

from ..core.flame import JOINT_NAMES as FLAME_BONES

AVATAR, MPI_FLAME, ARKIT = "default avatar", "MPI FLAME rig", "ARKit-named rig"
NECK_BONE, JAW_BONE = FLAME_BONES[1:3]
EYE_BONES = FLAME_BONES[3:]
# FLAME's pose feature stacks (R - I) of the joints neck, jaw, eye_L, eye_R (9 values each,
# row-major), keyed here as Pose1..Pose36: the neck's are Pose1..Pose9, the jaw's Pose10..Pose18,
# the eyes' Pose19..Pose36.
CORRECTIVES = {bone: tuple(f"Pose{9 * block + i}" for i in range(1, 10))
               for block, bone in enumerate(FLAME_BONES[1:])}
HEAD_BONE_NAMES = ("neck", "head")
"""Bones that take the head's motion on an ARKit-named rig, by the end of their lower-case name
("Neck", "mixamorig:Neck", "Head"), the neck first: FLAME's head motion turns about the neck joint."""
# FLAME's axes (x the subject's left, y up, z forward) in Blender's world for a head that faces the
# front view (-Y) standing up (+Z): the columns are FLAME's x, y, z.
_FLAME_IN_FRONT_VIEW = ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, -1.0, 0.0))
_JAW_TARGET = "jaw_pose_0"  # FLAME's jaw rotation about its x axis, radians (opening is positive)


@dataclass
class TargetInfo:
    """A recognised target, by names only.

    Attributes:
        kind: AVATAR, MPI_FLAME or ARKIT.
        mesh: the mesh object whose shape keys are driven.
        armature: the armature whose bones are driven: the jaw, eyes and neck of an MPI FLAME rig,
            the head bone of another rig; None when there is none.
        head_bone: the bone that takes the head's motion (``neck`` on FLAME rigs), or None.
        matched: semantic channels (ARKit names) the rig has a control for, by name; for an MPI
            rig every channel (fitted through the Exp keys and the jaw).
        unmatched: channels the rig cannot show.
        notes: things the user should know (a missing jaw bone, ...).
    """

    kind: str
    mesh: bpy.types.Object
    armature: bpy.types.Object | None = None
    head_bone: str | None = None
    matched: tuple[str, ...] = ()
    unmatched: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for the panel and the operator report."""
        text = f"{self.mesh.name}: {self.kind}, {len(self.matched)} of {len(ARKIT_CHANNELS)} channels"
        if self.unmatched:
            shown = ", ".join(self.unmatched[:6]) + (", …" if len(self.unmatched) > 6 else "")
            text += f" (no {shown})"
        return text


@dataclass
class Target:
    """A target ready to receive takes: the recognised rig and its rig map.

    Attributes:
        info: the :class:`TargetInfo`.
        rigmap: core.flame.rigmap.RigMap from the semantic channels (K,) to the rig's controls (M,).
        bones: the bones (``_Bone``) that are keyed, by name: an MPI FLAME rig's neck, jaw and eyes,
            another rig's head bone.
        eye_map: for MPI FLAME rigs with eye bones, (K, 6) left/right eye axis-angle (radians)
            per channel at weight 1 (``rigmap.eye_rotations``), else None.
        notes: what this target cannot show, for the operator's report.
    """

    info: TargetInfo
    rigmap: object
    bones: dict = field(default_factory=dict)
    eye_map: object = None
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """:meth:`TargetInfo.summary`, plus the channels a least-squares fit shows poorly
        (relative residual over 0.5 on the face) on an MPI FLAME rig."""
        poor = [c for c, r in self.rigmap.residual.items() if r > 0.5] if self.info.kind == MPI_FLAME else []
        notes = [f"poorly fitted: {', '.join(poor)}"] if poor else []
        return "; ".join([self.info.summary(), *self.info.notes, *self.notes, *notes])


def describe_target(obj) -> TargetInfo:
    """Recognise ``obj`` (the active object) as a target, from names only.

    An armature selects the FLAME mesh it deforms. Raises RigError with the fix when ``obj`` is
    None, not a mesh, has no shape keys, or has neither ARKit-named nor ``Exp<N>`` shape keys.
    """
    if obj is None:
        raise RigError("no active object: select the face mesh, or click 'Add Default FLAME Avatar'")
    if obj.type == "ARMATURE":
        meshes = [m for m in bpy.data.objects if m.type == "MESH" and (m.parent == obj or m.find_armature() == obj)
                  and "Exp1" in _key_names(m)]
        if not meshes:
            raise RigError(f"armature {obj.name!r} deforms no mesh with Exp1..Exp100 shape keys: select the face mesh")
        obj = meshes[0]
    if obj.type != "MESH":
        raise RigError(f"{obj.name!r} is a {obj.type.lower()}, not a mesh: select the face mesh to animate")
    names = _key_names(obj)
    if not names:
        raise RigError(f"mesh {obj.name!r} has no shape keys: use a rig with ARKit-named or FLAME Exp shape keys, "
                       "or click 'Add Default FLAME Avatar'")
    if "Exp1" in names:
        armature = obj.find_armature() or (obj.parent if obj.parent and obj.parent.type == "ARMATURE" else None)
        notes = ()
        if armature is None or JAW_BONE not in armature.data.bones:
            armature, notes = None, ("no armature with a 'jaw' bone: the jaw opens through the Exp keys only",)
        elif JAW_BONE not in obj.vertex_groups:
            armature, notes = None, ("no 'jaw' vertex group: the jaw opens through the Exp keys only",)
        head = NECK_BONE if armature is not None and NECK_BONE in armature.data.bones else None
        if armature is not None and head is None:
            notes += ("no 'neck' bone: the head stays still",)
        return TargetInfo(MPI_FLAME, obj, armature, head, ARKIT_CHANNELS, (), notes)
    from ..core.flame.rigmap import rigmap_for_shape_keys

    by_name = rigmap_for_shape_keys(sorted(names))
    matched = tuple(c for c in by_name.channels if c not in by_name.unmatched)
    from .avatar_object import AVATAR_PROPERTY

    armature, head = _head_bone(obj)
    notes = () if head else ("no neck or head bone: the head stays still",)
    if obj.get(AVATAR_PROPERTY):
        return TargetInfo(AVATAR, obj, armature, head, matched, by_name.unmatched, notes)
    if not matched:
        sample = ", ".join(sorted(names)[:4])
        raise RigError(f"none of the {len(names)} shape keys of {obj.name!r} ({sample}, …) has an ARKit name "
                       "(jawOpen, mouthSmile_L, …) or a FLAME name (Exp1..Exp100): rename them, or pick another mesh")
    return TargetInfo(ARKIT, obj, armature, head, matched, by_name.unmatched, notes)


def _head_bone(mesh_obj) -> tuple:
    """(armature, bone name) of the bone that turns ``mesh_obj``'s head, or (None, None)."""
    armature = mesh_obj.find_armature() or (mesh_obj.parent if mesh_obj.parent and mesh_obj.parent.type == "ARMATURE"
                                            else None)
    if armature is None:
        return None, None
    for wanted in HEAD_BONE_NAMES:
        for bone in armature.data.bones:
            if bone.name.lower().endswith(wanted):
                return armature, bone.name
    return None, None


def _key_names(obj) -> set[str]:
    keys = obj.data.shape_keys if obj.type == "MESH" else None
    return {block.name for block in keys.key_blocks[1:]} if keys else set()


def prepare_target(info: TargetInfo, avatar=None) -> Target:
    """Build the rig map for a recognised target (numpy; the default avatar loads on first use).

    Args:
        info: from :func:`describe_target`.
        avatar: the core.flame.avatar.Avatar whose channel deltas define the semantic channels;
            ``default_avatar()`` by default.

    Raises:
        RigError: an MPI FLAME mesh whose vertex count is not FLAME's.
        ModelFileError: the default avatar asset is missing.
    """
    from ..core.flame import rigmap as rigmaps

    names = [block.name for block in info.mesh.data.shape_keys.key_blocks[1:]]
    if info.kind == MPI_FLAME:
        if avatar is None:
            from ..core.flame.avatar import default_avatar

            avatar = default_avatar()
        return _prepare_mpi(info, avatar, names, rigmaps)
    bones = {info.head_bone: _Bone.facing_front(info.armature, info.head_bone)} if info.head_bone else {}
    if info.kind == ARKIT:
        return Target(info, rigmaps.rigmap_for_shape_keys(names), bones)
    if avatar is None:
        from ..core.flame.avatar import default_avatar

        avatar = default_avatar()
    return Target(info, rigmaps.rigmap_for_avatar(avatar), bones)


def _prepare_mpi(info: TargetInfo, avatar, names, rigmaps) -> Target:
    import numpy as np

    from ..core.flame.geometry import fit_similarity, rotation_about_x_basis

    mesh = info.mesh.data
    n = avatar.num_vertices
    if len(mesh.vertices) != n:
        raise RigError(f"{info.mesh.name!r} has Exp shape keys but {len(mesh.vertices)} vertices, not FLAME's {n}: "
                       "use a mesh made by the FLAME Blender add-on")
    blocks = mesh.shape_keys.key_blocks
    basis = _coords(blocks[0], n)  # (5023, 3) mesh-local rest
    exp_names = sorted((k for k in names if k.startswith("Exp") and k[3:].isdigit()), key=lambda k: int(k[3:]))
    to_flame = fit_similarity(basis, avatar.vertices)  # mesh-local -> FLAME frame
    deltas = np.stack([to_flame.vectors(_coords(blocks[k], n) - basis) for k in exp_names])  # (M, 5023, 3) metres
    targets = list(exp_names)
    bones, eye_map, notes = {}, None, []
    if info.armature is not None:
        for name in FLAME_BONES[1:]:
            if name in info.armature.data.bones:
                bones[name] = _Bone.from_rig(info.mesh, info.armature, name, to_flame)
        jaw_basis = rotation_about_x_basis(_group_weights(info.mesh, JAW_BONE), to_flame.points(basis),
                                           bones[JAW_BONE].head)  # (5023, 3) metres per radian
        deltas = np.concatenate([deltas, jaw_basis[None]])
        targets.append(_JAW_TARGET)
        if all(name in bones for name in EYE_BONES):
            eye_map, _ = rigmaps.eye_rotations(avatar)  # (K, 6): left, right eye axis-angle per channel
    rigmap = rigmaps.rigmap_by_least_squares(avatar, deltas, tuple(targets))
    return Target(info, rigmap, bones, eye_map, tuple(notes))


def _group_weights(mesh_obj, name: str):
    """(V,) weights of the vertex group ``name`` (0 where a vertex is not in it)."""
    import numpy as np

    group = mesh_obj.vertex_groups[name].index
    weights = np.zeros(len(mesh_obj.data.vertices))
    for vertex in mesh_obj.data.vertices:
        for g in vertex.groups:
            if g.group == group:
                weights[vertex.index] = g.weight
    return weights


def _coords(block, n: int):
    import numpy as np

    co = np.empty(n * 3, np.float32)
    block.data.foreach_get("co", co)
    return co.reshape(n, 3).astype(np.float64)  # (n, 3)


@dataclass
class _Bone:
    """A FLAME joint's bone on an MPI rig: its head (3,) and rest axes (3, 3, columns) in the
    FLAME frame, which turn FLAME-frame rotations into the pose bone's local ones."""

    armature: bpy.types.Object
    name: str
    head: object
    rest_in_flame: object

    @classmethod
    def from_rig(cls, mesh_obj, armature, name, to_flame):
        """The bone ``name`` of ``armature``, through ``to_flame`` (a geometry.Similarity from the
        mesh's local frame to FLAME's)."""
        import numpy as np

        bone = armature.data.bones[name]
        bone_in_mesh = np.array(mesh_obj.matrix_world.inverted() @ armature.matrix_world @ bone.matrix_local)
        axes = bone_in_mesh[:3, :3] / np.linalg.norm(bone_in_mesh[:3, :3], axis=0)
        return cls(armature, name, to_flame.points(bone_in_mesh[:3, 3]), to_flame.rotation @ axes)

    @classmethod
    def facing_front(cls, armature, name):
        """The bone ``name`` of a character that stands up (+Z) facing Blender's front view (-Y),
        as Blender characters do: its rest axes in FLAME's frame from the world's."""
        import numpy as np

        world = np.array(armature.matrix_world @ armature.data.bones[name].matrix_local)
        axes = world[:3, :3] / np.linalg.norm(world[:3, :3], axis=0)
        flame_in_world = np.array(_FLAME_IN_FRONT_VIEW).T  # (3, 3), columns: FLAME's axes in the world
        return cls(armature, name, flame_in_world.T @ world[:3, 3], flame_in_world.T @ axes)

    def local_rotations(self, rotations_flame):
        """(T, 3, 3) rotations in the FLAME frame → the pose bone's local rotations (T, 3, 3)."""
        from ..core.flame.geometry import change_of_basis

        return change_of_basis(self.rest_in_flame, rotations_flame)


def write_take(target: Target, clip, *, name: str | None = None, frame_start: int = 1) -> list:
    """Write ``clip`` onto the target as new Actions (existing Actions are never modified).

    Shape keys go through ``action_writer.write_action``; on an MPI FLAME rig the fitted Exp
    values and the neck, jaw and eye correctives go there too. Bone rotations go to a new Action on
    the armature (``<take>_pose``), on the same frames: an MPI FLAME rig's jaw and eyes, and on
    every rig with a head bone the clip's ``head_pose``.

    Args:
        target: from :func:`prepare_target`.
        clip: an AnimationClip over the semantic channels.
        name: the take's Action name (``action_writer.take_name`` by default).
        frame_start: the scene frame at which the clip's audio starts.

    Returns:
        The new Actions: the shape-key take, then the armature's take if there is one.
    """
    from .action_writer import take_name, write_action

    name = name or take_name(clip.audio_path, clip.emotion)
    key = target.info.mesh.data.shape_keys
    if target.info.kind == MPI_FLAME:
        return _write_mpi_take(target, clip, key, name, frame_start, write_action)
    actions = [write_action(key, clip, target.rigmap, name=name, frame_start=frame_start)]
    if target.info.head_bone and clip.head_pose is not None:
        from ..core.flame.geometry import axis_angle_to_matrix

        bone = target.bones[target.info.head_bone]
        local = {bone.name: bone.local_rotations(axis_angle_to_matrix(clip.head_pose))}
        actions.append(_write_bone_take(target.info.armature, clip.scene_frames(frame_start), local, f"{name}_pose", clip))
    return actions


def _write_mpi_take(target, clip, key, name, frame_start, write_action):
    import numpy as np

    from ..core.flame.geometry import axis_angle_to_matrix

    from ..core.clip import AnimationClip
    from .action_writer import target_values

    values = target_values(clip, target.rigmap)  # (T, M): Exp values (and the jaw angle, radians)
    exp_names = [t for t in target.rigmap.targets if t != _JAW_TARGET]
    controls = [values[:, [target.rigmap.targets.index(t) for t in exp_names]]]
    control_names = list(exp_names)
    poses = {}  # bone -> (T, 3) axis-angle in the FLAME frame
    if NECK_BONE in target.bones and clip.head_pose is not None:
        poses[NECK_BONE] = clip.head_pose
    if JAW_BONE in target.bones:
        poses[JAW_BONE] = np.zeros((clip.num_frames, 3))
        poses[JAW_BONE][:, 0] = values[:, target.rigmap.targets.index(_JAW_TARGET)]
        if clip.jaw_pose is not None:
            poses[JAW_BONE] += clip.jaw_pose
    if target.eye_map is not None:
        eyes = _channel_weights(clip, target.rigmap.channels) @ target.eye_map  # (T, 6)
        poses[EYE_BONES[0]], poses[EYE_BONES[1]] = eyes[:, :3], eyes[:, 3:]
    rotations = {bone: axis_angle_to_matrix(pose) for bone, pose in poses.items()}  # (T, 3, 3) each
    for bone, matrices in rotations.items():
        correctives = CORRECTIVES[bone]
        present = [i for i, p in enumerate(correctives) if p in key.key_blocks]
        controls.append((matrices - np.eye(3)).reshape(-1, 9)[:, present])
        control_names += [correctives[i] for i in present]
    weights = np.concatenate(controls, axis=1).astype(np.float32)  # (T, M')
    # The rig's controls are themselves the channels here: an identity map writes them as they are.
    controls_clip = AnimationClip(
        fps=clip.fps, intensity=clip.intensity, emotion_latent=clip.emotion_latent, weights=weights,
        channels=tuple(control_names), emotion=clip.emotion, audio_path=clip.audio_path,
        audio_offset=clip.audio_offset, meta=clip.meta)
    identity = type(target.rigmap)(
        channels=tuple(control_names), targets=tuple(control_names), matrix=np.eye(len(control_names), dtype=np.float32),
        residual={c: 0.0 for c in control_names}, unmatched=())
    actions = [write_action(key, controls_clip, identity, name=name, frame_start=frame_start)]
    if rotations:
        frames = clip.scene_frames(frame_start)
        local = {bone: target.bones[bone].local_rotations(matrices) for bone, matrices in rotations.items()}
        actions.append(_write_bone_take(target.info.armature, frames, local, f"{name}_pose", clip))
    return actions


def _channel_weights(clip, channels):
    """(T, K) the clip's weights in ``channels`` order (0 for a channel the clip lacks)."""
    import numpy as np

    weights = np.zeros((clip.num_frames, len(channels)))
    for k, channel in enumerate(channels):
        if channel in clip.channels:
            weights[:, k] = clip.channel(channel)
    return weights


def _write_bone_take(armature, frames, local_rotations: dict, name, clip):
    """A new Action on ``armature`` keying each bone's rotation (``local_rotations``: bone name →
    (T, 3, 3)) in the bone's own rotation mode, in bulk (``keyframe_points.add`` + ``foreach_set``)."""
    import numpy as np
    from mathutils import Matrix

    from .action_writer import finish_take, key_fcurve, new_take

    action, slot, channelbag = new_take(name, armature, "OBJECT")
    for bone_name, matrices in local_rotations.items():
        mode = armature.pose.bones[bone_name].rotation_mode
        rows, previous = [], None
        for matrix in matrices:
            rotation = Matrix(matrix.tolist())
            if mode == "QUATERNION":
                rows.append(tuple(rotation.to_quaternion()))
            elif mode == "AXIS_ANGLE":
                axis, angle = rotation.to_quaternion().to_axis_angle()
                rows.append((angle, *axis))
            else:
                previous = rotation.to_euler(mode, previous) if previous is not None else rotation.to_euler(mode)
                rows.append(tuple(previous))
        values = np.asarray(rows, np.float32)  # (T, 3 or 4)
        path = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(mode, "rotation_euler")
        for index in range(values.shape[1]):
            key_fcurve(channelbag, f'pose.bones["{bpy.utils.escape_identifier(bone_name)}"].{path}', frames,
                       values[:, index], index=index, group_name=bone_name)
    finish_take(armature, action, slot, clip)
    return action
