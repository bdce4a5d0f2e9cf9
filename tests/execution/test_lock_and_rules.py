"""One trainer per run, and one set of resume/stop rules with one wording."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nsm.execution import NotResumable, NotStoppable, RunLocked, plan_resume, plan_stop
from nsm.runs import Run, RunStore, RunStoreError
from nsm.runs import lock as run_lock
from nsm.runs.events import encode_event, make_event

from training.helpers import ROOT, tiny_config


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def write_events(run: Run, events: list[tuple[str, dict]]) -> None:
    run.events_path.write_bytes(b"".join(encode_event(make_event(i, k, t=1.0 + i, **p)) for i, (k, p) in enumerate(events)))


def started(epochs: int = 4) -> tuple[str, dict]:
    return ("run_started", {"run": "r", "domain": "planning", "config": {"epochs": epochs}, "epochs": epochs})


def test_a_held_lock_refuses_a_second_holder_and_names_the_first(store: RunStore) -> None:
    run = store.create_run(tiny_config(), name="locked")
    held = run_lock.acquire(run.path, run.ref)
    try:
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}") as refused:
            run_lock.acquire(run.path, run.ref, wait_s=0.05)
        assert "nsm-tui stop locked" in str(refused.value)
        assert run_lock.holder(run.path).pid == os.getpid()
        assert run.status() == "running"  # before any event: the lock is what says so
        with pytest.raises(RunStoreError, match="running"):
            store.delete(run.ref)
    finally:
        held.release()
    assert run_lock.holder(run.path) is None
    assert run.status() == "created"


def test_a_killed_holder_leaves_no_lock_behind(store: RunStore) -> None:
    run = store.create_run(tiny_config(), name="orphaned")
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from nsm.runs import lock
            held = lock.acquire(Path({str(run.path)!r}), "planning/orphaned")
            print("held", flush=True)
            time.sleep(600)
        """)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "held"
        holder = run_lock.holder(run.path)
        assert holder is not None and holder.pid == child.pid
        with pytest.raises(RunLocked, match=f"pid {child.pid}"):
            plan_resume(run)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert run_lock.holder(run.path) is None
    run_lock.acquire(run.path, run.ref).release()  # recovered without anyone cleaning up


@pytest.mark.parametrize("kind", ["fifo", "dir"])
def test_a_lock_path_that_is_not_a_regular_file_is_refused_without_hanging(store: RunStore, kind: str) -> None:
    run = store.create_run(tiny_config(), name=f"odd-{kind}")
    path = run.path / run_lock.LOCK_FILE
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(RunStoreError, match="not a regular file|cannot open"):
        run_lock.acquire(run.path, run.ref)
    assert run_lock.holder(run.path) is None


def test_resume_rules_speak_with_one_voice(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=4), name="rules")
    with pytest.raises(NotResumable, match="has no checkpoint to resume from"):
        plan_resume(run)
    for n in (2, 4):
        (run.path / f"checkpoint_epoch_{n}.pt").write_bytes(b"x")
    write_events(run, [started(), ("finished", {"reason": "completed", "epochs_done": 4})])
    with pytest.raises(NotResumable, match=r"already finished \(completed after 4 epochs\).*--checkpoint FILE"):
        plan_resume(run)
    with pytest.raises(NotResumable, match=r"checkpoint_epoch_9.pt is not a checkpoint of run rules \(it has: checkpoint_epoch_2.pt, checkpoint_epoch_4.pt\)"):
        plan_resume(run, "checkpoint_epoch_9.pt")
    earlier = plan_resume(run, "checkpoint_epoch_2.pt")
    assert earlier.rewinds and earlier.epoch == 2 and earlier.path == run.path / "checkpoint_epoch_2.pt"
    latest = plan_resume(run, str(run.path / "checkpoint_epoch_4.pt"))
    assert not latest.rewinds
    with pytest.raises(NotResumable, match="is not in the folder of run rules"):
        plan_resume(run, "/etc/passwd")


def test_an_interrupted_run_resumes_from_its_furthest_checkpoint(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=4), name="stopped")
    for name in ("checkpoint_epoch_2.pt", "checkpoint_epoch_2_step_3.pt", "best_model.pt"):
        (run.path / name).write_bytes(b"x")
    write_events(run, [started(), ("interrupted", {"epoch": 2, "step": 3, "checkpoint": "checkpoint_epoch_2_step_3.pt"})])
    plan = plan_resume(run)
    assert plan.file == "checkpoint_epoch_2_step_3.pt" and plan.latest and not plan.explicit
    assert plan.describe() == "checkpoint_epoch_2_step_3.pt (epoch 2, step 3)"


def test_a_modal_run_is_planned_against_the_volume_files(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=4), name="remote-rules")
    write_events(run, [started(), ("interrupted", {"epoch": 3, "step": 0, "checkpoint": "checkpoint_epoch_3.pt"})])
    plan = plan_resume(run, available=["checkpoint_epoch_3.pt", "events.jsonl"])
    assert plan.file == "checkpoint_epoch_3.pt" and plan.path is None  # only on the volume


def test_stop_reads_the_lock_not_a_stale_event(store: RunStore) -> None:
    run = store.create_run(tiny_config(), name="stoppable")
    write_events(run, [started(), ("interrupted", {"epoch": 1, "step": 0, "checkpoint": "c.pt"})])
    with pytest.raises(NotStoppable, match=r"not running \(status: interrupted\)"):
        plan_stop(run)
    held = run_lock.acquire(run.path, run.ref)
    try:
        target = plan_stop(run)  # the log still ends in "interrupted": the lock says a resume trains it
        assert target.pid is None  # our own process is never signalled
    finally:
        held.release()


def test_a_worker_without_its_launchers_lock_takes_its_own(store: RunStore) -> None:
    run = store.create_run(tiny_config(), name="adopt")
    os.environ[run_lock.ENV_LOCK_FD] = "999"  # not an open descriptor: ignored, not trusted
    assert run_lock.adopt_from_env(run.path) is None
    assert run_lock.ENV_LOCK_FD not in os.environ
    record = json.dumps({"pid": 1, "host": "elsewhere", "started": 1.0}).encode()
    (run.path / run_lock.LOCK_FILE).write_bytes(record)
    assert run_lock.holder(run.path) is None  # another host's record without a fresh heartbeat
