"""The TUI's log file: one per session, so a warning or a crash is still there after the screen is gone.

While the app runs, Textual owns the terminal: stderr is swallowed, so warnings and
log records would vanish. Each session writes them to
`<log dir>/nsm-tui-<YYYYmmdd-HHMMSS>-<pid>.log` (F5 shows the path): INFO and up
from nsm.*, tui.*, remote.*, WARNING and up from everything else (textual, torch),
Python warnings, and uncaught exceptions of threads and of the app. The newest
KEEP_FILES logs are kept. `NSM_LOG_DIR` overrides the folder (the tests set it);
the default is platformdirs' user log dir (~/.local/state/nsm-tui/log on Linux,
~/Library/Logs/nsm-tui on macOS).

Logging settings are process-global and tests run many apps in one process: the
first open session sets them, the last one to close puts them back.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from tui import package_version

LOG_DIR_ENV = "NSM_LOG_DIR"
KEEP_FILES = 20
OWN_LOGGERS = ("nsm", "tui", "remote")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
_NAME = re.compile(r"nsm-tui-\d{8}-\d{6}-\d+(-\d+)?\.log")

log = logging.getLogger(__name__)


def log_dir() -> Path:
    env = os.environ.get(LOG_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_log_dir("nsm-tui", appauthor=False))


@dataclass
class SessionLog:
    """The open log of one app session; `path` is None when it could not be opened (`problem` says why)."""

    path: Path | None
    problem: str | None = None
    handler: logging.Handler | None = field(default=None, repr=False)

    def close(self) -> None:
        if self.handler is None:
            return
        log.info("session ended")
        handler, self.handler = self.handler, None
        _release(handler)


def open_session_log(folder: Path | None = None, now: float | None = None) -> SessionLog:
    """Start this session's log file and prune the oldest; never raises."""
    folder = folder if folder is not None else log_dir()
    now = time.time() if now is None else now
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = _new_path(folder, now)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        return SessionLog(None, f"not kept: {exc.strerror or exc} ({folder})")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.INFO)
    handler.addFilter(_wanted)
    _acquire(handler)
    prune(folder, keep=KEEP_FILES, current=path)
    log.info("nsm-tui %s started: pid %d, python %s", package_version(), os.getpid(), sys.version.split()[0])
    return SessionLog(path, handler=handler)


def prune(folder: Path, keep: int = KEEP_FILES, current: Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` session logs (only files named like ours); returns the deleted."""
    try:
        entries = [e for e in os.scandir(folder) if _NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    dated: list[tuple[float, str, Path]] = []
    for entry in entries:
        try:
            dated.append((entry.stat(follow_symlinks=False).st_mtime, entry.name, Path(entry.path)))
        except OSError:
            continue
    dated.sort(reverse=True)
    removed = []
    for _, _, path in dated[keep:]:
        if path == current:
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass  # another session may have removed it first
    return removed


def _new_path(folder: Path, now: float) -> Path:
    stem = f"nsm-tui-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{os.getpid()}"
    path = folder / f"{stem}.log"
    n = 2
    while path.exists():  # a second app in the same process and second (tests)
        path = folder / f"{stem}-{n}.log"
        n += 1
    return path


def _wanted(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.split(".")[0] in OWN_LOGGERS


# -- process-wide settings, shared by the open sessions -----------------------------------

_lock = threading.Lock()
_handlers: list[logging.Handler] = []
_saved: dict[str, Any] = {}


def _acquire(handler: logging.Handler) -> None:
    with _lock:
        if not _handlers:
            _saved["levels"] = {name: logging.getLogger(name).level for name in OWN_LOGGERS}
            for name in OWN_LOGGERS:
                logger = logging.getLogger(name)
                if logger.level == logging.NOTSET or logger.level > logging.INFO:
                    logger.setLevel(logging.INFO)
            # Warnings become records of the `py.warnings` logger instead of stderr lines.
            logging.captureWarnings(True)
            _saved["excepthook"] = threading.excepthook
            threading.excepthook = _thread_excepthook
        _handlers.append(handler)
        logging.getLogger().addHandler(handler)


def _release(handler: logging.Handler) -> None:
    with _lock:
        logging.getLogger().removeHandler(handler)
        if handler in _handlers:
            _handlers.remove(handler)
        if not _handlers and _saved:
            for name, level in _saved.pop("levels", {}).items():
                logging.getLogger(name).setLevel(level)
            logging.captureWarnings(False)
            if threading.excepthook is _thread_excepthook:
                threading.excepthook = _saved.pop("excepthook", threading.__excepthook__)
            _saved.clear()
    handler.close()


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is not SystemExit:
        name = args.thread.name if args.thread is not None else "a thread"
        log.error("uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))  # type: ignore[arg-type]
    previous = _saved.get("excepthook") or threading.__excepthook__
    previous(args)


def log_app_exception(error: BaseException) -> None:
    """An exception Textual did not expect (a handler, a worker with exit_on_error): into the log."""
    log.error("unhandled exception in the app", exc_info=(type(error), error, error.__traceback__))
