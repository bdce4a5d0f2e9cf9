"""N sweep points at once, each trained by its own detached process (`--parallel N`).

The runner stays the one writer of sweep.json: it starts a point through the
local-process backend (which takes the point's run lock and hands it to the
child), watches the children, and records each outcome when its process ends.
A stop (the sweep's stop file, a signal, `request_stop`) starts nothing more and
asks every running point to stop at its next step, with a checkpoint; the
runner returns once all of them have exited. A point that fails is recorded as
failed and the next one starts in its place.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from nsm.execution.backend import Execution, LocalProcessBackend
from nsm.execution.rules import plan_resume
from nsm.runs import EventFollower, Run, RunStoreError
from nsm.runs import events as ev
from nsm.runs.lock import RunLocked
from nsm.runs.process import pid_alive
from nsm.sweeps.status import PointView, snapshot
from nsm.sweeps.sweep import DONE, FAILED, RUNNING, STOPPED, Point, SweepError, point_config

if TYPE_CHECKING:
    from nsm.sweeps.runner import SweepRunner

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often the children and the sweep's stop file are looked at
_STATE_OF_OUTCOME = {"finished": DONE, "interrupted": STOPPED, "failed": FAILED}


@dataclass
class _Active:
    point: Point
    run: Run
    execution: Execution
    launched: float
    log: EventFollower  # the run's log from where this attempt begins
    stop_sent: bool = False
    end: dict[str, Any] | None = None  # the attempt's terminal event

    def ended(self, sink: Callable[[Point, dict[str, Any]], None]) -> bool:
        """Training is over once the attempt's terminal event is written (its process may
        take seconds more to exit, and no longer holds the run's lock), or the process is gone.
        The new events go to `sink` on the way (an attached terminal prints them)."""
        gone = not pid_alive(self.execution.pid, self.launched - 1.0)
        for e in self.log.poll():  # after the pid check: a process that is gone has written all
            sink(self.point, e)
            if e.get("type") in ev.TERMINAL_TYPES:
                self.end = e
        return gone or self.end is not None


class PackedQueue:
    """Runs the given points of `runner`'s sweep, at most `parallel` at once."""

    def __init__(self, runner: "SweepRunner", parallel: int, threads: int | None):
        self.runner = runner
        self.sweep = runner.sweep
        self.parallel = max(1, parallel)
        self.threads = threads
        self.backend = LocalProcessBackend()
        self.active: dict[int, _Active] = {}
        self.peak = 0  # the most points that trained at once

    def run(self, indices: Sequence[int], wanted: tuple[str, ...]) -> str:
        queue = list(indices)
        stopping = interrupted = False
        try:
            while True:
                for index, item in list(self.active.items()):
                    if item.ended(self._tell):
                        del self.active[index]
                        interrupted |= self._finish(item) == STOPPED
                if not stopping and self.runner.stop_requested():
                    stopping = True
                if stopping:
                    self._stop_all()
                if not self.active and (stopping or not queue):
                    break
                while not stopping and queue and len(self.active) < self.parallel:
                    self._start(queue.pop(0), wanted)
                    stopping = self.runner.stop_requested()
                self.peak = max(self.peak, len(self.active))
                if self.active:
                    self.runner.wait_for_stop(POLL_S)  # wakes at once for a signal or request_stop
        except BaseException:
            # The runner itself is going down: its points are not left training unwatched.
            self._stop_all()
            raise
        return "stopped" if stopping and (queue or interrupted) else "finished"

    # -- one point ----------------------------------------------------------
    def _start(self, index: int, wanted: tuple[str, ...]) -> None:
        view = snapshot(self.sweep).points[index]  # re-read: it may have been run by hand meanwhile
        if view.state not in wanted:
            return
        point = view.point
        try:
            point_config(point)
            run, resume_from = self.runner.prepare(view)
            threads = self._record_threads(view, run, resume_from)
        except (SweepError, RunStoreError, OSError) as exc:
            self.runner.record(point, FAILED, "failed", f"could not prepare the run: {exc}")
            return
        follower = EventFollower(run.events_path)
        follower.poll()  # what earlier attempts wrote is not this attempt's end
        try:
            if resume_from is None:
                execution = self.backend.start(run, threads=threads)
            else:
                execution = self.backend.resume(plan_resume(run, resume_from), threads=threads)
        except RunLocked as exc:
            log.warning("point %s skipped: %s", point.number, exc)  # someone else trains it
            return
        except (RunStoreError, OSError) as exc:
            self.runner.record(point, FAILED, "failed", f"could not start its process: {exc}")
            return
        point = self.sweep.update_point(
            index, state=RUNNING, started=point.started or time.time(), ended=None, error=None, attempts=point.attempts + 1
        )
        self.active[index] = _Active(point, run, execution, time.time(), follower)
        self.runner.notify(point, RUNNING)

    def _record_threads(self, view: PointView, run: Run, resume_from: str | None) -> int | None:
        """A fresh point whose config leaves THREADS to the engine gets its share of the
        cores written into its config, so that its results say what they were made with."""
        configured = int(run.config().get("threads") or 0)
        if configured or not self.threads:
            return configured or self.threads
        if resume_from is None:
            from nsm.atomic import atomic_write_json

            atomic_write_json(run.config_path, {**run.config(), "threads": self.threads})
            self.sweep.update_point(view.point.index, config={**view.point.config, "threads": self.threads})
        return self.threads

    def _finish(self, item: _Active) -> str:
        # The terminal event, not run.status(): the lock may be held for a moment after it.
        outcome = str(item.end["type"]) if item.end is not None else None
        state = _STATE_OF_OUTCOME.get(outcome or "")
        error = None
        if state == FAILED:
            error = str(item.end.get("error") or "") or item.run.state().error  # type: ignore[union-attr]
        elif state is None:  # killed (out of memory?) before it could say how it ended
            state, outcome = FAILED, "failed"
            error = item.run.state().error or f"its process (pid {item.execution.pid}) ended without a result; see {item.run.log_path}"
        self.runner.record(item.point, state, str(outcome), error)
        return state

    def _tell(self, point: Point, event: dict[str, Any]) -> None:
        for sink in self.runner.sinks:
            try:
                sink(point, event)
            except Exception:  # a broken viewer must not stop the queue
                log.exception("sweep sink failed")

    def _stop_all(self) -> None:
        for item in self.active.values():
            if not item.stop_sent:
                item.stop_sent = True
                item.execution.request_stop("sweep stop requested")  # the run's stop file, read every step
