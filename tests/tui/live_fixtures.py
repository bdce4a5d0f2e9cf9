"""Prepared runs that train "now" for the live overview (F6): fixed times, fixed hosts.

Liveness is what the overview reads from the disk: a process on another host with a
fresh heartbeat, a Modal run whose mirror lock is held, a Modal run nobody mirrors.
Heartbeats are set relative to the fixed clock T_NOW, which the overview is given.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from nsm.config import RunConfig
from nsm.runs import RunStore
from nsm.runs.events import encode_event, make_event

T_NOW = 1_700_000_600.0


def gpu(util: float, used_mib: float) -> dict[str, Any]:
    return {"available": True, "devices": [{"index": 0, "name": "NVIDIA A100-SXM4-40GB", "util_gpu_pct": util, "memory_used_mib": used_mib}]}


def live_run(store: RunStore, name: str, *, domain: str, epochs: int, epoch: int, step: int, rate: float, eta: float,
             last_t: float, sample: dict[str, Any] | None = None) -> Any:  # fmt: skip
    run = store.create_run(RunConfig(domain=domain, epochs=epochs), name=name)
    events: list[tuple[str, dict[str, Any]]] = [("run_started", {"run": name, "domain": domain, "epochs": epochs, "config": {"epochs": epochs}})]
    for e in range(1, epoch):
        events.append(("epoch_end", {"epoch": e, "loss": 0.5, "acc": 0.7, "graphs_per_s": rate}))
    if sample is not None:
        events.append(("gpu", {"sample": sample}))
    events.append(("progress", {"epoch": epoch, "step": step, "steps": 22, "loss": 0.4, "graphs_per_s": rate, "eta_s": eta}))
    n = len(events)
    data = b"".join(encode_event(make_event(i, k, t=last_t - (n - 1 - i) * 5.0, **p)) for i, (k, p) in enumerate(events))
    run.events_path.write_bytes(data)
    return run


def beat(run: Any, age: float = 2.0) -> None:
    run.touch_heartbeat()
    os.utime(run.heartbeat_path, (T_NOW - age, T_NOW - age))


def on_other_host(run: Any, pid: int = 4242, host: str = "gpu-box") -> None:
    (run.path / "process.json").write_text(json.dumps({"pid": pid, "host": host, "started": T_NOW - 600, "backend": "process"}))
    beat(run)


def on_modal(run: Any, mirrored: bool) -> int | None:
    """remote.json; with `mirrored`, the mirror lock held (the fd, to keep open while the app runs)."""
    (run.path / "remote.json").write_text(json.dumps({"function_call_id": "fc-1", "gpu": "A100-40GB"}))
    beat(run)
    if not mirrored:
        return None
    fd = os.open(run.path / ".mirror.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def write_live_store(root: Path) -> tuple[RunStore, list[int]]:
    """Three runs that train now (another host's sweep point, a mirrored Modal run, an
    unmirrored one) and one finished run that the overview leaves out."""
    store = RunStore(root)
    a = live_run(store, "lr-sweep-01", domain="planning", epochs=100, epoch=42, step=11, rate=512.4, eta=754.0,
                 last_t=T_NOW - 1, sample=gpu(87.0, 12390.0))  # fmt: skip
    on_other_host(a)
    sweep = root / ".sweeps" / "lr-sweep"
    sweep.mkdir(parents=True)
    points = [{"index": i, "run": f"planning/lr-sweep-0{i + 1}", "config": {}} for i in range(4)]
    (sweep / "sweep.json").write_text(json.dumps({"format": "nsm-sweep", "points": points}))
    b = live_run(store, "causal-a100", domain="causal", epochs=50, epoch=7, step=3, rate=2210.0, eta=1290.0,
                 last_t=T_NOW - 3, sample=gpu(64.0, 9100.0))  # fmt: skip
    fds = [fd for fd in [on_modal(b, mirrored=True)] if fd is not None]
    c = live_run(store, "kg-overnight", domain="kg", epochs=200, epoch=120, step=20, rate=1805.0, eta=14400.0, last_t=T_NOW - 400)
    on_modal(c, mirrored=False)
    done = live_run(store, "finished-1", domain="planning", epochs=10, epoch=10, step=22, rate=500.0, eta=0.0, last_t=T_NOW - 900)
    with done.events_path.open("ab") as fh:
        fh.write(encode_event(make_event(12, "finished", t=T_NOW - 800, reason="completed", epochs_done=10)))
    return store, fds
