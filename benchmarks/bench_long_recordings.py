"""Peak memory and wall time of emoflame.animate on long recordings (issue 13: an hour of audio
animates in bounded memory, goal <= 4 GB peak RSS on the phonetic and the learned engine).

The recordings are built from the real speech in ../shared/data (the asterisk prompts, US
English, 8 kHz, resampled to 16 kHz; CMU ARCTIC a0007; the FACEGOOD takes, Mandarin, 16 kHz),
concatenated in a fixed order with 1.5 s pauses of low room noise until they last the minutes
asked for, and written as 16-bit 16 kHz wavs in a temporary folder (no audio is kept). A
"silence" recording is an hour of room noise with one second of speech in it, the case the
issue measured at 4.64 GB.

Each run is a fresh interpreter (imports included in its peak, not in its time): the figures are
the parent's VmHWM (peak resident set), the largest of its pocketsphinx worker processes
(ru_maxrss of the children, forked, so they share the parent's pages), and the wall time of
``animate``. With ``--steps`` the run also reports the peak above the starting RSS of every step
of ``animate`` (VmHWM reset through /proc/self/clear_refs before each step).

    python benchmarks/bench_long_recordings.py --minutes 20 --engines phonetic learned --steps [--transcript none]
    python benchmarks/bench_long_recordings.py --minutes 60
    python benchmarks/bench_long_recordings.py --minutes 60 --silence
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EMOFLAME_SHARED_DATA", REPO.parent / "shared" / "data"))
RATE = 16_000
PAUSE_S = 1.5
NOISE_DBFS = -70.0


def sources() -> list[Path]:
    """The real recordings, in the order they are concatenated."""
    speech = sorted((DATA / "speech").glob("*.wav"))
    facegood = sorted((DATA / "facegood" / "wav").glob("*.wav"))
    return [p for pair in zip(speech, facegood) for p in pair] + speech[len(facegood):] + facegood[len(speech):]


def read_16k(path: Path) -> np.ndarray:
    import soxr

    x, rate = soundfile.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return x if rate == RATE else soxr.resample(x, rate, RATE).astype(np.float32)


def noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal(n) * 10 ** (NOISE_DBFS / 20)).astype(np.float32)


def build_speech(path: Path, minutes: float) -> Path:
    """Write ``minutes`` of the real recordings, concatenated with pauses, to ``path``."""
    rng = np.random.default_rng(0)
    parts = [read_16k(p) for p in sources()]
    total, i = int(minutes * 60 * RATE), 0
    with soundfile.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16") as out:
        written = 0
        while written < total:
            for piece in (parts[i % len(parts)], noise(int(PAUSE_S * RATE), rng)):
                piece = piece[: total - written]
                out.write(piece)
                written += len(piece)
            i += 1
    return path


def build_silence(path: Path, minutes: float) -> Path:
    """``minutes`` of room noise with the first second of arctic_a0007's speech in its middle."""
    rng = np.random.default_rng(0)
    speech = read_16k(DATA / "speech" / "arctic_a0007.wav")[int(0.5 * RATE): int(1.5 * RATE)]
    total, block = int(minutes * 60 * RATE), 60 * RATE
    with soundfile.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16") as out:
        for start in range(0, total, block):
            piece = noise(min(block, total - start), rng)
            if start <= total // 2 < start + block:
                at = total // 2 - start
                piece[at: at + len(speech)] += speech[: len(piece) - at]
            out.write(piece)
    return path


_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    wav, engine, steps, transcript = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024

    def reset_peak():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    import torch
    import emoflame
    from emoflame.core import pipeline
    from emoflame.core.audio import frontends, recognition, speech as speech_module

    report = {}

    def wrap(module, name, label):
        original = getattr(module, name, None)
        if original is None:
            return

        def measured(*args, **kwargs):
            before, inner = status("VmRSS"), len(reset_peak_total)
            reset_peak()
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                peak = max([status("VmHWM")] + reset_peak_total[inner:])
                entry = report.setdefault(label, {"seconds": 0.0, "peak_above_start_mib": 0.0, "calls": 0})
                entry["seconds"] += time.perf_counter() - start
                entry["peak_above_start_mib"] = max(entry["peak_above_start_mib"], peak - before)
                entry["calls"] += 1
                reset_peak_total.append(peak)

        setattr(module, name, measured)

    reset_peak_total = []
    if steps:
        for module, name in ((pipeline, "load_audio"), (speech_module, "prosody"), (speech_module, "speech_phones"),
                             (recognition, "transcribe"), (speech_module, "align_phones"),
                             (speech_module, "recognise_phones"),
                             (frontends, "log_mel"), (frontends, "prosody"), (pipeline, "resolve_intensity"),
                             (pipeline, "add_eyes"), (pipeline, "motion_of_head"), (pipeline, "AnimationClip")):
            wrap(module, name, f"{module.__name__.rsplit('.', 1)[-1]}.{name}")
        engine_loader = pipeline.load_engine

        def load_and_wrap(*args, **kwargs):
            loaded = engine_loader(*args, **kwargs)
            wrap(loaded, "generate", "engine.generate")
            return loaded

        pipeline.load_engine = load_and_wrap
    imported = status("VmRSS")
    start = time.perf_counter()
    options = {} if transcript == "default" else {"transcript": transcript}
    clip = emoflame.animate(wav, emotion="happy", engine=engine, progress=False, **options)
    seconds = time.perf_counter() - start
    peak = max([status("VmHWM")] + reset_peak_total)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak, "rss_after_imports_mib": imported,
                      "largest_worker_rss_mib": children, "frames": clip.num_frames, "steps": report}))
""")


def run(wav: Path, engine: str, steps: bool, timeout: float, transcript: str = "default") -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(wav), engine, "1" if steps else "0", transcript],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"animate failed on {wav.name} ({engine}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[20.0, 60.0])
    parser.add_argument("--engines", nargs="+", default=["phonetic", "learned"], choices=["phonetic", "learned"])
    parser.add_argument("--silence", action="store_true", help="an hour of room noise with 1 s of speech instead")
    parser.add_argument("--steps", action="store_true", help="also the peak and time of every step of animate")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per run")
    parser.add_argument("--transcript", default="default",
                        help="animate's transcript argument: 'default' (its own: automatic), 'none' (phone recognition)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="emoflame-long-") as tmp:
        for minutes in args.minutes:
            kind = "silence" if args.silence else "speech"
            wav = Path(tmp) / f"{kind}_{minutes:g}min.wav"
            (build_silence if args.silence else build_speech)(wav, minutes)
            for engine in args.engines:
                result = run(wav, engine, args.steps, args.timeout, args.transcript)
                print(f"{minutes:g} min of {kind}, {engine} (transcript {args.transcript}): peak RSS {result['peak_rss_mib'] / 1024:.2f} GiB "
                      f"(after imports {result['rss_after_imports_mib'] / 1024:.2f} GiB; largest pocketsphinx "
                      f"worker {result['largest_worker_rss_mib'] / 1024:.2f} GiB), animate {result['seconds']:.0f} s "
                      f"wall (real-time factor {result['seconds'] / (minutes * 60):.3f}), {result['frames']} frames",
                      flush=True)
                for step, entry in sorted(result["steps"].items(), key=lambda kv: -kv[1]["peak_above_start_mib"]):
                    print(f"    {step:<32} +{entry['peak_above_start_mib']:7.0f} MiB above its start, "
                          f"{entry['seconds']:7.1f} s, {entry['calls']} call(s)", flush=True)
            wav.unlink()


if __name__ == "__main__":
    main()
