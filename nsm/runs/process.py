"""Is a run's process alive? Answered without signalling or importing torch.

On the same host the pid decides (psutil: Linux, macOS, Windows alike); for a
run on another host (a remote box sharing the store, a Modal mirror) only the
heartbeat file's age can tell.
"""

from __future__ import annotations

import socket

import psutil

HEARTBEAT_FRESH_S = 60.0
# A process that started this long after process.json says the run started
# is not the run's process: its pid was reused (after a reboot, say).
_PID_REUSE_SLACK_S = 30.0
_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: object, started: float | None = None) -> bool:
    """True if `pid` names a live (not zombie) process on this host that may
    be the one started at `started` (unix time)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
    except psutil.AccessDenied:
        return True  # it exists but belongs to another user
    except (psutil.Error, OverflowError, ValueError):
        return False  # no such process (a zombie included), or no pid at all
    try:
        if proc.status() in _GONE:
            return False  # exited, waiting to be reaped
    except psutil.AccessDenied:
        pass
    except psutil.Error:
        return False
    if started is not None:
        try:
            if proc.create_time() > started + _PID_REUSE_SLACK_S:
                return False
        except psutil.AccessDenied:
            pass  # cannot tell a reused pid: the benefit of the doubt
        except psutil.Error:
            return False
    return True


def process_start_time(pid: int) -> float | None:
    """When process `pid` started (unix time), where the OS tells."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OverflowError, ValueError):
        return None
