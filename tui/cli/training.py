"""`nsm-tui train | resume | stop`: start, continue and stop runs without the UI."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from typing import Any

from nsm.config import FIELDS, RunConfig
from nsm.execution import MODAL, EventSource, NotStoppable, ResumePlan, backend_for, backend_name, follow, plan_resume
from nsm.runs import Run, RunStore, RunStoreError
from nsm.runs.names import RunNameError
from tui.cli.common import get_run, open_store
from tui.cli.console import CliError, lit, say

TERMINAL = ("finished", "interrupted", "failed")


def config_from_args(args: argparse.Namespace, domain: str, from_file: dict[str, Any] | None = None) -> RunConfig:
    """Defaults < the --config file's knobs (`from_file`) < the flags; the backend follows --backend/--detach."""
    from tui.cli.config_files import merged_config

    from_file = from_file or {}
    values: dict[str, Any] = {k: v for k, v in from_file.items() if k not in ("domain", "backend")}
    values["domain"] = domain
    for name in FIELDS:
        v = getattr(args, name, None)
        if v is not None and name not in ("domain", "backend"):
            values[name] = v
    values["backend"] = "modal" if args.backend == "modal" else ("process" if args.detach else "inprocess")
    return merged_config(values, args, from_file)


def train_domains(args: argparse.Namespace, from_file: dict[str, Any]) -> list[str]:
    """--domain wins; without it the --config file's domain; one of them is needed."""
    domain = args.domain or from_file.get("domain")
    if domain is None:
        where = f" or set domain in {args.config}" if getattr(args, "config", None) else " (or give --config FILE that sets domain)"
        raise CliError(f"--domain is required: one of causal, planning, kg or all{where}")
    return ["causal", "planning", "kg"] if domain == "all" else [domain]


def train_configs(args: argparse.Namespace) -> list[RunConfig]:
    """The config of each run `train` starts: defaults < --config file < flags. Sets args.backend."""
    from tui.cli.config_files import file_values

    from_file = file_values(args)
    if args.backend is None:
        # A file written for Modal trains there unless the command line says otherwise.
        args.backend = "modal" if from_file.get("backend") == "modal" else "local"
    return [config_from_args(args, d, from_file) for d in train_domains(args, from_file)]


