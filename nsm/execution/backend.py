"""Where a run trains: one interface, a backend per place, chosen in one function.

    backend = backend_for(run)                # the only code that asks where a run runs
    execution = backend.start(run)            # or backend.resume(plan_resume(run, ckpt))
    source = backend.events(run)              # an EventSource, the same for every backend
    backend.stop(run)                         # cooperative; hard=True where the place allows

Backends: "inprocess" (a thread of this process, the engine's sink pokes the
viewer), "process" (a detached local process) and "modal" (implemented in
`remote.backend`, registered by the programs that can use it, since nsm never
imports the Modal client).

Every backend takes the run's lock before training starts, so a second start
or resume of one run is refused with the holder's name, whichever backend or
process asks.
"""

from __future__ import annotations

import os
import signal
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from nsm.runs import lock as run_lock
from nsm.execution.launcher import python_command, spawn_detached
from nsm.execution.rules import ResumePlan, not_signalled_note, plan_resume, plan_stop
from nsm.execution.source import EventSource
from nsm.runs import Run
from nsm.runs.errors import RunStoreError

IN_PROCESS, PROCESS, MODAL = "inprocess", "process", "modal"
BACKEND_LABELS = {IN_PROCESS: "in-process", PROCESS: "detached process", MODAL: "Modal"}


class BackendUnavailable(RunStoreError):
    """The run's backend cannot be used from this process."""


@dataclass
class Execution:
    """A run a backend has started (or resumed)."""

    run: Run
    backend: str
    pid: int | None = None  # the process that trains it, when it is a local one
    checkpoint: str | None = None  # the checkpoint it resumed from
    # In-process only: set when the training thread returns; outcome / error then.
    done: threading.Event = field(default_factory=threading.Event)
    outcome: str | None = None
    error: str | None = None
    _stop: Callable[[str], None] | None = None
    _pending: str | None = None
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def request_stop(self, reason: str = "stop requested") -> None:
        """Thread-safe: ask the run to stop at the next step, with a checkpoint."""
        with self._guard:
            stop = self._stop
            if stop is None:
                self._pending = reason  # the engine is still being built: it hears on binding
        if stop is not None:
            stop(reason)
        elif self.backend != IN_PROCESS:
            self.run.request_stop()

    def bind_stop(self, stop: Callable[[str], None]) -> None:
        with self._guard:
            self._stop = stop
            pending = self._pending
        if pending is not None:
            stop(pending)


class Backend(ABC):
    name: str = ""
    # Starting needs the network (seconds): a UI calls start/resume/stop from a worker thread.
    slow = False

    @abstractmethod
    def start(self, run: Run, *, threads: int | None = None) -> Execution: ...

    @abstractmethod
    def resume(self, plan: ResumePlan, *, threads: int | None = None) -> Execution: ...

    def plan(self, run: Run, checkpoint: str | None = None) -> ResumePlan:
        """The resume rules for `run`, against the checkpoints where this backend keeps them."""
        return plan_resume(run, checkpoint)

    def stop(self, run: Run, *, hard: bool = False, reason: str = "stop requested") -> str:
        """Ask `run` to stop at its next step; NotStoppable when nothing trains it."""
        target = plan_stop(run)
        run.request_stop()
        signalled = False
        if target.pid is not None:
            try:
                os.kill(target.pid, signal.SIGKILL if hard else signal.SIGTERM)
                signalled = True
            except OSError:
                pass
        if hard and signalled:
            return f"killed {run.name} (pid {target.pid}); resume it later from its last checkpoint"
        return (
            f"asked {run.name} to stop at the next step (a checkpoint is written)"
            + (" · SIGTERM sent" if signalled else "")
            + not_signalled_note(target)
        )

    def events(self, run: Run, from_seq: int = 0) -> EventSource:
        return EventSource.for_viewer(run.events_path, from_seq)


# ------------------------------------------------------------------ in-process


@dataclass
class Claim:
    """A run this process may now train: its lock is held, a rewind's future moved aside."""

    run: Run
    lock: run_lock.RunLock
    resume_from: str | None


