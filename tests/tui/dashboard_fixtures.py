"""Prepared run directories and app builders for the dashboard tests and snapshots.

Runs are written directly (config.json + events.jsonl) with fixed times and
metrics, so what the dashboard shows is the same on every machine.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from nsm.config import RunConfig, validate_config
from nsm.runs import Run, RunStore
from nsm.runs.events import encode_event, make_event
from tui.app import NSMApp, create_app
from tui.context import AppContext, Settings

T0 = 1_700_000_000.0  # fixed clock: event times, hence the log's "+1m05s" stamps, never vary
NO_GPU = {"time": T0, "available": False, "reason": "no NVIDIA driver", "devices": [], "torch_memory": None}


def tiny_config(**overrides: Any) -> RunConfig:
    """The engine tests' tiny run (60 graphs, width 16): trains in about a second."""
    base = dict(
        domain="planning", epochs=3, batch_size=8, num_graphs=60, hidden=16, eval_every=1,
        save_every=2, patience=0, device="cpu", seed=3, threads=1, backend="inprocess",
    )  # fmt: skip
    base.update(overrides)
    return validate_config(base)


def gpu_sample(t: float, used_mib: float, util: float) -> dict[str, Any]:
    return {
        "time": t,
        "available": True,
        "reason": "",
        "devices": [
            {
                "index": 0, "name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-1", "memory_used_mib": used_mib,
                "memory_total_mib": 40960.0, "util_gpu_pct": util, "temperature_c": 61.0,
                "power_w": 250.0, "power_limit_w": 400.0, "process_memory_mib": used_mib - 500,
            }
        ],
        "torch_memory": {"device": 0, "uuid": "GPU-1", "allocated_mib": used_mib * 0.6, "reserved_mib": used_mib * 0.8},
    }  # fmt: skip


