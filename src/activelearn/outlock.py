"""An exclusive lock on a run's output folder: one writer per ``--out``.

:func:`output_lock` holds an OS lock (``fcntl.flock``, exclusive and
non-blocking) on ``<folder>/.activelearn.lock`` while a run or a comparison
writes into the folder.  A second writer, in another process or another
thread, is refused at once with :class:`~activelearn.exceptions.OutputLockedError`
instead of overwriting the first one's files.  The operating system releases
the lock when the holder's file is closed, so a process that is killed
(``SIGKILL``, power loss) leaves no stale lock: the lock *file* stays (it is
never deleted, which would race with a newcomer) but nobody holds it.

The lock is re-entrant within one thread (``compare`` holds the folder of the
comparison while each run holds its own sub-folder; the CLI holds ``--out``
while it checks the folder and runs), and taken by rank 0 only under
``torchrun`` (the other ranks never write; a refusal raises on every rank).  After taking it, temporary files
left by dead writers are removed
(:func:`activelearn.checkpoint.remove_stale_tmp`).

Platforms without ``fcntl`` (Windows): no lock is taken and a
``RuntimeWarning`` says once per process that concurrent writers to one folder
are not detected there.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path
from typing import IO, Iterator

from . import distributed as D
from .checkpoint import remove_stale_tmp
from .exceptions import OutputLockedError, OutputWriteError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "output_lock"]

LOCK_NAME = ".activelearn.lock"

_GUARD = threading.Lock()
#: folder -> (thread that holds it, depth of nesting, the open lock file)
_HELD: dict[Path, tuple[int, int, IO[str]]] = {}
_warned = False


def _open_lock_file(folder: Path) -> IO[str]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return open(folder / LOCK_NAME, "a+")
    except OSError as exc:
        raise OutputWriteError(
            f"cannot write to the output folder {folder}: {exc.strerror or exc}; choose a writable folder (--out)"
        ) from exc


def _holder(f: IO[str]) -> str:
    f.seek(0)
    pid = f.read().strip()
    return f"process {pid}" if pid.isdigit() else "another process"


def _acquire(folder: Path) -> IO[str]:
    f = _open_lock_file(folder)
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        who = _holder(f)
        f.close()
        raise OutputLockedError(
            f"the output folder {folder} is in use: {who} is writing a run into it. "
            "Wait for it to finish, or choose another output folder (--out)"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def _enter(folder: Path) -> bool:
    """Take the lock (or one more level of it); True when this call took it."""
    me = threading.get_ident()
    with _GUARD:
        held = _HELD.get(folder)
        if held is not None:
            if held[0] != me:
                raise OutputLockedError(
                    f"the output folder {folder} is in use: another thread of this process is writing a run into it. "
                    "Choose another output folder (out_dir=)"
                )
            _HELD[folder] = (me, held[1] + 1, held[2])
            return False
        _HELD[folder] = (me, 1, _acquire(folder))
        return True


def _leave(folder: Path) -> None:
    with _GUARD:
        thread, depth, f = _HELD[folder]
        if depth > 1:
            _HELD[folder] = (thread, depth - 1, f)
            return
        del _HELD[folder]
        f.close()  # closing the file releases the flock


def _warn_no_lock() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "this platform has no fcntl: output folders are not locked, so two runs writing to one folder are not detected",
            RuntimeWarning,
            stacklevel=3,
        )


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike[str] | None) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` for the duration of the ``with`` block.

    ``None`` (no output folder) locks nothing.  Under ``torchrun`` every rank
    must enter at the same point: rank 0 takes the lock, and if it is refused
    every rank raises.

    Raises
    ------
    OutputLockedError
        If another process or thread holds the folder; nothing was written.
    OutputWriteError
        If the folder cannot be created or written (read-only, no permission).
    """
    if folder is None:
        yield
        return
    if fcntl is None:  # pragma: no cover - Windows
        _warn_no_lock()
        yield
        return
    path = Path(folder).resolve()
    # rank 0 locks (None elsewhere); a refusal raises on every rank, so none waits in a later collective
    took = D.on_main_process(_enter, path)
    try:
        if took:
            remove_stale_tmp(path)
        yield
    finally:
        if took is not None:
            _leave(path)
