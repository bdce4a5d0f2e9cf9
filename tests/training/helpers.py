"""Tiny configs and helpers shared by the engine tests."""

from __future__ import annotations

import subprocess
import sys
import os
import time
from pathlib import Path
from typing import Any, Callable

from nsm.config import RunConfig, validate_config
from nsm.runs import EventFollower, Run

ROOT = Path(__file__).resolve().parents[2]


# A run that trains in about a second on this CPU: 60 graphs, width 16 (tests share it).
TINY: dict[str, Any] = dict(
    domain="planning",
    epochs=3,
    batch_size=8,
    num_graphs=60,
    hidden=16,
    eval_every=1,
    save_every=2,
    patience=0,
    device="cpu",
    seed=3,
    threads=1,
)


def tiny_config(**overrides: Any) -> RunConfig:
    return validate_config({**TINY, **overrides})


def wait_for_event(run: Run, predicate: Callable[[dict[str, Any]], bool], timeout: float = 120.0) -> dict[str, Any]:
    """Follow a run's log (written by another process) until an event matches."""
    follower = EventFollower(run.path / "events.jsonl")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in follower.poll():
            if predicate(event):
                return event
        time.sleep(0.05)  # polling another process's file: there is nothing to await in-process
    raise AssertionError(f"no matching event in {timeout} s; log so far: {[e['type'] for e in run.events()]}")


def wait_for_exit(pid: int, timeout: float = 60.0) -> None:
    from nsm.runs import pid_alive

    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), f"process {pid} still alive after {timeout} s"
    # A killed process whose leader is a zombie may still have threads exiting, and
    # its files (the run lock) stay open until the last one is gone and it is reaped.
    while os.path.exists(f"/proc/{pid}/task") and len(os.listdir(f"/proc/{pid}/task")) > 0 and time.monotonic() < deadline:
        if _zombie_only(pid):
            break
        time.sleep(0.05)


def _zombie_only(pid: int) -> bool:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        states = [open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()[0] for t in tasks]
    except OSError:
        return True
    return all(s in ("Z", "X") for s in states) and len(tasks) <= 1


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout
    )


TRAIN_KEYS = ("loss", "task_loss", "cycle_loss", "acc", "grad_norm", "lr")
VAL_KEYS = ("loss", "task_loss", "cycle_loss", "acc")


def metric_rows(events: list[dict[str, Any]]) -> tuple[dict[int, tuple], dict[int, tuple]]:
    """Per-epoch train and val metrics (timings left out: they are wall-clock)."""
    train = {e["epoch"]: tuple(e[k] for k in TRAIN_KEYS) for e in events if e["type"] == "epoch_end"}
    val = {e["epoch"]: tuple(e[k] for k in VAL_KEYS) for e in events if e["type"] == "eval"}
    return train, val
