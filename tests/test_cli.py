"""The ``emoflame`` command: one end-to-end run on real speech, every bad input of issue 3, and the
command-line findings of issue 13 (outputs that name an input, a full disk, ``~``, long names,
one-line usage errors, quiet library bars, stdout holding only paths, EEVEE without a GPU)."""

import os
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
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

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
    channelbag = action_get_channelbag_for_slot(action, key.animation_data.action_slot)  # 4.5 and 5.0 alike
    fcurves = {f.data_path.split('"')[1]: f for f in channelbag.fcurves}
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


def test_the_jaw_dial_scales_the_jaw_and_leaves_the_rest_of_the_take(run, speech, tmp_path):
    from emoflame.core.channels import CHANNEL_INDEX
    from emoflame.core.clip import AnimationClip

    assert main(["animate", str(speech), "--emotion", "happy", "--jaw", "0.5", "-q", "--clip",
                 str(tmp_path / "half.npz")]) == 0
    full, half = (AnimationClip.load(p) for p in (run[1] / "take.npz", tmp_path / "half.npz"))
    jaw = CHANNEL_INDEX["jawOpen"]
    assert half.weights[:, jaw].max() < 0.75 * full.weights[:, jaw].max()
    np.testing.assert_array_equal(half.weights[:, CHANNEL_INDEX["browDown_L"]], full.weights[:, CHANNEL_INDEX["browDown_L"]])


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
    ("{tmp}/" + "a" * 300 + ".blend", "is 306 bytes long; this file system allows at most 255"),
    ("{tmp}/" + "b" * 300 + "/take.blend", "is 300 bytes long"),
    ("{tmp}/take.npz", "needs your FLAME model"),
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
    assert "--render-engine {workbench,eevee,cycles,portrait,neural}" in result.stdout and "--portrait" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_missing_flame_model_is_named_before_any_work(speech, tmp_path, capsys):
    code = main(["animate", str(speech), "-o", str(tmp_path / "take.blend"), "--flame-model", str(tmp_path / "generic_model.pkl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "FLAME model file not found" in err[0] and "flame.is.tue.mpg.de" in err[0]
    assert list(tmp_path.iterdir()) == []


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emoflame: error: "), err
    return err[0]


@pytest.mark.parametrize("argv, message", [
    (["animate"], "the following arguments are required: audio (see emoflame animate --help)"),
    (["animate", "x.wav", "-o", "x.blend", "--fps", "1e-300"], "argument --fps: '1e-300' is not a frame rate"),
    (["animate", "x.wav", "-o", "x.blend", "--fps", "nan"], "give a number from 1 to 240"),
    (["animate", "x.wav", "-o", "x.blend", "--seed", "-1"], "argument --seed: the seed is '-1'; give a whole number"),
    (["animate", "x.wav", "-o", "x.blend", "--seed", "1e30"], "give a whole number from 0 to 4294967295"),
    (["animate", "x.wav", "-o", "x.blend", "--resolution", "63"], "cannot be encoded as H.264"),
    (["animate", "x.wav", "-o", "x.blend", "--engine", "magic"], "argument --engine: invalid choice: 'magic'"),
    (["animate", "x.wav", "-o", "x.blend", "--jaw", "3"], "argument --jaw: '3' is not a dial setting; give 0 to 2"),
    (["animate", "x.wav", "-o", "x.blend", "--lips", "nan"], "argument --lips: 'nan' is not a dial setting"),
    (["batch", "m.csv", "--out-dir", "o", "--workers", "0"], "argument --workers: '0' is not a number of worker"),
    (["dance"], "invalid choice: 'dance' (choose from 'animate', 'batch') (see emoflame --help)"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert message in _one_error_line(capsys)


def test_a_take_with_nothing_to_write_or_a_photo_engine_without_a_photo_is_refused(speech, capsys):
    assert main(["animate", str(speech)]) == 2
    assert "nothing to write: give -o OUT.blend" in _one_error_line(capsys)
    assert main(["animate", str(speech), "--render-engine", "portrait", "--render", "x.mp4"]) == 2
    assert "renders a photo: add --portrait PHOTO" in _one_error_line(capsys)
    assert main(["animate", str(speech), "--portrait", str(speech), "--render", "x.mp4"]) == 2
    assert "is not an image" in _one_error_line(capsys)


def test_an_output_that_names_an_input_is_refused_and_nothing_is_written(speech, tmp_path, capsys):
    recording = tmp_path / "take.blend"  # a recording whose name looks like an output (issue 13)
    recording.write_bytes(speech.read_bytes())
    ramp = tmp_path / "ramp.csv"
    ramp.write_text("time,intensity\n0,0.2\n4,0.9\n")
    (tmp_path / "link.glb").symlink_to(speech)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for argv in ([str(recording), "-o", str(recording), "--force"],
                 [str(speech), "-o", str(tmp_path / "new.blend"), "-o", str(ramp), "--intensity", str(ramp), "--force"],
                 [str(speech), "-o", str(tmp_path / "link.glb"), "--force"]):
        assert main(["animate", *argv, "-q"]) == 2
        assert "is also an input of this run" in _one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_tilde_is_expanded_once_at_the_front_door(speech, tmp_path, monkeypatch, capsys):
    from emoflame.core.outputs import output_path

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "mine.blend").write_bytes(b"mine")
    assert output_path("~/takes/x.blend") == tmp_path / "takes" / "x.blend"
    assert output_path("takes/~x.blend") == Path.cwd() / "takes" / "~x.blend"  # only a leading ~
    assert main(["animate", str(speech), "-o", "~/mine.blend"]) == 2
    assert f"{tmp_path / 'mine.blend'} already exists" in _one_error_line(capsys)


def test_eevee_without_a_gpu_is_refused_before_any_work(speech, tmp_path, capsys):
    from emoflame.renderers.blender_video import has_gpu

    if has_gpu():
        pytest.skip("this machine has a GPU: EEVEE renders")
    code = main(["animate", str(speech), "-o", str(tmp_path / "take.blend"), "--render", str(tmp_path / "take.mp4"),
                 "--render-engine", "eevee"])
    line = _one_error_line(capsys)
    assert code == 2 and "eevee needs a GPU" in line and "workbench" in line and "cycles" in line
    assert list(tmp_path.iterdir()) == []


def test_stdout_holds_only_the_paths_even_with_debug_logging(speech, tmp_path):
    out = tmp_path / "take.blend"
    result = subprocess.run([sys.executable, "-m", "emoflame.cli", "animate", str(speech), "-o", str(out), "--debug"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [str(out)]
    assert "Info: Saved copy as" in result.stderr  # Blender's line goes to stderr when debugging


def test_quiet_silences_the_libraries_loading_bars():
    """transformers' "Loading weights" bar (sentence-transformers' MiniLM, the learned engine's
    text encoder) is shown by default; -q turns it off with emoflame's own bars."""
    code = ("from emoflame.cli import _silence_library_progress_bars\n_silence_library_progress_bars()\n"
            "from emoflame.core.emotion.text import text_encoder\nprint(text_encoder('minilm').encode(['happy']).shape)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(1, 384)"
    assert "Loading weights" not in result.stderr and "it/s" not in result.stderr


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a 2 MB tmpfs with 8 KB left, less than a 4 s clip needs (root only: skipped where
    it cannot be mounted)."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip()}); "
                    f"test_a_full_disk_simulated_in_process covers the messages")
    try:
        filler = folder / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:  # full
            pass
        finally:
            os.close(fd)
        os.truncate(filler, filler.stat().st_size - 8192)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("option, name", [("--render", "take.mp4"), ("--clip", "take.npz")])
def test_a_full_disk_gives_one_line_exit_2_and_replaces_nothing(speech, tmp_path, full_disk, option, name):
    existing = full_disk / name
    existing.write_bytes(b"the animator's good file")
    result = subprocess.run(
        [sys.executable, "-m", "emoflame.cli", "animate", str(speech), "-o", str(tmp_path / "take.blend"),
         option, str(existing), "--resolution", "64", "--force", "-q"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"emoflame: error: no space left on the device holding {full_disk} while writing {name}; free some space or "
        f"choose another folder (nothing was replaced)"]
    assert result.stdout == ""
    assert existing.read_bytes() == b"the animator's good file"
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", name]
    assert not (tmp_path / "take.blend").exists()


def test_a_full_disk_simulated_in_process(speech, tmp_path, monkeypatch, capsys):
    """Where no small file system can be mounted: the clip's writer meets ENOSPC (zipfile then
    fails again with "seek of closed file", the original finding) and the message is the same."""
    import errno

    from emoflame.core.clip import AnimationClip

    def full(self, path):
        with open(path, "wb") as f:
            f.write(b"PK")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise ValueError("seek of closed file")

    monkeypatch.setattr(AnimationClip, "save", full)
    existing = tmp_path / "take.npz"
    existing.write_bytes(b"good clip")
    code = main(["animate", str(speech), "-o", str(tmp_path / "take.csv"), "--clip", str(existing), "--force", "-q"])
    assert code == 2
    assert "no space left on the device holding" in _one_error_line(capsys)
    assert existing.read_bytes() == b"good clip" and sorted(p.name for p in tmp_path.iterdir()) == ["take.npz"]


def test_exports_by_suffix_are_printed_in_the_order_given(speech, tmp_path):
    outs = [tmp_path / n for n in ("take.csv", "take.glb", "take.blend")]
    result = subprocess.run(
        [sys.executable, "-m", "emoflame.cli", "animate", str(speech), *[a for o in outs for a in ("-o", str(o))], "-q"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [str(o) for o in outs]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(o.name for o in outs)
    assert result.stderr == ""  # -q: nothing but warnings, and there are none


def test_a_portrait_video_alone(speech, tmp_path, capsys):
    """--portrait without -o: only the video, rendered from the shipped neutral portrait."""
    import av

    out = tmp_path / "portrait.mp4"
    assert main(["animate", str(speech), "--emotion", "happy", "--portrait", "--render", str(out),
                 "--resolution", "256", "-q"]) == 0
    assert capsys.readouterr().out.split() == [str(out)] and sorted(tmp_path.iterdir()) == [out]
    with av.open(str(out)) as video:
        stream = video.streams.video[0]
        assert max(stream.width, stream.height) == 256 and len(video.streams.audio) == 1
        assert sum(1 for _ in video.decode(stream)) == 100
