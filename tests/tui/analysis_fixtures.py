"""Prepared run stores for the analysis screens (runs, evaluation, compare).

Run directories are written directly (config.json + events.jsonl, a few small
files) so no test trains unless it needs a real checkpoint; that one is
trained once per session (`trained_template`) and copied.

Also used by bench/runs_screen.py to fill a store with 200 realistic runs.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from nsm.config import DOMAINS, RunConfig
from nsm.runs import Run, RunStore
from nsm.runs.events import encode_event, make_event

_TEMPLATE: Path | None = None


def _event_lines(events: Sequence[tuple[str, dict[str, Any]]], t0: float, dt: float) -> bytes:
    return b"".join(encode_event(make_event(i, kind, t=t0 + i * dt, **payload)) for i, (kind, payload) in enumerate(events))


def synthetic_events(
    *,
    run: str,
    domain: str,
    config: dict[str, Any],
    epochs_done: int,
    outcome: str | None = "finished",
    seed: int = 0,
    progress_per_epoch: int = 0,
    gpu_every: int = 0,
    best_acc: float = 0.85,
    loss_scale: float = 1.0,
) -> list[tuple[str, dict[str, Any]]]:
    """An engine-shaped event sequence: run_started, per epoch progress /
    epoch_end / gpu, val evals every EVAL_EVERY epochs, checkpoints, and the
    outcome (finished / interrupted / failed / None for a run that stopped
    writing)."""
    rnd = random.Random(seed)
    epochs = int(config.get("epochs", epochs_done) or epochs_done)
    eval_every = int(config.get("eval_every", 1) or 1)
    save_every = int(config.get("save_every", 10) or 10)
    out: list[tuple[str, dict[str, Any]]] = [
        ("run_started", {
            "run": run, "domain": domain, "config": config,
            "environment": {"python": "3.11", "torch": "2.x", "device": "cpu", "host": "test", "pid": 1, "threads": 1},
            "params": 250_000 + seed, "dataset": {"baselines": {"majority": {"test_acc": 0.5}}},
            "epochs": epochs, "steps_per_epoch": 22, "train_size": 1400,
        })
    ]  # fmt: skip
    best_loss, best_epoch = math.inf, None
    for e in range(1, epochs_done + 1):
        frac = e / max(epochs, 1)
        loss = loss_scale * (0.7 * math.exp(-2.5 * frac) + 0.05 + rnd.uniform(0, 0.02))
        for s in range(progress_per_epoch):
            step = (s + 1) * 22 // progress_per_epoch
            out.append(("progress", {
                "epoch": e, "step": step, "steps": 22, "loss": round(loss + 0.01, 5), "graphs_per_s": 700.0,
                "elapsed_s": 2.0 * (e - 1), "eta_s": 2.0 * (epochs - e + 1),
            }))  # fmt: skip
        acc = min(0.99, 0.5 + (best_acc - 0.5) * (1 - math.exp(-3 * frac)) + rnd.uniform(-0.01, 0.01))
        out.append(("epoch_end", {
            "epoch": e, "loss": loss, "task_loss": loss * 0.95, "cycle_loss": 0.5 * math.exp(-frac) + 0.1,
            "acc": acc, "grad_norm": 1.5, "lr": 1e-3 * (1 - frac) + 1e-5, "epoch_time_s": 2.0,
            "graphs_per_s": 700.0, "gpu_peak_mem_mb": None, "elapsed_s": 2.0 * e, "eta_s": 2.0 * (epochs - e),
        }))  # fmt: skip
        if gpu_every and e % gpu_every == 0:
            out.append(("gpu", {"sample": {"util": None, "mem_used_mb": None, "mem_total_mb": None, "temp_c": None}}))
        if e % eval_every == 0 or e == epochs:
            vloss = loss + 0.03 + rnd.uniform(0, 0.02)
            vacc = acc - 0.02
            is_best = vloss < best_loss
            if is_best:
                best_loss, best_epoch = vloss, e
            out.append(("eval", {
                "epoch": e, "split": "val", "loss": vloss, "task_loss": vloss * 0.95,
                "cycle_loss": 0.5 * math.exp(-frac) + 0.12, "acc": vacc, "is_best": is_best,
                "best_val_loss": best_loss, "best_epoch": best_epoch, "patience_left": 30,
            }))  # fmt: skip
            if is_best:
                out.append(("checkpoint", {
                    "epoch": e, "step": 0, "file": "best_model.pt", "kind": "best", "size": 2048,
                    "metrics": {"val_loss": vloss, "val_acc": vacc},
                }))  # fmt: skip
        if e % save_every == 0:
            out.append(("checkpoint", {
                "epoch": e, "step": 0, "file": f"checkpoint_epoch_{e}.pt", "kind": "periodic", "size": 2048,
                "metrics": {"best_val_loss": best_loss},
            }))  # fmt: skip
    if outcome == "finished":
        out.append(("finished", {
            "reason": "completed", "epochs_done": epochs_done, "best_epoch": best_epoch,
            "best_val_loss": best_loss if best_epoch else None,
            "test": {"acc": round(best_acc - 0.03, 4), "loss": round(best_loss + 0.02, 4) if best_epoch else None},
            "total_time_s": 2.0 * epochs_done,
        }))  # fmt: skip
    elif outcome == "interrupted":
        out.append(("interrupted", {
            "epoch": epochs_done, "step": 0, "checkpoint": f"checkpoint_epoch_{epochs_done}.pt", "reason": "stop requested",
        }))  # fmt: skip
    elif outcome == "failed":
        out.append(("failed", {
            "error": "CUDA out of memory at epoch 3, step 5 with BATCH_SIZE=64", "error_type": "oom",
            "hint": "lower BATCH_SIZE", "epoch": epochs_done, "step": 5, "checkpoint": None,
        }))  # fmt: skip
    return out


def write_run(
    store: RunStore,
    name: str,
    *,
    domain: str = "planning",
    epochs: int = 10,
    epochs_done: int | None = None,
    outcome: str | None = "finished",
    seed: int = 0,
    best_acc: float = 0.85,
    started: float | None = None,
    progress_per_epoch: int = 0,
    gpu_every: int = 0,
    checkpoint_bytes: int = 64,
    results: bool = True,
    loss_scale: float = 1.0,
    **config: Any,
) -> Run:
    """A run directory as a finished (or interrupted, failed, stale) engine
    would leave it, without training: config.json, events.jsonl, small
    stand-in checkpoint files and, when finished, final_results.json."""
    cfg = RunConfig(domain=domain, epochs=epochs, **config).to_dict()
    done = epochs if epochs_done is None else epochs_done
    run = store.create_run(cfg, name=name)
    events = synthetic_events(
        run=name, domain=domain, config=cfg, epochs_done=done, outcome=outcome, seed=seed,
        progress_per_epoch=progress_per_epoch, gpu_every=gpu_every, best_acc=best_acc, loss_scale=loss_scale,
    )  # fmt: skip
    t0 = started if started is not None else time.time() - 3600
    run.events_path.write_bytes(_event_lines(events, t0, 0.01))
    for kind, payload in events:
        if kind == "checkpoint":
            (run.path / payload["file"]).write_bytes(b"\0" * checkpoint_bytes)
    if outcome == "finished" and results:
        last = next(p for k, p in reversed(events) if k == "finished")
        cycle = next(p for k, p in reversed(events) if k == "epoch_end")["cycle_loss"]
        run.write_results({
            "run": name, "domain": domain, "reason": "completed", "epochs_done": done,
            "best_epoch": last["best_epoch"], "best_val_loss": last["best_val_loss"],
            "test": {
                "count": 300, "acc": last["test"]["acc"], "loss": last["test"]["loss"],
                "task_loss": last["test"]["loss"], "cycle_loss": cycle,
                "confusion": [[120, 30], [20, 130]],
                "per_class": {
                    "negative": {"precision": 0.857, "recall": 0.8, "f1": 0.8276, "support": 150},
                    "positive": {"precision": 0.8125, "recall": 0.8667, "f1": 0.8387, "support": 150},
                },
                "macro_f1": 0.8331,
                "confidence": {"edges": [0.5 + i * 0.05 for i in range(11)], "correct": [5] * 10, "wrong": [2] * 10},
            },
            "baselines": {"majority": {"test_acc": 0.5}, "structure_blind": {"test_acc": 0.56}},
            "params": 250_000 + seed,
            "timings": {"total_s": 2.0 * done + 1.5, "train_s": 2.0 * done},
            "config": cfg,
        })  # fmt: skip
    if outcome is None:
        # A process that died without a word: pid that does not exist on this host.
        run.write_process_info(2**22 + 12345, "process", "python -m nsm.training.worker")
    return run


def write_large_store(root: Path, runs: int = 200, epochs: int = 100) -> RunStore:
    """`runs` runs across the three domains, most finished, some interrupted,
    failed or stale; ~100-epoch logs shaped like the engine's."""
    store = RunStore(root)
    rnd = random.Random(7)
    now = time.time()
    for i in range(runs):
        domain = DOMAINS[i % 3]
        outcome = rnd.choices(["finished", "interrupted", "failed", None], [0.8, 0.1, 0.05, 0.05])[0]
        done = epochs if outcome == "finished" else rnd.randint(1, epochs - 1)
        write_run(
            store, f"{domain}-run-{i:03d}", domain=domain, epochs=epochs, epochs_done=done, outcome=outcome,
            seed=i, best_acc=0.7 + rnd.random() * 0.25, started=now - 86400 + i * 60,
            progress_per_epoch=4, gpu_every=1, eval_every=5, save_every=10,
            lr=rnd.choice([1e-3, 3e-4, 1e-4]), cycle_weight=rnd.choice([0.01, 0.1]),
        )  # fmt: skip
    return store


