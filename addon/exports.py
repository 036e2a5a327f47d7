"""A take for game engines and other DCCs, through Blender's own exporters, from the same scene the
.blend holds (``addon.scene.build_scene``) or from a finished take in the user's file (Export Take).

* ``.glb`` / ``.gltf``: glTF 2.0 (io_scene_gltf2): the head with one morph target per shape key and
  the take as one animation of morph weights (and bone rotations on a FLAME rig), sampled on every
  frame, starting at 0 s with the audio (``.gltf`` is a single file with embedded buffers).
* ``.fbx``: FBX 7.4 (io_scene_fbx): the mesh with its blend shapes and the baked take, every frame
  keyed, textures embedded.
* ``.usdc`` / ``.usda`` / ``.usd``: USD (Blender's exporter): the mesh with UsdSkel blend shapes and
  a SkelAnimation of ``blendShapeWeights`` over the take's time codes (``timeCodesPerSecond`` = fps),
  the vertex colours as a primvar; no materials, because the exporter would write their images into
  a shared ``textures/`` folder beside the file, outside the transaction.

The Live Link CSV and FLAME parameters need no Blender (``core.exports``); :func:`export` writes any
of them from an AnimationClip.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from ..core.errors import EmoflameError, OutputError, RigError
from ..core.exports import BLENDER_SUFFIXES, CORE_SUFFIXES, SUFFIXES, write_core_export
from ..core.outputs import (Transaction, disk_full_error, free_bytes, is_disk_full, native_stderr_held,
                            native_stdout_to, output_path, write_error)
from .compat import assigned_channelbag

log = logging.getLogger(__name__)



def export_objects(face) -> list:
    """What an export carries: the face mesh, the armature that deforms it (a FLAME rig's jaw,
    neck and eyes) and that armature's other meshes; never cameras or lights."""
    objects = [face]
    rig = face.parent if face.parent is not None and face.parent.type == "ARMATURE" else None
    rig = rig or next((m.object for m in face.modifiers if m.type == "ARMATURE" and m.object), None)
    if rig is not None:
        objects += [rig] + [child for child in rig.children if child.type == "MESH" and child is not face]
    return objects


def write_blender_export(path, objects, scene=None, *, target=None) -> Path:
    """Export ``objects`` (and their animation over ``scene``'s frame range) to exactly ``path``,
    the format chosen by its suffix (callers write to a temporary name: ``core.outputs``).

    Args:
        path: ``.glb``, ``.gltf``, ``.fbx``, ``.usd``, ``.usdc`` or ``.usda``.
        objects: from :func:`export_objects`; they become the selection (Blender's exporters
            export the selection).
        scene: the scene whose frame range is the take's (the context's scene by default).
        target: the file ``path`` will become, for messages (``path`` itself by default).

    Raises:
        OutputError: an unknown suffix, or the exporter failed or wrote a truncated file (a full
            disk named as such: USD's writer reports it only as text and a file cut short).
    """
    path = Path(path)
    target = Path(target or path)
    suffix = path.suffix.lower()
    if suffix not in BLENDER_SUFFIXES:
        raise OutputError(f"{target}: {suffix or 'no suffix'} is not a format Blender's exporters write here; "
                          f"use one of {', '.join(BLENDER_SUFFIXES)}")
    scene = scene or bpy.context.scene
    debug = log.isEnabledFor(logging.DEBUG)
    result = None
    with _selected(objects, scene), native_stdout_to("stderr" if debug else "null"), native_stderr_held() as held:
        try:
            if suffix in (".glb", ".gltf"):
                result = _gltf(path, suffix)
            elif suffix == ".fbx":
                result = bpy.ops.export_scene.fbx(
                    filepath=str(path), check_existing=False, use_selection=True,
                    object_types={"MESH", "ARMATURE"}, add_leaf_bones=False, use_mesh_modifiers=False,
                    bake_anim=True, bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False,
                    bake_anim_force_startend_keying=True, bake_anim_step=1.0, bake_anim_simplify_factor=0.0,
                    path_mode="COPY", embed_textures=True)
            else:
                result = bpy.ops.wm.usd_export(
                    filepath=str(path), check_existing=False, selected_objects_only=True,
                    export_animation=True, export_shapekeys=True, export_armatures=True,
                    export_materials=False, export_mesh_colors=True, export_cameras=False, export_lights=False)
        except RuntimeError as exc:
            failure = exc
        else:
            failure = None
    for line in held.text.splitlines():
        if line.strip():
            log.debug("blender: %s", line.rstrip())
    if is_disk_full(failure) if failure else "No space left on device" in held.text:
        raise disk_full_error(target)
    if failure is not None:
        raise write_error(failure, target) from None
    if result is None or "FINISHED" not in result or not path.is_file() or not _complete(path):
        if free_bytes(path.parent) < MIN_FREE_BYTES:
            raise disk_full_error(target)
        raise OutputError(f"Blender's exporter wrote no complete {suffix} for {target.name}; run with --debug to see "
                          f"its output")
    return path


