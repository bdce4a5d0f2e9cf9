"""Tolerant, cached reads of run files.

Listing a store re-reads nothing that did not change: an event log's summary
is cached on the file's identity, size and mtime, and a grown log is read
only from where the last read ended.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsm.runs import events as ev
from nsm.runs.errors import RunStoreError
from nsm.runs.history import RunState, StateBuilder

def load_json_object(path: Path, what: str) -> dict[str, Any] | None:
    """The JSON object in `path`, None when the file is absent; RunStoreError
    (naming `what` and the file) when it cannot be read or is not an object.
    A symlink, a FIFO, a directory or a device in its place is refused, never waited on."""
    try:
        fd = ev.open_regular(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except RunStoreError as exc:
        raise RunStoreError(f"cannot read {what}: {exc}") from None
    except OSError as exc:
        raise RunStoreError(f"cannot read {what} {path}: {exc}") from None
    try:
        with os.fdopen(fd, "rb") as fh:
            text = fh.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunStoreError(f"cannot read {what} {path}: {exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunStoreError(
            f"{what} {path} is not valid JSON ({exc.msg} at line {exc.lineno}); fix or delete the file"
        ) from None
    except (ValueError, RecursionError) as exc:
        # int() refuses a number of thousands of digits inside json.loads; deep nesting overflows the parser.
        raise RunStoreError(
            f"{what} {path} cannot be parsed ({str(exc)[:120] or type(exc).__name__}); fix or delete the file"
        ) from None
    if not isinstance(obj, dict):
        raise RunStoreError(f"{what} {path} should hold a JSON object, found {type(obj).__name__}")
    return obj


# Our writer starts every line with this envelope, so in a log of our own
# making the text `"type":"<t>"` right after it gives a line's type without
# parsing the JSON. A listing then looks only at the lines a summary needs,
# found by a fast scan, and skips the progress, gpu and checkpoint lines that
# make up most of a long log. Any other log is parsed line by line.
_PREFIX = b'{"v":%d,"seq":' % ev.EVENT_VERSION
_ENVELOPE = re.compile(rb'\{"v":\d+,"seq":(\d{1,18}),"t":(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?),"type":"([a-z_]+)"')
_SUMMARIZED = re.compile(rb'"type":"(run_started|resumed|epoch_end|eval|log|checkpoint|finished|interrupted|failed)"')
_EPOCH = re.compile(rb'"epoch":(\d{1,12})[,}]')  # bounded: int() of thousands of digits raises


@dataclass
class _LogState:
    identity: tuple[int, int]
    size: int
    mtime_ns: int
    offset: int  # end of the last whole line folded in
    last_seq: int
    bad: int
    builder: StateBuilder
    checkpoints: list[dict[str, Any]]  # the `checkpoint` events, whole (they describe files)


class RunFileCache:
    """RunState per event log and parsed small JSON files, refreshed only
    when the file changed: unchanged files cost one stat, grown logs are
    read from where the last read ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, _LogState] = {}
        # path -> (stamp, parsed object, error message)
        self._json: dict[str, tuple[tuple[int, int, int], dict[str, Any] | None, str | None]] = {}

    def state(self, path: Path) -> tuple[RunState, int, int]:
        """(state, unreadable line count, log size); a missing log is an empty state."""
        with self._lock:
            entry = self._refresh(path)
            if entry is None:
                return RunState(), 0, 0
            return entry.builder.state(), entry.bad, entry.size

    def checkpoint_events(self, path: Path) -> list[dict[str, Any]]:
        """The log's `checkpoint` events, gathered by the same incremental read as `state`
        (the runs screen and the resume rules ask often; a long log is 20 MB)."""
        with self._lock:
            entry = self._refresh(path)
            return list(entry.checkpoints) if entry is not None else []

    def _refresh(self, path: Path) -> _LogState | None:
        """The log's entry, brought up to date (call with the lock held; entries are
        folded in place). None when the log is absent."""
        key = str(path)
        try:
            fd = ev.open_regular(path)
        except (FileNotFoundError, NotADirectoryError):
            self._logs.pop(key, None)
            return None
        try:
            st = os.fstat(fd)
            identity = (st.st_dev, st.st_ino)
            entry = self._logs.get(key)
            if entry and (entry.identity, entry.size, entry.mtime_ns) == (identity, st.st_size, st.st_mtime_ns):
                return entry
            if not (entry and entry.identity == identity and _appended_to(fd, st.st_size, entry.offset)):
                entry = _LogState(identity, 0, 0, 0, -1, 0, StateBuilder(), [])
            data = _read_from(fd, entry.offset, st.st_size)
        finally:
            os.close(fd)
        end = data.rfind(b"\n") + 1
        entry.last_seq, bad = _fold(data[:end], entry.builder, entry.last_seq, entry.checkpoints)
        entry.offset += end
        entry.bad += bad
        entry.size, entry.mtime_ns = st.st_size, st.st_mtime_ns
        self._logs[key] = entry
        return entry

    def json_object(self, path: Path, what: str) -> dict[str, Any] | None:
        """Like load_json_object, re-parsing only when the file changed."""
        key = str(path)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise RunStoreError(f"cannot read {what} {path}: {exc}") from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._json.get(key)
        if hit is None or hit[0] != stamp:
            try:
                hit = (stamp, load_json_object(path, what), None)
            except RunStoreError as exc:
                hit = (stamp, None, str(exc))
            with self._lock:
                self._json[key] = hit
        if hit[2] is not None:
            raise RunStoreError(hit[2])
        return hit[1]

    def forget_except(self, root: Path, keep: set[str]) -> None:
        """Drop entries of runs under `root` that a listing no longer found."""
        prefix = str(root) + os.sep
        with self._lock:
            for table in (self._logs, self._json):
                for key in [k for k in table if k.startswith(prefix) and os.path.dirname(k) not in keep]:
                    del table[key]


