"""Start a sweep's queue as a detached process (own session, output to runner.log)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from nsm.sweeps.sweep import Sweep


def runner_command(sweep: Sweep, token: str | None = None, retry_failed: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "nsm.sweeps.runner", str(sweep.path)]
    if token is not None:
        cmd += ["--token", token]
    if retry_failed:
        cmd.append("--retry-failed")
    return cmd


def launch_detached_sweep(sweep: Sweep, *, retry_failed: bool = False) -> int:
    """Start the runner in a new session and return its pid; the caller may exit at once.
    SweepBusy if a runner already holds the sweep."""
    # Claim first, so two quick starts cannot both launch a runner.
    token = sweep.claim_for_launch()
    sweep.clear_stop_request()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # The runner must import this very package, even from a checkout that is not installed.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        with open(sweep.log_path, "ab") as log:
            proc = subprocess.Popen(
                runner_command(sweep, token, retry_failed),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # setsid: closing the terminal does not reach it
                close_fds=True,
                env=env,
                cwd=str(sweep.path),
            )
    except BaseException:
        sweep.release_runner(token)
        raise
    info = sweep.runner_info() or {}
    if info.get("token") == token and info.get("pid") != proc.pid:
        sweep.hand_over(token, proc.pid)
    # Reap the child if it ends while we live, so it never lingers as a zombie.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid
