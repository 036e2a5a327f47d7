"""Many takes from one manifest (``emoflame batch``): parse and check it (:mod:`.manifest`), skip
lines an earlier run finished with the same inputs, run the rest in local worker processes
(:mod:`.runner`) or on Ray (:mod:`.ray_runner`), each line's outputs one transaction
(:mod:`core.outputs`), and write a report (:mod:`.report`).

The take itself is written by the function the caller passes (the command line's
``cli.write_take``, the very code ``emoflame animate`` runs), so core/ never imports Blender.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from ..errors import SettingsError
from .job import KINDS, Output, TakeRequest, take_key
from .manifest import ManifestError, ManifestLine, read_manifest
from .report import DONE, FAILED, SKIPPED, LineResult, write_report
from .runner import (SIDECAR_FOLDER, LineJob, TakeWriter, is_complete, own_outputs, read_sidecar, remembered_failure,
                     run_local, sidecar_path)

__all__ = ["FORMATS", "BatchSummary", "ManifestError", "plan_jobs", "run_batch", "parse_formats"]

log = logging.getLogger(__name__)

FORMATS = {"blend": "blend", "npz": "clip", "glb": "glb", "gltf": "gltf", "fbx": "fbx", "usdc": "usdc",
           "usda": "usda", "csv": "csv", "flame": "flame", "mp4": "mp4"}
"""``--formats`` names → output kinds (:data:`.job.KINDS`): ``npz`` is the AnimationClip, ``flame``
the FLAME parameters (``NAME.flame.npz``, needs a FLAME model), ``csv`` the Live Link Face CSV."""


def parse_formats(text: str) -> tuple[str, ...]:
    """``"blend,npz,glb"`` → the output kinds, in the order given, each once.

    Raises:
        SettingsError: an unknown or empty format list (the message lists the choices).
    """
    names = [n.strip().lower().lstrip(".") for n in str(text).split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise SettingsError(f"--formats {text!r}: {'unknown ' + ', '.join(unknown) if unknown else 'no format'}; "
                            f"choose from {','.join(FORMATS)}")
    return tuple(dict.fromkeys(FORMATS[n] for n in names))


@dataclass
class BatchSummary:
    """A finished batch: every line's result and the report's paths."""

    results: list[LineResult]
    report: tuple[Path, ...]
    seconds: float

    @property
    def failed(self) -> list[LineResult]:
        return [r for r in self.results if r.status == FAILED]

    def counts(self) -> dict[str, int]:
        return {status: sum(r.status == status for r in self.results) for status in (DONE, SKIPPED, FAILED)}


def plan_jobs(lines: list[ManifestLine], out_dir: Path, kinds: Iterable[str], template: TakeRequest, *,
              version: str, force: bool = False) -> tuple[list[LineJob], list[LineResult]]:
    """Turn manifest lines into jobs; lines that cannot run, or are complete already, become results.

    Args:
        template: the settings every line shares (engine, fps, seed, ...); each line fills in its
            audio, emotion, intensity, transcript and outputs.
        version: emoflame's version, part of each line's key.

    Returns:
        ``(jobs to run, results of the lines that will not run: failed or skipped)``.
    """
    jobs, results = [], []
    for line in lines:
        if line.error:
            results.append(LineResult(line.number, line.name, FAILED, error=line.error))
            continue
        outputs = tuple(Output(out_dir / f"{line.name}{KINDS[kind]}", kind) for kind in kinds)
        request = replace(template, audio=line.audio, emotion=line.emotion, intensity=line.intensity,
                          transcript=line.transcript, outputs=outputs)
        try:
            key = take_key(request, version)
        except OSError as exc:
            results.append(LineResult(line.number, line.name, FAILED,
                                      error=f"line {line.number}: cannot read an input ({exc.strerror}: {exc.filename})"))
            continue
        sidecar = sidecar_path(out_dir, line.name)
        job = LineJob(line.number, line.name, request, key, sidecar, force=force,
                      replace=tuple(own_outputs(read_sidecar(sidecar))))
        failure = remembered_failure(job)
        if is_complete(job):
            results.append(LineResult(line.number, line.name, SKIPPED, 0.0, [str(o.path) for o in outputs]))
        elif failure is not None:
            results.append(LineResult(line.number, line.name, FAILED, 0.0, [], failure))
        else:
            jobs.append(job)
    return jobs, results


def run_batch(manifest: str | os.PathLike, out_dir: str | os.PathLike, write_take: TakeWriter, *,
              template: TakeRequest, kinds: Iterable[str] = ("blend", "clip"), workers: int | None = None,
              ray: str | None | bool = False, force: bool = False, version: str = "0", progress: bool = True
              ) -> BatchSummary:
    """Run every line of ``manifest`` into ``out_dir`` and write the report there.

    Args:
        manifest: a CSV or JSON Lines manifest (:func:`.manifest.read_manifest`).
        out_dir: the folder for every line's ``NAME.<suffix>`` outputs (created if missing).
        write_take: stages a take's outputs in a transaction (``cli.write_take``).
        template: the settings every line shares (its ``audio`` and ``outputs`` are replaced).
        kinds: output kinds (:func:`parse_formats`).
        workers: local worker processes (default: the CPU count); with ``ray``, the CPUs of a Ray
            instance started here.
        ray: False for local processes; None or an address for Ray (:func:`.ray_runner.run_ray`).
        force: replace files that exist and that this batch did not write.
        version: emoflame's version (a new version makes every line again).
        progress: a tqdm bar of lines on stderr.

    Raises:
        ManifestError: the manifest cannot be read.
        SettingsError: workers < 1, a FLAME format without a model, Ray missing or unreachable.
        OutputError: ``out_dir`` cannot be created or written.
    """
    from tqdm import tqdm

    from ..outputs import Transaction, output_path, signals_raise, write_error

    started = time.perf_counter()
    kinds = tuple(kinds)
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise SettingsError(f"--workers {workers}: give 1 or more worker processes")
    if "flame" in kinds and template.flame_model is None:
        raise SettingsError("the flame format writes FLAME parameters and needs your model: add --flame-model "
                            "generic_model.pkl (or drop flame from --formats)")
    lines = read_manifest(manifest)
    out_dir = output_path(out_dir)
    try:  # made here, once: a line that fails must not remove a folder other lines are writing to
        (out_dir / SIDECAR_FOLDER).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, out_dir / SIDECAR_FOLDER) from None
    with Transaction() as probe:  # the folder can be written, before any work
        probe.check([out_dir / "probe"])
    jobs, results = plan_jobs(lines, out_dir, kinds, template, version=version, force=force)
    for result in results:
        if result.status == FAILED:
            log.warning("%s", result.error)
    log.info("%d lines: %d to run, %d already done, %d that cannot run", len(lines), len(jobs),
             sum(r.status == SKIPPED for r in results), sum(r.status == FAILED for r in results))
    with signals_raise(), tqdm(total=len(lines), initial=len(results), desc="batch", unit="line",
                               disable=not progress, file=sys.stderr) as bar:
        if ray is False:
            stream = run_local(jobs, write_take, workers=workers)
        else:
            from .ray_runner import run_ray

            stream = run_ray(jobs, write_take, address=ray or None, num_cpus=workers)
        with closing(stream):  # an interruption here stops the workers now, not when the traceback goes
            for result in stream:
                results.append(result)
                bar.update()
                if result.status == FAILED:
                    log.warning("%s", result.error)
    seconds = time.perf_counter() - started
    summary = {"manifest": str(Path(manifest).absolute()), "out_dir": str(out_dir), "version": version,
               "formats": list(kinds), "seconds": round(seconds, 2),
               **{status: sum(r.status == status for r in results) for status in (DONE, SKIPPED, FAILED)}}
    report = write_report(results, out_dir, summary)
    return BatchSummary(sorted(results, key=lambda r: r.line), report, seconds)
