"""`nsm-tui sweep …`: define a grid (or a list of configs), queue its points, run them
one after another, stop, resume, and show the queue and the results table.

`start_detached_queue` is also what `nsm-tui train --domain all --detach` uses:
a queue is just a sweep whose points are given, one run per config.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any, Sequence

from nsm.config import DOMAINS, FIELDS, RunConfig
from nsm.runs import RunStore
from nsm.sweeps import (
    DEFAULT_RANKING,
    DONE,
    FAILED,
    METRICS,
    Axis,
    GridError,
    Sweep,
    SweepBusy,
    SweepError,
    SweepSnapshot,
    check_metric,
    create_sweep,
    format_value,
    get_sweep,
    grid_points,
    list_sweeps,
    request_stop,
    load_config_list,
    parse_axes,
    point_configs,
    ranking_metric,
    repeat_over_seeds,
    result_rows,
    snapshot,
)
from nsm.runs.compare import ood_label
from nsm.sweeps.results import GroupRow, group_metrics, group_rows, is_grouped, ood_metric, ood_splits
from tui.cli import console
from tui.cli.console import CliError, fmt, lit, plain, print_json, print_table, say
from tui.columns import RICH_BOX, Column, fit_columns, knob_column, terminal_width

# ------------------------------------------------------------------ parser
# The lead calls add_sweep_parser(sub) from tui/cli.py:build_parser and
# dispatches `args.command == "sweep"` to cmd_sweep(args).


def add_sweep_parser(sub: Any) -> None:
    """The `sweep` command and its actions (resume, stop, show, list)."""
    from tui.cli.flags import TRAIN_KNOBS, add_knob_flags, add_runs_dir

    p = sub.add_parser(
        "sweep",
        help="queue a grid of configs (or a list) and train them one after another",
        description=(
            "Create a sweep and run it: the cartesian product of the --grid rows (or the configs of "
            "--configs FILE) on top of the base config given by the knob flags. Each point is a normal "
            "run named SWEEP-NN (over --seeds N: SWEEP-NN-sSEED, one run per seed). ctrl+c stops after a "
            "checkpoint; finished points are kept and `nsm-tui sweep resume NAME` continues."
        ),
    )
    p.add_argument(
        "--domain",
        type=_domains,
        default=None,
        metavar="{" + ",".join(DOMAINS) + ",all}",
        help="reasoning domain; several (comma-separated) or 'all' add a domain axis to the grid",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KNOB=V1,V2,...",
        help="a grid axis, e.g. --grid lr=1e-3,1e-4 --grid cycle_weight=0.01,0.05 (repeat for more axes; "
        "one value fixes a knob, also hidden ones such as hidden=64)",
    )
    p.add_argument("--configs", default=None, metavar="FILE", help='a JSON list of configs instead of a grid, e.g. [{"lr": 0.001}, {"lr": 0.0003}]')
    p.add_argument(
        "--seeds", type=_positive, default=1, metavar="N",
        help="run every point N times, with SEED, SEED+1, ... (default 1); the results then show each point's "
        "mean ± 95%% CI over its seeds and mark (≈) the points within the noise of the best (Welch t-test, p ≥ 0.05). "
        "Not with a grid row over SEED",
    )  # fmt: skip
    p.add_argument("--config", default=None, metavar="FILE", help="a TOML base config (`nsm-tui config save`); knob flags and the grid override it")
    add_knob_flags(p, TRAIN_KNOBS)
    p.add_argument("--name", default=None, help="sweep name (default: generated); its runs are NAME-01, NAME-02, ...")
    p.add_argument("--detach", action="store_true", help="run the queue in the background and return at once")
    p.add_argument("--backend", choices=("local", "modal"), default=None, help="local (default): one point after another; modal: points in parallel on Modal GPUs")
    p.add_argument("--gpu", default=None, help="Modal GPU type, e.g. A100-40GB, H100 (modal backend)")
    p.add_argument("--max-parallel", type=_positive, default=4, metavar="N", help="modal backend: at most N points at once (default 4)")
    _add_parallel_flag(p)
    p.add_argument("--metric", type=_metric, default=None, metavar="{" + ",".join(METRICS) + "}", help="rank the results by (default best_val_loss; ties: the other validation metric)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_runs_dir(p)

    actions = p.add_subparsers(dest="sweep_command", metavar="ACTION", parser_class=type(p))
    q = actions.add_parser("resume", help="run the rest of a stopped sweep (an interrupted point continues from its checkpoint)")
    q.add_argument("sweep", metavar="NAME")
    q.add_argument("--detach", action="store_true", help="in the background")
    q.add_argument("--retry-failed", action="store_true", help="also run the failed points again")
    _add_parallel_flag(q)
    q.add_argument("--json", action="store_true")
    add_runs_dir(q)
    q = actions.add_parser("stop", help="stop a running sweep after a checkpoint of its current point")
    q.add_argument("sweep", metavar="NAME")
    q.add_argument("--wait", type=float, default=None, metavar="SECONDS", help="wait for it to stop")
    add_runs_dir(q)
    q = actions.add_parser("show", help="the queue and the results table of a sweep")
    q.add_argument("sweep", metavar="NAME")
    q.add_argument("--metric", type=_metric, default=None, metavar="{" + ",".join(METRICS) + "}")
    from tui.cli.records import add_format_flag

    add_format_flag(
        q, help_text="table (default), csv or json: the results table, one row per point (sorted by --metric), with a "
        "<split>_acc column per out-of-distribution split when the points have them; over several "
        "seeds one row per grid point with <metric>_mean, _std, _ci95, _n columns and within_noise_of_best",
    )  # fmt: skip
    q.add_argument("--per-run", action="store_true", help="over several seeds: one row per run instead of per grid point")
    q.add_argument("--json", action="store_true", help="the whole sweep (queue, results, best) as one JSON document")
    add_runs_dir(q)
    q = actions.add_parser("list", help="sweeps and queues with their state")
    q.add_argument("--json", action="store_true")
    add_runs_dir(q)


def _add_parallel_flag(p: Any) -> None:
    p.add_argument(
        "--parallel", type=_parallel, default=None, metavar="N|auto",
        help="local sweeps: train N points at once on this machine, each in its own process with its share of the "
        "CPU threads; auto (default) sizes N from free GPU memory and utilisation, or from the cores",
    )  # fmt: skip


def _parallel(raw: str) -> int | str:
    from nsm.sweeps.packing import ParallelError, parse_parallel

    try:
        return parse_parallel(raw)
    except ParallelError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--parallel ")) from None


def _packing(sweep: Sweep, args: argparse.Namespace, retry_failed: bool) -> Any:
    """How many points at once (`--parallel`, default auto), said in one line."""
    from nsm.sweeps.packing import AUTO, packing_for

    packing = packing_for(sweep, getattr(args, "parallel", None) or AUTO, retry_failed=retry_failed)
    if not getattr(args, "json", False):
        say(lit(packing.line()))
    return packing


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 (got {raw!r})")
    return value


def _domains(raw: str) -> list[str]:
    items = [d.strip().lower() for d in raw.split(",") if d.strip()]
    if items == ["all"]:
        return list(DOMAINS)
    bad = [d for d in items if d not in DOMAINS]
    if bad or not items or len(set(items)) != len(items):
        raise argparse.ArgumentTypeError(
            f"DOMAIN must be one of {', '.join(DOMAINS)}, a comma list of them, or all (got {raw!r})"
        )
    return items


def _metric(raw: str) -> str:
    try:
        return check_metric(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ---------------------------------------------------------------- commands


def cmd_sweep(args: argparse.Namespace) -> int:
    from tui.cli.common import open_store

    action = getattr(args, "sweep_command", None)
    store = open_store(args, write=action is None)
    if action is None:
        return _cmd_create(args, store)
    return {"resume": _cmd_resume, "stop": _cmd_stop, "show": _cmd_show, "list": _cmd_list}[action](args, store)


def sweep_configs(args: argparse.Namespace) -> tuple[list[RunConfig], list[Axis]]:
    """The points the flags describe; CliError naming the flag that is wrong.
    The base config: the defaults < the --config file < the knob flags; the grid varies it."""
    from tui.cli.config_files import file_values

    from_file = file_values(args)
    if from_file.get("backend") == "modal" and getattr(args, "backend", None) is None:
        args.backend = "modal"
    domains: list[str] | None = args.domain
    try:
        axes = parse_axes(args.grid)
    except GridError as exc:
        raise CliError(f"--grid: {exc}") from None
    if domains is None and "domain" in from_file and not any(a.knob == "domain" for a in axes):
        domains = [from_file["domain"]]  # the file's domain, unless --domain or the grid sets it
    if args.configs and axes:
        raise CliError("--configs and --grid both define the points; use one of them")
    if not args.configs and not axes and not (domains and len(domains) > 1):
        raise CliError("give the points: at least one --grid KNOB=V1,V2,... (e.g. --grid lr=1e-3,1e-4) or --configs FILE")
    if domains is None and not args.configs:
        raise CliError(f"--domain is required: one of {', '.join(DOMAINS)}, a comma list, or all")
    flagged = {name: getattr(args, name) for name in FIELDS if name not in ("domain", "backend", "gpu") and getattr(args, name, None) is not None}
    for axis in axes:
        if axis.knob in flagged:
            raise CliError(f"--{axis.knob.replace('_', '-')} and --grid {axis.knob}=... both set {axis.label}; drop one")
        if axis.knob == "domain" and domains is not None:
            raise CliError("give the domains with --domain or with --grid domain=..., not both")
    if domains and len(domains) > 1:
        if args.configs:
            raise CliError("--configs with several domains is ambiguous: put the domain in each config instead")
        axes = [Axis("domain", tuple(domains)), *axes]
    base_file = {k: v for k, v in from_file.items() if k not in ("domain", "backend")}
    values: dict[str, Any] = {**base_file, **flagged, "domain": (domains or [FIELDS["domain"].default])[0]}
    if getattr(args, "backend", "local") == "modal":
        values["backend"] = "modal"
    else:
        values["backend"] = "process" if args.detach else "inprocess"
    try:
        points = load_config_list(args.configs) if args.configs else grid_points(axes)
        configs = point_configs(values, points)
    except GridError as exc:
        raise CliError(str(exc)) from None
    seeds = getattr(args, "seeds", 1) or 1
    if seeds > 1:
        try:
            configs = repeat_over_seeds(configs, seeds, axes)
        except GridError as exc:
            raise CliError(f"--seeds {seeds}: {exc}") from None
    return configs, axes


def _cmd_create(args: argparse.Namespace, store: RunStore) -> int:
    configs, axes = sweep_configs(args)
    if getattr(args, "backend", "local") == "modal" and getattr(args, "parallel", None) is not None:
        raise CliError("--parallel packs points on this machine; a Modal sweep takes --max-parallel N")
    if getattr(args, "backend", "local") == "modal":
        # No token, or Modal unreachable: say so before any run is written.
        from tui.cli.modal_backend import preflight

        preflight()
    seeds = getattr(args, "seeds", 1) or 1
    try:
        sweep = create_sweep(store, configs, name=args.name, label="sweep", axes=axes, metric=args.metric or DEFAULT_RANKING, seeds=seeds)
    except SweepError as exc:
        raise CliError(f"--name: {exc}" if args.name else str(exc)) from None
    shape = " × ".join(f"{a.label} {len(a.values)}" for a in axes if len(a.values) > 1) or ("config list" if args.configs else "one config")
    if seeds > 1:
        shape += f" × {seeds} seeds"
    if not args.json:
        say(f"sweep [bold]{lit(sweep.name)}[/]: {len(configs)} points ({lit(shape)}) in {lit(store.root)}")
    if getattr(args, "backend", "local") == "modal":
        from tui.cli.modal_backend import train_on_modal

        runs = [store.get(p.run) for p in sweep.load().points]
        modal_args = argparse.Namespace(**{**vars(args), "name": None})
        return train_on_modal(modal_args, [], max_parallel=args.max_parallel, runs=runs)
    packing = _packing(sweep, args, retry_failed=False)
    if args.detach:
        return _launch(sweep, packing=packing)
    return _run_attached(sweep, retry_failed=False, json_out=args.json, metric=args.metric, packing=packing)


def start_detached_queue(store: RunStore, configs: Sequence[RunConfig], label: str = "queue") -> int:
    """Queue `configs` (one run each) and train them one after another in a
    background process that outlives this one; says how to follow it."""
    try:
        sweep = create_sweep(store, list(configs), label=label)
    except SweepError as exc:
        raise CliError(str(exc)) from None
    runs = ", ".join(p.run for p in sweep.load().points)
    say(f"queued [bold]{lit(sweep.name)}[/] ({lit(label)}): {lit(runs)}")
    return _launch(sweep)


def _launch(sweep: Sweep, retry_failed: bool = False, packing: Any = None) -> int:
    from nsm.sweeps.launch import launch_detached_sweep

    n = packing.points if packing is not None else 1
    try:
        pid = launch_detached_sweep(sweep, retry_failed=retry_failed, parallel=n, point_threads=packing.threads if n > 1 else None)
    except SweepBusy as exc:
        raise CliError(str(exc), code=1) from None
    how = f"{n} at once, each in its own process" if n > 1 else "one after another"
    say(f"running the queue in the background (pid {pid}); the runs train {how}")
    say(f"  follow it:  nsm-tui sweep show {lit(sweep.name)}   (or F4 in nsm-tui)")
    say(f"  stop it:    nsm-tui sweep stop {lit(sweep.name)}")
    say(f"  resume it:  nsm-tui sweep resume {lit(sweep.name)} --detach")
    say(f"  its output: {lit(sweep.log_path)}")
    return 0


def _run_attached(sweep: Sweep, *, retry_failed: bool, json_out: bool, metric: str | None, packing: Any = None) -> int:
    """Train the points in this process, one line per epoch; ctrl+c stops cooperatively."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from nsm.sweeps.runner import LinePrinter, SweepRunner

    def write(text: str) -> None:
        if not json_out:
            print(plain(text), flush=True)

    printer = LinePrinter(sweep, write, tag_points=packing is not None and packing.points > 1)
    runner = SweepRunner(
        sweep, mode="attached", backend="inprocess", retry_failed=retry_failed, sinks=[printer.on_event], on_point=printer.on_point,
        parallel=packing.points if packing is not None else 1, point_threads=packing.threads if packing is not None else None,
    )  # fmt: skip
    stops = {"n": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stops["n"] += 1
        runner.request_stop(f"received {signal.Signals(signum).name}")
        if stops["n"] == 1:
            which = "running points" if runner.parallel > 1 else "current point"
            write(f"stopping after a checkpoint of the {which}; finished points are kept (ctrl+c again does not kill it)")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = runner.run()
    except SweepBusy as exc:
        raise CliError(str(exc), code=1) from None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    snap = snapshot(sweep)
    chosen = metric or ranking_metric(snap.data.metric)
    if json_out:
        print_json(sweep_json(snap, chosen))
    elif is_grouped(snap):
        print_group_results(snap, chosen)
    else:
        print_results(snap, chosen)
        if outcome == "stopped":
            say(f"stopped; resume with: nsm-tui sweep resume {lit(sweep.name)}")
    sys.stdout.flush()
    return 1 if any(p.state == FAILED for p in snap.points) else 0


def _open(args: argparse.Namespace, store: RunStore) -> Sweep:
    try:
        return get_sweep(store, args.sweep)
    except SweepError as exc:
        raise CliError(str(exc)) from None


def _snap(sweep: Sweep) -> SweepSnapshot:
    try:
        return snapshot(sweep)
    except SweepError as exc:
        raise CliError(str(exc)) from None


def _cmd_resume(args: argparse.Namespace, store: RunStore) -> int:
    sweep = _open(args, store)
    snap = _snap(sweep)
    if snap.status in ("running", "stopping"):
        raise CliError(f"sweep {sweep.name} is already running ({snap.summary()})", code=1)
    failed = [p for p in snap.points if p.state == FAILED]
    if not snap.remaining and not (args.retry_failed and failed):
        extra = f"; run the {len(failed)} failed point(s) again with --retry-failed" if failed else ""
        raise CliError(f"nothing to resume: sweep {sweep.name} is {snap.summary()}{extra}", code=1)
    packing = _packing(sweep, args, retry_failed=args.retry_failed)
    if args.detach:
        return _launch(sweep, retry_failed=args.retry_failed, packing=packing)
    return _run_attached(sweep, retry_failed=args.retry_failed, json_out=args.json, metric=None, packing=packing)


def _cmd_stop(args: argparse.Namespace, store: RunStore) -> int:
    sweep = _open(args, store)
    snap = _snap(sweep)
    if snap.status not in ("running", "stopping"):
        raise CliError(f"sweep {sweep.name} is not running ({snap.summary()}); resume it with `nsm-tui sweep resume {sweep.name}`", code=1)
    request_stop(sweep, snap)
    running = ", ".join(v.point.run for v in snap.points if v.state == "running")
    say(f"asked sweep [bold]{lit(sweep.name)}[/] to stop" + (f" after a checkpoint of {lit(running)}" if running else ""))
    if args.wait is None:
        return 0
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        now = _snap(sweep)
        if now.status not in ("running", "stopping"):
            say(f"sweep {lit(sweep.name)}: {lit(now.summary())}")
            return 0
        time.sleep(0.2)  # another process's files: nothing to await
    raise CliError(f"sweep {sweep.name} did not stop within {args.wait:g} s", code=1)


def _cmd_show(args: argparse.Namespace, store: RunStore) -> int:
    sweep = _open(args, store)
    snap = _snap(sweep)
    metric = args.metric or ranking_metric(snap.data.metric)
    if args.json and getattr(args, "format", None) not in (None, "table"):
        raise CliError(f"--json and --format {args.format} ask for two formats; give one")
    if args.json:
        print_json(sweep_json(snap, metric))
        return 0
    per_config = is_grouped(snap) and not getattr(args, "per_run", False)
    if getattr(args, "format", None) in ("csv", "json"):
        from tui.cli.records import sweep_columns, sweep_group_columns, sweep_group_records, sweep_rows, write_records

        if per_config:
            knobs = group_knobs(snap)
            groups = group_rows(snap, metric)
            write_records(sweep_group_columns(knobs, ood_splits(groups)), sweep_group_records(groups, knobs), args.format)
        else:
            knobs = knob_columns(snap) + (["seed"] if snap.data.seeds > 1 and "seed" not in snap.data.knobs else [])
            results = result_rows(snap, metric)
            write_records(sweep_columns(knobs, ood_splits(results)), sweep_rows(results, knobs), args.format)
        return 0
    print_queue(snap)
    if per_config:
        print_group_results(snap, metric)
    else:
        print_results(snap, metric)
    return 0


def _cmd_list(args: argparse.Namespace, store: RunStore) -> int:
    rows = []
    for sweep in list_sweeps(store):
        try:
            snap = snapshot(sweep)
        except SweepError as exc:
            rows.append({"name": sweep.name, "label": "?", "status": "unreadable", "points": None, "summary": str(exc), "created": None})
            continue
        rows.append(
            {
                "name": sweep.name,
                "label": snap.data.label,
                "status": snap.status,
                "points": len(snap.points),
                "summary": ", ".join(f"{n} {s}" for s, n in snap.counts().items() if n),
                "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(snap.data.created)) if snap.data.created else None,
            }
        )
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        say(f"no sweeps in {lit(store.root)}; start one with `nsm-tui sweep --domain D --grid lr=1e-3,1e-4`")
        return 0
    print_table(f"sweeps in {store.root}", ["name", "kind", "status", "points", "states", "created"],
                [[r["name"], r["label"], r["status"], r["points"], r["summary"], r["created"]] for r in rows])
    return 0


# ------------------------------------------------------------------ output


def knob_columns(snap: SweepSnapshot) -> list[str]:
    return list(snap.data.knobs)


def _knob_specs(knobs: list[str]) -> list[Column]:
    return [knob_column(k, FIELDS[k].label, priority=88) for k in knobs]


def group_knobs(snap: SweepSnapshot) -> list[str]:
    """The knobs that tell a sweep's configs apart (SEED tells their runs apart)."""
    return [k for k in snap.data.knobs if k != "seed"]


def print_queue(snap: SweepSnapshot) -> None:
    knobs = knob_columns(snap)
    runner = snap.runner or {}
    who = f", runner pid {runner.get('pid')} ({runner.get('mode')})" if snap.runner_alive and runner.get("pid") else ""
    # Over several seeds each run's seed is a column (a grid over SEED has it as a knob already).
    seeds = snap.data.seeds > 1 and "seed" not in knobs
    rows = [
        [v.number, *(format_value(v.point.values.get(k)) for k in knobs), *([v.point.config.get("seed")] if seeds else []),
         v.state, v.progress_text(), v.point.run_name]
        for v in snap.points
    ]  # fmt: skip
    columns = [
        Column("#", keep=True), *_knob_specs(knobs), *([Column("SEED", priority=87)] if seeds else []),
        Column("state", priority=90), Column("progress", priority=60, short="prog"), Column("run", keep=True),
    ]  # fmt: skip
    print_table(f"sweep {snap.name} ({snap.data.label}): {snap.summary()}{who}", columns, rows)


def _ood_columns(splits: list[str]) -> list[Column]:
    """One column per OOD split, after the test columns: read, never ranked by, and the
    first to go where the terminal is narrow ("OOD 11-20", short "11-20")."""
    return [Column(ood_label(s), priority=10, short=ood_label(s, short=True), numeric=True) for s in splits]


def print_results(snap: SweepSnapshot, metric: str) -> None:
    """The results, ranked by a validation metric; columns fit the terminal (the test
    and OOD columns, read but never ranked by, are dropped before the validation ones)."""
    knobs = knob_columns(snap)
    rows = result_rows(snap, metric)
    splits = ood_splits(rows)
    columns = [
        Column("best", keep=True, short=""),
        Column("#", keep=True),
        *_knob_specs(knobs),
        Column("state", priority=70),
        Column("best val loss", priority=95 if metric == "best_val_loss" else 93, short="val loss", numeric=True),
        Column("best val acc", priority=95 if metric == "best_val_acc" else 93, short="val acc", numeric=True),
        Column("test acc", priority=60, short="test", numeric=True),
        Column("test loss", priority=50, short="t.loss", numeric=True),
        *_ood_columns(splits),
        Column("time s", priority=40, numeric=True),
    ]
    cells = [
        ["*" if r.best else "", r.number, *(format_value(r.values.get(k)) for k in knobs), r.state,
         r.best_val_loss, r.best_val_acc, r.test_acc, r.test_loss, *(r.ood_acc.get(s) for s in splits),
         None if r.time_s is None else round(r.time_s, 1)]
        for r in rows
    ]  # fmt: skip
    spec = METRICS[metric]
    title = f"results ranked by {spec.label} ({'higher' if spec.higher_is_better else 'lower'} is better; ties: {METRICS[spec.tie_break].label})"
    _print_ranked(title, columns, cells, [r.best for r in rows])
    best = next((r for r in rows if r.best), None)
    if best is not None:
        knobs_text = " ".join(f"{k}={format_value(best.values.get(k))}" for k in knobs)
        say(f"best: point {best.number} ({lit(knobs_text)})")
        say(f"  {spec.label} {fmt(best.metric(metric))}, run {lit(best.run)}")
    elif not any(p.state == DONE for p in snap.points):
        say("no finished point yet")


def _print_ranked(title: str, columns: list[Column], cells: list[list[Any]], best: list[bool]) -> None:
    """A results table: on a terminal fitted to its width with the best row ★ and bold green, else plain."""
    if console.is_tty():  # looked up at call time: tests and pipes swap it
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        text = [[plain(fmt(c)) for c in row] for row in cells]
        fitted = fit_columns(columns, text, terminal_width(), RICH_BOX)
        table = Table(title=title, title_justify="left")
        for i, label in zip(fitted.indices, fitted.labels):
            numeric = columns[i].numeric or columns[i].label == "#"
            table.add_column(label, justify="right" if numeric else "left", overflow="fold")
        for is_best, row in zip(best, text):
            table.add_row(*(Text("★" if c == "*" else c) for c in fitted.pick(row)), style="bold green" if is_best else None)
        Console().print(table)
    else:
        print_table(title, columns, cells)


def _estimate_cell(row: GroupRow, name: str, digits: int = 3) -> str | None:
    est = row.estimate(name)
    return None if est is None else est.text(digits)


def print_group_results(snap: SweepSnapshot, metric: str) -> None:
    """One row per grid point over its seeds: each metric's mean ± 95% CI over the finished
    runs, ranked by the mean, the best marked * (★ on a terminal) and the points within its
    noise ≈; the legend under the table says how both are decided."""
    from nsm.runs.aggregate import CI_LEGEND, NOISE_LEGEND

    knobs = group_knobs(snap)
    rows = group_rows(snap, metric)
    splits = ood_splits(rows)
    columns = [
        Column("best", keep=True, short=""),
        Column("#", keep=True),
        *_knob_specs(knobs),
        Column("n", priority=94, numeric=True),
        Column("state", priority=70),
        Column("best val loss", priority=95 if metric == "best_val_loss" else 93, short="val loss", numeric=True),
        Column("best val acc", priority=95 if metric == "best_val_acc" else 93, short="val acc", numeric=True),
        Column("test acc", priority=60, short="test", numeric=True),
        Column("test loss", priority=50, short="t.loss", numeric=True),
        *_ood_columns(splits),
        Column("time s", priority=40, numeric=True),
    ]
    cells = [
        ["*" if r.best else r.mark, r.number, *(format_value(r.values.get(k)) for k in knobs), r.done, r.state,
         *(_estimate_cell(r, name) for name in group_metrics(splits) if name != "time_s"), _estimate_cell(r, "time_s", 1)]
        for r in rows
    ]  # fmt: skip
    spec = METRICS[metric]
    seeds = f"{snap.data.seeds} seeds per point" if snap.data.seeds > 1 else "points grouped by config over SEED"
    title = (
        f"results per point ({seeds}, n finished) ranked by the mean {spec.label} "
        f"({'higher' if spec.higher_is_better else 'lower'} is better)"
    )
    _print_ranked(title, columns, cells, [r.best for r in rows])
    say(lit(CI_LEGEND))
    say(lit(f"{NOISE_LEGEND} (n ≥ 2 on both sides)"))
    best = next((r for r in rows if r.best), None)
    if best is not None:
        knobs_text = " ".join(f"{k}={format_value(best.values.get(k))}" for k in knobs)
        est = best.estimate(metric)
        say(f"best: point {best.number} ({lit(knobs_text)}) over {best.done} finished seed(s)")
        say(f"  {spec.label} {lit(est.text(4) if est else '-')}, runs {lit(' '.join(m.run for m in best.members))}")
        near = [r.number for r in rows if r.within_noise_of_best]
        if near:
            say(f"  within its noise: point{'s' if len(near) > 1 else ''} {', '.join(str(n) for n in near)}")
    elif not any(p.state == DONE for p in snap.points):
        say("no finished point yet")


def group_json(row: GroupRow, splits: list[str] | None = None) -> dict[str, Any]:
    from nsm.runs.aggregate import estimate_fields

    fields: dict[str, Any] = {}
    for name in group_metrics(ood_splits([row]) if splits is None else splits):
        fields.update(estimate_fields(name, row.estimate(name)))
    return {
        "point": row.number, "values": row.values, "runs": [m.run for m in row.members], "seeds": row.seeds,
        "n": row.done, "state": row.state, "best": row.best, "within_noise_of_best": row.within_noise_of_best, **fields,
    }  # fmt: skip


def sweep_json(snap: SweepSnapshot, metric: str) -> dict[str, Any]:
    rows = result_rows(snap, metric)
    groups = group_rows(snap, metric) if is_grouped(snap) else None
    return {
        "name": snap.name,
        "label": snap.data.label,
        "path": str(snap.sweep.path),
        "status": snap.status,
        "counts": snap.counts(),
        "knobs": snap.data.knobs,
        "metric": metric,
        "points": [
            {"number": v.number, "run": v.point.run, "values": v.point.values, "state": v.state, "epoch": v.run_state.epoch, "error": v.error}
            for v in snap.points
        ],
        "results": [
            {
                "number": r.number, "run": r.run, "values": r.values, "state": r.state, "best": r.best,
                "test_acc": r.test_acc, "test_loss": r.test_loss, "best_val_acc": r.best_val_acc,
                "best_val_loss": r.best_val_loss, "time_s": r.time_s,
                # Each OOD split's accuracy (none for a sweep made before them).
                **{ood_metric(name): acc for name, acc in r.ood_acc.items()},
            }
            for r in rows
        ],
        "best": next(({"number": r.number, "run": r.run, "values": r.values} for r in rows if r.best), None),
        "seeds": snap.data.seeds,
        # Per config (its runs differ only in SEED) when the sweep has several seeds per point.
        "groups": [group_json(g, ood_splits(groups)) for g in groups] if groups is not None else None,
    }