def _appended_to(fd: int, size: int, offset: int) -> bool:
    """Whether the file still holds what we read up to `offset`, as far as
    cheaply checked: it was not cut short, and the byte before the offset
    still ends a line (a truncate-and-regrow usually moves line ends)."""
    if size < offset:
        return False
    if offset == 0:
        return True
    os.lseek(fd, offset - 1, os.SEEK_SET)
    return os.read(fd, 1) == b"\n"


def _read_from(fd: int, offset: int, size: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    chunks = []
    remaining = size - offset
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _fold(data: bytes, builder: StateBuilder, last_seq: int, checkpoints: list[dict[str, Any]]) -> tuple[int, int]:
    """Feed the summary-relevant events among the whole lines `data` to
    `builder` (and the checkpoint events to `checkpoints`); returns (new last
    seq, unreadable line count)."""
    if data.count(b"\n" + _PREFIX) + data.startswith(_PREFIX) != data.count(b"\n"):
        return _fold_every_line(data, builder, last_seq, checkpoints)
    bad = 0
    for hit in _SUMMARIZED.finditer(data):
        start = data.rfind(b"\n", 0, hit.start()) + 1
        envelope = _ENVELOPE.match(data, start)
        if envelope is not None and envelope.end() != hit.end():
            continue  # a "type" key inside some payload
        line = data[start : data.find(b"\n", hit.end())]
        event = None
        if envelope is None:
            # An odd envelope (a "t" that is not a plain number, say): parse
            # it, and keep it only if the hit was its own type.
            event = ev.decode_line(line)
            if event is not None and event.get("type") != hit.group(1).decode():
                continue
        elif hit.group(1) == b"epoch_end":
            epoch = _EPOCH.search(line)
            if epoch is not None:
                seq, t = int(envelope.group(1)), float(envelope.group(2))
                event = {"seq": seq, "t": t, "type": "epoch_end", "epoch": int(epoch.group(1))}
        elif hit.group(1) == b"log" and b'"level":"error"' not in line:
            continue
        event = event or ev.decode_line(line)
        if event is None:
            bad += 1
        elif event["seq"] > last_seq:
            last_seq = event["seq"]
            if event.get("type") == ev.CHECKPOINT:
                checkpoints.append(event)
            else:
                builder.feed(event)
    # The last line tells when the log last moved, whatever its type.
    tail = _ENVELOPE.match(data, data.rfind(b"\n", 0, len(data) - 1) + 1)
    if tail is not None and int(tail.group(1)) > last_seq:
        last_seq = int(tail.group(1))
        builder.feed({"seq": last_seq, "t": float(tail.group(2)), "type": tail.group(3).decode()})
    return last_seq, bad


def _fold_every_line(data: bytes, builder: StateBuilder, last_seq: int, checkpoints: list[dict[str, Any]]) -> tuple[int, int]:
    events, bad, last_seq = ev.parse_lines(data, last_seq)
    builder.feed_all(events)
    checkpoints.extend(e for e in events if e.get("type") == ev.CHECKPOINT)
    return last_seq, bad


CACHE = RunFileCache()
