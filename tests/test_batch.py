"""``emoflame batch``: the manifest's checks, a real batch in local worker processes (good lines
written, a broken file reported, a re-run does nothing, a changed line runs again), and one batch
on a local Ray started by the test."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from emoflame.core.batch.manifest import ManifestError, read_manifest


@pytest.fixture(scope="module")
def speech(shared_data) -> Path:
    return shared_data / "speech" / "arctic_a0007.wav"


def test_manifest_lines_are_checked_one_by_one_with_their_line_numbers(tmp_path, speech):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "a.wav").write_bytes(speech.read_bytes())
    (tmp_path / "ramp.csv").write_text("time,intensity\n0,0\n4,1\n")
    (tmp_path / "lines.csv").write_text(
        "audio,emotion,intensity,transcript,name\n"
        "audio/a.wav,happy,,,\n"                      # 2: relative to the manifest
        "audio/a.wav,sad,0.4,the words,\n"            # 3
        ",angry,,,\n"                                 # 4: no audio
        "audio/missing.wav,,,,\n"                     # 5
        "audio/a.wav,,2,,\n"                          # 6: intensity out of range
        "audio/a.wav,,ramp.csv,,ramped\n"             # 7: a curve file
        "audio/a.wav,,,,../escape\n"                  # 8: not a file name
        "audio/a.wav,,,,ramped\n")                    # 9: name taken
    lines = read_manifest(tmp_path / "lines.csv")
    assert [line.number for line in lines] == [2, 3, 4, 5, 6, 7, 8, 9]
    good = {line.number: line for line in lines if line.error is None}
    assert sorted(good) == [2, 3, 7]
    assert good[2].audio == tmp_path / "audio" / "a.wav" and good[2].name == "a_happy"
    assert good[3].intensity == 0.4 and good[3].transcript == "the words" and good[3].name == "a_sad"
    assert good[7].intensity == str(tmp_path / "ramp.csv") and good[7].name == "ramped"
    errors = {line.number: line.error for line in lines if line.error}
    assert errors[4].startswith("line 4: no audio")
    assert errors[5].startswith("line 5: audio file not found") and "relative to the manifest" in errors[5]
    assert errors[6].startswith("line 6: the intensity is 2.0; it must lie in [0, 1]")
    assert errors[8].startswith("line 8: the name '../escape' cannot be a file name")
    assert errors[9] == "line 9: the name 'ramped' is also line 7's; give each line its own name"


def test_json_lines_manifest_and_whole_file_errors(tmp_path, speech):
    manifest = tmp_path / "lines.jsonl"
    manifest.write_text(json.dumps({"audio": str(speech), "emotion": "neutral@0,angry@2.5", "intensity": 0.8}) + "\n\n"
                        + '{"audio": "x.wav", "pitch": 3}\n[1, 2]\n')
    first, unknown, not_object = read_manifest(manifest)
    assert first.error is None and first.emotion == "neutral@0,angry@2.5" and first.intensity == 0.8
    assert first.name == "arctic_a0007" and (unknown.number, not_object.number) == (3, 4)
    assert "pitch" in unknown.error and "not a JSON object" in not_object.error
    (tmp_path / "bad.csv").write_text("audio,mood\nx.wav,happy\n")
    with pytest.raises(ManifestError, match="columns audio, mood.*not mood"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(ManifestError, match="no lines"):
        (tmp_path / "empty.csv").write_text("\n")
        read_manifest(tmp_path / "empty.csv")
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "none.csv")


def _manifest(folder: Path, speech: Path, emotions=("happy", "sad", "angry")) -> Path:
    broken = folder / "broken.wav"
    broken.write_text("this is not audio\n")
    rows = [f"{speech},{emotion}," for emotion in emotions] + [f"{broken},happy,"]
    path = folder / "lines.csv"
    path.write_text("audio,emotion,name\n" + "\n".join(rows) + "\n")
    return path


def _batch(manifest: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emoflame.cli", "batch", str(manifest), "--out-dir", str(out),
                           "--formats", "npz,blend", *extra], capture_output=True, text=True, timeout=900)


def _report(out: Path) -> dict:
    return {row["line"]: row for row in json.loads((out / "emoflame_batch_report.json").read_text())["lines"]}


def test_a_local_batch_writes_the_good_lines_reports_the_broken_one_and_a_rerun_does_nothing(tmp_path, speech):
    from emoflame.core.clip import AnimationClip

    manifest = _manifest(tmp_path, speech)
    out = tmp_path / "out"
    result = _batch(manifest, out, "--workers", "2", "-q")
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stdout.splitlines() == [str(out / "emoflame_batch_report.csv"), str(out / "emoflame_batch_report.json")]
    assert result.stderr.strip().splitlines()[-1] == (
        f"emoflame: error: 1 of 4 lines failed; their errors are in {out / 'emoflame_batch_report.csv'}")
    report = _report(out)
    assert [report[n]["status"] for n in (2, 3, 4, 5)] == ["done", "done", "done", "failed"]
    assert "broken.wav" in report[5]["error"] and report[5]["name"] == "broken"
    names = ["arctic_a0007_happy", "arctic_a0007_sad", "arctic_a0007_angry"]
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(
        [f"{n}{s}" for n in names for s in (".blend", ".npz")] + ["emoflame_batch_report.csv", "emoflame_batch_report.json"])
    clips = {n: AnimationClip.load(out / f"{n}.npz") for n in names}
    assert [clips[n].emotion for n in names] == ["happy", "sad", "angry"]
    assert not np.allclose(clips[names[0]].weights, clips[names[1]].weights)  # the emotion reached each line
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file() and "report" not in p.name}

    start = time.monotonic()
    again = _batch(manifest, out, "--workers", "2", "-q")
    seconds = time.monotonic() - start
    assert again.returncode == 2
    report = _report(out)
    assert [report[n]["status"] for n in (2, 3, 4, 5)] == ["skipped", "skipped", "skipped", "failed"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file() and "report" not in p.name} == stamps
    assert seconds < 30  # no worker was started: nothing to do

    # A changed line runs again and replaces what the batch itself wrote, without --force.
    manifest.write_text(manifest.read_text().replace(",sad,", ",fearful,"))
    third = _batch(manifest, out, "--workers", "1", "-q")
    report = _report(out)
    assert third.returncode == 2 and [report[n]["status"] for n in (2, 3, 4)] == ["skipped", "done", "skipped"]
    assert report[3]["name"] == "arctic_a0007_fearful" and (out / "arctic_a0007_fearful.npz").is_file()
    assert not [p for p in out.rglob("*") if ".emoflame-" in p.name]


def test_a_batch_refuses_to_overwrite_files_it_did_not_write(tmp_path, speech):
    manifest = tmp_path / "lines.csv"
    manifest.write_text(f"audio,name\n{speech},take\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "take.blend").write_bytes(b"the animator's own")
    result = _batch(manifest, out, "--workers", "1", "-q")
    assert result.returncode == 2
    assert "take.blend already exists; choose another name or pass --force" in _report(out)[2]["error"]
    assert (out / "take.blend").read_bytes() == b"the animator's own" and not (out / "take.npz").exists()


def test_a_batch_on_a_local_ray_started_by_the_test(tmp_path, speech):
    ray = pytest.importorskip("ray")
    from emoflame import __version__
    from emoflame.cli import write_take
    from emoflame.core.batch import run_batch
    from emoflame.core.batch.job import TakeRequest

    manifest = _manifest(tmp_path, speech, emotions=("happy", "surprised"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_batch(manifest, tmp_path / "out", write_take, template=TakeRequest(Path(), (), progress=False),
                            kinds=("clip", "blend"), ray=None, version=__version__, progress=False)
    finally:
        ray.shutdown()
    assert [(r.line, r.status) for r in summary.results] == [(2, "done"), (3, "done"), (4, "failed")]
    assert "broken.wav" in summary.results[2].error
    for result in summary.results[:2]:
        assert all(Path(p).is_file() for p in result.outputs) and len(result.outputs) == 2
    assert [p.name for p in summary.report] == ["emoflame_batch_report.csv", "emoflame_batch_report.json"]


def _dies_on_crash_lines(request, outputs):
    """A take writer for the pool's own test: the process dies on a line whose audio is called
    crash.wav (as a segfault in native code would); other lines get a stub file."""
    import os

    if request.audio.name == "crash.wav":
        os._exit(9)
    for output in request.outputs:
        outputs.stage(output.path).write_text("stub")


def test_a_worker_that_dies_is_replaced_its_line_retried_then_reported_and_the_batch_goes_on(tmp_path):
    from emoflame.core.batch.job import Output, TakeRequest
    from emoflame.core.batch.runner import MAX_RETRIES, LineJob, run_local

    def job(line, audio):
        request = TakeRequest(tmp_path / audio, (Output(tmp_path / f"{line}.npz", "clip"),))
        return LineJob(line, str(line), request, "key", tmp_path / ".emoflame" / f"{line}.json")

    results = {r.line: r for r in run_local([job(2, "crash.wav"), job(3, "fine.wav"), job(4, "fine.wav")],
                                            _dies_on_crash_lines, workers=1)}
    assert results[3].status == results[4].status == "done"
    assert results[2].status == "failed"
    assert f"the worker process died {MAX_RETRIES + 1} times on this line (exit code 9)" in results[2].error
    assert sorted(p.name for p in tmp_path.iterdir()) == [".emoflame", "3.npz", "4.npz"]
