"""The ``emoflame`` command: one end-to-end run on real speech, and every bad input of issue 3."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from emoflame.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speech(shared_data) -> Path:
    return shared_data / "speech" / "arctic_a0007.wav"


@pytest.fixture(scope="module")
def run(speech, tmp_path_factory):
    """One real run: arctic_a0007 (4 s), happy, .blend + 128 px MP4 + clip, into a folder that
    does not exist yet."""
    out = tmp_path_factory.mktemp("run") / "takes"
    result = subprocess.run(
        [sys.executable, "-m", "emoflame.cli", "animate", str(speech), "--emotion", "happy",
         "-o", str(out / "take.blend"), "--render", str(out / "take.mp4"), "--clip", str(out / "take.npz"),
         "--resolution", "128"],
        capture_output=True, text=True, timeout=600)
    return result, out


def test_run_writes_exactly_the_files_asked_for_and_prints_their_paths(run):
    result, out = run
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["take.blend", "take.mp4", "take.npz"]
    # stdout carries only the paths (Blender's own prints are kept off it), for pipelines.
    assert result.stdout.splitlines() == [str(out / name) for name in ("take.npz", "take.blend", "take.mp4")]
    # Progress and step timings go to stderr.
    assert "emoflame: rendered take.mp4 in" in result.stderr and "scene: 100%" in result.stderr


def test_saved_scene_animates_the_head_over_the_audio_at_the_right_rate(run, speech):
    import bpy
    from bpy_extras.anim_utils import animdata_get_channelbag_for_assigned_slot

    duration = soundfile.info(str(speech)).duration  # 4.0 s
    bpy.ops.wm.open_mainfile(filepath=str(run[1] / "take.blend"))
    scene = bpy.context.scene
    assert scene.render.fps / scene.render.fps_base == pytest.approx(25.0)
    assert scene.frame_start == 1
    assert scene.frame_end == pytest.approx(duration * 25, abs=2)

    sounds = [s for s in scene.sequence_editor.strips if s.type == "SOUND"]
    assert [s.frame_start for s in sounds] == [1]
    assert Path(bpy.path.abspath(sounds[0].sound.filepath)).resolve() == speech.resolve()
    assert sounds[0].frame_final_duration == pytest.approx(duration * 25, abs=2)

    head = bpy.data.objects["emoflame_head"]
    key = head.data.shape_keys
    action = key.animation_data.action
    assert action.name == "arctic_a0007_happy_take01"
    fcurves = {f.data_path.split('"')[1]: f for f in animdata_get_channelbag_for_assigned_slot(key.animation_data).fcurves}
    assert {"jawOpen", "mouthClose", "eyeBlink_L", "mouthSmile_L"} <= set(fcurves)
    for fcurve in fcurves.values():
        first, last = fcurve.range()
        assert first == 1 and last == scene.frame_end
    jaw = np.array([fcurves["jawOpen"].evaluate(f) for f in range(scene.frame_start, scene.frame_end + 1)])
    assert jaw.max() > 0.2 and jaw.std() > 0.05          # the mouth moves while he speaks
    smile = np.array([fcurves["mouthSmile_L"].evaluate(f) for f in range(scene.frame_start, scene.frame_end + 1)])
    assert smile.mean() > 0.05                            # happy shows
    # It opens on the face: the 3D viewports look through the camera at the vertex colours.
    views = [s for screen in bpy.data.screens for a in screen.areas for s in a.spaces if s.type == "VIEW_3D"]
    assert views and all(v.region_3d.view_perspective == "CAMERA" and v.shading.color_type == "VERTEX" for v in views)
    # The saved file plays: evaluating a frame drives the shape key from the Action.
    frame = int(np.argmax(jaw)) + 1
    scene.frame_set(frame)
    assert key.key_blocks["jawOpen"].value == pytest.approx(jaw[frame - 1], abs=1e-4)


def test_clip_file_holds_the_same_animation(run, speech):
    from emoflame.core.clip import AnimationClip

    clip = AnimationClip.load(run[1] / "take.npz")
    assert clip.fps == 25.0 and clip.emotion == "happy"
    assert clip.duration == pytest.approx(soundfile.info(str(speech)).duration, abs=0.08)
    assert Path(clip.audio_path).resolve() == speech.resolve()


def test_video_has_every_frame_and_the_sound(run, speech):
    import aud
    import bpy

    mp4 = run[1] / "take.mp4"
    sound = aud.Sound(str(mp4))
    rate = sound.specs[0]
    duration = soundfile.info(str(speech)).duration
    assert sound.length / rate == pytest.approx(duration, abs=0.1)
    # The audio track is the recording, not silence.
    assert np.abs(sound.data()).max() > 0.1
    movie = bpy.data.movieclips.load(str(mp4))
    assert tuple(movie.size) == (128, 128)
    assert movie.frame_duration == pytest.approx(duration * 25, abs=2)


def _bad_audio(kind: str, folder: Path) -> Path:
    path = folder / f"{kind}.wav"
    if kind == "unreadable":
        path.write_text("this is not audio\n")
    elif kind == "empty":
        soundfile.write(str(path), np.zeros(0, np.float32), 16000)
    elif kind == "silent":
        soundfile.write(str(path), np.zeros(32000, np.float32), 16000)
    elif kind == "over_an_hour":
        soundfile.write(str(path), np.zeros(1000 * 3601, np.int16), 1000, subtype="PCM_16")
    return path


@pytest.mark.parametrize("kind, message", [
    ("unreadable", "cannot read"),
    ("empty", "empty"),
    ("silent", "silent"),
    ("over_an_hour", "hour"),
    ("missing", "not found"),
])
def test_bad_audio_gives_one_line_exit_2_and_writes_nothing(kind, message, tmp_path, capsys):
    audio = _bad_audio(kind, tmp_path)
    out = tmp_path / "out"
    code = main(["animate", str(audio), "-o", str(out / "take.blend"), "--render", str(out / "take.mp4"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("emoflame: error:") and message in err[0].lower(), err
    assert not out.exists()  # the folder it made for the outputs is gone again


def test_existing_output_is_refused_untouched_without_force(speech, tmp_path):
    blend = tmp_path / "take.blend"
    blend.write_bytes(b"the animator's own file")
    result = subprocess.run([sys.executable, "-m", "emoflame.cli", "animate", str(speech), "-o", str(blend)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"emoflame: error: {blend} already exists; choose another name or pass --force to replace it"]
    assert blend.read_bytes() == b"the animator's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.blend"]


@pytest.mark.parametrize("output, message", [
    ("/proc/emoflame/take.blend", "cannot write to the folder /proc/emoflame"),
    ("{tmp}/take.mp4", "should end in .blend"),
    ("{tmp}", "is a folder"),
])
def test_unwritable_or_wrong_outputs_are_refused_before_any_work(speech, tmp_path, capsys, output, message):
    code = main(["animate", str(speech), "-o", output.format(tmp=tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_help_is_instant_and_imports_nothing_heavy():
    code = ("import sys\nfrom emoflame.cli import main\n"
            "try:\n    main(['animate', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'bpy', 'numpy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert "--render-engine {workbench,eevee,cycles}" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_missing_flame_model_is_named_before_any_work(speech, tmp_path, capsys):
    code = main(["animate", str(speech), "-o", str(tmp_path / "take.blend"), "--flame-model", str(tmp_path / "generic_model.pkl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "FLAME model file not found" in err[0] and "flame.is.tue.mpg.de" in err[0]
    assert list(tmp_path.iterdir()) == []
