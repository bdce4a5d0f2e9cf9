"""Evaluation of one checkpoint on the test split (pushed from the runs screen).

Test accuracy and loss, the model beside its two baselines, the test split
beside the out-of-distribution splits (larger graphs, longer plans), the
confusion matrix, per-class precision/recall/F1/support, the confidence
histogram (right vs wrong per bin) and accuracy per sample subtype.

The work happens in a thread worker: torch is imported there, the first time
a checkpoint is opened, never when the app starts. A saved evaluation newer
than its checkpoint is reused (evaluate_checkpoint does that), so opening
the same checkpoint again is instant; `R` evaluates again from scratch.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from tui.screens.base import AppScreen
from textual.widgets import Footer, Header, ProgressBar, Static
from textual.worker import get_current_worker

from nsm.runs import Run
from nsm.text import plain
from tui.widgets.stacked_bars import StackedBarChart, StackedBars

BASELINE_NAMES = {"majority": "majority class", "structure_blind": "structure-blind"}
# Shown only when the run's dataset stored them (runs from before the probes lack them).
PROBE_ROWS = {"degree_blind": "degree-aware", "wl": "1-WL (info)"}


def _f(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{100 * value:.1f}%"


def summary_table(result: Mapping[str, Any]) -> Table:
    table = Table(title="Test metrics", title_justify="left", box=None, padding=(0, 2), show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    table.add_row("accuracy", Text(_pct(result.get("acc")), style="bold green"))
    table.add_row("loss", _f(result.get("loss")))
    table.add_row("task loss", _f(result.get("task_loss")))
    table.add_row("cycle loss", _f(result.get("cycle_loss")))
    table.add_row("macro F1", _f(result.get("macro_f1")))
    table.add_row("graphs", str(result.get("count", "-")))
    return table


def baselines_table(result: Mapping[str, Any], width: int = 20) -> Table:
    """The model's test accuracy beside the majority-class and structure-blind baselines,
    and the degree-aware and 1-WL probes where the dataset stored them."""
    rows: list[tuple[str, float | None, str]] = [("model", result.get("acc"), "bold green")]
    baselines = result.get("baselines") if isinstance(result.get("baselines"), Mapping) else {}
    for key in ("majority", "structure_blind"):
        value = baselines.get(key)
        acc = value.get("test_acc") if isinstance(value, Mapping) else value
        rows.append((BASELINE_NAMES[key], acc if isinstance(acc, (int, float)) else None, "yellow"))
    for key, name in PROBE_ROWS.items():
        value = baselines.get(key)
        acc = value.get("test_acc") if isinstance(value, Mapping) else None
        if isinstance(acc, (int, float)):
            worst = value.get("worst_subtype")
            if isinstance(worst, Mapping) and isinstance(worst.get("acc"), (int, float)):
                name = f"{name} (worst {100 * worst['acc']:.0f}%)"
            rows.append((name, acc, "dim" if key == "wl" else "yellow"))
    table = Table(title="Model vs baselines (test acc)", title_justify="left", box=None, padding=(0, 1))
    table.add_column("predictor")
    table.add_column("acc", justify="right")
    table.add_column("")
    for name, acc, style in rows:
        bar = Text("█" * round(width * acc), style=style) if isinstance(acc, (int, float)) else Text("n/a", style="dim")
        table.add_row(name, _pct(acc), bar)
    model, blind = rows[0][1], rows[2][1]
    if isinstance(model, (int, float)) and isinstance(blind, (int, float)):
        gap = model - blind
        table.caption = f"{'+' if gap >= 0 else ''}{100 * gap:.1f} points over structure-blind"
    return table


def ood_table(result: Mapping[str, Any]) -> Table | Text:
    """Test beside each out-of-distribution split: graphs, accuracy, the change from
    test, loss and the worst subtype. An evaluation saved before the OOD splits
    existed shows a dash and how to add them."""
    from nsm.runs.compare import ood_rows

    rows = ood_rows(result)
    if not rows:
        return Text("Out-of-distribution splits: — (not in this evaluation; R: evaluate again)", style="dim")
    table = Table(title="Test vs out-of-distribution splits", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    for col in ("split", "graphs", "acc", "Δ test", "loss", "worst subtype"):
        table.add_column(col, justify="left" if col in ("split", "worst subtype") else "right", no_wrap=True)
    test_acc = rows[0]["acc"]
    for i, row in enumerate(rows):
        acc = row["acc"]
        delta = "" if i == 0 or acc is None or test_acc is None else f"{100 * (acc - test_acc):+.1f}"
        style = "bold green" if i == 0 else ("red" if isinstance(acc, float) and acc < 0.6 else "")
        table.add_row(
            Text(row["label"], style="bold" if i == 0 else ""),
            "-" if row["count"] is None else str(row["count"]),
            Text(_pct(acc), style=style),
            delta,
            _f(row["loss"]),
            row["worst"] or "-",
        )
    return table


def confusion_table(result: Mapping[str, Any]) -> Table:
    confusion = result.get("confusion") or []
    classes = list((result.get("per_class") or {}).keys()) or ["negative", "positive"]
    table = Table(title="Confusion matrix (rows: true)", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("true \\ pred", style="bold")
    for name in classes:
        table.add_column(name, justify="right")
    for i, row in enumerate(confusion):
        total = sum(row) or 1
        cells = []
        for j, count in enumerate(row):
            style = "green" if i == j else ("red" if count else "dim")
            cells.append(Text(f"{count} ({100 * count / total:.0f}%)", style=style))
        table.add_row(classes[i] if i < len(classes) else str(i), *cells)
    return table


def per_class_table(result: Mapping[str, Any]) -> Table:
    table = Table(title="Per class", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for col in ("class", "prec", "rec", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right", no_wrap=True)
    for name, v in (result.get("per_class") or {}).items():
        table.add_row(name, _f(v.get("precision"), 2), _f(v.get("recall"), 2), _f(v.get("f1"), 2), str(v.get("support", "-")))
    return table


def subtype_table(result: Mapping[str, Any]) -> Table | Text:
    per = result.get("per_subtype") or {}
    if not per:
        return Text("no per-subtype breakdown for this domain", style="dim")
    table = Table(title="Accuracy per subtype", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("subtype")
    table.add_column("acc", justify="right")
    table.add_column("graphs", justify="right")
    for name, v in per.items():
        acc = v.get("acc")
        style = "green" if isinstance(acc, (int, float)) and acc >= 0.8 else ("red" if isinstance(acc, (int, float)) and acc < 0.6 else "")
        table.add_row(name, Text(_pct(acc), style=style), str(v.get("count", "-")))
    return table


def confidence_bars(result: Mapping[str, Any]) -> StackedBars | None:
    conf = result.get("confidence") or {}
    edges, right, wrong = conf.get("edges"), conf.get("correct"), conf.get("wrong")
    if not (isinstance(edges, list) and isinstance(right, list) and isinstance(wrong, list)):
        return None
    labels = [f"{e:.2f}"[1:] if e < 1 else "1.0" for e in edges[: len(right)]]
    return StackedBars(labels, [("right", list(right)), ("wrong", list(wrong))], colors=["green", "red"])


class EvaluationScreen(AppScreen):
    DEFAULT_CSS = """
    EvaluationScreen #eval-title {
        height: 1;
        padding: 0 1;
        text-style: bold;
        background: $boost;
    }
    EvaluationScreen #eval-stage {
        height: auto;
        padding: 0 1;
    }
    EvaluationScreen #eval-progress {
        padding: 0 1;
    }
    EvaluationScreen #eval-body {
        height: 1fr;
        scrollbar-gutter: stable;
    }
    EvaluationScreen .eval-row {
        height: auto;
    }
    EvaluationScreen .eval-row > Static {
        width: 1fr;
        height: auto;
        padding: 0 1;
    }
    EvaluationScreen #eval-summary, EvaluationScreen #eval-confusion {
        width: auto;
    }
    EvaluationScreen #eval-confidence {
        height: 12;
    }
    EvaluationScreen #eval-subtypes, EvaluationScreen #eval-ood {
        height: auto;
        padding: 0 1;
    }
    """
    BINDINGS = [
        Binding("escape,q", "close", "Back"),
        Binding("R", "reevaluate", "Re-evaluate"),
        Binding("m", "report", "Report (md)"),
    ]

    class Evaluated(Message):
        def __init__(self, result: dict[str, Any] | None, error: str | None) -> None:
            super().__init__()
            self.result = result
            self.error = error

    def __init__(self, run: Run, checkpoint: str | None = None):
        super().__init__()
        self.eval_run = run
        self.checkpoint = checkpoint or "best_model.pt"
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Evaluation of {escape(self.eval_run.ref)} · {escape(plain(self.checkpoint))} · test split", id="eval-title")
        yield Static("", id="eval-stage")
        yield ProgressBar(total=None, show_eta=False, id="eval-progress")
        with VerticalScroll(id="eval-body"):
            with Horizontal(classes="eval-row"):
                yield Static("", id="eval-summary")
                yield Static("", id="eval-baselines")
            yield Static("", id="eval-ood")
            with Horizontal(classes="eval-row"):
                yield Static("", id="eval-confusion")
                yield Static("", id="eval-perclass")
            yield StackedBarChart("prediction confidence: right vs wrong", id="eval-confidence", empty_text="waiting for the evaluation")
            yield Static("", id="eval-subtypes")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#eval-body").focus()
        self.start(reuse=True)

    def start(self, reuse: bool) -> None:
        self.busy = True
        self.error = None
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self._stage("loading the checkpoint, the test and OOD splits (the first time also loads torch)…")
        self.evaluate(reuse)

    def _stage(self, text: str | Text) -> None:
        self.query_one("#eval-stage", Static).update(text)

    @work(thread=True, exclusive=True, group="evaluate", exit_on_error=False)
    def evaluate(self, reuse: bool) -> None:
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if not worker.is_cancelled:
                self._call(self._progress, done, total)

        result, error = None, None
        try:
            from nsm.training.evaluation import evaluate_checkpoint

            result = evaluate_checkpoint(self.eval_run, self.checkpoint, progress=progress, reuse=reuse)
        except Exception as exc:  # shown on the screen: a bad checkpoint must not take the app down
            error = _describe_error(exc, self.checkpoint)
        if not worker.is_cancelled:
            self._call(self._done, result, error)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            self.app.call_from_thread(fn, *args, **kwargs)
        except RuntimeError:
            pass  # the app is closing

    def _progress(self, done: int, total: int) -> None:
        self.query_one("#eval-progress", ProgressBar).update(total=total, progress=done)
        if done < total:
            self._stage(f"evaluating: {done}/{total} test graphs")
        else:  # evaluate_checkpoint goes on with the OOD splits (no progress of their own)
            self._stage(f"evaluated {total} test graphs; now the out-of-distribution splits…")

    def _done(self, result: dict[str, Any] | None, error: str | None) -> None:
        self.busy = False
        self.query_one("#eval-progress", ProgressBar).display = False
        self.result, self.error = result, error
        if error is not None:
            self._stage(Text(f"Evaluation failed: {error}", style="bold red"))
        elif result is not None:
            self._show(result)
        self.post_message(self.Evaluated(result, error))

    def _show(self, result: dict[str, Any]) -> None:
        epoch = result.get("epoch")
        if result.get("reused"):
            at = result.get("evaluated_at") or _mtime(self.eval_run.evaluation_path(str(result.get("checkpoint") or self.checkpoint)))
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) if isinstance(at, (int, float)) else "earlier"
            stage = Text(f"saved evaluation from {stamp} (R: evaluate again)", style="dim")
        else:
            took = result.get("eval_time_s")
            stage = Text(f"evaluated in {took:.1f} s and saved in the run" if isinstance(took, (int, float)) else "evaluated", style="green")
        title = f"Evaluation of {self.eval_run.ref} · {result.get('checkpoint', self.checkpoint)}"
        if isinstance(epoch, int):
            title += f" (epoch {epoch})"
        self.query_one("#eval-title", Static).update(escape(plain(title + " · test split")))
        self._stage(stage)
        self.query_one("#eval-summary", Static).update(summary_table(result))
        self.query_one("#eval-baselines", Static).update(baselines_table(result))
        self.query_one("#eval-ood", Static).update(ood_table(result))
        self.query_one("#eval-confusion", Static).update(confusion_table(result))
        self.query_one("#eval-perclass", Static).update(per_class_table(result))
        chart = self.query_one("#eval-confidence", StackedBarChart)
        bars = confidence_bars(result)
        if bars is not None:
            chart.set_stacked(bars)
        else:
            chart.set_empty_text("no confidence histogram in this evaluation")
        self.query_one("#eval-subtypes", Static).update(subtype_table(result))

    def action_close(self) -> None:
        self.workers.cancel_group(self, "evaluate")
        self.app.pop_screen()

    def action_reevaluate(self) -> None:
        if self.busy:
            self.notify("An evaluation is already running", severity="warning")
            return
        self.start(reuse=False)

    @work(thread=True, exclusive=True, group="eval-report", exit_on_error=False)
    def action_report(self) -> None:
        from tui.reports import write_report

        try:
            path = write_report(self.eval_run)
        except Exception as exc:
            self._call(self.notify, f"Could not write the report: {exc}", severity="error")
            return
        self._call(self.notify, str(path), title="Report written", timeout=8)


def _mtime(path: Any) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _describe_error(exc: BaseException, checkpoint: str) -> str:
    text = str(exc).strip() or type(exc).__name__
    known = {"CheckpointError", "ConfigError", "RunStoreError", "RunNotFound", "FileNotFoundError"}
    if type(exc).__name__ not in known:
        # An error torch raised on a damaged file says nothing about which file.
        text = f"checkpoint {checkpoint} could not be evaluated ({type(exc).__name__}: {text}); it may be corrupt"
    return text

