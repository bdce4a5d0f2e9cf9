"""`nsm-tui data sample`: one sample graph of a domain drawn in the terminal; with a run,
which nodes each pooling level of its checkpoint keeps and the model's prediction."""

from __future__ import annotations

import argparse
import shutil
import warnings

from tui.cli.console import CliError, print_json, say


def add_sample_parser(dsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from nsm.config import DOMAINS, FIELDS
    from tui.cli.flags import add_runs_dir, knob_type

    q = dsub.add_parser("sample", help="draw one sample graph (with --run: what the model's pooling keeps, its prediction)")
    q.add_argument("--domain", choices=DOMAINS, default=None, help="required without --run")
    q.add_argument("--index", type=int, default=0, metavar="K", help="which sample (default 0; even = label 0, odd = label 1)")
    q.add_argument("--seed", type=knob_type("seed"), default=None, metavar="S", help=f"generator seed (default: the run's, else {FIELDS['seed'].default})")
    q.add_argument("--run", default=None, metavar="RUN", help="trace the sample through this run's checkpoint")
    q.add_argument("--checkpoint", default=None, metavar="FILE", help="with --run (default: best_model.pt, else the latest)")
    q.add_argument("--json", action="store_true")
    add_runs_dir(q)


def cmd_data_sample(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from nsm.config import FIELDS

    if args.index < 0:
        raise CliError(f"--index must be a whole number >= 0 (got {args.index})")
    if args.checkpoint and not args.run:
        raise CliError("--checkpoint needs --run (the run whose checkpoint it is)")
    if args.run:
        view = _traced(args)
    else:
        if args.domain is None:
            raise CliError("data sample needs --domain (causal, planning or kg) or --run")
        from nsm.data.sample_view import sample_view

        view = sample_view(args.domain, args.index, FIELDS["seed"].default if args.seed is None else args.seed)
    if args.json:
        import dataclasses

        print_json(dataclasses.asdict(view))
        return 0
    from nsm.data.sample_view import render_sample
    from tui.cli.console import lit

    width = min(100, shutil.get_terminal_size((80, 24)).columns - 1)
    for line in render_sample(view, width):
        say(f"[bold]{lit(line)}[/]" if line and not line.startswith(" ") else lit(line))
    return 0


def _traced(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from nsm.runs.checkpoints import BEST_FILE
    from nsm.training.checkpoint import CheckpointError
    from nsm.training.sample_trace import trace_sample
    from tui.cli.common import get_run, open_store

    run = get_run(open_store(args), args.run)
    file = args.checkpoint
    if file is None:
        checkpoints = run.checkpoints()
        if not checkpoints:
            raise CliError(f"run {run.ref} has no checkpoint yet: nothing to trace (leave out --run to draw a sample)")
        best = next((c for c in checkpoints if c.file == BEST_FILE), None)
        file = (best or run.latest_checkpoint() or checkpoints[-1]).file
    path = run.path / file
    if not path.exists():
        names = ", ".join(c.file for c in run.checkpoints()) or "none"
        raise CliError(f"checkpoint {file} does not exist in run {run.ref} (available: {names})")
    try:
        return trace_sample(path, args.index, seed=args.seed, domain=args.domain)
    except (CheckpointError, ValueError) as exc:
        raise CliError(str(exc)) from None
