"""SVG snapshots of the dashboard at 80×24 (ssh, tmux) and 160×48, from fixed data.

Update after an intended change: pytest tests/tui/test_dashboard_snapshots.py --snapshot-update
"""

from __future__ import annotations

from dashboard_fixtures import settle_charts
from snapshot_loader import snapshot_app


async def _settled(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await settle_charts(pilot)


def test_dashboard_monitor_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app("dashboard_app").build_monitor_app(), terminal_size=(80, 24), run_before=_settled)


def test_dashboard_monitor_160x48(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app("dashboard_app").build_monitor_app(), terminal_size=(160, 48), run_before=_settled)


def test_dashboard_monitoring_a_failed_run_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app("dashboard_app").build_failed_app(), terminal_size=(80, 24), run_before=_settled)


def test_dashboard_monitoring_an_early_stopped_run_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app("dashboard_app").build_early_stopped_app(), terminal_size=(80, 24), run_before=_settled)


def test_dashboard_config_with_an_invalid_field_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def type_bad_epochs(pilot) -> None:  # type: ignore[no-untyped-def]
        from textual.widgets import Input

        await pilot.pause()
        field = pilot.app.screen.query_one("#field-epochs", Input)
        field.focus()
        field.value = ""
        await pilot.press("0")
        await pilot.pause()

    assert snap_compare(snapshot_app("dashboard_app").build_config_app(), terminal_size=(80, 24), run_before=type_bad_epochs)
