from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pynvml
import pytest
from .fake_pynvml import FAKE_FUNCTIONS, MIB, FakeDevice, FakeNvml

from nsm.telemetry import nvml as nvml_mod
from nsm.telemetry.nvml import DeviceSample, NvmlSession, format_cuda_version, sample_devices


def test_fake_covers_every_call():
    source = Path(nvml_mod.__file__).read_text()
    used = set(re.findall(r'"(nvml[A-Za-z0-9_]+)"', source))
    assert used, "no NVML calls found: the pattern above is stale"
    assert used <= set(FAKE_FUNCTIONS), used - set(FAKE_FUNCTIONS)
    # ...and the fake only imitates calls that the real binding has.
    assert all(hasattr(pynvml, name) for name in FAKE_FUNCTIONS)


def test_full_readings_are_converted(h100):
    (device,) = sample_devices(pid=4242)
    assert device == DeviceSample(
        index=0,
        name="NVIDIA H100 80GB HBM3",
        uuid="GPU-11111111-2222-3333-4444-555555555555",
        memory_used_mib=12288.0,
        memory_total_mib=81920.0,
        memory_free_mib=69632.0,
        util_gpu_pct=87,
        util_memory_pct=40,
        temperature_c=64,
        power_w=310.5,
        power_limit_w=700.0,
        fan_pct=None,  # NotSupported on a passively cooled board
        process_memory_mib=10240.0,
        driver_version="550.54.15",
        cuda_driver_version="12.4",
        lost=False,
    )
    json.dumps(device.to_dict())


def test_str_returns_of_newer_pynvml(install_nvml):
    install_nvml(FakeNvml([FakeDevice(name="NVIDIA A100", uuid="GPU-abc")], driver="560.1"))
    (device,) = sample_devices()
    assert (device.name, device.uuid, device.driver_version) == ("NVIDIA A100", "GPU-abc", "560.1")


def test_bytes_with_trailing_nul_are_cleaned(install_nvml):
    install_nvml(FakeNvml([FakeDevice(name=b"Tesla T4\x00")]))
    assert sample_devices()[0].name == "Tesla T4"


