"""The sweep folder: points as ordinary runs, the atomic sweep file, the runner claim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nsm import atomic
from nsm.runs import RunStore
from nsm.sweeps import (
    PENDING,
    RUNNING,
    Sweep,
    SweepBusy,
    SweepError,
    SweepExists,
    SweepNotFound,
    create_sweep,
    get_sweep,
    list_sweeps,
    snapshot,
)

from .helpers import grid_sweep, tiny


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_each_point_is_an_ordinary_run_named_after_the_sweep(store: RunStore) -> None:
    sweep = grid_sweep(store, name="lrcw")
    data = json.loads(sweep.file.read_text())
    assert data["format"] == "nsm-sweep" and data["knobs"] == ["lr", "cycle_weight"]
    assert [p["run"] for p in data["points"]] == [f"planning/lrcw-0{i}" for i in range(1, 5)]
    assert [p["values"] for p in data["points"]] == [
        {"lr": 1e-3, "cycle_weight": 0.01}, {"lr": 1e-3, "cycle_weight": 0.1},
        {"lr": 3e-3, "cycle_weight": 0.01}, {"lr": 3e-3, "cycle_weight": 0.1},
    ]  # fmt: skip
    assert {p["state"] for p in data["points"]} == {PENDING}
    # The store lists the points (and nothing from the sweep folder), with their configs.
    listed = {s.ref: s for s in store.list_runs()}
    assert set(listed) == {f"planning/lrcw-0{i}" for i in range(1, 5)}
    assert listed["planning/lrcw-02"].config["cycle_weight"] == 0.1
    assert all(s.problem is None and s.status == "created" for s in listed.values())
    assert store.get("lrcw-03").run_config().lr == 3e-3


def test_a_queue_over_domains_names_its_runs_by_domain(store: RunStore) -> None:
    sweep = create_sweep(store, [tiny(domain=d) for d in ("causal", "planning", "kg")], name="all", label="all domains")
    assert [p.run for p in sweep.load().points] == ["causal/all-01-causal", "planning/all-02-planning", "kg/all-03-kg"]
    assert sweep.load().knobs == ["domain"]
    assert [s.name for s in list_sweeps(store)] == ["all"]


@pytest.mark.parametrize(
    "name, expected",
    [("../x", "path separator"), (".hidden", "starts with '.'"), ("x" * 60, "at most 48"), ("a b", "contains ' '")],
)
def test_a_bad_sweep_name_is_refused(store: RunStore, name: str, expected: str) -> None:
    with pytest.raises(SweepError, match=None) as info:
        create_sweep(store, [tiny()], name=name)
    assert expected in str(info.value)
    assert store.list_runs() == []


def test_names_already_taken_leave_nothing_behind(store: RunStore) -> None:
    grid_sweep(store, name="taken")
    with pytest.raises(SweepExists, match="a sweep named 'taken' already exists"):
        grid_sweep(store, name="taken")
    store.create_run(tiny(), name="clash-02")
    with pytest.raises(SweepExists, match="planning/clash-02"):
        grid_sweep(store, name="clash")
    assert not (store.root / ".sweeps" / "clash").exists()
    assert sorted(r.name for r in store.list_runs() if r.name.startswith("clash")) == ["clash-02"]


def test_a_failed_rewrite_leaves_the_sweep_file_whole(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = grid_sweep(store)
    before = sweep.file.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError):
        sweep.update_point(0, state=RUNNING)
    monkeypatch.undo()
    assert sweep.file.read_bytes() == before
    assert [p.name for p in sweep.path.iterdir() if p.name.endswith(".tmp")] == []  # no temp file left
    assert sweep.update_point(0, state=RUNNING).state == RUNNING
    assert sweep.load().points[0].state == RUNNING


def test_a_damaged_sweep_file_is_reported_not_raised_raw(store: RunStore) -> None:
    sweep = grid_sweep(store, name="damaged")
    sweep.file.write_text('{"format": "nsm-sweep", "points": [')
    with pytest.raises(SweepError, match=r"sweep\.json is not valid JSON"):
        snapshot(sweep)
    assert [s.name for s in list_sweeps(store)] == ["damaged"]  # still listed, so it can be looked at


def test_finding_a_sweep_by_name(store: RunStore) -> None:
    with pytest.raises(SweepNotFound, match="has no sweeps"):
        get_sweep(store, "nope")
    grid_sweep(store, name="lr-sweep")
    assert get_sweep(store, "lr-sweep").name == "lr-sweep"
    with pytest.raises(SweepNotFound, match="did you mean lr-sweep"):
        get_sweep(store, "lr-swep")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_one_runner_at_a_time(store: RunStore) -> None:
    sweep = grid_sweep(store)
    token = sweep.acquire_runner(mode="attached")
    assert sweep.runner_alive() and sweep.runner_info()["pid"] == os.getpid()
    with pytest.raises(SweepBusy, match=f"already running \\(pid {os.getpid()}"):
        sweep.acquire_runner(mode="attached")
    sweep.release_runner(token)
    assert sweep.runner_info() is None and not sweep.runner_alive()
    sweep.release_runner(sweep.acquire_runner(mode="attached"))


def test_a_dead_runners_claim_is_taken_over(store: RunStore) -> None:
    sweep = grid_sweep(store)
    sweep.runner_path.write_text(json.dumps({"pid": _dead_pid(), "host": os.uname().nodename, "started": 0, "token": "old"}))
    assert not sweep.runner_alive()
    token = sweep.acquire_runner(mode="attached")
    assert sweep.runner_info()["token"] == token != "old"


def test_a_launch_claim_is_taken_over_only_with_its_token(store: RunStore) -> None:
    sweep = grid_sweep(store)
    token = sweep.claim_for_launch()
    with pytest.raises(SweepBusy):
        sweep.acquire_runner(mode="detached")
    assert sweep.acquire_runner(mode="detached", token=token) == token
    assert sweep.runner_info()["mode"] == "detached"
    sweep.release_runner("someone-else")
    assert sweep.runner_info() is not None  # only the holder's token releases it
    sweep.release_runner(token)
    assert sweep.runner_info() is None


def test_a_half_written_claim_counts_only_while_fresh(store: RunStore) -> None:
    sweep = Sweep(grid_sweep(store).path)
    sweep.runner_path.write_text('{"pid": 12')
    assert sweep.runner_alive()
    old = sweep.runner_path.stat().st_mtime - 60
    os.utime(sweep.runner_path, (old, old))
    assert not sweep.runner_alive()
