"""SVG snapshots at 80×24 of three screens, from fixed data: the all-domains comparison
(F3) over three finished runs, the evaluation screen showing a saved evaluation of a
run's best_model.pt, and F4's Define tab (the form shown when there is no sweep yet).

Update after an intended change: pytest tests/tui/test_screen_snapshots.py --snapshot-update
"""

from __future__ import annotations

from analysis_fixtures import settle
from snapshot_loader import snapshot_app
from dashboard_fixtures import settle_charts


async def _settled(pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot.app, pilot)
    await settle_charts(pilot)


def _pressing(*keys: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause()
        await pilot.press(*keys)
        await _settled(pilot)

    return run_before


def test_compare_three_domains_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app("compare_app").build_compare_app(), terminal_size=(80, 24), run_before=_pressing("f3"))


def test_evaluation_of_a_saved_best_model_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    module = snapshot_app("evaluation_app")

    async def open_evaluation(pilot) -> None:  # type: ignore[no-untyped-def]
        from tui.screens.evaluation import EvaluationScreen

        await pilot.pause()
        pilot.app.push_screen(EvaluationScreen(module.evaluation_run(pilot.app), "best_model.pt"))
        await _settled(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, EvaluationScreen) and screen.error is None, getattr(screen, "error", None)
        assert screen.result is not None and screen.result.get("reused") is True

    assert snap_compare(module.build_evaluation_app(), terminal_size=(80, 24), run_before=open_evaluation)


def test_sweep_define_tab_without_a_sweep_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app("sweep_define_app").build_sweep_define_app(), terminal_size=(80, 24), run_before=_pressing("f4"))
