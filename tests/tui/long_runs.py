"""Long, realistic run logs written in one go, for attach scenarios and benches.

`write_long_run` writes a run directory (config.json + events.jsonl) shaped like
a long engine run: run_started, then per epoch a stream of `progress` events
(4 a second), a `gpu` sample every 5 s, `epoch_end`, `eval`, checkpoints
(best and periodic), a few `log` lines, and (optionally) a terminal event.
Seqs run 0, 1, 2, ... and event times increase. 100,000 events take well under
a second to build: lines are encoded with `encode_event` and written at once.

`epoch_events` builds one epoch's events (for writers that append while a
dashboard follows the run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nsm.config import RunConfig, validate_config
from nsm.runs import Run
from nsm.runs.events import encode_event, make_event

T0 = 1_700_000_000.0
PROGRESS_DT = 0.25  # 4 progress events a second
GPU_EVERY = 20  # one gpu sample every 20 progress events (5 s)


def long_config(epochs: int, **overrides: Any) -> RunConfig:
    base = dict(
        domain="planning", epochs=epochs, batch_size=8, num_graphs=60, hidden=16, eval_every=1,
        save_every=10, patience=0, device="cpu", seed=3, threads=1, backend="process",
    )  # fmt: skip
    base.update(overrides)
    return validate_config(base)


def gpu_sample(t: float, used_mib: float, util: float) -> dict[str, Any]:
    return {
        "time": t, "available": True, "reason": "",
        "devices": [{
            "index": 0, "name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-1", "memory_used_mib": used_mib,
            "memory_total_mib": 40960.0, "util_gpu_pct": util, "temperature_c": 61.0,
            "power_w": 250.0, "power_limit_w": 400.0, "process_memory_mib": used_mib - 500,
        }],
        "torch_memory": {"device": 0, "uuid": "GPU-1", "allocated_mib": used_mib * 0.6, "reserved_mib": used_mib * 0.8},
    }  # fmt: skip


def run_started(name: str, config: RunConfig, steps: int) -> dict[str, Any]:
    return {
        "run": name, "domain": config.domain, "config": config.to_dict(),
        "environment": {"device": "cuda", "threads": 1, "python": "3.11", "torch": "2.x"},
        "params": 312_448, "dataset": {}, "epochs": config.epochs, "steps_per_epoch": steps,
        "train_size": int(config.num_graphs * 0.7), "backend": config.backend,
    }  # fmt: skip


class _Curves:
    """Smooth, fixed metrics; remembers the best val loss across epochs."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.best = math.inf
        self.best_epoch: int | None = None

    def loss(self, e: float) -> float:
        return 0.7 * math.exp(-e / 20) + 0.25

    def acc(self, e: float) -> float:
        return 0.5 + 0.4 * (1 - math.exp(-e / 15))