@pytest.mark.parametrize(
    "error",
    [
        pynvml.NVMLError_NotSupported(),
        pynvml.NVMLError_NoPermission(),
        pynvml.NVMLError_Unknown(),
        pynvml.NVMLError_Timeout(),
        pynvml.NVMLError_FunctionNotFound(),
        RuntimeError("ctypes trouble"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_field_fails_alone_to_none(install_nvml, error):
    device = FakeDevice(
        name=error,
        uuid=error,
        memory_error=error,
        utilization_error=error,
        temperature=error,
        power_mw=error,
        enforced_limit_mw=error,
        management_limit_mw=error,
        fan=error,
        processes=error,
    )
    install_nvml(FakeNvml([device], driver=error, cuda=error))
    (sample,) = sample_devices(pid=1)
    assert sample.lost is False
    assert {k: v for k, v in sample.to_dict().items() if k not in ("index", "lost")} == {
        k: None for k in sample.to_dict() if k not in ("index", "lost")
    }


def test_some_fields_unsupported_others_present(install_nvml):
    device = FakeDevice(power_mw=pynvml.NVMLError_NotSupported(), temperature=pynvml.NVMLError_Unknown())
    install_nvml(FakeNvml([device]))
    (sample,) = sample_devices()
    assert sample.power_w is None and sample.temperature_c is None
    assert sample.memory_used_mib == 12288.0 and sample.util_gpu_pct == 87


def test_lost_gpu_is_marked_and_others_still_read(install_nvml):
    fake = install_nvml(FakeNvml([FakeDevice(lost=True), FakeDevice(name=b"Second")]))
    lost, ok = sample_devices()
    assert lost.lost is True and lost.index == 0
    assert lost.name is None and lost.memory_used_mib is None
    assert lost.driver_version == "550.54.15"  # system-wide, still known
    assert ok.lost is False and ok.name == "Second"
    assert fake.calls_named("nvmlDeviceGetHandleByIndex") == [(0,), (1,)]


def test_gpu_lost_midway_stops_asking(install_nvml):
    fake = install_nvml(FakeNvml([FakeDevice(memory_error=pynvml.NVMLError_GpuIsLost())]))
    (sample,) = sample_devices(pid=1)
    assert sample.lost is True
    assert sample.name == "NVIDIA H100 80GB HBM3"  # read before the loss
    assert sample.util_gpu_pct is None and sample.power_w is None
    names = [name for name, _ in fake.calls]
    assert names[-1] == "nvmlDeviceGetMemoryInfo"


def test_library_missing_at_init(install_nvml):
    install_nvml(FakeNvml(init_error=pynvml.NVMLError_LibraryNotFound()))
    session = nvml_mod.get_session()
    assert session.available is False
    assert session.reason == "no NVIDIA driver"
    assert sample_devices() == []
    assert session.device_count() is None
    assert session.driver_version is None


def test_driver_not_loaded(install_nvml):
    install_nvml(FakeNvml(init_error=pynvml.NVMLError_DriverNotLoaded()))
    assert nvml_mod.get_session().reason.startswith("no NVIDIA driver")


def test_other_init_failure_is_named(install_nvml):
    install_nvml(FakeNvml(init_error=pynvml.NVMLError_LibRmVersionMismatch()))
    session = nvml_mod.get_session()
    assert session.available is False
    assert session.reason.startswith("NVML init failed: ")
    assert "version mismatch" in session.reason


def test_module_missing(monkeypatch):
    def missing():
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(nvml_mod, "_import_pynvml", missing)
    session = NvmlSession()
    assert session.available is False
    assert "not installed" in session.reason
    assert session.sample_devices() == []


def test_init_happens_once_even_across_threads():
    fake = FakeNvml()
    session = NvmlSession(module=fake)
    barrier = threading.Barrier(8)

    def hammer():
        barrier.wait()
        for _ in range(5):
            session.sample_devices()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake.calls_named("nvmlInit")) == 1


def test_failed_init_is_not_retried():
    fake = FakeNvml(init_error=pynvml.NVMLError_LibraryNotFound())
    session = NvmlSession(module=fake)
    for _ in range(3):
        assert session.sample_devices() == []
    assert len(fake.calls_named("nvmlInit")) == 1


def test_close_then_reinit():
    fake = FakeNvml()
    session = NvmlSession(module=fake)
    assert session.available
    session.close()
    assert fake.initialised == 0
    assert session.available
    assert len(fake.calls_named("nvmlInit")) == 2


def test_reset_session_retries(install_nvml):
    fake = install_nvml(FakeNvml(init_error=pynvml.NVMLError_DriverNotLoaded()))
    assert not nvml_mod.get_session().available
    fake.init_error = None
    nvml_mod.reset_session()
    assert nvml_mod.get_session().available


@pytest.mark.parametrize(
    ("processes", "expected"),
    [
        ([(4242, 512 * MIB)], 512.0),
        ([(1, 100 * MIB), (4242, 512 * MIB), (4242, 512 * MIB)], 1024.0),  # e.g. two MIG slices
        ([(1, 100 * MIB)], None),  # not found: unknown, not zero (container PIDs differ)
        ([(4242, None)], None),  # WDDM: pynvml reports the memory as None
        ([], None),
        (pynvml.NVMLError_NotSupported(), None),
    ],
)
def test_process_memory(install_nvml, processes, expected):
    install_nvml(FakeNvml([FakeDevice(processes=processes)]))
    assert sample_devices(pid=4242)[0].process_memory_mib == expected


def test_process_list_is_not_read_without_pid(h100):
    assert sample_devices()[0].process_memory_mib is None
    assert h100.calls_named("nvmlDeviceGetComputeRunningProcesses") == []


def test_device_index_filter(install_nvml):
    install_nvml(FakeNvml([FakeDevice(name=b"A"), FakeDevice(name=b"B")]))
    assert [d.name for d in sample_devices(device_index=1)] == ["B"]
    assert sample_devices(device_index=5) == []
    assert sample_devices(device_index=-1) == []


def test_count_failure_gives_no_devices(install_nvml):
    install_nvml(FakeNvml(count_error=pynvml.NVMLError_Unknown()))
    assert nvml_mod.get_session().available is True
    assert sample_devices() == []


def test_no_devices(install_nvml):
    install_nvml(FakeNvml([]))
    assert sample_devices() == []


def test_temperature_falls_back_to_v_call(install_nvml):
    device = FakeDevice(temperature=pynvml.NVMLError_FunctionNotFound(), temperature_v=71)
    install_nvml(FakeNvml([device]))
    assert sample_devices()[0].temperature_c == 71


def test_temperature_uses_v_call_when_legacy_binding_removed(install_nvml):
    install_nvml(FakeNvml([FakeDevice(temperature_v=55)], missing=("nvmlDeviceGetTemperature",)))
    assert sample_devices()[0].temperature_c == 55


def test_power_limit_falls_back(install_nvml):
    device = FakeDevice(enforced_limit_mw=pynvml.NVMLError_NotSupported(), management_limit_mw=450_000)
    install_nvml(FakeNvml([device]))
    assert sample_devices()[0].power_limit_w == 450.0


def test_missing_bindings_of_older_pynvml(install_nvml):
    install_nvml(
        FakeNvml(
            missing=(
                "nvmlDeviceGetFanSpeed",
                "nvmlSystemGetCudaDriverVersion",
                "nvmlSystemGetCudaDriverVersion_v2",
            )
        )
    )
    (device,) = sample_devices()
    assert device.fan_pct is None and device.cuda_driver_version is None
    assert device.name == "NVIDIA H100 80GB HBM3"


def test_cuda_version_v2_fallback(install_nvml):
    install_nvml(FakeNvml(missing=("nvmlSystemGetCudaDriverVersion",), cuda=12080))
    assert nvml_mod.get_session().cuda_driver_version == "12.8"


@pytest.mark.parametrize(
    ("raw", "text"),
    [(12040, "12.4"), (11080, "11.8"), (13000, "13.0"), (0, None), (None, None), ("x", None), (True, None)],
)
def test_format_cuda_version(raw, text):
    assert format_cuda_version(raw) == text


def test_real_pynvml_on_this_machine():
    session = NvmlSession()
    if session.available:
        devices = session.sample_devices()
        assert devices and all(isinstance(d.index, int) for d in devices)
        return
    assert "no NVIDIA driver" in session.reason
    assert session.sample_devices() == []
