"""F4 over a sweep with several seeds per point: a Seeds field on the Define tab, a SEED
column in the queue, and results per grid point as mean ± 95% CI with ★ and ≈."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from analysis_fixtures import analysis_app, settle
from textual.widgets import DataTable, Input, Static

from nsm.runs import RunStore
from nsm.runs.aggregate import T_975
from nsm.sweeps import create_sweep, get_sweep, grid_points, parse_axes, point_configs, repeat_over_seeds
from tests.sweeps.helpers import TINY, finished_run

# Three seeds of three learning rates: lr=3e-3 is best, lr=1e-3 close behind (inside the
# noise), lr=1e-4 clearly worse.
VAL_LOSSES = {1e-3: (0.42, 0.47, 0.40), 3e-3: (0.40, 0.43, 0.39), 1e-4: (0.90, 0.92, 0.91)}


def write_seeds_sweep(store: RunStore, name: str = "seeds") -> Any:
    axes = parse_axes(["lr=1e-3,3e-3,1e-4"])
    configs = repeat_over_seeds(point_configs(TINY, grid_points(axes)), 3, axes)
    sweep = create_sweep(store, configs, name=name, axes=axes, seeds=3)
    for point in sweep.load().points:
        lr, offset = point.config["lr"], point.config["seed"] - TINY["seed"]
        loss = VAL_LOSSES[lr][offset]
        finished_run(sweep.run_of(point), val_loss=loss, val_acc=1 - loss, test_acc=0.8 - loss / 10, test_loss=loss)
    return sweep


async def test_the_results_tab_shows_each_point_over_its_seeds_with_the_noise_marked(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    write_seeds_sweep(store)
    app = analysis_app(store.root, settings_dir=tmp_path / "settings")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await settle(app, pilot)
        screen = app.screen
        queue = screen.query_one("#queue", DataTable)
        labels = [str(c.label) for c in queue.columns.values()]
        assert "SEED" in labels and queue.row_count == 9
        assert [str(queue.get_row_at(i)[-1]) for i in range(3)] == ["seeds-01-s3", "seeds-01-s4", "seeds-01-s5"]

        await pilot.press("3")
        await settle(app, pilot)
        rows = screen.results_view()
        assert [(r["number"], r["mark"]) for r in rows] == [(2, "★"), (1, "≈"), (3, "")]
        losses = VAL_LOSSES[3e-3]
        mean = sum(losses) / 3
        sd = math.sqrt(sum((x - mean) ** 2 for x in losses) / 2)
        assert f"{mean:.3f} ± {T_975[2] * sd / math.sqrt(3):.3f}" in rows[0]["cells"]
        assert rows[0]["cells"][3] == "3"  # n: three finished seeds
        best = str(screen.query_one("#best", Static).render())
        assert "★ best: point 2 (lr=0.003)" in best and "(n=3)" in best and "Welch t-test, p ≥ 0.05" in best

        # enter on a point's row, and b, open its best seed's run.
        opened: list[int] = []

        async def fake_open(number: int) -> None:
            opened.append(number)

        screen.open_point = fake_open  # type: ignore[method-assign]
        await pilot.press("b")
        await settle(app, pilot)
        sweep = get_sweep(store, "seeds")
        best_run = min((p for p in sweep.load().points if p.config["lr"] == 3e-3), key=lambda p: VAL_LOSSES[3e-3][p.config["seed"] - 3])
        assert opened == [best_run.number]


async def test_the_define_tab_takes_a_number_of_seeds_and_refuses_a_seed_grid(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    app = analysis_app(store.root, settings_dir=tmp_path / "settings")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await settle(app, pilot)
        screen = app.screen
        screen.query_one("#grid-0", Input).value = "lr=1e-3,3e-3"
        screen.query_one("#seeds", Input).value = "3"
        await pilot.pause()
        plan = str(screen.query_one("#plan", Static).render())
        assert "6 runs: LR 2 × 3 seeds" in plan and screen.plan is not None and [c.seed for c in screen.plan.configs[:3]] == [42, 43, 44]

        screen.query_one("#grid-1", Input).value = "seed=1,2"
        await pilot.pause()
        plan = str(screen.query_one("#plan", Static).render())
        assert "✗ 3 seeds per point and the grid row seed=1,2 both choose SEED" in plan
        assert screen.query_one("#seeds", Input).has_class("-invalid")

        screen.query_one("#grid-1", Input).value = ""
        screen.query_one("#seeds", Input).value = "0"
        await pilot.pause()
        assert "seeds must be a whole number >= 1" in str(screen.query_one("#plan", Static).render())
