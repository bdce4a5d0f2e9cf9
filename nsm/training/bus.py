"""The engine's outbox: every event goes to the run's log and then to each sink.

The log writer numbers events (it knows where a resumed log left off); sinks —
the TUI's callback, a Modal queue, a test's list — receive exactly the objects
that were written, so every transport carries the same events.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable, Iterable

from nsm.runs.events import EventLogWriter, encode_event, make_event

Sink = Callable[[dict[str, Any]], None]
log = logging.getLogger(__name__)


class EventBus:
    def __init__(self, writer: EventLogWriter | None, sinks: Iterable[Sink] = (), start_seq: int = 0):
        self.writer = writer
        self.sinks: list[Sink] = list(sinks)
        self._seq = start_seq
        self._lock = threading.Lock()
        self.sink_errors = 0
        # Events a sink asked for while the bus was handing it one (`defer`): emitted right after.
        self._deferred: list[tuple[str, dict[str, Any]]] = []

    @property
    def next_seq(self) -> int:
        return self.writer.next_seq if self.writer is not None else self._seq

    def add_sink(self, sink: Sink) -> None:
        with self._lock:
            self.sinks.append(sink)

    def emit(self, type: str, /, **payload: Any) -> dict[str, Any]:
        """Write the event to the log (an OSError propagates: the run cannot go on
        without its record), then hand it to every sink."""
        payload = _as_json(payload)
        with self._lock:
            if self.writer is not None:
                event = self.writer.emit(type, **payload)
            else:
                event = make_event(self._seq, type, **payload)
                self._seq += 1
            self._fan_out(event)
            self._emit_deferred()
            return event

    def defer(self, type: str, /, **payload: Any) -> None:
        """Emit an event once the event being handed out has reached every sink: how a
        sink speaks (a `log` warning that it turned itself off) without re-entering the bus."""
        self._deferred.append((type, _as_json(payload)))

    def _emit_deferred(self) -> None:
        while self._deferred:
            type, payload = self._deferred.pop(0)
            try:
                event = self.writer.emit(type, **payload) if self.writer is not None else None
            except OSError as exc:
                log.error("could not write %s event to the log: %s", type, exc)
                event = None
            if event is None:
                event = make_event(self.next_seq if self.writer is not None else self._seq, type, **payload)
                if self.writer is None:
                    self._seq += 1
            self._fan_out(event)

    def emit_best_effort(self, type: str, /, **payload: Any) -> dict[str, Any]:
        """For the last words of a failing run: if the log cannot be written (a
        full disk), the sinks still hear about it."""
        try:
            return self.emit(type, **payload)
        except OSError as exc:
            log.error("could not write %s event to the log: %s", type, exc)
            with self._lock:
                event = make_event(self.next_seq, type, **payload)
                self._fan_out(event)
                return event

    def _fan_out(self, event: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                sink(event)
            except Exception:  # a broken viewer must never stop training
                self.sink_errors += 1
                if self.sink_errors <= 3:
                    log.exception("event sink %r failed", sink)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _as_json(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as a reader of the log will see it (tuples become lists, numpy
    scalars numbers), so in-process sinks get the very objects a file reader gets."""
    return json.loads(encode_event({"payload": payload}))["payload"]
