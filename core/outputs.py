"""Outputs as transactions: nothing appears, and nothing a user had is replaced, until a whole job
has succeeded.

Every output of a job (a .blend, an .mp4, a clip, an export, a batch line's sidecar) is written
under a temporary name beside its target (same folder, so the final rename is atomic and never
crosses a file system) and renamed onto its target only when every output is complete
(:meth:`Transaction.commit`). ``--force`` takes effect only at that rename. A failure or an
interruption before it removes the temporaries (and the folders the job created), so every file
that existed before is byte-identical afterwards.

Front-door path checks live here too: ``~`` expanded once, absolute paths, names the file system
cannot hold, outputs that would overwrite an input, and folders that cannot be written, all refused
before any slow work. A full disk anywhere becomes one :class:`~.errors.OutputError` naming it.

SIGINT and SIGTERM (:func:`interruptible`) remove every open transaction's temporaries and exit
with 130 or 143; during a commit the signal waits until the renames are done and are undone, so an
interruption never leaves half of a job's outputs in place.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

from .errors import EmoflameError, OutputError

DEFAULT_NAME_MAX = 255
"""Bytes in one file name where the file system does not say (ext4, XFS, tmpfs, APFS, NTFS: 255)."""
_TEMPORARY_MARK = ".emoflame-"  # in every temporary name, so a leftover is recognisable
_FULL = (errno.ENOSPC, errno.EDQUOT)
_SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}

_LIVE: dict[int, "Transaction"] = {}  # open transactions of this process, for the signal handler
_RAISING = 0  # depth of signals_raise() blocks
_COMMITTING = False
_PENDING_SIGNAL: int | None = None
_STDERR: int | None = None  # a copy of descriptor 2 as it was: Blender may hold 2 when a signal comes


# ---------------------------------------------------------------------------------------------
# Paths at the front door


def user_path(path: str | os.PathLike) -> Path:
    """``path`` with a leading ``~`` expanded (once: a ``~`` later in the path is a character) and
    made absolute against the working folder; symbolic links are kept."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def output_path(path: str | os.PathLike) -> Path:
    """Normalise an output path at the front door: :func:`user_path` and every name checked
    against the file system's limit. A symbolic link is kept as a name: the final rename replaces
    the link, never the file it points to (:func:`same_file` still sees through it).

    Raises:
        OutputError: a folder or file name longer than the file system allows, or a path longer
            than ``PATH_MAX``.
    """
    absolute = user_path(path)
    limit = name_max(absolute.parent)
    for part in absolute.parts[1:]:
        size = len(os.fsencode(part))
        if size > limit:
            shown = part if len(part) <= 40 else part[:37] + "..."
            raise OutputError(f"the name {shown!r} in {what_path(absolute)} is {size} bytes long; this file system "
                              f"allows at most {limit}: choose a shorter name")
    if len(os.fsencode(str(absolute))) >= _path_max(absolute.parent):
        raise OutputError(f"the path {what_path(absolute)} is longer than this system allows; choose a shorter one")
    return absolute


def what_path(path: Path) -> str:
    """``path`` for a one-line message: long paths shortened in the middle."""
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-50:]}"


def name_max(folder: Path) -> int:
    """Bytes one file name may have in ``folder`` (or its nearest existing parent)."""
    try:
        return os.pathconf(_existing_parent(folder), "PC_NAME_MAX")
    except (OSError, ValueError):
        return DEFAULT_NAME_MAX


def _path_max(folder: Path) -> int:
    try:
        return os.pathconf(_existing_parent(folder), "PC_PATH_MAX")
    except (OSError, ValueError):
        return 4096


