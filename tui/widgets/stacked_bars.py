"""A bar chart with several stacked series per label (right vs wrong per
confidence bin), on the same throttled plotext widget as every other chart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tui.widgets.chart import PALETTE, PlotextChart


@dataclass
class StackedBars:
    labels: list[str]
    series: list[tuple[str, list[float]]]  # (name, one value per label)
    colors: list[str] = field(default_factory=list)


class StackedBarChart(PlotextChart):
    def __init__(self, title: str = "", **kwargs: Any):
        super().__init__(title, **kwargs)
        self.stacked: StackedBars | None = None

    def set_stacked(self, bars: StackedBars) -> None:
        self.stacked = bars
        self.bars = None
        self.series = []
        self.refresh_chart()

    def has_data(self) -> bool:
        if self.stacked is not None:
            return any(any(v for v in values) for _, values in self.stacked.series)
        return super().has_data()

    def _build(self, width: int, height: int) -> str:
        if self.stacked is None:
            return super()._build(width, height)
        import plotext as plt

        plt.clf()
        plt.theme("clear")
        plt.plotsize(width, height)
        plt.title(self.title)
        s = self.stacked
        colors = s.colors or [PALETTE[i % len(PALETTE)] for i in range(len(s.series))]
        plt.stacked_bar(s.labels, [list(v) for _, v in s.series], labels=[n for n, _ in s.series], color=colors, width=0.7)
        return plt.build()
