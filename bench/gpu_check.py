"""Does GPU telemetry tell the truth on a real CUDA machine, and how fast is an epoch?

1. NVML readings beside torch's for device 0, with a known allocation in place,
   so that NVML's view of this process (context + torch's cache) can be compared
   with torch's reserved/allocated memory.
2. The sampler thread for a moment: samples arrive, describe() reads well.
3. The diagnostics dict.
4. Seconds per epoch per domain, through `nsm.training.bench_epochs(domain, epochs,
   device)` when the training package offers it (skipped with a note otherwise).

Without CUDA it says so and exits 0. Needs torch and nvidia-ml-py; never textual/modal.

    python bench/gpu_check.py [--epochs 3] [--domains planning causal kg] [--alloc-mib 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", category=DeprecationWarning)

# Runnable from a plain checkout, without `pip install -e .`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsm.telemetry import (  # noqa: E402
    GpuSampler,
    describe,
    diagnostics,
    get_session,
    reset_peak,
    take_sample,
    torch_memory,
)

MIB = 1024 * 1024


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _row(label: str, *cells: str) -> None:
    print(f"  {label:<34}" + "".join(f"{c:>16}" for c in cells))


def memory_comparison(torch: Any, alloc_mib: int) -> None:
    print("\n== NVML vs torch, device 0 ==")
    pid = os.getpid()
    before_nvml = take_sample(pid=pid, device_index=0, torch_device=0, include_torch=True)
    # A known allocation makes the torch numbers non-trivial and shows NVML tracking it.
    block = torch.empty(alloc_mib * MIB, dtype=torch.uint8, device="cuda:0")
    torch.cuda.synchronize()
    after = take_sample(pid=pid, device_index=0, torch_device=0, include_torch=True)

    _row("", "before alloc", f"after {alloc_mib} MiB")
    for label, key in (
        ("NVML device used (all processes)", "memory_used_mib"),
        ("NVML this process (pid match)", "process_memory_mib"),
        ("NVML device total", "memory_total_mib"),
    ):
        dev_b = (before_nvml["devices"] or [{}])[0]
        dev_a = (after["devices"] or [{}])[0]
        _row(label, _fmt(dev_b.get(key), " MiB"), _fmt(dev_a.get(key), " MiB"))
    for label, key in (
        ("torch allocated", "allocated_mib"),
        ("torch reserved", "reserved_mib"),
        ("torch peak allocated", "peak_allocated_mib"),
    ):
        tm_b = before_nvml["torch_memory"] or {}
        tm_a = after["torch_memory"] or {}
        _row(label, _fmt(tm_b.get(key), " MiB"), _fmt(tm_a.get(key), " MiB"))

    device = (after["devices"] or [{}])[0]
    memory = after["torch_memory"] or {}
    process = device.get("process_memory_mib")
    reserved = memory.get("reserved_mib")
    if process is not None and reserved is not None:
        print(f"  CUDA context + non-torch memory ≈ {process - reserved:.0f} MiB (NVML process − torch reserved)")
    elif process is None:
        print("  NVML has no entry for this pid (a container's PID namespace hides it): process memory n/a")
    torch_uuid, nvml_uuid = memory.get("uuid"), device.get("uuid")
    same = "same device" if torch_uuid and torch_uuid == nvml_uuid else "DIFFERENT or unknown"
    print(f"  torch cuda:0 uuid {torch_uuid}  vs NVML 0 uuid {nvml_uuid}: {same}")
    print(f"  describe(): {describe(after)}")
    del block
    torch.cuda.empty_cache()


def sampler_check(seconds: float = 1.5) -> None:
    print("\n== sampler ==")
    samples: list[dict] = []
    three = threading.Event()

    def collect(sample: dict) -> None:
        samples.append(sample)
        if len(samples) >= 3:
            three.set()

    sampler = GpuSampler(interval_s=0.25, callback=collect, pid=os.getpid()).start()
    started = time.monotonic()
    arrived = three.wait(seconds * 4)
    took = time.monotonic() - started
    stopped_in = time.monotonic()
    sampler.stop()
    stopped_in = time.monotonic() - stopped_in
    print(f"  {len(samples)} samples in {took:.2f} s (3 wanted: {'ok' if arrived else 'NOT REACHED'}), "
          f"errors {sampler.errors}, stop took {stopped_in * 1000:.0f} ms")
    if sampler.last_error:
        print(f"  last error: {sampler.last_error}")
    if samples:
        print(f"  last: {describe(samples[-1])}")


def print_diagnostics() -> None:
    print("\n== diagnostics() ==")
    print(json.dumps(diagnostics(device_index=0, pid=os.getpid()), indent=2, default=str))


def _domains(requested: list[str] | None) -> list[str]:
    if requested:
        return requested
    import nsm.data as data

    ordered = getattr(data, "DOMAINS_IN_ORDER", None)
    return list(ordered) if ordered else sorted(data.DOMAIN_CLASSES)


def _epoch_seconds(result: Any) -> list[float] | None:
    """bench_epochs' answer as per-epoch seconds, whatever shape it comes in."""
    if isinstance(result, (int, float)):
        return [float(result)]
    if isinstance(result, dict):
        for key in ("epoch_times", "epoch_time_s", "seconds_per_epoch", "times"):
            if key in result:
                return _epoch_seconds(result[key])
        return None
    if isinstance(result, (list, tuple)) and all(isinstance(x, (int, float)) for x in result):
        return [float(x) for x in result]
    return None


