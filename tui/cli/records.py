"""Tables as data: `--format csv|json` of `runs list`, `compare` and `sweep show`.

One row per run (or sweep point), stable snake_case columns, plain numbers: no
units, no "—", an empty cell (null in JSON) where a value is missing, floats at
full precision. `pd.read_csv` reads the CSV without cleaning, and the JSON is a
list of objects with the same keys. Text from the store (run names, errors,
config values) can hold anything: control characters and escape sequences are
removed (nsm.text.plain), line breaks become spaces, so a row stays one line.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from typing import IO, Any, Iterable, Mapping, Sequence

from nsm.config import FIELDS
from nsm.text import plain

FORMATS = ("table", "csv", "json")

RUN_COLUMNS = (
    "run", "domain", "status", "epoch", "epochs", "best_epoch", "best_val_acc", "best_val_loss",
    "test_acc", "test_loss", "started", "path", "problem",
)  # fmt: skip


def run_columns(summaries: Iterable[Any]) -> list[str]:
    """RUN_COLUMNS, with `<split>_acc` (e.g. ood_steps_11_20_acc) after test_loss for each
    out-of-distribution split some listed run has: without such runs, exactly RUN_COLUMNS."""
    at = RUN_COLUMNS.index("test_loss") + 1
    names: list[str] = []
    for r in summaries:
        names += [name for name in summary_ood_acc(r) if name not in names]
    return [*RUN_COLUMNS[:at], *(f"{name}_acc" for name in names), *RUN_COLUMNS[at:]]


def summary_ood_acc(summary: Any) -> dict[str, float]:
    """A listed run's OOD accuracies by split, from its log's finished event (as its test
    accuracy): {} for a run made before the OOD splits, or not finished."""
    from nsm.runs.compare import ood_numbers

    return ood_numbers(summary.state, {}, {})[0]


# Every knob but the domain (a column already), so that the columns do not depend on which runs differ.
CONFIG_COLUMNS = tuple(name for name in FIELDS if name != "domain")
COMPARE_COLUMNS = (
    "run", "domain", "status", "test_acc", "test_loss", "best_val_loss", "best_val_acc", "best_epoch",
    "final_cycle_loss", "training_time_s", "epochs_done", "epochs_planned", "params",
    "majority_acc", "structure_blind_acc", "degree_blind_acc", "wl_acc", *CONFIG_COLUMNS, "problem",
)  # fmt: skip


def compare_columns(comparison: Any) -> list[str]:
    """COMPARE_COLUMNS, with `<split>_acc` (e.g. ood_steps_11_20_acc) after test_loss for
    each out-of-distribution split some compared run has: without such runs, exactly
    COMPARE_COLUMNS."""
    from nsm.runs.compare import ood_split_names

    at = COMPARE_COLUMNS.index("test_loss") + 1
    ood = [f"{name}_acc" for name in ood_split_names(comparison.runs)]
    return [*COMPARE_COLUMNS[:at], *ood, *COMPARE_COLUMNS[at:]]


# Not epoch/epochs: a sweep over EPOCHS has a knob column "epochs".
SWEEP_METRIC_COLUMNS = ("epochs_done", "epochs_planned", "test_acc", "test_loss", "best_val_acc", "best_val_loss", "time_s", "error")


def add_format_flag(p: Any, extra: Sequence[str] = (), help_text: str = "") -> None:
    choices = (*FORMATS, *extra)
    p.add_argument(
        "--format",
        choices=choices,
        default=None,
        help=help_text or "table (default), csv (a header row, one row per run) or json (a list of objects with the same keys)",
    )


def chosen_format(args: Any) -> str:
    """--format, with --json as another way to say --format json."""
    fmt = getattr(args, "format", None)
    if getattr(args, "json", False):
        if fmt not in (None, "json"):
            from tui.cli.console import CliError

            raise CliError(f"--json and --format {fmt} ask for two formats; give one")
        return "json"
    return fmt or "table"


def write_records(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], fmt: str, out: IO[str] | None = None) -> None:
    out = out or sys.stdout
    cleaned = [{c: _value(row.get(c)) for c in columns} for row in rows]
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in cleaned:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
    elif fmt == "json":
        out.write(json.dumps(cleaned, indent=2) + "\n")
    else:
        raise ValueError(f"format must be csv or json (got {fmt!r})")
    out.flush()


def _value(v: Any) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None  # NaN is not JSON, and "inf" is no number pandas expects
    if not isinstance(v, str):
        v = json.dumps(v, default=str, sort_keys=True)  # a list or table in a damaged config: one cell
    return " ".join(plain(v).splitlines()).replace("\t", " ")


# ------------------------------------------------------------------- rows


def run_rows(summaries: Iterable[Any]) -> list[dict[str, Any]]:
    """`runs list`: RunSummary objects as rows."""
    return [
        {
            "run": r.name, "domain": r.domain, "status": r.status, "epoch": r.epoch, "epochs": r.epochs,
            "best_epoch": r.state.best_epoch, "best_val_acc": r.best_val_acc, "best_val_loss": r.best_val_loss,
            "test_acc": r.state.test_acc, "test_loss": r.state.test_loss,
            **{f"{name}_acc": acc for name, acc in summary_ood_acc(r).items()},
            "started": r.started, "path": str(r.path), "problem": r.problem,
        }  # fmt: skip
        for r in summaries
    ]


def comparison_rows(comparison: Any) -> list[dict[str, Any]]:
    """`compare`: one row per run, then one per domain without a run (status "missing")."""
    rows: list[dict[str, Any]] = []
    for m in comparison.runs:
        config = m.config if isinstance(m.config, Mapping) else {}
        rows.append(
            {
                "run": m.name, "domain": m.domain, "status": m.status, "test_acc": m.test_acc, "test_loss": m.test_loss,
                "best_val_loss": m.best_val_loss, "best_val_acc": m.best_val_acc, "best_epoch": m.best_epoch,
                "final_cycle_loss": m.final_cycle_loss, "training_time_s": m.training_time_s,
                "epochs_done": m.epochs_done, "epochs_planned": m.epochs_planned, "params": m.params,
                "majority_acc": m.baselines.get("majority"), "structure_blind_acc": m.baselines.get("structure_blind"),
                "degree_blind_acc": m.baselines.get("degree_blind"), "wl_acc": m.baselines.get("wl"),
                **{f"{name}_acc": acc for name, acc in m.ood_acc.items()},
                **{k: config.get(k) for k in CONFIG_COLUMNS},
                # What the run was built and trained with: an old config without MODEL is an nsm
                # run, and THREADS=0 ("auto") is the count its latest attempt actually used.
                "model": m.model, "threads": m.threads if m.threads is not None else config.get("threads"),
                "problem": m.problem,
            }  # fmt: skip
        )
    for domain in comparison.missing:
        rows.append({"domain": domain, "status": "missing"})
    return rows


def sweep_columns(knobs: Sequence[str], splits: Sequence[str] = ()) -> list[str]:
    """`sweep show` per point; with `<split>_acc` after test_loss for each OOD split
    (nsm.sweeps.results.ood_splits) some point has."""
    at = SWEEP_METRIC_COLUMNS.index("test_loss") + 1
    metrics = [*SWEEP_METRIC_COLUMNS[:at], *(f"{s}_acc" for s in splits), *SWEEP_METRIC_COLUMNS[at:]]
    return ["point", "run", "state", "best", *knobs, *metrics]


def sweep_rows(results: Iterable[Any], knobs: Sequence[str]) -> list[dict[str, Any]]:
    """`sweep show`: the results table, sorted as shown, best point marked."""
    return [
        {
            "point": r.number, "run": r.run, "state": r.state, "best": r.best,
            # A sweep over seeds asks for "seed" beside its knobs: each run's own.
            **{k: r.values.get(k, getattr(r, "seed", None) if k == "seed" else None) for k in knobs},
            "epochs_done": r.epoch, "epochs_planned": r.epochs,
            **{c: getattr(r, c) for c in SWEEP_METRIC_COLUMNS[2:]},
            **{f"{name}_acc": acc for name, acc in (getattr(r, "ood_acc", None) or {}).items()},
        }
        for r in results
    ]


# ------------------------------------------------------- over several seeds


def _estimates(names: Sequence[str], estimate_of: Any) -> dict[str, Any]:
    from nsm.runs.aggregate import estimate_fields

    fields: dict[str, Any] = {}
    for name in names:
        fields.update(estimate_fields(name, estimate_of(name)))
    return fields


def sweep_group_columns(knobs: Sequence[str], splits: Sequence[str] = ()) -> list[str]:
    """`sweep show` of a sweep over several seeds: one row per grid point (with
    `<split>_acc_mean`, ... after the test metrics for each OOD split some point has)."""
    from nsm.runs.aggregate import estimate_columns
    from nsm.sweeps.results import group_metrics

    return [
        "point", "runs", "seeds", "n", "state", "best", "within_noise_of_best", *knobs,
        *(c for name in group_metrics(splits) for c in estimate_columns(name)),
    ]  # fmt: skip


def sweep_group_records(groups: Iterable[Any], knobs: Sequence[str]) -> list[dict[str, Any]]:
    """Each grid point (GroupRow) ranked as shown: its runs and seeds (space-separated), n
    finished runs, and per metric (OOD splits' accuracies too) the mean, std, 95% CI
    half-width and n over them."""
    from nsm.sweeps.results import group_metrics, ood_splits

    groups = list(groups)
    metrics = group_metrics(ood_splits(groups))
    return [
        {
            "point": g.number, "runs": " ".join(m.run for m in g.members),
            "seeds": " ".join(str(s) for s in g.seeds if s is not None), "n": g.done, "state": g.state,
            "best": g.best, "within_noise_of_best": g.within_noise_of_best,
            **{k: g.values.get(k) for k in knobs}, **_estimates(metrics, g.estimate),
        }  # fmt: skip
        for g in groups
    ]


_COMPARE_TEXT = ("run", "domain", "status", "problem")


def comparison_group_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """`compare --group config` as data: one row per config (its runs differ only in SEED).
    Every numeric column of the per-run rows (metrics, baselines, and any a newer version
    adds) becomes <name>_mean, _std, _ci95, _n; the knobs follow, without SEED."""
    from nsm.runs.aggregate import estimate_columns

    return [
        "config", "runs", "seeds", "n", "domain", "status", "best", "within_noise_of_best",
        *(c for name in _compare_metrics(rows) for c in estimate_columns(name)),
        *(k for k in CONFIG_COLUMNS if k != "seed"), "problem",
    ]  # fmt: skip


def _compare_metrics(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    keys = list(COMPARE_COLUMNS)
    for row in rows:
        keys += [k for k in row if k not in keys]
    return [k for k in keys if k not in _COMPARE_TEXT and k not in CONFIG_COLUMNS]


def comparison_group_records(comparison: Any, criterion: str | None = None) -> list[dict[str, Any]]:
    """The runs of `comparison` grouped by config and ranked per domain by `criterion`
    (best val loss, or test accuracy): ★ is `best`, ≈ is `within_noise_of_best`."""
    from nsm.runs.aggregate import estimate, estimate_fields, group_by_config, rank_groups, summarize
    from nsm.runs.compare import TEST_ACC, VAL_LOSS, metric_of

    per_run = comparison_rows(comparison)
    runs = list(comparison.runs)
    rows = per_run[: len(runs)]
    metrics = _compare_metrics(per_run)
    crit = criterion or comparison.criterion or VAL_LOSS
    groups = group_by_config(list(range(len(runs))), lambda i: runs[i].config)
    summarize(groups, {"__rank__": lambda i: metric_of(runs[i], crit)})
    ranked = rank_groups(groups, "__rank__", higher_is_better=crit == TEST_ACC, within=lambda g: runs[g.members[0]].domain)
    out: list[dict[str, Any]] = []
    for g in ranked:
        first = rows[g.members[0]]
        statuses = list(dict.fromkeys(str(rows[i].get("status")) for i in g.members))
        problems = [str(rows[i]["problem"]) for i in g.members if rows[i].get("problem")]
        record: dict[str, Any] = {
            "config": g.number, "runs": " ".join(str(rows[i]["run"]) for i in g.members),
            "seeds": " ".join(str(s) for s in g.seeds if s is not None), "n": g.n, "domain": first.get("domain"),
            "status": "/".join(statuses), "best": g.best, "within_noise_of_best": g.within_noise_of_best,
        }  # fmt: skip
        for name in metrics:
            record.update(estimate_fields(name, estimate(rows[i].get(name) for i in g.members)))
        record.update({k: first.get(k) for k in CONFIG_COLUMNS if k != "seed"})
        record["problem"] = "; ".join(problems) or None
        out.append(record)
    for domain in comparison.missing:
        out.append({"domain": domain, "status": "missing", "n": 0})
    return out
