"""`--backend modal` for the headless commands: train, resume, stop, attach,
and the volume's runs (list --remote, download).

Attached runs stream their events here and into the local store; ctrl+c
once asks the run to stop (checkpoint saved and committed), twice leaves it
running on Modal with a mirror process keeping the local store up to date.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Callable, Sequence

from nsm.config import RunConfig
from nsm.execution import EventSource, follow
from nsm.execution.render import render_text
from nsm.runs import Run
from remote import config as rc
from remote.client import ModalClient
from remote.errors import MirrorBusy, ModalError, ModalNotConfigured
from remote.follow import DETACHED, FollowControl, FollowResult, RunFollower
from remote.launch import (
    discard,
    prepare_existing,
    prepare_runs,
    resume_request,
    spawn_prepared,
    stop_run,
    wait_for_terminal,
)
from remote.mirror import mirror_running, start_mirror_process
from remote.runs import update_remote_info, write_remote_info
from tui.cli.common import get_run, open_store
from tui.cli.console import CliError, lit, plain, print_json, print_table, say


def make_client() -> ModalClient:
    """The Modal client of this command (tests replace it with one over a fake Modal)."""
    from remote.backend import shared_client

    return shared_client()


def preflight() -> None:
    """Token and app, before anything is written (a sweep's folders): CliError when Modal cannot take runs."""
    client = make_client()
    try:
        client.functions()
    except ModalError as exc:
        raise _cli_error(exc) from None


def _cli_error(exc: ModalError) -> CliError:
    # No token is a set-up problem the user fixes before retrying: like bad input, exit 2.
    return CliError(str(exc), code=2 if isinstance(exc, ModalNotConfigured) else 1)


def _gpu(args: argparse.Namespace, configs: Sequence[RunConfig]) -> str:
    raw = getattr(args, "gpu", None) or (configs[0].gpu if configs else None)
    try:
        return rc.gpu_choice(raw)
    except rc.GpuChoiceError as exc:
        raise CliError(f"--gpu: {exc}") from None


def _price(gpu: str, n: int = 1) -> str:
    price = rc.price_per_hour(gpu)
    if price is None:
        return f"{gpu} (price: see {rc.PRICING_URL})"
    total = f", ${price * n:.2f}/h for {n} at once" if n > 1 else ""
    return f"{gpu} at about ${price:.2f} per GPU-hour{total} (list price {rc.PRICES_AS_OF})"


# ===================================================================== train


def train_on_modal(
    args: argparse.Namespace,
    configs: list[RunConfig],
    max_parallel: int | None = None,
    runs: Sequence[Run] | None = None,
) -> int:
    """`nsm-tui train --backend modal`: one run, the three domains (in
    parallel), or a sweep's points (in parallel, at most `max_parallel` at
    once). With `runs` (a sweep's pending points, already in the store),
    those runs go to Modal instead of new ones."""
    name = getattr(args, "name", None)
    if runs is not None:
        configs = [r.run_config() for r in runs]
    if name and len(configs) > 1:
        raise CliError("--name names one run; with several runs each gets a generated name")
    gpu = _gpu(args, configs)
    store = open_store(args)
    client = make_client()
    json_out = bool(getattr(args, "json", False))
    client.note = (lambda text: print(plain(text), file=sys.stderr)) if json_out else (lambda text: say(lit(text)))
    try:
        mode = "detached" if args.detach or len(configs) > 1 else "attached"
        if runs is not None:
            prepared = prepare_existing(client, runs, gpu=gpu, mode=mode)
        else:
            prepared = prepare_runs(client, store, configs, gpu=gpu, names=[name] * len(configs), mode=mode)
        if not json_out:
            say(f"training on Modal: {_price(gpu, min(len(configs), max_parallel or len(configs)))}")
        if args.detach:
            runs = spawn_prepared(client, prepared, gpu=gpu, max_parallel=max_parallel)
            return _report_detached(runs, json_out)
        if len(prepared) == 1:
            try:
                return _follow_one(client, prepared[0].run, json_out, request=prepared[0].request)
            except ModalError:
                discard(prepared)  # Modal never took it: leave nothing behind
                raise
        runs = spawn_prepared(client, prepared, gpu=gpu, max_parallel=max_parallel, start_mirrors=False)
        return _follow_many(client, runs, json_out)
    except ModalError as exc:
        raise _cli_error(exc) from None


def _report_detached(runs: list[Run], json_out: bool) -> int:
    if json_out:
        print_json([_run_json(r) for r in runs])
        return 0
    for run in runs:
        info = run.remote_info() or {}
        say(f"started [bold]{lit(run.name)}[/] on Modal (function call {lit(info.get('function_call_id'))})")
        say(f"  follow it:    nsm-tui attach {lit(run.name)}")
        say(f"  stop it:      nsm-tui stop {lit(run.name)}")
        say(f"  checkpoints:  volume {rc.VOLUME_NAME}, {lit(info.get('volume_path'))}/")
    return 0


def _run_json(run: Run, result: FollowResult | None = None) -> dict[str, Any]:
    info = run.remote_info() or {}
    return {
        "run": run.name,
        "domain": run.domain,
        "path": str(run.path),
        "function_call_id": info.get("function_call_id"),
        "gpu": info.get("gpu"),
        "volume_path": info.get("volume_path"),
        "outcome": result.outcome if result else None,
        "error": result.error if result else None,
        "results": run.results() if result and result.outcome == "finished" else None,
    }


class _Interrupts:
    """ctrl+c once: stop the run(s) with a checkpoint; twice: leave them running on Modal."""

    def __init__(self, control: FollowControl, note: Callable[[str], None]):
        self.control = control
        self.note = note
        self.count = 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.count += 1
        if self.count == 1 and signum == signal.SIGINT:
            self.control.stop.set()
            self.note("stopping at the next step (a checkpoint is saved on the volume); ctrl+c again leaves it running")
        else:
            self.control.detach.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _follow_one(client: ModalClient, run: Run, json_out: bool, request: dict[str, Any] | None = None) -> int:
    from tui.cli.progress import ProgressView

    view = ProgressView(run.name, quiet=json_out)
    control = FollowControl()
    follower = RunFollower(run, client, on_event=view.on_event, on_note=view.note, control=control)
    with _Interrupts(control, view.stopping), view:  # ctrl+c takes the bars down once
        result = follower.attach_stream(request) if request is not None else follower.follow()
    return _conclude(run, result, json_out, view)


def _conclude(run: Run, result: FollowResult, json_out: bool, view: Any = None) -> int:
    if result.outcome == DETACHED:
        pid = start_mirror_process(run)
        if json_out:
            print_json(_run_json(run, result))
        else:
            say(f"left [bold]{lit(run.name)}[/] running on Modal" + (f" (mirror pid {pid})" if pid else ""))
            say(f"  re-attach:  nsm-tui attach {lit(run.name)}")
            say(f"  stop it:    nsm-tui stop {lit(run.name)}")
        return 0
    if json_out:
        print_json(_run_json(run, result))
    elif view is not None and result.outcome in ("finished", "interrupted", "failed"):
        view.summary(run, result.outcome, False)
    if result.outcome == "failed":
        say(f"run {lit(run.name)} failed on Modal: {lit(result.error)}")
        return 1
    if result.outcome not in ("finished", "interrupted"):
        # unknown (Modal did not answer), lost, superseded: one line on stderr, like any failure
        raise CliError(f"run {run.name}: {result.outcome}" + (f" ({result.error})" if result.error else ""), code=1)
    return 0


def _follow_many(client: ModalClient, runs: list[Run], json_out: bool) -> int:
    lock = threading.Lock()

    def line(run: Run, text: str) -> None:
        if not json_out:
            with lock:
                print(plain(f"[{run.ref}] {text}"), flush=True)

    control = FollowControl()
    results: dict[Run, FollowResult] = {}
    errors: dict[Run, BaseException] = {}

    def follow(run: Run) -> None:
        follower = RunFollower(
            run, client, on_event=lambda e: _event_line(run, e, line), on_note=lambda t: line(run, t), control=control
        )
        try:
            results[run] = follower.follow()
        except BaseException as exc:  # reported below, per run
            errors[run] = exc

    threads = [threading.Thread(target=follow, args=(r,), name=f"follow {r.ref}", daemon=True) for r in runs]
    with _Interrupts(control, lambda text: print(plain(text), file=sys.stderr, flush=True)):
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.2)
    code = 0
    rows = []
    for run in runs:
        result = results.get(run)
        if result is None:
            result = FollowResult("failed", str(errors.get(run) or "the follower stopped"))
        if result.outcome == DETACHED:
            start_mirror_process(run)
        if result.outcome not in ("finished", "interrupted", DETACHED):
            code = 1
        rows.append((run, result))
    if json_out:
        print_json([_run_json(r, res) for r, res in rows])
        return code
    table = []
    for run, res in rows:
        state = run.state()
        table.append((run.domain, run.name, res.outcome, state.epoch, state.best_val_acc, state.test_acc, res.error or ""))
    print_table("Modal runs", ["domain", "run", "outcome", "epochs", "best val acc", "test acc", "error"], table)
    if any(res.outcome == DETACHED for _, res in rows):
        say("left running on Modal; re-attach with: nsm-tui attach RUN")
    return code


