"""`nsm-tui compare [RUN ...] [--by val_loss|test_acc] [--format table|csv|json|md] [--out DIR]`:
the comparison screen's table without the UI. With no RUN, the best run of
each domain (a domain without runs is listed as missing)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nsm.text import plain

from nsm.runs.compare import CRITERIA, VAL_LOSS, Comparison, compare_best_per_domain, compare_runs, differences_table, metrics_table
from tui.cli.console import CliError, lit, print_table, say

PROG = "nsm-tui"


def build(args: argparse.Namespace) -> Comparison:
    from tui.cli.common import open_store

    store = open_store(args)
    refs = list(getattr(args, "runs", None) or [])
    if refs:
        comparison = compare_runs(store, refs)
        if not comparison.runs:
            raise CliError("; ".join(comparison.problems) or "no run to compare")
        return comparison
    by = getattr(args, "by", None) or VAL_LOSS
    if by not in CRITERIA:
        raise CliError(f"--by must be one of {', '.join(CRITERIA)} (got {by!r})")
    return compare_best_per_domain(store, by)


def comparison_root(args: argparse.Namespace) -> Path:
    from tui.cli.common import open_store

    return open_store(args, write=True).root


def cmd_compare(args: argparse.Namespace) -> int:
    comparison = build(args)
    fmt = getattr(args, "format", None) or "table"
    if fmt in ("csv", "json"):
        from tui.cli.records import COMPARE_COLUMNS, comparison_rows, write_records

        write_records(COMPARE_COLUMNS, comparison_rows(comparison), fmt)
        for problem in comparison.problems:  # the rows stay data; what could not be read goes to stderr
            print(plain(f"{PROG}: warning: {problem}"), file=sys.stderr)
        return 0
    if fmt == "md":
        from nsm.runs.export import ExportError
        from tui.reports import write_comparison_report

        out = Path(args.out) if getattr(args, "out", None) else comparison_root(args) / "reports"
        try:
            path = write_comparison_report(comparison, out)
        except ExportError as exc:
            raise CliError(str(exc)) from None
        say(f"wrote {lit(path)}")
        return 0
    title = f"best run per domain by {CRITERIA[comparison.criterion]}" if comparison.criterion else "runs"
    print_table(title, *metrics_table(comparison))
    if comparison.differences:
        print_table("config values that differ", *differences_table(comparison))
    for problem in comparison.problems:
        say(f"[red]{lit(problem)}[/]")
    return 0
