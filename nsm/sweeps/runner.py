"""The sweep queue: run the remaining points one after another, in this process
(or, with `parallel` > 1, N at once, each in its own trainer process: nsm.sweeps.pool).

`python -m nsm.sweeps.runner SWEEP_DIR` is the detached form (its own session,
started by `nsm.sweeps.launch`); the CLI's attached mode and the TUI's
in-process mode use `SweepRunner` directly. Either way each point trains with
`nsm.training.Trainer` into its own run directory, a stop request (the sweep's
stop file, a signal, `request_stop`) reaches the current point at its next
step, which then writes a checkpoint; resuming starts the runner again: an
interrupted point continues from its latest checkpoint, finished points are
left as they are.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable

from nsm.execution.render import render_text
from nsm.runs import Run, RunStoreError
from nsm.signals import stop_on_signals
from nsm.sweeps.grid import describe_overrides
from nsm.sweeps.packing import Packing, packing_for, parse_parallel
from nsm.sweeps.status import PointView, snapshot
from nsm.sweeps.sweep import (
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    STOPPED,
    Point,
    Sweep,
    SweepError,
    point_config,
)

log = logging.getLogger(__name__)

FINISHED, STOPPED_OUTCOME = "finished", "stopped"
_STATE_OF_OUTCOME = {"finished": DONE, "interrupted": STOPPED, "failed": FAILED}

PointSink = Callable[[Point, dict[str, Any]], None]


class SweepRunner:
    """Runs a sweep's pending and stopped points (and failed ones with
    `retry_failed`) in queue order. `run()` blocks; `request_stop()` is
    thread-safe and may be called from a signal handler or the UI thread."""

    def __init__(
        self,
        sweep: Sweep,
        *,
        mode: str = "attached",
        backend: str = "inprocess",
        token: str | None = None,
        retry_failed: bool = False,
        clear_stop: bool = True,
        sinks: Iterable[PointSink] = (),
        on_point: Callable[[Point, str], None] | None = None,
        threads: int | None = None,
        step_hook: Callable[[int, int, int], None] | None = None,
        parallel: int = 1,
        point_threads: int | None = None,
    ):
        self.sweep = sweep
        self.mode = mode
        self.backend = backend
        self.token = token
        self.retry_failed = retry_failed
        self.clear_stop = clear_stop
        self.sinks = list(sinks)
        self.on_point = on_point  # (point, state) whenever a point starts or ends
        self.threads = threads  # torch threads for points whose config leaves THREADS at 0
        self.step_hook = step_hook  # test hook: (point index, epoch, step) before each step
        # parallel > 1: that many points at once, each in its own process (nsm.sweeps.pool)
        # with `point_threads` torch threads; 1: one after another in this process.
        self.parallel = max(1, int(parallel))
        self.point_threads = point_threads
        self.peak_parallel = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._trainer: Any = None
        self.current: Point | None = None
        self.outcome: str | None = None

    # -- control ------------------------------------------------------------
    def request_stop(self, reason: str = "sweep stop requested") -> None:
        self._stop.set()
        with self._lock:
            trainer = self._trainer
        if trainer is not None:
            trainer.request_stop(reason)

    def stop_requested(self) -> bool:
        return self._stop.is_set() or self.sweep.stop_requested()

    def wait_for_stop(self, timeout: float) -> bool:
        """Block up to `timeout` s; returns early (True) when `request_stop` is called."""
        return self._stop.wait(timeout)

    # -- the queue ----------------------------------------------------------
    def run(self) -> str:
        """'finished' when no point is left to run, 'stopped' after a stop.
        SweepBusy when another runner holds the sweep."""
        token = self.sweep.acquire_runner(mode=self.mode, token=self.token)
        try:
            if self.clear_stop:
                self.sweep.clear_stop_request()
            self.outcome = self._run_queue()
            return self.outcome
        finally:
            if self.outcome == STOPPED_OUTCOME or self.sweep.stop_requested():
                self.sweep.clear_stop_request()  # honoured; a later resume starts clean
            self.sweep.release_runner(token)

    def _run_queue(self) -> str:
        wanted = (PENDING, STOPPED, FAILED) if self.retry_failed else (PENDING, STOPPED)
        indices = [v.point.index for v in snapshot(self.sweep).points if v.state in wanted]
        if self.parallel > 1:
            from nsm.sweeps.pool import PackedQueue

            pool = PackedQueue(self, self.parallel, self.point_threads)
            try:
                return pool.run(indices, wanted)
            finally:
                self.peak_parallel = pool.peak
        for index in indices:
            if self.stop_requested():
                return STOPPED_OUTCOME
            # Re-read: a point may have been run by hand meanwhile.
            view = snapshot(self.sweep).points[index]
            if view.state not in wanted:
                continue
            if self._run_point(view) == "interrupted":
                return STOPPED_OUTCOME
        return FINISHED

    def _run_point(self, view: PointView) -> str:
        point = view.point
        self.current = point
        self.peak_parallel = max(self.peak_parallel, 1)
        try:
            cfg = point_config(point)
            run, resume_from = self.prepare(view)
        except (SweepError, RunStoreError, OSError) as exc:
            self.record(point, FAILED, "failed", f"could not prepare the run: {exc}")
            return "failed"
        point = self.sweep.update_point(
            point.index,
            state=RUNNING,
            started=point.started or time.time(),
            ended=None,
            error=None,
            attempts=point.attempts + 1,
        )
        self.notify(point, RUNNING)
        try:
            from nsm.training.trainer import Trainer

            hook = self.step_hook
            trainer = Trainer(
                run,
                resume_from=resume_from,
                sinks=[self._sink_for(point)],
                stop_checks=[self.stop_requested],
                threads=cfg.threads or self.threads,
                backend=self.backend,
                on_step=(lambda e, s: hook(point.index, e, s)) if hook is not None else None,
            )
        except Exception as exc:  # a config the engine refuses: this point fails, the queue goes on
            self.record(point, FAILED, "failed", f"{type(exc).__name__}: {exc}")
            return "failed"
        with self._lock:
            self._trainer = trainer
        if self._stop.is_set():
            trainer.request_stop("sweep stop requested")
        try:
            outcome = trainer.run()
        finally:
            with self._lock:
                self._trainer = None
        error = run.state().error if outcome == "failed" else None
        self.record(point, _STATE_OF_OUTCOME.get(outcome, FAILED), outcome, error)
        return outcome

    def prepare(self, view: PointView) -> tuple[Run, str | None]:
        """The point's run and the checkpoint to resume it from (None: from the start)."""
        point = view.point
        cfg = point_config(point)
        store = self.sweep.store
        if view.missing:
            return store.create_run(cfg, name=point.run_name), None
        run = view.run
        if view.state == PENDING:
            return run, None
        latest = run.latest_checkpoint()
        if latest is not None:
            return run, str(latest.path)
        # Stopped before its first checkpoint (killed): start the point afresh.
        store.delete(run.ref, force=True)
        return store.create_run(cfg, name=point.run_name), None

    def record(self, point: Point, state: str, outcome: str, error: str | None) -> None:
        updated = self.sweep.update_point(point.index, state=state, ended=time.time(), outcome=outcome, error=error)
        self.notify(updated, state)

    def notify(self, point: Point, state: str) -> None:
        if self.on_point is not None:
            try:
                self.on_point(point, state)
            except Exception:  # a broken viewer must not stop the queue
                log.exception("sweep on_point callback failed")

    def _sink_for(self, point: Point) -> Callable[[dict[str, Any]], None]:
        def sink(event: dict[str, Any]) -> None:
            for s in self.sinks:
                s(point, event)

        return sink


