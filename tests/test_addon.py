"""The Blender extension, driven through bpy as a module: the built zip installs into a private
extensions repository and enables; the operators run on a default avatar, a synthetic MPI-style
FLAME rig (Exp/Pose keys, neck and jaw bones) and an ARKit-named mesh.

The wheel bpy has no event loop, so the modal Generate is tested through its steps
(``GenerateSession.start/poll/finish/cancel``) and in EXEC mode; it has no undo stack either
(``bpy.ops.ed.undo.poll()`` is False in background), so undo is covered by checking that nothing
changes in the file before the one finishing step that Blender records.
"""

import importlib
import math
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
REPO_MODULE = "emoflame_test"
PACKAGE = f"bl_ext.{REPO_MODULE}.emoflame"


def _blender_ext_tool():
    import bpy

    return Path(bpy.__file__).parents[2] / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory) -> Path:
    """The extension built by Blender's own builder (what `blender --command extension build` runs)."""
    out = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, str(_blender_ext_tool()), "build", "--source-dir", str(REPO),
                    "--output-dir", str(out)], check=True, capture_output=True, text=True)
    (zip_path,) = out.glob("emoflame-*.zip")
    return zip_path


@pytest.fixture(scope="module")
def ext(extension_zip, tmp_path_factory):
    """The zip installed into a private user repository and enabled; yields a module getter."""
    import bpy

    folder = tmp_path_factory.mktemp("extensions")
    repos = bpy.context.preferences.extensions.repos
    repos.new(name="emoflame test", module=REPO_MODULE, custom_directory=str(folder), source="USER")
    result = bpy.ops.extensions.package_install_files(filepath=str(extension_zip), repo=REPO_MODULE,
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    assert PACKAGE in bpy.context.preferences.addons
    yield lambda name: importlib.import_module(f"{PACKAGE}.{name}")
    if PACKAGE in bpy.context.preferences.addons:
        bpy.ops.preferences.addon_disable(module=PACKAGE)
    if REPO_MODULE in [r.module for r in repos]:
        repos.remove(repos[[r.module for r in repos].index(REPO_MODULE)])


@pytest.fixture
def scene(ext):
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    yield bpy.context.scene
    for session in list(ext("addon.generate").ACTIVE):  # a failed test must not block the next
        session.cancel()


@pytest.fixture(scope="module")
def avatar(ext):
    return ext("core.flame.avatar").default_avatar()


def _clip(ext, frames=40, audio="", **channels):
    """A hand-built AnimationClip: each named channel ramps linearly from 0 to its value."""
    core = ext("core.channels")
    weights = np.zeros((frames, len(core.ARKIT_CHANNELS)), np.float32)
    for name, value in channels.items():
        weights[:, core.ARKIT_CHANNELS.index(name)] = np.linspace(0.0, value, frames)
    return ext("core.clip").AnimationClip(fps=25, intensity=np.full(frames, 0.5), emotion_latent=np.zeros((frames, 0)),
                                          weights=weights, channels=core.ARKIT_CHANNELS, emotion="happy",
                                          audio_path=str(Path("/data/line01.wav")))


def _fcurves(id_data):
    # Blender's own reader, in 4.5 and 5.0 alike (5.0's animdata_get_channelbag_for_assigned_slot wraps it).
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    data = id_data.animation_data
    return {(f.data_path, f.array_index): f for f in action_get_channelbag_for_slot(data.action, data.action_slot).fcurves}


def _key_curve(key, name):
    return _fcurves(key)[(f'key_blocks["{name}"].value', 0)]


# --- the package ---------------------------------------------------------------------------------

def test_zip_has_the_manifest_at_its_root_and_leaves_out_what_the_addon_does_not_need(extension_zip):
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "addon/operators.py" in names and "flame_assets/default_avatar.npz" in names
    assert "flame_assets/expression_transformer.pt" in names  # the learned engine runs inside Blender too
    for excluded in ("tests/", "benchmarks/", "docs/", ".venv/", ".ci/", ".git/", "examples/", "pyproject.toml",
                     "core/train/ablations/"):
        assert not any(n.startswith(excluded) for n in names), excluded
    assert not any("__pycache__" in n for n in names)
    check = subprocess.run([sys.executable, str(_blender_ext_tool()), "validate", str(extension_zip)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_enabling_is_instant_loads_no_torch_and_repeats_cleanly(extension_zip, tmp_path):
    # A fresh interpreter: this test process has torch loaded already.
    script = f"""
import os, sys, time
import bpy
repo = bpy.context.preferences.extensions.repos.new(name="t", module="t", custom_directory={str(tmp_path)!r}, source="USER")
bpy.ops.extensions.package_install_files(filepath={str(extension_zip)!r}, repo="t", enable_on_install=False)
start = time.perf_counter()
assert bpy.ops.preferences.addon_enable(module="bl_ext.t.emoflame") == {{"FINISHED"}}
print("ENABLE", time.perf_counter() - start, "torch" in sys.modules)
for _ in range(3):
    bpy.ops.preferences.addon_disable(module="bl_ext.t.emoflame")
    assert not hasattr(bpy.types.Scene, "emoflame") and not hasattr(bpy.types, "EMOFLAME_PT_main")
    bpy.ops.preferences.addon_enable(module="bl_ext.t.emoflame")
print("AGAIN", hasattr(bpy.types.Scene, "emoflame"), bpy.ops.emoflame.generate.poll())
bpy.ops.preferences.addon_disable(module="bl_ext.t.emoflame")
print("OFF", hasattr(bpy.types.Scene, "emoflame") or hasattr(bpy.types, "EMOFLAME_OT_generate"),
      "bl_ext.t.emoflame" in bpy.context.preferences.addons)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, HOME=str(tmp_path)))
    lines = {line.split()[0]: line.split()[1:] for line in run.stdout.splitlines() if line[:3] in ("ENA", "AGA", "OFF")}
    assert run.returncode == 0, run.stderr[-2000:]
    seconds, torch_loaded = float(lines["ENABLE"][0]), lines["ENABLE"][1]
    assert seconds < 1.0 and torch_loaded == "False"
    assert lines["AGAIN"] == ["True", "True"]
    assert lines["OFF"] == ["False", "False"]


def test_blender_without_torch_still_drives_rigs_and_sends_the_core_to_the_worker(extension_zip, tmp_path):
    """A stock Blender has numpy but no torch or scipy: the Blender side must work there."""
    script = f"""
import sys, importlib.abc
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "scipy"):
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, NoTorch())
import bpy, numpy as np
bpy.context.preferences.extensions.repos.new(name="t", module="t", custom_directory={str(tmp_path)!r}, source="USER")
bpy.ops.extensions.package_install_files(filepath={str(extension_zip)!r}, repo="t", enable_on_install=True)
from bl_ext.t.emoflame.addon import rigs
from bl_ext.t.emoflame.core import worker
from bl_ext.t.emoflame.core.clip import AnimationClip
from bl_ext.t.emoflame.core.channels import ARKIT_CHANNELS
bpy.ops.wm.read_homefile(use_empty=True)
assert bpy.ops.emoflame.add_avatar() == {{"FINISHED"}}
target = rigs.prepare_target(rigs.describe_target(bpy.context.active_object))
weights = np.zeros((10, 52), np.float32); weights[:, ARKIT_CHANNELS.index("jawOpen")] = 0.5
clip = AnimationClip(fps=25, intensity=np.ones(10), emotion_latent=np.zeros((10, 0)), weights=weights, channels=ARKIT_CHANNELS)
(take,) = rigs.write_take(target, clip)
try:
    worker.start_job(worker.Request(audio="x.wav"), "AUTO", "")
except Exception as exc:
    print("AUTO", type(exc).__name__, "Python Interpreter" in str(exc))
print("TAKE", take.name, "torch" in sys.modules or "scipy" in sys.modules)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, HOME=str(tmp_path)))
    assert run.returncode == 0, run.stderr[-1500:]
    assert "AUTO EmoflameError True" in run.stdout  # no torch in Blender: the worker is needed
    assert "TAKE clip_neutral_take01 False" in run.stdout


