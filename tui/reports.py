"""Markdown reports of a run or of a comparison: tables, plus the charts as text.

The charts are drawn by plotext into plain text (`render_to_text`) inside
fenced blocks, so a report reads the same in a terminal, a pull request or a
notebook. Torch-free: the numbers come from the run directory (log, history,
final_results.json, saved evaluations).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from nsm.atomic import atomic_write_text
from nsm.runs import Run
from nsm.runs.checkpoints import BEST_FILE
from nsm.runs.compare import CRITERIA, Comparison, build_comparison, differences_table, metrics_table, ood_label, ood_rows
from nsm.runs.export import ExportError, run_results
from nsm.runs.hardware import config_for_display
from tui.formatting import fmt
from tui.plot_text import render_to_text, set_axes

CHART_W, CHART_H = 72, 16
# Plain text has no colour: overlaid series differ by their marker.
TEXT_MARKERS = ("*", "+", "x", "o", "#", "@", "%", "&")


# ------------------------------------------------------------------ helpers


def _esc(value: Any) -> str:
    text = fmt(value) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [list(r) for r in rows]
    numeric = [bool(rows) and all(_is_number(r[i]) for r in rows) for i in range(len(columns))]
    lines = ["| " + " | ".join(_esc(c) for c in columns) + " |"]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_esc(v) for v in row) + " |")
    return "\n".join(lines)


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _when(t: Any) -> str:
    if not isinstance(t, (int, float)):
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
    except (OverflowError, ValueError, OSError):  # inf, nan or far out of range in a damaged file
        return "-"


def duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _finite_points(xs: Sequence[Any], ys: Sequence[Any]) -> tuple[list[float], list[float]]:
    px, py = [], []
    for x, y in zip(xs, ys):
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isfinite(y):
            px.append(x)
            py.append(y)
    return px, py


def text_chart(title: str, series: Sequence[tuple[str, Sequence[Any], Sequence[Any]]], y_label: str = "") -> str | None:
    """Line chart of (label, x, y) series as text; None if nothing to draw."""
    points = [(label, *_finite_points(x, y)) for label, x, y in series]
    points = [p for p in points if p[1]]
    if not points:
        return None

    def draw(plt: Any) -> None:
        plt.title(title)
        for i, (label, xs, ys) in enumerate(points):
            plt.plot(xs, ys, label=label, marker=TEXT_MARKERS[i % len(TEXT_MARKERS)])
        # Every chart of a report is by epoch: whole-number ticks, none skipped.
        set_axes(plt, [x for p in points for x in p[1]], [y for p in points for y in p[2]], CHART_W, CHART_H, integer_x=True)
        if y_label:
            plt.ylabel(y_label)

    return render_to_text(draw, CHART_W, CHART_H)


def text_bars(title: str, labels: Sequence[str], values: Sequence[Any]) -> str | None:
    pairs = [(label, v) for label, v in zip(labels, values) if isinstance(v, (int, float)) and math.isfinite(v)]
    if not pairs:
        return None

    def draw(plt: Any) -> None:
        plt.title(title)
        plt.bar([p[0] for p in pairs], [p[1] for p in pairs], width=0.6)

    return render_to_text(draw, CHART_W, max(8, min(CHART_H, 4 + 2 * len(pairs))))


def confidence_text(confidence: Mapping[str, Any], width: int = 40) -> str | None:
    """The confidence histogram as rows of `#` (right) and `x` (wrong)."""
    edges, right, wrong = confidence.get("edges"), confidence.get("correct"), confidence.get("wrong")
    if not (isinstance(edges, list) and isinstance(right, list) and isinstance(wrong, list)) or not right:
        return None
    top = max((r + w for r, w in zip(right, wrong)), default=0) or 1
    lines = ["confidence   right wrong"]
    for i, (r, w) in enumerate(zip(right, wrong)):
        lo, hi = edges[i], edges[i + 1] if i + 1 < len(edges) else None
        bar = "#" * round(width * r / top) + "x" * round(width * w / top)
        lines.append(f"{lo:.2f}-{hi:.2f}  {r:5d} {w:5d}  {bar}" if hi is not None else f"{lo:.2f}  {r:5d} {w:5d}  {bar}")
    lines.append("(# right, x wrong)")
    return "\n".join(lines)


def _fence(text: str | None) -> str:
    return f"```text\n{text.rstrip()}\n```" if text else "_no data_"


# ----------------------------------------------------------- evaluation parts


def baseline_rows(evaluation: Mapping[str, Any]) -> list[list[Any]]:
    """The model beside its baselines: [name, test accuracy]."""
    rows: list[list[Any]] = [["model", evaluation.get("acc")]]
    baselines = evaluation.get("baselines")
    if isinstance(baselines, Mapping):
        names = {"majority": "majority class", "structure_blind": "structure-blind"}
        for key in ("majority", "structure_blind", *[k for k in baselines if k not in ("majority", "structure_blind")]):
            value = baselines.get(key)
            acc = value.get("test_acc") if isinstance(value, Mapping) else value
            if isinstance(acc, (int, float)) and not isinstance(acc, bool):
                rows.append([names.get(key, key.replace("_", " ")), acc])
    return rows


def evaluation_markdown(evaluation: Mapping[str, Any], heading: str = "##") -> str:
    """Test metrics, baselines, confusion matrix, per-class report, confidence
    histogram and per-subtype accuracy of one evaluation dict."""
    parts = [
        md_table(
            ["metric", "value"],
            [
                ["checkpoint", evaluation.get("checkpoint", "-")],
                ["epoch", evaluation.get("epoch")],
                ["graphs", evaluation.get("count")],
                ["accuracy", evaluation.get("acc")],
                ["loss", evaluation.get("loss")],
                ["task loss", evaluation.get("task_loss")],
                ["cycle loss", evaluation.get("cycle_loss")],
                ["macro F1", evaluation.get("macro_f1")],
            ],
        ),
        f"{heading}# Model and baselines (test accuracy)",
        md_table(["predictor", "test acc"], baseline_rows(evaluation)),
    ]
    if evaluation.get("split", "test") == "test":
        rows = ood_rows(evaluation)
        parts.append(f"{heading}# Test and out-of-distribution splits")
        parts.append(
            md_table(
                ["split", "graphs", "acc", "loss", "worst subtype"],
                [[r["label"], r["count"], r["acc"], r["loss"], r["worst"] or "-"] for r in rows],
            )
            if rows
            else "_no out-of-distribution splits in this evaluation (it predates them: evaluate the checkpoint again)_"
        )
    confusion = evaluation.get("confusion")
    classes = list((evaluation.get("per_class") or {}).keys()) or ["negative", "positive"]
    if isinstance(confusion, list) and confusion:
        parts += [
            f"{heading}# Confusion matrix (rows: true class, columns: predicted)",
            md_table(["true \\ predicted", *classes], [[classes[i] if i < len(classes) else i, *row] for i, row in enumerate(confusion)]),
        ]
    per_class = evaluation.get("per_class")
    if isinstance(per_class, Mapping) and per_class:
        parts += [
            f"{heading}# Per class",
            md_table(
                ["class", "precision", "recall", "F1", "support"],
                [[name, v.get("precision"), v.get("recall"), v.get("f1"), v.get("support")] for name, v in per_class.items()],
            ),
        ]
    confidence = evaluation.get("confidence")
    if isinstance(confidence, Mapping):
        parts += [f"{heading}# Prediction confidence", _fence(confidence_text(confidence))]
    per_subtype = evaluation.get("per_subtype")
    if isinstance(per_subtype, Mapping) and per_subtype:
        parts += [
            f"{heading}# Accuracy per subtype",
            md_table(["subtype", "acc", "graphs"], [[k, v.get("acc"), v.get("count")] for k, v in per_subtype.items()]),
        ]
    return "\n\n".join(parts)


def _best_evaluation(results: Mapping[str, Any]) -> Mapping[str, Any] | None:
    evaluations = results.get("evaluations") or {}
    if isinstance(evaluations.get(BEST_FILE), Mapping):
        return evaluations[BEST_FILE]
    final = results.get("final_results") or {}
    test = final.get("test") if isinstance(final, Mapping) else None
    if isinstance(test, Mapping):
        best = {"checkpoint": final.get("checkpoint") or BEST_FILE, "epoch": final.get("best_epoch"), **test, "baselines": final.get("baselines")}
        if isinstance(final.get("ood"), Mapping):
            best["ood"] = final["ood"]
        return best
    return None


# ----------------------------------------------------------------- reports


def run_report(run: Run) -> str:
    """A run as Markdown: summary, config, test evaluation, curves, history."""
    results = run_results(run)
    history = run.history()
    final = results.get("final_results") or {}
    timings = final.get("timings") if isinstance(final, Mapping) else None
    out = [f"# Run `{run.ref}`", f"_Report written {_when(time.time())} by nsm-tui._"]
    out.append(
        md_table(
            ["field", "value"],
            [
                ["status", results["status"]],
                ["domain", run.domain],
                ["epochs", f"{results['epochs_done']} / {fmt(results['epochs_planned'])}"],
                ["best epoch", results["best_epoch"]],
                ["best val loss", results["best_val_loss"]],
                ["best val acc", results["best_val_acc"]],
                ["test acc", results["test_acc"]],
                ["test loss", results["test_loss"]],
                *[[f"{ood_label(name)} acc", acc] for name, acc in (results.get("ood_acc") or {}).items()],
                ["parameters", results["params"]],
                ["GPU", results.get("gpu") or "none (CPU)"],
                ["started", _when(results["started"])],
                ["ended", _when(results["finished"])],
                ["training time", duration(timings.get("total_s")) if isinstance(timings, Mapping) else "-"],
                ["path", str(run.path)],
                *([["error", results["error"]]] if results["error"] else []),
            ],
        )
    )
    if results["problems"]:
        out.append("**Problems reading this run:** " + "; ".join(results["problems"]))
    config = results.get("config")
    out.append("## Config")
    out.append(
        md_table(["setting", "value"], [[k, v] for k, v in config_for_display(config).items() if k != "schema_version"])
        if isinstance(config, Mapping)
        else "_config.json is missing or unreadable_"
    )
    evaluation = _best_evaluation(results)
    out.append("## Test evaluation")
    out.append(evaluation_markdown(evaluation, "##") if evaluation else "_not evaluated yet (evaluate a checkpoint in the TUI, or `nsm-tui eval`)_")
    out.append("## Training curves")
    out += _curve_charts(history)
    out.append("## History")
    out.append(_history_table(history))
    others = {k: v for k, v in (results.get("evaluations") or {}).items() if k != BEST_FILE}
    for file, ev in sorted(others.items()):
        out.append(f"## Evaluation of `{file}`")
        out.append(evaluation_markdown(ev, "##"))
    return "\n\n".join(out) + "\n"


def _curve_charts(history: Mapping[str, Any]) -> list[str]:
    epochs = history.get("epochs") or []
    train = history.get("train") or {}
    val = history.get("val") or {}
    val_epochs = val.get("epochs") or []
    charts = [
        text_chart("loss", [("train", epochs, train.get("loss") or []), ("val", val_epochs, val.get("loss") or [])]),
        text_chart("accuracy", [("train", epochs, train.get("acc") or []), ("val", val_epochs, val.get("acc") or [])]),
        text_chart("cycle loss", [("train", epochs, train.get("cycle_loss") or []), ("val", val_epochs, val.get("cycle_loss") or [])]),
    ]
    drawn = [_fence(c) for c in charts if c]
    return drawn or ["_no epochs yet_"]


def _history_table(history: Mapping[str, Any]) -> str:
    from nsm.runs.export import history_rows

    rows = history_rows(history)
    if not rows:
        return "_no epochs yet_"
    cols = [
        ("epoch", "epoch"), ("train_loss", "loss"), ("train_acc", "acc"), ("train_cycle_loss", "cycle"),
        ("train_lr", "lr"), ("val_loss", "val loss"), ("val_acc", "val acc"), ("train_epoch_time_s", "time (s)"),
    ]  # fmt: skip
    return md_table([label for _, label in cols], [[r.get(key) for key, _ in cols] for r in rows])


def comparison_report(runs: Comparison | Sequence[Run], title: str | None = None) -> str:
    """A comparison as Markdown: the metrics table (missing domains listed),
    differing config values, bar charts and the overlaid val-accuracy curves."""
    comparison = runs if isinstance(runs, Comparison) else build_comparison(list(runs))
    heading = title or (
        f"Best run per domain (by {CRITERIA.get(comparison.criterion or '', comparison.criterion)})"
        if comparison.criterion
        else f"Comparison of {len(comparison.runs)} runs"
    )
    out = [f"# {heading}", f"_Report written {_when(time.time())} by nsm-tui._"]
    columns, rows = metrics_table(comparison)
    out += ["## Final metrics", md_table(columns, rows)]
    if comparison.missing:
        out.append("**Missing:** " + ", ".join(f"{d} (no run)" for d in comparison.missing))
    if comparison.problems:
        out.append("**Problems:** " + "; ".join(comparison.problems))
    out.append("## Config values that differ")
    if comparison.differences:
        out.append(md_table(*differences_table(comparison)))
    else:
        out.append("_all compared configs are the same_" if len(comparison.runs) > 1 else "_one run: nothing to compare_")
    labels = [m.name for m in comparison.runs]
    out.append("## Charts")
    for title_, values in (
        ("test accuracy", [m.test_acc for m in comparison.runs]),
        ("best val loss", [m.best_val_loss for m in comparison.runs]),
        ("final cycle loss", [m.final_cycle_loss for m in comparison.runs]),
        ("training time (s)", [m.training_time_s for m in comparison.runs]),
    ):
        out.append(f"### {title_}")
        out.append(_fence(text_bars(title_, labels, values)))
    out.append("### Validation accuracy")
    curves = text_chart("val accuracy", [(m.name, m.val_epochs, m.val_acc) for m in comparison.runs])
    out.append(_fence(curves))
    return "\n\n".join(out) + "\n"


def report_file_name(run: Run) -> str:
    return f"{run.name}_report.md"


def write_report(run: Run, out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write `<run>_report.md` into `out_dir` (default: the run directory)."""
    if not run.exists():
        raise ExportError(f"run directory {run.path} does not exist (deleted?)")
    out = Path(out_dir) if out_dir is not None else run.path
    return _write(out / report_file_name(run), lambda: run_report(run))


def write_comparison_report(runs: Comparison | Sequence[Run], out_dir: str | os.PathLike[str], title: str | None = None) -> Path:
    """Write `comparison-<time>.md` into `out_dir`."""
    name = time.strftime("comparison-%Y%m%d-%H%M%S.md")
    return _write(Path(out_dir) / name, lambda: comparison_report(runs, title))


def _write(path: Path, make: Callable[[], str]) -> Path:
    text = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except OSError as exc:
        raise ExportError(f"cannot write the report to {path.parent}: {exc.strerror or exc}") from None
    return path

