"""`--seeds N`: each grid point repeated over SEED, SEED+1, ...; results per grid point as
mean ± 95% CI over its finished seeds, the points inside the noise of the best marked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nsm.runs import RunStore
from nsm.sweeps import (
    DONE,
    GridError,
    STOPPED,
    SweepError,
    create_sweep,
    get_sweep,
    grid_points,
    group_rows,
    is_grouped,
    parse_axes,
    point_configs,
    repeat_over_seeds,
    snapshot,
)
from nsm.sweeps.plan import PlanError, plan_sweep
from tui.cli.console import CliError

from .helpers import TINY, epoch, finished_run, grid_sweep, log_events, started
from .test_sweep_cli import TINY_FLAGS, sweep


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def _seeds_sweep(store: RunStore, seeds: int = 3, specs: tuple[str, ...] = ("lr=1e-3,3e-3",), name: str = "rep") -> Any:
    axes = parse_axes(specs)
    configs = repeat_over_seeds(point_configs(TINY, grid_points(axes)), seeds, axes)
    return create_sweep(store, configs, name=name, axes=axes, seeds=seeds)


def test_each_point_repeats_over_consecutive_seeds_next_to_each_other() -> None:
    axes = parse_axes(["lr=1e-3,3e-3"])
    configs = repeat_over_seeds(point_configs({**TINY, "seed": 7}, grid_points(axes)), 3, axes)
    assert [(c.lr, c.seed) for c in configs] == [(1e-3, 7), (1e-3, 8), (1e-3, 9), (3e-3, 7), (3e-3, 8), (3e-3, 9)]
    assert repeat_over_seeds(configs[:1], 1) == configs[:1]  # 1 seed: as before


def test_seeds_are_refused_with_a_seed_grid_and_when_they_would_overlap_or_overflow() -> None:
    axes = parse_axes(["seed=1,2", "lr=1e-3"])
    with pytest.raises(GridError, match=r"3 seeds per point and the grid row seed=1,2 both choose SEED"):
        repeat_over_seeds(point_configs(TINY, grid_points(axes)), 3, axes)
    # One SEED value in the grid is just the first seed.
    one = parse_axes(["seed=10"])
    assert [c.seed for c in repeat_over_seeds(point_configs(TINY, grid_points(one)), 2, one)] == [10, 11]
    listed = point_configs(TINY, [{"seed": 1}, {"seed": 2}])  # a config list whose seeds overlap
    with pytest.raises(GridError, match="points 1 and 2 both become the run config with SEED 2"):
        repeat_over_seeds(listed, 2)
    with pytest.raises(GridError, match="past SEED's maximum 2147483647"):
        repeat_over_seeds(point_configs(TINY, [{"seed": 2**31 - 1}]), 2)
    with pytest.raises(GridError, match="300 points × 2 seeds is 600 runs; at most 500"):
        repeat_over_seeds(point_configs(TINY, [{"seed": 2 * i} for i in range(300)]), 2)
    with pytest.raises(PlanError) as info:
        plan_sweep(TINY, domains=["planning"], grid=["seed=1,2"], seeds="2")
    assert info.value.field == "seeds"
    plan = plan_sweep(TINY, domains=["planning"], grid=["lr=1e-3,3e-3"], seeds="2")
    assert plan.describe() == "4 runs: LR 2 × 2 seeds" and plan.seeds == 2


def test_a_seeds_sweep_names_each_run_after_its_point_and_seed(store: RunStore) -> None:
    sweep = _seeds_sweep(store, seeds=2, specs=("domain=planning,kg",))
    data = json.loads(sweep.file.read_text())
    assert data["seeds"] == 2 and data["knobs"] == ["domain"]  # SEED is no knob column
    assert [p["run"] for p in data["points"]] == [
        "planning/rep-01-s3-planning", "planning/rep-01-s4-planning", "kg/rep-02-s3-kg", "kg/rep-02-s4-kg",
    ]  # fmt: skip
    assert [p["config"]["seed"] for p in data["points"]] == [3, 4, 3, 4]
    assert get_sweep(store, "rep").load().seeds == 2
    assert grid_sweep(store, name="plain").load().seeds == 1  # a sweep without seeds
    # The longest sweep name leaves room for "-NN-<domain>", not for a ten-digit seed as well.
    long_seeds = repeat_over_seeds(point_configs({**TINY, "seed": 10**9}, [{"domain": "planning"}, {"domain": "kg"}]), 2)
    with pytest.raises(SweepError, match="choose a shorter sweep name") as info:
        create_sweep(store, long_seeds, name="x" * 48, seeds=2)
    assert "x" * 48 + "-01-s1000000000-planning; at most 64" in str(info.value)
    assert not (store.root / ".sweeps" / ("x" * 48)).exists()


def test_results_per_point_mark_the_best_and_the_points_within_its_noise(store: RunStore) -> None:
    sweep = _seeds_sweep(store, seeds=3, specs=("lr=1e-3,3e-3,1e-4",))
    losses = {1e-3: [0.42, 0.47, 0.40], 3e-3: [0.40, 0.43, 0.39], 1e-4: [0.90, 0.92, 0.91]}
    points = sweep.load().points
    for p in points[:-1]:  # the last seed of lr=1e-4 is still running
        loss = losses[p.config["lr"]][p.config["seed"] - TINY["seed"]]
        finished_run(sweep.run_of(p), val_loss=loss, val_acc=1 - loss, test_acc=0.7, test_loss=loss)
    log_events(sweep.run_of(points[-1]), [started(), *epoch(1, 0.1, 0.99)])  # provisional: not counted
    snap = snapshot(sweep)
    assert is_grouped(snap)
    rows = group_rows(snap)
    assert [(r.number, r.mark, r.done, r.n, r.state) for r in rows] == [
        (2, "★", 3, 3, DONE), (1, "≈", 3, 3, DONE), (3, "", 2, 3, "2/3 done"),
    ]  # fmt: skip
    assert [r.within_noise_of_best for r in rows] == [None, True, False]
    assert rows[2].estimate("best_val_loss").n == 2 and rows[2].metric("best_val_loss") == pytest.approx(0.91)
    assert rows[0].seeds == [3, 4, 5] and rows[0].values == {"lr": 3e-3}
    assert rows[0].representative().run == points[5].run  # its lowest val loss: seed 5
    # By validation accuracy (higher is better) the same points are ranked the same way.
    assert [r.number for r in group_rows(snap, "best_val_acc")] == [2, 1, 3]
    assert not is_grouped(snapshot(grid_sweep(store, name="plain")))


def test_a_stopped_seed_is_one_more_point_to_resume(store: RunStore) -> None:
    sweep = _seeds_sweep(store, seeds=2, specs=("lr=1e-3",))
    first, second = sweep.load().points
    finished_run(sweep.run_of(first), val_loss=0.4, val_acc=0.6, test_acc=0.7, test_loss=0.4)
    log_events(sweep.run_of(second), [started(), *epoch(1, 0.7, 0.6), ("interrupted", {"epoch": 1, "step": 2, "checkpoint": "c.pt"})])
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [DONE, STOPPED]
    assert [p.point.run for p in snap.remaining] == [second.run]
    (row,) = group_rows(snap)
    assert (row.done, row.n, row.state, row.best) == (1, 2, "1/2 done", True)
    assert row.estimate("best_val_loss").ci95 is None  # one finished seed: a mean, no interval


def test_a_real_two_point_sweep_over_two_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    flags = [f for f in TINY_FLAGS]
    code = sweep(runs, "--domain", "planning", "--grid", "lr=1e-3,3e-3", "--seeds", "2", *flags, "--name", "two", "--parallel", "1", "--json")
    assert code == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert document["seeds"] == 2 and document["counts"]["done"] == 4
    store = RunStore(runs)
    made = sorted((s.name, s.config["lr"], s.config["seed"]) for s in store.list_runs())
    assert made == [("two-01-s3", 1e-3, 3), ("two-01-s4", 1e-3, 4), ("two-02-s3", 3e-3, 3), ("two-02-s4", 3e-3, 4)]
    assert len(document["groups"]) == 2 and all(g["n"] == 2 for g in document["groups"])

    assert sweep(runs, "show", "two", "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["point"] for r in rows) == [1, 2] and all(r["n"] == 2 for r in rows)
    assert all(r["best_val_loss_n"] == 2 and r["best_val_loss_ci95"] is not None for r in rows)
    assert [r["best"] for r in rows] == [True, False] and rows[1]["within_noise_of_best"] in (True, False)
    assert {r["seeds"] for r in rows} == {"3 4"}
    assert rows[0]["best_val_loss_mean"] <= rows[1]["best_val_loss_mean"]

    assert sweep(runs, "show", "two", "--format", "csv", "--per-run") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("point,run,state,best,lr,seed,") and len(lines) == 5

    assert sweep(runs, "show", "two") == 0
    shown = capsys.readouterr().out
    assert "results per point (2 seeds per point, n finished) ranked by the mean best val" in shown
    assert " ± " in shown and "± 95% CI of the mean over the seeds (Student t)" in shown
    assert "≈ within the noise of the best: Welch t-test, p ≥ 0.05" in shown


def test_the_cli_refuses_seeds_with_a_seed_grid_naming_both(tmp_path: Path) -> None:
    with pytest.raises(CliError) as info:
        sweep(tmp_path / "runs", "--domain", "planning", "--grid", "seed=1,2", "--seeds", "3")
    assert str(info.value).startswith("--seeds 3: 3 seeds per point and the grid row seed=1,2 both choose SEED")
    assert not (tmp_path / "runs" / "planning").exists()
