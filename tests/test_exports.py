"""Exports read back by readers that are not emoflame's writers: glTF by pygltflib, FBX and USD by
Blender's own importers into a fresh scene, the Live Link Face CSV by its header, rows and known
channel values, FLAME parameters by shape. One real take (arctic_a0007, 4 s, happy) feeds them."""

import bpy
import numpy as np
import pytest

from emoflame.core.channels import ARKIT_CHANNELS
from emoflame.core.clip import AnimationClip
from emoflame.core.errors import ModelFileError, OutputError
from emoflame.core.exports import livelink

pygltflib = pytest.importorskip("pygltflib")


@pytest.fixture(scope="module")
def clip(shared_data) -> AnimationClip:
    from emoflame.core.pipeline import animate

    return animate(shared_data / "speech" / "arctic_a0007.wav", emotion="happy", seed=3, progress=False)


@pytest.fixture(scope="module")
def exported(clip, tmp_path_factory) -> dict:
    """Every format from one scene, through the API."""
    from emoflame.addon.exports import export

    folder = tmp_path_factory.mktemp("exports")
    paths = [folder / f"take.{suffix}" for suffix in ("blend", "glb", "gltf", "fbx", "usdc", "usda", "csv")]
    written = export(clip, paths)
    return {p.suffix: p for p in written}


def _key_curves():
    """{shape key name: F-curve} of the one mesh with shape keys in the session."""
    from bpy_extras.anim_utils import action_get_channelbag_for_slot  # 4.5 and 5.0 alike

    meshes = [o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys]
    assert len(meshes) == 1, [o.name for o in bpy.data.objects]
    data = meshes[0].data.shape_keys.animation_data
    fcurves = action_get_channelbag_for_slot(data.action, data.action_slot).fcurves
    return {f.data_path.split('"')[1]: f for f in fcurves}


def test_every_format_is_written_and_nothing_else(exported):
    folder = exported[".glb"].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in exported.values())


def _gltf_floats(gltf, accessor_index, blob):
    accessor = gltf.accessors[accessor_index]
    view = gltf.bufferViews[accessor.bufferView]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[accessor.type]
    start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
    values = np.frombuffer(blob, np.float32, count=accessor.count * width, offset=start)
    return values.reshape(accessor.count, width) if width > 1 else values


@pytest.mark.parametrize("suffix", [".glb", ".gltf"])
def test_gltf_has_a_morph_target_per_shape_key_and_the_take_as_its_animation(exported, clip, suffix):
    from emoflame.core.flame.avatar import default_avatar

    gltf = pygltflib.GLTF2().load(str(exported[suffix]))
    names = list(default_avatar().blendshape_names)
    mesh = gltf.meshes[0]
    assert mesh.extras["targetNames"] == names
    assert {len(p.targets) for p in mesh.primitives} == {len(names)}
    assert not gltf.cameras and len(gltf.animations) == 1
    animation = gltf.animations[0]
    [channel] = [c for c in animation.channels if c.target.path == "weights"]
    sampler = animation.samplers[channel.sampler]
    blob = gltf.binary_blob() if suffix == ".glb" else gltf.get_data_from_buffer_uri(gltf.buffers[0].uri)
    times = _gltf_floats(gltf, sampler.input, blob)
    # One key per frame, from 0 s (with the audio) to the last frame: the take's length.
    assert len(times) == clip.num_frames
    assert times[0] == pytest.approx(0.0) and times[-1] == pytest.approx((clip.num_frames - 1) / clip.fps, abs=1e-4)
    weights = _gltf_floats(gltf, sampler.output, blob).reshape(clip.num_frames, len(names))
    np.testing.assert_allclose(weights[:, names.index("jawOpen")], clip.channel("jawOpen"), atol=1e-4)


def test_fbx_imports_into_a_fresh_scene_with_the_take_on_every_frame(exported, clip):
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    assert "FINISHED" in bpy.ops.import_scene.fbx(filepath=str(exported[".fbx"]), anim_offset=0.0)
    curves = _key_curves()
    assert {"jawOpen", "mouthSmile_L", "eyeBlink_L"} <= set(curves)
    jaw = curves["jawOpen"]
    assert tuple(jaw.range()) == (1.0, float(clip.num_frames))  # the scene's frames 1..T
    frames = np.arange(1, clip.num_frames + 1)
    np.testing.assert_allclose([jaw.evaluate(f) for f in frames], clip.channel("jawOpen"), atol=1e-3)


