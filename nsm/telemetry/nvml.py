"""A thin, failure-proof wrapper around NVML (the `pynvml` module of nvidia-ml-py).

Every reading is optional: a field NVML cannot give (not supported on this board,
no permission, driver hiccup) is None, never an exception. A device whose calls
raise NVMLError_GpuIsLost is reported with `lost=True` and no further calls are
made to it in that sample.

`pynvml` is imported lazily, so importing this module costs nothing on a machine
without it.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Callable

MIB = 1024 * 1024

# NVML_TEMPERATURE_GPU; a literal so a fake module need not define the constant.
_TEMPERATURE_GPU = 0


def _import_pynvml() -> Any:
    """Return the pynvml module; tests replace this to install a fake."""
    import pynvml

    return pynvml


def _text(value: Any) -> str | None:
    # Older pynvml releases return bytes for names, UUIDs and versions.
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace").rstrip("\x00").strip()
    return str(value).strip()


def _mib(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return round(float(value) / MIB, 1)
    except (TypeError, ValueError):
        return None


def _watts(milliwatts: Any) -> float | None:
    if milliwatts is None:
        return None
    try:
        return round(float(milliwatts) / 1000.0, 1)
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def format_cuda_version(value: Any) -> str | None:
    """NVML encodes the CUDA driver version as 1000*major + 10*minor (12040 -> "12.4")."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    if number <= 0:
        return None
    return f"{number // 1000}.{(number % 1000) // 10}"


@dataclass
class DeviceSample:
    """One device's readings; every field but `index` may be None."""

    index: int
    name: str | None = None
    uuid: str | None = None
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    memory_free_mib: float | None = None
    util_gpu_pct: float | None = None
    util_memory_pct: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    fan_pct: float | None = None
    process_memory_mib: float | None = None
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    lost: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _DeviceReader:
    """Runs NVML calls for one device, turning each failure into None."""

    def __init__(self, nvml: Any, gpu_lost: type[BaseException] | None):
        self._nvml = nvml
        self._gpu_lost = gpu_lost
        self.lost = False

    def call(self, name: str, *args: Any) -> Any:
        if self.lost:
            return None
        fn = getattr(self._nvml, name, None)
        if fn is None:
            # An older nvidia-ml-py may lack the binding altogether.
            return None
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - any failure is just "unknown"
            if self._gpu_lost is not None and isinstance(exc, self._gpu_lost):
                self.lost = True
            return None

    def first(self, *calls: tuple[Any, ...]) -> Any:
        """The first call that answers; later ones are fallbacks for older drivers."""
        for name, *args in calls:
            value = self.call(name, *args)
            if value is not None or self.lost:
                return value
        return None


class NvmlSession:
    """NVML initialised once; `available` and `reason` say whether readings can come.

    `module` injects a pynvml-compatible object (tests); by default the real one
    is imported on first use.
    """

    def __init__(self, module: Any = None):
        self._module = module
        self._lock = threading.Lock()
        self._initialised = False
        self._available = False
        self._reason = ""
        self._nvml: Any = None
        self._driver_version: str | None = None
        self._cuda_driver_version: str | None = None

    # -- lifecycle -----------------------------------------------------------------

    def init(self) -> bool:
        """Initialise NVML once (thread-safe); returns `available`."""
        with self._lock:
            if not self._initialised:
                self._initialised = True
                self._available, self._reason = self._init_locked()
            return self._available

    def _init_locked(self) -> tuple[bool, str]:
        try:
            nvml = self._module if self._module is not None else _import_pynvml()
        except ImportError:
            return False, "nvidia-ml-py (pynvml) not installed"
        try:
            nvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - any init failure means "unavailable"
            return False, _init_failure_reason(nvml, exc)
        self._nvml = nvml
        reader = _DeviceReader(nvml, getattr(nvml, "NVMLError_GpuIsLost", None))
        self._driver_version = _text(reader.call("nvmlSystemGetDriverVersion"))
        self._cuda_driver_version = format_cuda_version(
            reader.first(
                ("nvmlSystemGetCudaDriverVersion",),
                ("nvmlSystemGetCudaDriverVersion_v2",),
            )
        )
        return True, ""

    def close(self) -> None:
        """Shut NVML down; a later call initialises it again."""
        with self._lock:
            if self._available and self._nvml is not None:
                try:
                    self._nvml.nvmlShutdown()
                except Exception:  # noqa: BLE001 - nothing useful to do about it
                    pass
            self._initialised = False
            self._available = False
            self._reason = ""
            self._nvml = None

    # -- state ---------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return self.init()

    @property
    def reason(self) -> str:
        self.init()
        return self._reason

    @property
    def driver_version(self) -> str | None:
        self.init()
        return self._driver_version

    @property
    def cuda_driver_version(self) -> str | None:
        self.init()
        return self._cuda_driver_version

    def device_count(self) -> int | None:
        if not self.init():
            return None
        reader = _DeviceReader(self._nvml, None)
        count = reader.call("nvmlDeviceGetCount")
        return int(count) if isinstance(count, int) else None

    # -- readings ------------------------------------------------------------------

    def sample_devices(
        self, pid: int | None = None, device_index: int | None = None
    ) -> list[DeviceSample]:
        """Readings of every device (or only `device_index`); [] when NVML is unavailable.

        `pid` selects whose memory goes into `process_memory_mib`. Inside a
        container NVML may report host PIDs, in which case no process matches and
        the field stays None.
        """
        if not self.init():
            return []
        count = self.device_count()
        if count is None:
            return []
        if device_index is not None:
            indices = [device_index] if 0 <= device_index < count else []
        else:
            indices = list(range(count))
        return [self._sample_device(index, pid) for index in indices]

    def _sample_device(self, index: int, pid: int | None) -> DeviceSample:
        nvml = self._nvml
        reader = _DeviceReader(nvml, getattr(nvml, "NVMLError_GpuIsLost", None))
        sample = DeviceSample(
            index=index,
            driver_version=self._driver_version,
            cuda_driver_version=self._cuda_driver_version,
        )
        handle = reader.call("nvmlDeviceGetHandleByIndex", index)
        if handle is None:
            # Without a handle nothing else can be asked; a lost GPU already says so.
            sample.lost = reader.lost
            return sample

        sample.name = _text(reader.call("nvmlDeviceGetName", handle))
        sample.uuid = _text(reader.call("nvmlDeviceGetUUID", handle))

        memory = reader.call("nvmlDeviceGetMemoryInfo", handle)
        if memory is not None:
            sample.memory_used_mib = _mib(getattr(memory, "used", None))
            sample.memory_total_mib = _mib(getattr(memory, "total", None))
            sample.memory_free_mib = _mib(getattr(memory, "free", None))

        rates = reader.call("nvmlDeviceGetUtilizationRates", handle)
        if rates is not None:
            sample.util_gpu_pct = _number(getattr(rates, "gpu", None))
            sample.util_memory_pct = _number(getattr(rates, "memory", None))

        sample.temperature_c = _number(
            reader.first(
                ("nvmlDeviceGetTemperature", handle, _TEMPERATURE_GPU),
                # The legacy call is slated for removal; its successor needs a newer driver.
                ("nvmlDeviceGetTemperatureV", handle, _TEMPERATURE_GPU),
            )
        )
        sample.power_w = _watts(reader.call("nvmlDeviceGetPowerUsage", handle))
        sample.power_limit_w = _watts(
            reader.first(
                ("nvmlDeviceGetEnforcedPowerLimit", handle),
                ("nvmlDeviceGetPowerManagementLimit", handle),
            )
        )
        sample.fan_pct = _number(reader.call("nvmlDeviceGetFanSpeed", handle))

        if pid is not None:
            processes = reader.call("nvmlDeviceGetComputeRunningProcesses", handle)
            sample.process_memory_mib = _process_memory_mib(processes, pid)

        sample.lost = reader.lost
        return sample


def _process_memory_mib(processes: Any, pid: int) -> float | None:
    # A process may appear more than once (e.g. several MIG instances); its memory adds up.
    # No match means "unknown", not zero: NVML may see host PIDs from inside a container.
    if not processes:
        return None
    total = 0
    matched = False
    for process in processes:
        if getattr(process, "pid", None) != pid:
            continue
        used = getattr(process, "usedGpuMemory", None)
        if used is None:
            continue
        try:
            total += int(used)
        except (TypeError, ValueError):
            continue
        matched = True
    return _mib(total) if matched else None


def _init_failure_reason(nvml: Any, exc: BaseException) -> str:
    for class_name, reason in (
        ("NVMLError_LibraryNotFound", "no NVIDIA driver"),
        ("NVMLError_DriverNotLoaded", "no NVIDIA driver (driver not loaded)"),
        ("NVMLError_NoPermission", "NVML init failed: no permission"),
    ):
        cls = getattr(nvml, class_name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return reason
    detail = _safe_str(exc) or type(exc).__name__
    return f"NVML init failed: {detail}"


def _safe_str(exc: BaseException) -> str:
    # NVMLError.__str__ may itself call into the (possibly broken) library.
    try:
        return str(exc)
    except Exception:  # noqa: BLE001
        return ""


_session: NvmlSession | None = None
_session_lock = threading.Lock()


def get_session() -> NvmlSession:
    """The process-wide NVML session (created, not initialised, on first call)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = NvmlSession()
        return _session


def reset_session(factory: Callable[[], NvmlSession] | None = None) -> None:
    """Drop the shared session so the next use re-initialises NVML (retry; tests)."""
    global _session
    with _session_lock:
        old, _session = _session, (factory() if factory is not None else None)
    if old is not None:
        old.close()


def sample_devices(pid: int | None = None, device_index: int | None = None) -> list[DeviceSample]:
    """Readings of every device through the shared session; [] without NVML."""
    return get_session().sample_devices(pid=pid, device_index=device_index)