def _event_line(run: Run, e: dict[str, Any], line: Callable[[Run, str], None]) -> None:
    for text in render_text(e):
        line(run, text)


# ============================================================ resume / stop


def resume_remote(run: Run, args: argparse.Namespace) -> int:
    """`nsm-tui resume RUN` for a Modal run: continue on Modal from the volume's checkpoint."""
    client = make_client()
    json_out = bool(getattr(args, "json", False))
    try:
        if mirror_running(run):
            raise CliError(f"run {run.name} is being followed by another nsm-tui process; stop it first", code=1)
        before = dict(run.remote_info() or {})
        request = resume_request(client, run, getattr(args, "checkpoint", None))
        gpu = request["gpu"]
        if not json_out:
            say(f"resuming {run.name} on Modal from {request['resume']}: {_price(gpu)}")
        try:
            if getattr(args, "detach", False):
                (call_id,) = client.spawn([request], gpu)
                update_remote_info(run, function_call_id=call_id, mode="detached")
                start_mirror_process(run)
                return _report_detached([run], json_out)
            update_remote_info(run, mode="attached")
            return _follow_one(client, run, json_out, request=request)
        except ModalError:
            if run.remote_info() and not run.remote_info().get("function_call_id"):
                write_remote_info(run, before)  # Modal never took the resume: the run is as it was
            raise
    except ModalError as exc:
        raise _cli_error(exc) from None


