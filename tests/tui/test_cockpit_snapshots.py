"""SVG snapshots at 80×24 of the cockpit's config panel, confirm and quit dialogs and
the command palette, from fixed data (tests/tui/snapshot_apps/cockpit_app.py).

Update after an intended change: pytest tests/tui/test_cockpit_snapshots.py --snapshot-update
"""

from __future__ import annotations

from dashboard_fixtures import settle_charts
from snapshot_loader import snapshot_app


async def _settled(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await settle_charts(pilot)


def test_config_panel_without_a_gpu_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def focus_start(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause()
        pilot.app.screen.query_one("#start").focus()  # the focus shows by shape: reverse video
        await pilot.pause()

    assert snap_compare(snapshot_app("cockpit_app").build_idle_app(), terminal_size=(80, 24), run_before=focus_start)


def test_confirm_stop_dialog_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def ask(pilot) -> None:  # type: ignore[no-untyped-def]
        from tui.dialogs.confirm_stop import ConfirmStopDialog

        await _settled(pilot)
        pilot.app.push_screen(ConfirmStopDialog("planning/fixture-run", " (in this app)"))
        await pilot.pause()

    assert snap_compare(snapshot_app("cockpit_app").build_attached_app(), terminal_size=(80, 24), run_before=ask)


def test_quit_dialog_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def ask(pilot) -> None:  # type: ignore[no-untyped-def]
        from tui.dialogs.quit_choice import QuitDialog

        await _settled(pilot)
        pilot.app.push_screen(QuitDialog(["planning/fixture-run trains inside this app"]))
        await pilot.pause()

    assert snap_compare(snapshot_app("cockpit_app").build_attached_app(), terminal_size=(80, 24), run_before=ask)


def test_command_palette_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def open_palette(pilot) -> None:  # type: ignore[no-untyped-def]
        await _settled(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"resume")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)  # the palette shows its results after a short debounce

    assert snap_compare(snapshot_app("cockpit_app").build_attached_app(), terminal_size=(80, 24), run_before=open_palette)
