"""Sweeps you can act on, at 80×24: results ranked by val loss (a tie broken by val acc,
never by test acc), `enter` on a point opens its run, `b` opens the best point; F2 and
F4 show every run name whole at 80 columns and give back dropped columns at 160.
Hand-written stores (tests/tui/narrow_fixtures.py): nothing trains."""

from __future__ import annotations

from pathlib import Path

import pytest
from analysis_fixtures import analysis_app, screen_text, settle
from narrow_fixtures import BEST_POINT, LONG_RUNS, RANKED_SWEEP, write_long_names_store, write_ranked_sweep
from textual.widgets import DataTable

from nsm.runs import RunStore
from tui.screens.evaluation import EvaluationScreen
from tui.screens.runs import RunsScreen
from tui.screens.sweep import SweepScreen

SIZE = (80, 24)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "runs")
    write_ranked_sweep(store)
    return store


def point_ref(number: int) -> str:
    return f"planning/{RANKED_SWEEP}-{number:02d}"


async def open_results(app, pilot) -> SweepScreen:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await pilot.press("f4")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, SweepScreen)
    await pilot.press("3")
    await pilot.pause()
    return screen


def header(table: DataTable) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


async def test_results_rank_by_val_loss_with_a_tie_and_enter_opens_that_points_run(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(app, pilot)
        view = screen.results_view()
        # 2 and 5 tie on val loss (0.41): 5 has the better val acc. 7 has the best test acc: ignored.
        assert [r["number"] for r in view] == [5, 2, 3, 1, 7, 6, 4, 8]
        assert [r["number"] for r in view if r["best"]] == [BEST_POINT]
        text = screen_text(app)
        assert "Define (1)" in text and "Queue (2)" in text and "Results (3)" in text
        assert "b Best point" in text  # the action is in the footer
        assert "★ best: point 5 (lr=0.0003 cycle_weight=0.01 batch_size=16) · val loss 0.410" in text
        labels = header(screen.query_one("#results", DataTable))
        assert labels[:2] == ["", "#"] and "val loss" in labels and "val acc" in labels
        assert all(len(line) <= 80 for line in text.splitlines())
        await pilot.resize_terminal(160, 30)
        await pilot.pause()
        assert {"CYCLE_WEIGHT", "BATCH_SIZE", "test acc", "test loss", "time"} <= set(header(screen.query_one("#results", DataTable)))

        # enter on a result: the point's run, in the runs browser (point 3 has no checkpoint to evaluate).
        table = screen.query_one("#results", DataTable)
        assert table.has_focus
        table.move_cursor(row=table.get_row_index("3"))
        await pilot.press("enter")
        await settle(app, pilot)
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        assert runs.current_ref() == point_ref(3)
        assert runs.query_one("#runs-table", DataTable).has_focus


async def test_b_selects_the_best_point_and_opens_its_evaluation(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated: list[tuple[str, str]] = []
    # The evaluation itself (torch) is the evaluation screen's own business: record the request.
    monkeypatch.setattr(EvaluationScreen, "evaluate", lambda self, reuse: evaluated.append((self.eval_run.ref, self.checkpoint)))
    best = store.get(point_ref(BEST_POINT))
    (best.path / "best_model.pt").write_bytes(b"\0" * 64)
    app = analysis_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(app, pilot)
        screen.query_one("#results", DataTable).move_cursor(row=4)
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, EvaluationScreen)
        assert evaluated == [(point_ref(BEST_POINT), "best_model.pt")]
        assert screen.query_one("#results", DataTable).cursor_row == 0  # the best row is selected


async def test_b_without_a_finished_point_says_so(tmp_path: Path) -> None:
    from nsm.sweeps import create_sweep, grid_points, parse_axes, point_configs
    from tests.sweeps.helpers import TINY

    store = RunStore(tmp_path / "runs")
    axes = parse_axes(["lr=1e-3,3e-4"])
    create_sweep(store, point_configs(TINY, grid_points(axes)), name="fresh", axes=axes)
    app = analysis_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await open_results(app, pilot)
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, SweepScreen)
        assert any("no best point yet" in n.message for n in app._notifications)


async def test_f2_at_80_columns_shows_every_run_name_whole_and_160_brings_the_columns_back(tmp_path: Path) -> None:
    store = write_long_names_store(tmp_path / "runs")
    app = analysis_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("f2")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one("#runs-table", DataTable)
        text = screen_text(app)
        for name, *_ in LONG_RUNS:
            assert name in text, name
        assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
        narrow = header(table)
        assert narrow[:4] == [" ", "domain", "run", "status"] and "started" not in narrow
        await pilot.resize_terminal(160, 30)
        await settle(app, pilot)
        assert header(table) == [" ", "domain", "run", "status", "epochs", "val acc", "val loss", "test acc", "started", "size"]
