"""What a sweep looks like now: each point's state, reconciled with its run.

sweep.json records what the runner did; the run's own status wins when the
two disagree (a runner killed with -9 leaves "running" behind; a point resumed
by hand with `nsm-tui resume` finishes without the runner).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from nsm.runs import Run, RunState
from nsm.runs import events as ev
from nsm.sweeps.sweep import (
    DONE,
    FAILED,
    PENDING,
    POINT_STATES,
    RUNNING,
    STOPPED,
    Point,
    Sweep,
    SweepData,
    runner_is_alive,
)

_FROM_RUN_STATUS = {
    "finished": DONE,
    "failed": FAILED,
    "running": RUNNING,
    "interrupted": STOPPED,
    "stale": STOPPED,  # its process died without a word: resumable like a stop
    "created": PENDING,
}

# Sweep-level states.
QUEUED, SWEEP_RUNNING, STOPPING, SWEEP_STOPPED, FINISHED = "queued", "running", "stopping", "stopped", "finished"

_TAIL_BYTES = 16 * 1024


@dataclass(frozen=True)
class PointView:
    point: Point
    state: str  # pending / running / done / failed / stopped
    run: Run
    run_state: RunState
    missing: bool  # the run directory is gone (deleted from the browser?)
    progress: dict[str, Any] | None  # the last progress event of a running point

    @property
    def number(self) -> int:
        return self.point.number

    @property
    def error(self) -> str | None:
        return self.run_state.error or self.point.error

    def progress_text(self) -> str:
        """'epoch 2/10 · step 3/6' for a running point, 'epoch 10/10' otherwise."""
        s = self.run_state
        epochs = s.epochs or self.point.config.get("epochs")
        if self.state == RUNNING:
            e = self.progress
            if e is None:
                return "starting"
            if e.get("type") == ev.PROGRESS:
                return f"epoch {e.get('epoch')}/{epochs} · step {e.get('step')}/{e.get('steps')}"
            return f"epoch {e.get('epoch')}/{epochs}"
        if s.epoch or self.state != PENDING:
            return f"epoch {s.epoch}/{epochs}"
        return "-"


def point_state(point: Point, run: Run, runner_alive: bool) -> tuple[str, RunState, bool]:
    if not run.exists():
        kept = point.state if point.state in (DONE, FAILED) else PENDING
        return kept, RunState(), True
    state = run.state()
    status = run.status()
    effective = _FROM_RUN_STATUS.get(status, PENDING)
    if effective == PENDING and point.state == RUNNING and runner_alive:
        effective = RUNNING  # the runner is setting the point up; its run has no events yet
    return effective, state, False


def last_progress(run: Run) -> dict[str, Any] | None:
    """The newest progress (or epoch_end) event, read from the end of the log only."""
    try:
        with open(run.events_path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - _TAIL_BYTES))
            tail = fh.read()
    except OSError:
        return None
    for line in reversed(tail.split(b"\n")):
        if b'"progress"' not in line and b'"epoch_end"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the partial first line of the tail, or a torn last one
        if isinstance(event, dict) and event.get("type") in (ev.PROGRESS, ev.EPOCH_END):
            return event
    return None


@dataclass(frozen=True)
class SweepSnapshot:
    sweep: Sweep
    data: SweepData
    points: list[PointView]
    runner: dict[str, Any] | None
    runner_alive: bool
    stop_requested: bool

    @property
    def name(self) -> str:
        return self.sweep.name

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(POINT_STATES, 0)
        for p in self.points:
            counts[p.state] += 1
        return counts

    @property
    def current(self) -> PointView | None:
        running = [p for p in self.points if p.state == RUNNING]
        return running[0] if running else None

    @property
    def status(self) -> str:
        if self.runner_alive or self.current is not None:
            return STOPPING if self.stop_requested else SWEEP_RUNNING
        if all(p.state in (DONE, FAILED) for p in self.points):
            return FINISHED
        if all(p.state == PENDING for p in self.points) and not any(p.point.attempts for p in self.points):
            return QUEUED
        return SWEEP_STOPPED

    @property
    def remaining(self) -> list[PointView]:
        """Points a resume would run: pending and stopped ones, in queue order."""
        return [p for p in self.points if p.state in (PENDING, STOPPED)]

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c[s]} {s}" for s in POINT_STATES if c[s]]
        return f"{self.status}: " + ", ".join(parts)


def snapshot(sweep: Sweep) -> SweepSnapshot:
    """Read the sweep file and each point's run (SweepError if the file is unusable)."""
    data = sweep.load()
    runner = sweep.runner_info()
    alive = runner_is_alive(runner)
    views = []
    for point in data.points:
        run = sweep.run_of(point)
        state, run_state, missing = point_state(point, run, alive)
        progress = last_progress(run) if state == RUNNING else None
        views.append(PointView(point, state, run, run_state, missing, progress))
    return SweepSnapshot(sweep, data, views, runner, alive, sweep.stop_requested())


def request_stop(sweep: Sweep, snap: SweepSnapshot | None = None) -> None:
    """Ask a sweep to stop: its runner watches the sweep's stop file and stops the
    current point after a checkpoint; a point running without the runner (resumed
    by hand) gets its own run's stop request."""
    sweep.request_stop()
    snap = snap or snapshot(sweep)
    if not snap.runner_alive:
        for view in snap.points:
            if view.state == RUNNING:
                view.run.request_stop()
