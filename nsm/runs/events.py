"""The event protocol: one JSON object a line in `events.jsonl`.

Every event is `{"v": 1, "seq": n, "t": unix_time, "type": T, ...payload}`
(payloads per type: docs/ARCHITECTURE.md). One writer appends whole lines;
any number of readers read or follow the file and ignore a trailing partial
line, so a crash mid-write never corrupts what was already there.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any, Collection

from nsm.runs.errors import RunStoreError

EVENT_VERSION = 1

RUN_STARTED = "run_started"
RESUMED = "resumed"
PROGRESS = "progress"
EPOCH_END = "epoch_end"
EVAL = "eval"
CHECKPOINT = "checkpoint"
CHECKPOINT_REMOVED = "checkpoint_removed"  # KEEP_LAST deleted an older checkpoint (nsm.runs.retention)
GPU = "gpu"
LOG = "log"
FINISHED = "finished"
INTERRUPTED = "interrupted"
FAILED = "failed"

EVENT_TYPES = frozenset(
    {RUN_STARTED, RESUMED, PROGRESS, EPOCH_END, EVAL, CHECKPOINT, CHECKPOINT_REMOVED, GPU, LOG, FINISHED, INTERRUPTED, FAILED}
)
TERMINAL_TYPES = frozenset({FINISHED, INTERRUPTED, FAILED})
# Events that start (or restart) an attempt: a terminal event only counts after the last of these.
START_TYPES = frozenset({RUN_STARTED, RESUMED})
# Losing these to a power cut would lie about the run's state or its checkpoints.
DURABLE_TYPES = TERMINAL_TYPES | {CHECKPOINT, CHECKPOINT_REMOVED}

_RESERVED = frozenset({"v", "seq", "t", "type"})
_READ_CHUNK = 1 << 16
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate newlines
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # a log symlinked elsewhere (another run's) is refused
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO in a log's place must not hang anyone
# How a reader opens a run file: never through a symlink, never blocking on a FIFO.
_READ_FLAGS = os.O_RDONLY | _O_BINARY | _O_NOFOLLOW | _O_NONBLOCK


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def not_regular_message(path: str | os.PathLike[str], mode: int | None) -> str:
    kind = "a symbolic link" if mode is None else file_kind(mode)
    return f"{path} is {kind}; only a regular file is allowed there (remove or replace it)"


def open_regular(path: str | os.PathLike[str], flags: int = _READ_FLAGS, mode: int = 0o644) -> int:
    """os.open that refuses (RunStoreError) a symlink, a FIFO, a directory or a device at
    `path`; FileNotFoundError / NotADirectoryError propagate as they are."""
    try:
        fd = os.open(path, flags | _O_NOFOLLOW | _O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EMLINK and os.path.islink(path)):
            raise RunStoreError(not_regular_message(path, None)) from None
        if exc.errno in (errno.EISDIR, errno.ENXIO):  # a directory opened for writing; a FIFO no one reads
            try:
                raise RunStoreError(not_regular_message(path, os.lstat(path).st_mode)) from None
            except OSError:
                pass
        raise
    try:
        st_mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st_mode):
        os.close(fd)
        raise RunStoreError(not_regular_message(path, st_mode))
    if _O_NONBLOCK and hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


def make_event(seq: int, type: str, /, *, t: float | None = None, **payload: Any) -> dict[str, Any]:
    """Build an event dict; `t` defaults to now."""
    clash = _RESERVED.intersection(payload)
    if clash:
        raise ValueError(f"payload keys {sorted(clash)} are reserved for the event envelope")
    if not _is_seq(seq) or seq < 0:
        raise ValueError(f"seq must be a non-negative integer, got {seq!r}")
    if not isinstance(type, str) or not type:
        raise ValueError(f"event type must be a non-empty string, got {type!r}")
    return {"v": EVENT_VERSION, "seq": seq, "t": time.time() if t is None else float(t), "type": type, **payload}


def encode_event(event: dict[str, Any]) -> bytes:
    """One line of the log, newline included. JSON escapes newlines inside
    strings, so an event can never span two lines."""
    return (json.dumps(event, separators=(",", ":"), default=_json_default) + "\n").encode("utf-8")


def decode_line(line: bytes | str) -> dict[str, Any] | None:
    """The event on one line, or None when the line is not a JSON object with an integer seq."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or not _is_seq(obj.get("seq")):
        return None
    return obj


