"""Resuming from an earlier checkpoint: the discarded future is moved aside."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from nsm.runs import Run, RunStore
from nsm.runs.timeline import DISCARDED_DIR, INFO_FILE, discard_future, future_of, position_of

from .helpers import epoch_end, started, val

NOW = dt.datetime(2026, 12, 1, 22, 45, 1, tzinfo=dt.timezone.utc)


def _checkpoint(epoch: int, file: str, kind: str, step: int = 0) -> tuple[str, dict]:
    return "checkpoint", {"epoch": epoch, "step": step, "file": file, "kind": kind, "size": 10, "metrics": {}}


def _ten_epochs(best_at: int = 8) -> list[tuple[str, dict]]:
    """run_started, 10 epochs with periodic checkpoints every 2, best_model.pt
    written at each improvement up to `best_at`, then an interrupt at (10, 3) and finished."""
    out = [started(epochs=12)]
    for e in range(1, 11):
        loss = 1.0 / e if e <= best_at else 1.0 / best_at + 0.01 * e
        out.append(epoch_end(e))
        best = min(e, best_at)
        out.append(val(e, loss, 0.5, best, 1.0 / best))
        if e <= best_at:
            out.append(_checkpoint(e, "best_model.pt", "best"))
        if e % 2 == 0:
            out.append(_checkpoint(e, f"checkpoint_epoch_{e}.pt", "periodic"))
    out.append(_checkpoint(10, "checkpoint_epoch_10_step_3.pt", "interrupt", step=3))
    out.append(("finished", {"reason": "completed", "epochs_done": 10, "test": {"acc": 0.9, "loss": 0.3}}))
    return out


FILES = (
    "best_model.pt", "checkpoint_epoch_2.pt", "checkpoint_epoch_4.pt", "checkpoint_epoch_6.pt",
    "checkpoint_epoch_8.pt", "checkpoint_epoch_10.pt", "checkpoint_epoch_10_step_3.pt",
    "checkpoint_epoch_4_step_2.pt", "training_history.json", "final_results.json",
    "evaluation_best_model.json", "evaluation_checkpoint_epoch_4.json", "evaluation_checkpoint_epoch_6.json",
    "train.log", "process.json",
)  # fmt: skip


def _run(make_run, best_at: int = 8, name: str = "rewind") -> Run:
    run = make_run(name, events=_ten_epochs(best_at))
    for name in FILES:
        (run.path / name).write_bytes(b"{}" if name.endswith(".json") else b"\0" * 10)
    return run


def _names(paths: list[Path]) -> set[str]:
    return {p.name for p in paths}


def test_the_future_of_an_epoch_boundary(make_run) -> None:
    run = _run(make_run, best_at=8)
    future = future_of(run, 4, 0)
    assert all(p.parent == run.path for p in future)
    assert _names(future) == {
        "checkpoint_epoch_4_step_2.pt", "checkpoint_epoch_6.pt", "checkpoint_epoch_8.pt", "checkpoint_epoch_10.pt",
        "checkpoint_epoch_10_step_3.pt", "best_model.pt", "evaluation_best_model.json",
        "evaluation_checkpoint_epoch_6.json", "training_history.json", "final_results.json",
    }  # fmt: skip
    # The checkpoint resumed from, its evaluation and what is not a result stay.
    assert not _names(future) & {"checkpoint_epoch_4.pt", "evaluation_checkpoint_epoch_4.json", "train.log", "config.json"}


def test_a_best_model_from_before_the_checkpoint_stays(make_run) -> None:
    run = _run(make_run, best_at=3)
    future = _names(future_of(run, 4, 0))
    assert "best_model.pt" not in future and "evaluation_best_model.json" not in future
    assert "checkpoint_epoch_4_step_2.pt" in future
    # Mid-epoch: the interrupt checkpoint at (4, 2) is the position itself.
    assert "checkpoint_epoch_4_step_2.pt" not in _names(future_of(run, 4, 2))
    # The best model of epoch 4 is not of the future of (4, 2) either.
    assert "best_model.pt" not in _names(future_of(_run(make_run, best_at=4, name="other"), 4, 2))


def test_a_best_model_the_log_does_not_describe_stays(make_run) -> None:
    run = make_run("nolog", events=[started(), epoch_end(1)])
    (run.path / "best_model.pt").write_bytes(b"x")
    (run.path / "checkpoint_epoch_3.pt").write_bytes(b"x")
    assert _names(future_of(run, 1, 0)) == {"checkpoint_epoch_3.pt"}


def test_discard_future_moves_the_files_aside(make_run) -> None:
    run = _run(make_run, best_at=8)
    planned = _names(future_of(run, 4, 0))
    folder = discard_future(run, 4, 0, now=NOW)
    assert folder == run.path / DISCARDED_DIR / "20261201-224501-from-epoch-4"
    assert {p.name for p in folder.iterdir()} == planned | {INFO_FILE}
    assert not planned & {p.name for p in run.path.iterdir()}
    info = json.loads((folder / INFO_FILE).read_text())
    assert info["resumed_from"] == "checkpoint_epoch_4.pt" and (info["epoch"], info["step"]) == (4, 0)
    assert info["discarded_at"] == "2026-12-01T22:45:01Z" and set(info["files"]) == planned
    # What is left is the run up to its checkpoint.
    assert [c.file for c in run.checkpoints()] == ["checkpoint_epoch_2.pt", "checkpoint_epoch_4.pt"]
    assert run.results() is None
    # Nothing more to move: no second folder.
    assert discard_future(run, 4, 0, now=NOW) is None
    assert len(list((run.path / DISCARDED_DIR).iterdir())) == 1


def test_two_discards_in_the_same_second_get_two_folders(make_run) -> None:
    run = _run(make_run)
    first = discard_future(run, 8, 0, now=NOW.timestamp(), checkpoint="checkpoint_epoch_8.pt")
    (run.path / "final_results.json").write_text("{}")
    second = discard_future(run, 6, 0, now=NOW.timestamp())
    assert first is not None and second is not None and first != second
    assert second.name == "20261201-224501-from-epoch-6"
    assert "checkpoint_epoch_8.pt" in {p.name for p in second.iterdir()}


def test_a_mid_epoch_position_names_its_step(make_run) -> None:
    run = _run(make_run)
    folder = discard_future(run, 4, 2, now=NOW, checkpoint="checkpoint_epoch_4_step_2.pt")
    assert folder is not None and folder.name == "20261201-224501-from-epoch-4-step-2"
    assert json.loads((folder / INFO_FILE).read_text())["resumed_from"] == "checkpoint_epoch_4_step_2.pt"


def test_nothing_to_discard(make_run) -> None:
    run = make_run("fresh", events=[started(), epoch_end(1)])
    (run.path / "checkpoint_epoch_1.pt").write_bytes(b"x")
    assert future_of(run, 1, 0) == []
    assert discard_future(run, 1, 0) is None
    assert not (run.path / DISCARDED_DIR).exists()


def test_the_discarded_folder_is_neither_a_checkpoint_nor_a_run(store: RunStore, make_run) -> None:
    run = _run(make_run)
    size = run.disk_size()
    folder = discard_future(run, 2, 0, now=NOW)
    assert folder is not None
    assert [c.file for c in run.checkpoints()] == ["checkpoint_epoch_2.pt"]
    # The files moved, so the run's size only grows by the small info.json.
    assert size <= run.disk_size() <= size + (folder / INFO_FILE).stat().st_size
    assert [s.name for s in store.list_runs()] == ["rewind"]
    assert store.get("rewind") == run


def test_position_of_checkpoints(make_run) -> None:
    run = _run(make_run, best_at=8)
    assert position_of(run, run.path / "checkpoint_epoch_6.pt") == (6, 0)
    assert position_of(run, "checkpoint_epoch_10_step_3.pt") == (10, 3)
    assert position_of(run, run.path / "best_model.pt") == (8, 0)  # from the last checkpoint event
    assert position_of(run.path, "best_model.pt") == (8, 0)  # a run directory works too
    assert position_of(run, "final_results.json") is None
    bare = make_run("bare", events=[started()])
    assert position_of(bare, "best_model.pt") is None
