"""Sweep points packed on one device (`nsm-tui sweep --parallel N|auto`): how long a packed
sweep takes compared with one of its points.

    python bench/gpu_sweep_check.py            # CUDA: a 12-point sweep packed on one GPU (auto)
                                               #   as a ratio to one point (target <= 3)
    python bench/gpu_sweep_check.py --cpu      # CPU: a 4-point sweep, --parallel 2 vs --parallel 1
    ... [--points 12] [--epochs 5] [--parallel auto] [--json FILE]

Every point trains in its own process, as `--parallel` does (the single-point baseline
too, so both pay the same process start). Needs torch + PyG (+ nvidia-ml-py for the GPU
readings); never imports the TUI or the Modal client. Without CUDA the GPU check says so
and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from nsm.config import RunConfig, validate_config  # noqa: E402
from nsm.runs import Run, RunStore  # noqa: E402
from nsm.sweeps import create_sweep, snapshot  # noqa: E402
from nsm.sweeps.packing import AUTO, packing_for, parse_parallel  # noqa: E402
from nsm.sweeps.runner import SweepRunner  # noqa: E402

LRS = (1e-3, 2e-3, 3e-3, 5e-3)
CYCLE_WEIGHTS = (0.01, 0.05, 0.1)


def point_configs(n: int, base: dict[str, Any]) -> list[RunConfig]:
    """n points that share one dataset (same domain, size and seed): lr × cycle weight."""
    grid = [(lr, cw) for cw in CYCLE_WEIGHTS for lr in LRS]
    while len(grid) < n:
        grid += [(lr * 0.5, cw) for lr, cw in grid]
    return [validate_config({**base, "lr": lr, "cycle_weight": cw}) for lr, cw in grid[:n]]


def warm_dataset(cfg: RunConfig) -> None:
    """Generate the points' dataset once here, so no point pays for it in the timings."""
    from nsm.data import load_dataset

    load_dataset(cfg.domain, num_graphs=cfg.num_graphs, seed=cfg.seed)


class GpuWatch:
    """The device's memory in use and utilisation, sampled through NVML while a sweep runs."""

    def __init__(self, interval_s: float = 0.5):
        self.interval_s = interval_s
        self.used_mb: list[float] = []
        self.util: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "GpuWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        from nsm.telemetry.nvml import sample_devices

        first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
        index = int(first) if first.isdigit() else 0
        while not self._stop.wait(self.interval_s):
            for s in sample_devices(device_index=index):
                if s.memory_used_mib is not None:
                    self.used_mb.append(s.memory_used_mib)
                if s.util_gpu_pct is not None:
                    self.util.append(s.util_gpu_pct)


def most_at_once(runs: list[Run]) -> int:
    """From the runs' own logs: the most points between their start and end event at one moment."""
    edges = []
    for run in runs:
        start = None
        for e in run.events():
            if e["type"] in ("run_started", "resumed"):
                start = e["t"]
            elif e["type"] in ("finished", "interrupted", "failed") and start is not None:
                edges += [(start, 1), (e["t"], -1)]
                start = None
    now = most = 0
    for _, step in sorted(edges, key=lambda x: (x[0], x[1])):
        now += step
        most = max(most, now)
    return most


def time_sweep(
    root: Path, name: str, configs: list[RunConfig], parallel: int | str, *, processes: bool = True, threads: int | None = None
) -> dict[str, Any]:
    """Create and run one sweep; wall time, the packing chosen, what each point reported.
    `processes`: each point in its own process even at 1 at once (the like-for-like baseline)."""
    store = RunStore(root)
    sweep = create_sweep(store, configs, name=name)
    packing = packing_for(sweep, parse_parallel(parallel))
    # SweepRunner trains in its own process at parallel 1; a process per point needs > 1.
    at_once = max(packing.points, 2) if processes else packing.points
    runner = SweepRunner(sweep, parallel=at_once, point_threads=packing.threads or (os.cpu_count() or 1), threads=threads)
    t0 = time.perf_counter()
    outcome = runner.run()
    wall = time.perf_counter() - t0
    snap = snapshot(sweep)
    runs = [v.run for v in snap.points]
    peaks = [max((e.get("gpu_peak_mem_mb") or 0 for e in r.events() if e["type"] == "epoch_end"), default=0) for r in runs]
    return {
        "points": len(configs),
        "packing": packing.line(),
        "at_once": packing.points,
        "outcome": outcome,
        "states": [v.state for v in snap.points],
        "errors": [v.error for v in snap.points if v.error],
        "wall_s": round(wall, 2),
        "most_at_once_in_logs": most_at_once(runs),
        "point_peak_mib": round(max(peaks), 1) if peaks else None,
        "train_s": [round(((r.results() or {}).get("timings") or {}).get("train_s") or 0, 2) for r in runs],
    }


