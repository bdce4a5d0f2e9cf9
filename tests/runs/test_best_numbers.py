"""Numbers that agree: beside "best val loss L @ epoch E" the accuracy is epoch E's,
and `runs list`'s best val acc is the val_acc stored with best_model.pt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsm.config import RunConfig
from nsm.runs import RunStore, latest_state, make_event
from tests.sweeps.helpers import log_events
from tui.cli import main

from .helpers import epoch_end, started, val


def _best_save(epoch: int, val_acc: float | None) -> tuple[str, dict]:
    metrics = {} if val_acc is None else {"val_loss": 0.0, "val_acc": val_acc}
    return "checkpoint", {"epoch": epoch, "step": 0, "file": "best_model.pt", "kind": "best", "size": 10, "metrics": metrics}


# Epoch 2 has the lowest val loss; epoch 3 the highest val accuracy (0.95).
PAIRS = [
    started(epochs=3),
    epoch_end(1), val(1, 0.9, 0.60, best_epoch=1, best_loss=0.9), _best_save(1, 0.60),
    epoch_end(2), val(2, 0.3, 0.80, best_epoch=2, best_loss=0.3), _best_save(2, 0.80),
    epoch_end(3), val(3, 0.4, 0.95, best_epoch=2, best_loss=0.3),
]  # fmt: skip


def _events(pairs):
    return [make_event(i, kind, t=1000.0 + i, **payload) for i, (kind, payload) in enumerate(pairs)]


def test_best_val_acc_is_the_best_loss_epochs_accuracy_not_the_highest() -> None:
    s = latest_state(_events(PAIRS))
    assert (s.best_epoch, s.best_val_loss) == (2, 0.3)
    assert s.best_val_acc == 0.80  # epoch 2's, though epoch 3 reached 0.95


def test_best_val_acc_is_what_best_model_pt_was_saved_with() -> None:
    # The checkpoint's own metrics win over the eval's accuracy where both exist.
    pairs = [p if p[0] != "checkpoint" or p[1]["epoch"] != 2 else _best_save(2, 0.81) for p in PAIRS]
    assert latest_state(_events(pairs)).best_val_acc == 0.81
    # A save without metrics (an older engine): the eval of that epoch.
    pairs = [p if p[0] != "checkpoint" else _best_save(p[1]["epoch"], None) for p in PAIRS]
    assert latest_state(_events(pairs)).best_val_acc == 0.80


def test_a_rewind_forgets_the_best_saved_after_it() -> None:
    resumed = ("resumed", {"checkpoint": "checkpoint_epoch_1.pt", "epoch": 1, "step": 0, "config": {"epochs": 3}})
    s = latest_state(_events([*PAIRS, resumed, _best_save(1, 0.60)]))
    assert (s.best_epoch, s.best_val_acc) == (1, 0.60)


def test_runs_list_best_val_acc_is_best_model_pts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore(tmp_path / "runs")
    run = store.create_run(RunConfig(domain="planning", epochs=3), name="agree")
    log_events(run, PAIRS)
    assert store.get("agree").summary().best_val_acc == 0.80
    assert main(["--runs-dir", str(store.root), "runs", "list", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["best_epoch"], row["best_val_loss"], row["best_val_acc"]) == (2, 0.3, 0.80)
    assert main(["--runs-dir", str(store.root), "runs", "show", "agree"]) == 0
    shown = capsys.readouterr().out
    assert "best val acc" in shown and "0.8" in shown and "0.95" not in shown
