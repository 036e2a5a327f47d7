"""Throughput of ``emoflame batch`` against a shell loop of ``emoflame animate`` (issue 11).

A manifest of 20 real lines: the recordings in ../shared/data/speech and examples/arctic_a0007.wav
(US English, 4-73 s), cycled with the 8 emotions, and one broken file (text named .wav). Each
mode writes the default formats (blend, npz) into a fresh folder:

* ``workers1``, ``workers2``: ``emoflame batch --workers N`` (local processes, models loaded once each);
* ``ray``: ``emoflame batch --ray local --workers 2`` (a local Ray, one fresh process per line);
* ``loop``: one ``emoflame animate`` process per line, one after another.

It checks that every good line was written and the broken one reported with its error, re-runs
the first batch mode to show that a second run does nothing, and prints wall time and lines per
minute per mode. One untimed ``emoflame animate`` warms the caches first (numba, page cache).

    python benchmarks/bench_batch.py [--lines 20] [--modes workers1,workers2,ray,loop]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEECH = Path(os.environ.get("EMOFLAME_SHARED_DATA", REPO.parent / "shared" / "data")) / "speech"
EMOTIONS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised", "contempt")
COMMAND = [sys.executable, "-m", "emoflame.cli"]


def manifest_lines(count: int, folder: Path) -> list[dict]:
    """``count - 1`` real lines cycling through the recordings and emotions, then a broken file."""
    recordings = sorted(SPEECH.glob("*.wav")) + [REPO / "examples" / "arctic_a0007.wav"]
    if len(recordings) < 2:
        raise SystemExit(f"no recordings in {SPEECH}; set EMOFLAME_SHARED_DATA to the shared data folder")
    broken = folder / "broken_take.wav"
    broken.write_text("this is not audio\n")
    lines = []
    for i in range(count - 1):
        audio = recordings[i % len(recordings)]
        lines.append({"audio": str(audio), "emotion": EMOTIONS[i % len(EMOTIONS)], "name": f"line{i + 1:02d}_{audio.stem}"})
    lines.append({"audio": str(broken), "emotion": "angry", "name": "line20_broken"})
    return lines


def run_batch(manifest: Path, out: Path, *options: str) -> tuple[float, dict, int]:
    start = time.perf_counter()
    result = subprocess.run([*COMMAND, "batch", str(manifest), "--out-dir", str(out), "-q", *options],
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    report = json.loads((out / "emoflame_batch_report.json").read_text()) if (out / "emoflame_batch_report.json").is_file() else {}
    if not report:
        raise SystemExit(f"batch {options} wrote no report: {result.stderr[-2000:]}")
    return seconds, report, result.returncode


def run_loop(lines: list[dict], out: Path) -> tuple[float, dict]:
    """The shell loop: ``for line: emoflame animate AUDIO --emotion E -o NAME.blend --clip NAME.npz``."""
    out.mkdir(parents=True)
    rows = []
    start = time.perf_counter()
    for number, line in enumerate(lines, start=2):
        began = time.perf_counter()
        result = subprocess.run([*COMMAND, "animate", line["audio"], "--emotion", line["emotion"], "-q",
                                 "-o", str(out / f"{line['name']}.blend"), "--clip", str(out / f"{line['name']}.npz")],
                                capture_output=True, text=True)
        rows.append({"line": number, "name": line["name"], "status": "done" if result.returncode == 0 else "failed",
                     "seconds": time.perf_counter() - began, "error": result.stderr.strip().splitlines()[-1] if result.returncode else ""})
    return time.perf_counter() - start, {"lines": rows}


def check(report: dict, out: Path, lines: list[dict], mode: str) -> str:
    """Every good line written (both files), the broken one failed with its error; a summary."""
    rows = {row["name"]: row for row in report["lines"]}
    good = [line["name"] for line in lines if "broken" not in line["name"]]
    missing = [n for n in good if rows[n]["status"] not in ("done", "skipped")
               or not (out / f"{n}.blend").is_file() or not (out / f"{n}.npz").is_file()]
    broken = rows["line20_broken"]
    if missing or broken["status"] != "failed" or "broken_take.wav" not in broken["error"]:
        raise SystemExit(f"{mode}: lines not written {missing}, broken line {broken}")
    return f"{len(good)} good lines written; broken line reported: {broken['error'][:110]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--modes", default="workers1,workers2,ray,loop")
    args = parser.parse_args()
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = manifest_lines(args.lines, folder)
        manifest = folder / "lines.jsonl"
        manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
        seconds_of_audio = sum(_duration(line["audio"]) for line in lines[:-1])
        print(f"{len(lines)} lines ({len(lines) - 1} real, {seconds_of_audio:.0f} s of audio, 1 broken); formats blend,npz")
        subprocess.run([*COMMAND, "animate", lines[0]["audio"], "-q", "-o", str(folder / "warm.blend")], check=True,
                       capture_output=True)
        table = []
        for mode in modes:
            out = folder / mode
            load = os.getloadavg()[0]
            if mode == "loop":
                seconds, report = run_loop(lines, out)
            else:
                options = {"workers1": ["--workers", "1"], "workers2": ["--workers", "2"],
                           "ray": ["--ray", "local", "--workers", "2"]}[mode]
                seconds, report, code = run_batch(manifest, out, *options)
                if code != 2:
                    raise SystemExit(f"{mode}: exit code {code}, expected 2 (one line failed)")
            print(f"{mode}: {check(report, out, lines, mode)}")
            table.append((mode, seconds, len(lines) / seconds * 60, load, os.getloadavg()[0]))
            if mode != "loop" and not any(m[0].startswith("rerun") for m in table):
                stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if "report" not in p.name}
                again, report, _ = run_batch(manifest, out, *options)
                statuses = sorted({row["status"] for row in report["lines"]})
                unchanged = stamps == {p.name: p.stat().st_mtime_ns for p in out.iterdir() if "report" not in p.name}
                print(f"rerun of {mode}: {again:.1f} s, statuses {statuses}, every output unchanged: {unchanged}")
                table.append((f"rerun ({mode})", again, len(lines) / again * 60, load, os.getloadavg()[0]))
        print(f"\n{'mode':<18}{'wall s':>9}{'lines/min':>11}{'load before/after':>20}  (machine: {os.cpu_count()} cores)")
        for mode, seconds, rate, before, after in table:
            print(f"{mode:<18}{seconds:>9.1f}{rate:>11.1f}{before:>14.1f} /{after:>4.1f}")


def _duration(path: str) -> float:
    import soundfile

    return soundfile.info(path).duration


if __name__ == "__main__":
    main()
