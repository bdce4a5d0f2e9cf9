"""Starts, follows, stops and resumes the dashboard's run; turns its events into messages.

Two ways events reach the dashboard, both folded into one LiveRun:
- in-process: the engine trains in a Textual thread worker; its sink puts events
  in an inbox and posts one `Inbox` message per burst (never one per event);
- everything else (a detached process started here, a run started in another
  terminal, a finished run): an EventFollower on the run's events.jsonl, polled
  by a timer that reschedules itself — at once while catching up on a long
  history, every 0.25 s while the run lives, every second after it ended.

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
from nsm.runs import EventFollower, Run, RunStore, RunStoreError
from tui.live_run import LiveRun

POLL_LIVE_S = 0.25
POLL_IDLE_S = 1.0
STATUS_EVERY_S = 2.0
CATCH_UP_BYTES = 1 << 20  # one poll's worth of a long history: the UI stays responsive while it loads

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
        self.pid: int | None = None
        self.trainer: Any = None
        self.trainer_options: dict[str, Any] = {}  # extra Trainer kwargs (tests: on_step hooks, datasets)
        self.threads: int | None = None  # None: the config's THREADS, else cores − 1
        self.outcome: str | None = None
        self.error: str | None = None
        self.engine_ready = engine_loaded()
        self._follower: EventFollower | None = None
        self._poll_timer: Any = None
        self._last_status_check = 0.0
        self._inbox: list[dict[str, Any]] = []
        self._inbox_posted = False
        self._lock = threading.Lock()
        self._worker: Worker[Any] | None = None
        self._pending_stop: str | None = None
        self._warming = False
        self._bad_line_notice = 0
        self.training_done = threading.Event()  # set when the in-process run's thread returns

    # ================================================================ state
    @property
    def in_process_active(self) -> bool:
        return self.mode == IN_PROCESS and self._worker is not None and self._worker.state in (
            WorkerState.PENDING,
            WorkerState.RUNNING,
        )

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
        self._follower = None
        self.run = None
        self.live = None
        self.mode = None
        self.stopping = False
        self.deleted = False
        self.followed_status = None
        self.pid = None
        self.trainer = None
        self.outcome = None
        self.error = None
        self._pending_stop = None
        self._bad_line_notice = 0
        with self._lock:
            self._inbox = []
            self._inbox_posted = False

    def on_unmount(self) -> None:
        # The app is closing: an in-process run must not keep the process alive
        # (its thread would block interpreter exit); stop it with a checkpoint.
        if self.in_process_active:
            self.request_in_process_stop("the app closed")

    # =========================================================== start/attach
    def start(self, config: RunConfig, name: str | None = None) -> Run | None:
        """Create a run from `config` and start it on the config's backend.

        A Modal start needs the network: it goes to a worker and returns None;
        the dashboard follows the run once Modal has taken it (or says why not).
        """
        if self.in_process_active:
            raise RunStoreError("an in-process run is training here; stop it before starting another")
        if config.backend == MODAL:
            self._modal_start(config, name)
            return None
        run = self.store.create_run(config, name=name)
        if config.backend == IN_PROCESS:
            self._start_in_process(run, resume_from=None)
        else:
            self._start_detached(run, resume=False, checkpoint=None, config=config)
        return run

    def resume(self, run: Run, backend: str, checkpoint: str | None = None) -> str:
        """Continue `run` from `checkpoint` (default: its latest); returns the checkpoint used.

        Raises RunStoreError with the reason when the run cannot be resumed.
        """
        from tui.commands.training import resume_checkpoint
        from tui.console import CliError

        if self.in_process_active:
            raise RunStoreError("an in-process run is training here; stop it before resuming another")
        if _is_modal(run):
            self._modal_resume(run, checkpoint)
            return checkpoint or "its latest committed checkpoint"
        try:
            chosen = resume_checkpoint(run, checkpoint)
        except CliError as exc:
            raise RunStoreError(str(exc)) from None
        if backend == IN_PROCESS:
            self._start_in_process(run, resume_from=chosen)
        else:
            self._start_detached(run, resume=True, checkpoint=chosen, config=None)
        return chosen

    def attach(self, run: Run) -> None:
        """Follow any run directory: its whole history now, then live."""
        if self.in_process_active:
            raise RunStoreError("an in-process run is training here; stop it before attaching to another run")
        self._reset()
        if _is_modal(run):
            self._ensure_mirror(run)
        self._follow(run, FOLLOW)

    def _follow(self, run: Run, mode: str) -> None:
        self.run = run
        self.mode = mode
        self.live = LiveRun(run.ref)
        self._follower = run.follower()
        self._check_status(force=True)
        self._poll()

    def _start_detached(self, run: Run, resume: bool, checkpoint: str | None, config: RunConfig | None) -> None:
        from nsm.training.launch import launch_detached

        self._reset()
        threads = self.threads or (config.threads if config is not None and config.threads else None) or default_threads()
        self.pid = launch_detached(run, resume=resume, checkpoint=checkpoint, threads=threads)
        self._follow(run, PROCESS)

    # ------------------------------------------------------------ in-process
    def _start_in_process(self, run: Run, resume_from: str | None) -> None:
        self._reset()
        self.run = run
        self.mode = IN_PROCESS
        self.live = LiveRun(run.ref)
        if resume_from is not None:
            # The history so far, before any new event can arrive from the engine.
            self.live.feed_all(run.events())
        try:
            configured = run.run_config().threads
        except RunStoreError:
            configured = 0
        threads = self.threads or configured or default_threads()
        self.training_done = threading.Event()
        self._worker = self._train(run, resume_from, threads)
        self.post_message(self.Changed())

    @work(thread=True, exit_on_error=False, group="training", name="in-process run")
    def _train(self, run: Run, resume_from: str | None, threads: int) -> str:
        done = self.training_done
        try:
            return self._train_here(run, resume_from, threads)
        finally:
            done.set()

    def _train_here(self, run: Run, resume_from: str | None, threads: int) -> str:
        from nsm.training.trainer import Trainer

        trainer = Trainer(
            run,
            resume_from=resume_from,
            sinks=[self._sink],
            threads=threads,
            backend=IN_PROCESS,
            **self.trainer_options,
        )
        with self._lock:
            self.trainer = trainer
            pending = self._pending_stop
        if pending is not None:
            trainer.request_stop(pending)
        self._freeze_gc()
        return str(trainer.run())

    def _sink(self, event: dict[str, Any]) -> None:
        # Runs on the training thread: queue, and wake the UI once per burst.
        with self._lock:
            self._inbox.append(event)
            if self._inbox_posted:
                return
            self._inbox_posted = True
        self.post_message(self.Inbox())

    def on_run_controller_inbox(self, message: Message) -> None:
        self._drain()

    def _drain(self) -> None:
        with self._lock:
            events, self._inbox = self._inbox, []
            self._inbox_posted = False
        if events and self.live is not None and self.mode == IN_PROCESS:
            if self.live.feed_all(events):
                self.post_message(self.Changed())

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
        self._drain()
        if event.state == WorkerState.SUCCESS:
            self.outcome = worker.result
        else:
            error = worker.error
            self.outcome = "failed"
            self.error = f"{type(error).__name__}: {error}" if error is not None else "the run was cancelled"
        self.stopping = False
        self.trainer = None
        self.post_message(self.Ended(self.outcome, self.error))
        self.post_message(self.Changed())

    # ----------------------------------------------------------------- Modal
    # Every Modal call has a deadline of seconds, but seconds are too long for the
    # event loop: they run in workers and report back as notices.
    @work(thread=True, exit_on_error=False, group="modal", name="start on Modal")
    def _modal_start(self, config: RunConfig, name: str | None) -> None:
        from tui.modal_runs import ModalError, price_line, start_modal_run

        self.post_message(self.Notice(f"starting on Modal: {price_line(config.gpu)}"))
        try:
            run = start_modal_run(self.store, config, gpu=config.gpu, name=name)
        except (ModalError, RunStoreError) as exc:
            self.post_message(self.Notice(f"could not start on Modal: {exc}", "error"))
            return
        self.app.call_from_thread(self._follow_modal, run, f"started {run.ref} on Modal ({config.gpu})")

    @work(thread=True, exit_on_error=False, group="modal", name="resume on Modal")
    def _modal_resume(self, run: Run, checkpoint: str | None) -> None:
        from tui.modal_runs import ModalError, resume_modal_run

        try:
            resume_modal_run(run, checkpoint)
        except (ModalError, RunStoreError) as exc:
            self.post_message(self.Notice(f"could not resume {run.ref} on Modal: {exc}", "error"))
            return
        self.app.call_from_thread(self._follow_modal, run, f"resumed {run.ref} on Modal")

    @work(thread=True, exit_on_error=False, group="modal", name="stop on Modal")
    def _modal_stop(self, run: Run) -> None:
        from tui.modal_runs import ModalError, stop_modal_run

        try:
            message = stop_modal_run(run)
        except ModalError as exc:
            self.post_message(self.Notice(f"could not ask {run.ref} to stop on Modal: {exc}", "error"))
            return
        self.post_message(self.Notice(message))

    def _ensure_mirror(self, run: Run) -> None:
        from tui.modal_runs import ModalError, ensure_mirroring

        try:
            ensure_mirroring(run)
        except (ModalError, OSError) as exc:
            self.post_message(self.Notice(f"could not mirror {run.ref} from Modal: {exc}", "warning"))

    def _follow_modal(self, run: Run, note: str) -> None:
        self._reset()
        self._follow(run, MODAL)
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
        elif self.run is not None and _is_modal(self.run):
            if not self.active:
                return False
            self._modal_stop(self.run)
        else:
            if not self.active or self.run is None:
                return False
            from tui.commands.training import request_local_stop

            try:
                request_local_stop(self.run)
            except OSError as exc:
                self.post_message(self.Notice(f"could not ask {self.run.ref} to stop: {exc}", "error"))
                return False
        self.stopping = True
        self.post_message(self.Changed())
        return True

    def request_in_process_stop(self, reason: str) -> None:
        """Thread-safe (the SIGHUP handler calls it too)."""
        with self._lock:
            trainer = self.trainer
            if trainer is None:
                self._pending_stop = reason
        if trainer is not None:
            trainer.request_stop(reason)

    # =============================================================== follow
    def _poll(self) -> None:
        self._poll_timer = None
        follower, live, run = self._follower, self.live, self.run
        if follower is None or live is None or run is None:
            return
        events = follower.poll(max_bytes=CATCH_UP_BYTES)
        changed = live.feed_all(events) > 0
        problem = follower.problem
        if problem and not run.path.exists():
            self.deleted = True
            self._follower = None
            self.post_message(self.Notice(f"run {run.ref} was deleted (its directory is gone); attach to another run with a", "error"))
            self.post_message(self.Changed())
            return
        if problem and follower.bad_lines != self._bad_line_notice:
            self._bad_line_notice = follower.bad_lines
            self.post_message(self.Notice(problem, "warning"))
        if self._check_status():
            changed = True
        if changed:
            self.post_message(self.Changed())
        if len(events) >= 256:
            delay = 0.0  # catching up on a long history
        elif live.status is None and self.followed_status in (None, "running", "created"):
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
        if not force and now - self._last_status_check < STATUS_EVERY_S:
            return False
        self._last_status_check = now
        try:
            status = run.status()
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


def _is_modal(run: Run) -> bool:
    try:
        return run.remote_info() is not None
    except Exception:
        return False


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