def _existing_parent(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            return candidate
    return Path(os.sep)


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are one file: the same path after resolving links, or, when both
    exist, the same inode (a hard link)."""
    # realpath, not Path.resolve: a symlink loop is the audio loader's to name (resolve raises on it)
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Errors


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc``, or an error it was raised from or during, is ENOSPC or EDQUOT (some
    writers, zipfile's among them, lose the OSError behind a later ValueError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FULL:
            return True
        if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
            return True  # Blender reports its write errors as text in a RuntimeError
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_error(target: Path) -> OutputError:
    """The one message for a full disk, whichever writer met it."""
    return OutputError(f"no space left on the device holding {what_path(Path(target).parent)} while writing "
                       f"{Path(target).name}; free some space or choose another folder (nothing was replaced)")


def write_error(exc: BaseException, target: Path) -> OutputError:
    """An OutputError for ``exc`` met while writing ``target``: a full disk, a folder that cannot be
    written, a name that is too long, or the writer's own reason."""
    if is_disk_full(exc):
        return disk_full_error(target)
    code = exc.errno if isinstance(exc, OSError) else None
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"cannot write to the folder {what_path(Path(target).parent)} ({exc.strerror}); "
                           f"choose a folder you can write")
    if code == errno.ENAMETOOLONG:
        return OutputError(f"the name of {what_path(Path(target))} is too long for this file system; choose a shorter one")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).strip().splitlines()[0]
    return OutputError(f"cannot write {what_path(Path(target))} ({reason}); check the folder and the disk")


def release_writer(exc: BaseException) -> None:
    """Free what a failed writer left in ``exc``'s tracebacks now, quietly.

    zipfile (under ``numpy.savez``) that met a full disk fails again when the half-written
    archive is garbage-collected ("Exception ignored ... seek of closed file" at exit); its
    frames are cleared here with that noise silenced.
    """
    import gc
    import traceback

    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        seen = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            traceback.clear_frames(exc.__traceback__)
            exc = exc.__cause__ or exc.__context__
        gc.collect()
    finally:
        sys.unraisablehook = hook


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer can still put in ``folder``'s file system."""
    stats = os.statvfs(_existing_parent(folder))
    return stats.f_bavail * stats.f_frsize


# ---------------------------------------------------------------------------------------------
# Transactions


def temporary_name(target: Path) -> Path:
    """A fresh hidden name beside ``target`` that keeps its suffix (Blender's exporters choose the
    format from it) and fits the file system's name limit: ``.take.emoflame-1234-a1b2c3.blend``."""
    target = Path(target)
    token = f"{_TEMPORARY_MARK}{os.getpid()}-{secrets.token_hex(3)}"
    room = name_max(target.parent) - len(os.fsencode(token + target.suffix)) - 1
    stem = os.fsencode(target.stem)[:max(room, 0)].decode(errors="ignore")
    return target.with_name(f".{stem}{token}{target.suffix}")


def is_temporary(path: Path) -> bool:
    """True for a name made by :func:`temporary_name` or :meth:`Transaction.scratch_dir`."""
    return _TEMPORARY_MARK in Path(path).name


def sweep_temporaries(folders: Iterable[Path]) -> list[Path]:
    """Remove the temporaries in ``folders`` whose writing process is gone (killed before it could
    clean up: SIGKILL, a worker a pool or Ray had to kill). The process id is in the name; only
    processes of this machine are known, so use it on folders no other machine writes to.

    Returns:
        What was removed.
    """
    removed = []
    for folder in {Path(f) for f in folders}:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for path in entries:
            name = path.name
            if _TEMPORARY_MARK not in name:
                continue
            digits = name.split(_TEMPORARY_MARK, 1)[1].split("-", 1)[0]
            if digits.isdigit() and not _running(int(digits)):
                _remove(path)
                removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Transaction:
    """The outputs of one job, written under temporary names and renamed together.

    Use as a context manager; leaving it without :meth:`commit` (an error, an interruption)
    removes everything it staged::

        with Transaction(force=False) as outputs:
            outputs.check([blend, mp4], inputs=[audio])   # before any slow work
            save(outputs.stage(blend)); render(outputs.stage(mp4))
            written = outputs.commit()                    # both appear, or neither

    Attributes:
        force: replace targets that exist (only at the commit's rename).
        replace: targets that may be replaced even without ``force`` (a batch's own earlier
            outputs, recognised by their recorded hashes).
    """

    def __init__(self, *, force: bool = False, replace: Iterable[Path] = ()):
        self.force = force
        self.replace = {Path(p) for p in replace}
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target)
        self._scratch: list[Path] = []
        self._folders: list[Path] = []  # created for the outputs, outermost first
        self._backups: list[Path] = []  # what replaced targets held, until the commit is done
        _LIVE[id(self)] = self

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()

    def may_replace(self, target: Path) -> bool:
        """True if an existing ``target`` may be replaced at the commit."""
        return self.force or Path(target) in self.replace

    @property
    def targets(self) -> list[Path]:
        """The staged targets, in staging order."""
        return [target for _, target in self._staged]

    def staged(self) -> list[tuple[Path, Path]]:
        """``(temporary, target)`` of every staged output, in staging order."""
        return list(self._staged)

    def check(self, targets: Iterable[Path], inputs: Iterable[Path] = ()) -> None:
        """Check, before any slow work, that every target can be written, and create the folders
        they need (removed again if the job fails).

        Writes and deletes a probe file in each folder: ``os.access`` says yes to root on a
        read-only file system.

        Args:
            targets: absolute output paths (:func:`output_path`).
            inputs: the files the job reads (audio, transcript, curves, model files): no target may
                be one of them.

        Raises:
            OutputError: a target that is an input, a folder, given twice, or exists without
                ``force``; a folder that cannot be created or written; a full disk.
        """
        targets = [Path(t) for t in targets]
        inputs = [Path(i) for i in inputs]
        for target in targets:
            for source in inputs:
                if same_file(target, source):
                    raise OutputError(f"{what_path(target)} is also an input of this run; writing it would destroy "
                                      f"the input: give the output another name")
            if target.is_dir():
                raise OutputError(f"{what_path(target)} is a folder; give a file name such as "
                                  f"{what_path(target / ('take' + target.suffix))}")
            if sum(same_file(target, other) for other in targets) > 1:
                raise OutputError(f"{what_path(target)} is given as two outputs; give each output its own file name")
            if os.path.lexists(target) and not self.may_replace(target):
                raise OutputError(f"{what_path(target)} already exists; choose another name or pass --force to replace it")
        for target in targets:
            missing = [p for p in reversed(target.parents) if not p.exists() and p not in self._folders]
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                self._folders += missing
                with tempfile.TemporaryFile(dir=target.parent):
                    pass
            except OSError as exc:
                self._folders += [p for p in missing if p.exists() and p not in self._folders]
                if is_disk_full(exc):
                    raise disk_full_error(target) from None
                raise OutputError(f"cannot write to the folder {what_path(target.parent)} ({exc.strerror}); "
                                  f"choose a folder you can write") from None

    def stage(self, target: Path) -> Path:
        """A temporary path beside ``target`` for the writer to create; renamed onto ``target`` at
        :meth:`commit`, removed if the transaction is discarded.

        Raises:
            OutputError: ``target`` exists and ``force`` is False, or is staged twice.
        """
        target = Path(target)
        if any(same_file(target, t) for t in self.targets):
            raise OutputError(f"{what_path(target)} is given as two outputs; give each output its own file name")
        if os.path.lexists(target) and not self.may_replace(target):
            raise OutputError(f"{what_path(target)} already exists; choose another name or pass --force to replace it")
        temporary = temporary_name(target)
        self._staged.append((temporary, target))
        return temporary

    def write(self, target: Path, write: Callable[[Path], object]) -> Path:
        """Stage ``target`` (:meth:`stage`) and call ``write(temporary)`` to create it.

        Returns:
            The temporary path, renamed onto ``target`` at :meth:`commit`.

        Raises:
            OutputError: ``target`` cannot be staged, or the write failed: a full disk or another
                write error becomes one OutputError that names it (zipfile reports a full disk as
                "seek of closed file"). emoflame's own errors from ``write`` pass as they are.
        """
        temporary = self.stage(target)
        try:
            write(temporary)
        except EmoflameError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            error = write_error(exc, target)
            release_writer(exc)
        else:
            return temporary
        raise error  # outside the handler, so that the writer's frames are not kept alive

    def scratch_dir(self, target: Path) -> Path:
        """A new temporary folder beside ``target`` for a writer that picks its own file names
        (Blender's movie writer); removed when the transaction ends either way.

        Raises:
            OutputError: the folder cannot be created (full disk, permissions).
        """
        target = Path(target)
        try:
            folder = Path(tempfile.mkdtemp(prefix=f".{target.stem[:40]}{_TEMPORARY_MARK}", dir=target.parent))
        except OSError as exc:
            raise write_error(exc, target) from None
        self._scratch.append(folder)
        return folder

    def commit(self) -> list[Path]:
        """Rename every staged file onto its target, all or none.

        A target that exists is replaced only with ``force`` (``os.replace``, atomic); without it,
        a target that appeared while the job ran is refused (``os.link`` fails on an existing name).
        If any rename fails, or SIGINT/SIGTERM arrives, the targets already renamed are put back
        as they were and the signal is then acted on.

        Returns:
            The targets, in the order they were staged.

        Raises:
            OutputError: a staged file was never written, or a target cannot be replaced.
        """
        global _COMMITTING
        done: list[tuple[Path, Path | None]] = []  # (target, backup of what it held)
        _COMMITTING = True
        try:
            for temporary, target in self._staged:
                if not temporary.is_file():
                    raise OutputError(f"{what_path(target)} was not written; run with --debug to see why")
                done.append((target, self._swap_in(temporary, target)))
                if _PENDING_SIGNAL is not None:
                    raise _Interrupted
            _COMMITTING = False
            if _PENDING_SIGNAL is not None:  # arrived between the last check and the line above
                raise _Interrupted
        except BaseException:
            _COMMITTING = True  # a second signal waits for the undo too
            self._undo(done)
            self.discard()
            _COMMITTING = False
            if _PENDING_SIGNAL is not None:
                _on_signal(_PENDING_SIGNAL, None)
            raise
        # The commit point: a signal from here on finds every output in place.
        targets = self.targets
        self._staged.clear()
        self._folders.clear()  # they hold the outputs now
        self.discard()  # the backups of replaced files
        return targets

    def _swap_in(self, temporary: Path, target: Path) -> Path | None:
        if not os.path.lexists(target):
            try:
                os.link(temporary, target)  # fails if a file of that name appeared meanwhile
                os.unlink(temporary)
                return None
            except FileExistsError:
                if not self.may_replace(target):
                    raise OutputError(f"{what_path(target)} appeared while emoflame worked; choose another name "
                                      f"or pass --force to replace it") from None
            except OSError:  # a file system without hard links
                os.rename(temporary, target)
                return None
        if not self.may_replace(target):  # it did not exist when the job was checked
            raise OutputError(f"{what_path(target)} appeared while emoflame worked; choose another name or pass "
                              f"--force to replace it")
        if target.is_dir():
            raise OutputError(f"{what_path(target)} is a folder; give a file name")
        backup = temporary_name(target)
        self._backups.append(backup)
        try:
            os.link(target, backup)
        except OSError:
            os.rename(target, backup)
        try:
            os.replace(temporary, target)
        except BaseException:
            os.replace(backup, target)
            raise
        return backup

    def _undo(self, done: list[tuple[Path, Path | None]]) -> None:
        for target, backup in reversed(done):
            try:
                if backup is None:
                    os.unlink(target)
                else:
                    os.replace(backup, target)
                    self._backups.remove(backup)
            except (OSError, ValueError):
                pass

    def discard(self) -> None:
        """Remove every temporary file and folder of this transaction and the folders it created
        that are still empty; a committed transaction has nothing left to remove."""
        for temporary, _ in self._staged:
            _remove(temporary)
        for backup in self._backups:
            _remove(backup)
        for folder in self._scratch:
            shutil.rmtree(folder, ignore_errors=True)
        for folder in reversed(self._folders):
            try:
                folder.rmdir()
            except OSError:
                pass
        self._staged.clear()
        self._scratch.clear()
        self._folders.clear()
        self._backups.clear()
        _LIVE.pop(id(self), None)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)
    except OSError:
        pass


