"""Mirroring a Modal run's events into the local run store.

`LocalMirror` appends remote events to the local events.jsonl in seq order:
a seq already written is a duplicate and is dropped; a seq beyond the next
one waits until the gap before it is filled (from the volume's log, the
lossless record). So the local log is always a gap-free, duplicate-free
prefix of the remote one, and everything that follows local logs (the
dashboard, the browser, comparisons) treats a Modal run like a local one.

One mirror per run at a time: `MirrorLock` is an flock on `.mirror.lock` in
the run folder. `python -m remote.mirror_process RUN_DIR` is the detached mirror
process started by `--detach` and `attach`.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from nsm.runs import Run
from nsm.runs.events import parse_lines

try:  # flock is POSIX; elsewhere two mirrors are simply not prevented
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".mirror.lock"
LOG_FILE = "mirror.log"
MAX_PENDING = 200_000  # events held back behind a gap (the volume fills it later anyway)
HEARTBEAT_EVERY_S = 5.0


class LocalMirror:
    def __init__(self, run: Run, on_event: Callable[[dict[str, Any]], None] | None = None):
        self.run = run
        self.writer = run.event_writer()
        self.pending: dict[int, dict[str, Any]] = {}
        self.on_event = on_event
        self.written = 0
        self.duplicates = 0
        self.from_volume = 0
        self._last_beat = 0.0

    @property
    def next_seq(self) -> int:
        return self.writer.next_seq

    def offer(self, event: Any, source: str = "stream") -> bool:
        """Take one remote event; True if it was new (written now or held back)."""
        if not isinstance(event, dict):
            return False
        seq = event.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(event.get("type"), str):
            return False
        if seq < self.next_seq or seq in self.pending:
            self.duplicates += 1
            return False
        if len(self.pending) >= MAX_PENDING:
            return False  # the volume's log has it; a later fill brings it back
        self.pending[seq] = event
        self._drain(source)
        return True

    def _drain(self, source: str) -> None:
        while self.next_seq in self.pending:
            event = self.writer.append(self.pending.pop(self.next_seq))
            self.written += 1
            if source == "volume":
                self.from_volume += 1
            self.beat()
            if self.on_event is not None:
                self.on_event(event)

    def gap(self) -> tuple[int, int] | None:
        """(first missing seq, last missing seq) when events wait behind a gap."""
        if not self.pending:
            return None
        first = min(self.pending)
        return (self.next_seq, first - 1) if first > self.next_seq else None

    def fill(self, data: bytes | None) -> int:
        """Take every event of a copy of the remote log (the volume's
        events.jsonl) from the next seq on; returns how many were written."""
        if not data:
            return 0
        before = self.written
        end = data.rfind(b"\n")
        events, _bad, _ = parse_lines(data[: end + 1], self.next_seq - 1)
        for event in events:
            self.offer(event, source="volume")
        return self.written - before

    def append_local(self, type: str, **payload: Any) -> dict[str, Any]:
        """An event only this mirror knows (the remote call's end when the
        engine could not report it); it takes the next local seq."""
        event = self.writer.emit(type, **payload)
        self.written += 1
        if self.on_event is not None:
            self.on_event(event)
        return event

    def beat(self, force: bool = False) -> None:
        """The local heartbeat: a Modal run whose mirror hears from it counts as running."""
        now = time.monotonic()
        if force or now - self._last_beat >= HEARTBEAT_EVERY_S:
            self._last_beat = now
            try:
                self.run.touch_heartbeat()
            except OSError:
                pass

    def close(self) -> None:
        self.writer.close()


class MirrorLock:
    """An exclusive, non-blocking flock on the run's `.mirror.lock`; released
    by the kernel if the holder dies."""

    def __init__(self, run: Run):
        self.path = run.path / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def mirror_running(run: Run) -> bool:
    """True while some process (or thread) mirrors this run."""
    lock = MirrorLock(run)
    try:
        if lock.acquire():
            lock.release()
            return False
    except OSError:
        return False
    return True


def start_mirror_process(run: Run) -> int | None:
    """Start `python -m remote.mirror_process RUN_DIR` in its own session (it outlives
    this process and the terminal); None when a mirror already runs."""
    if mirror_running(run):
        return None
    from nsm.execution.launcher import python_command, spawn_detached

    proc = spawn_detached(python_command("remote.mirror_process", str(run.path)), cwd=run.path, log_path=run.path / LOG_FILE)
    return proc.pid
