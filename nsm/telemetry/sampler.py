"""A background thread that samples the GPU at a fixed interval, and a one-line summary."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from nsm.telemetry.sample import take_sample

Sample = dict[str, Any]


class GpuSampler:
    """Calls `callback(sample_dict)` every `interval_s` seconds from a daemon thread.

    The first sample comes as soon as the thread starts. Exceptions raised by the
    sampling or the callback are counted (`errors`, `last_error`) and never end the
    thread. When NVML is unavailable one sample saying so is delivered and the
    thread ends: nothing would change by asking again.

    `sample_fn` replaces `take_sample` (tests, or a caller that wants other data).
    """

    def __init__(
        self,
        interval_s: float = 1.0,
        callback: Callable[[Sample], Any] | None = None,
        pid: int | None = None,
        *,
        device_index: int | None = None,
        torch_device: Any = None,
        include_torch: bool | None = None,
        sample_fn: Callable[[], Sample] | None = None,
        name: str = "gpu-sampler",
    ):
        if callback is None:
            raise TypeError("GpuSampler needs a callback")
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self.callback = callback
        self.pid = pid
        self.device_index = device_index
        self.torch_device = torch_device
        self.include_torch = include_torch
        self._sample_fn = sample_fn
        self._name = name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_sample: Sample | None = None
        self.unavailable = False

    # -- control -------------------------------------------------------------------

    def start(self) -> "GpuSampler":
        """Start sampling; a no-op while already running."""
        with self._lock:
            if self.running and not self._stop.is_set():
                return self
            # A fresh event per run, so a thread from a previous stop() cannot be revived.
            self._stop = threading.Event()
            self.unavailable = False
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name=self._name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop and wait up to `timeout` s for the thread; True once it has ended."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def __enter__(self) -> "GpuSampler":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- thread --------------------------------------------------------------------

    def _take(self) -> Sample:
        if self._sample_fn is not None:
            return self._sample_fn()
        return take_sample(
            pid=self.pid,
            device_index=self.device_index,
            torch_device=self.torch_device,
            include_torch=self.include_torch,
        )

    def _record_error(self, where: str, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{where}: {type(exc).__name__}: {exc}"

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            sample: Sample | None = None
            try:
                sample = self._take()
            except Exception as exc:  # noqa: BLE001 - a bad sample must not end sampling
                self._record_error("sample", exc)
            if sample is not None and not stop.is_set():
                self.last_sample = sample
                self.samples += 1
                try:
                    self.callback(sample)
                except Exception as exc:  # noqa: BLE001 - nor a bad callback
                    self._record_error("callback", exc)
                if isinstance(sample, dict) and sample.get("available") is False:
                    self.unavailable = True
                    return
            elapsed = time.monotonic() - started
            # Never less than a tenth of the interval, so slow sampling cannot spin.
            stop.wait(max(self.interval_s - elapsed, self.interval_s / 10))


# -- one-line summary ----------------------------------------------------------------


def _gib(mib: float) -> str:
    return f"{mib / 1024:.1f}"


def _int(value: Any) -> str:
    return f"{round(float(value))}"


def _pick_device(devices: list[dict[str, Any]], device_index: int | None) -> dict[str, Any] | None:
    if device_index is not None:
        return next((d for d in devices if d.get("index") == device_index), None)
    # With a pid, the device that process actually uses is the interesting one.
    for device in devices:
        if (device.get("process_memory_mib") or 0) > 0:
            return device
    return devices[0] if devices else None


def describe(sample: Sample | None, device_index: int | None = None) -> str:
    """One human line, e.g. "NVIDIA H100 · 12.3/80.0 GiB (15%) · util 87% · 64°C · 310/700 W".

    Missing readings are left out; "GPU: n/a (reason)" when NVML is unavailable.
    """
    if not isinstance(sample, dict) or not sample:
        return "GPU: n/a"
    if not sample.get("available"):
        reason = sample.get("reason")
        return f"GPU: n/a ({reason})" if reason else "GPU: n/a"
    devices = [d for d in (sample.get("devices") or []) if isinstance(d, dict)]
    device = _pick_device(devices, device_index)
    if device is None:
        return "GPU: none found" if not devices else f"GPU {device_index}: not found"

    label = device.get("name") or f"GPU {device.get('index', '?')}"
    if device.get("lost"):
        return f"{label}: lost (GPU {device.get('index', '?')} stopped answering)"
    parts = [label]

    used, total = device.get("memory_used_mib"), device.get("memory_total_mib")
    if used is not None and total:
        parts.append(f"{_gib(used)}/{_gib(total)} GiB ({_int(100 * used / total)}%)")
    elif used is not None:
        parts.append(f"{_gib(used)} GiB used")

    if device.get("util_gpu_pct") is not None:
        parts.append(f"util {_int(device['util_gpu_pct'])}%")
    if device.get("temperature_c") is not None:
        parts.append(f"{_int(device['temperature_c'])}°C")

    power, limit = device.get("power_w"), device.get("power_limit_w")
    if power is not None and limit:
        parts.append(f"{_int(power)}/{_int(limit)} W")
    elif power is not None:
        parts.append(f"{_int(power)} W")

    others = len(devices) - 1
    if others > 0 and device_index is None:
        parts.append(f"+{others} GPU" + ("s" if others > 1 else ""))
    return " · ".join(parts)