class InProcessBackend(Backend):
    """The engine in a thread of this process; `sinks` hear every event as it is written.

    `claim` (takes the lock, refuses at once) and `train` (blocking) are separate so
    that a UI can refuse in its event loop and train in its own worker thread.
    """

    name = IN_PROCESS

    def __init__(
        self,
        *,
        sinks: tuple[Callable[[dict[str, Any]], None], ...] = (),
        trainer_options: Mapping[str, Any] | None = None,
        before_train: Callable[[Execution], None] | None = None,
    ):
        self.sinks = tuple(sinks)
        self.trainer_options = dict(trainer_options or {})
        self.before_train = before_train

    def claim(self, run: Run, plan: ResumePlan | None = None) -> Claim:
        held = run_lock.acquire(run.path, run.ref, purpose="train in-process")
        try:
            # A request left from before this start is not for it; one sent from now on is
            # (the engine keeps requests newer than its process, and this process is old).
            run.clear_stop_request()
            return Claim(run, held, _prepare_resume(plan))
        except BaseException:
            held.release()
            raise

    def train(self, claim: Claim, *, threads: int | None = None, execution: Execution | None = None) -> Execution:
        """Train in the calling thread until the run ends; the lock is released at the end."""
        from nsm.training.trainer import Trainer

        run = claim.run
        execution = execution or Execution(run, IN_PROCESS, pid=os.getpid())
        execution.checkpoint = claim.resume_from
        try:
            trainer = Trainer(
                run, resume_from=claim.resume_from, sinks=list(self.sinks), threads=threads, backend=IN_PROCESS,
                lock=claim.lock, **self.trainer_options,
            )  # fmt: skip
            execution.bind_stop(trainer.request_stop)
            if self.before_train is not None:
                self.before_train(execution)
            execution.outcome = str(trainer.run())
        except BaseException as exc:
            execution.outcome = "failed"
            execution.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            claim.lock.release()
            execution.done.set()
        return execution

    def start(self, run: Run, *, threads: int | None = None) -> Execution:
        return self._in_thread(self.claim(run), threads)

    def resume(self, plan: ResumePlan, *, threads: int | None = None) -> Execution:
        return self._in_thread(self.claim(plan.run, plan), threads)

    def _in_thread(self, claim: Claim, threads: int | None) -> Execution:
        execution = Execution(claim.run, IN_PROCESS, pid=os.getpid(), checkpoint=claim.resume_from)

        def main() -> None:
            try:
                self.train(claim, threads=threads, execution=execution)
            except BaseException:  # noqa: BLE001 - kept on the execution for whoever watches it
                pass

        threading.Thread(target=main, name=f"train {claim.run.ref}", daemon=True).start()
        return execution

    def run_here(
        self, run: Run, plan: ResumePlan | None = None, *, threads: int | None = None, execution: Execution | None = None
    ) -> Execution:
        """Train in the calling thread (the CLI's attached runs, where signals must reach it).
        A stop asked of `execution` before the engine is built reaches it once it is."""
        return self.train(self.claim(run, plan), threads=threads, execution=execution)


# -------------------------------------------------------------- local process


class LocalProcessBackend(Backend):
    """The engine in a detached process of this machine (survives the terminal and the TUI)."""

    name = PROCESS

    def __init__(self, **_: Any):
        pass  # options meant for other backends (sinks, trainer hooks) do not apply to a detached process

    def start(self, run: Run, *, threads: int | None = None) -> Execution:
        return self._launch(run, None, threads)

    def resume(self, plan: ResumePlan, *, threads: int | None = None) -> Execution:
        return self._launch(plan.run, plan, threads)

    def _launch(self, run: Run, plan: ResumePlan | None, threads: int | None) -> Execution:
        held = run_lock.acquire(run.path, run.ref, purpose="launch")
        try:
            checkpoint = _prepare_resume(plan)
            action = "start" if plan is None else "resume"
            args = [action, str(run.path)]
            if checkpoint is not None:
                args += ["--checkpoint", checkpoint]
            if threads:
                args += ["--threads", str(threads)]
            command = python_command("nsm.training.worker", *args)
            run.clear_stop_request()
            proc = spawn_detached(
                command,
                cwd=run.path,
                log_path=run.log_path,
                env={run_lock.ENV_LOCK_FD: str(held.fd), run_lock.ENV_LOCK_TOKEN: held.holder.token or ""},
                pass_fds=(held.fd,),
            )
            held.rewrite(pid=proc.pid, purpose="train")
            run.write_process_info(proc.pid, backend=PROCESS, command=" ".join(command))
        except BaseException:
            held.release()
            raise
        held.detach()  # the child's copy of the descriptor keeps the lock
        return Execution(run, PROCESS, pid=proc.pid, checkpoint=checkpoint)


# -------------------------------------------------------------------- choosing

_FACTORIES: dict[str, Callable[..., Backend]] = {
    IN_PROCESS: InProcessBackend,
    PROCESS: LocalProcessBackend,
}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    _FACTORIES[name] = factory


def backend_name(run: Run, prefer: str | None = None) -> str:
    """Where `run` trains: Modal for a Modal run (it lives on the volume), else
    `prefer` (a user's choice for this start or resume), else its config's backend."""
    if run.remote_info() is not None:
        return MODAL
    if prefer in (IN_PROCESS, PROCESS):
        return prefer
    try:
        configured = run.config().get("backend")
    except RunStoreError:
        configured = None
    return configured if configured in _FACTORIES and configured != MODAL else PROCESS


def make_backend(name: str, **options: Any) -> Backend:
    factory = _FACTORIES.get(name)
    if factory is None:
        if name == MODAL:
            raise BackendUnavailable("the Modal backend is not available in this process (install modal: pip install modal)")
        raise BackendUnavailable(f"unknown backend {name!r} (allowed: {', '.join(sorted(_FACTORIES))})")
    return factory(**options)


def backend_for(run: Run, prefer: str | None = None, **options: Any) -> Backend:
    """The one place that decides which backend a run has."""
    return make_backend(backend_name(run, prefer), **options)


def _prepare_resume(plan: ResumePlan | None) -> str | None:
    """With the lock held: move a rewound run's discarded future aside; the checkpoint to load."""
    if plan is None:
        return None
    if plan.path is None:
        raise RunStoreError(f"checkpoint {plan.file} of run {plan.run.name} is not in its local folder")
    if plan.rewinds:
        from nsm.runs.timeline import discard_future

        discard_future(plan.run, plan.epoch or 0, plan.step)  # the chosen checkpoint itself stays
    return str(plan.path)
