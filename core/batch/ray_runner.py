"""Run a batch's lines as Ray tasks, on an existing Ray cluster or a local one.

Each line is one task in a fresh worker process (``max_calls=1``: Blender's session never
carries from one line to the next, at the price of loading the models per line); a task whose
worker dies is retried by Ray (``max_retries``); an error in a line comes back as that line's
result, and anything Ray itself raises for a task (``RayTaskError``, a worker that died on every
try) becomes that line's error: the driver never stops for one line. Ray is an optional extra
(``pip install "emoflame[ray]"``); facts measured here: ``/work/shared/NOTES.md``, "Ray".
"""

from __future__ import annotations

import os
from typing import Iterator

from ..errors import SettingsError
from .report import FAILED, LineResult
from .runner import MAX_RETRIES, LineJob, TakeWriter, execute_line, output_folders

LOCAL = "local"
"""``--ray local``: start a Ray instance on this machine for the batch (and stop it after)."""


def import_ray():
    """The ``ray`` module.

    Raises:
        SettingsError: Ray is not installed (the message names the extra).
    """
    try:
        import ray
    except ImportError:
        raise SettingsError('--ray needs Ray: pip install "emoflame[ray]" (or run without --ray: local worker '
                            'processes, --workers N)') from None
    return ray


def run_ray(jobs: list[LineJob], write_take: TakeWriter, *, address: str | None = None,
            num_cpus: int | None = None) -> Iterator[LineResult]:
    """Run ``jobs`` as Ray tasks; results as lines finish.

    Args:
        address: a cluster's address (``ray://head:10001``, ``head:6379``, ``auto``); None
            connects to the cluster ``RAY_ADDRESS`` or ``ray start`` made, else starts a local one;
            :data:`LOCAL` always starts a local one with ``num_cpus``.
        num_cpus: CPUs of a Ray instance started here.

    Raises:
        SettingsError: Ray is missing, or the cluster cannot be reached.
    """
    ray = import_ray()
    from ..outputs import sweep_temporaries, take_back_signals

    started = False
    if not ray.is_initialized():
        options = {"include_dashboard": False, "log_to_driver": False}
        try:
            if address == LOCAL:
                ray.init(num_cpus=num_cpus, **options)
            else:
                ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SettingsError(f"cannot reach the Ray cluster at {address or 'RAY_ADDRESS'} ({exc}); start it with "
                                f"'ray start --head', or use --ray local") from None
        started = True
        take_back_signals()  # Ray's own SIGTERM handler would abort the driver with nothing cleaned up

    @ray.remote(num_cpus=1, max_retries=MAX_RETRIES, max_calls=1)
    def run_line(job: LineJob) -> LineResult:
        from ..outputs import interruptible

        with interruptible():
            return execute_line(job, write_take)

    pending = {run_line.remote(job): job for job in jobs}
    # Temporaries carry their writer's process id; only this machine's processes can be checked.
    on_this_machine = address == LOCAL or (address is None and not os.environ.get("RAY_ADDRESS"))

    try:
        while pending:
            take_back_signals()  # Ray installs its own again as it starts workers
            # A timeout, so that the main thread comes back to Python, where signal handlers run.
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in done:
                job = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, ...: this line's error
                    message = str(exc).strip().splitlines()
                    yield LineResult(job.line, job.name, FAILED, 0.0, [],
                                     f"line {job.line}: Ray could not run it ({type(exc).__name__}: "
                                     f"{message[0] if message else 'no message'})")
    finally:  # also on core.outputs.Interrupted
        if pending:
            # A KeyboardInterrupt in each task: its handler removes its temporaries; then a moment.
            for ref in pending:
                ray.cancel(ref, force=False)
            ray.wait(list(pending), num_returns=len(pending), timeout=10.0)
        if started:
            ray.shutdown()
        if on_this_machine:
            sweep_temporaries(output_folders(jobs))
