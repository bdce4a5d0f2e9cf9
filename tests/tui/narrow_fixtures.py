"""Stores for the 80-column tests: runs with long names (older generated ones, sweep points),
and a finished sweep whose ranking has a tie and a point with the best test score that
is not the best point. Hand-written logs, fixed start times: nothing trains.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from analysis_fixtures import set_mtime, write_run

from nsm.runs import RunStore
from nsm.sweeps import create_sweep, grid_points, parse_axes, point_configs
from tests.sweeps.helpers import TINY, epoch, finished_run, log_events, started

T0 = 1_796_000_000.0  # 2026-11-30, fixed so that "started" reads the same on every run

# (name, domain, outcome, epochs_done): names as long as real ones get.
LONG_RUNS = [
    ("planning-20261201-204454-6a7d", "planning", "finished", 10),
    ("1201-2051-0b3e", "planning", "finished", 10),
    ("sweep-20261201-210000-9f1c-03", "planning", "interrupted", 5),
    ("causal-20261130-093012-c4d2", "causal", "failed", 3),
    ("kg-ablation-no-cycle-seed-3", "kg", "finished", 10),
]

RANKED_SWEEP = "sweep-20261201-204454-6a7d"
# Point → (val loss, val acc, test acc, test loss) for the finished points. Points 2 and 5 tie
# on val loss; 5 has the better val acc, so 5 ranks first and is best. Point 7 has the best
# test accuracy by far but a worse val loss: it must not be chosen.
RANKED_RESULTS = {
    1: (0.52, 0.80, 0.78, 0.55),
    2: (0.41, 0.83, 0.80, 0.44),
    3: (0.47, 0.81, 0.79, 0.50),
    5: (0.41, 0.86, 0.82, 0.43),
    7: (0.60, 0.75, 0.97, 0.20),
}
BEST_POINT = 5


def write_long_names_store(root: Path) -> RunStore:
    """Five runs with long names in three domains, started at fixed times."""
    store = RunStore(root)
    for i, (name, domain, outcome, done) in enumerate(LONG_RUNS):
        run = write_run(store, name, domain=domain, epochs=10, epochs_done=done, outcome=outcome, seed=i, started=T0 + 600 * i, save_every=5)
        for entry in os.scandir(run.path):
            if entry.name.endswith(".pt"):
                set_mtime(Path(entry.path), T0 + 600 * i + 60)
    return store


def write_ranked_sweep(store: RunStore, name: str = RANKED_SWEEP) -> Any:
    """A 2×2×2 sweep (lr × cycle_weight × batch_size): five points done, point 4 failed,
    point 6 stopped with a checkpoint, point 8 pending."""
    axes = parse_axes(["lr=1e-3,3e-4", "cycle_weight=0.01,0.1", "batch_size=16,32"])
    sweep = create_sweep(store, point_configs({**TINY, "epochs": 3}, grid_points(axes)), name=name, axes=axes)
    runs = {p.number: sweep.run_of(p) for p in sweep.load().points}
    for number, (val_loss, val_acc, test_acc, test_loss) in RANKED_RESULTS.items():
        finished_run(runs[number], val_loss=val_loss, val_acc=val_acc, test_acc=test_acc, test_loss=test_loss)
    log_events(runs[4], [started(), ("failed", {"error": "the loss became nan", "error_type": "divergence"})])
    log_events(runs[6], [started(), *epoch(1, 0.7, 0.6), ("interrupted", {"epoch": 1, "step": 2, "checkpoint": "c.pt"})])
    return sweep
