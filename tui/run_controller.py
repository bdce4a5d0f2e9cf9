"""Starts, follows, stops and resumes the dashboard's run through nsm.execution; events become messages.

Where the run trains is the execution layer's business (`backend_for`); this
widget only keeps the dashboard's view of it. Events reach the dashboard one
way, whatever the backend: the run's EventSource (its events.jsonl), folded
into one LiveRun. It is read by a poll that reschedules itself — a bounded
slice at a time with a short pause between slices while catching up on a long
history (input keeps flowing), every 0.25 s while the run lives, every second
after it ended. An in-process run's engine also pokes the poll (one `Inbox`
message per burst of events, never one per event), so its events show at once.

The controller is an invisible widget so that it owns its timers and workers;
its messages bubble to the dashboard screen.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path
from typing import Any

from textual import work
from textual.message import Message
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from nsm.config import RunConfig
from nsm.execution import (
    BACKEND_LABELS,
    Backend,
    EventSource,
    Execution,
    InProcessBackend,
    backend_for,
    make_backend,
)
from nsm.runs import Run, RunStore, RunStoreError
from tui.live_run import LiveRun
from tui.session import RUN, Work

POLL_LIVE_S = 0.25
POLL_IDLE_S = 1.0
# Between two slices of a long history: long enough for pending keys and paints to go first.
# (Never 0: a 0 s set_timer kills its timer inside Textual 8.2.8, see TUI-NOTES.)
POLL_CATCH_UP_S = 0.005
STATUS_EVERY_S = 2.0
# One slice of history takes about this long to read and fold: long enough that a
# 100,000-event log is in after a handful of slices, short enough that a key press
# waits at most this long.
SLICE_TARGET_S = 0.04
SLICE_MIN_BYTES, SLICE_MAX_BYTES = 256 << 10, 16 << 20
CATCH_UP_PAINT_S = 1.0  # while a long history loads, show how far it got this often

IN_PROCESS, PROCESS, FOLLOW, MODAL = "inprocess", "process", "follow", "modal"


def default_threads() -> int:
    """cores − 1 (at least 1): the UI and any other run keep a core (TUI-NOTES)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def engine_loaded() -> bool:
    import sys

    return "nsm.training.trainer" in sys.modules


