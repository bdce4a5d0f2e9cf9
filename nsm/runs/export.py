"""A run's history and results as CSV and JSON files, for spreadsheets and scripts.

Torch-free: everything comes from the run directory (events, history,
final_results.json, saved evaluations), so it works on runs made by any
process, including unfinished, interrupted and failed ones. Files are
written atomically and named after the run, so the exports of many runs can
share one folder.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from nsm.atomic import atomic_write_json, atomic_write_text
from nsm.runs.checkpoints import BEST_FILE
from nsm.runs.compare import dig, ood_numbers
from nsm.runs.cache import load_json_object
from nsm.runs.errors import RunStoreError
from nsm.runs.hardware import gpu_used
from nsm.runs.history import TRAIN_KEYS, VAL_KEYS
from nsm.runs.store import Run

FORMATS = ("csv", "json")


class ExportError(RunStoreError):
    """The export could not be written; the message names the folder or file."""


def history_columns() -> list[str]:
    return ["epoch", *(f"train_{k}" for k in TRAIN_KEYS), *(f"val_{k}" for k in VAL_KEYS)]


def history_rows(history: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One dict per epoch: the train metrics, and the val metrics of that
    epoch or None where it was not evaluated (validation runs every
    EVAL_EVERY epochs). An epoch validated but without train metrics (a log
    cut short) still gets its row."""
    epochs = [e for e in history.get("epochs") or [] if isinstance(e, int)]
    train = history.get("train") or {}
    val = history.get("val") or {}
    train_at = {e: i for i, e in enumerate(history.get("epochs") or []) if isinstance(e, int)}
    val_at = {e: i for i, e in enumerate(val.get("epochs") or []) if isinstance(e, int)}
    rows = []
    for epoch in sorted(set(epochs) | set(val_at)):
        row: dict[str, Any] = {"epoch": epoch}
        i = train_at.get(epoch)
        for k in TRAIN_KEYS:
            row[f"train_{k}"] = _at(train.get(k), i)
        j = val_at.get(epoch)
        for k in VAL_KEYS:
            row[f"val_{k}"] = _at(val.get(k), j)
        rows.append(row)
    return rows


def _at(values: Any, i: int | None) -> Any:
    if i is None or not isinstance(values, list) or i >= len(values):
        return None
    return values[i]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else ("inf" if value > 0 else "-inf"))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def to_csv(columns: list[str], rows: Iterable[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def history_csv(history: Mapping[str, Any]) -> str:
    return to_csv(history_columns(), history_rows(history))


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as dotted keys; lists kept whole (a confusion matrix is one value)."""
    if isinstance(obj, Mapping):
        out: list[tuple[str, Any]] = []
        for key, value in obj.items():
            out += flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    return [(prefix, obj)]


def saved_evaluations(run: Run) -> dict[str, dict[str, Any]]:
    """Saved checkpoint evaluations (evaluation_<stem>.json), by checkpoint file."""
    found: dict[str, dict[str, Any]] = {}
    try:
        names = sorted(p.name for p in run.path.glob("evaluation_*.json"))
    except OSError:
        return found
    for name in names:
        try:
            data = load_json_object(run.path / name, "evaluation")
        except RunStoreError:
            continue  # half-written or damaged: not worth failing an export for
        if data is not None:
            found[str(data.get("checkpoint") or name[len("evaluation_") : -len(".json")] + ".pt")] = data
    return found


def run_results(run: Run) -> dict[str, Any]:
    """Everything known about a run's outcome, as one JSON-ready dict:
    status and summary from the log, final_results.json when the run
    finished, and saved checkpoint evaluations. Unreadable parts are named
    in `problems` instead of failing the export."""
    problems: list[str] = []
    summary = run.summary()
    if summary.problem:
        problems.append(summary.problem)
    final: dict[str, Any] | None = None
    try:
        final = run.results()
    except RunStoreError as exc:
        problems.append(str(exc))
    state = summary.state
    evaluations = saved_evaluations(run)
    ood_acc, ood_loss = ood_numbers(state, final or {}, evaluations.get(BEST_FILE) or {})
    return {
        "run": run.name,
        "domain": run.domain,
        "path": str(run.path),
        "status": summary.status,
        "epochs_done": state.epoch,
        "epochs_planned": summary.epochs,
        "best_epoch": state.best_epoch,
        "best_val_loss": state.best_val_loss,
        "best_val_acc": state.best_val_acc,
        "test_acc": state.test_acc if state.test_acc is not None else dig(final, "test", "acc"),
        "test_loss": state.test_loss if state.test_loss is not None else dig(final, "test", "loss"),
        # Beside test: the best model's accuracy on each out-of-distribution split ({} before them).
        "ood_acc": ood_acc,
        "ood_loss": ood_loss,
        "error": state.error,
        "started": state.started,
        "finished": state.finished,
        "params": state.params if state.params is not None else dig(final, "params"),
        "gpu": gpu_used(run, summary.config or {}),  # what it trained on; None: no GPU (config's gpu is Modal's knob)
        "config": summary.config,
        "final_results": final,
        "evaluations": evaluations,
        "problems": problems,
    }



def results_csv(results: Mapping[str, Any]) -> str:
    """The results as `key,value` rows (nested keys dotted)."""
    rows = [{"key": k, "value": v} for k, v in flatten(results)]
    return to_csv(["key", "value"], rows)


def export_file_names(run: Run, fmt: str) -> tuple[str, str]:
    return f"{run.name}_history.{fmt}", f"{run.name}_results.{fmt}"


def export_run(run: Run, fmt: str, out_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write `<run>_history.<fmt>` and `<run>_results.<fmt>` (fmt csv or json)
    into `out_dir` (default: the run directory); returns the paths."""
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)} (got {fmt!r}); Markdown reports come from the TUI")
    if not run.exists():
        raise ExportError(f"run directory {run.path} does not exist (deleted?)")
    out = Path(out_dir) if out_dir is not None else run.path
    history = run.history()
    results = run_results(run)
    history_name, results_name = export_file_names(run, fmt)
    paths = [out / history_name, out / results_name]
    try:
        out.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            atomic_write_text(paths[0], history_csv(history))
            atomic_write_text(paths[1], results_csv(results))
        else:
            atomic_write_json(paths[0], _json_safe({"run": run.ref, **history}))
            atomic_write_json(paths[1], _json_safe(results))
    except OSError as exc:
        raise ExportError(f"cannot write the export to {out}: {exc.strerror or exc}") from None
    return paths


def _json_safe(obj: Any) -> Any:
    """NaN and infinities as null: strict JSON readers refuse them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj
