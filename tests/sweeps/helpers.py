"""Tiny sweeps and hand-written run logs for the sweep tests."""

from __future__ import annotations

from typing import Any, Sequence

from nsm.config import RunConfig, validate_config
from tests.training.helpers import TINY as TRAINING_TINY
from nsm.runs import EventLogWriter, Run, RunStore
from nsm.sweeps import Sweep, create_sweep, grid_points, parse_axes, point_configs

# Sweep points are the engine tests' tiny runs: 2 epochs, a checkpoint every epoch.
TINY = {**TRAINING_TINY, "epochs": 2, "save_every": 1, "backend": "inprocess"}


def tiny(**overrides: Any) -> RunConfig:
    return validate_config({**TINY, **overrides})


def grid_sweep(store: RunStore, specs: Sequence[str] = ("lr=1e-3,3e-3", "cycle_weight=0.01,0.1"), name: str = "grid", **base: Any) -> Sweep:
    axes = parse_axes(specs)
    configs = point_configs({**TINY, **base}, grid_points(axes))
    return create_sweep(store, configs, name=name, axes=axes)


def log_events(run: Run, events: Sequence[tuple[str, dict[str, Any]]]) -> None:
    with EventLogWriter(run.events_path) as writer:
        for kind, payload in events:
            writer.emit(kind, **payload)


def started(epochs: int = 3) -> tuple[str, dict[str, Any]]:
    return "run_started", {"run": "r", "domain": "planning", "config": {"epochs": epochs}, "epochs": epochs, "steps_per_epoch": 6}


def epoch(e: int, val_loss: float, val_acc: float) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("epoch_end", {"epoch": e, "loss": 1.0, "task_loss": 1.0, "cycle_loss": 0.1, "acc": 0.5, "lr": 1e-3}),
        ("eval", {"epoch": e, "split": "val", "loss": val_loss, "acc": val_acc, "best_epoch": e, "best_val_loss": val_loss}),
    ]


def finished(test_acc: float, test_loss: float, epochs: int = 3) -> tuple[str, dict[str, Any]]:
    return "finished", {"reason": "completed", "epochs_done": epochs, "test": {"acc": test_acc, "loss": test_loss}, "total_time_s": 4.0}


def finished_run(run: Run, val_loss: float, val_acc: float, test_acc: float, test_loss: float) -> None:
    log_events(run, [started(), *epoch(1, val_loss + 0.1, val_acc - 0.1), *epoch(3, val_loss, val_acc), finished(test_acc, test_loss)])


def wait_until(predicate: Any, timeout: float = 120.0, what: str = "condition") -> None:
    """Poll files written by another process (nothing in this process can be awaited)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
