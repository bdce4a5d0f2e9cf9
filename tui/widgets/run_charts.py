"""The notebook's six live charts in one grid that pages when the terminal is small.

Total loss, accuracy, cycle loss and task loss (train and val), learning rate,
GPU memory. As many charts show at once as fit at a readable size (about 38×10
cells each); `[` and `]` page through the rest. Each chart is handed new data
only when the run's history (or GPU samples) changed; the charts themselves
repaint at most twice a second.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid
from textual.message import Message
from textual.reactive import reactive

from tui.live_run import LiveRun
from tui.widgets.chart import PlotextChart, Series
from tui.widgets.gpu import gpu_memory_point, gpu_unavailable_text

MIN_CHART_WIDTH = 38
MIN_CHART_HEIGHT = 10

# (id, title, history key or None for GPU, log-scale allowed)
CHARTS = (
    ("loss", "Total loss", "loss", True),
    ("acc", "Accuracy", "acc", False),
    ("cycle", "Cycle loss", "cycle_loss", True),
    ("task", "Task loss", "task_loss", True),
    ("lr", "Learning rate", "lr", False),
    ("gpu", "GPU memory (GiB)", None, False),
)
TRAIN_COLOR, VAL_COLOR = "cyan", "orange"


class PagesChanged(Message):
    """The number of chart pages changed (the paging keys may appear or go)."""


class ChartDeck(Grid, can_focus=True):
    DEFAULT_CSS = """
    ChartDeck {
        grid-gutter: 0 1;
        height: 1fr;
        min-height: 8;
    }
    ChartDeck PlotextChart {
        height: 1fr;
        min-height: 5;
    }
    ChartDeck:focus {
        background-tint: $foreground 4%;
    }
    """

    page = reactive(0)
    log_scale = reactive(False)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.charts: dict[str, PlotextChart] = {}
        self.per_page = len(CHARTS)
        self._history_version = -1
        self._gpu_version = -1
        self._run_id: int | None = None
        self._failed = False

    def compose(self) -> ComposeResult:
        for chart_id, title, _key, _log in CHARTS:
            empty = "waiting for the first epoch" if chart_id != "gpu" else "no GPU samples yet"
            # Epoch-level curves: once a second is live enough, and each repaint takes from an in-process run.
            chart = PlotextChart(title, empty_text=empty, max_hz=1.0, id=f"chart-{chart_id}")
            chart.integer_x = chart_id != "gpu"  # epochs; the GPU chart's x is minutes
            self.charts[chart_id] = chart
            yield chart

    # ---------------------------------------------------------------- paging
    @property
    def pages(self) -> int:
        return max(1, -(-len(CHARTS) // self.per_page))

    def on_resize(self) -> None:
        self._layout_pages()

    def on_mount(self) -> None:
        self._layout_pages()

    def _layout_pages(self) -> None:
        width, height = self.size.width, self.size.height
        if width <= 0 or height <= 0:
            return
        cols = max(1, min(3, width // MIN_CHART_WIDTH))
        rows = max(1, min(2, height // MIN_CHART_HEIGHT))
        per_page = min(len(CHARTS), cols * rows)
        self.styles.grid_size_columns = cols
        self.styles.grid_size_rows = rows
        changed = per_page != self.per_page
        self.per_page = per_page
        if self.page >= self.pages:
            self.page = self.pages - 1
        self._show_page()
        if changed:
            self.post_message(PagesChanged())

    def watch_page(self) -> None:
        self._show_page()

    def _show_page(self) -> None:
        first = self.page * self.per_page
        for i, chart in enumerate(self.charts.values()):
            chart.display = first <= i < first + self.per_page

    def next_page(self, step: int = 1) -> None:
        self.page = (self.page + step) % self.pages

    def page_label(self) -> str:
        return f"charts {self.page + 1}/{self.pages}" if self.pages > 1 else ""

    def watch_log_scale(self, on: bool) -> None:
        for chart_id, _title, _key, allowed in CHARTS:
            if allowed:
                self.charts[chart_id].set_log_y(on)

    # ------------------------------------------------------------------ data
    def clear(self) -> None:
        self._history_version = self._gpu_version = -1
        self._run_id = None
        self._show_failed(False)
        for chart_id, chart in self.charts.items():
            chart.set_empty_text("waiting for the first epoch" if chart_id != "gpu" else "no GPU samples yet")
            chart.set_series([])

    def show(self, live: LiveRun) -> None:
        """Hand the charts the run's data, where it changed since the last call."""
        if self._run_id != live.serial:
            self._run_id = live.serial
            self._history_version = self._gpu_version = -1
        self._show_failed(live.status == "failed")
        if live.history_version != self._history_version:
            self._history_version = live.history_version
            self._show_history(live.history())
        if live.gpu_version != self._gpu_version:
            self._gpu_version = live.gpu_version
            self._show_gpu(live)

    def _show_failed(self, failed: bool) -> None:
        """A failed run's curves stop where it broke: every title says so, so that they
        never read as a run still to come or one that ended well."""
        if failed == self._failed:
            return
        self._failed = failed
        for chart_id, title, key, _log in CHARTS:
            chart = self.charts[chart_id]
            chart.set_title(f"{title} · failed" if failed else title)
            if key is not None:
                chart.set_empty_text("failed before the first epoch" if failed else "waiting for the first epoch")

    def _show_history(self, h: dict[str, Any]) -> None:
        epochs = h.get("epochs") or []
        train = h.get("train") or {}
        val = h.get("val") or {}
        val_epochs = val.get("epochs") or []
        best = h.get("best_epoch")
        marks = [best] if isinstance(best, int) else []
        for chart_id, _title, key, _log in CHARTS:
            if key is None:
                continue
            # The learning rate is the schedule's, not a train-split metric: its legend says lr.
            series = [Series("train" if key != "lr" else "lr", list(epochs), list(train.get(key) or []), TRAIN_COLOR)]
            if key != "lr":
                series.append(Series("val", list(val_epochs), list(val.get(key) or []), VAL_COLOR))
            self.charts[chart_id].set_series(series, vlines=marks if key != "lr" else [])

    def _show_gpu(self, live: LiveRun) -> None:
        chart = self.charts["gpu"]
        unavailable = gpu_unavailable_text(live.gpu_sample)
        if unavailable is not None:
            chart.set_empty_text(unavailable)
            chart.set_series([])
            return
        chart.set_empty_text("no GPU samples yet")
        samples = list(live.gpu_samples)
        t0 = live.t0 if live.t0 is not None else (samples[0][0] if samples else 0.0)
        xs: list[float] = []
        used: list[float | None] = []
        alloc: list[float | None] = []
        for t, sample in samples:
            xs.append((t - t0) / 60.0)
            point = gpu_memory_point(sample)
            used.append(None if point is None else point / 1024.0)
            torch_memory = sample.get("torch_memory")
            value = torch_memory.get("allocated_mib") if isinstance(torch_memory, dict) else None
            alloc.append(value / 1024.0 if isinstance(value, (int, float)) and not isinstance(value, bool) else None)
        series = []
        if any(v is not None for v in used):
            series.append(Series("used", xs, used, "green"))  # type: ignore[arg-type]
        if any(v is not None for v in alloc):
            series.append(Series("torch", xs, alloc, "magenta"))  # type: ignore[arg-type]
        chart.set_series(series)
