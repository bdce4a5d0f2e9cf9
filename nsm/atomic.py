"""Atomic file writes: a temp file in the same folder, fsync, rename.

A reader (or a crash) sees either the old file or the new one, never half of
one. Used for every file that matters: checkpoints, configs, histories,
results, dataset caches.

Modes: every file of the store is created `FILE_MODE` (0o644) and every folder
`DIR_MODE` (0o755), less the process umask, whoever writes it (a temp file of
mkstemp would otherwise be 0o600).
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

FILE_MODE = 0o644
DIR_MODE = 0o755


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (threads may be writing)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode of a new file of the store: FILE_MODE less the umask."""
    return FILE_MODE & ~current_umask()


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temp file beside `path`; on clean exit fsync it and rename over `path`."""
    if mode not in ("wb", "w"):
        raise ValueError("atomic_open writes whole files: mode must be 'w' or 'wb'")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), file_mode())  # mkstemp makes 0o600; the store's files are all alike
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # rename replaces a symlink at `path` itself: it never writes through it.
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths show up in metrics dicts; never pickle anything else.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