class LinePrinter:
    """Plain progress lines for a sweep: one per point start/end and per epoch."""

    def __init__(self, sweep: Sweep, write: Callable[[str], None] = print, *, tag_points: bool = False):
        self.write = write
        self.tag_points = tag_points  # points train side by side: say whose line each is
        try:
            self.total = len(sweep.load().points)
        except SweepError:
            self.total = 0

    def on_point(self, point: Point, state: str) -> None:
        head = f"point {point.number}/{self.total} ({describe_overrides(point.values) or point.run})"
        if state == RUNNING:
            self.write(f"{head}: run {point.run}")
        elif state == DONE:
            self.write(f"{head}: done")
        elif state == STOPPED:
            self.write(f"{head}: stopped with a checkpoint; resume the sweep to continue it")
        else:
            self.write(f"{head}: FAILED" + (f": {point.error}" if point.error else ""))

    def on_event(self, point: Point, e: dict[str, Any]) -> None:
        # The same lines as every other viewer, indented under the point's header.
        if e.get("type") == "run_started":
            return  # the point's header already says which run it is
        tag = f"#{point.number} " if self.tag_points else ""
        for text in render_text(e):
            self.write(f"  {tag}{text}")


def resolve_parallel(sweep: Sweep, raw: str | int, point_threads: int | None = None, *, retry_failed: bool = False) -> Packing:
    """`--parallel` as given (N or auto) made into a packing; ParallelError for bad input."""
    requested = parse_parallel(raw)
    packing = packing_for(sweep, requested, retry_failed=retry_failed)
    if point_threads and packing.points > 1:
        packing = Packing(packing.points, point_threads, packing.reason)
    return packing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nsm.sweeps.runner", description="run a sweep's queue")
    ap.add_argument("sweep_dir")
    ap.add_argument("--token", default=None, help="the launcher's claim on the sweep")
    ap.add_argument("--retry-failed", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--parallel", default="1", help="points at once (each in its own process), or auto")
    ap.add_argument("--point-threads", type=int, default=None, help="torch threads of each point when --parallel > 1")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    sweep = Sweep(args.sweep_dir)
    if not sweep.exists():
        print(f"no sweep at {args.sweep_dir}", file=sys.stderr)
        return 2
    try:
        packing = resolve_parallel(sweep, args.parallel, args.point_threads, retry_failed=args.retry_failed)
    except (ValueError, SweepError) as exc:
        print(f"sweep {sweep.name}: {exc}", file=sys.stderr, flush=True)
        return 2
    printer = LinePrinter(sweep, lambda text: print(text, flush=True), tag_points=packing.points > 1)
    if packing.points > 1 or args.parallel != "1":
        print(packing.line(), flush=True)
    runner = SweepRunner(
        sweep,
        mode="detached",
        backend="process",
        token=args.token,
        retry_failed=args.retry_failed,
        # The launcher cleared old stop requests; one made since is meant for us.
        clear_stop=args.token is None,
        sinks=[printer.on_event],
        on_point=printer.on_point,
        threads=args.threads,
        parallel=packing.points,
        point_threads=packing.threads,
    )

    stop_on_signals(runner.request_stop)
    try:
        outcome = runner.run()
    except SweepError as exc:
        print(f"sweep {sweep.name}: {exc}", file=sys.stderr, flush=True)
        return 3
    print(f"sweep {sweep.name}: {outcome} ({snapshot(sweep).summary()})", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