def gpu_check(args: argparse.Namespace) -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU: skipping the packed-sweep GPU check")
        return None
    print(f"packed sweep on {torch.cuda.get_device_name(0)} (torch {torch.__version__}, {os.cpu_count()} cores)")
    base = {"domain": args.domain, "device": "cuda", "epochs": args.epochs, "eval_every": args.epochs, "save_every": args.epochs}
    configs = point_configs(args.points, base)
    warm_dataset(configs[0])
    root = Path(tempfile.mkdtemp(prefix="nsm-sweep-check-"))
    one = time_sweep(root, "one", configs[:1], 1)
    print(f"  1 point:  {one['wall_s']:.1f} s wall (training {one['train_s'][0]:.1f} s, peak {one['point_peak_mib']} MiB)")
    with GpuWatch() as watch:
        packed = time_sweep(root, "packed", configs, args.parallel)
    print(f"  {packed['packing']}")
    print(f"  {len(configs)} points: {packed['wall_s']:.1f} s wall, {packed['most_at_once_in_logs']} at once in the logs, states {_counts(packed['states'])}")
    if watch.used_mb:
        print(f"  GPU memory in use: max {max(watch.used_mb):.0f} MiB; utilisation mean {sum(watch.util) / max(len(watch.util), 1):.0f}%, max {max(watch.util, default=0):.0f}%")
    ratio = packed["wall_s"] / one["wall_s"]
    verdict = "ok" if ratio <= 3 and all(s == "done" for s in packed["states"]) else "MISSED"
    print(f"  ratio {len(configs)} points / 1 point: {ratio:.2f} (target <= 3): {verdict}")
    for error in packed["errors"][:3]:
        print(f"  error: {error}")
    return {"device": torch.cuda.get_device_name(0), "one": one, "packed": packed, "ratio": round(ratio, 2),
            "gpu_used_max_mib": max(watch.used_mb, default=None), "ok": verdict == "ok"}  # fmt: skip


def cpu_check(args: argparse.Namespace) -> dict[str, Any]:
    """A small sweep with --parallel 2 against --parallel 1 (one after another in the runner's
    own process: today's default path) on this machine's cores."""
    cores = os.cpu_count() or 1
    points = args.points if args.points != 12 else 4
    epochs = args.epochs if args.epochs != 5 else 3
    base = {"domain": args.domain, "device": "cpu", "epochs": epochs, "batch_size": 8,
            "num_graphs": 120, "hidden": 16, "eval_every": epochs, "save_every": epochs}  # fmt: skip
    configs = point_configs(points, base)
    warm_dataset(configs[0])
    print(f"packed sweep on the CPU: {points} points, {cores} cores")
    root = Path(tempfile.mkdtemp(prefix="nsm-sweep-check-"))
    serial = time_sweep(root, "serial", configs, 1, processes=False)
    print(f"  --parallel 1: {serial['wall_s']:.1f} s wall (points in the runner's process, torch's default threads), "
          f"training {_mean(serial['train_s']):.1f} s a point")  # fmt: skip
    # The same, one torch thread: how much of a difference is the thread count's, not the packing's.
    single = time_sweep(root, "single", configs, 1, processes=False, threads=1)
    print(f"  --parallel 1, 1 thread: {single['wall_s']:.1f} s wall, training {_mean(single['train_s']):.1f} s a point")
    packed = time_sweep(root, "packed", configs, 2)
    print(f"  --parallel 2: {packed['wall_s']:.1f} s wall ({packed['packing']}; {packed['most_at_once_in_logs']} at once in the logs), "
          f"training {_mean(packed['train_s']):.1f} s a point")  # fmt: skip
    ratio = packed["wall_s"] / serial["wall_s"]
    print(f"  ratio --parallel 2 / --parallel 1: {ratio:.2f} (against 1 thread one after another: {packed['wall_s'] / single['wall_s']:.2f})")
    return {"cores": cores, "serial": serial, "single_thread": single, "packed": packed, "ratio": round(ratio, 2)}


def _counts(states: list[str]) -> str:
    return ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))


def _mean(xs: list[float]) -> float:
    return sum(xs) / max(len(xs), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--cpu", action="store_true", help="the CPU variant: --parallel 2 against --parallel 1")
    ap.add_argument("--points", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--domain", default="planning")
    ap.add_argument("--parallel", default=AUTO, help="the packed sweep's --parallel (GPU check; default auto)")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the numbers here")
    args = ap.parse_args(argv)
    os.environ.setdefault("NSM_CACHE_DIR", tempfile.mkdtemp(prefix="nsm-sweep-check-cache-"))
    result = cpu_check(args) if args.cpu else gpu_check(args)
    if args.json and result is not None:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if result is None or result.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
