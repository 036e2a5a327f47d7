"""Run the core away from the caller's thread: in a thread of this Python when torch imports here,
otherwise in a worker process of another interpreter (the add-on's preference).

The add-on's Generate starts its jobs here (docs/architecture.md). The two sides exchange a
request (.json) and an AnimationClip (.npz, ``AnimationClip.save``), so the worker can be any
Python 3.11 environment with emoflame's dependencies, CUDA or not. The settings (device, weight
folders) travel in the request as a typed :class:`core.settings.Settings`, never through this
process's environment. This module never imports bpy: run as a script it *is* the worker::

    python core/worker.py REQUEST.json CLIP.npz

Exit status 0 with the clip written; 2 with one ``EMOFLAME_ERROR {...}`` line on stderr for an
error the user can fix (core/errors.py); anything else is a crash whose stderr tail is reported.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

ERROR_TAG = "EMOFLAME_ERROR "
_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")
# A tqdm bar: "emoflame:  50%|█████     | 2/4 [00:06<00:06,  3.38s/step, recognising phones]".
_TQDM = re.compile(r"(?P<pct>\d{1,3})%\|[^|]*\|[^\[]*\[(?P<stats>[^\]]*)\]")


MAX_REQUEST_BYTES = 64 << 20
"""A request is a few hundred bytes; one with a per-frame intensity of an hour at 240 fps is 17 MB."""

_FIX = ("the add-on and the worker interpreter must run the same emoflame: reinstall it in the worker's environment "
        "(pip install emoflame) or pick that environment's python in Preferences > Add-ons > emoflame")


@dataclass
class Request:
    """Arguments of ``core.pipeline.animate`` that travel to the worker.

    Attributes:
        audio: path of the recording.
        emotion: the words asked for ("happy", "quietly furious"), or an emotion track: a list
            of ``(emotion, seconds)`` pairs (lists in JSON).
        intensity: "audio", a constant in [0, 1], or one value per frame (list of T numbers).
        fps: frames per second of the clip (the scene's).
        seed: random seed for blinks, gaze and the emotion sample (a whole number, or its digits).
        engine: "phonetic" or "learned".
        transcript: the words spoken, "auto" or "none" (see ``animate``), or None for the default.
        head_motion: give the head its motion (nods, sway, posture).
        transition: seconds over which one emotion of a track eases into the next, or None for
            ``animate``'s default.
        jaw, lips: the phonetic engine's articulation dials in [0, 2].
        settings: ``core.settings.Settings.to_dict()``: device and weight folders.

    Raises:
        RequestError: on construction, a field of the wrong type (the message names it).
    """

    audio: str
    emotion: str | list = "neutral"
    intensity: str | float | list = "audio"
    fps: float = 25.0
    seed: int | str = 0
    engine: str = "phonetic"
    transcript: str | None = None
    head_motion: bool = True
    transition: float | None = None
    jaw: float = 1.0
    lips: float = 1.0
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        number = (int, float)
        kinds = {"audio": (str,), "emotion": (str, list, tuple), "intensity": (str, int, float, list, tuple),
                 "fps": number, "seed": (int, str), "engine": (str,), "transcript": (str, type(None)),
                 "head_motion": (bool,), "transition": (int, float, type(None)), "jaw": number, "lips": number,
                 "settings": (dict,)}
        for name, allowed in kinds.items():
            value = getattr(self, name)
            wrong_bool = isinstance(value, bool) and bool not in allowed
            if wrong_bool or not isinstance(value, allowed):
                names = " or ".join(sorted({"text" if k is str else "a number" if k in number else
                                            "a list" if k in (list, tuple) else "null" if k is type(None) else
                                            k.__name__ for k in allowed}))
                raise _request_error(f"its {name} is {_shown(value)}, expected {names}")
        if isinstance(self.intensity, (list, tuple)):
            bad = next((v for v in self.intensity if isinstance(v, bool) or not isinstance(v, (int, float))), None)
            if bad is not None:
                raise _request_error(f"its per-frame intensity holds {_shown(bad)}, expected numbers")

    @classmethod
    def from_json(cls, text: str) -> "Request":
        """The request a JSON object describes (as :class:`WorkerJob` writes it).

        Raises:
            RequestError: not a JSON object, unknown or missing fields, a field of the wrong type.
        """
        try:
            values = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise _request_error(f"it is not JSON ({str(exc).splitlines()[0][:120]})") from None
        if not isinstance(values, dict):
            raise _request_error(f"it holds a JSON {type(values).__name__}, not an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise _request_error(f"unknown fields {', '.join(unknown[:5])}")
        if "audio" not in values:
            raise _request_error("it names no audio")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Request":
        """:meth:`from_json` of a request file.

        Raises:
            RequestError: the file is unreadable, over :data:`MAX_REQUEST_BYTES`, or not a request.
        """
        try:
            size = os.path.getsize(path)
            if size > MAX_REQUEST_BYTES:
                raise _request_error(f"{size:,} bytes, more than any request")
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _request_error(f"it cannot be read ({exc})") from None
        return cls.from_json(text)

    def animate_kwargs(self) -> dict:
        """The keyword arguments of ``core.pipeline.animate``.

        Raises:
            SettingsError: malformed settings.
        """
        from .settings import Settings

        intensity = self.intensity
        if isinstance(intensity, (list, tuple)):
            import numpy as np

            intensity = np.asarray(intensity, dtype=np.float32)
        emotion = [tuple(e) if isinstance(e, list) else e for e in self.emotion] if isinstance(
            self.emotion, (list, tuple)) else self.emotion
        kwargs = dict(audio=self.audio, emotion=emotion, intensity=intensity, transcript=self.transcript,
                      fps=self.fps, seed=self.seed, engine=self.engine, head_motion=bool(self.head_motion),
                      jaw=self.jaw, lips=self.lips, settings=Settings.from_dict(self.settings))
        if self.transition is not None:
            kwargs["transition"] = self.transition
        return kwargs


def _request_error(why: str):
    from .errors import RequestError

    return RequestError(f"the worker's request is malformed: {why}; {_FIX}")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class JobState:
    """What a running job says when polled: ``done``; ``fraction`` in [0, 1] or None when the
    core gives no measure; ``message`` for the status bar."""

    done: bool
    fraction: float | None
    message: str


class JobError(Exception):
    """The core failed. ``user_error`` is True for an EmoflameError (the message says the fix)."""

    def __init__(self, message: str, user_error: bool):
        super().__init__(message)
        self.user_error = user_error


class JobCancelled(BaseException):
    """Raised inside the in-process thread at its next Python call after Esc.

    A BaseException so that the core's ``except Exception`` handlers cannot swallow it.
    """


def torch_in_blender() -> bool:
    """Whether torch can be imported by this interpreter (checked without importing it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


#: Modules whose code an exception must not cut in half: an import (the package stays
#: half-imported in sys.modules, and every later import of it fails: "module 'numba' has no
#: attribute 'core'") and the lock handling of threading, logging and tqdm (a lock taken and
#: never released hangs every later log line or progress bar: seen with tqdm's write lock).
_UNSAFE_MODULES = ("importlib", "threading", "logging", "tqdm")
_MAX_DEFER_S = 30.0


def _in_unsafe_code(thread_id: int, base) -> bool:
    """Whether the thread's stack, above the frame running the code object ``base`` (the job's
    entry point: threading's own frames lie below it), passes through :data:`_UNSAFE_MODULES`."""
    frame = sys._current_frames().get(thread_id)
    while frame is not None and frame.f_code is not base:
        module = frame.f_globals.get("__name__", "")
        if module.split(".")[0] in _UNSAFE_MODULES or frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


class ThreadJob:
    """``animate`` in a thread of this process (Blender's Python).

    Esc raises :class:`JobCancelled` inside the thread (CPython's ``PyThreadState_SetAsyncExc``),
    which takes effect at its next bytecode, so a cancelled job stops within one numeric kernel
    and costs nothing while it runs (a trace hook doubled the cold start).
    """

    where = "in Blender"

    def __init__(self, request: Request, run=None):
        """Start ``run(**request.animate_kwargs(), progress=True)``: ``core.pipeline.animate``
        unless another callable is given (a test's)."""
        self.request = request
        self._run_core = run
        self.started = time.monotonic()
        self._cancelled = False
        self._clip = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="emoflame-generate", daemon=True)
        self._thread.start()

    def _run(self):
        try:
            run = self._run_core
            if run is None:
                from .pipeline import animate as run
            self._clip = run(**self.request.animate_kwargs(), progress=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the UI thread in result()
            self._error = exc

    def poll(self) -> JobState:
        elapsed = time.monotonic() - self.started
        fraction, step = None, ""
        # The core's tqdm bar (it also prints to Blender's console); tqdm keeps live bars in
        # tqdm._instances, the only way to read one without a callback in the core's API.
        from tqdm import tqdm

        for bar in list(getattr(tqdm, "_instances", ())):
            if bar.total and getattr(bar, "desc", "").startswith("emoflame"):
                fraction, step = min(bar.n / bar.total, 1.0), f"{bar.postfix}, " if bar.postfix else ""
        # Cancelled is done: nothing more comes, though an import may still finish (see cancel).
        done = self._cancelled or not self._thread.is_alive()
        return JobState(done, fraction, f"generating {self.where}: {step}{elapsed:.0f} s")

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def cancel(self) -> None:
        """Stop the thread at its next bytecode outside an import or a lock (:data:`_UNSAFE_MODULES`);
        waits up to 2 s (a running C kernel or import finishes first, and the thread is stopped
        when it has)."""
        self._cancelled = True
        if self._thread.is_alive():
            threading.Thread(target=self._interrupt, name="emoflame-cancel", daemon=True).start()
            self._thread.join(2.0)

    def _interrupt(self) -> None:
        # The core imports lazily and reports through tqdm and logging: wait until the thread is
        # outside that code (a wait without end, such as a thread blocked on a lock, is cut short).
        deadline = time.monotonic() + _MAX_DEFER_S
        while self._thread.is_alive() and _in_unsafe_code(self._thread.ident, ThreadJob._run.__code__) and time.monotonic() < deadline:
            time.sleep(0.005)
        if self._thread.is_alive():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread.ident),
                                                       ctypes.py_object(JobCancelled))

    def result(self):
        """The AnimationClip. Raises JobError (or JobCancelled after :meth:`cancel`)."""
        from .errors import EmoflameError

        self._thread.join()
        if self._cancelled:
            raise JobCancelled()
        if isinstance(self._error, EmoflameError):
            raise JobError(str(self._error), True) from self._error
        if self._error is not None:
            raise JobError(f"{type(self._error).__name__}: {self._error}", False) from self._error
        return self._clip


