"""Chart axes and the numbers around the charts, as a researcher reads them at 80×24.

x axes count epochs in whole numbers and label every tick they draw; y labels sit on
evenly spaced rows with none skipped; the LR chart's legend says lr; a failed run's
charts say failed; an early-stopped run says so on its epoch bar; patience counts in
epochs (its true unit) and says so.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from dashboard_fixtures import dashboard, make_app, run_events, screen_text, settle_charts, tiny_config, write_run
from rich.console import Console

from nsm.execution.render import CLOCK_NOTE
from nsm.runs.events import make_event
from tui.live_run import LiveRun
from tui.plot_text import linear_ticks, log_ticks, row_ticks
from tui.widgets.chart import PlotextChart, Series
from tui.widgets.run_panels import MetricsPanel, ProgressPanel

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _chart_text(xs, ys, width: int, height: int, *, integer_x: bool = True, log_y: bool = False) -> list[str]:  # type: ignore[no-untyped-def]
    chart = PlotextChart("Total loss")
    chart.integer_x = integer_x
    chart.log_y = log_y
    chart.series = [Series("train", list(xs), list(ys))]
    return chart.render_text(width, height).plain.splitlines()


def _x_labels(lines: list[str]) -> list[str]:
    return lines[-1].split()


def _y_labels(lines: list[str]) -> list[tuple[int, str]]:
    """(row, label) of every labelled row of the y axis."""
    out = []
    for row, line in enumerate(lines):
        head = line.split("┤", 1)[0] if "┤" in line else ""
        if head.strip():
            out.append((row, head.strip()))
    return out


# The sizes one chart gets: 80×24 (two side by side), 160×48, and a small terminal.
@pytest.mark.parametrize("width,height", [(38, 10), (78, 20), (26, 8)])
@pytest.mark.parametrize("epochs", [1, 2, 3, 7, 10, 37, 200, 1000])
def test_x_ticks_are_whole_epochs_evenly_stepped_with_none_missing(width: int, height: int, epochs: int) -> None:
    xs = list(range(1, epochs + 1))
    lines = _chart_text(xs, [0.3 + 1 / x for x in xs], width, height)
    labels = _x_labels(lines)
    assert labels and all(re.fullmatch(r"\d+", s) for s in labels), labels  # no 1.0, 3.2, 5.5
    ticks = [int(s) for s in labels]
    assert all(1 <= t <= epochs for t in ticks)
    steps = {b - a for a, b in zip(ticks, ticks[1:])}
    assert len(steps) <= 1, ticks  # one step: no label left out between two others
    if steps:
        step = steps.pop()
        assert ticks[0] - step < 1 and ticks[-1] + step > epochs  # none missing at either end
    # Every tick mark on the axis line has its label.
    axis = lines[-2]
    assert axis.count("┬") + axis.count("┴") + axis.count("┼") >= len(ticks)


@pytest.mark.parametrize("lo,hi", [(0.307, 0.795), (0.6, 0.886), (0.0, 0.001), (0.5, 0.5), (12.0, 9000.0), (-1.0, 1.0)])
@pytest.mark.parametrize("height", [10, 20, 8])
def test_y_labels_are_round_evenly_spaced_and_none_is_skipped(lo: float, hi: float, height: int) -> None:
    xs = list(range(1, 11))
    ys = [lo + (hi - lo) * i / 9 for i in range(10)]
    labelled = _y_labels(_chart_text(xs, ys, 38, height))
    values = [float(s) for _row, s in labelled]
    rows = [r for r, _s in labelled]
    assert len(values) >= 2, labelled
    gaps = {round(a - b, 12) for a, b in zip(values, values[1:])}
    assert len(gaps) == 1, labelled  # one step between labels: none skipped
    assert len({b - a for a, b in zip(rows, rows[1:])}) == 1, labelled  # on evenly spaced rows
    assert min(values) <= lo + 1e-12 and max(values) >= hi - (values[0] - values[1])  # they span the data


def test_log_axis_labels_are_1_2_5_values_on_their_own_rows() -> None:
    xs = list(range(1, 21))
    ys = [0.01 + 1 / x**2 for x in xs]
    labelled = _y_labels(_chart_text(xs, ys, 38, 10, log_y=True))
    values = [float(s) for _row, s in labelled]
    assert values == sorted(values, reverse=True) and len(set(r for r, _ in labelled)) == len(labelled)
    assert all(round(v / 10 ** math.floor(math.log10(v)), 6) in (1, 2, 3, 5) for v in values)
    assert values[-1] <= min(ys) and values[0] >= max(ys)


def test_tick_helpers_edge_cases() -> None:
    assert linear_ticks(1, 10, 5, integer=True, expand=False) == [2, 4, 6, 8, 10]
    assert linear_ticks(4, 4, 5, integer=True, expand=False) == [4]
    ticks, bottom, top = row_ticks(0.307, 0.795, 6)
    assert ticks == [0.25, 0.5, 0.75] and bottom <= 0.307 and top >= 0.795
    assert log_ticks(1e-9, 1.0, 6) == sorted(log_ticks(1e-9, 1.0, 6))


# ------------------------------------------------------------------ the panels


def _live(**kwargs) -> LiveRun:  # type: ignore[no-untyped-def]
    config = kwargs.pop("config", None) or tiny_config(epochs=10, eval_every=2, save_every=5, patience=5)
    live = LiveRun("planning/r")
    pairs = run_events(name="r", config=config, **kwargs)
    live.feed_all(make_event(i, kind, t=1000.0 + i, **payload) for i, (kind, payload) in enumerate(pairs))
    return live


def _text(renderable, width: int = 40) -> str:  # type: ignore[no-untyped-def]
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def test_patience_counts_epochs_down_per_epoch_and_says_so() -> None:
    # Best at epoch 6 (eval every 2 epochs); at epoch 8 the run has 3 of its 5 epochs left.
    text = _text(MetricsPanel.render_live(_live(epochs_done=8, outcome=None)))
    assert "patience 3/5 epochs left · val every 2" in text
    text = _text(MetricsPanel.render_live(_live(epochs_done=9, outcome=None)))
    assert "patience 2/5 epochs left" in text  # a count per epoch, though epoch 9 had no eval
    off = _live(config=tiny_config(epochs=10, patience=0), epochs_done=4, outcome=None)
    assert "patience off" in _text(MetricsPanel.render_live(off))


def test_the_best_column_is_the_best_epochs_own_val_numbers() -> None:
    live = _live(epochs_done=10)
    text = _text(MetricsPanel.render_live(live))
    val = live.history()["val"]
    i = val["epochs"].index(6)
    assert "best@6" in text
    assert f"{val['loss'][i]:.4f}" in text and f"{val['acc'][i]:.3f}" in text
    assert live.state().best_val_acc == val["acc"][i] != max(val["acc"])  # epoch 6's, not the highest


EARLY = dict(config=tiny_config(epochs=20, eval_every=1, save_every=5, patience=3), epochs_done=9, reason="early_stopped")


def test_an_early_stopped_runs_epoch_bar_says_so() -> None:
    live = _live(**EARLY)
    progress = _text(ProgressPanel.render_live(live))
    assert progress.splitlines()[0].strip() == "Stopped early at 9/20 (patience 3)"
    assert "Epoch 9/20" not in progress and " 45%" not in progress  # no bar stuck short of its end
    assert "patience 0/3 epochs left: stopped" in _text(MetricsPanel.render_live(live))
    # A run that ran all its epochs keeps its ordinary bar.
    assert _text(ProgressPanel.render_live(_live(epochs_done=10))).startswith("Epoch 10/10")


# ------------------------------------------------------------ on the dashboard


async def test_failed_runs_charts_say_failed_and_the_lr_legend_says_lr(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "broken", epochs_done=3, outcome="failed")
    app = make_app(tmp_path / "runs", attach="broken")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await settle_charts(pilot)
        deck = dashboard(app).charts
        assert all(chart.title.endswith("· failed") for chart in deck.charts.values())
        assert "Total loss · failed" in screen_text(app)
        lr = deck.charts["lr"]
        assert [s.label for s in lr.series] == ["lr"]
        assert "lr" in lr.render_text(38, 10).plain.splitlines()[2]  # the legend row
        x_labels = _x_labels(deck.charts["loss"].render_text(38, 10).plain.splitlines())
        assert x_labels == ["1", "2", "3"]


async def test_a_finished_runs_charts_do_not_say_failed_and_its_log_names_its_clock(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "fine", epochs_done=10)
    app = make_app(tmp_path / "runs", attach="fine")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dash = dashboard(app)
        assert dash.charts.charts["loss"].title == "Total loss"
        assert "failed" not in screen_text(app)
        lines = dash.log_pane.lines_text
        assert lines[0] == f"({CLOCK_NOTE})" and re.match(r"\+\d+s run started", lines[1]), lines[:2]
