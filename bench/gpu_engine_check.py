"""On a CUDA machine: the engine's GPU path end to end (one short script for a lent GPU).

- GPU samples travel inside the event stream (devices from NVML, torch memory with the UUID);
- per-epoch peak GPU memory lands in the history;
- mixed precision (AMP) trains and stays finite;
- seconds per epoch per domain at the default config, fp32 and AMP;
- the training step, old against new (`paths_check`): per domain at defaults,
  s/epoch and graphs/s of the reference step (host batches copied every step,
  numbers read back every step) and of the device step (data on the GPU, sums
  read back at progress and epoch ends), their ratio, the 100-epoch estimate
  (target <= 10 s per domain on an H100/H200) and how far their metrics differ
  (CUDA: float tolerance; CPU: must be 0).

    python bench/gpu_engine_check.py [--epochs 3] [--path-epochs 6]
    python bench/gpu_engine_check.py --device cpu --path-epochs 2   # the paths part on CPU
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402

from nsm.config import RunConfig  # noqa: E402
from nsm.data import DOMAINS_IN_ORDER  # noqa: E402
from nsm.runs import RunStore  # noqa: E402
from nsm.training.trainer import Trainer  # noqa: E402


PATH_KEYS = ("loss", "task_loss", "cycle_loss", "acc", "grad_norm")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def path_run(domain: str, step_path: str, epochs: int, device: str, root: str) -> dict:
    """One short run at the default config through one step path: per-epoch times and metrics."""
    cfg = RunConfig(
        domain=domain, device=device, epochs=epochs, eval_every=epochs, save_every=10_000, patience=0, tensorboard=False
    )
    run = RunStore(root).create_run(cfg)
    events: list[dict] = []
    _sync(device)
    t0 = time.perf_counter()
    outcome = Trainer(run, sinks=[events.append], step_path=step_path).run()
    _sync(device)
    wall = time.perf_counter() - t0
    ends = [e for e in events if e["type"] == "epoch_end"]
    started = next(e for e in events if e["type"] == "run_started")
    failed = [e.get("error") for e in events if e["type"] == "failed"]
    steady = ends[1:] or ends  # the first epoch pays allocator and kernel warm-up
    s_ep = sum(e["epoch_time_s"] for e in steady) / len(steady) if steady else float("nan")
    return {
        "outcome": outcome,
        "error": failed[0] if failed else None,
        "s_epoch": s_ep,
        "graphs_s": started["train_size"] / s_ep if steady else float("nan"),
        "wall": wall,
        "metrics": [[e[k] for k in PATH_KEYS] for e in ends],
    }


def _max_rel_diff(a: list[list[float]], b: list[list[float]]) -> float:
    worst = 0.0
    for row_a, row_b in zip(a, b):
        for x, y in zip(row_a, row_b):
            worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-12))
    return worst


def paths_check(device: str, epochs: int, root: str) -> bool:
    """Old (reference) and new (device) step per domain, in this process, one after the other."""
    print(f"training step, old vs new on {device} ({epochs} epochs each, the first left out of s/epoch):")
    print(f"{'domain':<10}{'old s/ep':>9}{'old g/s':>9}{'new s/ep':>9}{'new g/s':>9}{'new/old':>9}{'100 ep s':>10}{'max rel diff':>14}")
    ok = True
    for domain in DOMAINS_IN_ORDER:
        old = path_run(domain, "reference", epochs, device, root)
        new = path_run(domain, "device", epochs, device, root)
        if old["outcome"] != "finished" or new["outcome"] != "finished":
            ok = False
            print(f"{domain:<10}  FAILED: old {old['outcome']} {old['error']}; new {new['outcome']} {new['error']}")
            continue
        diff = _max_rel_diff(old["metrics"], new["metrics"])
        exact = device == "cpu"
        if (exact and diff != 0.0) or diff > 1e-3:
            ok = False
        print(
            f"{domain:<10}{old['s_epoch']:>9.3f}{old['graphs_s']:>9.0f}{new['s_epoch']:>9.3f}{new['graphs_s']:>9.0f}"
            f"{old['s_epoch'] / new['s_epoch']:>9.2f}{100 * new['s_epoch']:>10.1f}{diff:>14.2e}"
            + ("" if not exact or diff == 0.0 else "  (CPU must be exact)")
        )
    return ok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--path-epochs", type=int, default=6, help="epochs per old/new step measurement (0 skips it)")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: run only the old/new step part, on CPU")
    args = ap.parse_args()
    if args.device == "cpu":
        return 0 if paths_check("cpu", max(2, args.path_epochs), tempfile.mkdtemp()) else 1
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to check (--device cpu runs the old/new step comparison on CPU)")
        return 0
    print(f"torch {torch.__version__} CUDA {torch.version.cuda} on {torch.cuda.get_device_name(0)}")
    root = tempfile.mkdtemp()
    print(f"{'domain':<10}{'amp':>5}{'s/epoch':>9}{'graphs/s':>10}{'peak MiB':>10}{'gpu events':>12}{'val acc':>9}  outcome")
    ok = True
    for domain in DOMAINS_IN_ORDER:
        for amp in (False, True):
            cfg = RunConfig(domain=domain, device="cuda", amp=amp, epochs=args.epochs, eval_every=args.epochs, save_every=args.epochs)
            run = RunStore(root).create_run(cfg)
            events: list[dict] = []
            t0 = time.perf_counter()
            outcome = Trainer(run, sinks=[events.append], gpu_interval_s=0.25).run()
            ends = [e for e in events if e["type"] == "epoch_end"]
            gpus = [e for e in events if e["type"] == "gpu"]
            evals = [e for e in events if e["type"] == "eval"]
            if outcome != "finished":
                ok = False
                print(f"{domain:<10}{str(amp):>5}  FAILED: {[e.get('error') for e in events if e['type'] == 'failed']}")
                continue
            steady = ends[1:] or ends
            s_ep = sum(e["epoch_time_s"] for e in steady) / len(steady)
            rate = sum(e["graphs_per_s"] for e in steady) / len(steady)
            peak = max(e["gpu_peak_mem_mb"] or 0 for e in ends)
            print(f"{domain:<10}{str(amp):>5}{s_ep:>9.2f}{rate:>10.0f}{peak:>10.1f}{len(gpus):>12}{evals[-1]['acc']:>9.3f}  {outcome} in {time.perf_counter() - t0:.1f} s")
            if gpus and domain == DOMAINS_IN_ORDER[0] and not amp:
                s = gpus[-1]["sample"]
                dev = (s.get("devices") or [{}])[0]
                tm = s.get("torch_memory") or {}
                print(
                    f"  last gpu event: available={s['available']} device={dev.get('name')} "
                    f"nvml used={dev.get('memory_used_mib')} MiB of {dev.get('memory_total_mib')} "
                    f"process={dev.get('process_memory_mib')} MiB util={dev.get('util_gpu_pct')}% "
                    f"temp={dev.get('temperature_c')}C power={dev.get('power_w')}/{dev.get('power_limit_w')} W; "
                    f"torch allocated={tm.get('allocated_mib')} reserved={tm.get('reserved_mib')} uuid match="
                    f"{any(d.get('uuid') == tm.get('uuid') for d in s.get('devices') or [])}"
                )
            history = run.history()
            if not all(v is not None for v in history["train"]["gpu_peak_mem_mb"]):
                ok = False
                print("  history lacks per-epoch peak GPU memory")
    if args.path_epochs:
        ok = paths_check("cuda", max(2, args.path_epochs), root) and ok
    # Sweep points packed on this GPU (bench/gpu_sweep_check.py), in its own process so that
    # this one's CUDA memory is out of its way; its verdict joins ours.
    import subprocess

    torch.cuda.empty_cache()
    packed = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpu_sweep_check.py")])
    return 0 if ok and packed.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