@pytest.mark.parametrize("suffix", [".usdc", ".usda"])
def test_usd_imports_into_a_fresh_scene_with_blend_shape_animation_over_the_take(exported, clip, suffix):
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    assert "FINISHED" in bpy.ops.wm.usd_import(filepath=str(exported[suffix]))
    curves = _key_curves()
    assert {"jawOpen", "mouthSmile_L"} <= set(curves)
    jaw = curves["jawOpen"]
    assert tuple(jaw.range()) == (1.0, float(clip.num_frames))
    frames = np.arange(1, clip.num_frames + 1)
    np.testing.assert_allclose([jaw.evaluate(f) for f in frames], clip.channel("jawOpen"), atol=1e-3)
    if suffix == ".usda":  # the stage's clock is the take's
        text = exported[suffix].read_text()
        assert f"timeCodesPerSecond = {clip.fps:g}" in text and f"endTimeCode = {clip.num_frames}" in text


def test_live_link_csv_has_the_apps_header_a_row_per_frame_and_the_takes_values(exported, clip):
    data = livelink.read(exported[".csv"])
    header = exported[".csv"].read_text().splitlines()[0].split(",")
    assert header[:4] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft"]
    assert header[16:19] == ["JawForward", "JawRight", "JawLeft"] and header[-9:] == list(livelink.ROTATIONS)
    assert len(header) == 63 and len(data["Timecode"]) == clip.num_frames
    assert set(data["BlendShapeCount"]) == {61.0}
    assert data["Timecode"][0] == "00:00:00:00.000" and data["Timecode"][25] == "00:00:01:00.000"
    np.testing.assert_allclose(data["JawOpen"], clip.channel("jawOpen"), atol=1e-6)
    np.testing.assert_allclose(data["MouthSmileLeft"], clip.channel("mouthSmile_L"), atol=1e-6)
    # The head moves (head_pose) and the eyes follow the eyeLook channels.
    assert np.abs(data["HeadPitch"]).max() > 0.005 and np.abs(data["LeftEyeYaw"]).max() > 0.001


def test_live_link_rotations_follow_the_apps_signs_and_the_avatars_eye_angles():
    """On takes the app recorded, gaze up and to the subject's left read negative (module docstring)."""
    frames = 6
    weights = np.zeros((frames, len(ARKIT_CHANNELS)), np.float32)
    weights[1, ARKIT_CHANNELS.index("eyeLookUp_L")] = 1.0
    weights[2, ARKIT_CHANNELS.index("eyeLookOut_L")] = 1.0
    weights[2, ARKIT_CHANNELS.index("eyeLookIn_R")] = 1.0
    head = np.zeros((frames, 3), np.float32)
    head[3] = (0.1, 0.0, 0.0)   # FLAME +x: nod down
    head[4] = (0.0, 0.1, 0.0)   # FLAME +y: turn to the subject's left
    head[5] = (0.0, 0.0, 0.1)   # FLAME +z: tilt to the right shoulder
    clip = AnimationClip(30.0, np.zeros(frames), np.zeros((frames, 0)), weights, ARKIT_CHANNELS, head_pose=head)
    rows = livelink.rows(clip)
    table = {name: np.array([float(r[j]) for r in rows[1:]]) for j, name in enumerate(rows[0]) if j}
    assert table["LeftEyePitch"][1] == pytest.approx(-np.radians(25), abs=np.radians(0.5))  # 25° up at weight 1
    assert table["LeftEyeYaw"][2] == pytest.approx(-np.radians(30), abs=np.radians(0.5))    # 30° out
    assert table["RightEyeYaw"][2] == pytest.approx(-np.radians(30), abs=np.radians(0.5))   # 30° in: both to the left
    assert table["HeadPitch"][3] == pytest.approx(0.1, abs=1e-6)
    assert table["HeadYaw"][4] == pytest.approx(-0.1, abs=1e-6)
    assert table["HeadRoll"][5] == pytest.approx(-0.1, abs=1e-6)
    assert [r[0] for r in rows[1:3]] == ["00:00:00:00.000", "00:00:00:01.000"] and rows[0][1] == "BlendShapeCount"