MIN_FREE_BYTES = 1 << 20
"""Below this much free space, an export that came out incomplete is put down to a full disk."""


def _complete(path: Path) -> bool:
    """A cheap check that the exporter's file is whole: glTF's binary header gives its length, a
    USD crate file its table of contents' offset; text formats end where their syntax closes."""
    size = path.stat().st_size
    if size == 0:
        return False
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(24)
        f.seek(max(0, size - 64))
        tail = f.read().rstrip()
    if suffix == ".glb":  # magic, version, total length (glTF 2.0 Sec. 4.4.3)
        return head[:4] == b"glTF" and int.from_bytes(head[8:12], "little") == size
    if head[:8] == b"PXR-USDC":  # bootstrap: magic, version (8 bytes), table of contents offset
        return 24 <= int.from_bytes(head[16:24], "little") < size
    if suffix == ".gltf":
        return tail.endswith(b"}")
    if head.startswith(b"#usda"):
        return tail.endswith(b")") or tail.endswith(b"}")
    return True  # FBX: its writer raises on a failed write


def _gltf(path: Path, suffix: str):
    addon = bpy.context.preferences.addons.get("io_scene_gltf2")
    preferences = addon.preferences if addon is not None else None
    embedded_before = getattr(preferences, "allow_embedded_format", None)
    if suffix == ".gltf" and preferences is not None:
        # One self-contained .gltf (buffers and images as data URIs): the exporter offers it only
        # with this preference; a separate .bin and images would be files outside the transaction.
        preferences.allow_embedded_format = True
    # The exporter logs to stdout (silenced around it) and through the root logger (stderr): only
    # the first, unless debugging.
    gltf_log = logging.getLogger("glTFImporter")
    propagate_before, gltf_log.propagate = gltf_log.propagate, log.isEnabledFor(logging.DEBUG)
    try:
        return bpy.ops.export_scene.gltf(
            filepath=str(path), check_existing=False, export_format="GLB" if suffix == ".glb" else "GLTF_EMBEDDED",
            use_selection=True, export_cameras=False, export_lights=False, export_apply=False,
            export_animations=True, export_animation_mode="SCENE", export_anim_scene_split_object=False,
            export_anim_slide_to_zero=True,
            export_force_sampling=True, export_optimize_animation_size=False, export_frame_step=1,
            export_morph=True, export_morph_normal=True, export_morph_animation=True, export_skins=True)
    finally:
        gltf_log.propagate = propagate_before
        if embedded_before is not None:
            preferences.allow_embedded_format = embedded_before


@contextmanager
def _selected(objects, scene):
    """Make ``objects`` the selection (and the first active) for an exporter, then restore."""
    view_layer = bpy.context.view_layer
    before = [o for o in scene.objects if o.select_get()]
    active = view_layer.objects.active
    for obj in scene.objects:
        obj.select_set(obj in objects)
    view_layer.objects.active = objects[0]
    try:
        yield
    finally:
        for obj in scene.objects:
            obj.select_set(obj in before)
        view_layer.objects.active = active


