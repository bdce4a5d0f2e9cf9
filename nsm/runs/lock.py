"""One trainer per run: an exclusive lock on `<run>/run.lock`.

The lock is an `flock` on the file, so it dies with the process that holds it:
a killed trainer never leaves a lock behind, and nothing has to guess whether
a recorded pid is still the holder. The file's content names the holder
(pid, host, start time, a token) for the messages of whoever is refused.

A detached trainer is started by a launcher that takes the lock first and
passes the locked descriptor to the child (`NSM_RUN_LOCK_FD`), so two quick
`resume --detach` of one run cannot both get as far as a process.

On another host sharing the store (NFS), flock may not reach us; there the
holder file plus a fresh heartbeat is what says "held".
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsm.runs.errors import RunStoreError
from nsm.runs.events import open_regular
from nsm.runs.process import HEARTBEAT_FRESH_S, this_host

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, the holder file alone decides
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "run.lock"
ENV_LOCK_FD = "NSM_RUN_LOCK_FD"
ENV_LOCK_TOKEN = "NSM_RUN_LOCK_TOKEN"


@dataclass(frozen=True)
class Holder:
    pid: int | None
    host: str | None
    started: float | None
    token: str | None
    purpose: str | None

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid else "another process"
        if self.host and self.host != this_host():
            who += f" on {self.host}"
        if self.started:
            who += f", since {time.strftime('%H:%M:%S', time.localtime(self.started))}"
        return who

    @classmethod
    def from_json(cls, data: Any) -> "Holder":
        d = data if isinstance(data, dict) else {}
        pid = d.get("pid") if isinstance(d.get("pid"), int) and not isinstance(d.get("pid"), bool) else None
        started = d.get("started") if isinstance(d.get("started"), (int, float)) else None
        return cls(pid, _str(d.get("host")), started, _str(d.get("token")), _str(d.get("purpose")))


def _str(x: Any) -> str | None:
    return x if isinstance(x, str) else None


class RunLocked(RunStoreError):
    """Another process trains this run."""

    def __init__(self, ref: str, holder: Holder):
        super().__init__(
            f"run {ref} is already being trained by {holder.describe()}; "
            f"stop it first (nsm-tui stop {ref.rsplit('/', 1)[-1]}) or attach to it (nsm-tui attach {ref.rsplit('/', 1)[-1]})"
        )
        self.holder = holder


class RunLock:
    """A held lock. Release it (or let the process end) when training is over."""

    def __init__(self, path: Path, fd: int, holder: Holder):
        self.path = path
        self._fd: int | None = fd
        self.holder = holder

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise ValueError("the run lock was released")
        return self._fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def rewrite(self, *, pid: int | None = None, purpose: str | None = None) -> None:
        """Record a new holder (the child a launcher handed the lock to)."""
        holder = Holder(pid or os.getpid(), this_host(), self.holder.started, self.holder.token, purpose or self.holder.purpose)
        _write_holder(self.fd, holder)
        self.holder = holder

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Empty the holder record first: a reader on a host without flock
            # then sees nobody, not a dead pid.
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)

    def detach(self) -> None:
        """Forget the descriptor without unlocking (a child process holds it now)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(run_path: Path, ref: str, *, purpose: str = "train", wait_s: float = 0.5) -> RunLock:
    """Take the run's lock or raise RunLocked naming the holder.

    `wait_s` covers the instant in which a reader's probe holds a shared lock.
    """
    path = Path(run_path) / LOCK_FILE
    fd = _open(path)
    try:
        deadline = time.monotonic() + wait_s
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise RunLocked(ref, _named_holder(fd))
            time.sleep(0.02)
        remote = _read_holder(fd)
        if fcntl is None or (remote.host and remote.host != this_host()):
            # flock cannot see a trainer on another host: its record and heartbeat must.
            if remote.pid is not None and _heartbeat_fresh(Path(run_path)):
                raise RunLocked(ref, remote)
        holder = Holder(os.getpid(), this_host(), time.time(), secrets.token_hex(8), purpose)
        _write_holder(fd, holder)
        return RunLock(path, fd, holder)
    except BaseException:
        os.close(fd)
        raise


def adopt_from_env(run_path: Path) -> RunLock | None:
    """The lock a launcher passed down (detached trainer, sweep point), if any."""
    raw = os.environ.pop(ENV_LOCK_FD, None)
    token = os.environ.pop(ENV_LOCK_TOKEN, None)
    if not raw:
        return None
    try:
        fd = int(raw)
        st = os.fstat(fd)
        mine = os.stat(Path(run_path) / LOCK_FILE, follow_symlinks=False)
    except (ValueError, OSError):
        return None
    if (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino):
        return None  # a descriptor for some other run's lock: not ours to use
    lock = RunLock(Path(run_path) / LOCK_FILE, fd, _read_holder(fd))
    if token and lock.holder.token != token:
        lock.detach()
        return None
    lock.rewrite(pid=os.getpid())
    return lock


def holder(run_path: Path) -> Holder | None:
    """Who trains the run now, or None. Never raises for what it reads."""
    path = Path(run_path) / LOCK_FILE
    try:
        fd = open_regular(path)
    except (OSError, RunStoreError):
        return None  # no lock file, or something odd in its place: nobody can hold it
    try:
        record = _read_holder(fd)
        if fcntl is not None and (record.host is None or record.host == this_host()):
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return record  # someone holds it exclusively
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        # Another host's trainer: trust its record while its heartbeat is fresh.
        if record.pid is not None and _heartbeat_fresh(Path(run_path)):
            return record
        return None
    finally:
        os.close(fd)


def _open(path: Path) -> int:
    try:
        return open_regular(path, os.O_RDWR | os.O_CREAT)
    except FileNotFoundError:
        raise RunStoreError(f"run directory {path.parent} does not exist (deleted?)") from None
    except RunStoreError as exc:  # a FIFO, a directory or a symlink in its place
        raise RunStoreError(f"cannot open the run lock: {exc}") from None
    except OSError as exc:
        raise RunStoreError(f"cannot open the run lock {path}: {exc.strerror or exc}") from None


def _try_lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:
        return False


def _read_holder(fd: int) -> Holder:
    try:
        data = os.pread(fd, 4096, 0)
        return Holder.from_json(json.loads(data)) if data.strip() else Holder(None, None, None, None, None)
    except (OSError, ValueError):
        return Holder(None, None, None, None, None)


def _named_holder(fd: int, wait_s: float = 0.5) -> Holder:
    """The holder's record; a winner that has just taken the lock writes it a moment later."""
    deadline = time.monotonic() + wait_s
    record = _read_holder(fd)
    while record.pid is None and time.monotonic() < deadline:
        time.sleep(0.01)
        record = _read_holder(fd)
    return record


def _write_holder(fd: int, h: Holder) -> None:
    data = json.dumps({"pid": h.pid, "host": h.host, "started": h.started, "token": h.token, "purpose": h.purpose}).encode()
    # Written over the old record, then cut to length: a reader never sees an empty file.
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


def _heartbeat_fresh(run_path: Path) -> bool:
    try:
        age = time.time() - (run_path / "heartbeat").stat().st_mtime
    except OSError:
        return False
    return age < HEARTBEAT_FRESH_S
