"""Interruption never leaves a file behind or changes one (issue 13): the transaction layer on its
own, a real signal in the middle of a commit, and real SIGINT/SIGTERM sent to a real
``emoflame animate`` and ``emoflame batch`` at several points, with and without ``--force``."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emoflame.core.errors import OutputError
from emoflame.core.outputs import Transaction, is_temporary


def _contents(folder: Path) -> dict:
    return {p.name: (p.read_bytes() if p.is_file() else "dir") for p in sorted(folder.iterdir())}


def test_commit_renames_every_output_at_once_and_leaves_no_temporary(tmp_path):
    targets = [tmp_path / "new" / "a.blend", tmp_path / "new" / "b.csv"]
    with Transaction() as outputs:
        outputs.check(targets)
        for target in targets:
            outputs.stage(target).write_text(target.name)
        assert not any(t.exists() for t in targets)  # nothing appears before the commit
        assert outputs.commit() == targets
    assert _contents(tmp_path / "new") == {"a.blend": b"a.blend", "b.csv": b"b.csv"}


def test_a_failed_job_removes_its_temporaries_and_the_folders_it_made(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with Transaction() as outputs:
            outputs.check([tmp_path / "made" / "deeper" / "a.blend"])
            outputs.stage(tmp_path / "made" / "deeper" / "a.blend").write_text("half")
            raise RuntimeError("the job failed")
    assert _contents(tmp_path) == {"keep.txt": b"mine"}


def test_without_force_a_file_that_appears_during_the_job_is_kept_and_the_commit_undone(tmp_path):
    first, second = tmp_path / "a.blend", tmp_path / "b.glb"
    with Transaction() as outputs:
        outputs.check([first, second])
        outputs.stage(first).write_text("new a")
        outputs.stage(second).write_text("new b")
        second.write_text("someone else's b")  # appeared while emoflame worked
        with pytest.raises(OutputError, match="appeared while emoflame worked"):
            outputs.commit()
    assert _contents(tmp_path) == {"b.glb": b"someone else's b"}


def test_force_replaces_only_at_the_commit_and_a_failed_rename_puts_every_file_back(tmp_path):
    first, second = tmp_path / "a.blend", tmp_path / "b.glb"
    first.write_text("old a")
    second.write_text("old b")
    with Transaction(force=True) as outputs:
        outputs.check([first, second])
        outputs.stage(first).write_text("new a")
        temporary = outputs.stage(second)
        temporary.mkdir()  # a rename that cannot happen: a folder cannot replace a file
        assert first.read_text() == "old a"
        with pytest.raises(OSError):
            outputs.commit()
    assert _contents(tmp_path) == {"a.blend": b"old a", "b.glb": b"old b"}


def test_a_signal_during_the_commit_undoes_the_renames_already_made(tmp_path):
    """SIGTERM arrives between the two renames: the first is put back, then the process exits 143."""
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from emoflame.core import outputs as o
        folder = Path({str(tmp_path)!r})
        real = os.replace
        def replace_then_signal(a, b):
            real(a, b)
            if Path(b).name == "a.blend":
                os.kill(os.getpid(), signal.SIGTERM)
        with o.interruptible(), o.Transaction(force=True) as t:
            t.check([folder / "a.blend", folder / "b.glb"])
            t.stage(folder / "a.blend").write_text("new a")
            t.stage(folder / "b.glb").write_text("new b")
            os.replace = replace_then_signal
            t.commit()
        print("committed")
    """)
    (tmp_path / "a.blend").write_text("old a")
    (tmp_path / "b.glb").write_text("old b")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 143, result.stderr
    assert "committed" not in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("emoflame: interrupted by SIGTERM")
    assert _contents(tmp_path) == {"a.blend": b"old a", "b.glb": b"old b"}


def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if is_temporary(p) or p.name.endswith("@")]


