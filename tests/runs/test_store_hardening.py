"""The store's files are regular files of the run: symlinks, FIFOs and directories in their
place are refused (never followed, never waited on); one mode for every file; `stop` signals
only the lock holder; `delete` refuses a locked run; restarts set the old attempt aside."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from nsm.atomic import atomic_write_json, atomic_write_text
from nsm.execution.rules import NotResumable, plan_resume
from nsm.runs import EventFollower, EventLogWriter, Run, RunStore, read_events
from nsm.runs import lock as run_lock
from nsm.runs.errors import RunIsRunning, RunStoreError
from nsm.runs.process import this_host
from nsm.runs.timeline import set_aside_for_restart

from .helpers import training_events

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A read that blocks on a FIFO fails the test instead of hanging the suite."""

    def boom(*_: object) -> None:
        raise AssertionError("blocked (a FIFO was waited on)")

    previous = signal.signal(signal.SIGALRM, boom)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# ----------------------------------------------------------- symlinks, FIFOs, dirs


def test_an_event_log_symlinked_to_another_runs_log_is_refused(make_run) -> None:
    other = make_run("other", events=training_events(epochs=2))
    before = other.events_path.read_bytes()
    run = make_run("victim")
    run.events_path.symlink_to(other.events_path)
    with pytest.raises(RunStoreError, match="symbolic link"):
        EventLogWriter(run.events_path)
    with pytest.raises(RunStoreError, match="events.jsonl"):
        run.event_writer()
    assert other.events_path.read_bytes() == before
    assert read_events(run.events_path) == ([], 0)  # readers do not follow it either
    follower = EventFollower(run.events_path)
    assert follower.poll() == [] and "symbolic link" in (follower.problem or "")


@pytest.mark.parametrize("kind", ["fifo", "dir"])
def test_a_fifo_or_directory_event_log_reads_as_damaged_and_nothing_hangs(store: RunStore, make_run, kind: str) -> None:
    run = make_run("odd")
    if kind == "fifo":
        os.mkfifo(run.events_path)
        word = "FIFO"
    else:
        run.events_path.mkdir()
        word = "directory"
    with pytest.raises(RunStoreError, match=word):
        EventLogWriter(run.events_path)
    assert read_events(run.events_path) == ([], 0)
    follower = EventFollower(run.events_path)
    assert follower.poll() == []
    assert word in (follower.problem or "") and "regular file" in (follower.problem or "")
    (row,) = [s for s in store.list_runs() if s.name == "odd"]
    assert row.problem is not None and "events.jsonl" in row.problem and word in row.problem


def test_a_fifo_config_is_a_clear_problem_not_a_hang(store: RunStore, make_run) -> None:
    run = make_run("pipe-config")
    run.config_path.unlink()
    os.mkfifo(run.config_path)
    with pytest.raises(RunStoreError, match="FIFO"):
        run.config()
    (row,) = [s for s in store.list_runs() if s.name == "pipe-config"]
    assert row.problem is not None and "FIFO" in row.problem and "config.json" in row.problem
    assert run.process_info() is None  # absent; a FIFO process.json would read as unreadable
    os.mkfifo(run.process_path)
    assert run.process_info() is None


def test_an_atomic_write_replaces_a_symlink_and_never_writes_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text("precious")
    link = tmp_path / "run" / "final_results.json"
    link.parent.mkdir()
    link.symlink_to(outside)
    atomic_write_json(link, {"a": 1})
    assert outside.read_text() == "precious"
    assert not link.is_symlink() and link.read_text().strip().startswith("{")


# ----------------------------------------------------------------------- modes


def test_store_files_share_one_mode(store: RunStore, make_run, umask_022: None) -> None:
    run = make_run("modes", events=training_events(epochs=1))
    atomic_write_text(run.path / "evaluation_x.json", "{}")
    run.write_results({"test": {}})
    run.touch_heartbeat()
    held = run_lock.acquire(run.path, run.ref)
    held.release()
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in (run.config_path, run.events_path, run.results_path, run.heartbeat_path, run.path / "evaluation_x.json", run.path / "run.lock")
    }
    assert set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE(run.path.stat().st_mode) == 0o755


# ------------------------------------------------------------------- stop, delete


def test_stop_never_signals_a_pid_merely_named_in_process_json(store: RunStore, make_run) -> None:
    run = make_run("crafted")
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        atomic_write_json(
            run.process_path,
            {"pid": bystander.pid, "host": this_host(), "started": time.time(), "command": "x", "backend": "process"},
        )
        out = subprocess.run(
            [sys.executable, "-m", "tui.cli", "stop", "crafted", "--runs-dir", str(store.root)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        text = out.stdout + out.stderr
        assert out.returncode == 0, text
        assert "not this run's process and was not signalled" in " ".join(text.split()) and str(bystander.pid) in text
        assert "SIGTERM" not in text
        time.sleep(0.2)
        assert bystander.poll() is None, "the unrelated process was signalled"
        # Only the stop-request file was left: it reaches nothing but a real trainer of this run.
        assert run.stop_requested()
    finally:
        bystander.kill()
        bystander.wait()


def test_delete_refuses_while_the_lock_is_held(store: RunStore, make_run) -> None:
    run = make_run("held", events=training_events(epochs=1, finish=True))
    held = run_lock.acquire(run.path, run.ref)
    try:
        with pytest.raises(RunIsRunning, match=f"pid {os.getpid()}"):
            store.delete("held")
        assert run.exists()
    finally:
        held.release()
    store.delete("held")
    assert not run.exists()


# -------------------------------------------------------------- temp files, restart


def test_orphan_temp_files_are_not_listed(store: RunStore, make_run) -> None:
    run = make_run("tmpfiles", events=training_events(epochs=2))
    (run.path / ".checkpoint_epoch_2.pt.abcd1234.tmp").write_bytes(b"half")
    (run.path / ".best_model.pt.k2j3h4g5.tmp").write_bytes(b"half")
    (run.path.parent / ".other.abc.tmp").mkdir()
    assert all(not c.file.startswith(".") for c in run.checkpoints())
    assert [s.name for s in store.list_runs()] == ["tmpfiles"]


def test_a_run_without_a_checkpoint_says_how_to_restart_and_restart_sets_it_aside(make_run) -> None:
    run = make_run("early", events=[training_events(epochs=1)[0]])
    run.write_process_info(999999, "process", "x")
    with pytest.raises(NotResumable, match="nsm-tui resume early --restart"):
        plan_resume(run)
    moved = set_aside_for_restart(run)
    assert moved is not None and moved.parent == run.path / "discarded" and moved.name.endswith("-restart")
    assert (moved / "events.jsonl").exists() and (moved / "info.json").exists()
    assert not run.events_path.exists() and not run.process_path.exists()
    assert run.config_path.exists()
    assert run.status() == "created"
