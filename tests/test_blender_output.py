"""The Blender writer: the default avatar as a mesh, the bulk Action writer, sound, timing, saving,
and the render camera. Drives bpy as a module on the real default avatar."""

from pathlib import Path

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

import emoflame
from emoflame.addon.action_writer import STASH_TRACK, TAKE_PROPERTY, target_values, write_action
from emoflame.addon.avatar_object import add_avatar_object, face_regions
from emoflame.addon.blend_file import save_blend, set_scene_timing
from emoflame.addon.compat import set_image_output
from emoflame.addon.sound import add_sound_strip
from emoflame.core.channels import ARKIT_CHANNELS
from emoflame.core.clip import AnimationClip
from emoflame.core.errors import AudioError, OutputError
from emoflame.core.flame.rigmap import rigmap_for_avatar
from emoflame.renderers.blender_video import configure_render, frame_face


@pytest.fixture(scope="module")
def avatar():
    return emoflame.default_avatar()


@pytest.fixture
def face(avatar):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return add_avatar_object(avatar)


def _clip(frames=50, offset=0.0, audio="", emotion="happy"):
    rng = np.random.default_rng(1)
    weights = rng.random((frames, len(ARKIT_CHANNELS)), dtype=np.float32)
    return AnimationClip(25.0, np.linspace(0, 1, frames), np.zeros((frames, 0)), weights, ARKIT_CHANNELS,
                         emotion=emotion, audio_path=audio, audio_offset=offset)


def _coords(key_block):
    co = np.empty(len(key_block.data) * 3, np.float32)
    key_block.data.foreach_get("co", co)
    return co.reshape(-1, 3)


def test_avatar_object_holds_flame_vertices_then_interior_with_every_shape_key(avatar, face):
    n, m = avatar.num_vertices, len(avatar.interior.vertices)
    assert len(face.data.vertices) == n + m
    assert len(face.data.polygons) == len(avatar.faces) + len(avatar.interior.faces)
    blocks = face.data.shape_keys.key_blocks
    assert [b.name for b in blocks] == ["Basis", *avatar.blendshape_names]
    j = avatar.blendshape_names.index("jawOpen")
    jaw = _coords(blocks["jawOpen"])
    np.testing.assert_allclose(jaw[:n], avatar.vertices + avatar.blendshape_deltas[j], atol=1e-6)
    np.testing.assert_allclose(jaw[n:], avatar.interior.vertices + avatar.interior.blendshape_deltas[j], atol=1e-6)
    # The jaw really opens: the chin moves down by centimetres.
    assert (jaw[:n] - avatar.vertices)[:, 1].min() < -0.01


def test_avatar_stands_up_facing_the_front_view(avatar, face):
    bpy.context.view_layer.update()
    world = np.array([face.matrix_world @ Vector(v) for v in avatar.landmarks(avatar.vertices)])
    nose_tip, chin, brow = world[30], world[8], world[27]
    assert brow[2] > nose_tip[2] > chin[2]          # z up
    assert nose_tip[1] < world[:, 1].mean() - 0.01  # the face looks down -Y (Blender's front view)


def test_materials_follow_the_regions(avatar, face):
    assert [m.name for m in face.data.materials] == ["emoflame_skin", "emoflame_eyes", "emoflame_teeth", "emoflame_tongue"]
    index = np.empty(len(face.data.polygons), np.int32)
    face.data.polygons.foreach_get("material_index", index)
    counts = np.bincount(index, minlength=4)
    assert all(counts > 100), counts
    eye_vertices = np.flatnonzero(avatar.masks["eyeball_L"] | avatar.masks["eyeball_R"])
    eye_faces = np.isin(avatar.faces, eye_vertices).all(axis=1)
    assert (index[: len(avatar.faces)][eye_faces] == 1).all()
    # Teeth are paler than the tongue.
    teeth, tongue = face.data.materials[2].diffuse_color, face.data.materials[3].diffuse_color
    assert min(teeth[:3]) > min(tongue[:3]) + 0.1
    # Eyes have dark pupils among their vertex colours.
    colors = np.empty(len(face.data.vertices) * 4, np.float32)
    face.data.color_attributes[0].data.foreach_get("color", colors)
    assert colors.reshape(-1, 4)[eye_vertices, :3].max(axis=1).min() < 0.15
    faces = np.concatenate([avatar.faces, avatar.interior.faces + avatar.num_vertices])
    all_colors = np.concatenate([avatar.vertex_colors, avatar.interior.vertex_colors])
    np.testing.assert_array_equal(face_regions(avatar, faces, all_colors), index)


