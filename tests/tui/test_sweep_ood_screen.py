"""F4's results tab with out-of-distribution numbers: one column per split after test
loss (per point, or mean ± 95% CI per grid point over seeds), never ranked by, the first
to go when the screen is narrow. Hand-written sweeps, nothing trains."""

from __future__ import annotations

from pathlib import Path

from analysis_fixtures import analysis_app, settle
from textual.widgets import DataTable

from nsm.runs import RunStore
from tests.sweeps.test_sweep_ood import _ood_sweep, _seeds_sweep

FULL = {"11-20": "OOD 11-20", "21-40": "OOD 21-40"}


async def _results(store: RunStore, size: tuple[int, int], tmp_path: Path) -> tuple[list[str], list[dict]]:
    app = analysis_app(store.root, settings_dir=tmp_path / "settings")
    async with app.run_test(size=size) as pilot:
        await pilot.press("f4")
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        screen = app.screen
        table = screen.query_one("#results", DataTable)
        return [str(c.label) for c in table.columns.values()], screen.results_view()


async def test_the_results_tab_shows_the_ood_accuracies_beside_test(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    _ood_sweep(store)
    labels, rows = await _results(store, (160, 40), tmp_path)
    assert labels == ["", "#", "LR", "state", "val loss", "val acc", "test acc", "test loss", "OOD 11-20", "OOD 21-40", "time"]
    assert [(r["number"], r["mark"]) for r in rows] == [(3, "★"), (1, ""), (2, "")]  # by val loss, not OOD
    cells = {r["number"]: r["cells"] for r in rows}
    assert cells[1][8:10] == ["0.741", "0.623"] and cells[2][8:10] == ["0.900", "0.850"]
    assert cells[3][8:10] == ["-", "-"]  # a run from before the OOD splits

    # Where room is short the labels shorten ("11-20"), then the OOD columns go first.
    tight, _ = await _results(store, (80, 24), tmp_path)
    assert tight[-3:] == ["11-20", "21-40", "time"]
    narrow, _ = await _results(store, (66, 24), tmp_path)
    assert narrow == ["", "#", "LR", "state", "val loss", "val acc", "test", "t.loss", "time"]


async def test_per_grid_point_the_ood_columns_are_means_over_the_seeds(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    _seeds_sweep(store)
    labels, rows = await _results(store, (200, 40), tmp_path)
    at = labels.index("test loss") + 1
    assert labels[at : at + 3] == ["OOD 11-20", "OOD 21-40", "time"]
    cells = {r["number"]: r["cells"] for r in rows}
    assert cells[1][at].startswith("0.720 ± ") and cells[2][at + 1].startswith("0.510 ± ")

    narrow, _ = await _results(store, (80, 24), tmp_path)
    assert not any(label in FULL or label in FULL.values() for label in narrow)


async def test_a_sweep_without_ood_numbers_has_the_columns_it_always_had(tmp_path: Path) -> None:
    from tests.sweeps.helpers import finished_run, grid_sweep

    store = RunStore(tmp_path / "runs")
    sweep = grid_sweep(store, ["lr=1e-3,3e-3"], name="old")
    for p, loss in zip(sweep.load().points, (0.4, 0.5)):
        finished_run(sweep.run_of(p), val_loss=loss, val_acc=1 - loss, test_acc=0.7, test_loss=loss)
    labels, _ = await _results(store, (160, 40), tmp_path)
    assert labels == ["", "#", "LR", "state", "val loss", "val acc", "test acc", "test loss", "time"]
