"""A full disk, said clearly: which file could not be written, how much space is left, what is intact."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


class DiskFull(OSError):
    """No space left on the device that holds ``path`` (an ``OSError`` with errno ENOSPC)."""

    def __init__(self, path: Path, what_is_intact: str = "the previous version is intact") -> None:
        self.path = Path(path)
        self.what_is_intact = what_is_intact
        free = free_bytes(self.path)
        room = f"{free:,} bytes free there" if free is not None else "free space unknown"
        super().__init__(errno.ENOSPC, f"no space left on device writing {self.path} ({room}); nothing was "
                                       f"replaced: {what_is_intact}. Free space on that filesystem, then re-run")

    def __str__(self) -> str:
        return self.strerror or super().__str__()

    def __reduce__(self):  # noqa: ANN204 - as built (a worker process's error, ingestion/pool.py)
        return type(self), (self.path, self.what_is_intact)


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC, as Python, polars (Rust: "os error 28") or DuckDB ("No space left on device") report it."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()  # DuckDB says "No space left on device", our own DiskFull "no space left on device"
    return any(s in text for s in ("no space left on device", "os error 28", "disk quota exceeded",
                                   "database or disk is full"))  # the last: SQLite (Dagster's instance)


def free_bytes(path: Path) -> int | None:
    """Free bytes on the filesystem of ``path`` (or of its nearest existing parent); None if unknown."""
    for p in (path, *path.parents):
        if p.exists():
            try:
                return shutil.disk_usage(p).free
            except OSError:
                return None
    return None


def fsync(path: Path) -> None:
    """fsync a file or a folder (a folder: so a rename in it survives a power loss)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