def test_action_writes_one_curve_per_shape_key_at_the_clip_frames(avatar, face):
    key = face.data.shape_keys
    rigmap = rigmap_for_avatar(avatar)
    clip = _clip(frames=50, offset=0.2, audio="/takes/line_07.wav")
    action = write_action(key, clip, rigmap)
    assert action.name == "line_07_happy_take01"
    assert action[TAKE_PROPERTY] and action["emoflame_emotion"] == "happy"
    assert key.animation_data.action == action
    fcurves = action.layers[0].strips[0].channelbag(key.animation_data.action_slot).fcurves
    assert len(fcurves) == len(rigmap.targets)
    values = target_values(clip, rigmap)
    for fcurve in fcurves:
        target = fcurve.data_path.split('"')[1]
        m = rigmap.targets.index(target)
        keys = np.empty(2 * clip.num_frames, np.float32)
        fcurve.keyframe_points.foreach_get("co", keys)
        keys = keys.reshape(-1, 2)
        np.testing.assert_array_equal(keys[:, 0], 1 + 5 + np.arange(50))  # 0.2 s at 25 fps = 5 frames
        np.testing.assert_allclose(keys[:, 1], values[:, m], atol=1e-6)
    # Evaluating the scene drives the shape keys: mouthSmile_L at clip frame 10 = scene frame 16.
    bpy.context.scene.frame_set(16)
    expected = values[10, rigmap.targets.index("mouthSmile_L")]
    assert key.key_blocks["mouthSmile_L"].value == pytest.approx(expected, abs=1e-5)
    assert expected == pytest.approx(clip.channel("mouthSmile_L")[10])


def test_existing_animation_is_never_modified_or_lost(avatar, face):
    key = face.data.shape_keys
    block = key.key_blocks["jawOpen"]
    for frame, value in ((1, 0.0), (10, 0.8)):
        block.value = value
        block.keyframe_insert("value", frame=frame)
    users = key.animation_data.action
    before = users.layers[0].strips[0].channelbags[0].fcurves[0].keyframe_points
    before = [tuple(k.co) for k in before]
    rigmap = rigmap_for_avatar(avatar)
    first = write_action(key, _clip(audio="a.wav"), rigmap)
    second = write_action(key, _clip(audio="a.wav"), rigmap)
    assert (first.name, second.name) == ("a_happy_take01", "a_happy_take02")
    assert key.animation_data.action == second
    after = [tuple(k.co) for k in users.layers[0].strips[0].channelbags[0].fcurves[0].keyframe_points]
    assert after == before
    stashed = [s.action for t in key.animation_data.nla_tracks if t.name == STASH_TRACK and t.mute for s in t.strips]
    assert stashed == [users, first]


def test_scene_saved_atomically_keeps_timing_sound_and_take(avatar, face, tmp_path, shared_data):
    scene = bpy.context.scene
    speech = shared_data / "speech" / "arctic_a0007.wav"
    write_action(face.data.shape_keys, _clip(frames=100, audio=str(speech)), rigmap_for_avatar(avatar))
    add_sound_strip(scene, speech)
    set_scene_timing(scene, 25.0, 1, 100)
    path = save_blend(tmp_path / "take.blend")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.blend"]  # no temporary file left

    with pytest.raises(OutputError, match="already exists.*--force"):
        save_blend(path)
    stamp = path.stat().st_mtime_ns
    set_scene_timing(scene, 29.97, 1, 120)
    save_blend(path, force=True)
    assert path.stat().st_mtime_ns != stamp

    bpy.ops.wm.open_mainfile(filepath=str(path))
    scene = bpy.context.scene
    assert scene.render.fps / scene.render.fps_base == pytest.approx(29.97)
    assert (scene.render.fps, scene.frame_start, scene.frame_end) == (30, 1, 120)
    strips = list(scene.sequence_editor.strips)
    assert [(s.type, s.frame_start) for s in strips] == [("SOUND", 1)]
    assert Path(bpy.path.abspath(strips[0].sound.filepath)).resolve() == speech.resolve()
    key = bpy.data.objects["emoflame_head"].data.shape_keys
    assert key.animation_data.action.name == "arctic_a0007_happy_take01"


