"""A fake of every pynvml call nsm.telemetry makes, raising pynvml's real exception classes."""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

import pynvml

MIB = 1024 * 1024

# Every pynvml function the wrapper may call; test_fake_covers_every_call keeps this honest.
FAKE_FUNCTIONS = (
    "nvmlInit",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetCudaDriverVersion",
    "nvmlSystemGetCudaDriverVersion_v2",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetTemperatureV",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetFanSpeed",
    "nvmlDeviceGetComputeRunningProcesses",
)


def not_supported() -> Exception:
    return pynvml.NVMLError_NotSupported()


@dataclass
class FakeDevice:
    """One board. A value that is an exception is raised by the matching call."""

    name: Any = b"NVIDIA H100 80GB HBM3"  # bytes, as older pynvml returned
    uuid: Any = b"GPU-11111111-2222-3333-4444-555555555555"
    memory_used: Any = 12 * 1024 * MIB
    memory_total: Any = 80 * 1024 * MIB
    memory_free: Any = 68 * 1024 * MIB
    util_gpu: Any = 87
    util_memory: Any = 40
    temperature: Any = 64
    temperature_v: Any = None  # None: the V call is absent from this driver
    power_mw: Any = 310_500
    enforced_limit_mw: Any = 700_000
    management_limit_mw: Any = 700_000
    fan: Any = field(default_factory=not_supported)  # passively cooled, like an H100
    processes: Any = field(default_factory=list)  # [(pid, bytes or None)]
    handle_error: Exception | None = None
    lost: bool = False  # every call about this device raises NVMLError_GpuIsLost
    memory_error: Exception | None = None
    utilization_error: Exception | None = None


class FakeNvml(types.ModuleType):
    """Stands in for the `pynvml` module."""

    def __init__(
        self,
        devices: list[FakeDevice] | None = None,
        *,
        init_error: Exception | None = None,
        driver: Any = b"550.54.15",
        cuda: Any = 12040,
        count_error: Exception | None = None,
        missing: tuple[str, ...] = (),
    ):
        super().__init__("pynvml")
        self.devices = list(devices) if devices is not None else [FakeDevice()]
        self.init_error = init_error
        self.driver = driver
        self.cuda = cuda
        self.count_error = count_error
        self.calls: list[tuple[str, Any]] = []
        self.initialised = 0
        # The real exception hierarchy, so `except NVMLError_*` in the code under test is exercised.
        for name in dir(pynvml):
            if name.startswith("NVMLError"):
                setattr(self, name, getattr(pynvml, name))
        self.NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
        for name in FAKE_FUNCTIONS:
            if name not in missing:
                setattr(self, name, self._recorder(name, getattr(self, "_" + name)))

    def _recorder(self, name: str, fn: Any) -> Any:
        def call(*args: Any) -> Any:
            self.calls.append((name, args))
            return fn(*args)

        return call

    def calls_named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for called, args in self.calls if called == name]

    # -- library ---------------------------------------------------------------------

    @staticmethod
    def _give(value: Any) -> Any:
        if isinstance(value, BaseException):
            raise value
        return value

    def _nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.initialised += 1

    def _nvmlShutdown(self) -> None:
        self._require_init()
        self.initialised -= 1

    def _require_init(self) -> None:
        if self.initialised <= 0:
            raise pynvml.NVMLError_Uninitialized()

    def _nvmlSystemGetDriverVersion(self) -> Any:
        self._require_init()
        return self._give(self.driver)

    def _nvmlSystemGetCudaDriverVersion(self) -> Any:
        self._require_init()
        return self._give(self.cuda)

    def _nvmlSystemGetCudaDriverVersion_v2(self) -> Any:
        self._require_init()
        return self._give(self.cuda)

    def _nvmlDeviceGetCount(self) -> int:
        self._require_init()
        if self.count_error is not None:
            raise self.count_error
        return len(self.devices)

    # -- devices ---------------------------------------------------------------------

    def _nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        self._require_init()
        if not 0 <= index < len(self.devices):
            raise pynvml.NVMLError_InvalidArgument()
        device = self.devices[index]
        if device.lost:
            raise pynvml.NVMLError_GpuIsLost()
        if device.handle_error is not None:
            raise device.handle_error
        return types.SimpleNamespace(index=index)

    def _device(self, handle: Any) -> FakeDevice:
        self._require_init()
        device = self.devices[handle.index]
        if device.lost:
            raise pynvml.NVMLError_GpuIsLost()
        return device

    def _nvmlDeviceGetName(self, handle: Any) -> Any:
        return self._give(self._device(handle).name)

    def _nvmlDeviceGetUUID(self, handle: Any) -> Any:
        return self._give(self._device(handle).uuid)

    def _nvmlDeviceGetMemoryInfo(self, handle: Any, version: Any = None) -> Any:
        device = self._device(handle)
        if device.memory_error is not None:
            raise device.memory_error
        return types.SimpleNamespace(
            used=self._give(device.memory_used),
            total=self._give(device.memory_total),
            free=self._give(device.memory_free),
        )

    def _nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        device = self._device(handle)
        if device.utilization_error is not None:
            raise device.utilization_error
        return types.SimpleNamespace(gpu=device.util_gpu, memory=device.util_memory)

    def _nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> Any:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._give(self._device(handle).temperature)

    def _nvmlDeviceGetTemperatureV(self, handle: Any, sensor: int, version: Any = None) -> Any:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        device = self._device(handle)
        if device.temperature_v is None:
            raise pynvml.NVMLError_FunctionNotFound()
        return self._give(device.temperature_v)

    def _nvmlDeviceGetPowerUsage(self, handle: Any) -> Any:
        return self._give(self._device(handle).power_mw)

    def _nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> Any:
        return self._give(self._device(handle).enforced_limit_mw)

    def _nvmlDeviceGetPowerManagementLimit(self, handle: Any) -> Any:
        return self._give(self._device(handle).management_limit_mw)

    def _nvmlDeviceGetFanSpeed(self, handle: Any) -> Any:
        return self._give(self._device(handle).fan)

    def _nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> Any:
        processes = self._give(self._device(handle).processes)
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in processes]
