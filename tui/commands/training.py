"""`nsm-tui train | resume | stop`: start, continue and stop runs without the UI."""

from __future__ import annotations

import argparse
import os
import signal
import time
from typing import Any

from nsm.config import FIELDS, ConfigError, RunConfig, validate_config
from nsm.runs import Run, RunStore, RunStoreError
from nsm.runs.names import RunNameError
from tui.commands.common import get_run, open_store
from tui.console import CliError, say

TERMINAL = ("finished", "interrupted", "failed")


def config_from_args(args: argparse.Namespace, domain: str) -> RunConfig:
    values: dict[str, Any] = {"domain": domain}
    for name in FIELDS:
        v = getattr(args, name, None)
        if v is not None and name not in ("domain", "backend"):
            values[name] = v
    values["backend"] = "modal" if args.backend == "modal" else ("process" if args.detach else "inprocess")
    try:
        return validate_config(values)
    except ConfigError as exc:
        first = next(iter(exc.errors.items()))
        raise CliError(f"--{first[0].replace('_', '-')}: {first[1]}") from None


def cmd_train(args: argparse.Namespace) -> int:
    domains = ["causal", "planning", "kg"] if args.domain == "all" else [args.domain]
    configs = [config_from_args(args, d) for d in domains]
    if args.backend == "modal":
        from tui.commands.modal_backend import train_on_modal

        return train_on_modal(args, configs)
    if args.name and len(domains) > 1:
        raise CliError("--name names one run; with --domain all each domain gets a generated name")
    store = open_store(args)
    if args.detach and len(configs) > 1:
        from tui.commands.sweeps import start_detached_queue

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


def _detach(run: Run, **kwargs: Any) -> int:
    from nsm.training.launch import launch_detached

    pid = launch_detached(run, **kwargs)
    say(f"started [bold]{run.name}[/] in the background (pid {pid})")
    say(f"  follow it:  nsm-tui attach {run.name}")
    say(f"  stop it:    nsm-tui stop {run.name}")
    say(f"  its output: {run.path / 'train.log'}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    store = open_store(args)
    run = get_run(store, args.run)
    if run.remote_info():
        from tui.commands.modal_backend import resume_remote

        return resume_remote(run, args)
    checkpoint = resume_checkpoint(run, args.checkpoint)
    if args.detach:
        return _detach(run, resume=True, checkpoint=checkpoint)
    return 0 if run_attached(run, checkpoint, json_out=args.json) != "failed" else 1


def resume_checkpoint(run: Run, chosen: str | None) -> str:
    """The checkpoint to resume from, or a CliError saying why there is none."""
    status = run.status()
    if status == "running":
        info = run.process_info() or {}
        raise CliError(f"run {run.name} is still running (pid {info.get('pid', '?')}); stop it first")
    if chosen is not None:
        path = run.path / chosen if not os.path.isabs(chosen) else chosen
        if not os.path.exists(path):
            names = ", ".join(c.file for c in run.checkpoints()) or "none"
            raise CliError(f"--checkpoint: {chosen} is not a checkpoint of run {run.name} (it has: {names})")
        return str(path)
    if status == "finished":
        state = run.state()
        raise CliError(
            f"run {run.name} already finished ({state.reason or 'completed'} after {state.epoch} epochs); "
            "pick an earlier point with --checkpoint to train from there again"
        )
    latest = run.latest_checkpoint()
    if latest is None:
        raise CliError(f"run {run.name} has no checkpoint to resume from; start a new run instead")
    return str(latest.path)


def cmd_stop(args: argparse.Namespace) -> int:
    store = open_store(args)
    run = get_run(store, args.run)
    if run.remote_info():
        from tui.commands.modal_backend import stop_remote

        return stop_remote(run, args)
    status = run.status()
    if status != "running":
        raise CliError(f"run {run.name} is not running (status: {status})", code=1)
    signalled = request_local_stop(run)
    say(f"asked [bold]{run.name}[/] to stop at the next step" + (" (SIGTERM sent)" if signalled else ""))
    if args.wait is None:
        return 0
    end = wait_for_end(run, args.wait)
    if end is None:
        raise CliError(f"run {run.name} did not stop within {args.wait:g} s", code=1)
    say(f"run {run.name}: {end['type']}" + (f" (checkpoint {end['checkpoint']})" if end.get("checkpoint") else ""))
    return 0


def request_local_stop(run: Run) -> bool:
    """Flag file (works everywhere) plus SIGTERM when the process is ours and on this host."""
    from nsm.runs import pid_alive
    from nsm.runs.process import this_host

    run.request_stop()
    info = run.process_info() or {}
    pid = info.get("pid")
    if info.get("backend") == "process" and info.get("host") == this_host() and pid and pid != os.getpid() and pid_alive(pid):
        try:
            os.kill(int(pid), signal.SIGTERM)
            return True
        except OSError:
            return False
    return False


def wait_for_end(run: Run, timeout: float) -> dict[str, Any] | None:
    follower = run.follower(from_seq=max(0, run.state().last_seq + 1))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in follower.poll():
            if event.get("type") in TERMINAL:
                return event
        if run.status() not in ("running",):
            terminal = [e for e in run.events() if e.get("type") in TERMINAL]
            return terminal[-1] if terminal else {"type": run.status()}
        time.sleep(0.2)
    return None


# ---------------------------------------------------------------- attached runs


def run_attached(run: Run, checkpoint: str | None, json_out: bool = False) -> str:
    """Train in this process with a progress display; ctrl+c asks for a cooperative stop."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from nsm.training.trainer import Trainer

    from tui.commands.progress import ProgressView

    view = ProgressView(run.name, quiet=json_out)
    trainer = Trainer(run, resume_from=checkpoint, sinks=[view.on_event], backend="inprocess")
    stops = {"n": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stops["n"] += 1
        trainer.request_stop(f"received {signal.Signals(signum).name}")
        if stops["n"] == 1:
            view.note("stopping at the next step; a checkpoint will be written (ctrl+c again does not kill it)")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with view:
            outcome = trainer.run()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    view.summary(run, outcome, json_out)
    return outcome