def test_save_refuses_an_unwritable_folder(face):
    with pytest.raises(OutputError, match="cannot write"):
        save_blend("/proc/emoflame_take.blend")


@pytest.mark.parametrize("fmt", ["FLAC", "OGG", "MP3"])
def test_sound_strip_reads_every_supported_format_stereo_at_any_rate(face, tmp_path, shared_data, fmt):
    import soundfile

    speech, rate = soundfile.read(str(shared_data / "speech" / "arctic_a0007.wav"))  # 4.0 s at 16 kHz
    path = tmp_path / f"line.{fmt.lower()}"
    soundfile.write(str(path), np.stack([speech, speech], axis=1), rate, format=fmt)
    scene = bpy.context.scene
    set_scene_timing(scene, 25.0, 1, 100)
    strip = add_sound_strip(scene, path)
    assert strip.frame_start == 1
    # MP3 encoders pad the stream by up to a frame of audio (~0.1 s) at each end.
    assert strip.frame_final_duration == pytest.approx(100, abs=4 if fmt == "MP3" else 1)


def test_sound_strip_refuses_a_missing_file(face, tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        add_sound_strip(bpy.context.scene, tmp_path / "missing.wav")


def test_camera_frames_the_face_from_the_front(avatar, face):
    scene = bpy.context.scene
    landmarks = avatar.landmarks(avatar.vertices)
    users = bpy.data.objects.new("shot_cam", bpy.data.cameras.new("shot_cam"))
    scene.collection.objects.link(users)
    scene.camera = users
    camera = frame_face(scene, face, landmarks)
    assert scene.camera == camera != users
    assert tuple(users.location) == (0, 0, 0)  # the user's camera did not move
    bpy.context.view_layer.update()
    view = np.array([world_to_camera_view(scene, camera, face.matrix_world @ Vector(p)) for p in landmarks])
    assert view[:, :2].min() > 0.1 and view[:, :2].max() < 0.9  # inside the frame with room
    assert np.ptp(view[:, 1]) > 0.4                              # a close-up, not a distant head
    assert (view[:, 2] > 0).all()                                # in front of the camera
    # Symmetric face, camera on its axis: the nose tip is near the horizontal centre.
    assert view[30, 0] == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("options, message", [
    ({"engine": "octane"}, "unknown render engine"),
    ({"resolution": 511}, "even number"),
])
def test_render_settings_refuse_what_cannot_be_rendered(face, options, message):
    with pytest.raises(ValueError, match=message):
        configure_render(bpy.context.scene, **options)


def test_render_settings_give_h264_with_aac(face):
    scene = bpy.context.scene
    configure_render(scene, engine="cycles", resolution=256)
    settings = scene.render
    assert (settings.engine, settings.resolution_x, settings.resolution_y) == ("CYCLES", 256, 256)
    if bpy.app.version >= (5, 0, 0):
        assert (settings.image_settings.media_type, settings.ffmpeg.format) == ("VIDEO", "MPEG4")
    else:  # 4.5 has no media type: FFmpeg is a file format
        assert (settings.image_settings.file_format, settings.ffmpeg.format) == ("FFMPEG", "MPEG4")
    assert (settings.ffmpeg.codec, settings.ffmpeg.audio_codec) == ("H264", "AAC")


def test_the_default_avatar_turns_its_head_about_the_neck_joint(avatar):
    """head_pose goes to the avatar's neck bone: the face turns rigidly about FLAME's neck joint,
    the cut at the shoulders stays, and the eyes and teeth go with the head."""
    from emoflame.addon import rigs
    from emoflame.addon.avatar_object import add_avatar_object

    bpy.ops.wm.read_factory_settings(use_empty=True)
    face = add_avatar_object(avatar)
    clip = _clip(frames=10)
    clip.weights[:] = 0.0
    clip.head_pose = np.zeros((10, 3), np.float32)
    clip.head_pose[:, 1] = np.radians(np.linspace(0.0, 10.0, 10))  # turning to the subject's left
    info = rigs.describe_target(face)
    assert info.head_bone == "neck" and info.armature is face.parent
    actions = rigs.write_take(rigs.prepare_target(info, avatar), clip)
    assert [a.name for a in actions] == ["clip_happy_take01", "clip_happy_take01_pose"]
    scene = bpy.context.scene
    scene.frame_set(10)
    evaluated = face.evaluated_get(bpy.context.evaluated_depsgraph_get())
    co = np.empty(len(evaluated.data.vertices) * 3, np.float32)
    evaluated.data.vertices.foreach_get("co", co)
    posed = co.reshape(-1, 3)
    joint = avatar.joint_regressor[1] @ avatar.vertices
    turn = np.radians(10.0)
    rotation = np.array([[np.cos(turn), 0, np.sin(turn)], [0, 1, 0], [-np.sin(turn), 0, np.cos(turn)]])
    nose = int(np.argmax(avatar.vertices[:, 2]))
    np.testing.assert_allclose(posed[nose], (avatar.vertices[nose] - joint) @ rotation.T + joint, atol=1e-4)
    assert posed[nose, 0] > avatar.vertices[nose, 0] + 0.005  # the nose went to the subject's left (+x)
    bottom = avatar.vertices[:, 1] < avatar.vertices[:, 1].min() + 0.01
    assert np.abs(posed[: avatar.num_vertices][bottom] - avatar.vertices[bottom]).max() < 1e-5
    teeth = posed[avatar.num_vertices:]
    rest_teeth = avatar.interior.vertices
    np.testing.assert_allclose(teeth, (rest_teeth - joint) @ rotation.T + joint, atol=1e-4)


def test_flame_model_becomes_an_mpi_style_rig_that_the_addon_drives(shared_data, tmp_path, avatar):
    """A FLAME model (synthetic bases on the real topology: no real model file is shipped)."""
    from flame_fixtures import synthetic_flame_arrays, write_numpy_pickle

    from emoflame.addon import rigs
    from emoflame.addon.avatar_object import add_flame_object
    from emoflame.core.flame.model import load_flame_model

    model = load_flame_model(write_numpy_pickle(synthetic_flame_arrays(shared_data), tmp_path / "flame.pkl"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    face = add_flame_object(model)
    names = [b.name for b in face.data.shape_keys.key_blocks]
    assert names == ["Basis", *(f"Exp{i}" for i in range(1, 101)), *(f"Pose{i}" for i in range(1, 37))]
    rest = model.v_template.numpy()
    exp7 = model.shapedirs[:, :, model.num_betas + 6].numpy()
    np.testing.assert_allclose(_coords(face.data.shape_keys.key_blocks["Exp7"]), rest + exp7, atol=1e-6)
    armature = face.parent
    assert [b.name for b in armature.data.bones] == list(rigs.FLAME_BONES)
    joints = model.J_regressor.numpy() @ rest
    np.testing.assert_allclose(armature.data.bones["jaw"].head_local, joints[2], atol=1e-6)
    assert armature.data.bones["jaw"].parent.name == "neck"
    jaw_group = face.vertex_groups["jaw"].index
    weights = np.array([sum(g.weight for g in v.groups if g.group == jaw_group) for v in face.data.vertices])
    np.testing.assert_allclose(weights, model.lbs_weights.numpy()[:, 2], atol=1e-6)
    # The add-on recognises it as an MPI FLAME rig with a jaw bone, and writes a take on it.
    info = rigs.describe_target(face)
    assert (info.kind, info.armature) == (rigs.MPI_FLAME, armature)
    clip = _clip(frames=20, audio="a.wav")
    clip.head_pose = np.zeros((20, 3), np.float32)
    clip.head_pose[:, 0] = np.radians(np.linspace(0.0, 5.0, 20))  # a 5° nod
    actions = rigs.write_take(rigs.prepare_target(info, avatar), clip)
    assert [a.name for a in actions] == ["a_happy_take01", "a_happy_take01_pose"]
    # The pose take keys the neck, the jaw and both eyes: the random clip looks around, so the eye
    # bones turn, and the head nods.
    from bpy_extras.anim_utils import action_get_channelbag_for_slot  # 4.5 and 5.0 alike

    curves = action_get_channelbag_for_slot(armature.animation_data.action, armature.animation_data.action_slot).fcurves
    keyed = {c.data_path.split('"')[1] for c in curves}
    assert keyed == {"neck", "jaw", "left_eye", "right_eye"}
    for bone in ("left_eye", "right_eye"):
        values = np.array([[c.evaluate(f) for f in range(1, 21)] for c in curves if f'"{bone}"' in c.data_path])
        assert np.ptp(values, axis=1).max() > 0.01, f"the {bone} bone does not move"
    # The nod: the neck's correctives (Pose1..Pose9, R - I) and the posed head agree with FLAME.
    bpy.context.scene.frame_set(20)
    neck = np.array(armature.pose.bones["neck"].matrix_basis.to_3x3())
    rest = np.array(armature.data.bones["neck"].matrix_local.to_3x3())
    nod = rest @ neck @ rest.T  # in the mesh's frame, which the rig map fits to FLAME's within 2e-5 rad
    expected = np.array([[1, 0, 0], [0, np.cos(np.radians(5)), -np.sin(np.radians(5))],
                         [0, np.sin(np.radians(5)), np.cos(np.radians(5))]])
    np.testing.assert_allclose(nod, expected, atol=1e-4)
    key = face.data.shape_keys
    correctives = np.array([key.key_blocks[f"Pose{i}"].value for i in range(1, 10)]).reshape(3, 3)
    np.testing.assert_allclose(correctives, expected - np.eye(3), atol=1e-5)


def test_rendered_frames_read_back_as_the_keyed_expressions(avatar, face, shared_data, tmp_path):
    """An independent reading: MediaPipe's face landmarker finds the framed face in Workbench
    renders and reads jawOpen and mouthSmile back from the frames the Action keys."""
    import mediapipe as mp

    weights = np.zeros((3, len(ARKIT_CHANNELS)), np.float32)
    weights[1, ARKIT_CHANNELS.index("jawOpen")] = 0.8
    weights[2, [ARKIT_CHANNELS.index("mouthSmile_L"), ARKIT_CHANNELS.index("mouthSmile_R")]] = 1.0
    clip = AnimationClip(25.0, np.zeros(3), np.zeros((3, 0)), weights, ARKIT_CHANNELS)
    scene = bpy.context.scene
    write_action(face.data.shape_keys, clip, rigmap_for_avatar(avatar))
    set_scene_timing(scene, 25.0, 1, 3)
    configure_render(scene, resolution=256)
    frame_face(scene, face, avatar.landmarks(avatar.vertices))
    set_image_output(scene.render.image_settings, "PNG")
    options = mp.tasks.vision.FaceLandmarkerOptions(
        base_options=mp.tasks.BaseOptions(model_asset_path=str(shared_data / "models" / "face_landmarker.task")),
        output_face_blendshapes=True)
    scores = []
    with mp.tasks.vision.FaceLandmarker.create_from_options(options) as landmarker:
        for frame in (1, 2, 3):
            scene.frame_set(frame)
            scene.render.filepath = str(tmp_path / f"frame{frame}.png")
            bpy.ops.render.render(write_still=True)
            result = landmarker.detect(mp.Image.create_from_file(scene.render.filepath))
            assert result.face_blendshapes, f"no face found in the render of frame {frame}"
            scores.append({c.category_name: c.score for c in result.face_blendshapes[0]})
    rest, jaw, smile = scores
    assert jaw["jawOpen"] > rest["jawOpen"] + 0.3            # measured: 0.06 at rest, 0.53 keyed at 0.8
    assert min(smile["mouthSmileLeft"], smile["mouthSmileRight"]) > 0.6   # measured: 0.91, 0.90
    assert max(rest["mouthSmileLeft"], rest["mouthSmileRight"]) < 0.3
