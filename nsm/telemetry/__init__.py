"""GPU telemetry: NVML readings plus torch's own view of CUDA, every field optional.

Importing this package imports neither torch nor pynvml; both are loaded by the
functions that need them, so the TUI can import it at start-up for free.
"""

from nsm.telemetry.nvml import (
    DeviceSample,
    NvmlSession,
    format_cuda_version,
    get_session,
    reset_session,
    sample_devices,
)
from nsm.telemetry.sample import SAMPLE_KEYS, GpuSample, diagnostics, take_sample
from nsm.telemetry.sampler import GpuSampler, describe
from nsm.telemetry.torch_stats import (
    CacheCleared,
    clear_cache,
    reset_peak,
    torch_flags,
    torch_memory,
    versions,
)

__all__ = [
    "SAMPLE_KEYS",
    "CacheCleared",
    "DeviceSample",
    "GpuSample",
    "GpuSampler",
    "NvmlSession",
    "clear_cache",
    "describe",
    "diagnostics",
    "format_cuda_version",
    "get_session",
    "reset_peak",
    "reset_session",
    "sample_devices",
    "take_sample",
    "torch_flags",
    "torch_memory",
    "versions",
]
