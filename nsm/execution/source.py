"""One event source for every viewer: a run's log from any seq, history in bounded slices, then live.

Whatever the backend, a run's events land in its `events.jsonl` (the
in-process engine writes it before any sink hears of an event; a Modal run's
mirror writes the local copy), so viewers — the dashboard, `attach`, the CLI's
progress, a sweep's runner — all read that file through an `EventSource`.

A UI calls `read()` from a timer: each call reads at most `slice_bytes`, and
`behind` says more is waiting (call again soon, after letting input through).
A viewer may `condense` the history: superseded progress events are skipped
without being parsed, which is most of a long run's log. A copier (the Modal
mirror) must not condense.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Collection

from nsm.runs import events as ev
from nsm.runs.events import EventFollower

SLICE_BYTES = 1 << 20  # ~4,000 events: one slice folds in tens of ms
VIEWER_CONDENSE = (ev.PROGRESS,)


class EventSource:
    def __init__(
        self,
        path: str | os.PathLike[str],
        from_seq: int = 0,
        *,
        slice_bytes: int | None = SLICE_BYTES,
        condense: Collection[str] = (),
    ):
        self.path = Path(path)
        self._follower = EventFollower(self.path, from_seq)
        self.slice_bytes = slice_bytes
        self.condense = tuple(condense)
        self._wake = threading.Event()
        self._first = True

    @classmethod
    def for_viewer(cls, path: str | os.PathLike[str], from_seq: int = 0) -> "EventSource":
        return cls(path, from_seq, condense=VIEWER_CONDENSE)

    # -- reading
    def read(self) -> list[dict[str, Any]]:
        """The next slice of whole events (possibly none)."""
        self._wake.clear()
        # While catching up, progress events are superseded within the slice; live, every one counts.
        condense = self.condense if self._follower.behind or self._first else ()
        self._first = False
        return self._follower.poll(max_bytes=self.slice_bytes, condense=condense)

    @property
    def behind(self) -> bool:
        """The last read was a bounded slice: more history is waiting."""
        return self._follower.behind

    @property
    def last_seq(self) -> int:
        return self._follower.last_seq

    @property
    def problem(self) -> str | None:
        return self._follower.problem

    @property
    def bad_lines(self) -> int:
        return self._follower.bad_lines

    # -- waking
    def poke(self) -> None:
        """New events were written (a thread of this process says so): wake `wait`."""
        self._wake.set()

    def wait(self, timeout: float) -> bool:
        """Sleep until poked or `timeout`; another process writes the log, so time is all
        there is to wait on for it. True if poked."""
        return self._wake.wait(timeout)


def follow(
    source: EventSource,
    on_event: Callable[[dict[str, Any]], None],
    *,
    alive: Callable[[], bool] | None = None,
    stop: threading.Event | None = None,
    timeout: float | None = None,
    poll_s: float = 0.2,
) -> dict[str, Any] | None:
    """Feed every event to `on_event` until the run's latest attempt ends (its terminal
    event is returned), `stop` is set, `timeout` passes, or `alive()` says the writer is
    gone (None returned). An ending that a later `resumed` supersedes is history, not the end."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last_alive_check = 0.0
    ended: dict[str, Any] | None = None

    def feed() -> None:
        nonlocal ended
        for event in source.read():
            on_event(event)
            kind = event.get("type")
            if kind in ev.TERMINAL_TYPES:
                ended = event
            elif kind in ev.START_TYPES:
                ended = None

    while True:
        feed()
        if source.behind:
            continue
        if ended is not None:
            return ended
        if stop is not None and stop.is_set():
            return None
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return None
        if alive is not None and now - last_alive_check >= 2.0:
            last_alive_check = now
            if not alive():
                feed()  # the writer's last words may have landed just now
                return ended
        wait = poll_s if deadline is None else max(0.0, min(poll_s, deadline - now))
        if stop is not None:
            if stop.wait(wait):
                return None
        else:
            source.wait(wait)
