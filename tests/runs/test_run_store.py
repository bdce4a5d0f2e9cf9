from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nsm.config import RunConfig
from nsm.runs import (
    EventLogWriter,
    Run,
    RunExists,
    RunIsRunning,
    RunNameError,
    RunNotFound,
    RunStore,
    RunStoreError,
    default_runs_dir,
    pid_alive,
)
from nsm.runs.process import process_start_time

from .helpers import started, training_events


# ------------------------------------------------------------------- the root


def test_runs_dir_flag_beats_env_beats_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSM_RUNS_DIR", str(tmp_path / "env"))
    assert default_runs_dir(tmp_path / "flag") == tmp_path / "flag"
    assert default_runs_dir() == tmp_path / "env"
    monkeypatch.delenv("NSM_RUNS_DIR")
    monkeypatch.chdir(tmp_path)
    assert default_runs_dir() == tmp_path / "runs"
    assert default_runs_dir().is_absolute()


# ------------------------------------------------------------------- creating


def test_create_run_writes_a_versioned_config(store: RunStore) -> None:
    run = store.create_run(RunConfig(domain="kg", epochs=7), name="first")
    assert run.path == store.root / "kg" / "first"
    assert (run.name, run.domain, run.ref) == ("first", "kg", "kg/first")
    config = json.loads(run.config_path.read_text())
    assert config["schema_version"] == 1 and config["epochs"] == 7
    assert run.config() == config
    assert run.run_config() == RunConfig(domain="kg", epochs=7)
    assert run.status() == "created"


def test_create_run_generates_a_name(store: RunStore) -> None:
    a = store.create_run(RunConfig(domain="causal"))
    b = store.create_run({"domain": "causal", "lr": 0.01})
    assert a.ref == f"causal/{a.name}" and "causal" not in a.name and a.name != b.name


def test_duplicate_names_are_refused_across_domains(store: RunStore) -> None:
    store.create_run(RunConfig(domain="planning"), name="shared")
    with pytest.raises(RunExists, match="planning/shared"):
        store.create_run(RunConfig(domain="planning"), name="shared")
    with pytest.raises(RunExists, match="unique across the store"):
        store.create_run(RunConfig(domain="kg"), name="shared")
    assert not (store.root / "kg" / "shared").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", "x" * 65, "bad\x00"])
def test_create_run_refuses_bad_names_before_touching_disk(store: RunStore, name: str) -> None:
    with pytest.raises(RunNameError):
        store.create_run(RunConfig(), name=name)
    assert not store.root.exists()


# ------------------------------------------------------------------- finding


def test_get_by_name_and_domain_name(store: RunStore, make_run) -> None:
    run = make_run("alpha", domain="kg")
    assert store.get("alpha") == run
    assert store.get("kg/alpha") == run
    with pytest.raises(RunNotFound, match="NAME or DOMAIN/NAME"):
        store.get(str(run.path))
    with pytest.raises(RunNotFound):
        store.get("planning/alpha")


def test_get_unknown_name_suggests_close_ones(store: RunStore, make_run) -> None:
    make_run("lr-sweep-001")
    make_run("lr-sweep-002")
    with pytest.raises(RunNotFound, match="did you mean.*planning/lr-sweep-00[12]"):
        store.get("lr-sweep-01")
    with pytest.raises(RunNotFound, match="no run '../etc': invalid domain '..'"):
        store.get("../etc")


def test_get_in_an_empty_store_says_so(store: RunStore) -> None:
    with pytest.raises(RunNotFound, match="has no runs"):
        store.get("anything")


def test_a_name_in_two_domains_needs_the_domain(store: RunStore) -> None:
    for domain in ("kg", "causal"):  # made by hand, bypassing create_run's check
        (store.root / domain / "twin").mkdir(parents=True)
    with pytest.raises(RunStoreError, match="several domains.*causal/twin, kg/twin"):
        store.get("twin")
    assert store.get("kg/twin").domain == "kg"


