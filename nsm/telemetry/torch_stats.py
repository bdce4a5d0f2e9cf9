"""What torch itself knows about CUDA memory, numerics flags and library versions.

torch is imported inside the functions: the TUI imports `nsm.telemetry` and must
start without paying for torch. None of these calls creates a CUDA context: memory
statistics of a process that never touched CUDA are simply zero.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any, NamedTuple

MIB = 1024 * 1024


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _cuda_available(torch: Any) -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken CUDA install reads as "no CUDA"
        return False


def _device_index(torch: Any, device: Any) -> int | None:
    if device is None:
        # current_device() would initialise CUDA; an uninitialised process has device 0 current.
        return torch.cuda.current_device() if torch.cuda.is_initialized() else 0
    if isinstance(device, int):
        return device
    try:
        dev = torch.device(device)
    except (TypeError, RuntimeError, ValueError):
        return None
    if dev.type != "cuda":
        return None
    return dev.index if dev.index is not None else _device_index(torch, None)


def torch_memory(device: Any = None) -> dict[str, Any] | None:
    """torch's CUDA allocator statistics for `device` (index, "cuda:1", torch.device).

    None when torch or CUDA is unavailable, or `device` is not a CUDA device.
    Keys: device, uuid (None until CUDA is initialised), allocated_mib,
    reserved_mib, peak_allocated_mib, peak_reserved_mib, initialized.
    """
    torch = _torch()
    if torch is None or not _cuda_available(torch):
        return None
    try:
        index = _device_index(torch, device)
        if index is None:
            return None
        initialized = bool(torch.cuda.is_initialized())
        uuid = None
        if initialized:
            uuid = _torch_uuid(torch, index)
        # These read empty statistics (zeros) until CUDA is initialised, without initialising it.
        return {
            "device": index,
            "uuid": uuid,
            "initialized": initialized,
            "allocated_mib": _mib(torch.cuda.memory_allocated(index)),
            "reserved_mib": _mib(torch.cuda.memory_reserved(index)),
            "peak_allocated_mib": _mib(torch.cuda.max_memory_allocated(index)),
            "peak_reserved_mib": _mib(torch.cuda.max_memory_reserved(index)),
        }
    except Exception:  # noqa: BLE001 - telemetry must never take the caller down
        return None


def _torch_uuid(torch: Any, index: int) -> str | None:
    # Lets a reader match torch's index with NVML's, which differ under CUDA_VISIBLE_DEVICES.
    try:
        uuid = str(torch.cuda.get_device_properties(index).uuid)
    except Exception:  # noqa: BLE001
        return None
    return uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"


def _mib(value: Any) -> float:
    return round(float(value) / MIB, 1)


def torch_flags() -> dict[str, Any]:
    """Numerics switches that change speed or results; a value is None when unknown."""
    flags: dict[str, Any] = {
        "tf32_matmul": None,
        "tf32_cudnn": None,
        "float32_matmul_precision": None,
        "cudnn_benchmark": None,
        "cudnn_deterministic": None,
        "cudnn_enabled": None,
        "cudnn_available": None,
        "cudnn_version": None,
        "deterministic_algorithms": None,
    }
    torch = _torch()
    if torch is None:
        return flags
    backends = torch.backends
    readers = {
        "tf32_matmul": lambda: bool(backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": lambda: bool(backends.cudnn.allow_tf32),
        "float32_matmul_precision": lambda: str(torch.get_float32_matmul_precision()),
        "cudnn_benchmark": lambda: bool(backends.cudnn.benchmark),
        "cudnn_deterministic": lambda: bool(backends.cudnn.deterministic),
        "cudnn_enabled": lambda: bool(backends.cudnn.enabled),
        "cudnn_available": lambda: bool(backends.cudnn.is_available()),
        "cudnn_version": lambda: backends.cudnn.version(),
        "deterministic_algorithms": lambda: bool(torch.are_deterministic_algorithms_enabled()),
    }
    for key, read in readers.items():
        try:
            flags[key] = read()
        except Exception:  # noqa: BLE001 - older torch may lack a switch
            flags[key] = None
    return flags


def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        except Exception:  # noqa: BLE001 - a broken install's metadata
            continue
    return None


def versions() -> dict[str, Any]:
    """Library and driver versions; anything not installed is None.

    Versions come from package metadata where possible so that torch_geometric and
    numpy are not imported just to be named; torch is imported for its CUDA build.
    """
    from nsm.telemetry.nvml import get_session

    torch = _torch()
    torch_version = getattr(torch, "__version__", None) if torch is not None else None
    torch_cuda = None
    if torch is not None:
        torch_cuda = getattr(getattr(torch, "version", None), "cuda", None)
    session = get_session()
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": sys.platform,
        "torch": str(torch_version) if torch_version is not None else _dist_version("torch"),
        "torch_cuda": torch_cuda,
        "torch_geometric": _dist_version("torch_geometric", "torch-geometric"),
        "numpy": _dist_version("numpy"),
        # The old "pynvml" distribution is a wrapper around nvidia-ml-py; prefer the real one.
        "nvidia_ml_py": _dist_version("nvidia-ml-py", "pynvml"),
        "driver": session.driver_version,
        "cuda_driver": session.cuda_driver_version,
    }


class CacheCleared(NamedTuple):
    freed_bytes: int
    message: str


def clear_cache() -> CacheCleared:
    """Hand torch's unused cached CUDA blocks back to the driver.

    Only this process's cache is touched: called from a viewer, it cannot free a
    training process's memory.
    """
    torch = _torch()
    if torch is None:
        return CacheCleared(0, "torch not installed: nothing to clear")
    if not _cuda_available(torch):
        return CacheCleared(0, "no CUDA device: nothing to clear")
    try:
        if not torch.cuda.is_initialized():
            return CacheCleared(0, "CUDA not initialised in this process: nothing cached")
        before = _total_reserved(torch)
        torch.cuda.empty_cache()
        freed = max(0, before - _total_reserved(torch))
    except Exception as exc:  # noqa: BLE001
        return CacheCleared(0, f"could not clear the CUDA cache: {exc}")
    return CacheCleared(freed, f"freed {freed / MIB:.1f} MiB of cached CUDA memory")


def _total_reserved(torch: Any) -> int:
    # empty_cache() releases every device's cache, so measure all of them.
    return sum(int(torch.cuda.memory_reserved(i)) for i in range(torch.cuda.device_count()))


def reset_peak(device: Any = None) -> bool:
    """Restart the peak-memory counters; False when there is nothing to reset."""
    torch = _torch()
    if torch is None or not _cuda_available(torch):
        return False
    try:
        if not torch.cuda.is_initialized():
            return False
        index = _device_index(torch, device)
        if index is None:
            return False
        torch.cuda.reset_peak_memory_stats(index)
    except Exception:  # noqa: BLE001
        return False
    return True
