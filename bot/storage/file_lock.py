"""One process per SQLite file: an OS lock on a sidecar `<database>.lock`.

SQLite itself would let a second bot process open the file, and both would then resume,
submit and deliver the same jobs. `flock` is released by the kernel when the holder exits,
however it exits (kill -9 included), so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class DatabaseInUseError(RuntimeError):
    """Another live process holds the SQLite file; the message is one line for the operator."""


class FileLock:
    """Held from `acquire()` until `release()` or the process ends."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: str | Path) -> FileLock:
        """Lock `<database>.lock`, or raise DatabaseInUseError naming the holder's pid."""
        path = Path(f"{database}.lock")
        # 0o600: the pid is nobody else's business, and h10b keeps the data files private.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise DatabaseInUseError(
                f"database.path: {database} is in use by {who}; SQLite serves one bot process "
                "(stop it, or set DATABASE_URL to PostgreSQL to run several)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # The file stays: removing it would let a third process lock a new inode while a
        # second one still waits on the old one.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