def atomic_write(target: Path, write: Callable[[Path], object], *, force: bool = False) -> Path:
    """Write one file through a :class:`Transaction`: ``write(temporary_path)`` then the rename.

    Raises:
        OutputError: ``target`` exists without ``force``, or the write failed (a full disk named
            as such).
    """
    target = Path(target)
    with Transaction(force=force) as outputs:
        outputs.check([target])
        outputs.write(target, write)
        return outputs.commit()[0]


# ---------------------------------------------------------------------------------------------
# Interruption


class _Interrupted(BaseException):
    """A signal that arrived during a commit; raised to undo it."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM inside :func:`signals_raise`: raised in the main thread so that the
    driver's own ``finally`` blocks stop its workers; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(_SIGNAL_NAMES.get(signum, f"signal {signum}"))
        self.signum = signum


def exit_code(signum: int) -> int:
    """The shell's exit status for a process ended by ``signum``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


def interrupted_message(signum: int) -> str:
    """The one line an interrupted command prints."""
    name = _SIGNAL_NAMES.get(signum, f"signal {signum}")
    return f"emoflame: interrupted by {name}; unfinished outputs were removed, existing files are as they were"


def discard_all() -> None:
    """Remove the temporaries of every open transaction of this process."""
    for transaction in list(_LIVE.values()):
        transaction.discard()


