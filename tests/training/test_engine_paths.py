"""The device step (data on the device, sums read back only at progress and epoch ends)
trains exactly as the reference step (host batches, numbers read back every step)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nsm.runs import RunStore
from nsm.training.checkpoint import load_checkpoint
from nsm.training.trainer import Trainer

from .helpers import metric_rows, tiny_config

FAST = dict(epochs=2, tensorboard=False, save_every=1)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def train(store: RunStore, name: str, step_path: str, on_step=None, **overrides):  # type: ignore[no-untyped-def]
    run = store.create_run(tiny_config(**{**FAST, **overrides}), name=name)
    events: list[dict] = []
    trainer = Trainer(run, sinks=[events.append], step_path=step_path, on_step=on_step)
    return run, trainer, trainer.run(), events


def final_test(events: list[dict]) -> dict:
    return [e for e in events if e["type"] == "finished"][-1]["test"]


@pytest.mark.parametrize("domain", ["planning", "causal", "kg"])
def test_the_device_step_gives_the_reference_metrics_exactly(store: RunStore, domain: str) -> None:
    *_, ref_outcome, ref = train(store, f"ref-{domain}", "reference", domain=domain)
    *_, outcome, new = train(store, f"new-{domain}", "device", domain=domain)
    assert ref_outcome == outcome == "finished"
    train_ref, val_ref = metric_rows(ref)
    train_new, val_new = metric_rows(new)
    assert len(train_ref) == 2 and len(val_ref) == 2
    assert train_new == train_ref  # every float with ==: not close, identical
    assert val_new == val_ref
    assert final_test(new) == final_test(ref)


def test_a_mid_epoch_interrupt_of_either_path_resumes_to_the_reference_result(store: RunStore) -> None:
    *_, _, reference = train(store, "reference", "reference")
    for first_path in ("reference", "device"):
        holder: dict[str, Trainer] = {}

        def stop_mid_epoch(epoch: int, step: int) -> None:
            if (epoch, step) == (2, 2):
                holder["t"].request_stop("test")

        run = store.create_run(tiny_config(**FAST), name=f"cut-{first_path}")
        holder["t"] = Trainer(run, on_step=stop_mid_epoch, step_path=first_path)
        assert holder["t"].run() == "interrupted"
        ckpt = run.path / "checkpoint_epoch_1_step_3.pt"
        partial = load_checkpoint(ckpt)["partial"]
        # The saved sums are plain numbers of the same shape whichever path wrote them.
        assert partial["steps"] == 3 and partial["graphs"] == 24 and isinstance(partial["loss"], float)
        assert Trainer(run, resume_from=ckpt).run() == "finished"  # resumed on the device path
        log = run.events()
        assert metric_rows(log) == metric_rows(reference), first_path
        assert final_test(log) == final_test(reference)


def poison_at(target: tuple[int, int]):  # type: ignore[no-untyped-def]
    """An on_step hook that makes the model's output NaN from step `target` on."""
    holder: dict[str, Trainer] = {}

    def hook(epoch: int, step: int) -> None:
        if (epoch, step) == target:
            with torch.no_grad():
                holder["t"].model.head[-1].bias.fill_(math.nan)

    return holder, hook


@pytest.mark.parametrize("step_path", ["reference", "device"])
def test_a_diverged_loss_fails_the_run_naming_its_first_step(store: RunStore, step_path: str) -> None:
    holder, hook = poison_at((2, 3))
    run = store.create_run(tiny_config(**FAST), name=f"nan-{step_path}")
    events: list[dict] = []
    holder["t"] = Trainer(run, sinks=[events.append], on_step=hook, step_path=step_path)
    assert holder["t"].run() == "failed"
    failed = events[-1]
    assert failed["type"] == "failed" and failed["error_type"] == "divergence"
    assert failed["error"] == "the loss became nan at epoch 2, step 4"
    assert "lower LR" in failed["hint"]
    assert (failed["epoch"], failed["step"]) == (1, 3)
    assert failed["checkpoint"] == "checkpoint_epoch_1.pt"
    assert [e["epoch"] for e in events if e["type"] == "epoch_end"] == [1]  # epoch 2 never reported
    assert not (run.path / "checkpoint_epoch_2.pt").exists()


def test_a_stop_after_an_unseen_divergence_fails_instead_of_saving_nan_weights(store: RunStore) -> None:
    holder, poison = poison_at((2, 1))

    def hook(epoch: int, step: int) -> None:
        poison(epoch, step)
        if (epoch, step) == (2, 3):
            holder["t"].request_stop("test")

    run = store.create_run(tiny_config(**FAST), name="nan-then-stop")
    events: list[dict] = []
    holder["t"] = Trainer(run, sinks=[events.append], on_step=hook)
    assert holder["t"].run() == "failed"
    assert events[-1]["error"] == "the loss became nan at epoch 2, step 2"
    assert not list(run.path.glob("checkpoint_epoch_1_step_*.pt"))