# ------------------------------------------------------------------- reading


def test_missing_and_corrupt_config_give_clear_errors(make_run) -> None:
    run = make_run("c")
    run.config_path.write_text('{"epochs": 3,')
    with pytest.raises(RunStoreError, match=r"config .*config.json is not valid JSON .*line 1"):
        run.config()
    run.config_path.write_text("[1, 2]")
    with pytest.raises(RunStoreError, match="should hold a JSON object"):
        run.config()
    run.config_path.unlink()
    with pytest.raises(RunStoreError, match="has no config.json"):
        run.config()


def test_run_config_reports_invalid_settings(make_run) -> None:
    run = make_run("c")
    run.config_path.write_text(json.dumps({"epochs": 0}))
    with pytest.raises(RunStoreError, match="EPOCHS"):
        run.run_config()


def test_history_prefers_a_fresh_saved_file_else_derives(make_run) -> None:
    run = make_run("h", events=training_events(epochs=2))
    assert run.history()["epochs"] == [1, 2]
    run.write_history({"epochs": [1, 2, 99], "train": {}, "val": {}})
    assert run.history()["epochs"] == [1, 2, 99]
    old = time.time() - 100
    os.utime(run.history_path, (old, old))  # older than the log: stale
    assert run.history()["epochs"] == [1, 2]
    run.history_path.write_text("{broken")
    assert run.history()["epochs"] == [1, 2]


def test_results_are_none_until_written(make_run) -> None:
    run = make_run("r")
    assert run.results() is None
    run.write_results({"test": {"acc": 0.91}})
    assert run.results() == {"test": {"acc": 0.91}}
    run.results_path.write_text("nope")
    with pytest.raises(RunStoreError, match="not valid JSON"):
        run.results()


def test_events_and_follower_of_a_run(make_run) -> None:
    run = make_run("e", events=training_events(epochs=2))
    assert [e["type"] for e in run.events()][:2] == ["run_started", "epoch_end"]
    assert [e["seq"] for e in run.events(from_seq=4)] == [4]
    follower = run.follower(from_seq=3)
    assert [e["seq"] for e in follower.poll()] == [3, 4]
    with run.event_writer() as w:
        assert w.next_seq == 5
        w.emit("log", level="info", message="more")
    assert [e["seq"] for e in follower.poll()] == [5]


def test_evaluation_path_and_disk_size(make_run) -> None:
    run = make_run("d")
    assert run.evaluation_path("best_model.pt") == run.path / "evaluation_best_model.json"
    assert run.evaluation_path(run.path / "checkpoint_epoch_10.pt").name == "evaluation_checkpoint_epoch_10.json"
    (run.path / "best_model.pt").write_bytes(b"x" * 1000)
    assert run.disk_size() == 1000 + run.config_path.stat().st_size


# ------------------------------------------------------------------- status


def _with_events(make_run, name, pairs):
    return make_run(name, events=pairs)


@pytest.mark.parametrize("terminal", ["finished", "interrupted", "failed"])
def test_status_from_the_terminal_event(make_run, terminal: str, dead_pid: int) -> None:
    run = _with_events(make_run, terminal, training_events(epochs=1) + [(terminal, {"reason": "x", "error": "boom"})])
    run.write_process_info(dead_pid, "process", ["nsm-tui", "train"])
    assert run.status() == terminal


def test_status_created_then_running_with_own_pid(make_run) -> None:
    run = make_run("live")
    assert run.status() == "created"
    info = run.write_process_info(os.getpid(), "process", ["python", "-m", "x"])
    assert info["host"] == socket.gethostname() and info["log"] == "train.log"
    assert run.process_info() == info
    assert run.status() == "running"
    kind, payload = started()
    with EventLogWriter(run.events_path) as w:
        w.emit(kind, **payload)
    assert run.status() == "running"


