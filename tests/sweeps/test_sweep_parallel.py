"""Sweep points packed on one machine (`--parallel N`): each point its own trainer process,
at most N at once, the same results as one after another; stop, resume and failures as today."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nsm.runs import Run, RunStore
from nsm.sweeps import DONE, FAILED, PENDING, RUNNING, STOPPED, snapshot
from nsm.sweeps.runner import SweepRunner

from .helpers import grid_sweep

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # every point starts a Python process that imports torch


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def _attempts(run: Run) -> list[tuple[float, float]]:
    """(first event, terminal event) of each training attempt in the run's own log."""
    spans, start = [], None
    for e in run.events():
        if e["type"] in ("run_started", "resumed"):
            start = e["t"]
        elif e["type"] in ("finished", "interrupted", "failed") and start is not None:
            spans.append((start, e["t"]))
            start = None
    return spans


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda x: (x[0], x[1]))
    now = most = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def _running_counts(seen: list[tuple[int, str]]) -> list[int]:
    counts, now = [], 0
    for _, state in seen:
        now += 1 if state == RUNNING else -1
        counts.append(now)
    return counts


def test_four_points_two_at_a_time_match_one_after_another_and_never_exceed_two(store: RunStore) -> None:
    serial = grid_sweep(store, name="serial")
    assert SweepRunner(serial).run() == "finished"

    packed = grid_sweep(store, name="packed")
    seen: list[tuple[int, str]] = []
    runner = SweepRunner(packed, parallel=2, point_threads=1, on_point=lambda p, s: seen.append((p.number, s)))
    assert runner.run() == "finished"

    # The runner's record: two points started before any ended, never a third beside them.
    assert seen[:2] == [(1, RUNNING), (2, RUNNING)]
    assert max(_running_counts(seen)) == 2 and runner.peak_parallel == 2
    assert sorted(seen) == sorted([(n, RUNNING) for n in range(1, 5)] + [(n, DONE) for n in range(1, 5)])
    snap = snapshot(packed)
    assert [p.state for p in snap.points] == [DONE] * 4 and snap.status == "finished"
    assert packed.runner_info() is None
    # The runs' own logs agree: at no moment did three of them train.
    assert _most_at_once([span for v in snap.points for span in _attempts(v.run)]) <= 2

    for one, two in zip(snapshot(serial).points, snap.points):
        a, b = one.run.results(), two.run.results()
        assert (a["config"]["lr"], a["config"]["cycle_weight"]) == (b["config"]["lr"], b["config"]["cycle_weight"])
        assert b["test"]["acc"] == a["test"]["acc"]
        assert b["test"]["loss"] == pytest.approx(a["test"]["loss"], abs=1e-6)
        assert b["best_val_loss"] == pytest.approx(a["best_val_loss"], abs=1e-6)
        assert two.run.process_info()["backend"] == "process"  # its own process, not the runner's
        started = next(e for e in two.run.events() if e["type"] == "run_started")
        assert started["environment"]["threads"] == 1


def test_stop_interrupts_every_running_point_with_a_checkpoint_and_resume_completes_the_queue(store: RunStore) -> None:
    sweep = grid_sweep(store, ["lr=1e-3,2e-3,3e-3"], name="stopper")
    seen: list[tuple[int, str]] = []

    def on_point(point: Any, state: str) -> None:
        seen.append((point.number, state))
        if seen.count((2, RUNNING)) == 1 and (point.number, state) == (2, RUNNING):
            sweep.request_stop()  # what `nsm-tui sweep stop` and F4's stop key write

    assert SweepRunner(sweep, parallel=2, point_threads=1, on_point=on_point).run() == "stopped"
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [STOPPED, STOPPED, PENDING]
    assert snap.status == "stopped" and not sweep.stop_requested() and sweep.runner_info() is None
    for view in snap.points[:2]:
        interrupted = [e for e in view.run.events() if e["type"] == "interrupted"]
        assert len(interrupted) == 1 and (view.run.path / interrupted[0]["checkpoint"]).is_file()
    assert snap.points[2].run.events() == []

    assert SweepRunner(sweep, parallel=3, point_threads=1).run() == "finished"
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [DONE] * 3
    for view in snap.points[:2]:
        types = [e["type"] for e in view.run.events()]
        assert types.count("run_started") == 1 and types.count("resumed") == 1 and types[-1] == "finished"
    assert [e["type"] for e in snap.points[2].run.events()].count("resumed") == 0
    assert [p.attempts for p in sweep.load().points] == [2, 2, 1]


def test_a_failing_point_does_not_stop_the_point_beside_it(store: RunStore) -> None:
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to make DEVICE=cuda fail")
    sweep = grid_sweep(store, ["device=cuda,cpu"], name="mixed")
    assert SweepRunner(sweep, parallel=2, point_threads=1).run() == "finished"
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [FAILED, DONE]
    assert "DEVICE=cuda but torch sees no CUDA GPU" in sweep.load().points[0].error
    assert snap.status == "finished" and snap.remaining == []