def stop_remote(run: Run, args: argparse.Namespace) -> int:
    """`nsm-tui stop RUN [--hard] [--wait S]` for a Modal run: the stop flag the
    engine polls; with --wait, a hard cancel if it has not stopped in time."""
    client = make_client()
    hard = bool(getattr(args, "hard", False))
    wait = getattr(args, "wait", None)
    state = run.state()
    info = run.remote_info() or {}
    try:
        if info.get("ended") and state.status is not None and not hard:
            raise CliError(f"run {run.name} is not running on Modal (status: {state.status})", code=1)
        say(lit(stop_run(client, run, hard=hard)))
        if wait is None:
            if not mirror_running(run):
                start_mirror_process(run)  # the run's last events must reach the local store
            return 0
        end = _wait_mirrored(client, run, wait)
        if end is None and not hard:
            say(f"run {lit(run.name)} did not stop within {wait:g} s: cancelling its Modal call (hard stop)")
            say(lit(stop_run(client, run, hard=True)))
            end = _wait_mirrored(client, run, 30.0)
        if end is None:
            raise CliError(f"run {run.name} did not report its end within the wait; see nsm-tui attach {run.name}", code=1)
        say(f"run {lit(run.name)}: {lit(end['type'])}" + (f" (checkpoint {lit(end['checkpoint'])})" if end.get("checkpoint") else ""))
        return 0
    except ModalError as exc:
        raise _cli_error(exc) from None


def _wait_mirrored(client: ModalClient, run: Run, timeout: float) -> dict[str, Any] | None:
    """The run's terminal event, mirrored here within `timeout` (by a mirror
    process if one runs, else by a follower in this process)."""
    after = run.state().last_seq
    if mirror_running(run):
        return wait_for_terminal(run, timeout, after_seq=after)
    control = FollowControl()
    timer = threading.Timer(timeout, control.detach.set)
    timer.daemon = True
    timer.start()
    try:
        RunFollower(run, client, control=control).follow()
    except MirrorBusy:
        return wait_for_terminal(run, timeout, after_seq=after)
    finally:
        timer.cancel()
    ends = [e for e in run.events(after + 1) if e.get("type") in ("finished", "interrupted", "failed")]
    return ends[-1] if ends else None