def run_events(
    *,
    name: str,
    config: RunConfig,
    epochs_done: int,
    outcome: str | None = "finished",
    gpu: bool = False,
    oom_batch: int | None = None,
    reason: str = "completed",
) -> list[tuple[str, dict[str, Any]]]:
    """An engine-shaped event sequence with smooth, fixed curves."""
    steps = max(1, math.ceil(int(config.num_graphs * 0.7) / config.batch_size))
    out: list[tuple[str, dict[str, Any]]] = [
        (
            "run_started",
            {
                "run": name, "domain": config.domain, "config": config.to_dict(),
                "environment": {"device": "cuda" if gpu else "cpu", "threads": 1, "python": "3.11", "torch": "2.x"},
                "params": 312_448, "dataset": {}, "epochs": config.epochs, "steps_per_epoch": steps,
                "train_size": int(config.num_graphs * 0.7), "backend": config.backend,
            },
        ),
        ("gpu", {"sample": gpu_sample(T0, 8000.0, 50.0) if gpu else NO_GPU}),
    ]  # fmt: skip
    best = math.inf
    best_epoch = None
    for e in range(1, epochs_done + 1):
        loss = 0.7 * math.exp(-e / 4) + 0.25
        acc = 0.5 + 0.4 * (1 - math.exp(-e / 3))
        out.append(("progress", {"epoch": e, "step": steps // 2, "steps": steps, "loss": loss, "graphs_per_s": 410.0, "elapsed_s": 6.0 * e - 3, "eta_s": 6.0 * (config.epochs - e) + 3}))
        out.append((
            "epoch_end",
            {
                "epoch": e, "loss": loss, "task_loss": loss * 0.95, "cycle_loss": 0.05 * math.exp(-e / 5) + 0.01,
                "acc": acc, "grad_norm": 1.0, "lr": 1e-3 * (0.5 + 0.5 * math.cos(math.pi * e / config.epochs)),
                "epoch_time_s": 6.0, "graphs_per_s": 412.0, "gpu_peak_mem_mb": None,
                "elapsed_s": 6.0 * e, "eta_s": 6.0 * (config.epochs - e),
            },
        ))  # fmt: skip
        if gpu:
            out.append(("gpu", {"sample": gpu_sample(T0 + 6.0 * e, 8000.0 + 300 * e, 80.0 + (e % 3) * 5)}))
        if e % config.eval_every == 0 or e == config.epochs:
            vloss = loss + 0.05 + 0.04 * max(0, e - 6)
            improved = vloss < best
            if improved:
                best, best_epoch = vloss, e
            out.append((
                "eval",
                {
                    "epoch": e, "split": "val", "loss": vloss, "task_loss": vloss * 0.95, "cycle_loss": 0.02,
                    "acc": acc - 0.03, "is_best": improved, "best_val_loss": best, "best_val_acc": acc - 0.03,
                    "best_epoch": best_epoch, "patience_left": None if not config.patience else config.patience - (e - best_epoch),
                },
            ))  # fmt: skip
            if improved:
                out.append(("checkpoint", {"epoch": e, "step": 0, "file": "best_model.pt", "kind": "best", "size": 1000, "metrics": {}}))
        if e % config.save_every == 0:
            out.append(("checkpoint", {"epoch": e, "step": 0, "file": f"checkpoint_epoch_{e}.pt", "kind": "periodic", "size": 1000, "metrics": {}}))
    if outcome == "finished":
        out.append(("log", {"level": "info", "message": "evaluating the best model on the test split"}))
        out.append((
            "finished",
            {
                "reason": reason, "epochs_done": epochs_done, "best_epoch": best_epoch, "best_val_loss": best,
                "test": {"acc": 0.861, "loss": 0.352}, "total_time_s": 6.0 * epochs_done + 4,
            },
        ))  # fmt: skip
    elif outcome == "interrupted":
        out.append(("interrupted", {"epoch": epochs_done, "step": 2, "checkpoint": f"checkpoint_epoch_{epochs_done}_step_2.pt", "reason": "stop requested"}))
    elif outcome == "failed":
        if oom_batch is not None:
            out.append((
                "failed",
                {
                    "error": f"CUDA out of memory at epoch {epochs_done + 1}, step 3 with BATCH_SIZE={config.batch_size}",
                    "error_type": "oom", "hint": f"restart with a smaller BATCH_SIZE, e.g. {oom_batch}",
                    "epoch": epochs_done, "step": 3, "checkpoint": None, "suggested_config": {"batch_size": oom_batch},
                },
            ))  # fmt: skip
        else:
            out.append((
                "failed",
                {
                    "error": "the loss became nan at epoch 3, step 2", "error_type": "divergence",
                    "hint": "lower LR (now 0.001) or CYCLE_WEIGHT (now 0.01)", "epoch": epochs_done, "step": 2,
                    "checkpoint": None, "traceback": "Traceback (most recent call last):\n  File \"x.py\"\nValueError",
                },
            ))  # fmt: skip
    return out


def write_run(
    root: Path,
    name: str = "fixture-run",
    *,
    config: RunConfig | None = None,
    epochs_done: int = 10,
    outcome: str | None = "finished",
    gpu: bool = False,
    oom_batch: int | None = None,
    reason: str = "completed",  # of a finished run: "early_stopped" for one that patience ended
    extra_lines: list[bytes] = (),  # type: ignore[assignment]
    files: tuple[str, ...] = (),
) -> Run:
    """A run directory written directly: config.json, events.jsonl, empty checkpoint files."""
    config = config or tiny_config(epochs=10, eval_every=2, save_every=5, patience=5, backend="process")
    path = Path(root) / config.domain / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config.to_dict()))
    events = run_events(name=name, config=config, epochs_done=epochs_done, outcome=outcome, gpu=gpu, oom_batch=oom_batch, reason=reason)
    data = b"".join(encode_event(make_event(i, kind, t=T0 + i * 0.5, **payload)) for i, (kind, payload) in enumerate(events))
    data += b"".join(extra_lines)
    (path / "events.jsonl").write_bytes(data)
    for file in files:
        (path / file).write_bytes(b"not a real checkpoint")
    return Run(path)


def make_app(root: Path, attach: str | None = None, settings_dir: Path | None = None) -> NSMApp:
    """The real app over a store at `root`, with settings kept out of the user's home."""
    settings_path = (settings_dir or Path(root) / ".settings") / "settings.json"
    context = AppContext(store=RunStore(root), settings=Settings.load(settings_path))
    return create_app(attach=attach, context=context)


def touch(path: Path, t: float = T0) -> None:
    os.utime(path, (t, t))


class StepGate:
    """An engine `on_step` hook that parks the training thread at (epoch, step)
    until the test opens the gate, so keys can be pressed while a run is mid-epoch."""

    def __init__(self, epoch: int, step: int, timeout: float = 60.0):
        import threading

        self.at = (epoch, step)
        self.reached = threading.Event()
        self.gate = threading.Event()
        self.timeout = timeout

    def __call__(self, epoch: int, step: int) -> None:
        if (epoch, step) == self.at:
            self.reached.set()
            self.gate.wait(self.timeout)

    async def wait_reached(self) -> None:
        import asyncio

        reached = await asyncio.to_thread(self.reached.wait, self.timeout)
        assert reached, f"the run never reached epoch {self.at[0]}, step {self.at[1]}"

    def open(self) -> None:
        self.gate.set()


async def settle_charts(pilot: Any, rounds: int = 40) -> None:
    """Let throttled chart repaints (≤ 2 Hz) happen: wait until none is pending."""
    from tui.widgets.chart import PlotextChart

    for _ in range(rounds):
        await pilot.pause()
        pending = [c for c in pilot.app.screen.query(PlotextChart) if c._pending]  # noqa: SLF001
        if not pending:
            return
        await pilot.pause(0.1)  # a deferred repaint is a timer: only time brings it


def screen_text(app: Any) -> str:
    """What the terminal shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())  # noqa: SLF001


def dashboard(app: Any) -> Any:
    """The app's dashboard screen (created at mount)."""
    from tui.screens.dashboard import DashboardScreen

    screen = app.get_screen_for_mode("dashboard")
    assert isinstance(screen, DashboardScreen)
    return screen


async def start_tiny_run(pilot: Any, **overrides: Any) -> Any:
    """Load the tiny config into the panel and press s: an in-process run starts."""
    dash = dashboard(pilot.app)
    dash.config_panel.load_config(tiny_config(**overrides))
    await pilot.pause()
    assert dash.config_panel.valid, dash.config_panel.errors
    await pilot.press("s")
    await pilot.pause()
    assert dash.controller.run is not None, "the start key did not start a run"
    return dash
