"""The queue runner in this process: a 2×2 grid to completion; stop in the middle, resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nsm.runs import RunStore
from nsm.sweeps import DONE, FAILED, PENDING, STOPPED, best_row, result_rows, snapshot
from nsm.sweeps.runner import SweepRunner

from .helpers import grid_sweep, log_events, started, tiny

torch = pytest.importorskip("torch")


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_a_2x2_grid_runs_to_completion_and_the_best_point_is_marked(store: RunStore) -> None:
    sweep = grid_sweep(store)
    seen: list[tuple[int, str]] = []
    outcome = SweepRunner(sweep, on_point=lambda p, s: seen.append((p.number, s))).run()
    assert outcome == "finished"
    assert seen == [(1, "running"), (1, DONE), (2, "running"), (2, DONE), (3, "running"), (3, DONE), (4, "running"), (4, DONE)]
    snap = snapshot(sweep)
    assert snap.status == "finished" and [p.state for p in snap.points] == [DONE] * 4
    assert [p.attempts for p in sweep.load().points] == [1] * 4
    assert sweep.runner_info() is None  # the claim is released
    for view in snap.points:
        results = view.run.results()
        assert results is not None and results["config"]["lr"] == view.point.values["lr"]
        assert results["config"]["cycle_weight"] == view.point.values["cycle_weight"]
    rows = result_rows(snap, "best_val_loss")
    assert rows[0].best and sum(r.best for r in rows) == 1
    losses = {r.number: (r.best_val_loss, -r.best_val_acc) for r in rows}
    # The best point is chosen on validation (ties by val accuracy), never on the test split.
    assert best_row(rows).number == min(losses, key=lambda n: (losses[n], n))


def test_stop_in_the_middle_keeps_finished_points_and_resume_continues_from_the_checkpoint(store: RunStore) -> None:
    sweep = grid_sweep(store)

    def stop_inside_point_2(index: int, epoch: int, step: int) -> None:
        if (index, epoch, step) == (1, 1, 2):
            sweep.request_stop()  # what `nsm-tui sweep stop` and the screen's stop key write

    assert SweepRunner(sweep, step_hook=stop_inside_point_2).run() == "stopped"
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [DONE, STOPPED, PENDING, PENDING]
    assert snap.status == "stopped" and not sweep.stop_requested()
    first, second = snap.points[0].run, snap.points[1].run
    first_log = first.events_path.read_bytes()
    interrupted = [e for e in second.events() if e["type"] == "interrupted"]
    assert len(interrupted) == 1 and interrupted[0]["checkpoint"] == "checkpoint_epoch_0_step_3.pt"
    assert snap.points[2].run.events() == []

    assert SweepRunner(sweep).run() == "finished"
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [DONE] * 4
    assert first.events_path.read_bytes() == first_log  # a finished point is left alone
    resumed = [e for e in second.events() if e["type"] == "resumed"]
    assert [(e["checkpoint"], e["epoch"], e["step"]) for e in resumed] == [("checkpoint_epoch_0_step_3.pt", 0, 3)]
    assert [e["type"] for e in second.events()].count("run_started") == 1
    assert [p.attempts for p in sweep.load().points] == [1, 2, 1, 1]

    # The interrupted point ends exactly where an uninterrupted run of its config ends.
    from nsm.training.trainer import Trainer

    reference = store.create_run(sweep.load().points[1].config, name="reference")
    assert Trainer(reference).run() == "finished"
    assert second.results()["test"]["acc"] == reference.results()["test"]["acc"]
    assert second.results()["test"]["loss"] == pytest.approx(reference.results()["test"]["loss"], abs=1e-6)


def test_a_point_that_fails_does_not_stop_the_queue(store: RunStore) -> None:
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to make DEVICE=cuda fail")
    sweep = grid_sweep(store, ["device=cuda,cpu"], name="devices")
    assert SweepRunner(sweep).run() == "finished"
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [FAILED, DONE]
    assert "DEVICE=cuda but torch sees no CUDA GPU" in snap.points[0].error
    assert snap.status == "finished" and snap.remaining == []
    assert SweepRunner(sweep).run() == "finished"  # nothing left: failed points stay failed
    assert sweep.load().points[0].attempts == 1
    assert SweepRunner(sweep, retry_failed=True).run() == "finished"
    assert sweep.load().points[0].attempts == 2


def test_a_deleted_or_killed_point_is_run_again_from_the_start(store: RunStore) -> None:
    sweep = grid_sweep(store, ["lr=1e-3,3e-3"], name="redo")
    first, second = (sweep.run_of(p) for p in sweep.load().points)
    shutil.rmtree(first.path)  # deleted from the runs browser before it ran
    # The second was killed before its first checkpoint: a log without an end, a dead pid.
    log_events(second, [started()])
    second.write_process_info(2**22 + 12345, backend="process", command="x")
    assert SweepRunner(sweep).run() == "finished"
    assert [p.state for p in snapshot(sweep).points] == [DONE, DONE]
    assert [e["type"] for e in second.events()].count("run_started") == 1  # a fresh log
    assert first.run_config() == tiny(lr=1e-3)


def test_a_stop_before_the_first_step_leaves_everything_pending_or_resumable(store: RunStore) -> None:
    sweep = grid_sweep(store, ["lr=1e-3,3e-3"], name="early")
    runner = SweepRunner(sweep)
    runner.request_stop()
    assert runner.run() == "stopped"
    assert [p.state for p in snapshot(sweep).points] == [PENDING, PENDING]
