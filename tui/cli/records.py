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
# Every knob but the domain (a column already), so that the columns do not depend on which runs differ.
CONFIG_COLUMNS = tuple(name for name in FIELDS if name != "domain")
COMPARE_COLUMNS = (
    "run", "domain", "status", "test_acc", "test_loss", "best_val_loss", "best_val_acc", "best_epoch",
    "final_cycle_loss", "training_time_s", "epochs_done", "epochs_planned", "params",
    "majority_acc", "structure_blind_acc", "degree_blind_acc", "wl_acc", *CONFIG_COLUMNS, "problem",
)  # fmt: skip
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
            "test_acc": r.state.test_acc, "test_loss": r.state.test_loss, "started": r.started,
            "path": str(r.path), "problem": r.problem,
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


def sweep_columns(knobs: Sequence[str]) -> list[str]:
    return ["point", "run", "state", "best", *knobs, *SWEEP_METRIC_COLUMNS]


def sweep_rows(results: Iterable[Any], knobs: Sequence[str]) -> list[dict[str, Any]]:
    """`sweep show`: the results table, sorted as shown, best point marked."""
    return [
        {
            "point": r.number, "run": r.run, "state": r.state, "best": r.best,
            **{k: r.values.get(k) for k in knobs},
            "epochs_done": r.epoch, "epochs_planned": r.epochs,
            **{c: getattr(r, c) for c in SWEEP_METRIC_COLUMNS[2:]},
        }
        for r in results
    ]
