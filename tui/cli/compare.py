"""`nsm-tui compare [RUN ...] [--by val_loss|test_acc] [--format table|csv|json|md] [--out DIR]`:
the comparison screen's table without the UI. With no RUN, the best run of
each domain (a domain without runs is listed as missing). Runs whose configs
differ only in SEED are one row per config (mean ± 95% CI over the seeds, ★ the
best of each domain, ≈ within its noise: nsm.runs.aggregate) when some config
has several seeds (`--group auto`), always (`--group config`) or never (`run`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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


def table_columns(labels: list[str]) -> list[Any]:
    """The metrics table's columns: an OOD accuracy column is the first to go where the
    terminal is too narrow (80 columns); every other column stays, as it always has."""
    from tui.columns import Column

    if not any(label.startswith("OOD ") for label in labels):
        return list(labels)  # no run has OOD numbers: the table as it always was
    return [
        Column(label, priority=10, short=label[4:], numeric=True) if label.startswith("OOD ") else Column(label, keep=True)
        for label in labels
    ]


def per_config(comparison: Comparison, grouping: str) -> bool:
    """Whether `--group` (auto, config, run) makes this comparison one row per config."""
    from nsm.runs.aggregate import group_by_config, groups_apply

    return groups_apply(group_by_config(comparison.runs, lambda m: m.config), grouping)


def cmd_compare(args: argparse.Namespace) -> int:
    comparison = build(args)
    fmt = getattr(args, "format", None) or "table"
    grouped = fmt != "md" and per_config(comparison, getattr(args, "group", None) or "auto")
    if fmt in ("csv", "json") and grouped:
        from tui.cli.records import comparison_group_columns, comparison_group_records, comparison_rows, write_records

        write_records(comparison_group_columns(comparison_rows(comparison)), comparison_group_records(comparison), fmt)
        for problem in comparison.problems:
            print(plain(f"{PROG}: warning: {problem}"), file=sys.stderr)
        return 0
    if fmt in ("csv", "json"):
        from tui.cli.records import compare_columns, comparison_rows, write_records

        write_records(compare_columns(comparison), comparison_rows(comparison), fmt)
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
    if grouped:
        print_grouped(comparison)
    else:
        labels, rows = metrics_table(comparison)
        print_table(title, table_columns(labels), rows)
        if comparison.differences:
            print_table("config values that differ", *differences_table(comparison))
    for problem in comparison.problems:
        say(f"[red]{lit(problem)}[/]")
    return 0


def print_grouped(comparison: Comparison) -> None:
    """One row per config: its runs (the first named, +k more), n, each number as mean ±
    95% CI over them, ranked per domain by best val loss; then the knobs that differ
    between the configs (SEED and where the runs ran aside)."""
    from nsm.runs.aggregate import CI_LEGEND, NOISE_LEGEND, NOT_THE_EXPERIMENT, group_comparison
    from nsm.runs.compare import config_differences

    table = group_comparison(comparison)
    print_table(f"runs per config, ranked per domain by {CRITERIA[table.criterion]}", grouped_columns(table.columns), table.rows)
    say(lit(CI_LEGEND))
    say(lit(f"{NOISE_LEGEND} (n ≥ 2 on both sides)"))
    labels = [row[1] for row in table.rows[: len(table.groups)]]
    configs = {label: g.config for label, g in zip(labels, table.groups)}
    diffs = {k: v for k, v in config_differences(configs).items() if k not in NOT_THE_EXPERIMENT}
    if len(table.groups) > 1 and diffs:
        print_table("config values that differ", ["setting", *labels], [[k, *(v.get(label) for label in labels)] for k, v in diffs.items()])
    for group, label in zip(table.groups, labels):
        if group.n > 1:
            names = ", ".join(comparison.runs[i].name for i in group.members)
            say(f"[dim]{lit(label)}: {lit(names)} (SEED {lit(' '.join(str(s) for s in group.seeds))})[/]")


# The grouped table's columns, kept longest first: "0.912 ± 0.013" cells are wide, so at 80
# columns the validation numbers and test accuracy stay and the rest go in this order.
_GROUPED_PRIORITY = {
    "n": 97, "best val loss": 96, "best val acc": 95, "test acc": 94, "domain": 90, "model": 85,
    "status": 70, "test loss": 60, "cycle loss": 40, "time (s)": 30, "epochs": 20, "threads": 10,
}  # fmt: skip


def grouped_columns(labels: list[str]) -> list[Any]:
    from tui.columns import Column

    keep = ("", "runs")
    return [
        Column(label, keep=label in keep, priority=_GROUPED_PRIORITY.get(label, 50), numeric=label not in (*keep, "domain", "status", "model"))
        for label in labels
    ]
