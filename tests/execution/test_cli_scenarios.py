"""The headless CLI on real detached runs: two resumes at once, following from another terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nsm.execution import LocalProcessBackend
from nsm.runs import RunStore
from training.helpers import ROOT, tiny_config, wait_for_event, wait_for_exit


def cli(runs: Path, *args: str, timeout: float = 300) -> subprocess.Popen[str]:
    env = dict(os.environ, NSM_RUNS_DIR=str(runs))
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_concurrent_resumes_of_one_run_one_is_refused_and_the_log_stays_one_sequence(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = RunStore(runs).create_run(tiny_config(epochs=400, batch_size=1), name="twice")
    first = LocalProcessBackend().start(run)
    wait_for_event(run, lambda e: e["type"] == "progress")
    stop = cli(runs, "stop", "twice", "--wait", "120")
    assert stop.wait(180) == 0, stop.stderr.read()
    wait_for_exit(first.pid)
    a, b = cli(runs, "resume", "twice", "--detach"), cli(runs, "resume", "twice", "--detach")
    results = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in (a, b)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refusal = next(err for code, _, err in results if code == 2)
    assert "already being trained by pid" in refusal and refusal.count("\n") == 1
    resumed = wait_for_event(run, lambda e: e["type"] == "resumed")
    wait_for_event(run, lambda e: e["type"] == "progress" and e["seq"] > resumed["seq"])
    assert cli(runs, "stop", "twice", "--wait", "120").wait(180) == 0
    log = [json.loads(line) for line in run.events_path.read_text().splitlines()]
    assert [e["seq"] for e in log] == list(range(len(log)))
    assert [e["type"] for e in log].count("resumed") == 1
    assert run.status() == "interrupted"


def test_attach_headless_follows_a_local_run_to_its_end_and_ctrl_c_leaves_it_alone(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = RunStore(runs).create_run(tiny_config(epochs=6), name="watched")
    LocalProcessBackend().start(run)
    follower = cli(runs, "attach", "watched", "--headless")
    out, err = follower.communicate(timeout=240)
    assert follower.returncode == 0, err
    lines = out.splitlines()
    assert any(line.startswith("run started: watched") for line in lines), out
    assert sum(line.startswith("epoch ") and ": loss" in line for line in lines) == 6
    assert sum(": val loss" in line for line in lines) == 6
    assert any("finished (completed) after 6 epochs" in line for line in lines)
    assert run.status() == "finished"

    # A run still training: ctrl+c ends the follower, not the run.
    again = RunStore(runs).create_run(tiny_config(epochs=400, batch_size=1), name="left-alone")
    LocalProcessBackend().start(again)
    wait_for_event(again, lambda e: e["type"] == "progress")
    viewer = cli(runs, "attach", "left-alone", "--headless")
    assert viewer.stdout.readline().startswith("run started: left-alone")  # following: its history is shown
    viewer.send_signal(2)
    out, err = viewer.communicate(timeout=60)
    assert viewer.returncode == 0 and "it goes on" in out, (out, err)
    assert again.status() == "running"
    assert cli(runs, "stop", "left-alone", "--wait", "120").wait(180) == 0


def test_a_module_planted_in_the_run_folder_never_runs_in_the_detached_trainer(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = RunStore(runs).create_run(tiny_config(epochs=2), name="planted")
    marker = tmp_path / "planted-code-ran"
    for module in ("logging.py", "json.py", "nsm.py"):
        (run.path / module).write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    execution = LocalProcessBackend().start(run)
    end = wait_for_event(run, lambda e: e["type"] in ("finished", "failed", "interrupted"))
    wait_for_exit(execution.pid)
    assert end["type"] == "finished", run.log_path.read_text()
    assert not marker.exists()