# ==================================================================== attach


def cmd_attach_remote(args: argparse.Namespace) -> int:
    """`nsm-tui attach RUN --headless` for a Modal run: re-attach to its events
    from the last local seq (queue, else the volume's log) and follow it here."""
    store = open_store(args)
    run = get_run(store, args.run)
    if run.remote_info() is None:
        raise CliError(f"run {run.name} is not a Modal run; open it with: nsm-tui attach {run.name}")
    client = make_client()
    json_out = bool(getattr(args, "json", False))
    try:
        if mirror_running(run):
            return _tail_local(run, json_out)
        return _follow_one(client, run, json_out)
    except ModalError as exc:
        raise _cli_error(exc) from None


def _tail_local(run: Run, json_out: bool) -> int:
    """Another process mirrors the run: show its local log as it grows."""
    from tui.cli.progress import ProgressView

    view = ProgressView(run.name, quiet=json_out)
    view.note(f"run {run.name} is mirrored by another nsm-tui process; following the local copy")
    with view:
        follow(EventSource.for_viewer(run.events_path), view.on_event, alive=lambda: mirror_running(run), poll_s=0.5)
    state = run.state()
    result = FollowResult(state.status or "lost", state.error)
    return _conclude(run, result, json_out, view)


def prepare_attach(run: Run) -> str | None:
    """Before the TUI opens on a Modal run: make sure a mirror brings its events
    into the local store. Returns a note for the user, or None."""
    if run.remote_info() is None:
        return None
    info = run.remote_info() or {}
    if run.state().status is not None and info.get("ended"):
        return None
    pid = start_mirror_process(run)
    return f"mirroring {run.name} from Modal (pid {pid})" if pid else None


# ==================================================================== volume


def cmd_remote_list(args: argparse.Namespace) -> int:
    """`nsm-tui runs list --remote`: the runs and checkpoints on the volume."""
    from remote.volume import list_remote_runs, summarize

    store = open_store(args)
    client = make_client()
    try:
        rows = summarize(list_remote_runs(client, getattr(args, "domain", None)), store)
    except ModalError as exc:
        raise _cli_error(exc) from None
    if getattr(args, "json", False):
        print_json(rows)
        return 0
    if not rows:
        say(f"no runs on the volume {rc.VOLUME_NAME}")
        return 0
    from tui.cli.common import size_text as _size
    from tui.cli.common import when_text as _when

    print_table(
        f"runs on the Modal volume {rc.VOLUME_NAME} (mounted at {rc.MOUNT})",
        ["domain", "run", "state", "checkpoints", "size", "modified", "local copy"],
        [
            (
                r["domain"],
                r["run"],
                "finished" if r["finished"] else "-",
                len(r["checkpoints"]),
                _size(r["size"]),
                _when(r["modified"]),
                "yes" if r["local"] else "no",
            )
            for r in rows
        ],
    )
    say("download one with: nsm-tui runs download RUN [--checkpoint FILE | --all]")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """`nsm-tui runs download RUN [--checkpoint FILE]... [--all]`."""
    from remote.volume import download_run

    store = open_store(args)
    client = make_client()
    try:
        run, fetched = download_run(
            client,
            store,
            args.run,
            checkpoints=getattr(args, "checkpoint", None) or None,
            all_checkpoints=bool(getattr(args, "all", False)),
        )
    except ModalError as exc:
        raise _cli_error(exc) from None
    if getattr(args, "json", False):
        print_json({"run": run.name, "domain": run.domain, "path": str(run.path), "fetched": fetched})
        return 0
    say(f"[bold]{lit(run.ref)}[/] in {lit(run.path)}: " + (lit(", ".join(fetched)) if fetched else "already up to date"))
    say(f"  evaluate it:  nsm-tui eval {lit(run.name)}" + (f" --checkpoint {lit(fetched[-1])}" if fetched and fetched[-1].endswith(".pt") else ""))
    return 0


__all__ = [
    "cmd_attach_remote",
    "cmd_download",
    "cmd_remote_list",
    "make_client",
    "prepare_attach",
    "resume_remote",
    "stop_remote",
    "train_on_modal",
]