def cmd_train(args: argparse.Namespace) -> int:
    configs = train_configs(args)
    domains = [c.domain for c in configs]
    if args.backend == "modal":
        from tui.cli.modal_backend import train_on_modal

        return train_on_modal(args, configs)
    if args.name and len(domains) > 1:
        raise CliError("--name names one run; with --domain all each domain gets a generated name")
    if any(cfg.device == "cuda" for cfg in configs):
        import torch

        if not torch.cuda.is_available():
            raise CliError("--device: cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
    store = open_store(args, write=True)
    if args.detach and len(configs) > 1:
        from tui.cli.sweeps import start_detached_queue

        return start_detached_queue(store, configs, label="all domains")
    outcomes = []
    for cfg in configs:
        run = _create(store, cfg, args.name)
        if args.detach:
            return _detach(run)
        outcomes.append(run_attached(run, None, json_out=args.json))
    return 0 if all(o != "failed" for o in outcomes) else 1


def _create(store: RunStore, cfg: RunConfig, name: str | None) -> Run:
    try:
        return store.create_run(cfg, name=name)
    except (RunNameError, RunStoreError) as exc:
        raise CliError(f"--name: {exc}" if isinstance(exc, RunNameError) else str(exc)) from None


def _detach(run: Run, plan: ResumePlan | None = None) -> int:
    from nsm.execution import LocalProcessBackend

    backend = LocalProcessBackend()
    try:
        execution = backend.resume(plan) if plan is not None else backend.start(run)
    except RunStoreError as exc:
        raise CliError(str(exc)) from None
    say(f"{'resumed' if plan else 'started'} [bold]{lit(run.name)}[/] in the background (pid {execution.pid})" + (f" from {lit(plan.describe())}" if plan else ""))
    say(f"  follow it:  nsm-tui attach {lit(run.name)}   (or: nsm-tui attach {lit(run.name)} --headless)")
    say(f"  stop it:    nsm-tui stop {lit(run.name)}")
    say(f"  its output: {lit(run.log_path)}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    store = open_store(args)
    run = get_run(store, args.run)
    if backend_name(run) == MODAL:
        from tui.cli.modal_backend import resume_remote

        return resume_remote(run, args)
    try:
        run.run_config()  # a corrupt config.json: one line now, not a failed run later
    except RunStoreError as exc:
        raise CliError(str(exc)) from None
    if getattr(args, "restart", False):
        return _restart(run, args)
    plan = resume_plan(run, args.checkpoint)
    if args.detach:
        return _detach(run, plan)
    return 0 if run_attached(run, plan, json_out=args.json) != "failed" else 1


def _restart(run: Run, args: argparse.Namespace) -> int:
    """`resume RUN --restart`: a run that never reached a checkpoint starts again from scratch."""
    from nsm.execution.rules import check_restart
    from nsm.runs import lock as run_lock
    from nsm.runs.timeline import set_aside_for_restart

    if args.checkpoint is not None:
        raise CliError("--restart starts from scratch: it takes no --checkpoint")
    try:
        check_restart(run)
        with run_lock.acquire(run.path, run.ref, purpose="restart"):
            moved = set_aside_for_restart(run)
    except RunStoreError as exc:
        raise CliError(str(exc)) from None
    if moved is not None:
        say(f"set the earlier attempt of {lit(run.name)} aside in {lit(moved)}")
    if args.detach:
        return _detach(run)
    return 0 if run_attached(run, None, json_out=args.json) != "failed" else 1


def resume_plan(run: Run, chosen: str | None) -> ResumePlan:
    """The execution layer's resume rules, as a one-line CLI error when they say no."""
    try:
        return plan_resume(run, chosen)
    except RunStoreError as exc:
        raise CliError(str(exc)) from None


def cmd_stop(args: argparse.Namespace) -> int:
    store = open_store(args)
    run = get_run(store, args.run)
    if backend_name(run) == MODAL:
        from tui.cli.modal_backend import stop_remote

        return stop_remote(run, args)
    after = run.state().last_seq
    try:
        message = backend_for(run).stop(run, hard=bool(getattr(args, "hard", False)))
    except NotStoppable as exc:
        raise CliError(str(exc), code=1) from None
    except RunStoreError as exc:
        raise CliError(str(exc)) from None
    say(lit(message))
    if args.wait is None:
        return 0
    end = wait_for_end(run, args.wait, after_seq=after)
    if end is None:
        raise CliError(f"run {run.name} did not stop within {args.wait:g} s", code=1)
    say(f"run {lit(run.name)}: {lit(end['type'])}" + (f" (checkpoint {lit(end['checkpoint'])})" if end.get("checkpoint") else ""))
    return 0


def wait_for_end(run: Run, timeout: float, after_seq: int | None = None) -> dict[str, Any] | None:
    """The run's next terminal event within `timeout` (or what its status says when its trainer is gone)."""
    start = run.state().last_seq if after_seq is None else after_seq
    source = EventSource(run.events_path, from_seq=start + 1, condense=("progress", "gpu"))
    end = follow(source, lambda _e: None, alive=lambda: run.status() == "running", timeout=timeout)
    if end is not None:
        _wait_unlocked(run, 10.0)
    if end is None and run.status() != "running":
        terminal = [e for e in run.events(start + 1) if e.get("type") in TERMINAL]
        return terminal[-1] if terminal else {"type": run.status()}
    return end


def _wait_unlocked(run: Run, timeout: float) -> None:
    # The final event is written a moment before the trainer lets go of the run.
    from nsm.runs.lock import holder

    deadline = time.monotonic() + timeout
    while holder(run.path) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def cmd_attach_headless(args: argparse.Namespace) -> int:
    """`nsm-tui attach RUN --headless`: the run's progress as lines here, until it ends.
    ctrl+c leaves the run alone (it only stops following)."""
    store = open_store(args)
    run = get_run(store, args.run)
    if backend_name(run) == MODAL:
        from tui.cli.modal_backend import cmd_attach_remote

        return cmd_attach_remote(args)
    from tui.cli.progress import ProgressView

    json_out = bool(getattr(args, "json", False))
    view = ProgressView(run.name, quiet=json_out)
    source = backend_for(run).events(run)
    stop = threading.Event()

    def on_sigint(*_: object) -> None:
        stop.set()
        view.stopping(f"stopped following {run.name}; it goes on")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with view:
            if run.state().attempts == 0 and run.status() == "running":
                view.preparing(_config_dict(run))  # started, still making its dataset: no event yet
            end = follow(source, view.on_event, alive=lambda: run.status() == "running", stop=stop)
            if end is None and not stop.is_set():
                # History shown, no final event and nobody trains it: say what it is.
                view.note(f"run {run.name} is {run.status()} (no final event); resume it with: nsm-tui resume {run.name}")
    finally:
        signal.signal(signal.SIGINT, previous)
    if stop.is_set():
        say(f"follow it again with: nsm-tui attach {lit(run.name)} --headless")
        return 0
    outcome = end["type"] if end else run.status()
    view.summary(run, outcome, json_out)
    return 0 if outcome != "failed" else 1


# ---------------------------------------------------------------- attached runs


def _config_dict(run: Run) -> dict[str, Any]:
    try:
        return run.run_config().to_dict()
    except Exception:  # the engine reports a bad config; here it only names the dataset
        return {}


def run_attached(run: Run, plan: ResumePlan | None, json_out: bool = False) -> str:
    """Train in this process with a progress display; ctrl+c asks for a cooperative stop."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from nsm.execution import IN_PROCESS, Execution, InProcessBackend

    from tui.cli.progress import ProgressView

    view = ProgressView(run.name, quiet=json_out)
    execution = Execution(run, IN_PROCESS, pid=os.getpid())  # a stop before the engine exists waits in it
    stops = {"n": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stops["n"] += 1
        execution.request_stop(f"received {signal.Signals(signum).name}")
        if stops["n"] == 1:
            # The bars end here, once: what follows is the stop's own lines, then the end.
            view.stopping("stopping at the next step; a checkpoint will be written (ctrl+c again does not kill it)")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with view:
            view.start_clock(run.state().started)  # a resume: the clock of the run's first start
            view.preparing(_config_dict(run))
            InProcessBackend(sinks=(view.on_event,)).run_here(run, plan, execution=execution)
    except RunStoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    outcome = execution.outcome or "failed"
    view.summary(run, outcome, json_out)
    return outcome
