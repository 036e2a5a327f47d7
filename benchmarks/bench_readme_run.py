"""Wall time of the README's run command on the shipped example.

    python benchmarks/bench_readme_run.py

Runs exactly the ``emoflame animate …`` part of README.md's first command (the install is not
timed) in a fresh process, into a temporary folder, and prints the wall time, the audio's
duration and the files written.
"""

import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile

REPO = Path(__file__).resolve().parents[1]


def readme_run_command() -> list[str]:
    """The ``emoflame animate`` command from the first line of README.md's opening sh block."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"^```sh\n(.*?)^```", text, re.S | re.M).group(1)
    command = block.splitlines()[0].split("&&")
    animate = next(part for part in command if part.strip().startswith("emoflame animate"))
    return shlex.split(animate)


def main() -> None:
    command = readme_run_command()
    audio = REPO / command[2]
    with tempfile.TemporaryDirectory() as folder:
        # Outputs go to a temporary folder so the benchmark never touches the user's out/.
        args = [a if not a.startswith("out/") else str(Path(folder) / a) for a in command]
        args = [sys.executable, "-m", "emoflame.cli", *args[1:]]
        start = time.perf_counter()
        subprocess.run(args, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        written = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())
    print(f"command: {shlex.join(command)}")
    print(f"audio: {audio.name}, {soundfile.info(str(audio)).duration:.2f} s")
    print(f"wall time: {wall:.1f} s (fresh process: imports, animate, scene, .blend, render)")
    print(f"wrote: {', '.join(written)}")


if __name__ == "__main__":
    main()
