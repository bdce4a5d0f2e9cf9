"""F3 over picked runs where one config was run with several seeds: one row per config
(mean ± 95% CI, ★ best, ≈ within its noise), `g` back to one row per run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from analysis_fixtures import analysis_app, settle, widget_text, write_run
from textual.widgets import DataTable

from nsm.runs import RunStore
from nsm.runs.aggregate import estimate
from nsm.runs.compare import collect_metrics
from tui.screens.compare import CompareScreen

# lr -> (best val acc per seed, scale of the val loss curve): 1e-3 clearly ahead of 1e-4.
ACC = {1e-3: ((0.90, 0.92, 0.91), 0.5), 1e-4: ((0.60, 0.62, 0.61), 2.0)}


def _with_seed(run, seed: int) -> None:  # type: ignore[no-untyped-def]
    cfg = json.loads(run.config_path.read_text())
    cfg["seed"] = seed
    run.config_path.write_text(json.dumps(cfg))


@pytest.fixture
def store(tmp_path: Path) -> tuple[RunStore, list[str]]:
    store = RunStore(tmp_path / "runs")
    refs = []
    now = time.time()
    for lr, (accs, loss_scale) in ACC.items():
        for k, acc in enumerate(accs):
            run = write_run(store, f"lr{lr:g}-s{k}", seed=k, best_acc=acc, loss_scale=loss_scale * (1 + k / 50), started=now - 100 * (k + 1), lr=lr)
            _with_seed(run, 42 + k)
            refs.append(run.ref)
    return store, refs


def rows(screen: CompareScreen) -> list[list[str]]:
    table = screen.query_one("#compare-metrics", DataTable)
    return [[widget_text(c).strip() for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_picked_seeds_read_as_one_row_per_config_and_g_shows_each_run(store: tuple[RunStore, list[str]]) -> None:
    runs, refs = store
    app = analysis_app(runs.root)
    async with app.run_test(size=(120, 32)) as pilot:
        await pilot.pause()
        await pilot.press("f3")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        screen.show_runs(refs)
        await settle(app, pilot)

        grouped = rows(screen)
        assert len(grouped) == 2  # two configs, three seeds each
        by_label = {r[1]: r for r in grouped}
        best = by_label["lr0.001-s0 +2"]
        assert best[0] == "★" and best[2] == "3"
        accs = [collect_metrics(runs.get(r)).test_acc for r in refs[:3]]
        expected = estimate(accs)
        assert expected is not None and expected.ci95 is not None
        assert expected.text() in best  # test acc as mean ± CI over the three seeds
        assert by_label["lr0.0001-s0 +2"][0] == ""  # clearly worse: neither best nor within the noise
        status = widget_text(screen.query_one("#compare-status"))
        assert "one row per config" in status and "95% CI" in status

        await pilot.press("g")
        await settle(app, pilot)
        per_run = rows(screen)
        assert len(per_run) == 6 and all("±" not in cell for r in per_run for cell in r)
        assert "g: one row per config" in widget_text(screen.query_one("#compare-status"))
