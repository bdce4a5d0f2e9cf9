"""Start a sweep's queue as a detached process (own session, output to runner.log)."""

from __future__ import annotations

from nsm.execution.launcher import python_command, spawn_detached
from nsm.sweeps.sweep import Sweep


def runner_command(
    sweep: Sweep, token: str | None = None, retry_failed: bool = False, parallel: int | str = 1, point_threads: int | None = None
) -> list[str]:
    cmd = python_command("nsm.sweeps.runner", str(sweep.path))
    if token is not None:
        cmd += ["--token", token]
    if retry_failed:
        cmd.append("--retry-failed")
    if parallel != 1:
        cmd += ["--parallel", str(parallel)]
    if point_threads:
        cmd += ["--point-threads", str(point_threads)]
    return cmd


def launch_detached_sweep(
    sweep: Sweep, *, retry_failed: bool = False, parallel: int | str = 1, point_threads: int | None = None
) -> int:
    """Start the runner in a new session and return its pid; the caller may exit at once.
    `parallel`: points at once (each its own process) or "auto" (the runner picks).
    SweepBusy if a runner already holds the sweep."""
    # Claim first, so two quick starts cannot both launch a runner.
    token = sweep.claim_for_launch()
    sweep.clear_stop_request()
    try:
        command = runner_command(sweep, token, retry_failed, parallel, point_threads)
        proc = spawn_detached(command, cwd=sweep.path, log_path=sweep.log_path)
    except BaseException:
        sweep.release_runner(token)
        raise
    info = sweep.runner_info() or {}
    if info.get("token") == token and info.get("pid") != proc.pid:
        sweep.hand_over(token, proc.pid)
    return proc.pid