def epoch_events(
    e: int,
    *,
    epochs: int,
    steps: int,
    curves: _Curves,
    epoch_time_s: float,
    save_every: int = 10,
    gpu_every: int = GPU_EVERY,
) -> list[tuple[str, dict[str, Any], float]]:
    """One epoch: `steps` progress events, gpu samples, epoch_end, eval, checkpoints, logs.
    Each item is (type, payload, seconds since the epoch began)."""
    out: list[tuple[str, dict[str, Any], float]] = []
    start = (e - 1) * epoch_time_s
    dt = epoch_time_s / (steps + 4)
    for s in range(1, steps + 1):
        frac = e - 1 + s / steps
        out.append((
            "progress",
            {
                "epoch": e, "step": s, "steps": steps, "loss": curves.loss(frac) + 0.02 * math.sin(s),
                "graphs_per_s": 410.0, "elapsed_s": start + s * dt, "eta_s": epochs * epoch_time_s - start - s * dt,
            },
            s * dt,
        ))  # fmt: skip
        if s % gpu_every == 0:
            out.append(("gpu", {"sample": gpu_sample(T0 + start + s * dt, 8000.0 + 3 * e, 80.0 + (s % 7))}, s * dt))
    loss, acc = curves.loss(e), curves.acc(e)
    t_end = (steps + 1) * dt
    out.append((
        "epoch_end",
        {
            "epoch": e, "loss": loss, "task_loss": loss * 0.95, "cycle_loss": 0.05 * math.exp(-e / 25) + 0.01,
            "acc": acc, "grad_norm": 1.0, "lr": 1e-3 * (0.5 + 0.5 * math.cos(math.pi * e / epochs)),
            "epoch_time_s": epoch_time_s, "graphs_per_s": 412.0, "gpu_peak_mem_mb": 8100.0 + e,
            "elapsed_s": e * epoch_time_s, "eta_s": (epochs - e) * epoch_time_s,
        },
        t_end,
    ))  # fmt: skip
    vloss = loss + 0.05 + 0.002 * max(0, e - 60)
    improved = vloss < curves.best
    if improved:
        curves.best, curves.best_epoch = vloss, e
    out.append((
        "eval",
        {
            "epoch": e, "split": "val", "loss": vloss, "task_loss": vloss * 0.95, "cycle_loss": 0.02,
            "acc": acc - 0.03, "is_best": improved, "best_val_loss": curves.best, "best_val_acc": acc - 0.03,
            "best_epoch": curves.best_epoch, "patience_left": None,
        },
        t_end + dt,
    ))  # fmt: skip
    if improved:
        out.append(("checkpoint", {"epoch": e, "step": 0, "file": "best_model.pt", "kind": "best", "size": 1000, "metrics": {"loss": vloss}}, t_end + 2 * dt))
    if e % save_every == 0:
        out.append(("checkpoint", {"epoch": e, "step": 0, "file": f"checkpoint_epoch_{e}.pt", "kind": "periodic", "size": 1000, "metrics": {}}, t_end + 2 * dt))
        out.append(("log", {"level": "info", "message": f"saved checkpoint_epoch_{e}.pt"}, t_end + 3 * dt))
    if e % 25 == 0:
        out.append(("log", {"level": "warning", "message": f"epoch {e}: data loader waited 1.2 s for a batch"}, t_end + 3 * dt))
    return out


def fixed_per_epoch(e: int, save_every: int) -> int:
    """Events of epoch e other than progress and gpu (best checkpoint not counted)."""
    return 2 + (2 if e % save_every == 0 else 0) + (1 if e % 25 == 0 else 0)


def steps_for(events: int, epochs: int, save_every: int, outcome: str | None) -> int:
    """Progress steps per epoch so that the log has about `events` events."""
    fixed = 2 + (2 if outcome else 0) + sum(fixed_per_epoch(e, save_every) for e in range(1, epochs + 1))
    per_epoch = max(1.0, (events - fixed) / epochs)
    # each epoch: steps progress + steps // GPU_EVERY gpu (+ maybe a best checkpoint)
    return max(1, int(per_epoch * GPU_EVERY / (GPU_EVERY + 1)))


def write_long_run(
    root: Path | str,
    name: str,
    *,
    events: int = 100_000,
    epochs: int = 100,
    outcome: str | None = "finished",
    epochs_done: int | None = None,
    config: RunConfig | None = None,
) -> Run:
    """A long run's directory, written directly. The log holds exactly `events` events
    (padded with progress events in the last epoch, or trimmed of them) and, when
    `outcome` is "finished", ends with a finished event after `epochs_done` epochs."""
    epochs_done = epochs if epochs_done is None else epochs_done
    config = config or long_config(epochs)
    save_every = config.save_every
    path = Path(root) / config.domain / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config.to_dict()))

    steps = steps_for(events, max(1, epochs_done), save_every, outcome)
    epoch_time_s = (steps + 4) * PROGRESS_DT
    curves = _Curves(epochs)
    items: list[tuple[str, dict[str, Any], float]] = [
        ("run_started", run_started(name, config, steps), 0.0),
        ("gpu", {"sample": gpu_sample(T0, 8000.0, 50.0)}, 0.01),
    ]
    for e in range(1, epochs_done + 1):
        base = (e - 1) * epoch_time_s + 0.02
        items.extend((k, p, base + dt) for k, p, dt in epoch_events(
            e, epochs=epochs, steps=steps, curves=curves, epoch_time_s=epoch_time_s, save_every=save_every
        ))  # fmt: skip
    tail: list[tuple[str, dict[str, Any], float]] = []
    end = epochs_done * epoch_time_s + 1.0
    if outcome == "finished":
        tail = [
            ("log", {"level": "info", "message": "evaluating the best model on the test split"}, end),
            ("finished", {
                "reason": "completed", "epochs_done": epochs_done, "best_epoch": curves.best_epoch,
                "best_val_loss": curves.best, "test": {"acc": 0.861, "loss": 0.352}, "total_time_s": end + 1.0,
            }, end + 1.0),
        ]  # fmt: skip
    elif outcome is not None:
        raise ValueError(f"outcome must be 'finished' or None, got {outcome!r}")
    # Exactly `events` in all: pad the history with progress events (repeats of the last
    # epoch's final step, as a slow last batch would send), or drop progress events.
    missing = events - len(items) - len(tail)
    if missing > 0:
        last_t = items[-1][2]
        e = max(1, epochs_done)
        pad = [
            ("progress", {"epoch": e, "step": steps, "steps": steps, "loss": curves.loss(e), "graphs_per_s": 410.0,
                          "elapsed_s": e * epoch_time_s, "eta_s": 0.0}, last_t + (i + 1) * 1e-4)
            for i in range(missing)
        ]  # fmt: skip
        # before the last epoch's epoch_end, so that nothing follows the final metrics
        cut = max(i for i, it in enumerate(items) if it[0] == "progress") + 1 if epochs_done else len(items)
        t_cut = items[cut - 1][2]
        t_next = items[cut][2] if cut < len(items) else t_cut + 1.0
        step = (t_next - t_cut) / (missing + 1)
        pad = [(k, p, t_cut + (i + 1) * step) for i, (k, p, _) in enumerate(pad)]
        items[cut:cut] = pad
    elif missing < 0:
        drop = -missing
        keep: list[tuple[str, dict[str, Any], float]] = []
        for it in reversed(items):
            if drop and it[0] == "progress" and it[1]["step"] != it[1]["steps"]:
                drop -= 1
                continue
            keep.append(it)
        items = keep[::-1]
    items.extend(tail)
    lines = []
    prev = -1.0
    for seq, (kind, payload, t) in enumerate(items):
        prev = max(prev + 1e-4, t)  # strictly increasing times
        lines.append(encode_event(make_event(seq, kind, t=round(T0 + prev, 4), **payload)))
    data = b"".join(lines)
    (path / "events.jsonl").write_bytes(data)
    return Run(path)


class EpochAppender:
    """Appends whole epochs to a run written by `write_long_run` (outcome=None),
    with real times, as a training process would."""

    def __init__(self, run: Run, *, epochs: int, steps: int = 20, epoch_time_s: float = 0.2):
        self.run = run
        self.epochs = epochs
        self.steps = steps
        self.epoch_time_s = epoch_time_s
        self.curves = _Curves(epochs)

    def epoch(self, writer: Any, e: int) -> None:
        for kind, payload, _ in epoch_events(
            e, epochs=self.epochs, steps=self.steps, curves=self.curves, epoch_time_s=self.epoch_time_s
        ):
            writer.emit(kind, **payload)

    def finish(self, writer: Any, epochs_done: int) -> None:
        writer.emit("log", level="info", message="evaluating the best model on the test split")
        writer.emit(
            "finished", reason="completed", epochs_done=epochs_done, best_epoch=self.curves.best_epoch,
            best_val_loss=self.curves.best, test={"acc": 0.861, "loss": 0.352}, total_time_s=1.0,
        )  # fmt: skip
