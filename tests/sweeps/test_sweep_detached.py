"""The detached queue: its own process, stopped through the sweep folder, resumed by a new one;
and `nsm-tui train --domain all --detach`'s queue of the three domains."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsm.config import DOMAINS
from nsm.runs import RunStore, pid_alive
from nsm.sweeps import DONE, STOPPED, SweepBusy, get_sweep, request_stop, snapshot
from nsm.sweeps.launch import launch_detached_sweep

from .helpers import grid_sweep, tiny, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_a_detached_queue_stops_on_request_and_a_new_runner_resumes_it(store: RunStore) -> None:
    # Batches of one graph: 126 steps a point, time enough to stop point 2 in its middle.
    sweep = grid_sweep(store, ["lr=1e-3,3e-3"], name="bg", batch_size=1, epochs=3)
    pid = launch_detached_sweep(sweep)
    assert sweep.runner_info()["pid"] == pid and sweep.runner_alive()
    with pytest.raises(SweepBusy):
        launch_detached_sweep(sweep)
    first, second = (sweep.run_of(p) for p in sweep.load().points)
    wait_until(lambda: any(e["type"] == "progress" for e in second.events()), what="point 2 to train")
    request_stop(sweep)
    wait_until(lambda: not pid_alive(pid), timeout=60, what="the runner to exit")
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [DONE, STOPPED], sweep.log_path.read_text()
    assert sweep.runner_info() is None and not sweep.stop_requested()
    log = sweep.log_path.read_text()
    assert "point 1/2 (lr=0.001): done" in log and "point 2/2 (lr=0.003): stopped with a checkpoint" in log
    first_log = first.events_path.read_bytes()

    pid = launch_detached_sweep(sweep)
    wait_until(lambda: not pid_alive(pid), what="the resumed runner to finish")
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [DONE, DONE], sweep.log_path.read_text()
    assert first.events_path.read_bytes() == first_log
    resumed = [e for e in second.events() if e["type"] == "resumed"]
    assert len(resumed) == 1 and resumed[0]["checkpoint"].startswith("checkpoint_epoch_")
    assert second.process_info()["backend"] == "process"


def test_all_domains_queue_one_run_each_and_say_where_to_follow(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli.sweeps import start_detached_queue

    assert start_detached_queue(store, [tiny(domain=d, epochs=1) for d in DOMAINS], label="all domains") == 0
    out = capsys.readouterr().out
    name = out.split("queued ", 1)[1].split(" ", 1)[0]
    assert name.startswith("all-domains-")
    assert f"nsm-tui sweep show {name}" in out and f"nsm-tui sweep stop {name}" in out and "runner.log" in out
    sweep = get_sweep(store, name)
    pid = sweep.runner_info()["pid"]
    wait_until(lambda: not pid_alive(pid), timeout=240, what="the three domains to train")
    snap = snapshot(sweep)
    assert [p.state for p in snap.points] == [DONE] * 3, sweep.log_path.read_text()
    assert {r.domain for r in store.list_runs() if r.status == "finished"} == set(DOMAINS)
    assert snap.data.label == "all domains" and snap.data.knobs == ["domain"]
