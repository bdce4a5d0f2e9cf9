"""Is there a terminal for the dashboard, and is it still there?

`require_terminal` runs before the Textual app starts: without a TTY (`ssh box
nsm-tui` without `-t`, a pipe, cron) Textual would draw escape codes into a pipe
and wait on input that never comes, so the CLI says so in one line and exits 2.

`watch_terminal` covers a terminal that vanishes without SIGHUP (the pty's
master closed while this process is not its session's controlling process, or
the fds were revoked): reads of stdin then return EOF at once and Textual's
input thread spins on them forever. A hung-up tty fails `isatty` (its ioctls
return EIO), and a closed fd fails it with EBADF, so polling `isatty` on the fds
that were terminals at start-up is enough to notice.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable, Iterable, TextIO

NO_TERMINAL = (
    "the dashboard needs a terminal (stdin and stdout are not a TTY); "
    "over ssh use 'ssh -t HOST nsm-tui', "
    "or the headless commands: nsm-tui train|runs|attach RUN --headless|... (see nsm-tui --help)"
)

WATCH_INTERVAL_S = 2.0  # how often the watchdog looks; a vanished terminal costs at most this long of spinning


def require_terminal(stdin: TextIO | None = None, stdout: TextIO | None = None) -> str | None:
    """The one-line reason the dashboard cannot start here, or None when it can."""
    for stream in (stdin or sys.stdin, stdout or sys.stdout):
        try:
            if stream is None or not stream.isatty():
                return NO_TERMINAL
        except (OSError, ValueError):  # closed or detached stream
            return NO_TERMINAL
    return None


def terminal_fds(candidates: Iterable[int] = (0, 1, 2)) -> tuple[int, ...]:
    """The fds that are a terminal now: the ones whose loss means the terminal is gone."""
    return tuple(fd for fd in candidates if os.isatty(fd))


def terminal_gone(fds: Iterable[int]) -> bool:
    """True when any fd that was a terminal no longer is (hung up: EIO; closed: EBADF)."""
    return any(not os.isatty(fd) for fd in fds)


def watch_terminal(
    on_gone: Callable[[], None], fds: Iterable[int] | None = None, interval: float = WATCH_INTERVAL_S
) -> threading.Event:
    """Poll the terminal from a daemon thread; call `on_gone` once (from that thread) when it vanishes.

    Returns an Event: set it to stop watching (the app has exited on its own).
    """
    watched = terminal_fds() if fds is None else tuple(fds)
    stop = threading.Event()
    if not watched:
        return stop

    def watch() -> None:
        while not stop.wait(interval):
            if terminal_gone(watched):
                on_gone()
                return

    threading.Thread(target=watch, name="terminal-watchdog", daemon=True).start()
    return stop
