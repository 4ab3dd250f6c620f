"""One writer per run directory: an OS lock on a file inside it, held while a run trains.

Two trainers started into the same new folder would both find it empty, and two resumes of
one run would both append every step to its metrics: the second writer is refused instead.
`flock` locks belong to the open file and the kernel drops them when the process ends, however
it ends, so a killed run never leaves its folder locked; the file it leaves behind is no run
file and blocks nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from textwae.errors import RunDirectoryError

LOCK_FILE = ".textwae.lock"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the lock of `run_dir` (a folder that exists) for the block; a folder another
    process holds is refused with a `RunDirectoryError`, before anything is written."""
    path = run_dir / LOCK_FILE
    handle = _acquire(path)
    try:
        yield
    finally:
        # removed while still held: a process that opened it meanwhile finds it gone and
        # retries on a new file (see `_acquire`)
        with contextlib.suppress(OSError):
            if _is_open_as(handle, path):
                path.unlink()
        os.close(handle)


def _acquire(path: Path) -> int:
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise RunDirectoryError(
                f"{path.parent} is in use: another training process writes into it; wait for it "
                "to end, or choose another --out") from None
        if _is_open_as(handle, path):
            return handle
        os.close(handle)  # its holder removed it as this process opened it: lock the new one


def _is_open_as(handle: int, path: Path) -> bool:
    """Whether `path` still names the file open as `handle`."""
    try:
        return os.stat(path).st_ino == os.fstat(handle).st_ino
    except FileNotFoundError:
        return False
