"""Run a batch's lines in worker processes on this machine.

Each worker is a fresh Python process (``spawn``: no torch or Blender state forked from the
driver) that loads the models once and takes line after line; the take writer resets Blender's
session for every line (``addon.scene.build_scene``). Lines go to idle workers one at a time; a
worker that dies (a crash in native code, the OOM killer) is replaced and its line tried again,
at most :data:`MAX_RETRIES` times. An error in a line is that line's result: the batch goes on.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable, Iterator

from ..errors import AudioError, EmoflameError, EmotionError, IntensityError, TranscriptError
from .job import TakeRequest, file_sha256
from .report import DONE, FAILED, LineResult

log = logging.getLogger(__name__)

MAX_RETRIES = 2
"""Times a line is tried again after its worker process died."""
SIDECAR_FOLDER = ".emoflame"
"""Where a batch keeps, per line, what made its outputs (beside them, hidden)."""
INPUT_ERRORS = (AudioError, EmotionError, IntensityError, TranscriptError)
"""Failures caused by a line's own inputs: remembered with the inputs' key, so a re-run does not
try the same broken file again (a changed input changes the key and runs it)."""

TakeWriter = Callable[[TakeRequest, object], object]
"""Stages every output of a take in a ``core.outputs.Transaction`` (``cli.write_take``)."""


@dataclass(frozen=True)
class LineJob:
    """One manifest line, ready to run.

    Attributes:
        line: its manifest line number.
        name: the outputs' name stem.
        request: the take.
        key: :func:`.job.take_key` of the request.
        sidecar: the JSON file that records ``key`` and the outputs' hashes once the line is done.
        force: replace files that exist.
        replace: files this batch wrote earlier (their hashes match the sidecar): replaced without
            ``force``.
    """

    line: int
    name: str
    request: TakeRequest
    key: str
    sidecar: Path
    force: bool = False
    replace: tuple[Path, ...] = ()


def sidecar_path(folder: Path, name: str) -> Path:
    return Path(folder) / SIDECAR_FOLDER / f"{name}.json"


def read_sidecar(path: Path) -> dict:
    """A line's sidecar, or {} if there is none or it is unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def own_outputs(sidecar: dict) -> list[Path]:
    """The outputs a sidecar records whose files still hold exactly what the batch wrote."""
    out = []
    for path, record in (sidecar.get("outputs") or {}).items():
        try:
            if Path(path).is_file() and Path(path).stat().st_size == record["size"] and file_sha256(Path(path)) == record["sha256"]:
                out.append(Path(path))
        except (OSError, KeyError, TypeError):
            pass
    return out


def is_complete(job: LineJob) -> bool:
    """True when an earlier run finished this line with the same key and every output is intact."""
    sidecar = read_sidecar(job.sidecar)
    if sidecar.get("key") != job.key:
        return False
    wanted = {Path(o.path) for o in job.request.outputs}
    return wanted == {Path(p) for p in (sidecar.get("outputs") or {})} and wanted <= set(own_outputs(sidecar))


def execute_line(job: LineJob, write_take: TakeWriter) -> LineResult:
    """Run one line: every output and its sidecar in one transaction, committed together.

    Never raises for a failure of the line (a bad file, an unexpected error): that is the
    result's ``error``. SIGINT/SIGTERM still end the process (``core.outputs.interruptible``).
    """
    from ..outputs import Transaction

    start = time.perf_counter()
    targets = [Path(o.path) for o in job.request.outputs]
    try:
        with Transaction(force=job.force, replace=job.replace + (job.sidecar,)) as outputs:
            outputs.check(targets + [job.sidecar], inputs=job.request.inputs())
            write_take(job.request, outputs)
            staged = {target: temporary for temporary, target in outputs.staged()}
            record = {str(t): {"size": staged[t].stat().st_size, "sha256": file_sha256(staged[t])} for t in targets}
            outputs.stage(job.sidecar).write_text(json.dumps(
                {"key": job.key, "line": job.line, "name": job.name, "outputs": record}, indent=1), encoding="utf-8")
            outputs.commit()
        return LineResult(job.line, job.name, DONE, time.perf_counter() - start, [str(t) for t in targets])
    except EmoflameError as exc:
        error = str(exc)
        if isinstance(exc, INPUT_ERRORS):
            _remember_failure(job, error)
    except Exception as exc:  # noqa: BLE001 - one line's surprise must not stop the batch
        log.debug("line %d failed:\n%s", job.line, traceback.format_exc())
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'}"
    return LineResult(job.line, job.name, FAILED, time.perf_counter() - start, [], error)


def remembered_failure(job: LineJob) -> str | None:
    """The error an earlier run met on exactly these inputs (:data:`INPUT_ERRORS`), or None."""
    sidecar = read_sidecar(job.sidecar)
    return str(sidecar["failed"]) if sidecar.get("failed_key") == job.key and sidecar.get("failed") else None


def _remember_failure(job: LineJob, error: str) -> None:
    from ..outputs import atomic_write

    record = {**read_sidecar(job.sidecar), "failed_key": job.key, "failed": error}
    try:
        atomic_write(job.sidecar, lambda path: path.write_text(json.dumps(record, indent=1), encoding="utf-8"),
                     force=True)
    except EmoflameError:  # not remembering costs a retry next time, nothing more
        pass


def run_local(jobs: list[LineJob], write_take: TakeWriter, *, workers: int) -> Iterator[LineResult]:
    """Run ``jobs`` in ``workers`` processes on this machine; results as lines finish.

    Args:
        jobs: the lines to run (none of them complete already).
        write_take: picklable by reference (a module-level function).
        workers: processes, at least 1; each sets torch to ``cores // workers`` threads.
    """
    from ..outputs import sweep_temporaries

    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    queue = deque(jobs)
    attempts: dict[int, int] = {}
    pool: list[_Worker] = []
    try:
        for _ in range(min(workers, len(jobs))):
            pool.append(_Worker.start(context, write_take, threads))
        busy: dict[_Worker, LineJob] = {}
        while queue or busy:
            for worker in pool:
                if worker not in busy and queue:
                    busy[worker] = queue.popleft()
                    worker.connection.send(busy[worker])
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
            for worker, job in list(busy.items()):
                if worker.connection not in ready and worker.process.sentinel not in ready:
                    continue
                result = worker.receive()
                if result is None:  # the process died on this line
                    del busy[worker]
                    pool.remove(worker)
                    worker.close()
                    attempts[job.line] = attempts.get(job.line, 0) + 1
                    if attempts[job.line] <= MAX_RETRIES:
                        queue.appendleft(job)
                    else:
                        yield LineResult(job.line, job.name, FAILED, 0.0, [],
                                         f"line {job.line}: the worker process died {attempts[job.line]} times on "
                                         f"this line (exit code {worker.process.exitcode}); run it alone with "
                                         f"emoflame animate --debug to see why")
                    if queue:
                        pool.append(_Worker.start(context, write_take, threads))
                    continue
                del busy[worker]
                yield result
    finally:  # also on core.outputs.Interrupted: the workers get SIGTERM and clean up after themselves
        _stop(pool)
        sweep_temporaries(output_folders(jobs))


def output_folders(jobs: list[LineJob]) -> set[Path]:
    """Every folder the jobs write to (their outputs' and their sidecars')."""
    return {Path(o.path).parent for job in jobs for o in job.request.outputs} | {job.sidecar.parent for job in jobs}


class _Worker:
    """One worker process and its pipe."""

    def __init__(self, process, connection):
        self.process, self.connection = process, connection

    @classmethod
    def start(cls, context, write_take, threads: int) -> "_Worker":
        ours, theirs = context.Pipe()
        process = context.Process(target=_work, args=(theirs, write_take, threads), daemon=True)
        process.start()
        theirs.close()
        return cls(process, ours)

    def receive(self) -> LineResult | None:
        """The finished line's result, or None if the process died first."""
        try:
            if self.connection.poll():
                return self.connection.recv()
        except (EOFError, OSError):
            pass
        self.process.join(timeout=5)
        return None

    def close(self) -> None:
        try:
            self.connection.close()
        except OSError:
            pass


def _stop(pool: list[_Worker], grace: float = 20.0) -> None:
    """End the workers: a sentinel for idle ones, SIGTERM when the driver is interrupted (each
    removes its temporaries on the way out), SIGKILL for one that does not end in ``grace``."""
    for worker in pool:
        try:
            worker.connection.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + 2.0
    for worker in pool:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
    alive = [w for w in pool if w.process.is_alive()]
    for worker in alive:
        worker.process.terminate()
    deadline = time.monotonic() + grace
    for worker in alive:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=5)
    for worker in pool:
        worker.close()
    pool.clear()


def _work(connection, write_take: TakeWriter, threads: int) -> None:
    """A worker process: lines from the pipe until a None, each through :func:`execute_line`."""
    from ..outputs import interruptible

    logging.basicConfig(level=logging.WARNING, format="emoflame: %(message)s")
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    with interruptible():
        while True:
            try:
                job = connection.recv()
            except (EOFError, OSError):
                return
            if job is None:
                return
            connection.send(execute_line(job, write_take))
