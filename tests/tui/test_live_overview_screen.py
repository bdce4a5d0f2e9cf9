"""The live overview (F6): runs that train now, from prepared run folders; enter attaches."""

from __future__ import annotations

import os
from pathlib import Path

from analysis_fixtures import screen_text, settle
from dashboard_fixtures import make_app
from snapshot_loader import snapshot_app
from live_fixtures import T_NOW, write_live_store
from textual.widgets import DataTable

from tui.screens.overview import OverviewScreen


async def test_f6_lists_what_trains_and_enter_attaches_the_dashboard(tmp_path: Path) -> None:
    _store, fds = write_live_store(tmp_path / "runs")
    app = make_app(tmp_path / "runs")
    app._modes["overview"] = lambda: OverviewScreen(clock=lambda: T_NOW)  # noqa: SLF001
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("f6")
            await settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, OverviewScreen)
            table = screen.query_one("#live-table", DataTable)
            refs = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
            assert refs == ["planning/lr-sweep-01", "causal/causal-a100", "kg/kg-overnight"]  # newest activity first
            text = screen_text(app)
            assert "3 training (1 remote, 2 modal)" in text
            assert "42/100" in text and "512" in text and "87% 12.1G" in text
            assert "no mirror" in text and "lr-sweep, point 1 of 4" in text
            await pilot.press("down")
            await pilot.press("enter")
            await settle(app, pilot)
            assert app.current_mode == "dashboard"
            assert app.context.attached == "causal/causal-a100"
    finally:
        for fd in fds:
            os.close(fd)


async def test_an_empty_store_says_how_to_start_something(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f6")
        await settle(app, pilot)
        assert "nothing trains now" in screen_text(app)
        await pilot.press("enter")
        assert any("no run to attach" in n.message for n in app._notifications)


def test_live_overview_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def shown(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("f6")
        await settle(pilot.app, pilot)

    assert snap_compare(snapshot_app("overview_app").build_overview_app(), terminal_size=(80, 24), run_before=shown)
