"""The live overview's collector: which runs train now, where, in what state, how far."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import pytest

from nsm.config import RunConfig
from nsm.runs import RunStore
from nsm.runs import live_overview as lo
from nsm.runs import lock as run_lock
from nsm.runs.events import encode_event, make_event

NOW = 1_800_000_000.0


def write(store: RunStore, name: str, *, domain: str = "planning", ended: bool = False, progress: bool = True,
          gpu: bool = False, t0: float = NOW - 60) -> Any:  # fmt: skip
    run = store.create_run(RunConfig(domain=domain, epochs=20), name=name)
    events: list[tuple[str, dict[str, Any]]] = [("run_started", {"run": name, "domain": domain, "epochs": 20, "config": {"epochs": 20}})]
    events.append(("epoch_end", {"epoch": 3, "loss": 0.5, "graphs_per_s": 400.0, "eta_s": 340.0}))
    if progress:
        events.append(("progress", {"epoch": 4, "step": 5, "steps": 22, "loss": 0.4, "graphs_per_s": 512.0, "eta_s": 300.0}))
    if gpu:
        sample = {"available": True, "devices": [{"util_gpu_pct": 87.0, "memory_used_mib": 12390.4}]}
        events.append(("gpu", {"sample": sample}))
    if ended:
        events.append(("finished", {"reason": "completed", "epochs_done": 20}))
    run.events_path.write_bytes(b"".join(encode_event(make_event(i, k, t=t0 + i, **p)) for i, (k, p) in enumerate(events)))
    return run


def detached(run: Any, *, heartbeat_age: float = 1.0, pid: int | None = None) -> None:
    run.write_process_info(pid or os.getpid(), "process", "python -m nsm.training.worker")
    beat(run, heartbeat_age)


def beat(run: Any, age: float = 1.0) -> None:
    """A heartbeat `age` seconds before the collector's clock (NOW)."""
    run.touch_heartbeat()
    os.utime(run.heartbeat_path, (NOW - age, NOW - age))


def modal(run: Any) -> None:
    (run.path / "remote.json").write_text(json.dumps({"function_call_id": "fc-1", "gpu": "A100-40GB"}))
    beat(run)


def hold_mirror(run: Any) -> int:
    fd = os.open(run.path / ".mirror.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def by_ref(rows: list[lo.LiveRow]) -> dict[str, lo.LiveRow]:
    return {r.name: r for r in rows}


def test_only_runs_that_train_now_are_listed_with_backend_state_and_progress(store: RunStore) -> None:
    local = write(store, "local-1", gpu=True)
    detached(local)
    hung = write(store, "hung-1")
    detached(hung, heartbeat_age=300)
    on_modal = write(store, "modal-1", domain="causal")
    modal(on_modal)
    quiet = write(store, "modal-2", domain="kg")
    modal(quiet)
    flaky = write(store, "modal-3", domain="kg", progress=False)
    modal(flaky)
    (flaky.path / "mirror.log").write_text("2030-01-01 10:00:00 running on Modal\n2030-01-01 10:01:00 reconnecting to Modal (trying for up to 600 s): deadline\n")
    done = write(store, "done-1", ended=True)
    detached(done)
    dead = write(store, "dead-1")
    detached(dead, pid=2**22 + 12345, heartbeat_age=400)
    fds = [hold_mirror(on_modal), hold_mirror(flaky)]
    try:
        rows = by_ref(lo.LiveCollector(store).collect(now=NOW))
    finally:
        for fd in fds:
            os.close(fd)
    assert set(rows) == {"local-1", "hung-1", "modal-1", "modal-2", "modal-3"}
    r = rows["local-1"]
    assert (r.backend, r.state, r.epoch, r.epochs, r.step, r.steps, r.graphs_per_s) == (lo.LOCAL, lo.RUNNING, 4, 20, 5, 22, 512.0)
    assert r.pid == os.getpid()
    # The ETA counts down from the engine's estimate (made at t0+2 = NOW-58).
    assert r.eta_at(NOW) == pytest.approx(300 - 58)
    cells = dict(zip(lo.COLUMNS, lo.table_rows([r], NOW)[0]))
    assert cells == {"run": "planning/local-1", "backend": "local", "state": "running", "epoch": "4/20",
                     "g/s": "512", "ETA": "4m02s", "GPU": "87% 12.1G"}  # fmt: skip
    assert rows["hung-1"].state == lo.STALE_HEARTBEAT and "no heartbeat for" in (rows["hung-1"].note or "")
    assert (rows["modal-1"].backend, rows["modal-1"].state) == (lo.MODAL, lo.RUNNING)
    assert rows["modal-2"].state == lo.NO_MIRROR and "attach" in (rows["modal-2"].note or "")
    assert rows["modal-3"].state == lo.RECONNECTING and "reconnecting" in (rows["modal-3"].note or "")
    assert lo.gpu_text(rows["modal-1"]) == "n/a"


def test_in_app_runs_sweep_points_and_held_locks(store: RunStore) -> None:
    mine = write(store, "grid-01")
    lock = run_lock.acquire(mine.path, mine.ref)  # this process trains it: an in-app run
    write(store, "grid-02", progress=False)
    sweep = store.root / ".sweeps" / "grid"
    sweep.mkdir(parents=True)
    points = [{"index": i, "run": f"planning/grid-0{i + 1}", "config": {}} for i in range(3)]
    (sweep / "sweep.json").write_text(json.dumps({"format": "nsm-sweep", "points": points}))
    try:
        rows = by_ref(lo.LiveCollector(store).collect(in_app=["planning/grid-02"], now=NOW))
    finally:
        lock.release()
    assert rows["grid-01"].backend == lo.IN_APP and rows["grid-01"].sweep == "grid, point 1 of 3"
    assert rows["grid-02"].backend == lo.IN_APP
    assert rows["grid-02"].state == lo.RUNNING  # an epoch is done, the tail has its epoch_end
    assert "sweep grid, point 2 of 3" in lo.describe(rows["grid-02"], NOW)
    # Once the lock is gone and nothing else says it lives, the run leaves the overview.
    assert "grid-01" not in by_ref(lo.LiveCollector(store).collect(now=NOW))


def test_a_poll_over_many_finished_runs_reads_no_log_twice(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(40):
        write(store, f"old-{i:02d}", ended=True)
    live = write(store, "live-1")
    detached(live)
    collector = lo.LiveCollector(store)
    assert [r.name for r in collector.collect(now=NOW)] == ["live-1"]
    tails: list[Path] = []
    monkeypatch.setattr(lo, "read_tail", lambda path, size=0: tails.append(path) or (None, None))
    assert [r.name for r in collector.collect(now=NOW)] == ["live-1"]
    assert tails == []  # unchanged log: the cached tail; finished runs: never read
    with live.events_path.open("ab") as fh:
        fh.write(encode_event(make_event(9, "progress", t=NOW, epoch=5, step=1, steps=22)))
    collector.collect(now=NOW)
    assert tails == [live.events_path]
