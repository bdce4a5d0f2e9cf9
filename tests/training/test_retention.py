"""KEEP_LAST: best + the newest N periodic checkpoints stay; every list and request agrees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsm.execution.render import render
from nsm.execution.rules import plan_resume
from nsm.runs import RunStore
from nsm.runs.errors import RunStoreError
from nsm.runs.retention import checkpoints_to_remove
from nsm.training.checkpoint import CheckpointError
from nsm.training.evaluation import evaluate_checkpoint
from nsm.training.trainer import Trainer

from .helpers import tiny_config


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def test_the_rule_keeps_best_the_newest_n_and_protected_files(tmp_path: Path) -> None:
    _touch(tmp_path, "best_model.pt", "checkpoint_epoch_2.pt", "checkpoint_epoch_10.pt", "checkpoint_epoch_4.pt",
           "checkpoint_epoch_6.pt", "checkpoint_epoch_3_step_5.pt", "checkpoint_epoch_6_step_1.pt", "checkpoint_epoch_10_step_2.pt",
           "notes.pt")  # fmt: skip
    _touch(tmp_path / "discarded" / "x", "checkpoint_epoch_1.pt")
    assert checkpoints_to_remove(tmp_path, 0) == []
    # Numeric order (10 is the newest); mid-epoch files from before epoch 10 are superseded, the one after it stays.
    older = ["checkpoint_epoch_2.pt", "checkpoint_epoch_3_step_5.pt", "checkpoint_epoch_4.pt", "checkpoint_epoch_6_step_1.pt"]
    assert checkpoints_to_remove(tmp_path, 2) == older
    assert checkpoints_to_remove(tmp_path, 2, protect=["checkpoint_epoch_4.pt"]) == [n for n in older if n != "checkpoint_epoch_4.pt"]
    assert checkpoints_to_remove(tmp_path, 10) == ["checkpoint_epoch_3_step_5.pt", "checkpoint_epoch_6_step_1.pt"]


def test_keep_last_2_keeps_best_and_the_two_newest_and_says_why_the_others_are_gone(tmp_path: Path, capsys) -> None:
    from tui.cli import main

    store = RunStore(tmp_path / "runs")
    run = store.create_run(tiny_config(epochs=4, save_every=1, keep_last=2, tensorboard=False), name="keep")
    holder: dict[str, Trainer] = {}
    holder["t"] = Trainer(run, on_step=lambda e, s: holder["t"].request_stop("test") if (e, s) == (3, 2) else None)
    assert holder["t"].run() == "interrupted"
    interrupt = run.latest_checkpoint()
    assert interrupt.file == "checkpoint_epoch_2_step_3.pt"
    assert {c.file for c in run.checkpoints()} == {"best_model.pt", "checkpoint_epoch_1.pt", "checkpoint_epoch_2.pt", interrupt.file}

    assert Trainer(run, resume_from=interrupt.path).run() == "finished"
    # The checkpoint this attempt resumed from stays while the attempt runs; older periodic ones go.
    kept = {"best_model.pt", "checkpoint_epoch_3.pt", "checkpoint_epoch_4.pt", interrupt.file}
    assert {p.name for p in run.path.glob("*.pt")} == kept
    assert {c.file for c in run.checkpoints()} == kept
    assert main(["--runs-dir", str(store.root), "runs", "show", run.name, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {c["file"] for c in shown["checkpoints"]} == kept

    removed = [e for e in run.events() if e["type"] == "checkpoint_removed"]
    assert [e["file"] for e in removed] == ["checkpoint_epoch_1.pt", "checkpoint_epoch_2.pt"]
    assert all(e["reason"] == "keep_last" and e["keep_last"] == 2 for e in removed)
    assert "removed checkpoint_epoch_1.pt" in render(removed[0])[0].text

    with pytest.raises(CheckpointError, match=r"checkpoint_epoch_2\.pt was removed by KEEP_LAST=2 after epoch 4"):
        evaluate_checkpoint(run, "checkpoint_epoch_2.pt")
    with pytest.raises(RunStoreError, match=r"checkpoint_epoch_1\.pt was removed by KEEP_LAST=2 after epoch 3.*checkpoint_epoch_4\.pt"):
        plan_resume(run, "checkpoint_epoch_1.pt")
    assert main(["--runs-dir", str(store.root), "eval", run.name, "--checkpoint", "checkpoint_epoch_1.pt"]) != 0
    assert "was removed by KEEP_LAST=2" in capsys.readouterr().err
