"""Point states reconciled with their runs, and the results table (hand-written logs, no training)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nsm.runs import RunStore
from nsm.runs.process import this_host
from nsm.sweeps import DONE, FAILED, PENDING, RUNNING, STOPPED, result_rows, snapshot
from nsm.sweeps.results import check_metric

from .helpers import epoch, finished_run, grid_sweep, log_events, started


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_points_state_comes_from_its_run(store: RunStore) -> None:
    sweep = grid_sweep(store, ["seed=1,2,3,4,5"])
    runs = [sweep.run_of(p) for p in sweep.load().points]
    finished_run(runs[0], val_loss=0.5, val_acc=0.8, test_acc=0.75, test_loss=0.6)
    log_events(runs[1], [started(), ("failed", {"error": "the loss became nan", "error_type": "divergence"})])
    log_events(runs[2], [started(), *epoch(1, 0.7, 0.6), ("interrupted", {"epoch": 1, "step": 2, "checkpoint": "c.pt"})])
    # Point 4: the runner recorded "running" and was then killed with -9.
    log_events(runs[3], [started(), *epoch(1, 0.7, 0.6)])
    runs[3].write_process_info(_dead_pid(), backend="process", command="x")
    sweep.update_point(3, state=RUNNING, attempts=1)
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [DONE, FAILED, STOPPED, STOPPED, PENDING]
    assert snap.points[1].error == "the loss became nan"
    assert snap.status == "stopped" and not snap.runner_alive
    assert [p.number for p in snap.remaining] == [3, 4, 5]
    assert snap.summary() == "stopped: 1 pending, 1 done, 1 failed, 2 stopped"


def test_a_live_runner_makes_the_sweep_running_and_shows_the_current_step(store: RunStore) -> None:
    sweep = grid_sweep(store, ["seed=1,2"])
    first, second = (sweep.run_of(p) for p in sweep.load().points)
    finished_run(first, 0.5, 0.8, 0.75, 0.6)
    log_events(second, [started(epochs=3), *epoch(1, 0.7, 0.6), ("progress", {"epoch": 2, "step": 4, "steps": 6, "loss": 0.6})])
    second.write_process_info(os.getpid(), backend="process", command="x")
    sweep.runner_path.write_text(json.dumps({"pid": os.getpid(), "host": this_host(), "started": time.time(), "mode": "detached", "token": "t"}))
    snap = snapshot(sweep)
    assert snap.status == "running" and snap.current.number == 2
    assert snap.points[1].progress_text() == "epoch 2/3 · step 4/6"
    assert snap.points[0].progress_text() == "epoch 3/3"
    sweep.request_stop()
    assert snapshot(sweep).status == "stopping"


def test_a_deleted_point_run_is_pending_again_unless_it_had_finished(store: RunStore) -> None:
    sweep = grid_sweep(store, ["seed=1,2"])
    first, second = (sweep.run_of(p) for p in sweep.load().points)
    finished_run(first, 0.5, 0.8, 0.75, 0.6)
    sweep.update_point(0, state=DONE)
    shutil.rmtree(first.path)
    shutil.rmtree(second.path)
    snap = snapshot(sweep)
    assert [(p.state, p.missing) for p in snap.points] == [(DONE, True), (PENDING, True)]


def test_results_rank_by_validation_never_by_test_with_the_best_finished_point_marked(store: RunStore) -> None:
    sweep = grid_sweep(store, ["seed=1,2,3,4,5"])
    runs = [sweep.run_of(p) for p in sweep.load().points]
    finished_run(runs[0], val_loss=0.50, val_acc=0.80, test_acc=0.70, test_loss=0.55)
    finished_run(runs[1], val_loss=0.40, val_acc=0.70, test_acc=0.60, test_loss=0.65)
    finished_run(runs[2], val_loss=0.60, val_acc=0.90, test_acc=0.99, test_loss=0.10)
    # Point 4 is still running with the lowest val loss so far: provisional, never "best".
    log_events(runs[3], [started(), *epoch(1, 0.10, 0.95)])
    runs[3].write_process_info(os.getpid(), backend="process", command="x")
    snap = snapshot(sweep)

    rows = result_rows(snap)  # the default: best val loss, lower first
    assert [r.number for r in rows] == [4, 2, 1, 3, 5]  # no value goes last
    assert [r.number for r in rows if r.best] == [2]  # not point 3, whose test acc is highest
    assert rows[0].state == RUNNING and not rows[0].best
    assert [r.number for r in result_rows(snap, "best_val_acc") if r.best] == [3]
    assert rows[1].values == {"seed": 2} and rows[1].epochs == 3
    # A sweep saved with the old default ("test_acc") is ranked by val loss.
    assert [r.number for r in result_rows(snap, "test_acc")] == [4, 2, 1, 3, 5]


def test_a_val_loss_tie_is_broken_by_val_accuracy_then_queue_order(store: RunStore) -> None:
    sweep = grid_sweep(store, ["seed=1,2,3,4"])
    runs = [sweep.run_of(p) for p in sweep.load().points]
    finished_run(runs[0], val_loss=0.40, val_acc=0.70, test_acc=0.9, test_loss=0.3)
    finished_run(runs[1], val_loss=0.40, val_acc=0.85, test_acc=0.5, test_loss=0.9)
    finished_run(runs[2], val_loss=0.40, val_acc=0.70, test_acc=0.9, test_loss=0.3)
    finished_run(runs[3], val_loss=0.45, val_acc=0.99, test_acc=0.9, test_loss=0.3)
    rows = result_rows(snapshot(sweep), "best_val_loss")
    assert [r.number for r in rows] == [2, 1, 3, 4] and rows[0].best
    rows = result_rows(snapshot(sweep), "best_val_acc")
    assert [r.number for r in rows] == [4, 2, 1, 3]


def test_no_best_before_a_point_finishes(store: RunStore) -> None:
    snap = snapshot(grid_sweep(store))
    assert not any(r.best for r in result_rows(snap))


def test_metric_names() -> None:
    assert check_metric("Best-Val-Acc") == "best_val_acc"
    with pytest.raises(ValueError, match="unknown metric 'f1'; choose one of best_val_loss, best_val_acc"):
        check_metric("f1")
    with pytest.raises(ValueError, match="selects on the test set; choose one of best_val_loss, best_val_acc"):
        check_metric("test_acc")
