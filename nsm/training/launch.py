"""Start a run as a detached local process (its own session, output to train.log)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from nsm.runs import Run

LOG_FILE = "train.log"


def worker_command(run: Run, action: str, checkpoint: str | os.PathLike[str] | None = None, threads: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "nsm.training.worker", action, str(run.path)]
    if checkpoint is not None:
        cmd += ["--checkpoint", str(checkpoint)]
    if threads:
        cmd += ["--threads", str(threads)]
    return cmd


def launch_detached(
    run: Run,
    *,
    resume: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    threads: int | None = None,
) -> int:
    """Start the worker in a new session and return its pid; the caller may exit at once."""
    cmd = worker_command(run, "resume" if resume else "start", checkpoint, threads)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # The worker must import this very package, even from a checkout that is not installed.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    run.clear_stop_request()
    with open(run.path / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # setsid: no controlling terminal, its own process group
            close_fds=True,
            env=env,
            cwd=str(run.path),
        )
    run.write_process_info(proc.pid, backend="process", command=" ".join(cmd), log=LOG_FILE)
    # Reap the child if it ends while we live, so it never lingers as a zombie.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid
