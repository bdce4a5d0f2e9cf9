"""Comparison (F3): the best run of each domain, or runs picked by hand,
side by side — final metrics, the config values that differ, bar charts of
test accuracy, val loss, cycle loss and training time, and the
val-accuracy curves overlaid, one stable colour per run.

A domain without any run is listed as missing, not treated as an error.
The comparison is built in a thread worker (it reads each run's history).
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.message import Message
from tui.screens.base import AppScreen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from nsm.runs.compare import (
    CRITERIA,
    TEST_ACC,
    VAL_LOSS,
    Comparison,
    compare_best_per_domain,
    compare_runs,
    metric_columns,
    metric_value,
    ood_label,
)
from nsm.runs.aggregate import SHORT_LEGEND, group_by_config, group_comparison, groups_apply
from nsm.text import plain
from tui.columns import DATA_TABLE, Column, fit_columns
from tui.dialogs.analysis_dialogs import PickRunsDialog
from tui.widgets.chart import PALETTE, Bars, PlotextChart, Series

# plotext colour names that Rich spells differently.
RICH_COLOURS = {"orange": "dark_orange", "gray": "grey50"}

BAR_CHARTS = (
    # (widget id, title, RunMetrics attribute)
    ("bar-test-acc", "test accuracy", "test_acc"),
    ("bar-val-loss", "best val loss", "best_val_loss"),
    ("bar-cycle", "final cycle loss", "final_cycle_loss"),
    ("bar-time", "training time (s)", "training_time_s"),
)


def short_label(name: str, limit: int = 12) -> str:
    # Generated names end in a time stamp and a random suffix: the end tells runs apart.
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def bar_labels(comparison: Comparison) -> list[str]:
    domains = [m.domain for m in comparison.runs]
    if len(set(domains)) == len(domains):
        return domains
    return [short_label(m.name) for m in comparison.runs]


class ColourBook:
    """A colour per run that stays the same while the selection changes
    (until more runs are shown at once than there are colours)."""

    def __init__(self) -> None:
        self.colours: dict[str, str] = {}

    def assign(self, refs: list[str]) -> dict[str, str]:
        result: dict[str, str] = {}
        used: set[str] = set()
        for ref in refs:  # runs keep their colour, unless another shown run holds it
            colour = self.colours.get(ref)
            if colour is not None and colour not in used:
                result[ref] = colour
                used.add(colour)
        for ref in refs:
            if ref not in result:
                free = [c for c in PALETTE if c not in used] or list(PALETTE)
                result[ref] = self.colours[ref] = free[0]
                used.add(free[0])
        return result


def fmt_metric(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "training_time_s":
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _group_column(label: str) -> Column:
    # At 80 columns the OOD accuracies go first, then status/model; the metrics and the row's identity stay.
    if label in ("", "runs", "n", "domain"):
        return Column(label or " ", keep=True)
    if label.startswith("OOD"):
        return Column(label, priority=10, numeric=True)
    if label in ("status", "model"):
        return Column(label, priority=20)
    return Column(label, numeric=True)


def _plain_cell(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


class CompareScreen(AppScreen):
    DEFAULT_CSS = """
    CompareScreen #compare-status {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    CompareScreen #compare-metrics {
        height: auto;
        max-height: 12;
    }
    CompareScreen #compare-diff-title {
        height: 1;
        padding: 0 1;
        margin-top: 1;
        text-style: bold;
    }
    CompareScreen #compare-diff {
        height: auto;
        max-height: 12;
    }
    CompareScreen #compare-bars {
        grid-size: 2 2;
        height: 1fr;
    }
    CompareScreen #compare-bars PlotextChart {
        min-height: 5;
    }
    CompareScreen #compare-curves {
        height: 1fr;
    }
    """
    BINDINGS = [
        Binding("b", "best", "Best per domain"),
        Binding("t", "toggle_criterion", "By val loss/test acc"),
        Binding("p", "pick", "Pick runs"),
        Binding("m", "report", "Report (md)"),
        Binding("g", "toggle_grouping", "Per run/by config", show=False),  # named in the status line when it applies
        Binding("1", "tab('cmp-table')", "Table", show=False),
        Binding("2", "tab('cmp-bars')", "Charts", show=False),
        Binding("3", "tab('cmp-curves')", "Curves", show=False),
        Binding("R", "reload", "Reload", show=False),
    ]

    class Compared(Message):
        def __init__(self, comparison: Comparison) -> None:
            super().__init__()
            self.comparison = comparison

    def __init__(self) -> None:
        super().__init__()
        self.mode = "best"  # or "picked"
        self.criterion = VAL_LOSS
        self.picked: list[str] = []
        self.comparison: Comparison | None = None
        self.colours = ColourBook()
        # Runs of one config with several seeds are shown as one row (mean ± CI) unless `g` asks per run.
        self.group_seeds = True

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("comparing…", id="compare-status")
        with TabbedContent(initial="cmp-table"):
            with TabPane("Table (1)", id="cmp-table"):
                yield DataTable(id="compare-metrics", cursor_type="row", zebra_stripes=True)
                yield Static("Config values that differ", id="compare-diff-title")
                yield DataTable(id="compare-diff", cursor_type="row")
            with TabPane("Charts (2)", id="cmp-bars"):
                with Grid(id="compare-bars"):
                    for chart_id, title, _ in BAR_CHARTS:
                        yield PlotextChart(title, id=chart_id, empty_text="no run has this number")
            with TabPane("Val acc (3)", id="cmp-curves"):
                curves = PlotextChart("validation accuracy", id="compare-curves", empty_text="no validation points yet")
                curves.integer_x = True  # by epoch
                yield curves
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def on_screen_resume(self) -> None:
        if self.comparison is not None:
            self.load()

    # --------------------------------------------------------- selection

    def show_runs(self, refs: list[str]) -> None:
        """Compare these runs (called by the runs screen)."""
        self.mode = "picked"
        self.picked = list(refs)
        self.load()

    def action_best(self) -> None:
        self.mode = "best"
        self.load()

    def action_toggle_criterion(self) -> None:
        self.criterion = TEST_ACC if self.criterion == VAL_LOSS else VAL_LOSS
        if self.mode != "best":
            self.mode = "best"
        self.load()

    def action_toggle_grouping(self) -> None:
        self.group_seeds = not self.group_seeds
        if self.comparison is not None:
            self._show(self.comparison)

    def grouped(self, c: Comparison) -> bool:
        """Whether the table shows one row per config: only when some config has several seeds."""
        return self.group_seeds and self._has_seeds(c)

    @staticmethod
    def _has_seeds(c: Comparison) -> bool:
        return groups_apply(group_by_config(list(c.runs), lambda m: m.config))

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="compare-pick", exit_on_error=False)
    def action_pick(self) -> None:
        # The store is listed off the event loop; the dialog then lives on its own.
        try:
            summaries = self.store.list_runs()
        except Exception as exc:
            self._call(self.notify, f"cannot list {self.store.root}: {exc}", severity="error")
            return
        options = [
            (s.ref, f"{s.domain}/{s.name}  [{s.status}]  val acc {'-' if s.best_val_acc is None else f'{s.best_val_acc:.3f}'}")
            for s in summaries
        ]
        self._call(self._open_picker, options)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            self.app.call_from_thread(fn, *args, **kwargs)
        except RuntimeError:
            pass  # the app is closing

    def _open_picker(self, options: list[tuple[str, str]]) -> None:
        if not options:
            self.notify("The store has no runs to pick", severity="warning")
            return
        current = self.comparison.refs if self.comparison else []

        def chosen(refs: list[str] | None) -> None:
            if refs:
                self.show_runs(refs)

        self.app.push_screen(PickRunsDialog(options, current), chosen)

    @work(exclusive=True, group="compare-report")
    async def action_report(self) -> None:
        if self.comparison is None or (not self.comparison.runs and not self.comparison.missing):
            self.notify("Nothing to report yet", severity="warning")
            return
        from tui.reports import write_comparison_report

        folder = self.store.root / "reports"
        try:
            path = await asyncio.to_thread(write_comparison_report, self.comparison, folder)
        except Exception as exc:
            self.notify(f"Could not write the report: {exc}", severity="error")
            return
        self.notify(str(path), title="Comparison report written", timeout=8)

    # ----------------------------------------------------------- loading

    @work(thread=True, exclusive=True, group="compare-load", exit_on_error=False)
    def load(self) -> None:
        worker = get_current_worker()
        mode, criterion, picked = self.mode, self.criterion, list(self.picked)
        try:
            if mode == "best":
                comparison = compare_best_per_domain(self.store, criterion)
            else:
                comparison = compare_runs(self.store, picked)
        except Exception as exc:  # an unreadable store: say so, keep the screen
            comparison = Comparison([], [], {}, None, [f"cannot compare: {exc}"])
        if not worker.is_cancelled:
            self._call(self._show, comparison)

    def _show(self, comparison: Comparison) -> None:
        self.comparison = comparison
        colours = self.colours.assign(comparison.refs)
        self._show_status(comparison)
        self._show_metrics(comparison, colours)
        self._show_differences(comparison)
        self._show_charts(comparison, colours)
        self.post_message(self.Compared(comparison))

    def _show_status(self, c: Comparison) -> None:
        if c.criterion:
            other = CRITERIA[TEST_ACC if c.criterion == VAL_LOSS else VAL_LOSS]
            text = Text(f"Best run per domain by {CRITERIA[c.criterion]} · t: by {other} · p: pick runs")
        else:
            text = Text(f"{len(c.runs)} picked run(s) · b: best per domain · p: pick runs")
        if self.grouped(c):
            text.append(f"\none row per config · g: per run · {SHORT_LEGEND}")
        elif not self.group_seeds and self._has_seeds(c):
            text.append("\none row per run · g: one row per config (mean ± CI over the seeds)")
        if c.missing:
            text.append("\nmissing: " + ", ".join(f"{d} (no run)" for d in c.missing), style="yellow")
        for problem in c.problems:
            text.append(f"\n{problem}", style="red")
        self.query_one("#compare-status", Static).update(text)

    def _show_metrics(self, c: Comparison, colours: dict[str, str]) -> None:
        table = self.query_one("#compare-metrics", DataTable)
        table.clear(columns=True)
        if self.grouped(c):
            self._show_groups(c, table)
            return
        metrics = metric_columns(c)
        best = self._best_values(c, [key for key, _ in metrics if key.startswith("ood:")])
        rows: list[tuple[str, list[Any]]] = []
        for m in c.runs:
            colour = RICH_COLOURS.get(colours[m.ref], colours[m.ref])
            cells = []
            for key, _ in metrics:
                value = metric_value(m, key)
                style = "bold green" if value is not None and best.get(key) == value and len(c.runs) > 1 else ""
                cells.append(Text(fmt_metric(key, value), style=style, justify="right"))
            rows.append((m.ref, [Text("■", style=colour), Text(m.name, style=colour), Text(plain(m.domain)), Text(plain(m.status)), Text(plain(m.model)), *cells]))
        for domain in c.missing:
            rows.append((f"missing:{domain}", ["", Text("(no run)", style="dim"), domain, Text("missing", style="yellow"), "-", *(["-"] * len(metrics))]))
        columns = [Column(label, keep=True) for label in (" ", "run", "domain", "status", "model")]
        for key, label in metrics:
            # An OOD accuracy is the one column that goes where the room is short (80 columns).
            ood = key.startswith("ood:")
            columns.append(Column(label, priority=10, short=ood_label(key[4:], short=True), numeric=True) if ood else Column(label, keep=True))
        width = table.size.width or self.size.width or self.app.size.width
        layout = fit_columns(columns, [[_plain_cell(x) for x in cells] for _, cells in rows], width, DATA_TABLE)
        self._metrics_width = width
        table.add_columns(*layout.labels)
        for key, cells in rows:
            table.add_row(*layout.pick(cells), key=key)

    def _show_groups(self, c: Comparison, table: DataTable) -> None:
        grouped = group_comparison(c, c.criterion)
        columns = [_group_column(label) for label in grouped.columns]
        width = table.size.width or self.size.width or self.app.size.width
        layout = fit_columns(columns, grouped.rows, width, DATA_TABLE)
        self._metrics_width = width
        table.add_columns(*layout.labels)
        for key, cells in zip(grouped.keys() + [f"missing:{d}" for d in c.missing], grouped.rows):
            table.add_row(*layout.pick([Text(plain(x)) for x in cells]), key=f"group:{key}")

    def on_resize(self) -> None:
        c = self.comparison
        if c is None or not any(m.ood_acc for m in c.runs):
            return  # nothing in the table depends on the width
        table = self.query_one("#compare-metrics", DataTable)
        width = table.size.width or self.size.width or self.app.size.width
        if width != getattr(self, "_metrics_width", None):
            self._show_metrics(c, self.colours.assign(c.refs))

    @staticmethod
    def _best_values(c: Comparison, ood_keys: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        best: dict[str, Any] = {}
        keys = (("test_acc", True), ("best_val_acc", True), ("test_loss", False), ("best_val_loss", False), *((k, True) for k in ood_keys))
        for key, higher in keys:
            values = [metric_value(m, key) for m in c.runs if metric_value(m, key) is not None]
            if values:
                best[key] = max(values) if higher else min(values)
        return best

    def _show_differences(self, c: Comparison) -> None:
        table = self.query_one("#compare-diff", DataTable)
        table.clear(columns=True)
        title = self.query_one("#compare-diff-title", Static)
        if len(c.runs) < 2:
            title.update("Config values that differ: pick two or more runs")
            return
        if not c.differences:
            title.update("Config values that differ: none (same settings)")
            return
        title.update(f"Config values that differ ({len(c.differences)})")
        table.add_columns("setting", *(short_label(m.name, 16) for m in c.runs))
        for key, values in c.differences.items():
            table.add_row(Text(plain(key)), *("-" if values.get(m.ref) is None else Text(plain(values.get(m.ref))) for m in c.runs), key=key)

    def _show_charts(self, c: Comparison, colours: dict[str, str]) -> None:
        # Missing domains are named in the status line above every tab.
        labels = bar_labels(c)
        for chart_id, title, attr in BAR_CHARTS:
            chart = self.query_one(f"#{chart_id}", PlotextChart)
            pairs = [(label, getattr(m, attr)) for label, m in zip(labels, c.runs) if getattr(m, attr) is not None]
            chart.set_bars(Bars([p[0] for p in pairs], [p[1] for p in pairs]))
        curves = self.query_one("#compare-curves", PlotextChart)
        curves.set_series(
            [
                Series(short_label(m.name, 20), [float(e) for e in m.val_epochs], [a for a in m.val_acc], colours[m.ref])
                for m in c.runs
            ]
        )

    @on(TabbedContent.TabActivated)
    def _tab_shown(self) -> None:
        # A chart laid out while its tab was hidden had no size: paint it now.
        for chart in self.query(PlotextChart):
            chart.refresh_chart()
