"""On a CUDA machine: the engine's GPU path end to end (one short script for a lent GPU).

- GPU samples travel inside the event stream (devices from NVML, torch memory with the UUID);
- per-epoch peak GPU memory lands in the history;
- mixed precision (AMP) trains and stays finite;
- seconds per epoch per domain at the default config, fp32 and AMP.

    python bench/gpu_engine_check.py [--epochs 3]
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to check")
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
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