class RunController(Widget):
    DEFAULT_CSS = "RunController { display: none; }"

    class Changed(Message):
        """The run's LiveRun (or the controller's state) changed; redraw what moved."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, RunController.Changed)

    class Notice(Message):
        """Something the user should read (a refused action, a vanished run)."""

        def __init__(self, text: str, level: str = "info") -> None:
            super().__init__()
            self.text = text
            self.level = level

    class Ended(Message):
        """The in-process run's worker returned (outcome) or raised (error)."""

        def __init__(self, outcome: str | None, error: str | None) -> None:
            super().__init__()
            self.outcome = outcome
            self.error = error

    class EngineReady(Message):
        """torch and the engine are imported: an in-process start no longer freezes anything."""

    class CaughtUp(Message):
        """The whole history of the followed run is in: paint it now, not at the next 2 Hz tick."""

    class Inbox(Message, bubble=False):
        """Events from the training thread are waiting in the inbox."""

    def __init__(self, store: RunStore, **kwargs: Any):
        super().__init__(**kwargs)
        self.store = store
        self.run: Run | None = None
        self.live: LiveRun | None = None
        self.mode: str | None = None
        self.stopping = False
        self.deleted = False
        self.followed_status: str | None = None  # run.status() of a followed run without a terminal event
        self.execution: Execution | None = None
        self.trainer_options: dict[str, Any] = {}  # extra Trainer kwargs (tests: on_step hooks, datasets)
        self.threads: int | None = None  # None: the config's THREADS, else cores − 1
        self.outcome: str | None = None
        self.error: str | None = None
        self.engine_ready = engine_loaded()
        self._source: EventSource | None = None
        self._poll_timer: Any = None
        self._last_status_check = 0.0
        self._last_catch_up_paint = 0.0
        self._inbox_posted = False
        self._lock = threading.Lock()
        self._worker: Worker[Any] | None = None
        self._warming = False
        self._bad_line_notice = 0

    # ================================================================ state
    @property
    def in_process_active(self) -> bool:
        return self.mode == IN_PROCESS and self._worker is not None and self._worker.state in (
            WorkerState.PENDING,
            WorkerState.RUNNING,
        )

    @property
    def pid(self) -> int | None:
        """The process that trains the run this dashboard started (None for a followed one)."""
        return self.execution.pid if self.execution is not None else None

    @property
    def catching_up(self) -> bool:
        """A long history is still being read, a slice at a time."""
        return self._source is not None and self._source.behind

    @property
    def active(self) -> bool:
        """A run is training and this dashboard is attached to it."""
        if self.mode == IN_PROCESS:
            return self.in_process_active
        if self.run is None or self.live is None or self.deleted:
            return False
        return self.live.status is None and self.followed_status == "running"

    def state_word(self) -> str:
        if self.run is None or self.live is None:
            return "idle"
        if self.deleted:
            return "deleted"
        if self.mode == IN_PROCESS and self.in_process_active:
            if self.stopping:
                return "stopping"
            return "running" if self.live.started and self.live.status is None else "starting"
        if self.live.status is not None:
            return self.live.status
        if self.catching_up and self.followed_status is None:
            return "loading"  # its history is still being read: its ending may be in it
        if self.mode == IN_PROCESS:
            return "failed" if self.error or self.outcome == "failed" else (self.outcome or "ended")
        status = self.followed_status or "created"
        if status == "running" and self.stopping:
            return "stopping"
        if status == "created" and self.mode == PROCESS:
            return "starting"
        return status

    def backend_label(self) -> str | None:
        if self.run is None:
            return None
        if self.mode == IN_PROCESS:
            return "in-process"
        if self.mode == MODAL:
            return "modal"
        live = self.live
        backend = (live.backend if live else None) or (live.config.get("backend") if live else None)
        info = self._process_info()
        if info.get("backend"):
            backend = info["backend"]
        label = {"inprocess": "in-process", "process": "process", "modal": "modal"}.get(str(backend), str(backend or "?"))
        pid = info.get("pid")
        if pid and self.followed_status == "running" and backend != "modal":
            label += f" (pid {pid})"
        return label

    def device_label(self) -> str | None:
        if self.live is None:
            return None
        device = self.live.environment.get("device") or self.live.config.get("device")
        if device and self.live.environment.get("threads") and str(device).startswith("cpu"):
            return f"{device} ×{self.live.environment['threads']}"
        return str(device) if device else None

    def _process_info(self) -> dict[str, Any]:
        if self.run is None:
            return {}
        try:
            return self.run.process_info() or {}
        except Exception:
            return {}

    # ============================================================ lifecycle
    def _reset(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        self._source = None
        self.run = None
        self.live = None
        self.mode = None
        self.stopping = False
        self.deleted = False
        self.followed_status = None
        self.execution = None
        self.outcome = None
        self.error = None
        self._bad_line_notice = 0
        with self._lock:
            self._inbox_posted = False

    def on_unmount(self) -> None:
        # The app is closing: an in-process run must not keep the process alive
        # (its thread would block interpreter exit); stop it with a checkpoint.
        if self.in_process_active:
            self.request_in_process_stop("the app closed")

    # =========================================================== start/attach
    def start(self, config: RunConfig, name: str | None = None) -> Run | None:
        """Create a run from `config` and start it on the config's backend.

        A backend that needs the network (Modal) starts in a worker and returns
        None; the dashboard follows the run once it has been taken (or says why not).
        """
        if self.in_process_active:
            raise RunStoreError("an in-process run is training here; stop it before starting another")
        backend = make_backend(config.backend)
        if backend.slow:
            self._start_slow(backend, config, name)
            return None
        run = self.store.create_run(config, name=name)
        try:
            self._launch(backend, run, None, config.threads)
        except BaseException:
            _discard_unstarted(run)
            raise
        return run

    def resume(self, run: Run, backend: str | None = None, checkpoint: str | None = None) -> str:
        """Continue `run` from `checkpoint` (default: its latest) on `backend` (default:
        the run's own); returns what it resumes from. RunStoreError says why not."""
        if self.in_process_active:
            raise RunStoreError("an in-process run is training here; stop it before resuming another")
        chosen = backend_for(run, prefer=backend)
        if chosen.slow:
            self._resume_slow(chosen, run, checkpoint)
            return checkpoint or "its latest committed checkpoint"
        plan = chosen.plan(run, checkpoint)
        try:
            configured = run.run_config().threads
        except RunStoreError:
            configured = 0
        self._launch(chosen, run, plan, configured)
        return plan.file

    def attach(self, run: Run) -> None:
        """Follow any run directory: its whole history now, then live."""
        if self.in_process_active:
            raise RunStoreError("an in-process run is training here; stop it before attaching to another run")
        self._reset()
        self._follow(run, FOLLOW, backend_for(run))

    def _launch(self, backend: Backend, run: Run, plan: Any, configured_threads: int | None) -> None:
        threads = self.threads or configured_threads or default_threads()
        if backend.name == IN_PROCESS:
            self._start_in_process(run, plan, threads)
            return
        self._reset()
        execution = backend.resume(plan, threads=threads) if plan is not None else backend.start(run, threads=threads)
        self.execution = execution
        self._follow(run, PROCESS, backend)

    def _follow(self, run: Run, mode: str, backend: Backend | None = None) -> None:
        self.run = run
        self.mode = mode
        self.live = LiveRun(run.ref)
        self._last_catch_up_paint = time.monotonic()  # a history that loads within a second paints once, whole
        try:
            self._source = (backend or backend_for(run)).events(run)
        except Exception as exc:  # a Modal mirror that cannot start: the local copy is still worth showing
            self.post_message(self.Notice(f"could not follow {run.ref} live: {exc}", "warning"))
            self._source = EventSource.for_viewer(run.events_path)
        self._last_status_check = 0.0  # the first poll that is not mid-history asks
        self._poll()

    # ------------------------------------------------------------ in-process
    def _start_in_process(self, run: Run, plan: Any, threads: int) -> None:
        backend = InProcessBackend(
            sinks=(self._sink,), trainer_options=self.trainer_options, before_train=lambda _e: self._freeze_gc()
        )
        claim = backend.claim(run, plan)  # refuses here, at once, if another process trains the run
        self._reset()
        execution = self.execution = Execution(run, IN_PROCESS, pid=os.getpid())
        self._follow(run, IN_PROCESS, backend)
        self.app.session.add(Work(RUN, run.ref, stop=execution.request_stop, done=execution.done))  # type: ignore[attr-defined]
        self._worker = self._train(backend, claim, threads, execution)
        self.post_message(self.Changed())

    @work(thread=True, exit_on_error=False, group="training", name="in-process run")
    def _train(self, backend: InProcessBackend, claim: Any, threads: int, execution: Execution) -> str:
        backend.train(claim, threads=threads, execution=execution)
        return str(execution.outcome)

    def _sink(self, event: dict[str, Any]) -> None:
        # Runs on the training thread, after the event is in the log: wake the poll once per burst.
        with self._lock:
            if self._inbox_posted:
                return
            self._inbox_posted = True
        self.post_message(self.Inbox())

    def on_run_controller_inbox(self, message: Message) -> None:
        with self._lock:
            self._inbox_posted = False
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._poll()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "warm-up":
            if event.state == WorkerState.SUCCESS:
                self.engine_ready = True
                self._warming = False
                self.post_message(self.EngineReady())
            elif event.state == WorkerState.ERROR:
                self._warming = False
                self.post_message(self.Notice(f"could not load the training engine: {worker.error}", "error"))
            return
        if worker is not self._worker or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._poll()  # the run's last events
        if event.state == WorkerState.SUCCESS:
            self.outcome = worker.result
        else:
            error = worker.error
            self.outcome = "failed"
            self.error = f"{type(error).__name__}: {error}" if error is not None else "the run was cancelled"
        self.stopping = False
        self.post_message(self.Ended(self.outcome, self.error))
        self.post_message(self.Changed())

    # ------------------------------------------------------- slow backends (Modal)
    # Every Modal call has a deadline of seconds, but seconds are too long for the
    # event loop: they run in workers and report back as notices.
    @work(thread=True, exit_on_error=False, group="modal", name="start on Modal")
    def _start_slow(self, backend: Backend, config: RunConfig, name: str | None) -> None:
        label = BACKEND_LABELS.get(backend.name, backend.name)
        try:
            from tui.modal_runs import price_line

            self.post_message(self.Notice(f"starting on {label}: {price_line(config.gpu)}"))
        except Exception:
            self.post_message(self.Notice(f"starting on {label}"))
        try:
            run = self.store.create_run(config, name=name)
            try:
                backend.start(run)
            except BaseException:
                _discard_unstarted(run)
                raise
        except Exception as exc:
            self.post_message(self.Notice(f"could not start on {label}: {exc}", "error"))
            return
        self.app.call_from_thread(self._follow_remote, run, backend, f"started {run.ref} on {label} ({config.gpu})")

    @work(thread=True, exit_on_error=False, group="modal", name="resume on Modal")
    def _resume_slow(self, backend: Backend, run: Run, checkpoint: str | None) -> None:
        label = BACKEND_LABELS.get(backend.name, backend.name)
        try:
            backend.resume(backend.plan(run, checkpoint))
        except Exception as exc:
            self.post_message(self.Notice(f"could not resume {run.ref} on {label}: {exc}", "error"))
            return
        self.app.call_from_thread(self._follow_remote, run, backend, f"resumed {run.ref} on {label}")

    @work(thread=True, exit_on_error=False, group="modal", name="stop on Modal")
    def _stop_slow(self, backend: Backend, run: Run, reason: str) -> None:
        try:
            message = backend.stop(run, reason=reason)
        except Exception as exc:
            self.post_message(self.Notice(f"could not ask {run.ref} to stop: {exc}", "error"))
            return
        self.post_message(self.Notice(message))

    def _follow_remote(self, run: Run, backend: Backend, note: str) -> None:
        self._reset()
        self._follow(run, MODAL, backend)
        self.post_message(self.Notice(note))

    # --------------------------------------------------------------- warm-up
    def warm_engine(self) -> None:
        """Import torch and the engine in a thread, ahead of an in-process start."""
        if self.engine_ready or self._warming:
            return
        self._warming = True
        self._warm()

    @work(thread=True, exit_on_error=False, group="warm-up", name="import torch")
    def _warm(self) -> None:
        import nsm.training.trainer  # noqa: F401 - the import is the point

        self._freeze_gc()

    @staticmethod
    def _freeze_gc() -> None:
        # torch + PyG leave ~1M long-lived objects; full collections over them stall the UI.
        gc.collect()
        gc.freeze()

    @property
    def warming(self) -> bool:
        return self._warming

    # ================================================================== stop
    def stop(self, reason: str = "stopped from the dashboard") -> bool:
        """Ask the run to stop at the next step (with a checkpoint). False if nothing runs."""
        if self.mode == IN_PROCESS:
            if not self.in_process_active:
                return False
            self.request_in_process_stop(reason)
        else:
            if not self.active or self.run is None:
                return False
            backend = backend_for(self.run)
            if backend.slow:
                self._stop_slow(backend, self.run, reason)
            else:
                try:
                    backend.stop(self.run, reason=reason)
                except (OSError, RunStoreError) as exc:
                    self.post_message(self.Notice(f"could not ask {self.run.ref} to stop: {exc}", "error"))
                    return False
        self.stopping = True
        self.post_message(self.Changed())
        return True

    def request_in_process_stop(self, reason: str) -> None:
        """Thread-safe (the SIGHUP handler calls it too)."""
        execution = self.execution
        if execution is not None and self.mode == IN_PROCESS:
            execution.request_stop(reason)

    # =============================================================== follow
    def _poll(self) -> None:
        self._poll_timer = None
        source, live, run = self._source, self.live, self.run
        if source is None or live is None or run is None:
            return
        t0 = time.perf_counter()
        catching_up = source.behind or live.last_seq < 0
        events = source.read()
        changed = live.feed_all(events) > 0
        if source.behind:
            _resize_slice(source, time.perf_counter() - t0)
        elif catching_up and events:
            self.post_message(self.CaughtUp())
        problem = source.problem
        if problem and not run.path.exists():
            self.deleted = True
            self._source = None
            self.post_message(self.Notice(f"run {run.ref} was deleted (its directory is gone); attach to another run with a", "error"))
            self.post_message(self.Changed())
            return
        if problem and source.bad_lines != self._bad_line_notice:
            self._bad_line_notice = source.bad_lines
            self.post_message(self.Notice(problem, "warning"))
        if self._check_status():
            changed = True
        if changed and source.behind and time.monotonic() - self._last_catch_up_paint < CATCH_UP_PAINT_S:
            changed = False  # mid-history: every redraw now is paid again when the rest is in
        if changed:
            if source.behind:
                self._last_catch_up_paint = time.monotonic()
            self.post_message(self.Changed())
        if source.behind:
            delay = POLL_CATCH_UP_S  # catching up on a long history, a slice at a time
        elif live.status is None and (self.mode == IN_PROCESS or self.followed_status in (None, "running", "created")):
            delay = POLL_LIVE_S
        else:
            delay = POLL_IDLE_S  # ended or stale: someone may still resume it elsewhere
        self._poll_timer = self.set_timer(delay, self._poll, name="follow run")

    def _check_status(self, force: bool = False) -> bool:
        """Refresh a followed run's liveness (pid/heartbeat); True if it changed."""
        run, live = self.run, self.live
        if run is None or live is None or self.mode == IN_PROCESS:
            return False
        now = time.monotonic()
        if not force and (now - self._last_status_check < STATUS_EVERY_S or self.catching_up):
            return False
        self._last_status_check = now
        try:
            # The log's endings are in the LiveRun already; only liveness needs the disk
            # (re-reading a 100,000-event log to learn "finished" would cost 0.1 s).
            status = run.liveness()
            if status != "running" and live.status is not None:
                status = live.status
        except Exception:  # a run directory vanishing mid-read: the next poll notices
            return False
        if status == self.followed_status:
            return False
        before = self.followed_status
        self.followed_status = status
        if status in ("finished", "interrupted", "failed"):
            self.stopping = False
        if status == "stale" and before in ("running", "created") and self.mode == PROCESS:
            tail = log_tail(run.log_path)
            self.post_message(
                self.Notice(
                    f"the run's process ended without a final event; last lines of {run.log_path.name}: {tail}"
                    if tail
                    else "the run's process ended without a final event",
                    "error",
                )
            )
        return True


def _resize_slice(source: EventSource, took_s: float) -> None:
    """Aim each slice of history at SLICE_TARGET_S of work on this machine."""
    current = source.slice_bytes or SLICE_MIN_BYTES
    scale = min(4.0, max(0.25, SLICE_TARGET_S / max(took_s, 1e-4)))
    source.slice_bytes = int(min(SLICE_MAX_BYTES, max(SLICE_MIN_BYTES, current * scale)))


def _discard_unstarted(run: Run) -> None:
    """A start that never got going leaves nothing behind (its folder has no events yet)."""
    import shutil

    try:
        if not run.events():
            shutil.rmtree(run.path, ignore_errors=True)
    except OSError:
        pass


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in data.strip().splitlines()[-lines:])
