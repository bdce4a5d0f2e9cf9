"""All domains comparison (F3): best run per domain or picked runs, the metrics
table, differing config values, bar charts, overlaid val-accuracy curves, a
missing domain shown as missing, and the Markdown report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest
from analysis_fixtures import analysis_app, notifications, screen_text, settle, wait_for_screen, widget_text, write_run
from textual.widgets import DataTable, Input

from nsm.runs import RunStore
from nsm.runs.compare import collect_metrics
from tui.dialogs.analysis_dialogs import PickRunsDialog
from tui.screens.compare import BAR_CHARTS, CompareScreen
from tui.widgets.chart import PlotextChart


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    """Three tiny runs: two planning (one lower val loss, one higher test acc), one causal; no kg."""
    store = RunStore(tmp_path / "runs")
    now = time.time()
    write_run(store, "plan-lowloss", domain="planning", epochs=5, loss_scale=0.5, best_acc=0.80, started=now - 300, lr=0.001)
    write_run(store, "plan-highacc", domain="planning", epochs=5, loss_scale=1.0, best_acc=0.95, started=now - 200, lr=0.0003, cycle_weight=0.1)
    write_run(store, "causal-one", domain="causal", epochs=4, best_acc=0.9, started=now - 100, eval_every=2)
    return store


def metric_rows(screen: CompareScreen) -> dict[str, list[str]]:
    table = screen.query_one("#compare-metrics", DataTable)
    rows = [[widget_text(c).strip() for c in table.get_row_at(i)] for i in range(table.row_count)]
    return {f"{row[2]}:{row[1]}": row for row in rows}


async def open_compare(app, pilot) -> CompareScreen:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await pilot.press("f3")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, CompareScreen)
    return screen


async def test_all_domains_comparison_table_bars_and_a_missing_domain(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await open_compare(app, pilot)
        rows = metric_rows(screen)
        assert set(rows) == {"causal:causal-one", "planning:plan-lowloss", "kg:(no run)"}
        assert rows["kg:(no run)"][3] == "missing" and rows["kg:(no run)"][4] == "-"
        expected = collect_metrics(store.get("plan-lowloss"))
        assert rows["planning:plan-lowloss"][4] == "nsm"  # the MODEL column
        assert rows["planning:plan-lowloss"][5] == f"{expected.test_acc:.4f}"
        assert rows["planning:plan-lowloss"][7] == f"{expected.best_val_loss:.4f}"
        assert "missing: kg (no run)" in widget_text(screen.query_one("#compare-status"))
        assert "by best val loss" in widget_text(screen.query_one("#compare-status"))
        # Settings that differ between the two picked runs (domain, lr, eval_every); the same ones are left out.
        diff = screen.query_one("#compare-diff", DataTable)
        assert sorted(str(diff.get_row_at(i)[0]) for i in range(diff.row_count)) == ["domain", "epochs", "eval_every"]

        for chart_id, _title, attr in BAR_CHARTS:
            chart = screen.query_one(f"#{chart_id}", PlotextChart)
            assert chart.bars is not None and chart.bars.labels == ["causal", "planning"]
            by_domain = {m.domain: getattr(m, attr) for m in screen.comparison.runs}
            assert chart.bars.values == [by_domain["causal"], by_domain["planning"]]
        await pilot.press("2")
        await pilot.pause()
        text = screen_text(app)
        assert "test accuracy" in text and "training time (s)" in text and "█" in text

        curves = screen.query_one("#compare-curves", PlotextChart)
        assert [s.label for s in curves.series] == ["causal-one", "plan-lowloss"]
        assert curves.series[0].x == [2.0, 4.0]  # EVAL_EVERY=2
        colours = {s.label: s.color for s in curves.series}
        assert len(set(colours.values())) == 2

        # By test accuracy the other planning run wins; causal keeps its colour.
        await pilot.press("t")
        await settle(app, pilot)
        assert "planning:plan-highacc" in metric_rows(screen)
        assert {s.label: s.color for s in curves.series}["causal-one"] == colours["causal-one"]


async def test_picking_runs_compares_them_with_stable_colours(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await open_compare(app, pilot)
        before = {s.label: s.color for s in screen.query_one("#compare-curves", PlotextChart).series}
        await pilot.press("p")
        dialog = await wait_for_screen(app, pilot, PickRunsDialog)
        assert sorted(dialog.selected) == ["causal/causal-one", "planning/plan-lowloss"]  # the current comparison
        dialog.query_one("#pick-filter", Input).focus()
        await pilot.press(*"plan")
        await pilot.press("enter")  # to the list
        # Untick nothing, tick plan-highacc: it is the first of the two planning runs listed.
        listing = dialog.query_one("#pick-list")
        labels = [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]
        assert all("plan-" in label for label in labels) and len(labels) == 2
        for _ in range([i for i, label in enumerate(labels) if "plan-highacc" in label][0]):
            await pilot.press("down")
        await pilot.press("space")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is screen
        assert sorted(screen.comparison.refs) == ["causal/causal-one", "planning/plan-highacc", "planning/plan-lowloss"]
        assert screen.comparison.missing == []  # picked runs: no domain is asked for
        after = {s.label: s.color for s in screen.query_one("#compare-curves", PlotextChart).series}
        assert after["causal-one"] == before["causal-one"] and after["plan-lowloss"] == before["plan-lowloss"]
        assert len(set(after.values())) == 3
        diff = screen.query_one("#compare-diff", DataTable)
        assert "lr" in [str(diff.get_row_at(i)[0]) for i in range(diff.row_count)]


async def test_compare_marked_runs_from_the_runs_screen(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f2")
        await settle(app, pilot)
        runs = app.screen
        table = runs.query_one("#runs-table", DataTable)
        for name in ("plan-lowloss", "plan-highacc"):
            ref = next(r.ref for r in runs.shown if r.summary.name == name)
            table.move_cursor(row=table.get_row_index(ref))
            await pilot.press("space")
        await pilot.press("v")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert screen.comparison.refs == ["planning/plan-lowloss", "planning/plan-highacc"]
        diff = screen.query_one("#compare-diff", DataTable)
        assert sorted(str(diff.get_row_at(i)[0]) for i in range(diff.row_count)) == ["cycle_weight", "lr"]
        assert set(screen.query_one("#bar-test-acc", PlotextChart).bars.labels) == {"plan-lowloss", "plan-highacc"}


async def test_comparison_report_has_tables_missing_domain_and_text_charts(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 32)) as pilot:
        await open_compare(app, pilot)
        await pilot.press("m")
        await settle(app, pilot)
        assert any("comparison-" in n for n in notifications(app))
    (report,) = list((store.root / "reports").glob("comparison-*.md"))
    text = report.read_text()
    assert text.startswith("# Best run per domain (by best val loss)")
    assert "| plan-lowloss | planning | finished |" in text
    assert "| (no run) | kg | missing |" in text and "**Missing:** kg (no run)" in text
    assert "## Config values that differ" in text and "| eval_every |" in text
    assert text.count("```text") == 5  # four bar charts and the val-accuracy curves
    # Listing the store ignores the reports folder: it is not a domain of runs.
    assert {s.name for s in store.list_runs()} == {"plan-lowloss", "plan-highacc", "causal-one"}


async def test_an_empty_store_shows_every_domain_missing(tmp_path: Path) -> None:
    app = analysis_app(tmp_path / "empty")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_compare(app, pilot)
        assert sorted(metric_rows(screen)) == ["causal:(no run)", "kg:(no run)", "planning:(no run)"]
        assert not screen.query_one("#bar-test-acc", PlotextChart).has_data()


def test_compare_command_prints_the_table_and_writes_the_report(store: RunStore, tmp_path: Path, capsys) -> None:
    from tui.cli.compare import cmd_compare
    from tui.cli.console import CliError

    base = dict(runs_dir=str(store.root), runs=[], by="test_acc", out=None)
    assert cmd_compare(argparse.Namespace(**base, format="table")) == 0
    out = capsys.readouterr().out
    assert "plan-highacc" in out and "kg" in out and "missing" in out

    assert cmd_compare(argparse.Namespace(**{**base, "out": str(tmp_path / "rep")}, format="md")) == 0
    assert len(list((tmp_path / "rep").glob("comparison-*.md"))) == 1

    with pytest.raises(CliError, match="no run 'nope'"):
        cmd_compare(argparse.Namespace(**{**base, "runs": ["nope"]}, format="table"))