class WorkerJob:
    """``animate`` in a child process of ``python``; progress read from its tqdm bars."""

    where = "in the worker process"

    def __init__(self, request: Request, python: str):
        self.request, self.python = request, python
        self.started = time.monotonic()
        self._dir = tempfile.TemporaryDirectory(prefix="emoflame-job-")
        folder = Path(self._dir.name)
        self._clip_path = folder / "clip.npz"
        (folder / "request.json").write_text(json.dumps(asdict(request)))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # Blender's own Python settings must not leak into the user's environment.
        for name in ("PYTHONHOME", "PYTHONPATH"):
            env.pop(name, None)
        self._proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), str(folder / "request.json"), str(self._clip_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )
        self._fraction: float | None = None
        self._step = ""
        self._tail: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        buffer = ""
        for chunk in iter(lambda: self._proc.stderr.read1(4096), b""):
            buffer += chunk.decode("utf-8", "replace")
            *pieces, buffer = re.split(r"[\r\n]", buffer)
            for piece in filter(None, (p.strip() for p in pieces)):
                match = _TQDM.search(piece)
                if match:
                    self._fraction = min(int(match["pct"]), 100) / 100.0
                    stats = match["stats"].split(", ", 2)  # elapsed<remaining, rate, the step's name
                    self._step = stats[2].strip() if len(stats) == 3 else self._step
                else:
                    self._tail = (self._tail + [piece])[-20:]
        if buffer.strip():
            self._tail = (self._tail + [buffer.strip()])[-20:]

    def poll(self) -> JobState:
        elapsed = time.monotonic() - self.started
        step = f"{self._step}, " if self._step else ""
        return JobState(self._proc.poll() is not None, self._fraction,
                        f"generating {self.where}: {step}{elapsed:.0f} s")

    def wait(self, timeout: float | None = None) -> None:
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def cancel(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(3.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(2.0)
        self._dir.cleanup()

    def result(self):
        """The AnimationClip. Raises JobError with the worker's message."""
        from .clip import AnimationClip

        code = self._proc.wait()
        self._reader.join(2.0)
        try:
            for line in self._tail:
                if line.startswith(ERROR_TAG):
                    raise JobError(json.loads(line[len(ERROR_TAG):])["message"], True)
            missing = next((m for m in map(_MISSING_MODULE.search, self._tail) if m), None)
            if code != 0 and missing:
                raise JobError(f"the worker interpreter {self.python} has no module {missing[1]!r}: install emoflame "
                               "there (pip install emoflame) or pick another Python Interpreter", True)
            if code != 0 or not self._clip_path.is_file():
                tail = " | ".join(self._tail[-3:]) or "no output"
                raise JobError(f"the worker process exited with status {code}: {tail}", False)
            return AnimationClip.load(self._clip_path)
        finally:
            self._dir.cleanup()


def start_job(request: Request, run_mode: str = "AUTO", python: str = ""):
    """Start ``animate(request)`` where the preferences say and return the running job.

    Args:
        request: what to generate.
        run_mode: "AUTO" (in Blender when torch imports here, else the worker), "BLENDER" or "WORKER".
        python: the worker interpreter (a path), needed when the job runs in a worker.

    Raises:
        EmoflameError: when the worker is needed and ``python`` is not set or not a file.
    """
    from .errors import EmoflameError

    if run_mode == "BLENDER" or (run_mode == "AUTO" and torch_in_blender()):
        if not torch_in_blender():
            raise EmoflameError("torch does not import inside Blender: set emoflame's preferences to "
                                "Run In 'Worker Process' with the python of an environment that has emoflame")
        return ThreadJob(request)
    if not python:
        raise EmoflameError("torch does not import inside Blender and no worker interpreter is set: set "
                            "Preferences > Add-ons > emoflame > Python Interpreter to your emoflame environment's python")
    if not Path(python).is_file():
        raise EmoflameError(f"the worker interpreter {python} does not exist: fix Preferences > Add-ons > "
                            "emoflame > Python Interpreter")
    return WorkerJob(request, python)


def _import_package():
    """Import this extension's root as ``emoflame`` (whatever its folder is called), so the
    worker runs the same code as the add-on that started it."""
    root = Path(__file__).resolve().parents[1]  # core/ sits in the package root
    spec = importlib.util.spec_from_file_location("emoflame", root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    package = importlib.util.module_from_spec(spec)
    sys.modules["emoflame"] = package
    spec.loader.exec_module(package)
    return package


def serve(request_path: str, clip_path: str) -> int:
    """Run one request file and write its clip atomically; the worker process's job.

    Returns:
        0 with the clip written; 2 with one ``EMOFLAME_ERROR {...}`` line on stderr for an error
        the user can fix (a malformed request among them: :class:`core.errors.RequestError`),
        and no clip file.
    """
    from .errors import EmoflameError, OutputError
    from .pipeline import animate

    try:
        request = Request.from_file(request_path)
        clip = animate(**request.animate_kwargs(), progress=True)
    except EmoflameError as exc:
        return _report(exc)
    partial = Path(clip_path).with_suffix(".partial.npz")
    try:
        clip.save(partial)
        os.replace(partial, clip_path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        return _report(OutputError(f"cannot write the clip to {clip_path} ({exc.strerror or exc}); free disk space "
                                   f"or check the temporary folder"))
    return 0


def _report(exc: BaseException) -> int:
    print(ERROR_TAG + json.dumps({"type": type(exc).__name__, "message": str(exc)}), file=sys.stderr, flush=True)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Worker entry point: ``worker.py REQUEST.json CLIP.npz``. Returns the exit status.

    Run as a script this file is ``__main__``, outside any package: it imports its own tree as
    ``emoflame`` and hands over to that copy of :func:`serve`.
    """
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 2:
        print(ERROR_TAG + json.dumps({"type": "RequestError", "message": f"usage: worker.py REQUEST.json CLIP.npz "
                                      f"(got {len(args)} arguments); {_FIX}"}), file=sys.stderr, flush=True)
        return 2
    request_path, clip_path = args
    _import_package()
    from emoflame.core.worker import serve as packaged_serve

    return packaged_serve(request_path, clip_path)


if __name__ == "__main__":
    sys.exit(main())