def _wait_for(process, folder: Path, errors: Path, point: str, timeout: float = 400.0) -> float:
    """Seconds until the run reaches ``point``: "audio" (animate() has started), "blend" (Blender is
    saving the .blend's temporary), "render" (the render's scratch folder exists)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before reaching {point}: "
                        f"{errors.read_text()[-1500:]}")
        names = [p for p in folder.iterdir() if is_temporary(p) or p.name.endswith("@")]
        if point == "audio" and "animating" in errors.read_text():
            time.sleep(0.5)  # inside the audio analysis
            return time.monotonic() - start
        if point == "blend" and any(".blend" in p.name for p in names):
            return time.monotonic() - start
        if point == "render" and any(p.is_dir() for p in names):
            return time.monotonic() - start
        time.sleep(0.01)
    pytest.fail(f"the run did not reach {point} in {timeout} s")


@pytest.mark.parametrize("point, signum, force", [
    ("audio", signal.SIGINT, False),
    ("blend", signal.SIGTERM, True),
    ("render", signal.SIGINT, True),
    ("render", signal.SIGTERM, False),
])
def test_an_interrupted_animate_exits_130_or_143_and_leaves_every_file_as_it_was(
        shared_data, tmp_path, point, signum, force):
    folder = tmp_path / "takes"
    folder.mkdir()
    names = ("take.npz", "take.blend", "take.glb", "take.mp4")
    existing = {name: f"the user's {name}".encode() for name in names} if force else {"notes.txt": b"mine"}
    for name, data in existing.items():
        (folder / name).write_bytes(data)
    errors = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "emoflame.cli", "animate", str(shared_data / "speech" / "arctic_a0007.wav"),
               "--clip", str(folder / "take.npz"), "-o", str(folder / "take.blend"), "-o", str(folder / "take.glb"),
               "--render", str(folder / "take.mp4"), "--resolution", "64"] + (["--force"] if force else [])
    with open(errors, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)
        try:
            _wait_for(process, folder, errors, point)
            process.send_signal(signum)
            code = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 128 + signum, errors.read_text()[-1500:]
    assert process.stdout.read() == b""  # no path printed: nothing was written
    last = errors.read_text().strip().splitlines()[-1]
    assert f"emoflame: interrupted by {signal.Signals(signum).name}; unfinished outputs were removed" in last
    assert _contents(folder) == existing  # byte-identical, nothing new, no temporary
    assert _temporaries(tmp_path) == []


def test_an_interrupted_batch_stops_its_workers_and_keeps_the_lines_it_finished(shared_data, tmp_path):
    speech = shared_data / "speech" / "arctic_a0007.wav"
    manifest = tmp_path / "lines.csv"
    manifest.write_text("audio,emotion\n" + "".join(f"{speech},{e}\n" for e in ("happy", "sad", "angry", "fearful")))
    out = tmp_path / "out"
    errors = tmp_path / "stderr.txt"
    with open(errors, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "emoflame.cli", "batch", str(manifest), "--out-dir", str(out),
                                    "--workers", "1", "--formats", "npz,blend"], stdout=subprocess.PIPE, stderr=stderr)
        children = {}
        try:
            deadline = time.monotonic() + 400
            while not (out / ".emoflame").is_dir() or not list((out / ".emoflame").glob("*.json")):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the batch ended or stalled before a line finished: {errors.read_text()[-1500:]}")
                children |= _children(process.pid)
                time.sleep(0.05)
            children |= _children(process.pid)
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 143, errors.read_text()[-1500:]
    # the workers are gone when the driver has exited; multiprocessing's resource tracker ends on
    # its own once the driver's end of its pipe closes, a moment later
    workers = {pid for pid, command in children.items() if "resource_tracker" not in command}
    assert workers and not [pid for pid in workers if _alive(pid)]
    deadline = time.monotonic() + 10
    while [pid for pid in children if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)]
    assert _temporaries(tmp_path) == []
    finished = sorted(p.stem for p in (out / ".emoflame").glob("*.json"))
    assert finished and sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(
        f"{name}{suffix}" for name in finished for suffix in (".blend", ".npz"))  # no report: the run was cut short


def _children(pid: int) -> dict[int, str]:
    """The child processes of ``pid``: {pid: command line}."""
    found = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            for child in (task / "children").read_text().split():
                found[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
