"""`compare` over runs of one config with several seeds: one row per config, mean ± 95% CI,
the best per domain ★ and the configs within its noise ≈ (hand-written logs, no training)."""

from __future__ import annotations

import json
import math

import pytest

from nsm.runs import RunStore
from nsm.runs.aggregate import T_975, group_by_config, group_comparison, groups_apply
from nsm.runs.compare import compare_runs
from tui.cli import main

from .helpers import epoch_end, started, val

# Three configs (lr) × three seeds: lr=3e-4 best, 1e-3 inside its noise, 1e-4 clearly worse.
VAL_LOSS = {1e-3: (0.42, 0.47, 0.40), 3e-4: (0.40, 0.43, 0.39), 1e-4: (0.90, 0.92, 0.91)}


def _finished(val_loss: float, test_acc: float) -> list:
    return [
        started(2), epoch_end(1), val(1, val_loss + 0.1, 0.6, 1, val_loss + 0.1), epoch_end(2), val(2, val_loss, 0.7, 2, val_loss),
        ("finished", {"reason": "completed", "epochs_done": 2, "best_epoch": 2, "best_val_loss": val_loss,
                      "test": {"acc": test_acc, "loss": 0.5}, "total_time_s": 4.0}),
    ]  # fmt: skip


@pytest.fixture
def seeded(make_run) -> list[str]:  # type: ignore[no-untyped-def]
    names = []
    for lr, losses in VAL_LOSS.items():
        for seed, loss in enumerate(losses, start=1):
            name = f"lr{lr:g}-s{seed}"
            make_run(name, events=_finished(loss, 0.9 - loss / 10), lr=lr, seed=seed)
            names.append(name)
    return names


def test_runs_differing_only_in_seed_become_one_row_per_config(store: RunStore, seeded: list[str]) -> None:
    comparison = compare_runs(store, seeded)
    assert groups_apply(group_by_config(comparison.runs, lambda m: m.config))
    table = group_comparison(comparison)
    assert table.columns[:5] == ["", "runs", "n", "domain", "status"]
    rows = {row[1]: row for row in table.rows}
    assert [row[0] for row in table.rows] == ["★", "≈", ""]
    assert [row[1] for row in table.rows] == ["lr0.0003-s1 +2", "lr0.001-s1 +2", "lr0.0001-s1 +2"]
    best = rows["lr0.0003-s1 +2"]
    losses = VAL_LOSS[3e-4]
    mean = sum(losses) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in losses) / 2)
    assert best[table.columns.index("best val loss")] == f"{mean:.3f} ± {T_975[2] * sd / math.sqrt(3):.3f}"
    assert best[table.columns.index("n")] == "3" and best[table.columns.index("status")] == "finished"
    assert best[table.columns.index("epochs")] == "2"  # the same whole number in every run: no ± 0
    assert [g.within_noise_of_best for g in table.groups] == [None, True, False]


def test_a_comparison_without_repeated_seeds_stays_one_row_per_run(store: RunStore, make_run) -> None:  # type: ignore[no-untyped-def]
    make_run("a", events=_finished(0.4, 0.8), lr=1e-3)
    make_run("b", events=_finished(0.5, 0.8), lr=3e-4)
    make_run("c", events=_finished(0.5, 0.8), lr=3e-4)  # the same config and seed twice: no seeds to average
    comparison = compare_runs(store, ["a", "b", "c"])
    groups = group_by_config(comparison.runs, lambda m: m.config)
    assert not groups_apply(groups) and groups_apply(groups, "config") and not groups_apply(groups, "run")


def test_the_compare_command_groups_by_config_and_says_so(store: RunStore, seeded: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--runs-dir", str(store.root), "compare", *seeded]) == 0
    out = capsys.readouterr().out
    assert "runs per config, ranked per domain by best val loss" in out and " ± " in out
    assert "≈ within the noise of the best: Welch t-test, p ≥ 0.05" in out
    assert "lr0.0003-s1 +2: lr0.0003-s1, lr0.0003-s2, lr0.0003-s3 (SEED 1 2 3)" in out

    assert main(["--runs-dir", str(store.root), "compare", *seeded, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["runs"].split()[0], r["n"], r["best"], r["within_noise_of_best"]) for r in rows] == [
        ("lr0.0003-s1", 3, True, None), ("lr0.001-s1", 3, False, True), ("lr0.0001-s1", 3, False, False),
    ]  # fmt: skip
    assert rows[0]["seeds"] == "1 2 3" and rows[0]["lr"] == 3e-4 and "seed" not in rows[0]
    assert rows[0]["best_val_loss_n"] == 3 and rows[0]["best_val_loss_ci95"] > 0 and rows[0]["test_acc_mean"] is not None

    assert main(["--runs-dir", str(store.root), "compare", *seeded, "--group", "run", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 9  # one row per run, as before
