"""Event sequences shaped like the engine's, for run store tests."""

from __future__ import annotations

from typing import Any, Sequence

Events = Sequence[tuple[str, dict[str, Any]]]


def epoch_end(epoch: int, loss: float | None = None, acc: float = 0.5) -> tuple[str, dict[str, Any]]:
    loss = 1.0 / epoch if loss is None else loss
    return "epoch_end", {
        "epoch": epoch, "loss": loss, "task_loss": loss * 0.9, "cycle_loss": loss * 0.1, "acc": acc,
        "grad_norm": 1.0, "lr": 1e-3, "epoch_time_s": 2.0, "graphs_per_s": 700.0,
        "gpu_peak_mem_mb": None, "elapsed_s": 2.0 * epoch, "eta_s": 0.0,
    }  # fmt: skip


def val(
    epoch: int, loss: float, acc: float, best_epoch: int | None = None, best_loss: float | None = None
) -> tuple[str, dict[str, Any]]:
    payload: dict[str, Any] = {
        "epoch": epoch, "split": "val", "loss": loss, "task_loss": loss, "cycle_loss": 0.0, "acc": acc,
        "is_best": best_epoch == epoch, "patience_left": 10,
    }  # fmt: skip
    if best_epoch is not None:
        payload.update(best_epoch=best_epoch, best_val_loss=best_loss)
    return "eval", payload


def started(epochs: int = 10, run: str = "r", domain: str = "planning") -> tuple[str, dict[str, Any]]:
    return "run_started", {
        "run": run, "domain": domain, "config": {"domain": domain, "epochs": epochs}, "environment": {},
        "params": 300_000, "dataset": {}, "epochs": epochs, "steps_per_epoch": 22, "train_size": 1400,
    }  # fmt: skip


def training_events(
    epochs: int = 3, total: int | None = None, finish: bool = False, progress: int = 0
) -> list[tuple[str, dict[str, Any]]]:
    """run_started, then per epoch: progress events, epoch_end and a val eval
    whose loss falls each epoch; optionally `finished`."""
    out = [started(total or epochs)]
    for e in range(1, epochs + 1):
        for step in range(progress):
            out.append(("progress", {"epoch": e, "step": step + 1, "steps": progress, "loss": 0.5}))
        out.append(epoch_end(e, acc=0.5 + e / 100))
        out.append(val(e, loss=1.0 / e, acc=0.5 + e / 50, best_epoch=e, best_loss=1.0 / e))
    if finish:
        out.append(("finished", {
            "reason": "completed", "epochs_done": epochs, "best_epoch": epochs, "best_val_loss": 1.0 / epochs,
            "test": {"acc": 0.9, "loss": 0.3}, "total_time_s": 10.0,
        }))  # fmt: skip
    return out
