"""Detached local runs: their own session, a pid, survive the parent, stop cleanly, survive SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nsm.execution import LocalProcessBackend, RunLocked, plan_resume
from nsm.runs import Run, RunStore, pid_alive
from nsm.training.checkpoint import load_checkpoint
from nsm.training.trainer import Trainer

from .helpers import ROOT, metric_rows, tiny_config, wait_for_event, wait_for_exit


def launch_detached(run: Run) -> int:
    pid = LocalProcessBackend().start(run).pid
    assert pid is not None
    return pid


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_a_detached_run_survives_its_parent_and_finishes(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=3), name="orphan")
    parent = textwrap.dedent(
        f"""
        from nsm.execution import LocalProcessBackend
        from nsm.runs import Run
        print(LocalProcessBackend().start(Run({str(run.path)!r})).pid)
        """
    )
    out = subprocess.run([sys.executable, "-c", parent], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.strip())
    # The parent has exited; the worker carries on in its own session.
    assert os.getsid(pid) == pid if pid_alive(pid) else True
    end = wait_for_event(run, lambda e: e["type"] in ("finished", "failed", "interrupted"))
    assert end["type"] == "finished", (run.path / "train.log").read_text()
    info = json.loads((run.path / "process.json").read_text())
    assert info["pid"] == pid and info["backend"] == "process"
    wait_for_exit(pid)  # the worker prints its last line after the final event
    assert "run orphan: finished" in (run.path / "train.log").read_text()
    assert run.status() == "finished"


def test_stop_on_a_detached_run_ends_it_with_a_checkpoint(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=200, batch_size=1), name="stoppable")
    pid = launch_detached(run)
    wait_for_event(run, lambda e: e["type"] == "progress")
    assert run.status() == "running"
    # A second start of the same run, while the first trains, is refused and names the holder.
    with pytest.raises(RunLocked, match=f"pid {pid}"):
        LocalProcessBackend().start(run)
    with pytest.raises(RunLocked):
        Trainer(run).run()
    message = LocalProcessBackend().stop(run)
    assert "SIGTERM sent" in message  # flag file + SIGTERM to the lock holder, our own worker
    end = wait_for_event(run, lambda e: e["type"] in ("interrupted", "finished", "failed"))
    assert end["type"] == "interrupted", (run.path / "train.log").read_text()
    assert load_checkpoint(run.path / end["checkpoint"])["epoch"] == end["epoch"]
    wait_for_exit(pid)
    assert run.status() == "interrupted"
    # Resuming it detached continues the same log.
    pid2 = LocalProcessBackend().resume(plan_resume(run, end["checkpoint"])).pid
    assert pid2 is not None
    wait_for_event(run, lambda e: e["type"] == "resumed")
    os.kill(pid2, signal.SIGINT)  # SIGINT is a cooperative stop as well
    second = wait_for_event(run, lambda e: e["type"] in ("interrupted", "finished", "failed") and e["seq"] > end["seq"])
    assert second["type"] == "interrupted"
    wait_for_exit(pid2)


def test_sigkill_at_a_random_moment_leaves_every_checkpoint_loadable_and_the_run_resumable(store: RunStore) -> None:
    cfg = tiny_config(epochs=40, save_every=1, batch_size=4)
    run = store.create_run(cfg, name="killed")
    pid = launch_detached(run)
    wait_for_event(run, lambda e: e["type"] == "checkpoint" and e["epoch"] >= random.randint(1, 4))
    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid)
    assert run.status() == "stale"  # no final event, process gone
    checkpoints = run.checkpoints()
    assert checkpoints
    for c in checkpoints:
        load_checkpoint(c.path)  # raises if any was left half-written
    latest = run.latest_checkpoint()
    done = load_checkpoint(latest.path)["epoch"]
    resumed = Trainer(run, resume_from=latest.path, config=cfg.replace(epochs=40))
    resumed_events: list[dict] = []
    resumed._sinks.append(resumed_events.append)
    # Finish quickly: stop once two more epochs are done.
    resumed._on_step = lambda e, s: resumed.request_stop("test") if e > done + 2 else None
    assert resumed.run() == "interrupted"
    log = run.events()
    assert [e["seq"] for e in log] == list(range(len(log)))
    train, _ = metric_rows(log)
    assert max(train) >= done + 2
