"""Every failure leaves a record: a full disk under the event log still ends `failed`; a stop
sent right after a detached launch is kept; orphan temp files go; a run killed before its
first checkpoint restarts under its name; every file of a trained run has one mode."""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from pathlib import Path
from typing import Iterator

import pytest

from nsm.execution import LocalProcessBackend
from nsm.runs import Run, RunStore
from nsm.runs import events as run_events
from nsm.runs.export import export_run
from nsm.training.checkpoint import CheckpointError, load_checkpoint
from nsm.training.trainer import Trainer

from .helpers import run_cli, tiny_config, wait_for_event, wait_for_exit


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def disk_fills_after(monkeypatch: pytest.MonkeyPatch, run: Run, n: int, *, reserve_frees: bool) -> list[int]:
    """The event log's disk is full after `n` appends: a write takes half its line, then
    ENOSPC. With `reserve_frees`, deleting <run>/.reserve gives the space back."""
    real = run_events._write_all
    calls = [0]

    def write_all(fd: int, data: bytes) -> None:
        calls[0] += 1
        full = calls[0] > n and not (reserve_frees and not (run.path / ".reserve").exists())
        if not full:
            return real(fd, data)
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_events, "_write_all", write_all)
    return calls


def test_a_full_disk_under_the_event_log_frees_the_reserve_and_ends_failed(store: RunStore, monkeypatch) -> None:
    run = store.create_run(tiny_config(epochs=3), name="diskfull")
    disk_fills_after(monkeypatch, run, 6, reserve_frees=True)
    assert Trainer(run).run() == "failed"
    assert run.status() == "failed"
    failed = run.events()[-1]
    assert failed["type"] == "failed" and failed["error_type"] == "disk"
    assert "no space left on device" in failed["error"]
    summary = run.summary()
    assert summary.problem is None  # the half-written line was cut off: no unreadable line
    assert not (run.path / ".reserve").exists() and not run.failure_path.exists()


def test_a_disk_too_full_even_for_the_failed_event_leaves_failed_json(store: RunStore, monkeypatch) -> None:
    run = store.create_run(tiny_config(epochs=3), name="diskfull2")
    disk_fills_after(monkeypatch, run, 6, reserve_frees=False)
    heard: list[dict] = []
    assert Trainer(run, sinks=[heard.append]).run() == "failed"
    assert heard[-1]["type"] == "failed"  # a viewer still hears it
    assert all(e["type"] != "failed" for e in run.events())
    record = json.loads(run.failure_path.read_text())
    assert "no space left on device" in record["error"]
    assert run.status() == "failed"
    summary = run.summary()
    assert summary.status == "failed" and "no space" in (summary.error or "")
    out = run_cli("--runs-dir", str(store.root), "runs", "show", "diskfull2")
    assert "failed" in out.stdout and "no space left on device" in out.stdout, out.stdout + out.stderr
    # A later start is a new attempt: the old record no longer decides.
    monkeypatch.undo()
    assert Trainer(run).run() == "finished"
    assert run.status() == "finished" and not run.failure_path.exists()


def test_a_stop_sent_right_after_a_detached_launch_is_not_lost(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=200, batch_size=1), name="earlystop")
    pid = LocalProcessBackend().start(run).pid
    run.request_stop()  # before the worker has even imported torch
    end = wait_for_event(run, lambda e: e["type"] in ("finished", "failed", "interrupted"), timeout=120)
    assert end["type"] == "interrupted", (run.path / "train.log").read_text()
    wait_for_exit(pid)
    assert not run.stop_requested()  # consumed: the next resume is not stopped by it


def test_a_stale_stop_request_does_not_stop_a_new_start(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=1), name="stale-stop")
    run.request_stop()
    old = time.time() - 3600
    os.utime(run.stop_path, (old, old))
    assert Trainer(run).run() == "finished"


def test_orphan_temp_files_are_removed_at_start(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=1), name="orphans")
    orphan = run.path / ".checkpoint_epoch_2.pt.abcd1234.tmp"
    orphan.write_bytes(b"x" * 100)
    old = time.time() - 600
    os.utime(orphan, (old, old))
    young = run.path / ".stop_requested.zz99yy88.tmp"  # a write in progress this very moment
    young.write_bytes(b"{}")
    assert Trainer(run).run() == "finished"
    assert not orphan.exists() and young.exists()
    assert all(not c.file.startswith(".") for c in run.checkpoints())


def test_a_run_killed_before_its_first_checkpoint_restarts_under_its_name(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=1), name="killed-early")
    with run.event_writer() as writer:
        writer.emit("run_started", run=run.name, domain="planning", config=run.config(), epochs=1)
    run.write_process_info(999999, "process", "x")  # its process is gone: stale
    refused = run_cli("resume", "killed-early", "--runs-dir", str(store.root))
    assert refused.returncode != 0
    assert "nsm-tui resume killed-early --restart" in refused.stdout + refused.stderr
    out = run_cli("resume", "killed-early", "--restart", "--runs-dir", str(store.root))
    assert out.returncode == 0, out.stdout + out.stderr
    assert run.status() == "finished"
    starts = [e for e in run.events() if e["type"] == "run_started"]
    assert len(starts) == 1 and starts[0]["seq"] == 0
    (aside,) = (run.path / "discarded").iterdir()
    assert aside.name.endswith("-restart") and (aside / "events.jsonl").exists()
    again = run_cli("resume", "killed-early", "--restart", "--runs-dir", str(store.root))
    assert again.returncode != 0 and "has checkpoints" in again.stdout + again.stderr


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_events_config_checkpoints_results_and_exports_share_one_mode(store: RunStore, tmp_path: Path, umask_022) -> None:
    run = store.create_run(tiny_config(epochs=2), name="modes")
    assert Trainer(run).run() == "finished"
    exported = export_run(run, "json", tmp_path / "out")
    files = [run.events_path, run.config_path, run.path / "best_model.pt", run.path / "checkpoint_epoch_2.pt",
             run.results_path, run.history_path, run.process_path, *exported]  # fmt: skip
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes


def test_a_checkpoint_that_is_a_fifo_or_directory_is_refused_before_loading(tmp_path: Path) -> None:
    fifo = tmp_path / "checkpoint_epoch_1.pt"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="regular file"):
        load_checkpoint(fifo)
    folder = tmp_path / "checkpoint_epoch_2.pt"
    folder.mkdir()
    with pytest.raises(CheckpointError, match="regular file"):
        load_checkpoint(folder)


@pytest.mark.parametrize("write", ["write_history", "write_results"])
def test_a_full_disk_under_the_history_or_the_results_ends_failed_with_a_clear_message(
    store: RunStore, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    def full(self: Run, _data: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    monkeypatch.setattr(Run, write, full)
    run = store.create_run(tiny_config(epochs=2, save_every=1), name=f"full-{write}")
    assert Trainer(run).run() == "failed"
    failed = run.events()[-1]
    assert failed["type"] == "failed" and failed["error_type"] == "disk", failed
    assert "no space left on device" in failed["error"]
    assert run.status() == "failed"
    assert not [p.name for p in run.path.iterdir() if p.name.endswith(".tmp")]
