"""How many points `--parallel N|auto` packs on this machine, and what it says about it (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsm.runs import RunStore
from nsm.sweeps.packing import AUTO, DeviceFacts, ParallelError, choose_packing, packing_for, parse_parallel
from nsm.sweeps.runner import main as runner_main

from .helpers import epoch, finished, grid_sweep, log_events, started

H200 = DeviceFacts(cores=16, cuda=True, gpu_name="NVIDIA H200", free_mb=139_000, total_mb=143_000, util_pct=0)


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5", "", 0])
def test_parallel_must_be_a_whole_number_or_auto(raw: object) -> None:
    with pytest.raises(ParallelError, match=r"--parallel must be a whole number >= 1 or auto \(got"):
        parse_parallel(raw)  # type: ignore[arg-type]


def test_parallel_accepts_numbers_and_auto() -> None:
    assert parse_parallel("3") == 3 and parse_parallel(" Auto ") == AUTO and parse_parallel(None) == 1


def test_a_given_n_is_kept_and_splits_the_cores_between_the_points() -> None:
    packing = choose_packing(4, remaining=10, facts=DeviceFacts(cores=8))
    assert (packing.points, packing.threads) == (4, 2)
    assert packing.line() == "parallel: 4 point(s) at once, 2 torch thread(s) each (as asked)"
    fewer = choose_packing(4, remaining=3, facts=DeviceFacts(cores=2))
    assert (fewer.points, fewer.threads) == (3, 1) and "3 point(s) left" in fewer.reason
    assert choose_packing(1, remaining=5, facts=DeviceFacts(cores=8)).threads is None  # today's path


def test_auto_on_a_small_cpu_trains_one_point_at_a_time() -> None:
    packing = choose_packing(AUTO, remaining=4, facts=DeviceFacts(cores=2))
    assert (packing.points, packing.threads) == (1, None)
    assert "auto: CPU, 2 core(s)" in packing.line()
    assert choose_packing(AUTO, remaining=12, facts=DeviceFacts(cores=16)).points == 4


def test_auto_on_a_gpu_packs_by_free_memory_cores_and_points_left() -> None:
    unmeasured = choose_packing(AUTO, remaining=12, facts=H200)
    assert (unmeasured.points, unmeasured.threads) == (12, 1)
    assert "NVIDIA H200, 136 GiB free" in unmeasured.reason and "no peak measured yet" in unmeasured.reason
    small = DeviceFacts(cores=16, cuda=True, free_mb=10_000, util_pct=0)
    assert choose_packing(AUTO, remaining=12, facts=small).points == 3  # 9000 MiB / 3000 a point
    measured = choose_packing(AUTO, remaining=12, facts=small, measured_mb=400)
    assert measured.points == 7 and "measured peak 400 MiB" in measured.reason  # 9000 / (400 * 1.5 + 600)
    few_cores = DeviceFacts(cores=4, cuda=True, free_mb=139_000, util_pct=0)
    assert choose_packing(AUTO, remaining=12, facts=few_cores).points == 4


def test_auto_leaves_a_busy_gpu_to_its_other_user() -> None:
    busy = DeviceFacts(cores=16, cuda=True, free_mb=139_000, util_pct=75)
    packing = choose_packing(AUTO, remaining=12, facts=busy)
    assert packing.points == 4 and "75% busy" in packing.reason
    assert choose_packing(AUTO, remaining=12, facts=DeviceFacts(cores=16, cuda=True, util_pct=99)).points == 1
    unknown = choose_packing(AUTO, remaining=12, facts=DeviceFacts(cores=16, cuda=True))
    assert unknown.points == 1 and "free memory unknown" in unknown.reason


def test_auto_sizes_a_resume_from_the_peak_its_finished_points_measured(tmp_path: Path) -> None:
    sweep = grid_sweep(RunStore(tmp_path / "runs"), ["lr=1e-3,2e-3,3e-3"], name="peaks", device="auto")
    first = sweep.run_of(sweep.load().points[0])
    log_events(first, [started(1), ("epoch_end", {**epoch(1, 0.5, 0.7)[0][1], "gpu_peak_mem_mb": 1400.0}), finished(0.7, 0.5, 1)])
    packing = packing_for(sweep, AUTO, facts=DeviceFacts(cores=16, cuda=True, free_mb=10_000, util_pct=0))
    assert packing.points == 2 and "measured peak 1400 MiB" in packing.reason  # 2 left; 9000 / 2700 = 3
    assert packing_for(sweep, 5, facts=DeviceFacts(cores=16)).points == 2


def test_the_detached_runner_refuses_a_bad_parallel_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = grid_sweep(RunStore(tmp_path / "runs"), ["lr=1e-3,2e-3"], name="bad")
    assert runner_main([str(sweep.path), "--parallel", "zero"]) == 2
    assert "--parallel must be a whole number >= 1 or auto (got 'zero')" in capsys.readouterr().err
    assert sweep.runner_info() is None


def test_a_packed_queue_never_starts_a_point_that_another_process_trains(tmp_path: Path) -> None:
    from nsm.runs import lock as run_lock
    from nsm.sweeps import snapshot
    from nsm.sweeps.runner import SweepRunner

    sweep = grid_sweep(RunStore(tmp_path / "runs"), ["lr=1e-3,2e-3"], name="held")
    runs = [sweep.run_of(p) for p in sweep.load().points]
    held = [run_lock.acquire(r.path, r.ref, purpose="train") for r in runs]  # trained by hand elsewhere
    try:
        runner = SweepRunner(sweep, parallel=2, point_threads=1)
        assert runner.run() == "finished" and runner.peak_parallel == 0
        assert [r.events() for r in runs] == [[], []] and not any(r.process_info() for r in runs)
        assert [p.attempts for p in sweep.load().points] == [0, 0]
        assert [v.state for v in snapshot(sweep).points] == ["running", "running"]
    finally:
        for lock in held:
            lock.release()
