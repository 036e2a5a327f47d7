"""A take saved by one Blender plays the same in the other: 4.5 LTS → 5.0 and 5.0 → 4.5 (issue 14).

Each direction writes a .blend with ``emoflame animate`` under one Blender's Python, then opens it
with ``tests/read_take.py`` under both and compares what they read: the frame rate and range, the
sound strip, the render settings, the take's Action, every F-curve on every frame, and the shape
keys the animation system sets when the frame changes. The writer's own reading is the reference.

It needs both Pythons: the one running pytest, and the other Blender's, found as
``$EMOFLAME_OTHER_BLENDER_PYTHON`` or else as the repository's ``.venv45/bin/python`` (under
5.0) or ``.venv/bin/python`` (under 4.5), which ``.ci/blender45`` builds. Without it the tests
skip, saying which Python they looked for.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
READER = Path(__file__).with_name("read_take.py")
OTHER_ENV = "EMOFLAME_OTHER_BLENDER_PYTHON"
LTS, CURRENT = (4, 5), (5, 0)


def _bpy_version(python: str) -> tuple[int, int] | None:
    result = subprocess.run([python, "-c", "import bpy; print(*bpy.app.version[:2])"],
                            capture_output=True, text=True, timeout=120)
    return tuple(int(v) for v in result.stdout.split()[-2:]) if result.returncode == 0 else None


@pytest.fixture(scope="module")
def pythons() -> dict:
    """{(4, 5): python, (5, 0): python}: this Blender's and the other's."""
    import bpy

    this = tuple(bpy.app.version[:2])
    if this not in (LTS, CURRENT):
        pytest.skip(f"bpy {this} is neither 4.5 nor 5.0")
    venv, built_by = (".venv45", ".ci/blender45") if this == CURRENT else (".venv", "the README's install command")
    other = os.environ.get(OTHER_ENV) or str(REPO / venv / "bin" / "python")
    if not Path(other).is_file():
        pytest.skip(f"no Python with the other Blender to compare with: {other} is absent "
                    f"({built_by} builds it; or set {OTHER_ENV})")
    other_version = _bpy_version(other)
    if other_version not in (LTS, CURRENT) or other_version == this:
        pytest.skip(f"{other} has bpy {other_version}, not the other of 4.5 and 5.0 (this one is {this})")
    return {this: sys.executable, other_version: other}


def _animate(python: str, audio: Path, blend: Path) -> None:
    result = subprocess.run([python, "-m", "emoflame.cli", "animate", str(audio), "--emotion", "happy",
                             "--render-engine", "eevee", "-o", str(blend), "-q"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def _read(python: str, blend: Path) -> tuple[dict, str]:
    result = subprocess.run([python, str(READER), str(blend)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("TAKE ")]
    return json.loads(line[5:]), result.stdout + result.stderr


#: The EEVEE engine's identifier in each Blender: 5.0 renamed 4.5's "EEVEE Next" back.
EEVEE = {LTS: "BLENDER_EEVEE_NEXT", CURRENT: "BLENDER_EEVEE"}


@pytest.mark.parametrize("writer, reader", [(LTS, CURRENT), (CURRENT, LTS)], ids=["4.5-to-5.0", "5.0-to-4.5"])
def test_a_take_saved_by_one_blender_plays_the_same_in_the_other(pythons, writer, reader, shared_data, tmp_path):
    speech = shared_data / "speech" / "arctic_a0007.wav"
    blend = tmp_path / "take.blend"
    _animate(pythons[writer], speech, blend)
    expected, _ = _read(pythons[writer], blend)
    got, log = _read(pythons[reader], blend)

    assert tuple(got["blender"][:2]) == reader and tuple(got["file_blender"][:2]) == writer
    if reader < writer:  # Blender opens a newer file, with this warning, and keeps what emoflame wrote
        assert "File written by newer Blender binary" in log
    assert got["fps"] == expected["fps"] == 25.0
    assert got["frames"] == expected["frames"] == [1, 100]
    assert got["sounds"] == expected["sounds"]
    assert [(s["frame_start"], s["file"]) for s in got["sounds"]] == [(1, str(speech.resolve()))]
    assert got["render"] == [EEVEE[reader], "FFMPEG", "MPEG4", "H264", "AAC"]
    assert expected["render"][0] == EEVEE[writer]
    assert (got["action"], got["slot"]) == (expected["action"], expected["slot"]) == ("arctic_a0007_happy_take01", "KEemoflame_head_keys")
    assert got["properties"] == expected["properties"] == {"emoflame_take": True, "emoflame_emotion": "happy", "emoflame_fps": 25.0}

    assert sorted(got["curves"]) == sorted(expected["curves"]) and len(got["curves"]) == 53
    for path, values in expected["curves"].items():
        np.testing.assert_allclose(got["curves"][path], values, atol=1e-6, err_msg=path)
    for name, values in expected["played"].items():
        np.testing.assert_allclose(got["played"][name], values, atol=1e-6, err_msg=name)
    # Playing is the curves: each keyed shape key takes its F-curve's value on every frame.
    for path, values in got["curves"].items():
        np.testing.assert_allclose(got["played"][path.split('"')[1]], values, atol=1e-6, err_msg=path)
    jaw = np.array(got["played"]["jawOpen"])
    assert jaw.max() > 0.2 and jaw.std() > 0.05  # the mouth moves while he speaks
