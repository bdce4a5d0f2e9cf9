"""Start a sweep's queue as a detached process (own session, output to runner.log)."""

from __future__ import annotations

from nsm.execution.launcher import python_command, spawn_detached
from nsm.sweeps.sweep import Sweep


def runner_command(sweep: Sweep, token: str | None = None, retry_failed: bool = False) -> list[str]:
    cmd = python_command("nsm.sweeps.runner", str(sweep.path))
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
    try:
        proc = spawn_detached(runner_command(sweep, token, retry_failed), cwd=sweep.path, log_path=sweep.log_path)
    except BaseException:
        sweep.release_runner(token)
        raise
    info = sweep.runner_info() or {}
    if info.get("token") == token and info.get("pid") != proc.pid:
        sweep.hand_over(token, proc.pid)
    return proc.pid
