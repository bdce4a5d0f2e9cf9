"""Warnings and WARNING+ log records raised while a run trains become `log` events.

What torch, PyG or our own code warns about mid-run belongs in the run's record
(events.jsonl), so every viewer sees it: the dashboard's log pane, `attach
--headless`, a detached run's later reader. `warnings.showwarning` and the root
logger's handlers are process-global, and in the TUI other threads (the UI, a
second run) warn and log too, so a capture takes only what its own training
thread raises.

Rules that keep it harmless:
- One hook pair is installed while any capture is active and removed with the
  last one, so overlapping runs never restore each other's globals out of order.
- Events are handed to the bus by a pump thread, never from inside the hook: a
  warning raised inside a bus sink (while the bus holds its lock) would otherwise
  deadlock, and the pump's own warnings are not captured (no recursion). The
  training thread waits for the pump a moment (ORDER_WAIT_S), so a line lands
  before the events that follow it, except when the warning came from inside the bus.
- The same line is shown 3 times, then counted (at 10, 100, 1000 ... and once
  more at the end with the total); at most MAX_LINES lines per run.
- The handler sits on the root logger and on every logger that does not propagate
  (torch's), as they are when the first capture starts.
- Captured records still reach the process's usual destinations (the TUI's
  session log, a detached run's train.log, stderr).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator

# (level, message, source) -> None; raises when the event cannot be written.
Emit = Callable[[str, str, str], None]

SHOWN_REPEATS = 3
MAX_LINES = 200
MAX_KEYS = 10_000
MAX_CHARS = 500
FLUSH_TIMEOUT_S = 5.0
ORDER_WAIT_S = 0.05
WARNINGS_SOURCE = "py.warnings"  # the logger name `logging.captureWarnings` uses
# Errors the engine logs about the run's own failure or its event log: the `failed`
# event already says so, and writing them into a failing log goes nowhere.
_ENGINE_LOGGERS = ("nsm.training.trainer", "nsm.training.bus")


class RunLogCapture:
    """What one training thread warned about; lines go out through `emit`, in order."""

    def __init__(self, emit: Emit):
        self._emit = emit
        self.thread = threading.get_ident()
        self._seen: dict[tuple[str, str, str], int] = {}
        self._reported: dict[tuple[str, str, str], int] = {}
        self.lines = 0  # handed to the pump
        self.hidden = 0  # over MAX_LINES or MAX_KEYS
        self.dropped = 0  # the emit failed
        self._queue: queue.SimpleQueue[tuple[str, str, str] | None] = queue.SimpleQueue()
        self._pump: threading.Thread | None = None
        self._queued = 0
        self._handled = 0
        self._handled_cv = threading.Condition()

    def add(self, level: str, message: str, source: str) -> bool:
        """Count one record; True if it is shown (not a repeat being counted)."""
        key = (level, source, message)
        n = self._seen.get(key, 0) + 1
        if n == 1 and len(self._seen) >= MAX_KEYS:
            self.hidden += 1
            return False
        self._seen[key] = n
        if n <= SHOWN_REPEATS:
            self._send(key, n, message)
            return True
        if _power_of_ten(n):
            self._send(key, n, f"{message} (seen {n} times so far)")
        return False

    def flush(self) -> None:
        """The final repeat counts, then wait (bounded) until the pump has emitted all."""
        for key, n in list(self._seen.items()):
            if n > SHOWN_REPEATS and self._reported.get(key, n) != n:
                self._send(key, n, f"{key[2]} (seen {n} times in all)", capped=False)
        self._seen.clear()
        self._reported.clear()
        if self.hidden:
            hidden, self.hidden = self.hidden, 0
            self._put(("warning", f"{hidden} more warnings of this run were not shown (over {MAX_LINES} lines)", __name__))
        pump, self._pump = self._pump, None
        if pump is not None:
            self._queue.put(None)
            pump.join(FLUSH_TIMEOUT_S)

    def _send(self, key: tuple[str, str, str], n: int, text: str, capped: bool = True) -> None:
        if capped and self.lines >= MAX_LINES:
            self.hidden += 1
            return
        self.lines += 1
        self._reported[key] = n
        level, source, _ = key
        self._put((level, _clip(text), source))

    def _put(self, line: tuple[str, str, str]) -> None:
        if self._pump is None:
            self._pump = threading.Thread(target=self._drain, name="run-log-capture", daemon=True)
            self._pump.start()
        self._queued += 1
        target = self._queued
        self._queue.put(line)
        with self._handled_cv:
            self._handled_cv.wait_for(lambda: self._handled >= target, ORDER_WAIT_S)

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._emit(*item)
            except Exception:  # a closed or full log: the line is lost, never logged again here
                self.dropped += 1
            with self._handled_cv:
                self._handled += 1
                self._handled_cv.notify_all()


@contextmanager
def capture_run_logs(emit: Emit) -> Iterator[RunLogCapture]:
    """Capture this thread's warnings and WARNING+ records until the block ends."""
    capture = RunLogCapture(emit)
    _register(capture)
    try:
        yield capture
    finally:
        try:
            capture.flush()
        finally:
            _unregister(capture)


# -- the process-wide hooks -------------------------------------------------------------

_lock = threading.Lock()
_by_thread: dict[int, list[RunLogCapture]] = {}
_local = threading.local()
_prev_showwarning: Callable[..., Any] | None = None
_handler: logging.Handler | None = None


def _current() -> RunLogCapture | None:
    stack = _by_thread.get(threading.get_ident())
    return stack[-1] if stack else None


def _register(capture: RunLogCapture) -> None:
    global _prev_showwarning, _handler
    with _lock:
        if not _by_thread:
            if warnings.showwarning is not _showwarning:
                _prev_showwarning = warnings.showwarning
                warnings.showwarning = _showwarning
            _handler = _CaptureHandler()
            for logger in _record_ends():
                logger.addHandler(_handler)
        _by_thread.setdefault(capture.thread, []).append(capture)


def _unregister(capture: RunLogCapture) -> None:
    global _handler
    with _lock:
        stack = _by_thread.get(capture.thread, [])
        if capture in stack:
            stack.remove(capture)
        if not stack:
            _by_thread.pop(capture.thread, None)
        if _by_thread:
            return
        # Someone replaced showwarning after us: theirs stays (and forwards to us, harmlessly).
        if warnings.showwarning is _showwarning and _prev_showwarning is not None:
            warnings.showwarning = _prev_showwarning
        if _handler is not None:
            for logger in _handled_by(_handler):
                logger.removeHandler(_handler)
            _handler = None


def _record_ends() -> list[logging.Logger]:
    """Where records stop: the root, and every logger that does not propagate (torch
    configures dozens: `torch`, `torch._dynamo`, ...; their records never reach the root)."""
    loggers = [logging.getLogger()]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and not logger.propagate:
            loggers.append(logger)
    return loggers


def _handled_by(handler: logging.Handler) -> list[logging.Logger]:
    loggers = [logging.getLogger(), *(lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger))]
    return [lg for lg in loggers if handler in lg.handlers]


def _showwarning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    capture = _current()
    if capture is not None and not capture.add("warning", _warning_text(message, category, filename, lineno), WARNINGS_SOURCE):
        return  # a repeat being counted: not shown anywhere
    previous = _prev_showwarning or warnings._showwarning_orig  # type: ignore[attr-defined]
    _local.forwarding = True
    try:
        previous(message, category, filename, lineno, file, line)
    finally:
        _local.forwarding = False


class _CaptureHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: it would be taken here while the bus's lock is held by a sink
        # that logs, and the state it guards belongs to one training thread anyway.
        if record.levelno >= self.level:
            self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            capture = _current()
            if capture is not None and _wanted(record):
                level = "error" if record.levelno >= logging.ERROR else "warning"
                capture.add(level, _record_text(record), record.name)
            self._last_resort(record)
        except Exception:
            pass  # logging about a failure to log would only come back here

    def _last_resort(self, record: logging.LogRecord) -> None:
        """Being on the root logger hides logging.lastResort (stderr for WARNING+ when no
        handler is configured, as in the CLI); do what it would have done."""
        last = logging.lastResort
        if last is None or record.levelno < last.level:
            return
        logger: logging.Logger | None = logging.getLogger(record.name) if record.name != "root" else logging.getLogger()
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return
            if not logger.propagate:
                break
            logger = logger.parent
        last.handle(record)


def _wanted(record: logging.LogRecord) -> bool:
    if record.name == WARNINGS_SOURCE and getattr(_local, "forwarding", False):
        return False  # the warning itself was counted by _showwarning
    if record.name == __name__:
        return False
    return not (record.name in _ENGINE_LOGGERS and record.levelno >= logging.ERROR)


def _warning_text(message: Any, category: type[Warning], filename: str, lineno: int) -> str:
    text = _first_line(str(message))
    return f"{getattr(category, '__name__', 'Warning')}: {text} ({os.path.basename(str(filename))}:{lineno})"


def _record_text(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception:  # a bad format string of somebody else's
        text = str(record.msg)
    text = _first_line(text)
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        text += f" ({type(exc).__name__}: {_first_line(str(exc))})"
    return f"{record.name}: {text}"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."


def _power_of_ten(n: int) -> bool:
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1
