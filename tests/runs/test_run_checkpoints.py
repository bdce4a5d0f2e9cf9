from __future__ import annotations

import os
import shutil

import pytest

from nsm.runs import checkpoint_file_name, parse_checkpoint_name


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("best_model.pt", ("best", None, 0)),
        ("checkpoint_epoch_10.pt", ("periodic", 10, 0)),
        ("checkpoint_epoch_7_step_13.pt", ("interrupt", 7, 13)),
        ("checkpoint_epoch_.pt", None),
        ("checkpoint_epoch_10.pt.tmp", None),
        (".best_model.pt.abc.tmp", None),
        ("model.pt", None),
    ],
)
def test_checkpoint_names(name: str, parsed) -> None:
    assert parse_checkpoint_name(name) == parsed


def test_file_names_round_trip() -> None:
    assert checkpoint_file_name(10) == "checkpoint_epoch_10.pt"
    assert checkpoint_file_name(7, 13) == "checkpoint_epoch_7_step_13.pt"
    assert parse_checkpoint_name(checkpoint_file_name(7, 13))[1:] == (7, 13)


def _touch(run, name: str, size: int = 10) -> None:
    (run.path / name).write_bytes(b"\0" * size)


def test_checkpoints_without_events_come_from_names(make_run) -> None:
    run = make_run("plain")
    names = ("checkpoint_epoch_10.pt", "checkpoint_epoch_20.pt", "best_model.pt", "checkpoint_epoch_20_step_5.pt", "x.txt")
    for name in names:
        _touch(run, name)
    (run.path / "checkpoint_epoch_30.pt").mkdir()  # not a file
    cps = run.checkpoints()
    assert [c.file for c in cps] == [
        "best_model.pt", "checkpoint_epoch_10.pt", "checkpoint_epoch_20.pt", "checkpoint_epoch_20_step_5.pt",
    ]  # fmt: skip
    assert [c.kind for c in cps] == ["best", "periodic", "periodic", "interrupt"]
    assert cps[0].epoch is None and cps[0].metrics == {}
    assert all(c.size == 10 and c.mtime > 0 and c.path == run.path / c.file for c in cps)
    assert run.latest_checkpoint().file == "checkpoint_epoch_20_step_5.pt"


def test_checkpoint_metrics_and_kinds_come_from_events(make_run) -> None:
    def saved(epoch: int, file: str, kind: str, **metrics: float):
        return "checkpoint", {"epoch": epoch, "step": 0, "file": file, "kind": kind, "size": 10, "metrics": metrics}

    events = [
        saved(5, "best_model.pt", "best", loss=0.6, acc=0.7),
        saved(10, "checkpoint_epoch_10.pt", "periodic"),
        saved(12, "best_model.pt", "best", loss=0.4, acc=0.8),  # overwrote the file
        saved(13, "checkpoint_epoch_13.pt", "interrupt"),  # an interrupt at an epoch boundary
    ]
    run = make_run("described", events=events)
    for name in ("best_model.pt", "checkpoint_epoch_10.pt", "checkpoint_epoch_13.pt"):
        _touch(run, name)
    by_file = {c.file: c for c in run.checkpoints()}
    best = by_file["best_model.pt"]
    assert (best.epoch, best.kind, best.metrics) == (12, "best", {"loss": 0.4, "acc": 0.8})
    assert by_file["checkpoint_epoch_13.pt"].kind == "interrupt"
    assert run.latest_checkpoint().file == "checkpoint_epoch_13.pt"


def test_latest_checkpoint_falls_back_to_best_and_to_none(make_run) -> None:
    run = make_run("only-best")
    assert run.checkpoints() == [] and run.latest_checkpoint() is None
    _touch(run, "best_model.pt")
    assert run.latest_checkpoint().file == "best_model.pt"


def test_latest_checkpoint_orders_by_epoch_then_step(make_run) -> None:
    run = make_run("order")
    for name in ("checkpoint_epoch_9.pt", "checkpoint_epoch_10.pt", "checkpoint_epoch_10_step_3.pt"):
        _touch(run, name)
    _touch(run, "checkpoint_epoch_2_step_99.pt")
    os.utime(run.path / "checkpoint_epoch_9.pt")  # newest mtime must not win
    assert run.latest_checkpoint().file == "checkpoint_epoch_10_step_3.pt"


def test_checkpoints_of_a_deleted_run_are_empty(make_run) -> None:
    run = make_run("gone")
    _touch(run, "best_model.pt")
    shutil.rmtree(run.path)
    assert run.checkpoints() == []