def trained_template(base: Path) -> Path:
    """A finished tiny run trained for real (best_model.pt, checkpoint_epoch_2.pt,
    evaluation_best_model.json); trained once per session, then copied."""
    global _TEMPLATE
    if _TEMPLATE is not None and _TEMPLATE.is_dir():
        return _TEMPLATE
    from nsm.training.trainer import Trainer

    try:  # tests/ is on sys.path under pytest; the repo root when run from a script
        from training.helpers import tiny_config
    except ImportError:
        from tests.training.helpers import tiny_config

    store = RunStore(base / "template-store")
    run = store.create_run(tiny_config(), name="template")
    outcome = Trainer(run).run()
    assert outcome == "finished", [e["type"] for e in run.events()]
    _TEMPLATE = run.path
    return _TEMPLATE


def copy_trained_run(template: Path, store: RunStore, name: str, domain: str = "planning") -> Run:
    """A copy of the trained template as run `domain/name` (mtimes kept, so a
    saved evaluation stays newer than its checkpoint)."""
    dest = store.root / domain / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, dest)
    for stray in ("process.json", "heartbeat"):
        try:
            (dest / stray).unlink()
        except FileNotFoundError:
            pass
    return Run(dest)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def set_mtime(path: Path, t: float) -> None:
    os.utime(path, (t, t))