def epoch_bench(torch: Any, domains: list[str] | None, epochs: int, device: str) -> bool:
    print(f"\n== seconds per epoch ({epochs} epochs, {device}) ==")
    try:
        from nsm.training import bench_epochs
    except ImportError as exc:
        print(f"  skipped: nsm.training.bench_epochs is not available ({exc})")
        return True

    ok = True
    peaks: list[dict] = []

    def watch(sample: dict) -> None:
        peaks.append(sample)

    for domain in _domains(domains):
        reset_peak(device)
        peaks.clear()
        sampler = GpuSampler(interval_s=0.5, callback=watch, pid=os.getpid()).start()
        started = time.perf_counter()
        try:
            result = bench_epochs(domain, epochs, device)
            torch.cuda.synchronize()
        except Exception as exc:  # noqa: BLE001 - report and go on to the next domain
            print(f"  {domain:<12} FAILED: {type(exc).__name__}: {exc}")
            ok = False
            continue
        finally:
            sampler.stop()
        wall = time.perf_counter() - started
        times = _epoch_seconds(result) or [wall / max(epochs, 1)]
        rest = times[1:] or times
        memory = torch_memory(device) or {}
        utils = [d.get("util_gpu_pct") for s in peaks for d in s.get("devices", []) if d.get("util_gpu_pct") is not None]
        print(
            f"  {domain:<12} first {times[0]:7.2f} s  then {statistics.mean(rest):7.2f} s/epoch"
            f"  wall {wall:7.1f} s  peak alloc {_fmt(memory.get('peak_allocated_mib'), ' MiB')}"
            f"  util max {max(utils) if utils else 'n/a'}%"
        )
        if _epoch_seconds(result) is None:
            print(f"  {'':<12} (bench_epochs returned {type(result).__name__}; wall time / epochs shown)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--domains", nargs="*", default=None)
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--alloc-mib", type=int, default=1024)
    parser.add_argument("--skip-bench", action="store_true", help="telemetry checks only")
    args = parser.parse_args(argv)

    session = get_session()
    print(f"NVML: {'available' if session.available else 'unavailable'}"
          + (f" ({session.reason})" if session.reason else "")
          + f", driver {session.driver_version or 'n/a'}, CUDA driver {session.cuda_driver_version or 'n/a'}")

    try:
        import torch
    except ImportError:
        print("no GPU check possible: torch is not installed")
        return 0
    if not torch.cuda.is_available():
        print(f"no CUDA GPU here (torch {torch.__version__}, {describe(take_sample())}): nothing to check")
        return 0

    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {torch.cuda.device_count()} device(s), "
          f"cuda:0 = {torch.cuda.get_device_name(0)}")
    memory_comparison(torch, args.alloc_mib)
    sampler_check()
    print_diagnostics()
    ok = True
    if not args.skip_bench:
        ok = epoch_bench(torch, args.domains, args.epochs, args.device)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
