"""Atomic file writes (a temporary name in the same folder, then rename), output folders and JSON-ready values.

- :func:`atomic_write_bytes` and friends: readers see the old file or the whole new one, never a part;
  the new file gets the mode the user's umask gives any new file (``0o666 & ~umask``).
- :func:`check_output_folder`: ``--out`` is a folder that can be written, checked before any work.
- :func:`output_lock`: one run at a time writes a folder (an advisory ``flock``, released when the
  process ends, however it ends).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

LOCK_FILE = ".surrogateshap.lock"
_HELD: set[str] = set()  # folders whose lock this process holds


def current_umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status``; elsewhere set and restored).

    >>> 0 <= current_umask() <= 0o777
    True
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    The file's mode is what ``open`` would give a new file under the current umask (``mkstemp``'s
    temporary file alone would be 0600, unreadable for teammates).

    >>> import stat, tempfile
    >>> path = atomic_write_bytes(Path(tempfile.mkdtemp()) / "a.txt", b"hi")
    >>> stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write an object as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def check_output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` if it is, or can be made, a folder this process writes; else one line naming the problem.

    Checked before any work starts and without creating anything: an existing file, a file among its
    parents, a read-only or full file system each raise a ValueError saying what to give instead
    (the test writes a temporary file into the nearest existing folder).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "run"
    >>> check_output_folder(folder) == folder, folder.exists()
    (True, False)
    """
    if not str(path).strip():
        raise ValueError(f"{option} is empty; give a folder (new or existing).")
    path = Path(path).expanduser()
    existing = next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        what = "is an existing file" if existing == path else f"is below {existing}, which is a file"
        raise ValueError(f"{option} {path} {what}; give a folder (new or existing) instead.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        reason = {errno.EROFS: "is on a read-only file system", errno.EACCES: "is not writable by this user",
                  errno.EPERM: "is not writable by this user", errno.ENOSPC: "is on a full disk"}.get(
            err.errno, f"cannot be written ({err.strerror})")
        where = "" if existing == path else f" (its folder {existing})"
        raise ValueError(f"{option} {path}{where} {reason}; give a folder you can write to.") from None
    return path


def _lock(path: Path) -> int:
    """A descriptor holding an exclusive ``flock`` on ``path`` (created if missing); BlockingIOError if held.

    Retried when the file it locked was removed meanwhile by the holder's release (its inode is gone).
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike, option: str = "--out") -> Iterator[Path]:
    """Create ``folder`` and hold its lock while a run writes there; a second run on it at once is refused.

    The lock is an advisory ``flock`` on ``folder/.surrogateshap.lock``, which holds the pid and is
    removed at the end; the lock ends with the process, also on SIGKILL (the file then stays, and the
    next run takes it over). Nested blocks of one process on one folder share the outer lock (the demo
    locks, then calls ``run_attribution``). A block that raises removes the folders this call created
    if they are still empty, so a run refused inside its lock leaves ``--out`` as it was.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with output_lock(folder):
    ...     (folder / LOCK_FILE).read_text() == f"{os.getpid()}\\n"
    True
    >>> (folder / LOCK_FILE).exists()
    False
    """
    created = [p for p in (Path(folder), *Path(folder).parents) if not p.exists()]
    Path(folder).mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    if key in _HELD:
        yield Path(folder)
        return
    try:
        with _held(Path(folder), option):
            yield Path(folder)
    except BaseException:
        for made in created:  # a run that failed leaves no folder it created, if it wrote nothing there
            with contextlib.suppress(OSError):
                made.rmdir()
        raise


@contextlib.contextmanager
def _held(folder: Path, option: str) -> Iterator[None]:
    """The lock of an existing ``folder`` (see :func:`output_lock`)."""
    key = os.path.realpath(folder)
    path = folder / LOCK_FILE
    try:
        fd = _lock(path)
    except BlockingIOError:
        holder = ""
        with contextlib.suppress(OSError):
            holder = path.read_text().strip()
        raise ValueError(
            f"{option} {folder} is being written by another surrogateshap run (pid {holder or 'unknown'}); wait "
            "for it to end or give another folder."
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
            path.unlink(missing_ok=True)  # still locked: a run waiting on this inode retries on a new file
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, tuples and paths turned into JSON-ready Python objects.

    Mapping keys become strings and non-finite floats become None (JSON has no NaN).
    """
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj

