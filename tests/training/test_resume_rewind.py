"""Resuming from an earlier checkpoint: the future is moved aside and trained again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nsm.runs import RunStore
from nsm.runs.timeline import DISCARDED_DIR, discard_future, position_of
from nsm.training.checkpoint import load_checkpoint, save_checkpoint
from nsm.training.trainer import Trainer

from .helpers import metric_rows, tiny_config


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def _best_events(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "checkpoint" and e["file"] == "best_model.pt"]


def test_resume_from_an_earlier_checkpoint_after_discarding_the_future(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=4, save_every=1, seed=4), name="rewind")
    assert Trainer(run).run() == "finished"
    first = run.events()
    first_best = _best_events(first)[-1]["epoch"]
    assert first_best > 2, "with seed 4 the val loss falls every epoch: the best model is in the future"
    old_best = load_checkpoint(run.path / "best_model.pt")["model"]

    folder = discard_future(run, 2, 0)
    assert folder is not None and folder.parent == run.path / DISCARDED_DIR
    moved = {p.name for p in folder.iterdir()}
    assert {"checkpoint_epoch_3.pt", "checkpoint_epoch_4.pt", "best_model.pt", "evaluation_best_model.json",
            "training_history.json", "final_results.json", "info.json"} <= moved  # fmt: skip
    assert [c.file for c in run.checkpoints()] == ["checkpoint_epoch_1.pt", "checkpoint_epoch_2.pt"]

    outcome = Trainer(run, resume_from=run.path / "checkpoint_epoch_2.pt").run()
    assert outcome == "finished"
    log = run.events()
    assert [e["seq"] for e in log] == list(range(len(log)))
    after = log[len(first):]
    assert after[0]["type"] == "resumed" and after[0]["epoch"] == 2
    # best_model.pt was written again, from the checkpoint of the best epoch up to epoch 2.
    restored = load_checkpoint(run.path / "checkpoint_epoch_2.pt")["early_stop"]["best_epoch"]
    rewritten = [e for e in after[:4] if e["type"] == "checkpoint"]
    assert rewritten and rewritten[0]["file"] == "best_model.pt" and rewritten[0]["epoch"] == restored
    assert any(e["type"] == "log" and "best_model.pt rewritten" in e["message"] for e in after[:4])

    # Epochs 3-4 trained again, exactly as the first time (exact resume).
    history = json.loads((run.path / "training_history.json").read_text())
    assert history["epochs"] == [1, 2, 3, 4] and history["val"]["epochs"] == [1, 2, 3, 4]
    assert [e["epoch"] for e in after if e["type"] == "epoch_end"] == [3, 4]
    assert metric_rows(log) == metric_rows(first)
    finished = [e for e in log if e["type"] == "finished"]
    assert finished[-1]["test"] == finished[0]["test"]

    # best_model.pt is present and agrees with the log and the results.
    blob = load_checkpoint(run.path / "best_model.pt")
    best_epoch = finished[-1]["best_epoch"]
    assert blob["epoch"] == best_epoch == _best_events(log)[-1]["epoch"] == first_best
    assert position_of(run, run.path / "best_model.pt") == (best_epoch, 0)
    assert all(torch.equal(blob["model"][k], old_best[k]) for k in old_best)
    assert json.loads((run.path / "final_results.json").read_text())["best_epoch"] == best_epoch
    assert {c.file for c in run.checkpoints()} == {
        "best_model.pt", "checkpoint_epoch_1.pt", "checkpoint_epoch_2.pt", "checkpoint_epoch_3.pt", "checkpoint_epoch_4.pt"
    }  # fmt: skip
    assert run.state().epoch == 4 and run.state().best_epoch == best_epoch


def test_a_best_epoch_without_a_checkpoint_is_said_and_written_at_the_next_improvement(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=4, save_every=2, seed=4), name="no-source")
    assert Trainer(run).run() == "finished"
    # Make epoch 1 the best as of checkpoint_epoch_2.pt: the run has no checkpoint of epoch 1.
    path = run.path / "checkpoint_epoch_2.pt"
    blob = load_checkpoint(path)
    blob["early_stop"] = {**blob["early_stop"], "best_epoch": 1}
    save_checkpoint(path, {k: v for k, v in blob.items() if k not in ("format", "version")})
    discard_future(run, 2, 0)
    assert not (run.path / "best_model.pt").exists()

    events: list[dict] = []
    assert Trainer(run, resume_from=path, sinks=[events.append]).run() == "finished"
    notes = [e["message"] for e in events if e["type"] == "log" and e["level"] == "warning"]
    assert any("best epoch so far is 1" in m and "next improvement" in m for m in notes), notes
    finished = events[-1]
    assert finished["type"] == "finished"
    # Epochs 3 and 4 improve on epoch 2's val loss (seed 4), and best_model.pt is written again.
    assert load_checkpoint(run.path / "best_model.pt")["epoch"] == finished["best_epoch"] == 4