def export(clip, path, *, flame_model=None, force: bool = False) -> list[Path]:
    """Write ``clip`` in the formats the suffixes of ``path`` name, all or none.

    The scene is built once (:func:`addon.scene.build_scene`: the current Blender session is
    replaced by the clip's, as ``emoflame animate`` does) and every Blender format exported from
    it; .csv and .npz need no scene. Every file is written under a temporary name and renamed
    when all are complete (:class:`core.outputs.Transaction`).

    Args:
        clip: an AnimationClip.
        path: one path or a list; suffixes from :data:`SUFFIXES` (.blend, .glb, .gltf, .fbx,
            .usd, .usdc, .usda, .csv Live Link Face, .npz FLAME parameters).
        flame_model: a FLAME model file: the scene is that head rigged as the MPI FLAME add-on
            does, and .npz needs it.
        force: replace files that exist.

    Returns:
        The absolute paths written, in the order given.

    Raises:
        OutputError: an unknown suffix, a path given twice, a file that exists without ``force``,
            a folder that cannot be written or a full disk.
        ModelFileError: .npz without ``flame_model``, or a model file that fails to load.
    """
    paths = [output_path(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    for p in paths:
        if p.suffix.lower() not in SUFFIXES:
            raise OutputError(f"{p} should end in one of {', '.join(SUFFIXES)}")
    with Transaction(force=force) as outputs:
        outputs.check(paths, inputs=[Path(clip.audio_path)] if clip.audio_path else [])
        write_outputs(clip, paths, outputs, flame_model=flame_model)
        return outputs.commit()


def write_outputs(clip, paths, outputs: Transaction, *, flame_model=None, scene=None, face=None) -> None:
    """Stage every format of ``paths`` in ``outputs`` (committed by the caller).

    Args:
        scene, face: the scene built for ``clip`` and its face object; built here when a Blender
            format needs one and they are None.

    Raises:
        OutputError, ModelFileError: as :func:`export`.
    """
    model = None
    for path in paths:
        suffix = path.suffix.lower()
        if suffix in CORE_SUFFIXES:
            if suffix == ".npz" and model is None:
                from ..core.exports import load_model

                model = load_model(flame_model)
            outputs.write(path, lambda temporary: write_core_export(clip, temporary, model))
            continue
        if face is None:
            from .scene import build_scene

            scene, face, _ = build_scene(clip, flame_model=flame_model)
        if suffix == ".blend":
            from .blend_file import write_blend

            write_blend(outputs.stage(path), target=path)
        else:
            outputs.write(path, lambda temporary: write_blender_export(temporary, export_objects(face), scene,
                                                                       target=path))


# ---------------------------------------------------------------------------------------------
# A finished take in the user's file


def clip_from_take(obj, scene):
    """An AnimationClip read back from the take on ``obj``'s shape keys: one frame per scene frame
    of the take's range, the channels its ARKit-named keys carry (``mouthSmile_L`` or
    ``mouthSmileLeft`` spellings), the scene's frame rate, the recording the take was made from,
    and the head's motion where the rig has a head bone (its rotation taken back to FLAME's frame).

    Raises:
        RigError: no shape-key take, or no ARKit-named keys (an MPI rig's Exp keys have no Live
            Link meaning).
    """
    import numpy as np

    from ..core.channels import canonical_channel
    from ..core.clip import AnimationClip

    key = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    data = key.animation_data if key is not None else None
    if data is None or data.action is None:
        raise RigError("the active object has no take on its shape keys: Generate one first, then export")
    fcurves = assigned_channelbag(data).fcurves
    curves = {}
    for fcurve in fcurves:
        if fcurve.data_path.startswith('key_blocks["') and fcurve.data_path.endswith('"].value'):
            channel = canonical_channel(fcurve.data_path[len('key_blocks["'):-len('"].value')])
            if channel is not None:
                curves[channel] = fcurve
    if not curves:
        raise RigError(f"{obj.name!r} has no ARKit-named shape keys in its take; the Live Link CSV carries ARKit "
                       f"channels (export .glb, .fbx or .usd for this rig)")
    first, last = (int(round(v)) for v in data.action.frame_range)
    frames = np.arange(first, last + 1)
    fps = scene.render.fps / scene.render.fps_base
    weights = np.array([[curve.evaluate(float(f)) for curve in curves.values()] for f in frames], np.float32)
    return AnimationClip(fps=fps, intensity=np.zeros(len(frames), np.float32), emotion_latent=np.zeros((len(frames), 0)),
                         weights=weights, channels=tuple(curves), head_pose=_head_pose(obj, scene, frames),
                         emotion=str(data.action.get("emoflame_emotion", "neutral")),
                         audio_path=str(data.action.get("emoflame_audio", "")),
                         audio_offset=max(0.0, (first - scene.frame_start) / fps))


def _head_pose(obj, scene, frames):
    """(T, 3) axis-angle radians of the head bone on ``frames``, in FLAME's frame, or None."""
    import numpy as np

    from ..core.flame.geometry import matrix_to_axis_angle
    from . import rigs

    info = rigs.describe_target(obj)
    if not info.head_bone:
        return None
    rest = rigs.prepare_target(info).bones[info.head_bone].rest_in_flame  # (3, 3) bone axes in FLAME's frame
    bone = info.armature.pose.bones[info.head_bone]
    current = scene.frame_current
    local = []
    try:
        for frame in frames:
            scene.frame_set(int(frame))
            local.append(np.array(bone.matrix_basis.to_3x3()))
    finally:
        scene.frame_set(current)
    return matrix_to_axis_angle(rest @ np.array(local) @ rest.T).astype(np.float32)


class EMOFLAME_OT_export_take(bpy.types.Operator):
    """Export the active object's take: glTF, FBX, USD (through Blender's exporters) or a Live Link Face CSV"""

    bl_idname = "emoflame.export_take"
    bl_label = "Export Take…"
    bl_options = {"REGISTER"}

    filepath: StringProperty(name="File", subtype="FILE_PATH", description="The file to write; its suffix picks the format")
    filter_glob: StringProperty(default="*.glb;*.gltf;*.fbx;*.usd;*.usdc;*.usda;*.csv", options={"HIDDEN"})
    file_format: EnumProperty(
        name="Format", default="GLB",
        items=(("GLB", "glTF Binary (.glb)", "Mesh, morph targets and the take as a glTF animation"),
               ("GLTF", "glTF (.gltf)", "The same as one .gltf file with embedded buffers"),
               ("FBX", "FBX (.fbx)", "Blend shapes and the baked take"),
               ("USDC", "USD (.usdc)", "UsdSkel blend shapes and their animation"),
               ("USDA", "USD ASCII (.usda)", "The same as text"),
               ("CSV", "Live Link Face CSV (.csv)", "The 52 ARKit curves with timecode, as Unreal's importer reads")))

    @classmethod
    def poll(cls, context):
        return context.active_object is not None

    def invoke(self, context, event):
        if not self.filepath:
            self.filepath = bpy.path.ensure_ext(bpy.path.abspath("//take") if bpy.data.filepath else "take",
                                                self._suffix())
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def _suffix(self) -> str:
        return "." + self.file_format.lower()

    def execute(self, context):
        try:
            path = Path(bpy.path.abspath(self.filepath))
            if path.suffix.lower() not in BLENDER_SUFFIXES + (".csv",):
                path = path.with_name(path.name + self._suffix())
            path = output_path(path)
            face = _face_of(context.active_object)
            # The file browser has asked before overwriting, so a confirmed name is replaced.
            with Transaction(force=True) as outputs:
                outputs.check([path])
                if path.suffix.lower() == ".csv":
                    clip = clip_from_take(face, context.scene)
                    outputs.write(path, lambda temporary: write_core_export(clip, temporary))
                else:
                    outputs.write(path, lambda temporary: write_blender_export(temporary, export_objects(face),
                                                                               context.scene, target=path))
                outputs.commit()
        except EmoflameError as exc:
            self.report({"ERROR"}, f"emoflame: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"emoflame: exported {path.name}")
        return {"FINISHED"}


def _face_of(obj):
    """The mesh with the take: the object itself, or an armature's child mesh with shape keys."""
    if obj.type == "MESH":
        return obj
    for child in getattr(obj, "children", ()):
        if child.type == "MESH" and child.data.shape_keys is not None:
            return child
    raise RigError(f"{obj.name!r} is not a face mesh: select the animated head, then Export Take")


class EMOFLAME_OT_render_portrait(bpy.types.Operator):
    """Render the active object's take onto a portrait photo: a photoreal MP4 with the sound"""

    bl_idname = "emoflame.render_portrait"
    bl_label = "Render onto Photo…"
    bl_options = {"REGISTER"}

    photo: StringProperty(name="Photo", subtype="FILE_PATH", description="A PNG or JPEG with one face seen from "
                          "the front; empty for the shipped neutral portrait")
    filepath: StringProperty(name="Video", subtype="FILE_PATH", description="The .mp4 to write")
    filter_glob: StringProperty(default="*.mp4", options={"HIDDEN"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        from ..renderers.portrait import render_portrait

        try:
            clip = clip_from_take(_face_of(context.active_object), context.scene)
            path = output_path(Path(bpy.path.abspath(self.filepath)).with_suffix(".mp4"))
            photo = bpy.path.abspath(self.photo) if self.photo else None
            render_portrait(clip, photo, path, force=True, progress=False)  # the file browser asked first
        except EmoflameError as exc:
            self.report({"ERROR"}, f"emoflame: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"emoflame: rendered {path.name}")
        return {"FINISHED"}


classes = (EMOFLAME_OT_export_take, EMOFLAME_OT_render_portrait)
