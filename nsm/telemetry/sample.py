"""One GPU sample as plain data, and the diagnostics report.

A sample travels inside `gpu` events (files, Modal), so it is made of JSON types
only, and readers must accept any field being null or missing.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nsm.telemetry import torch_stats
from nsm.telemetry.nvml import get_session

SAMPLE_KEYS = ("time", "available", "reason", "devices", "torch_memory")


@dataclass
class GpuSample:
    time: float
    available: bool
    reason: str = ""
    devices: list[dict[str, Any]] = field(default_factory=list)
    torch_memory: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "GpuSample":
        """Tolerant of missing, extra or null keys (events written by other versions)."""
        data = data if isinstance(data, dict) else {}
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        devices = values.get("devices")
        return cls(
            time=float(values.get("time") or 0.0),
            available=bool(values.get("available")),
            reason=str(values.get("reason") or ""),
            devices=[d for d in devices if isinstance(d, dict)] if isinstance(devices, list) else [],
            torch_memory=values.get("torch_memory") if isinstance(values.get("torch_memory"), dict) else None,
        )


def _torch_in_use() -> bool:
    return "torch" in sys.modules


def take_sample(
    pid: int | None = None,
    device_index: int | None = None,
    *,
    torch_device: Any = None,
    include_torch: bool | None = None,
) -> dict[str, Any]:
    """A JSON-ready sample of NVML readings plus this process's torch allocator state.

    `device_index` (NVML numbering) limits the sample to one device. torch memory
    is read only when `include_torch` is true, or — by default — when this process
    has already imported torch: a viewer must not import torch just to show
    numbers that belong to another process.
    """
    session = get_session()
    available = session.available
    devices = [d.to_dict() for d in session.sample_devices(pid=pid, device_index=device_index)]
    if include_torch is None:
        include_torch = _torch_in_use()
    memory = torch_stats.torch_memory(torch_device) if include_torch else None
    return GpuSample(
        time=time.time(),
        available=available,
        reason=session.reason,
        devices=devices,
        torch_memory=memory,
    ).to_dict()


def _pct(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 1)


def diagnostics(device_index: int = 0, pid: int | None = None) -> dict[str, Any]:
    """Everything a diagnostics screen shows; any value may be None.

    Memory: total/used/free from NVML (the whole device, all processes),
    allocated/reserved/peak from this process's torch allocator. `device_index`
    is used for both, and the two numberings agree unless CUDA_VISIBLE_DEVICES or
    CUDA_DEVICE_ORDER remap torch's (compare `torch_memory["uuid"]` with the device's).
    Imports torch (for flags and its CUDA build), so call it off the UI thread.
    """
    session = get_session()
    available = session.available
    devices = [d.to_dict() for d in session.sample_devices(pid=pid)]
    device = next((d for d in devices if d.get("index") == device_index), None)
    memory_t = torch_stats.torch_memory(device_index)
    flags = torch_stats.torch_flags()
    libs = torch_stats.versions()
    cuda_available = _cuda_available()

    total = device.get("memory_total_mib") if device else None
    used = device.get("memory_used_mib") if device else None
    free = device.get("memory_free_mib") if device else None
    if free is None and total is not None and used is not None:
        free = round(total - used, 1)
    allocated = memory_t.get("allocated_mib") if memory_t else None
    reserved = memory_t.get("reserved_mib") if memory_t else None
    peak = memory_t.get("peak_allocated_mib") if memory_t else None

    return {
        "time": time.time(),
        "available": available,
        "reason": session.reason,
        "device_count": len(devices) if available else None,
        "device": (
            {
                "index": device.get("index"),
                "name": device.get("name"),
                "uuid": device.get("uuid"),
                "lost": device.get("lost"),
            }
            if device
            else None
        ),
        "driver_version": session.driver_version,
        "cuda_driver_version": session.cuda_driver_version,
        "torch_cuda_version": libs.get("torch_cuda"),
        "cuda_available": cuda_available,
        "memory": {
            "total_mib": total,
            "used_mib": used,
            "free_mib": free,
            "allocated_mib": allocated,
            "reserved_mib": reserved,
            "peak_allocated_mib": peak,
            "used_pct": _pct(used, total),
            "free_pct": _pct(free, total),
            "allocated_pct": _pct(allocated, total),
            "reserved_pct": _pct(reserved, total),
            "peak_allocated_pct": _pct(peak, total),
        },
        "torch_memory": memory_t,
        "flags": flags,
        "versions": libs,
        "devices": devices,
    }


def _cuda_available() -> bool | None:
    try:
        import torch
    except ImportError:
        return None
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False
