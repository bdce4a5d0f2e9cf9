"""The one way a background process starts: trainer, sweep runner, Modal mirror.

Each gets its own session (closing the terminal or losing the ssh link does not
reach it), stdin from /dev/null, its output appended to a log file in its
folder, and an interpreter that imports this very package — never a module
that a run or working directory happens to hold (`-P`: no unsafe path first
on sys.path; the package root goes on PYTHONPATH instead).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Mapping, Sequence

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def python_command(module: str, *args: str) -> list[str]:
    """`python -P -m module args…` with this interpreter."""
    return [sys.executable, "-P", "-m", module, *args]


def spawn_detached(
    command: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    log_path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start `command` in a new session, output appended to `log_path`; returns at once.

    The child is reaped by a daemon thread while this process lives, so it never
    lingers as a zombie; after this process exits, init adopts it.
    """
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONSAFEPATH="1")
    full_env.update(env or {})
    existing = full_env.get("PYTHONPATH")
    full_env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + existing if existing else "")
    # 0o644 less the umask, like every file of the store (nsm.atomic.FILE_MODE).
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "ab") as log:
        proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # setsid: no controlling terminal, its own process group
            close_fds=True,
            pass_fds=tuple(pass_fds),
            env=full_env,
            cwd=str(cwd),
        )
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc
