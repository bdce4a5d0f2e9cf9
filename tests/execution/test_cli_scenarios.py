"""The headless CLI on real detached runs: two resumes at once, following from another terminal."""

from __future__ import annotations

import json
import os
import re
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


def unstamped(line: str) -> str:
    """A progress line without its "+1m05s " clock stamp."""
    return re.sub(r"^\+\S+ ", "", line)


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
    lines = [unstamped(line) for line in out.splitlines()]
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
    first = [unstamped(viewer.stdout.readline()) for _ in range(2)]  # the clock's note, then the history
    assert first[1].startswith("run started: left-alone"), first  # following: its history is shown
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


PLANTED = ("logging.py", "json.py", "signal.py", "nsm.py", "remote.py")


def plant(folder: Path, marker: Path) -> None:
    for module in PLANTED:
        (folder / module).write_text(f"open({str(marker)!r}, 'a').write({module!r})\n")


def test_no_launch_path_runs_a_module_planted_in_a_run_sweep_or_working_folder(tmp_path: Path) -> None:
    """The trainer (`resume --detach` from a planted working folder), a sweep's runner and a
    Modal mirror all start through one launcher: none imports what a folder holds."""
    from nsm.sweeps.launch import launch_detached_sweep
    from remote.mirror import start_mirror_process
    from sweeps.helpers import grid_sweep

    runs, marker = tmp_path / "runs", tmp_path / "planted-code-ran"
    store = RunStore(runs)
    run = store.create_run(tiny_config(epochs=1), name="planted-resume")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for folder in (run.path, cwd):
        plant(folder, marker)
    nsm_tui = Path(sys.executable).with_name("nsm-tui")
    env = dict(os.environ, NSM_RUNS_DIR=str(runs))
    started = subprocess.run([str(nsm_tui), "train", "--domain", "planning", "--epochs", "1", "--num-graphs", "60",
                              "--batch-size", "8", "--name", "planted-train", "--detach"],
                             cwd=cwd, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert started.returncode == 0, started.stderr
    trained = store.get("planted-train")
    plant(trained.path, marker)
    wait_for_event(trained, lambda e: e["type"] in ("finished", "failed"))

    sweep = grid_sweep(store, ["lr=1e-3"], name="planted-sweep", epochs=1)
    plant(sweep.path, marker)
    runner = launch_detached_sweep(sweep)
    wait_for_exit(runner, timeout=180)

    (run.path / "remote.json").write_text(json.dumps({"launch_id": "x", "partition": "p", "gpu": "T4"}))
    mirror = start_mirror_process(run)  # no Modal here: it exits at once, after its imports
    assert mirror is not None
    wait_for_exit(mirror, timeout=120)
    assert not marker.exists(), marker.read_text()
    assert trained.state().status == "finished"