def test_registered_command_shares_the_console_parser(ext, capsys):
    import bpy

    command = ext("addon.command")
    assert command._handles, "blender -c emoflame is not registered"
    assert command.run_command(["--help"]) == 0
    assert command.run_command(["animate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--emotion" in out and "--intensity" in out and "OUT.blend" in out
    assert "usage: blender -c emoflame animate" in out
    assert command.run_command(["animate"]) == 2  # the audio and -o are required
    assert command.run_command(["animate", "/no/such.wav", "-o", "/tmp/x.blend"]) == 2
    assert "error" in capsys.readouterr().err
    assert bpy.utils.register_cli_command is not None


# --- rigs ----------------------------------------------------------------------------------------

def test_added_avatar_is_at_rest(ext, scene, avatar):
    import bpy

    scene.cursor.location = (0.5, -0.2, 1.6)
    assert bpy.ops.emoflame.add_avatar() == {"FINISHED"}
    head = bpy.context.active_object
    bpy.context.view_layer.update()
    assert head.select_get() and (head.matrix_world.translation - scene.cursor.location).length < 1e-6
    scene.cursor.location = (0, 0, 0)
    evaluated = head.evaluated_get(bpy.context.evaluated_depsgraph_get())
    co = np.empty(len(evaluated.data.vertices) * 3, np.float32)
    evaluated.data.vertices.foreach_get("co", co)
    assert np.abs(co.reshape(-1, 3)[: avatar.num_vertices] - avatar.vertices).max() < 1e-6


def test_default_avatar_take_goes_to_a_new_action_and_leaves_the_users_action_alone(ext, scene, avatar):
    import bpy

    assert bpy.ops.emoflame.add_avatar() == {"FINISHED"}
    head = bpy.context.active_object
    key = head.data.shape_keys
    mine = bpy.data.actions.new("MyBlink")
    slot = mine.slots.new(id_type="KEY", name=key.name)
    key.animation_data_create().action, key.animation_data.action_slot = mine, slot
    key.key_blocks["eyeBlink_L"].value = 0.7
    key.key_blocks["eyeBlink_L"].keyframe_insert("value", frame=5)
    before = [tuple(p.co) for p in _key_curve(key, "eyeBlink_L").keyframe_points]

    rigs = ext("addon.rigs")
    info = rigs.describe_target(head)
    assert info.kind == rigs.AVATAR and "jawOpen" in info.matched and "tongueOut" in info.unmatched
    clip = _clip(ext, jawOpen=0.8, mouthSmile_L=0.5, browInnerUp=1.0)
    (take,) = rigs.write_take(rigs.prepare_target(info), clip, frame_start=11)

    assert take is not mine and take.get("emoflame_take") and key.animation_data.action == take
    jaw = _key_curve(key, "jawOpen")
    assert (jaw.keyframe_points[0].co[0], jaw.keyframe_points[-1].co[0]) == (11.0, 50.0)
    assert jaw.evaluate(50) == pytest.approx(0.8, abs=1e-6) and jaw.evaluate(11) == pytest.approx(0.0, abs=1e-6)
    assert _key_curve(key, "browInnerUp_L").evaluate(50) == pytest.approx(1.0)  # split channel drives both halves
    assert _key_curve(key, "browInnerUp_R").evaluate(50) == pytest.approx(1.0)
    # The user's Action: same keys, kept (stashed on a muted NLA track, so a save keeps it).
    assert "MyBlink" in bpy.data.actions
    assert [tuple(p.co) for p in bpy.data.actions["MyBlink"].layers[0].strips[0].channelbag(slot).fcurves[0]
            .keyframe_points] == before
    assert any(s.action == mine for t in key.animation_data.nla_tracks for s in t.strips)


def _make_mpi_rig(avatar):
    """An MPI FLAME add-on style rig on the real FLAME topology: Exp1..Exp100 spanning the
    avatar's expression deltas except jawOpen (mixed by a random rotation), Pose1..Pose36, and an
    armature with neck and jaw bones whose 'jaw' vertex group follows the avatar's jaw motion.
    As the add-on builds it: the mesh is the armature's child, bones point along +z (forward)."""
    import bpy

    rng = np.random.default_rng(0)
    names = list(avatar.blendshape_names)
    deltas = np.asarray(avatar.blendshape_deltas, np.float64)
    deltas = deltas[[i for i, n in enumerate(names) if n != "jawOpen"]]
    # Fill up to 100 with smooth fields on the face, so the basis has full rank like FLAME's.
    face = np.asarray(avatar.masks["face"], np.float64)[:, None]
    smooth = [face * np.sin(rng.normal(scale=40.0, size=3) @ avatar.vertices.T + rng.uniform(0, 6))[:, None]
              * rng.normal(scale=1e-3, size=3) for _ in range(100 - len(deltas))]
    mix = np.linalg.qr(rng.normal(size=(100, 100)))[0]
    exp = np.einsum("ij,jvc->ivc", mix, np.concatenate([deltas, np.stack(smooth)]))  # (100, 5023, 3)

    mesh = bpy.data.meshes.new("FLAME-mesh")
    mesh.from_pydata(avatar.vertices.tolist(), [], avatar.faces.tolist())
    obj = bpy.data.objects.new("FLAME-generic", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    for i, delta in enumerate(exp, 1):
        obj.shape_key_add(name=f"Exp{i}").data.foreach_set("co", (avatar.vertices + delta).ravel())
    for i in range(1, 37):
        obj.shape_key_add(name=f"Pose{i}").data.foreach_set(
            "co", (avatar.vertices + 1e-4 * rng.normal(size=avatar.vertices.shape)).ravel())
    for block in obj.data.shape_keys.key_blocks:
        block.value = 0.0  # bpy 5.0 adds shape keys at value 1

    joints = avatar.joint_regressor @ avatar.vertices  # (5, 3): global, neck, jaw, eyes
    arm_data = bpy.data.armatures.new("FLAME-armature")
    armature = bpy.data.objects.new("FLAME-armature", arm_data)
    bpy.context.scene.collection.objects.link(armature)
    bpy.context.view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    neck = arm_data.edit_bones.new("neck")
    neck.head, neck.tail = joints[1], joints[1] + (0, 0, 0.01)
    for name, joint in (("jaw", 2), ("left_eye", 3), ("right_eye", 4)):
        bone = arm_data.edit_bones.new(name)
        bone.head, bone.tail, bone.parent = joints[joint], joints[joint] + (0, 0, 0.01), neck
    bpy.ops.object.mode_set(mode="OBJECT")
    armature.rotation_euler = (math.pi / 2, 0, 0)  # FLAME is y-up: stand it up in Blender's z-up world
    obj.parent = armature
    jaw_open = np.linalg.norm(avatar.blendshape_deltas[names.index("jawOpen")], axis=1)
    weights = np.clip(jaw_open / np.percentile(jaw_open[jaw_open > 1e-5], 90), 0, 1)
    group = obj.vertex_groups.new(name="jaw")
    for v in np.flatnonzero(weights > 0.01):
        group.add([int(v)], float(weights[v]), "REPLACE")
    for name, mask in (("left_eye", "eyeball_L"), ("right_eye", "eyeball_R")):
        obj.vertex_groups.new(name=name).add(np.flatnonzero(avatar.masks[mask]).tolist(), 1.0, "REPLACE")
    obj.vertex_groups.new(name="neck")
    obj.modifiers.new("Armature", "ARMATURE").object = armature
    armature.pose.bones["jaw"].rotation_mode = "XYZ"
    armature.pose.bones["left_eye"].rotation_mode = "QUATERNION"
    armature.pose.bones["right_eye"].rotation_mode = "AXIS_ANGLE"
    return obj, armature, exp


def test_mpi_flame_rig_drives_exp_keys_jaw_and_eye_bones_and_consistent_pose_correctives(ext, scene, avatar):
    import bpy

    rigs = ext("addon.rigs")
    obj, armature, exp = _make_mpi_rig(avatar)
    pose = bpy.data.actions.new("MyHeadTurn")
    armature.animation_data_create().action = pose
    armature.animation_data.action_slot = pose.slots.new(id_type="OBJECT", name=armature.name)
    info = rigs.describe_target(armature)  # selecting the armature finds its mesh
    assert info.kind == rigs.MPI_FLAME and info.mesh == obj and info.armature == armature and not info.notes
    target = rigs.prepare_target(info, avatar)
    assert target.rigmap.residual["mouthSmile_L"] < 1e-3  # in the Exp span: fitted exactly

    # A smile lies in the Exp span: the Exp keys carry it and the jaw stays shut.
    key = obj.data.shape_keys
    rigs.write_take(target, _clip(ext, frames=30, mouthSmile_L=1.0), frame_start=1)
    values = np.array([_key_curve(key, f"Exp{i}").evaluate(30) for i in range(1, 101)])
    smile = np.asarray(avatar.blendshape_deltas[list(avatar.blendshape_names).index("mouthSmile_L")], np.float64)
    fitted = np.einsum("i,ivc->vc", values, exp)
    face = np.asarray(avatar.masks["face"])
    assert np.linalg.norm((fitted - smile)[face]) / np.linalg.norm(smile[face]) < 0.05
    assert abs(_fcurves(armature)[('pose.bones["jaw"].rotation_euler', 0)].evaluate(30)) < 0.01

    # jawOpen is outside the Exp span: the jaw bone opens, the correctives follow its rotation.
    key_take, jaw_take = rigs.write_take(target, _clip(ext, frames=30, jawOpen=1.0), frame_start=1)
    assert key_take.get("emoflame_take") and jaw_take.get("emoflame_take")
    assert armature.animation_data.action == jaw_take and "MyHeadTurn" in bpy.data.actions
    assert any(s.action == pose for t in armature.animation_data.nla_tracks for s in t.strips)
    euler = [_fcurves(armature)[('pose.bones["jaw"].rotation_euler', i)] for i in range(3)]
    assert euler[0].keyframe_points[-1].co[0] == 30.0
    bone_rest = np.array(armature.data.bones["jaw"].matrix_local.to_3x3())
    from mathutils import Euler

    local = np.array(Euler([c.evaluate(30) for c in euler], "XYZ").to_matrix())
    flame_rotation = bone_rest @ local @ bone_rest.T  # armature space = FLAME frame here
    angle = math.acos(np.clip((np.trace(flame_rotation) - 1) / 2, -1, 1))
    assert 0.05 < angle < 0.6 and flame_rotation[2, 1] > 0  # a real opening, about +x
    correctives = np.array([_key_curve(key, f"Pose{i}").evaluate(30) for i in range(10, 19)]).reshape(3, 3)
    np.testing.assert_allclose(correctives, flame_rotation - np.eye(3), atol=1e-5)
    assert "Pose1" not in {p[0].split('"')[1] for p in _fcurves(key)}  # the neck's correctives stay unkeyed

    # The evaluated mesh opens its mouth: the chin drops in the world.
    jaw_open = avatar.blendshape_deltas[list(avatar.blendshape_names).index("jawOpen")]
    chin = int(np.argmax(np.linalg.norm(jaw_open, axis=1)))
    heights = []
    for frame in (1, 30):
        scene.frame_set(frame)
        evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        heights.append((evaluated.matrix_world @ evaluated.data.vertices[chin].co).z)
    assert heights[1] < heights[0] - 0.005

    # Gaze to the subject's left: both eye bones turn as the avatar's eyeballs do, whatever their
    # rotation modes, the eye correctives follow, and the pupils move towards +x.
    rigs.write_take(target, _clip(ext, frames=30, eyeLookOut_L=1.0, eyeLookIn_R=1.0), frame_start=1)
    expected, _ = ext("core.flame.rigmap").eye_rotations(avatar)
    channels = ext("core.channels").ARKIT_CHANNELS
    expected = expected[channels.index("eyeLookOut_L")] + expected[channels.index("eyeLookIn_R")]  # (6,)
    from mathutils import Quaternion

    curves = _fcurves(armature)
    left = Quaternion([curves[('pose.bones["left_eye"].rotation_quaternion', i)].evaluate(30) for i in range(4)])
    angle, *axis = [curves[('pose.bones["right_eye"].rotation_axis_angle', i)].evaluate(30) for i in range(4)]
    for bone, local, block, aa in (("left_eye", left.to_matrix(), 19, expected[:3]),
                                   ("right_eye", Quaternion(axis, angle).to_matrix(), 28, expected[3:])):
        rest = np.array(armature.data.bones[bone].matrix_local.to_3x3())
        flame_rotation = rest @ np.array(local) @ rest.T
        np.testing.assert_allclose(flame_rotation, ext("core.flame.geometry").axis_angle_to_matrix(aa[None])[0], atol=1e-5)
        correctives = np.array([_key_curve(key, f"Pose{i}").evaluate(30) for i in range(block, block + 9)])
        np.testing.assert_allclose(correctives.reshape(3, 3), flame_rotation - np.eye(3), atol=1e-5)
    assert np.linalg.norm(expected[:3]) > 0.1 and np.linalg.norm(expected[3:]) > 0.1
    for mask in ("eyeball_L", "eyeball_R"):
        eyeball = np.flatnonzero(avatar.masks[mask])
        pupil = int(eyeball[np.argmax(avatar.vertices[eyeball, 2])])  # the most forward eyeball vertex
        xs = []
        for frame in (1, 30):
            scene.frame_set(frame)
            xs.append(obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.vertices[pupil].co.x)
        assert xs[1] > xs[0] + 0.002, mask


def test_arkit_named_mesh_reports_its_matched_channels_and_keys_only_those(ext, scene):
    import bpy

    rigs = ext("addon.rigs")
    bpy.ops.mesh.primitive_ico_sphere_add()
    obj = bpy.context.active_object
    for name in ("Basis", "jawOpen", "mouthSmileLeft", "EyeBlink_L", "browInnerUp_L", "browInnerUp_R", "hairPuff"):
        obj.shape_key_add(name=name)
    info = rigs.describe_target(obj)
    assert info.kind == rigs.ARKIT
    assert set(info.matched) == {"jawOpen", "mouthSmile_L", "eyeBlink_L", "browInnerUp"}
    assert len(info.unmatched) == 48 and "4 of 52 channels" in info.summary()
    (take,) = rigs.write_take(rigs.prepare_target(info), _clip(ext, mouthSmile_L=0.9, jawOpen=0.3), frame_start=1)
    keyed = {path.split('"')[1] for path, _ in _fcurves(obj.data.shape_keys)}
    assert keyed == {"jawOpen", "mouthSmileLeft", "EyeBlink_L", "browInnerUp_L", "browInnerUp_R"}
    assert _key_curve(obj.data.shape_keys, "mouthSmileLeft").evaluate(40) == pytest.approx(0.9)


def test_meshes_it_cannot_drive_get_a_clear_rig_error(ext, scene):
    import bpy

    rigs, errors = ext("addon.rigs"), ext("core.errors")
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    with pytest.raises(errors.RigError, match="no shape keys"):
        rigs.describe_target(cube)
    cube.shape_key_add(name="Basis")
    cube.shape_key_add(name="Squash")
    with pytest.raises(errors.RigError, match="ARKit name"):
        rigs.describe_target(cube)
    with pytest.raises(errors.RigError, match="no active object"):
        rigs.describe_target(None)
    bpy.ops.object.camera_add()
    with pytest.raises(errors.RigError, match="not a mesh"):
        rigs.describe_target(bpy.context.active_object)


# --- Generate, Cancel, Clear ---------------------------------------------------------------------

@pytest.fixture
def speech(shared_data) -> Path:
    return shared_data / "speech" / "arctic_a0007.wav"


def _stub_core(ext, monkeypatch, run):
    """Generate with ``run`` standing in for core.pipeline.animate (a real ThreadJob around it)."""
    worker, generate = ext("core.worker"), ext("addon.generate")
    monkeypatch.setattr(generate, "start_job", lambda request, *a: worker.ThreadJob(request, run=run))


def test_generate_steps_write_nothing_until_finish_then_one_take(ext, scene, speech, monkeypatch):
    import bpy

    bpy.ops.emoflame.add_avatar()
    settings = scene.emoflame
    settings.audio_path, settings.emotion, settings.intensity_mode, settings.intensity = str(speech), "sad", "CONSTANT", 0.3
    settings.transcript_mode, settings.transcript = "TEXT", " and you always want to see it in the superlative degree "
    scene.render.fps, scene.render.fps_base = 30, 1.0
    seen = {}

    def run(**kwargs):
        seen.update(kwargs)
        time.sleep(0.3)
        return _clip(ext, frames=100, jawOpen=1.0)

    _stub_core(ext, monkeypatch, run)
    generate = ext("addon.generate")
    op = type("Op", (), {"properties": type("P", (), {"is_property_set": staticmethod(lambda name: False)})(),
                         "target": "", "transcript": ""})()
    actions_before = len(bpy.data.actions)
    session = generate.GenerateSession.start(bpy.context, generate.gather_options(op, scene))
    assert not bpy.ops.emoflame.generate.poll()  # one Generate at a time
    while not session.poll().done:
        assert len(bpy.data.actions) == actions_before and not scene.sequence_editor.strips_all
        time.sleep(0.05)
    actions, clip, target = session.finish()
    assert seen["emotion"] == "sad" and seen["intensity"] == pytest.approx(0.3) and seen["fps"] == 30.0 and seen["audio"] == str(speech)
    assert seen["transcript"] == "and you always want to see it in the superlative degree"
    assert len(bpy.data.actions) == actions_before + 1 and actions[0].get("emoflame_take")
    (strip,) = scene.sequence_editor.strips_all
    assert strip.type == "SOUND" and strip.frame_start == 1
    assert scene.frame_end >= 100 and bpy.ops.emoflame.generate.poll()
    assert "UNDO" in ext("addon.operators").EMOFLAME_OT_generate.bl_options


def test_emotion_markers_on_the_timeline_become_the_takes_emotion_track(ext, scene, speech, monkeypatch):
    import bpy

    bpy.ops.emoflame.add_avatar()
    scene.emoflame.audio_path, scene.emoflame.emotion, scene.emoflame.transition = str(speech), "neutral", 0.5
    scene.render.fps, scene.render.fps_base, scene.frame_start = 25, 1.0, 11
    scene.frame_current = 61  # 2 s after the take's first frame
    assert bpy.ops.emoflame.add_emotion_marker(emotion="angry") == {"FINISHED"}
    scene.frame_current = 86
    scene.emoflame.emotion = "sad"
    assert bpy.ops.emoflame.add_emotion_marker() == {"FINISHED"}  # the panel's emotion
    scene.timeline_markers.new("chapter 2", frame=70)  # not an emotion marker
    scene.timeline_markers.new("emotion:happy", frame=5)  # before the take: ignored
    scene.emoflame.emotion = "neutral"
    seen = []

    def run(**kwargs):
        seen.append(kwargs)
        return _clip(ext, frames=100)

    _stub_core(ext, monkeypatch, run)
    assert bpy.ops.emoflame.generate("EXEC_DEFAULT") == {"FINISHED"}
    assert seen[0]["emotion"] == [("neutral", 0.0), ("angry", 2.0), ("sad", 3.0)] and seen[0]["transition"] == 0.5
    # and the core reads that track
    track = ext("core.emotion.track").read_emotion_track(seen[0]["emotion"])
    assert track.names == ("neutral", "angry", "sad") and track.starts == (0.0, 2.0, 3.0)
    scene.timeline_markers.clear()


def test_switching_the_device_preference_reaches_the_next_generate(ext, scene, speech, monkeypatch):
    import bpy

    bpy.ops.emoflame.add_avatar()
    scene.emoflame.audio_path = str(speech)
    seen = []

    def run(**kwargs):
        seen.append(kwargs["settings"])
        return _clip(ext, frames=100)

    _stub_core(ext, monkeypatch, run)
    prefs = ext("addon.preferences").get_preferences(bpy.context)
    try:
        for device in ("cpu", "cuda", "auto"):
            prefs.device = device
            assert bpy.ops.emoflame.generate("EXEC_DEFAULT") == {"FINISHED"}
    finally:
        prefs.device = "auto"
    assert [s.device for s in seen] == ["cpu", "cuda", "auto"]  # a typed Settings per run, no os.environ
    assert "EMOFLAME_DEVICE" not in os.environ


def test_generate_exec_with_a_sound_strip_keys_from_the_strip_start(ext, scene, speech, monkeypatch):
    import bpy

    bpy.ops.emoflame.add_avatar()
    scene.sequence_editor_create().strips.new_sound("line", str(speech), channel=2, frame_start=40)
    _stub_core(ext, monkeypatch, lambda **kw: _clip(ext, frames=20, jawOpen=0.5))
    assert bpy.ops.emoflame.generate("EXEC_DEFAULT", strip="line", emotion="angry") == {"FINISHED"}
    assert bpy.ops.emoflame.generate("EXEC_DEFAULT", strip="line", emotion="angry") == {"FINISHED"}
    key = bpy.context.active_object.data.shape_keys
    jaw = _key_curve(key, "jawOpen")
    assert jaw.keyframe_points[0].co[0] == 40.0 and jaw.keyframe_points[-1].co[0] == 59.0
    assert len(scene.sequence_editor.strips_all) == 1  # the strip is reused, not duplicated
    takes = sorted(a.name for a in bpy.data.actions if a.get("emoflame_take"))
    assert len(takes) == 2 and takes[0] != takes[1]


def test_keyed_intensity_is_sampled_on_every_frame_of_the_audio(ext, scene, speech):
    generate = ext("addon.generate")
    scene.render.fps = 25
    scene.emoflame.intensity = 0.0
    scene.keyframe_insert('emoflame.intensity', frame=1)
    scene.emoflame.intensity = 1.0
    scene.keyframe_insert('emoflame.intensity', frame=51)
    curve = generate.resolve_intensity(scene, "keyed", str(speech), 25.0, 1)
    assert len(curve) == 100  # arctic_a0007 is 4.0 s
    assert curve[0] == pytest.approx(0.0) and curve[25] == pytest.approx(0.5, abs=0.05) and curve[60] == pytest.approx(1.0)
    errors = ext("core.errors")
    with pytest.raises(errors.IntensityError, match=r"1.5; it must lie in \[0, 1\]"):
        generate.resolve_intensity(scene, "1.5", str(speech), 25.0, 1)
    scene.animation_data_clear()
    with pytest.raises(errors.IntensityError, match="no keyframes"):
        generate.resolve_intensity(scene, "keyed", str(speech), 25.0, 1)


def test_bad_settings_are_reported_in_one_line_and_change_nothing(ext, scene, monkeypatch):
    import bpy

    bpy.ops.emoflame.add_avatar()
    _stub_core(ext, monkeypatch, lambda **kw: pytest.fail("the core must not start"))
    before = len(bpy.data.actions)
    # In background Blender an operator's ERROR report surfaces as a RuntimeError with its text.
    for options, message in (({"audio": "/no/such.wav"}, "does not exist: pick a wav"),
                             ({"strip": "missing"}, "no sound strip named 'missing'"),
                             ({}, "no audio chosen"),
                             ({"audio": __file__, "intensity": "2"}, "is 2; it must lie in \\[0, 1\\]")):
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.emoflame.generate("EXEC_DEFAULT", **options)
    with pytest.raises(RuntimeError, match="no object named 'Nope'"):
        bpy.ops.emoflame.generate("EXEC_DEFAULT", audio=__file__, target="Nope")
    bpy.ops.object.camera_add()
    with pytest.raises(RuntimeError, match="not a mesh"):
        bpy.ops.emoflame.generate("EXEC_DEFAULT", audio=__file__)
    assert len(bpy.data.actions) == before and bpy.ops.emoflame.generate.poll()


def test_cancel_stops_the_in_process_job_and_writes_nothing(ext, scene, speech):
    worker = ext("core.worker")

    def slow(**kwargs):
        while True:  # stands in for a core that never ends
            time.sleep(0.01)

    job = worker.ThreadJob(worker.Request(audio=str(speech)), run=slow)
    time.sleep(0.2)
    assert not job.poll().done
    start = time.perf_counter()
    job.cancel()
    assert job.poll().done and time.perf_counter() - start < 1.0
    with pytest.raises(worker.JobCancelled):
        job.result()

    job = worker.ThreadJob(worker.Request(audio=str(speech), emotion="happy"))  # the real core
    time.sleep(0.5)
    job.cancel()
    assert job.poll().done
    with pytest.raises(worker.JobCancelled):
        job.result()


def test_cancel_during_an_import_leaves_the_package_importable(ext, tmp_path, monkeypatch):
    """The core imports librosa, numba and scipy lazily: a cancel that broke an import half-way
    would leave them unimportable for the rest of the Blender session."""
    package = tmp_path / "slowpkg"
    package.mkdir()
    # As numba's __init__ does: a submodule imported, then used as the package's attribute.
    (package / "__init__.py").write_text("import time\nimport slowpkg.first\ntime.sleep(0.5)\nVALUE = slowpkg.first.VALUE\n")
    (package / "first.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    worker = ext("core.worker")

    def importing(**kwargs):
        importlib.import_module("slowpkg")
        while True:
            time.sleep(0.01)

    job = worker.ThreadJob(worker.Request(audio="x.wav"), run=importing)
    time.sleep(0.2)  # inside slowpkg's import
    job.cancel()
    assert job.poll().done
    with pytest.raises(worker.JobCancelled):
        job.result()
    assert importlib.import_module("slowpkg").VALUE == 2
    for name in ("slowpkg", "slowpkg.first"):
        sys.modules.pop(name, None)


def test_clear_removes_only_emoflame_takes_and_restores_the_replaced_action(ext, scene):
    import bpy

    bpy.ops.emoflame.add_avatar()
    head = bpy.context.active_object
    key = head.data.shape_keys
    mine = bpy.data.actions.new("MyLipSync")
    slot = mine.slots.new(id_type="KEY", name=key.name)
    key.animation_data_create().action, key.animation_data.action_slot = mine, slot
    other = bpy.data.actions.new("Unrelated")
    other.use_fake_user = True
    rigs = ext("addon.rigs")
    target = rigs.prepare_target(rigs.describe_target(head))
    for _ in range(2):
        rigs.write_take(target, _clip(ext, jawOpen=1.0))
    assert len([a for a in bpy.data.actions if a.get("emoflame_take")]) == 2
    assert bpy.ops.emoflame.clear_takes(scope="TARGET") == {"FINISHED"}
    assert sorted(a.name for a in bpy.data.actions) == ["MyLipSync", "Unrelated"]
    assert key.animation_data.action == mine and key.animation_data.action_slot == slot
    assert len(key.animation_data.nla_tracks) == 0  # the stash tracks of both takes are gone too
    rigs.write_take(target, _clip(ext, jawOpen=1.0))
    assert bpy.ops.emoflame.clear_takes(scope="ALL") == {"FINISHED"}
    assert sorted(a.name for a in bpy.data.actions) == ["MyLipSync", "Unrelated"] and key.animation_data.action == mine


# --- the real core, in Blender and in a worker process -------------------------------------------

@pytest.fixture
def prefs(ext):
    import bpy

    preferences = bpy.context.preferences.addons[PACKAGE].preferences
    saved = (preferences.run_mode, preferences.python_path)
    yield preferences
    preferences.run_mode, preferences.python_path = saved


def test_generate_on_real_speech_gives_the_same_take_in_blender_and_in_a_worker(ext, scene, speech, prefs):
    import bpy

    scene.render.fps, scene.render.fps_base = 25, 1.0
    bpy.ops.emoflame.add_avatar()
    key = bpy.context.active_object.data.shape_keys
    curves = {}
    for mode in ("BLENDER", "WORKER"):
        prefs.run_mode, prefs.python_path = mode, sys.executable
        assert bpy.ops.emoflame.generate("EXEC_DEFAULT", audio=str(speech), emotion="happy", seed=3) == {"FINISHED"}
        fcurves = _fcurves(key)
        curves[mode] = {path: np.array([p.co for p in f.keyframe_points]) for (path, _), f in fcurves.items()}
    assert curves["BLENDER"].keys() == curves["WORKER"].keys()
    jaw = curves["WORKER"]['key_blocks["jawOpen"].value']
    assert jaw.shape == (100, 2) and (jaw[0, 0], jaw[-1, 0]) == (1.0, 100.0)  # 4.0 s at 25 fps from frame 1
    assert jaw[:, 1].max() > 0.2 and jaw[:, 1].min() < 0.05  # the mouth opens and closes
    smile = curves["WORKER"]['key_blocks["mouthSmile_L"].value'][:, 1]
    assert smile.mean() > 0.1  # happy
    for path, co in curves["BLENDER"].items():
        np.testing.assert_allclose(co, curves["WORKER"][path], atol=1e-6, err_msg=path)
    assert len(scene.sequence_editor.strips_all) == 1 and scene.frame_end >= 100


def test_worker_process_reports_a_user_error_in_one_line_and_cancels(ext, speech, tmp_path):
    worker = ext("core.worker")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    job = worker.start_job(worker.Request(audio=str(empty)), "WORKER", sys.executable)
    job.wait(120)
    with pytest.raises(worker.JobError) as failure:
        job.result()
    assert failure.value.user_error and "\n" not in str(failure.value) and "empty.wav" in str(failure.value)

    job = worker.start_job(worker.Request(audio=str(speech)), "WORKER", sys.executable)
    time.sleep(0.5)
    assert not job.poll().done
    start = time.perf_counter()
    job.cancel()
    assert job._proc.poll() is not None and time.perf_counter() - start < 4.0
    assert not Path(job._dir.name).exists()

    errors = ext("core.errors")
    with pytest.raises(errors.EmoflameError, match="Python Interpreter"):
        worker.start_job(worker.Request(audio=str(empty)), "WORKER", "")

    bare = tmp_path / "bare"  # an environment without emoflame's dependencies
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    job = worker.start_job(worker.Request(audio=str(speech)), "WORKER", str(bare / "bin" / "python"))
    job.wait(60)
    with pytest.raises(worker.JobError, match="has no module 'numpy': install emoflame there") as failure:
        job.result()
    assert failure.value.user_error


class _Layout:
    """Stands in for a UI layout (the bpy module cannot draw): checks every property and operator
    a panel names exists, and records the labels."""

    def __init__(self, labels):
        object.__setattr__(self, "labels", labels)

    def __getattr__(self, name):
        def call(*args, **kwargs):
            import bpy

            if name in ("prop", "prop_search"):
                assert args[1] in args[0].bl_rna.properties, args[1]
            if name == "prop_search":
                assert args[3] in args[2].bl_rna.properties, args[3]
            if name == "operator":
                group, op = args[0].split(".")
                assert getattr(getattr(bpy.ops, group), op).idname() == f"{group.upper()}_OT_{op}"
            if name == "label":
                self.labels.append(kwargs.get("text", ""))
            return self
        return call


def _draw(panel, context):
    labels = []
    panel.draw(type("Panel", (), {"layout": _Layout(labels)})(), context)
    return labels


def test_panel_draws_in_every_state_and_names_only_real_properties(ext, scene, speech):
    import bpy

    panel = ext("addon.panel")
    assert any("no active object" in label for label in _draw(panel.EMOFLAME_PT_main, bpy.context))
    bpy.ops.emoflame.add_avatar()
    settings = scene.emoflame
    for source, emotion, intensity in (("FILE", "happy", "audio"), ("STRIP", "FREE_TEXT", "KEYED"),
                                       ("FILE", "sad", "CONSTANT")):
        settings.audio_source, settings.emotion, settings.intensity_mode = source, emotion, intensity
        labels = _draw(panel.EMOFLAME_PT_main, bpy.context)
        assert any("default avatar" in label for label in labels)
        assert any("51 of 52 channels matched" in label for label in labels)
    scene.sequence_editor_create().strips.new_sound("line", str(speech), channel=1, frame_start=1)
    _draw(panel.EMOFLAME_PT_main, bpy.context)
    assert panel.EMOFLAME_PT_channels.poll(bpy.context)
    assert _draw(panel.EMOFLAME_PT_channels, bpy.context) == ["tongueOut"]


def test_modal_generate_polls_on_timer_and_escape_cancels(ext, scene, speech, monkeypatch):
    import functools
    import types

    import bpy

    bpy.ops.emoflame.add_avatar()
    scene.emoflame.audio_path = str(speech)
    operators, generate = ext("addon.operators"), ext("addon.generate")
    release = __import__("threading").Event()

    def run(**kwargs):
        release.wait(10)
        return _clip(ext, frames=30, jawOpen=1.0)

    _stub_core(ext, monkeypatch, run)
    cls = operators.EMOFLAME_OT_generate
    reports = []

    def operator():
        fake = types.SimpleNamespace(report=lambda kind, text: reports.append((kind.pop(), text)),
                                     properties=types.SimpleNamespace(is_property_set=lambda name: False),
                                     target="", transcript="")
        for method in ("_show", "_end", "_finish", "modal"):
            setattr(fake, method, functools.partial(getattr(cls, method), fake))
        # What invoke does before modal_handler_add (which takes only a real operator).
        fake._session = generate.GenerateSession.start(bpy.context, generate.gather_options(fake, scene))
        fake._timer = bpy.context.window_manager.event_timer_add(0.25, window=bpy.context.window)
        return fake

    def event(kind, value="NOTHING"):
        return types.SimpleNamespace(type=kind, value=value)

    # Escape: the core is stopped, nothing is written, no undo step (CANCELLED).
    op = operator()
    assert op.modal(bpy.context, event("TIMER")) == {"PASS_THROUGH"}
    assert "Esc to cancel" in bpy.context.window_manager.emoflame_status
    assert op.modal(bpy.context, event("MOUSEMOVE")) == {"PASS_THROUGH"}
    assert op.modal(bpy.context, event("ESC", "PRESS")) == {"CANCELLED"}
    assert reports[-1] == ("WARNING", "emoflame: cancelled, nothing was written")
    assert not [a for a in bpy.data.actions if a.get("emoflame_take")] and not generate.ACTIVE
    assert bpy.context.window_manager.emoflame_status == ""

    # Timer events until the clip is ready, then one FINISHED (one undo step) with the take.
    release.set()
    op = operator()
    for _ in range(100):
        result = op.modal(bpy.context, event("TIMER"))
        if result != {"PASS_THROUGH"}:
            break
        time.sleep(0.05)
    assert result == {"FINISHED"} and reports[-1][0] == "INFO" and "frames 1–30" in reports[-1][1]
    assert len([a for a in bpy.data.actions if a.get("emoflame_take")]) == 1


def test_blender_command_animates_real_speech_into_a_blend(ext, speech, tmp_path, capsys):
    """What ``blender -c emoflame animate …`` runs (the wheel has no blender binary to invoke it)."""
    import bpy

    out = tmp_path / "line.blend"
    assert ext("addon.command").run_command([str(speech_arg) for speech_arg in
                                             ("animate", speech, "--emotion", "sad", "-o", out, "-q")]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    # The command must not switch the extension off while it runs (factory settings would).
    assert PACKAGE in bpy.context.preferences.addons
    with bpy.data.libraries.load(str(out)) as (data_from, _):
        takes = [name for name in data_from.actions if "_sad_take" in name]
    assert sorted(takes) == ["arctic_a0007_sad_take01", "arctic_a0007_sad_take01_pose"]  # shape keys, head


def test_a_recording_reached_through_a_link_reuses_its_sound_strip(ext, scene, speech, tmp_path):
    """add_sound_strip stores the file's real path: the same recording through a symbolic link
    must still find that strip, not add a second one on the next Generate."""
    link = tmp_path / "line.wav"
    link.symlink_to(speech)
    strip = ext("addon.sound").add_sound_strip(scene, link, frame_start=12)
    generate = ext("addon.generate")
    options = generate.GenerateOptions("", str(link), "", "neutral", "audio", "DEFAULT", 0, "")
    path, start, reused = generate.resolve_audio(scene, options)
    assert (start, reused) == (12, strip.name) and path == str(link)


def test_the_preferences_flame_model_becomes_a_head_that_generate_can_drive(ext, scene, prefs, shared_data, tmp_path):
    """A FLAME model file (synthetic bases on the real topology) set in the preferences."""
    import bpy
    from flame_fixtures import synthetic_flame_arrays, write_numpy_pickle

    rigs = ext("addon.rigs")
    prefs.flame_model = ""
    with pytest.raises(RuntimeError, match="set FLAME Model File in the add-on's preferences"):
        bpy.ops.emoflame.add_flame_head()  # nothing set: a message, no object
    assert not bpy.data.objects
    prefs.flame_model = str(write_numpy_pickle(synthetic_flame_arrays(shared_data), tmp_path / "flame.pkl"))
    try:
        assert bpy.ops.emoflame.add_flame_head() == {"FINISHED"}
        head = bpy.context.active_object
        keys = [k.name for k in head.data.shape_keys.key_blocks]
        assert keys[1:3] == ["Exp1", "Exp2"] and keys[-1] == "Pose36" and len(head.data.vertices) == 5023
        assert all(k.value == 0 for k in head.data.shape_keys.key_blocks[1:])  # at rest
        info = rigs.describe_target(head)
        assert info.kind == rigs.MPI_FLAME and info.armature == head.parent
    finally:
        prefs.flame_model = ""