def screen_text(app: Any) -> str:
    """What the terminal shows now, as plain text (one line per row)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip).rstrip() for strip in strips)


def widget_text(widget: Any, width: int = 120) -> str:
    """A Static's content (str, Text or any Rich renderable) as plain text."""
    from rich.console import Console
    from rich.text import Text

    content = getattr(widget, "content", widget)
    if isinstance(content, str):
        return Text.from_markup(content).plain
    if isinstance(content, Text):
        return content.plain
    console = Console(width=width, record=True, color_system=None, file=__import__("io").StringIO())
    console.print(content)
    return console.export_text()


def analysis_app(root: Path, settings_dir: Path | None = None) -> Any:
    """The real app over the store at `root`, settings kept out of the user's home."""
    from tui.app import create_app
    from tui.context import AppContext, Settings

    settings_path = (settings_dir or Path(root).parent / "settings") / "settings.json"
    context = AppContext(store=RunStore(root), settings=Settings.load(settings_path))
    return create_app(context=context)


async def settle(app: Any, pilot: Any) -> None:
    """Let every worker finish and the screen process what they posted."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


def notifications(app: Any) -> list[str]:
    return [f"{n.title or ''} {n.message}".strip() for n in app._notifications]


async def wait_for_screen(app: Any, pilot: Any, cls: type, timeout: float = 20.0) -> Any:
    """The app's screen once it is a `cls` (a dialog that a worker pushes),
    letting the app process its messages meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if isinstance(app.screen, cls):
            return app.screen
        await pilot.pause()
    raise AssertionError(f"{cls.__name__} did not open; the screen is {type(app.screen).__name__}")