def take_back_signals() -> None:
    """Inside :func:`interruptible`, make emoflame's SIGINT/SIGTERM handlers the process's again
    after a library replaced them (``ray.init`` installs a SIGTERM handler that exits the driver
    with nothing cleaned up, and a native one that aborts it)."""
    import threading

    if _STDERR is not None and threading.current_thread() is threading.main_thread():
        for signum in _SIGNAL_NAMES:
            signal.signal(signum, _on_signal)


@contextmanager
def signals_raise():
    """Inside, SIGINT and SIGTERM raise :class:`Interrupted` instead of ending the process at
    once: for a batch driver, which is plain Python and must stop its worker processes (or its Ray
    tasks) on the way out. Blender code never runs here."""
    global _RAISING
    _RAISING += 1
    try:
        yield
    finally:
        _RAISING -= 1


def _on_signal(signum, frame) -> None:
    global _PENDING_SIGNAL
    if _COMMITTING:  # the commit undoes its renames, then comes back here
        _PENDING_SIGNAL = signum
        return
    _PENDING_SIGNAL = None
    if _RAISING:
        raise Interrupted(signum)
    discard_all()
    stream = _STDERR if _STDERR is not None else 2
    try:
        sys.stderr.flush()
        os.write(stream, (("\n" if os.isatty(stream) else "") + interrupted_message(signum) + "\n").encode())
    except OSError:  # a closed stderr must not stop the exit
        pass
    # A hard exit: Blender calls Python from C (render handlers) and swallows exceptions there,
    # so an exception could not stop a render; everything to undo has been undone above.
    os._exit(exit_code(signum))


@contextmanager
def interruptible():
    """While inside, SIGINT and SIGTERM remove every open transaction's temporaries, print one
    line and end the process with 130 or 143. Outside the main thread it does nothing (Python
    delivers signals to the main thread only)."""
    import threading

    global _STDERR
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outer = _STDERR
    _STDERR = os.dup(2) if outer is None else outer
    previous = {s: signal.signal(s, _on_signal) for s in _SIGNAL_NAMES}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if outer is None:
            os.close(_STDERR)
            _STDERR = None


# ---------------------------------------------------------------------------------------------
# Standard output holds only the paths a command prints


@contextmanager
def native_stdout_to(destination: str = "stderr"):
    """Send what native code (Blender's C side: "Info: Saved copy as ...", a line per rendered
    frame, the exporters' prints) writes to file descriptor 1 to stderr (``"stderr"``) or nowhere
    (``"null"``), so stdout holds only what the command prints itself.

    C's stdio buffers a piped stdout: it is flushed (``fflush(NULL)``) before descriptor 1 is
    given back, or Blender's lines would reach the real stdout later.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    target = os.dup(2) if destination == "stderr" else os.open(os.devnull, os.O_WRONLY)
    os.dup2(target, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(target)


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


class HeldText:
    """What a :func:`native_stderr_held` block wrote; ``text`` is filled when the block ends."""

    text: str = ""


@contextmanager
def native_stderr_held():
    """Hold what native code writes to file descriptor 2 (Blender prints an operator's Python
    traceback there itself) instead of showing it; yields a :class:`HeldText` whose ``text`` the
    caller logs or searches (for "No space left on device") once the block is done."""
    held = HeldText()
    sys.stderr.flush()
    saved = os.dup(2)
    buffer = tempfile.TemporaryFile()
    os.dup2(buffer.fileno(), 2)
    try:
        yield held
    finally:
        sys.stderr.flush()
        _flush_c_stdio()
        os.dup2(saved, 2)
        os.close(saved)
        buffer.seek(0)
        held.text = buffer.read().decode(errors="replace")
        buffer.close()
