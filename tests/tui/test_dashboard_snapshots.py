"""SVG snapshots of the dashboard at 80×24 (ssh, tmux) and 160×48, from fixed data.

Update after an intended change: pytest tests/tui/test_dashboard_snapshots.py --snapshot-update
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from dashboard_fixtures import settle_charts

HERE = Path(__file__).resolve().parent
APP_FILE = HERE / "snapshot_apps" / "dashboard_app.py"


def _apps():  # type: ignore[no-untyped-def]
    name = "_dashboard_snapshot_app"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, APP_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


async def _settled(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await settle_charts(pilot)


def test_dashboard_monitor_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_apps().build_monitor_app(), terminal_size=(80, 24), run_before=_settled)


def test_dashboard_monitor_160x48(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_apps().build_monitor_app(), terminal_size=(160, 48), run_before=_settled)


def test_dashboard_monitoring_a_failed_run_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_apps().build_failed_app(), terminal_size=(80, 24), run_before=_settled)


def test_dashboard_monitoring_an_early_stopped_run_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_apps().build_early_stopped_app(), terminal_size=(80, 24), run_before=_settled)


def test_dashboard_config_with_an_invalid_field_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def type_bad_epochs(pilot) -> None:  # type: ignore[no-untyped-def]
        from textual.widgets import Input

        await pilot.pause()
        field = pilot.app.screen.query_one("#field-epochs", Input)
        field.focus()
        field.value = ""
        await pilot.press("0")
        await pilot.pause()

    assert snap_compare(_apps().build_config_app(), terminal_size=(80, 24), run_before=type_bad_epochs)
