"""SVG snapshots at 80×24 of the tables that must fit: F2 over runs with long names, and
F4's Queue and Results tabs (a 2×2×2 sweep with long point names), from fixed data.

Update after an intended change: pytest tests/tui/test_narrow_snapshots.py --snapshot-update
"""

from __future__ import annotations

from analysis_fixtures import settle
from snapshot_loader import snapshot_app


def _pressing(*keys: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause()
        await pilot.press(*keys)
        await settle(pilot.app, pilot)

    return run_before


def test_runs_browser_with_long_names_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app("runs_app").build_runs_app(), terminal_size=(80, 24), run_before=_pressing("f2"))


def test_sweep_queue_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app("sweep_app").build_sweep_app(), terminal_size=(80, 24), run_before=_pressing("f4", "2"))


def test_sweep_results_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app("sweep_app").build_sweep_app(), terminal_size=(80, 24), run_before=_pressing("f4", "3"))
