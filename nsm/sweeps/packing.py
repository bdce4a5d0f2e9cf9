"""How many sweep points to train at once on this machine (`--parallel N|auto`).

`parse_parallel` checks what the user typed; `choose_packing` turns it into a
number of points and a torch thread count for each, with the reason in one
line. It reads the GPU through NVML (torch-free); `probe_device` says what it
saw, and the caller may fill in a CUDA check of its own where NVML is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from nsm.runs import Run

if TYPE_CHECKING:
    from nsm.sweeps.sweep import Sweep

AUTO = "auto"
# A point whose memory nothing has measured yet: a CUDA context (~0.5 GB) and the
# caching allocator's slack around a small model. Generous on purpose: too many
# points at once means an out-of-memory failure, too few only a slower sweep.
DEFAULT_POINT_MB = 3000.0
CONTEXT_MB = 600.0  # what a process costs on the GPU besides its tensors
PEAK_MARGIN = 1.5  # measured peak (allocated) -> what the allocator will reserve
MEMORY_SHARE = 0.9  # of the free memory; the rest for fragmentation and other users
MAX_AUTO = 16
# Small graph models gain little past a few torch threads; a CPU point of its own
# below this many cores leaves none to share, and a process start (torch import,
# seconds) eats the gain.
CPU_THREADS_PER_POINT = 4


class ParallelError(ValueError):
    pass


def parse_parallel(raw: str | int | None) -> int | str:
    """An integer >= 1 or 'auto'; ParallelError naming what is allowed."""
    if raw is None:
        return 1
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        text = str(raw).strip().lower()
        if text == AUTO:
            return AUTO
        try:
            value = int(text)
        except ValueError:
            raise ParallelError(f"--parallel must be a whole number >= 1 or auto (got {raw!r})") from None
    if value < 1:
        raise ParallelError(f"--parallel must be a whole number >= 1 or auto (got {raw!r})")
    return value


@dataclass(frozen=True)
class DeviceFacts:
    """What the machine offers now; every GPU field may be unknown (None)."""

    cores: int
    cuda: bool = False  # the points will train on a CUDA GPU
    gpu_name: str | None = None
    free_mb: float | None = None
    total_mb: float | None = None
    util_pct: float | None = None


@dataclass(frozen=True)
class Packing:
    points: int  # at once
    threads: int | None  # torch threads each point gets (None: leave the engine's default)
    reason: str

    def line(self) -> str:
        each = f", {self.threads} torch thread(s) each" if self.threads else ""
        return f"parallel: {self.points} point(s) at once{each} ({self.reason})"


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _visible_index() -> int:
    """NVML numbers every GPU; torch's cuda:0 is the first of CUDA_VISIBLE_DEVICES."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return int(first) if first.isdigit() else 0


def probe_device(devices: Iterable[str], *, cores: int | None = None) -> DeviceFacts:
    """The device the points train on: CUDA if one asks for it (or for auto) and NVML sees a GPU."""
    cores = cores or usable_cores()
    wants_gpu = any(d in ("auto", "cuda") for d in devices)
    if not wants_gpu:
        return DeviceFacts(cores=cores)
    from nsm.telemetry.nvml import sample_devices

    samples = [s for s in sample_devices() if not s.lost]
    if not samples:
        # A driver without NVML's Python module: a GPU we cannot measure is packed one at a time.
        driver = any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl"))
        return DeviceFacts(cores=cores, cuda=driver)
    index = _visible_index()
    gpu = next((s for s in samples if s.index == index), samples[0])
    return DeviceFacts(
        cores=cores,
        cuda=True,
        gpu_name=gpu.name,
        free_mb=gpu.memory_free_mib,
        total_mb=gpu.memory_total_mib,
        util_pct=gpu.util_gpu_pct,
    )


def measured_point_mb(runs: Iterable[Run]) -> float | None:
    """The largest GPU peak any finished epoch of these runs reported (MiB)."""
    peak = None
    for run in runs:
        try:
            events = run.events()
        except OSError:
            continue
        for e in events:
            value = e.get("gpu_peak_mem_mb") if e.get("type") == "epoch_end" else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                peak = value if peak is None else max(peak, value)
    return peak


def choose_packing(requested: int | str, *, remaining: int, facts: DeviceFacts, measured_mb: float | None = None) -> Packing:
    """N points at once and the threads of each. A given N is kept (capped by the
    points left); auto is sized from free GPU memory and utilisation, or from cores."""
    remaining = max(1, remaining)
    if requested != AUTO:
        n = min(int(requested), remaining)
        why = "as asked" if n == int(requested) else f"{requested} asked, {remaining} point(s) left"
        return Packing(n, _threads(n, facts), why)
    if not facts.cuda:
        n = max(1, min(remaining, facts.cores // CPU_THREADS_PER_POINT, MAX_AUTO))
        why = f"auto: CPU, {facts.cores} core(s), about {CPU_THREADS_PER_POINT} threads a point"
        return Packing(n, _threads(n, facts) if n > 1 else None, why)
    per_point = measured_mb * PEAK_MARGIN + CONTEXT_MB if measured_mb else DEFAULT_POINT_MB
    source = f"measured peak {measured_mb:.0f} MiB" if measured_mb else "no peak measured yet"
    gpu = facts.gpu_name or "GPU"
    if facts.free_mb is None:
        by_memory = 1
        mem_why = "free memory unknown"
    else:
        by_memory = int(facts.free_mb * MEMORY_SHARE // per_point)
        mem_why = f"{facts.free_mb / 1024:.0f} GiB free / ~{per_point / 1024:.1f} GiB a point ({source})"
    n = min(by_memory, facts.cores, remaining, MAX_AUTO)
    util_why = ""
    if facts.util_pct is not None and facts.util_pct > 0:
        # Another job keeps the GPU busy: its share is not ours to pack into.
        idle = max(0.0, 1.0 - facts.util_pct / 100.0)
        n = min(n, int(MAX_AUTO * idle))
        util_why = f", {facts.util_pct:.0f}% busy"
    n = max(1, n)
    return Packing(n, _threads(n, facts), f"auto: {gpu}, {mem_why}{util_why}, {facts.cores} cores")


def _threads(n: int, facts: DeviceFacts) -> int | None:
    """Torch threads per point so that N points do not oversubscribe the cores."""
    if n <= 1:
        return None
    return max(1, facts.cores // n)


def packing_for(sweep: "Sweep", requested: int | str, *, retry_failed: bool = False, facts: DeviceFacts | None = None) -> Packing:
    """The packing for the points a start or resume of `sweep` would run now."""
    from nsm.sweeps.status import snapshot
    from nsm.sweeps.sweep import FAILED, PENDING, STOPPED

    snap = snapshot(sweep)
    wanted = (PENDING, STOPPED, FAILED) if retry_failed else (PENDING, STOPPED)
    todo = [v for v in snap.points if v.state in wanted]
    if requested != AUTO:
        return choose_packing(requested, remaining=len(todo), facts=facts or DeviceFacts(cores=usable_cores()))
    if facts is None:
        facts = probe_device(str(v.point.config.get("device", "auto")) for v in todo)
    measured = measured_point_mb(v.run for v in snap.points if not v.missing) if facts.cuda else None
    return choose_packing(AUTO, remaining=len(todo), facts=facts, measured_mb=measured)
