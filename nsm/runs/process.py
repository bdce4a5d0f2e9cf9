"""Is a run's process alive? Answered without signalling or importing torch.

On the same host the pid decides; for a run on another host (a remote box
sharing the store, a Modal mirror) only the heartbeat file's age can tell.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

HEARTBEAT_FRESH_S = 60.0
# A process that started this long after process.json says the run started
# is not the run's process: its pid was reused (after a reboot, say).
_PID_REUSE_SLACK_S = 30.0


def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: object, started: float | None = None) -> bool:
    """True if `pid` names a live (not zombie) process on this host that may
    be the one started at `started` (unix time)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists but belongs to another user
    except OSError:
        return False
    proc = _proc_stat(pid)
    if proc is None:
        return True  # no /proc (macOS): the signal check is all we have
    state, start_time = proc
    if state in ("Z", "X", "x"):
        return False  # exited, waiting to be reaped
    if started is not None and start_time is not None and start_time > started + _PID_REUSE_SLACK_S:
        return False
    return True


def process_start_time(pid: int) -> float | None:
    """When process `pid` started (unix time), where /proc tells."""
    proc = _proc_stat(pid)
    return proc[1] if proc is not None else None


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        # os.kill just saw it; a /proc without it means no procfs here, or
        # the process exited in between. The latter is rare enough to call alive.
        return None
    except OSError:
        return None
    # The command name is in parentheses and may itself contain ')' or spaces.
    fields = text[text.rfind(")") + 2 :].split()
    if not fields:
        return None
    start_time = None
    boot = _boot_time()
    if boot is not None and len(fields) > 19:
        try:
            start_time = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
        except (ValueError, OSError):
            start_time = None
    return fields[0], start_time


@functools.lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None