def test_status_stale_when_the_process_died(make_run, dead_pid: int) -> None:
    run = _with_events(make_run, "dead", training_events(epochs=2))
    run.write_process_info(dead_pid, "process", "nsm-tui train")
    run.touch_heartbeat()  # fresh, but on this host the pid decides
    assert not pid_alive(dead_pid)
    assert run.status() == "stale"


def test_status_stale_when_a_launched_process_died_before_any_event(make_run, dead_pid: int) -> None:
    run = make_run("early-death")
    run.write_process_info(dead_pid, "process", "nsm-tui train")
    assert run.status() == "stale"


def test_a_resumed_run_is_not_judged_by_its_old_terminal_event(make_run, dead_pid: int) -> None:
    pairs = training_events(epochs=1) + [("interrupted", {"reason": "user"}), ("resumed", {"epoch": 1, "step": 0})]
    run = _with_events(make_run, "again", pairs)
    run.write_process_info(os.getpid(), "process", "x")
    assert run.status() == "running"
    run.write_process_info(dead_pid, "process", "x")
    assert run.status() == "stale"


def test_status_of_a_run_on_another_host_follows_the_heartbeat(make_run) -> None:
    run = _with_events(make_run, "remote", training_events(epochs=1))
    run.process_path.write_text(json.dumps({"pid": 1, "host": "elsewhere-" + socket.gethostname(), "started": 0}))
    run.touch_heartbeat()
    assert run.status() == "running"
    old = time.time() - 61
    os.utime(run.heartbeat_path, (old, old))
    assert 60 < run.heartbeat_age() < 70
    assert run.status() == "stale"


def test_status_without_process_info_uses_the_heartbeat(make_run) -> None:
    run = _with_events(make_run, "mirror", training_events(epochs=1))
    assert run.status() == "stale"
    run.touch_heartbeat()
    assert run.status() == "running"


def test_corrupt_process_info_does_not_break_status(make_run) -> None:
    run = _with_events(make_run, "odd", training_events(epochs=1))
    run.process_path.write_text("{{{")
    assert run.process_info() is None
    assert run.status() == "stale"


def test_pid_alive_counts_a_permission_error_as_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    import nsm.runs.process as proc

    def denied(pid: int) -> None:
        raise psutil.AccessDenied(pid)

    monkeypatch.setattr(proc.psutil, "Process", denied)
    assert pid_alive(4242)
    assert not pid_alive(0) and not pid_alive(-5) and not pid_alive(True) and not pid_alive("12")


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="needs waitid")
def test_pid_alive_treats_a_zombie_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        assert not pid_alive(child.pid)
    finally:
        child.wait()


def test_pid_alive_rejects_a_reused_pid() -> None:
    assert pid_alive(os.getpid(), started=time.time())
    # This process started long after that run did: the pid was reused.
    assert not pid_alive(os.getpid(), started=time.time() - 10 * 86400)


def test_pid_alive_and_start_time_of_pids_that_cannot_exist() -> None:
    assert not pid_alive(2**62) and not pid_alive(10**5000)
    assert process_start_time(2**62) is None
    assert abs(process_start_time(os.getpid()) - time.time()) < 86400


# ------------------------------------------------------------------- deleting


def test_delete_refuses_a_running_run_unless_forced(store: RunStore, make_run) -> None:
    run = make_run("busy")
    run.write_process_info(os.getpid(), "process", "x")
    with pytest.raises(RunIsRunning, match=f"pid {os.getpid()}"):
        store.delete("busy")
    assert run.exists()
    store.delete("busy", force=True)
    assert not run.exists()
    assert not any(p.name.startswith(".deleting") for p in (store.root / "planning").iterdir())
    with pytest.raises(RunNotFound):
        store.get("busy")


def test_delete_a_finished_run(store: RunStore, finished_run: Run) -> None:
    assert store.delete(finished_run.ref) == finished_run.path
    assert store.list_runs() == []