def test_timecode_counts_frames_at_the_nominal_rate():
    assert livelink.timecode(0, 25) == "00:00:00:00.000"
    assert livelink.timecode(29, 29.97) == "00:00:00:29.000"
    assert livelink.timecode(30, 29.97) == "00:00:01:00.000"
    assert livelink.timecode(25 * 3661 + 7, 25) == "01:01:01:07.000"


def test_saved_blend_holds_the_take(exported, clip):
    bpy.ops.wm.open_mainfile(filepath=str(exported[".blend"]))
    curves = _key_curves()
    assert tuple(curves["jawOpen"].range()) == (1.0, float(clip.num_frames))


def test_flame_parameters_and_flame_rig_gltf_from_a_flame_model(clip, shared_data, tmp_path):
    from flame_fixtures import synthetic_flame_arrays, write_numpy_pickle

    from emoflame.addon.exports import export

    model = write_numpy_pickle(synthetic_flame_arrays(shared_data), tmp_path / "flame2023.pkl")
    npz, glb = export(clip, [tmp_path / "take.npz", tmp_path / "take.glb"], flame_model=model)
    with np.load(npz, allow_pickle=False) as params:
        assert sorted(params.files) == ["expression", "fps", "jaw_pose", "leye_pose", "neck_pose", "reye_pose"]
        assert params["expression"].shape == (clip.num_frames, 100)
        for name in ("jaw_pose", "neck_pose", "leye_pose", "reye_pose"):
            assert params[name].shape == (clip.num_frames, 3) and params[name].dtype == np.float32
        assert float(params["fps"]) == clip.fps
        np.testing.assert_allclose(params["neck_pose"], clip.head_pose, atol=1e-6)
        jaw = params["jaw_pose"][:, 0]
        assert np.corrcoef(jaw, clip.channel("jawOpen"))[0, 1] > 0.95  # the jaw turns as the mouth opens
    gltf = pygltflib.GLTF2().load(str(glb))
    assert gltf.skins and len(gltf.animations) == 1
    paths = {c.target.path for c in gltf.animations[0].channels}
    assert {"weights", "rotation"} <= paths  # Exp/Pose keys and the jaw, neck and eye bones in one animation


def test_an_existing_file_is_refused_untouched_and_a_bad_suffix_named(clip, tmp_path):
    from emoflame.addon.exports import export

    mine = tmp_path / "take.glb"
    mine.write_bytes(b"the animator's own file")
    with pytest.raises(OutputError, match="already exists.*--force"):
        export(clip, [tmp_path / "new.csv", mine])
    assert mine.read_bytes() == b"the animator's own file" and sorted(p.name for p in tmp_path.iterdir()) == ["take.glb"]
    with pytest.raises(OutputError, match=r"should end in one of \.blend"):
        export(clip, tmp_path / "take.obj")
    with pytest.raises(ModelFileError, match="--flame-model"):
        export(clip, tmp_path / "take.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.glb"]


def test_panel_operator_exports_a_finished_take(clip, tmp_path):
    from emoflame.addon.exports import EMOFLAME_OT_export_take, clip_from_take
    from emoflame.addon.scene import build_scene

    scene, face, _ = build_scene(clip)
    bpy.utils.register_class(EMOFLAME_OT_export_take)
    try:
        bpy.context.view_layer.objects.active = face
        for name in ("take.glb", "take.csv"):
            assert "FINISHED" in bpy.ops.emoflame.export_take(filepath=str(tmp_path / name))
    finally:
        bpy.utils.unregister_class(EMOFLAME_OT_export_take)
    back = clip_from_take(face, scene)
    assert back.num_frames == clip.num_frames and back.fps == clip.fps
    np.testing.assert_allclose(back.channel("jawOpen"), clip.channel("jawOpen"), atol=1e-4)
    data = livelink.read(tmp_path / "take.csv")
    np.testing.assert_allclose(data["JawOpen"], clip.channel("jawOpen"), atol=1e-4)
    gltf = pygltflib.GLTF2().load(str(tmp_path / "take.glb"))
    assert len(gltf.animations) == 1 and gltf.meshes[0].extras["targetNames"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.csv", "take.glb"]


def test_api_export_of_core_formats_needs_no_scene(clip, tmp_path):
    from emoflame.core.exports import export

    path = export(clip, tmp_path / "take.csv")
    assert len(livelink.read(path)["Timecode"]) == clip.num_frames
    with pytest.raises(OutputError, match="already exists"):
        export(clip, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.csv"]