def _is_seq(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _json_default(obj: Any) -> Any:
    # numpy / torch scalars land in metrics; anything else is a bug in the emitter.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"event field of type {type(obj).__name__} is not JSON serialisable")


class EventLogWriter:
    """Appends events to one run's log. One writer per log at a time.

    Opening an existing log drops a partial last line (left by a crash
    mid-write) and continues the sequence after the last whole event.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._lock = threading.RLock()
        # Never through a symlink, never onto a FIFO, a directory or a device (RunStoreError).
        fd = open_regular(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | _O_BINARY, 0o644)
        try:
            size = _truncate_partial_tail(fd)
            self.next_seq = _last_seq(fd, size) + 1
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Write one event. An event without `seq` gets the next one; an event
        with a seq other than `next_seq` is refused (the log's seqs must run
        0, 1, 2, ... without gaps or repeats). Returns the event as written."""
        with self._lock:
            if self._fd is None:
                raise ValueError(f"event log {self.path} is closed")
            event = dict(event)
            event.setdefault("seq", self.next_seq)
            seq = event["seq"]
            if seq != self.next_seq or not _is_seq(seq):
                raise ValueError(
                    f"event seq {seq!r} is out of order: {self.path.name} expects seq {self.next_seq} next"
                )
            if not isinstance(event.get("type"), str):
                raise ValueError("an event needs a 'type' string")
            t = event.get("t")
            if isinstance(t, bool) or not isinstance(t, (int, float)):
                t = time.time()
            # The envelope always comes first, in this order: readers that
            # summarise long logs recognise a line's type without parsing it.
            event = {"v": event.get("v", EVENT_VERSION), "seq": seq, "t": t, "type": event["type"], **event}
            data = encode_event(event)
            try:
                _write_all(self._fd, data)
            except OSError:
                # A full disk may take half a line: cut it off, so the next append
                # (the failure's own event, once space is freed) starts a whole line.
                try:
                    _truncate_partial_tail(self._fd)
                except OSError:
                    pass
                raise
            if event["type"] in DURABLE_TYPES:
                os.fsync(self._fd)
            self.next_seq += 1
            return event

    def emit(self, type: str, /, **payload: Any) -> dict[str, Any]:
        """make_event with the next seq, then append; returns the event."""
        with self._lock:
            return self.append(make_event(self.next_seq, type, **payload))

    def flush(self) -> None:
        # Writes go straight to the OS (no user-space buffer); this makes them durable.
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "EventLogWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _pread_fallback(fd: int, n: int, offset: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, n)


# Windows has no os.pread; nothing here shares an fd between threads, so seek+read is equivalent.
_pread = getattr(os, "pread", _pread_fallback)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _truncate_partial_tail(fd: int) -> int:
    """Cut the file back to its last newline; return the new size."""
    size = os.fstat(fd).st_size
    if size == 0 or _pread(fd, 1, size - 1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(0, end - _READ_CHUNK)
        chunk = _pread(fd, end - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            keep = start + i + 1
            break
        end = start
    else:
        keep = 0
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return keep


def _last_seq(fd: int, size: int) -> int:
    """Seq of the last whole, valid event (scanning back from the end); -1 if none."""
    end = size
    carry = b""
    while end > 0:
        start = max(0, end - _READ_CHUNK)
        block = _pread(fd, end - start, start) + carry
        lines = block.split(b"\n")
        # The first piece may be the tail of a line that starts in an earlier block.
        carry = lines.pop(0) if start > 0 else b""
        for line in reversed(lines):
            if line.strip():
                event = decode_line(line)
                if event is not None:
                    return int(event["seq"])
        end = start
    return -1


def parse_lines(
    data: bytes, after_seq: int, types: Collection[str] | None = None, condense: Collection[str] = ()
) -> tuple[list[dict[str, Any]], int, int]:
    """Parse whole lines of `data` (the caller strips any partial tail).

    Returns (events with seq > after_seq in increasing order, bad line count,
    new after_seq). A seq at or below the last one kept is a duplicate (or
    out of order) and is dropped without counting as bad. With `types`, only
    events of those types are returned (lines that cannot be one are not parsed).
    With `condense`, of each of those types only the last event of `data` is
    kept (a viewer catching up needs the latest progress, not every one).
    """
    events: list[dict[str, Any]] = []
    bad = 0
    # Any line holding an event of a wanted type contains the quoted type name.
    markers = None if types is None else [json.dumps(t).encode() for t in types]
    lines = data.split(b"\n")
    if condense:
        lines = _condensed(lines, condense)
    for line in lines:
        if not line.strip():
            continue
        if markers is not None and not any(m in line for m in markers):
            continue
        event = decode_line(line)
        if event is None:
            bad += 1
            continue
        if event["seq"] <= after_seq or (types is not None and event.get("type") not in types):
            continue
        after_seq = event["seq"]
        events.append(event)
    return events, bad, after_seq


def _condensed(lines: list[bytes], types: Collection[str]) -> list[bytes]:
    # Writers put the envelope first ({"v":1,"seq":N,"t":T,"type":...}), so a
    # line's type shows in its first bytes and superseded lines are never parsed.
    # Most of a long log is such lines: the filtering below stays in C-level loops.
    markers = [f'"type":{json.dumps(t)}'.encode() for t in types]
    last: dict[bytes, int] = {}
    for i in range(len(lines) - 1, -1, -1):  # the latest of each type is near the end
        head = lines[i][:96]
        for m in markers:
            if m not in last and m in head:
                last[m] = i
        if len(last) == len(markers):
            break
    if not last:
        return lines
    cut = min(last.values())  # from here on, every condensed line is the last of its type or kept
    if len(markers) == 1:
        m = markers[0]
        head_part = [line for line in lines[:cut] if m not in line[:96]]
    else:
        head_part = [line for line in lines[:cut] if not any(mk in line[:96] for mk in markers)]
    keep = set(last.values())
    tail = [line for k, line in enumerate(lines[cut:], cut) if k in keep or not any(mk in line[:96] for mk in markers)]
    return head_part + tail


def read_events(
    path: str | os.PathLike[str], from_seq: int = 0, types: Collection[str] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """All whole events with seq >= from_seq (of `types`, if given), and the
    number of unreadable lines.

    A missing file reads as no events. A trailing partial line (a write in
    progress, or a crash mid-write) is ignored and not counted as bad.
    """
    try:
        fd = open_regular(path)
    except (FileNotFoundError, NotADirectoryError, RunStoreError):
        return [], 0  # not a log (a FIFO, a symlink, a directory): listings report it as a problem
    try:
        with os.fdopen(fd, "rb") as fh:
            data = fh.read()
    except OSError:
        return [], 0
    end = data.rfind(b"\n")
    events, bad, _ = parse_lines(data[: end + 1], from_seq - 1, types)
    return events, bad


class EventFollower:
    """A non-blocking tail of an event log: `poll()` returns events that
    became whole since the last call.

    Survives the file not existing yet, being replaced or truncated (it
    re-reads from the start and skips seqs already delivered), a partial last
    line completed later, and the run directory vanishing. It never raises
    for what it reads; `problem` describes the last poll's trouble, if any.
    """

    def __init__(self, path: str | os.PathLike[str], from_seq: int = 0):
        self.path = Path(path)
        self.last_seq = from_seq - 1  # highest seq delivered (or skipped by from_seq)
        self.bad_lines = 0
        self.problem: str | None = None
        self._identity: tuple[int, int] | None = None
        self._offset = 0  # end of the last whole line consumed
        self._seen = False
        self.behind = False  # the last poll left whole bytes unread (a bounded slice of a long log)

    def poll(self, max_bytes: int | None = None, condense: Collection[str] = ()) -> list[dict[str, Any]]:
        """New whole events since the last call. `max_bytes` bounds one call's
        reading (the rest comes on the next calls) so a UI timer stays quick
        when attaching to a long log; `condense` as in `parse_lines`."""
        self.problem = None
        self.behind = False
        try:
            fd = open_regular(self.path)
        except RunStoreError as exc:
            self.problem = str(exc)
            return []
        except FileNotFoundError:
            if self._seen or not self.path.parent.is_dir():
                self.problem = self._missing_problem()
            # Whatever appears here next is a new file: read it from the start.
            self._identity = None
            self._offset = 0
            return []
        except OSError as exc:
            self.problem = f"cannot open {self.path}: {exc.strerror or exc}"
            return []
        try:
            return self._read(fd, max_bytes, condense)
        except OSError as exc:
            self.problem = f"cannot read {self.path}: {exc.strerror or exc}"
            return []
        finally:
            os.close(fd)

    def _missing_problem(self) -> str:
        if not self.path.parent.exists():
            return f"run directory {self.path.parent} no longer exists"
        return f"{self.path.name} was removed"

    def _read(self, fd: int, max_bytes: int | None, condense: Collection[str]) -> list[dict[str, Any]]:
        st = os.fstat(fd)
        self._seen = True
        identity = (st.st_dev, st.st_ino)
        if identity != self._identity or st.st_size < self._offset or not self._still_aligned(fd):
            # A new file (first poll, replaced or truncated): read it from the
            # start; seqs already delivered are skipped below.
            self._identity = identity
            self._offset = 0
        if st.st_size <= self._offset:
            return []
        want = remaining = st.st_size - self._offset
        if max_bytes is not None:
            want = min(want, max(1, max_bytes))
        data = _pread(fd, want, self._offset)
        end = data.rfind(b"\n")
        while end < 0 and len(data) == want and self._offset + len(data) < st.st_size:
            # One line longer than max_bytes: read on until it ends.
            more = _pread(fd, _READ_CHUNK, self._offset + len(data))
            if not more:
                break
            data += more
            end = data.rfind(b"\n")
        if end < 0:
            return []
        events, bad, self.last_seq = parse_lines(data[: end + 1], self.last_seq, condense=condense)
        self._offset += end + 1
        # Only a bounded slice counts: a partial last line left by a crashed writer is not "more".
        self.behind = want < remaining and self._offset < st.st_size
        if bad:
            self.bad_lines += bad
            self.problem = f"skipped {bad} unreadable line(s) in {self.path.name}"
        return events

    def _still_aligned(self, fd: int) -> bool:
        # A file truncated and regrown past our offset keeps its inode and
        # size; the byte before the offset must still end a line.
        if self._offset == 0:
            return True
        return _pread(fd, 1, self._offset - 1) == b"\n"
