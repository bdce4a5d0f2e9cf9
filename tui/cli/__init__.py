"""`nsm-tui`: the TUI with no arguments, headless commands otherwise.

Every bad flag value becomes one line on stderr naming the flag and what is
allowed, with exit code 2 — never a traceback. Heavy imports (torch, textual)
happen inside the command that needs them, so `--help` and `runs list` are fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from nsm.config import DOMAINS, FIELDS
from nsm.text import plain
from nsm.runs.errors import RunStoreError
from tui import package_version
from tui.cli.flags import TRAIN_KNOBS, Parser, add_knob_flags, add_runs_dir, knob_type
from tui.cli.config_files import add_config_flag, add_config_parser
from tui.cli.console import CliError
from tui.cli.records import add_format_flag

__all__ = ["PROG", "TRAIN_KNOBS", "Parser", "add_knob_flags", "add_runs_dir", "build_parser", "main"]

PROG = "nsm-tui"


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="A terminal cockpit for training NSM models. With no command, opens the dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    add_runs_dir(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("train", help="train a run (attached, or --detach to run in the background)")
    p.add_argument(
        "--domain",
        default=None,
        type=_domain_or_all,
        metavar="{" + ",".join(DOMAINS) + ",all}",
        help="reasoning domain; 'all' trains the three (required unless the --config file sets domain)",
    )
    add_config_flag(p)
    add_knob_flags(p, TRAIN_KNOBS)
    p.add_argument("--name", default=None, help="run name (default: generated)")
    p.add_argument("--detach", action="store_true", help="start in the background and return at once")
    p.add_argument(
        "--backend", choices=("local", "modal"), default=None, help="where to train (default: local, or modal when the --config file says so)"
    )
    p.add_argument("--gpu", default=None, help="Modal GPU type, e.g. A100-40GB, H100 (modal backend)")
    p.add_argument("--json", action="store_true", help="print the final results as JSON")
    add_runs_dir(p)

    p = sub.add_parser("resume", help="continue a stopped run from its latest (or a chosen) checkpoint")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--checkpoint", default=None, metavar="FILE", help="checkpoint file in the run (default: latest)")
    p.add_argument(
        "--restart",
        action="store_true",
        help="a run stopped before its first checkpoint: start it again from scratch under its name "
        "(its earlier log is moved to discarded/)",
    )
    p.add_argument("--detach", action="store_true")
    p.add_argument("--json", action="store_true")
    add_runs_dir(p)

    p = sub.add_parser("stop", help="ask a running run to stop at the next step (with a checkpoint)")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--wait", type=float, default=None, metavar="SECONDS", help="wait for it to stop")
    p.add_argument(
        "--hard",
        action="store_true",
        help="Modal runs: cancel the function call now (resume later from the last committed checkpoint)",
    )
    add_runs_dir(p)

    p = sub.add_parser("runs", help="list runs or show one")
    rsub = p.add_subparsers(dest="runs_command", metavar="ACTION", parser_class=Parser, required=True)
    q = rsub.add_parser("list", help="runs per domain with status")
    q.add_argument("--domain", choices=DOMAINS, default=None)
    q.add_argument("--remote", action="store_true", help="list the runs and checkpoints on the Modal volume nsm-checkpoints")
    add_format_flag(q)
    q.add_argument("--json", action="store_true", help="the same as --format json")
    add_runs_dir(q)
    q = rsub.add_parser("download", help="copy a Modal run and its checkpoints from the volume into the local store")
    q.add_argument("run", metavar="RUN")
    q.add_argument(
        "--checkpoint", action="append", default=None, metavar="FILE", help="checkpoint to fetch (repeatable; default best_model.pt)"
    )
    q.add_argument("--all", action="store_true", help="fetch every checkpoint")
    q.add_argument("--json", action="store_true")
    add_runs_dir(q)
    q = rsub.add_parser("show", help="config, progress, checkpoints and results of a run")
    q.add_argument("run", metavar="RUN")
    q.add_argument("--json", action="store_true")
    add_runs_dir(q)
    q = rsub.add_parser("delete", help="delete a run directory")
    q.add_argument("run", metavar="RUN")
    q.add_argument("--yes", action="store_true", help="do not ask")
    q.add_argument("--force", action="store_true", help="delete even while it runs")
    add_runs_dir(q)

    p = sub.add_parser("eval", help="evaluate a checkpoint on the test split (and the OOD splits) or another split")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--checkpoint", default=None, metavar="FILE", help="default: best_model.pt")
    p.add_argument(
        "--split",
        default="test",
        metavar="SPLIT",
        help="test (default: with every out-of-distribution split beside it), val, train, or one OOD split "
        "(planning: ood_steps_11_20, ood_steps_21_40; causal, kg: ood_large)",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--json", action="store_true")
    add_runs_dir(p)

    p = sub.add_parser("export", help="export a run's history and results")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--format", choices=("csv", "json", "md"), default="csv")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: the run directory)")
    add_runs_dir(p)

    p = sub.add_parser("compare", help="compare runs: the best of each domain, or the runs named")
    p.add_argument("runs", metavar="RUN", nargs="*", help="runs to compare (default: the best run per domain)")
    p.add_argument("--by", choices=("val_loss", "test_acc"), default="val_loss", help="how the best run of a domain is picked")
    add_format_flag(
        p, extra=("md",), help_text="table (default), csv or json (one row per run: metrics and every knob), md (a report file in --out)"
    )
    p.add_argument("--out", default=None, metavar="DIR", help="folder for md (default: <runs dir>/reports)")
    p.add_argument(
        "--group", choices=("auto", "config", "run"), default="auto",
        help="runs whose configs differ only in SEED: one row per config with mean ± 95%% CI over the seeds, the best "
        "of each domain marked ★ and the configs within its noise ≈ (Welch t-test, p ≥ 0.05). auto (default): "
        "when some config was run with several seeds; config: always; run: one row per run (table, csv, json)",
    )  # fmt: skip
    add_runs_dir(p)

    p = sub.add_parser("data", help="dataset commands")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=Parser, required=True)
    q = dsub.add_parser("stats", help="dataset statistics and the baseline probes")
    q.add_argument("--domain", required=True, choices=DOMAINS)
    q.add_argument("--num-graphs", dest="num_graphs", type=knob_type("num_graphs"), default=FIELDS["num_graphs"].default, metavar="N")
    q.add_argument("--seed", type=knob_type("seed"), default=FIELDS["seed"].default, metavar="S")
    q.add_argument("--json", action="store_true")
    from tui.cli.sample import add_sample_parser

    add_sample_parser(dsub)

    p = sub.add_parser("model", help="model commands")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", parser_class=Parser, required=True)
    q = msub.add_parser("summary", help="per-module parameter counts")
    q.add_argument("--domain", required=True, choices=DOMAINS)
    q.add_argument("--hidden", type=knob_type("hidden"), default=FIELDS["hidden"].default, metavar="H")
    q.add_argument("--model", type=knob_type("model"), default=FIELDS["model"].default, metavar="|".join(FIELDS["model"].choices or ()))
    q.add_argument("--pooling", action=argparse.BooleanOptionalAction, default=True, help=FIELDS["pooling"].help)
    q.add_argument("--json", action="store_true")

    p = sub.add_parser("attach", help="open the dashboard following a run (default: the latest)")
    p.add_argument("run", metavar="RUN", nargs="?")
    p.add_argument("--headless", action="store_true", help="follow in this terminal without the UI (Modal runs: re-attach and mirror)")
    p.add_argument("--json", action="store_true")
    add_runs_dir(p)

    from tui.cli.sweeps import add_sweep_parser
    from tui.cli.top import add_top_parser

    add_sweep_parser(sub)
    add_top_parser(sub)
    add_config_parser(sub)
    return parser


def _domain_or_all(raw: str) -> str:
    value = raw.strip().lower()
    if value == "all" or value in DOMAINS:
        return value
    raise argparse.ArgumentTypeError(f"DOMAIN must be one of {', '.join(DOMAINS)} or all (got {raw!r})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return dispatch(parser, args)
    except CliError as exc:
        sys.stderr.write(f"{PROG}: error: {plain(exc)}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:
        # `nsm-tui runs list | head`: the reader left; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RunStoreError, OSError) as exc:
        # An unusable store or run file that a command did not word itself:
        # still one line and exit 2. Other exceptions are bugs and keep their traceback.
        sys.stderr.write(f"{PROG}: error: {plain(_one_line(exc))}\n")
        return 2
    except Exception as exc:
        if not _from_modal(exc):
            raise
        # Modal's own exception classes (and its gRPC layer's) that no command translated:
        # a remote service failing is not a bug of ours; one line, and the code for a failure.
        sys.stderr.write(f"{PROG}: error: Modal: {plain(_one_line(exc))} ({type(exc).__name__})\n")
        return 1


def _from_modal(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("modal", "grpclib", "synchronicity", "modal_proto")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= 500 else text[:500] + "..."


def dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import remote.backend  # noqa: F401 - registers the Modal backend with nsm.execution
    from tui.cli import info, runs, training

    command = args.command
    if command is None:
        return _open_tui(args, None)
    if command == "attach":
        return _attach(args)
    if command == "train":
        return training.cmd_train(args)
    if command == "resume":
        return training.cmd_resume(args)
    if command == "stop":
        return training.cmd_stop(args)
    if command == "runs":
        if args.runs_command == "list" and args.remote or args.runs_command == "download":
            from tui.cli import modal_backend

            return (modal_backend.cmd_download if args.runs_command == "download" else modal_backend.cmd_remote_list)(args)
        return {"list": runs.cmd_list, "show": runs.cmd_show, "delete": runs.cmd_delete}[args.runs_command](args)
    if command == "eval":
        return runs.cmd_eval(args)
    if command == "export":
        return runs.cmd_export(args)
    if command == "compare":
        from tui.cli.compare import cmd_compare

        return cmd_compare(args)
    if command == "sweep":
        from tui.cli.sweeps import cmd_sweep

        return cmd_sweep(args)
    if command == "config":
        from tui.cli.config_files import cmd_config

        return cmd_config(args)
    if command == "data":
        if args.data_command == "sample":
            from tui.cli.sample import cmd_data_sample

            return cmd_data_sample(args)
        return info.cmd_data_stats(args)
    if command == "top":
        from tui.cli.top import cmd_top

        return cmd_top(args)
    if command == "model":
        return info.cmd_model_summary(args)
    parser.print_help()
    return 2


def _attach(args: argparse.Namespace) -> int:
    """Follow a run: Modal runs get their mirror (re)started first, so nothing is missed."""
    if not args.headless:
        _require_terminal()  # before a Modal mirror is (re)started for a dashboard that cannot open
    if args.run:
        from nsm.execution import MODAL, backend_name
        from tui.cli import modal_backend
        from tui.cli.common import get_run, open_store

        run = get_run(open_store(args), args.run)
        if args.headless:
            from tui.cli.training import cmd_attach_headless

            return cmd_attach_headless(args)
        if backend_name(run) == MODAL:
            modal_backend.prepare_attach(run)
    elif args.headless:
        raise CliError("--headless needs a RUN")
    return _open_tui(args, args.run or "")


def _require_terminal() -> None:
    """No TTY (`ssh box nsm-tui` without -t, a pipe): one line and exit 2, not a dashboard drawn into a pipe."""
    from tui.terminal import require_terminal

    problem = require_terminal()
    if problem is not None:
        raise CliError(problem)


def _open_tui(args: argparse.Namespace, attach: str | None) -> int:
    _require_terminal()
    try:
        from tui.app import run_app
    except ImportError:
        build_parser().print_help()
        return 0
    return run_app(runs_dir=args.runs_dir, attach=attach)

