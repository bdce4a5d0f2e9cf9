"""A plotext chart as a Textual widget (the dolphie way: build to ANSI, show as Text).

plotext keeps global figure state, so every build happens under one lock and
starts from a clean figure. A chart repaints only when its data or its size
changed, and at most `max_hz` times a second, so a busy run never floods the
event loop; long series are downsampled to the chart's width first.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from rich.text import Text
from textual.widgets import Static

from tui.plot_text import PLOTEXT_LOCK as _PLOTEXT_LOCK
from tui.plot_text import render_to_text  # noqa: F401 - where reports used to find it
from tui.plot_text import set_axes


# Stable colours, one per series slot (by order), readable on dark and light themes.
PALETTE = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "gray")


@dataclass
class Series:
    label: str
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    color: str | None = None
    marker: str = "braille"


@dataclass
class Bars:
    labels: list[str]
    values: list[float]
    color: str | None = None


def downsample(x: Sequence[float], y: Sequence[float], max_points: int) -> tuple[list[float], list[float]]:
    """Keep at most ~max_points points: min and max of each bucket, so spikes survive."""
    n = len(x)
    if n <= max_points or max_points < 4:
        return list(x), list(y)
    buckets = max_points // 2
    size = n / buckets
    xs: list[float] = []
    ys: list[float] = []
    for b in range(buckets):
        lo, hi = int(b * size), min(n, int((b + 1) * size))
        if lo >= hi:
            continue
        seg = range(lo, hi)
        i_min = min(seg, key=lambda i: y[i])
        i_max = max(seg, key=lambda i: y[i])
        for i in sorted({i_min, i_max}):
            xs.append(x[i])
            ys.append(y[i])
    if xs[-1] != x[-1]:
        xs.append(x[-1])
        ys.append(y[-1])
    return xs, ys


def _finite(xs: Sequence[float], ys: Sequence[float], log: bool) -> tuple[list[float], list[float]]:
    px, py = [], []
    for a, b in zip(xs, ys):
        if b is None or a is None:
            continue
        if isinstance(b, float) and not math.isfinite(b):
            continue
        if log and b <= 0:
            continue
        px.append(a)
        py.append(b)
    return px, py


class PlotextChart(Static):
    """Set `series` / `bars` / `vlines`, then call `refresh_chart()`; it repaints lazily."""

    DEFAULT_CSS = """
    PlotextChart {
        height: 1fr;
        width: 1fr;
        min-height: 6;
    }
    """

    def __init__(self, title: str = "", *, max_hz: float = 2.0, empty_text: str = "no data yet", **kwargs: Any):
        super().__init__("", **kwargs)
        self.title = title
        self.series: list[Series] = []
        self.bars: Bars | None = None
        self.vlines: list[float] = []
        self.log_y = False
        self.integer_x = False  # x is a count (epochs): whole-number ticks only
        self.y_label = ""
        self.empty_text = empty_text
        self.max_hz = max_hz
        self._dirty = True
        self._last_key: tuple[Any, ...] | None = None
        self._last_paint = 0.0
        self._pending = False
        self.paints = 0  # how many times the chart was rebuilt (tests and benchmarks read it)

    def on_mount(self) -> None:
        self._repaint()

    def on_resize(self) -> None:
        self._dirty = True
        self._repaint()

    def set_series(self, series: list[Series], vlines: Sequence[float] = ()) -> None:
        self.series = series
        self.bars = None
        self.vlines = list(vlines)
        self.refresh_chart()

    def set_bars(self, bars: Bars) -> None:
        self.bars = bars
        self.series = []
        self.refresh_chart()

    def set_log_y(self, on: bool) -> None:
        if on != self.log_y:
            self.log_y = on
            # A key press: the user waits for this one, so it skips the data throttle.
            self.refresh_chart(immediate=True)

    def set_title(self, title: str) -> None:
        if title != self.title:
            self.title = title
            self.refresh_chart()

    def set_empty_text(self, text: str) -> None:
        if text != self.empty_text:
            self.empty_text = text
            self.refresh_chart()

    def refresh_chart(self, immediate: bool = False) -> None:
        """Mark the data changed; the repaint happens now or at the next allowed moment.

        `immediate` repaints now whatever the rate limit (for a user's own action)."""
        self._dirty = True
        if immediate:
            self._repaint()
            return
        if self._pending:
            return
        wait = self._last_paint + 1.0 / self.max_hz - time.monotonic()
        if wait <= 0 or not self.is_mounted:
            self._repaint()
        else:
            self._pending = True
            self.set_timer(wait, self._deferred)

    def _deferred(self) -> None:
        self._pending = False
        self._repaint()

    def _repaint(self) -> None:
        if not self._dirty or not self.is_mounted:
            return
        width, height = self.content_size.width, self.content_size.height
        if width < 10 or height < 4:
            return
        self._dirty = False
        self._last_paint = time.monotonic()
        self.paints += 1
        # The chart's size comes from its container, never from its content: no relayout.
        self.update(self.render_text(width, height), layout=False)

    def has_data(self) -> bool:
        if self.bars is not None:
            return bool(self.bars.values)
        return any(s.y for s in self.series)

    def render_text(self, width: int, height: int) -> Text:
        if not self.has_data():
            pad = max(0, (height - 2) // 2)
            return Text(("\n" * pad) + f"{self.title}\n{self.empty_text}", justify="center", style="dim")
        with _PLOTEXT_LOCK:
            return Text.from_ansi(self._build(width, height))

    def _build(self, width: int, height: int) -> str:
        import plotext as plt

        plt.clf()
        plt.theme("clear")
        plt.plotsize(width, height)
        plt.title(self.title)
        if self.bars is not None:
            plt.bar(self.bars.labels, self.bars.values, color=self.bars.color or PALETTE[0], width=0.6)
            return plt.build()
        all_x: list[float] = []
        all_y: list[float] = []
        for i, s in enumerate(self.series):
            xs, ys = _finite(s.x, s.y, self.log_y)
            xs, ys = downsample(xs, ys, max(8, width * 2))
            if not xs:
                continue
            all_x += xs
            all_y += ys
            plt.plot(xs, ys, label=s.label, color=s.color or PALETTE[i % len(PALETTE)], marker=s.marker)
        if self.log_y and all_x:
            plt.yscale("log")
        set_axes(plt, all_x, all_y, width, height, title=bool(self.title), integer_x=self.integer_x, log_y=self.log_y)
        for v in self.vlines:
            if all_x and min(all_x) <= v <= max(all_x):
                plt.vline(v, "gray")
        if self.y_label:
            plt.ylabel(self.y_label)
        return plt.build()
