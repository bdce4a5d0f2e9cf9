from __future__ import annotations

import json

import pynvml
import pytest

from nsm.telemetry import SAMPLE_KEYS, GpuSample, diagnostics, take_sample

from .fake_pynvml import FakeDevice, FakeNvml

torch = pytest.importorskip("torch")
needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only path")


def test_sample_of_a_working_gpu(h100):
    sample = take_sample(pid=4242)
    assert tuple(sample) == SAMPLE_KEYS
    assert sample["available"] is True and sample["reason"] == ""
    (device,) = sample["devices"]
    assert device["name"] == "NVIDIA H100 80GB HBM3"
    assert device["process_memory_mib"] == 10240.0
    assert json.loads(json.dumps(sample)) == sample


def test_sample_without_nvml(install_nvml):
    install_nvml(FakeNvml(init_error=pynvml.NVMLError_LibraryNotFound()))
    sample = take_sample()
    assert sample["available"] is False
    assert sample["reason"] == "no NVIDIA driver"
    assert sample["devices"] == []
    json.dumps(sample)


def test_sample_with_a_lost_gpu(install_nvml):
    install_nvml(FakeNvml([FakeDevice(lost=True)]))
    sample = take_sample()
    assert sample["available"] is True
    assert sample["devices"][0]["lost"] is True
    json.dumps(sample)


def test_sample_device_filter(install_nvml):
    install_nvml(FakeNvml([FakeDevice(name=b"A"), FakeDevice(name=b"B")]))
    assert [d["name"] for d in take_sample(device_index=1)["devices"]] == ["B"]


def test_torch_memory_is_opt_in(h100):
    assert take_sample(include_torch=False)["torch_memory"] is None


@needs_no_cuda
def test_torch_memory_is_none_on_cpu(h100):
    # torch is imported in this process, so the default reads it; on CPU there is nothing.
    assert take_sample()["torch_memory"] is None


def test_gpusample_round_trip():
    sample = GpuSample(time=1.5, available=True, devices=[{"index": 0}], torch_memory={"device": 0})
    assert GpuSample.from_dict(sample.to_dict()) == sample


@pytest.mark.parametrize(
    "data",
    [None, {}, {"available": None, "devices": None}, {"devices": ["junk", {"index": 1}], "extra": 1}, "junk"],
)
def test_gpusample_from_partial_dict(data):
    sample = GpuSample.from_dict(data)
    assert sample.available is False
    assert all(isinstance(d, dict) for d in sample.devices)
    json.dumps(sample.to_dict())


def test_diagnostics_with_a_gpu(h100):
    report = diagnostics()
    json.dumps(report)
    assert report["available"] is True and report["device_count"] == 1
    assert report["device"]["name"] == "NVIDIA H100 80GB HBM3"
    assert report["driver_version"] == "550.54.15" and report["cuda_driver_version"] == "12.4"
    memory = report["memory"]
    assert (memory["total_mib"], memory["used_mib"], memory["free_mib"]) == (81920.0, 12288.0, 69632.0)
    assert memory["used_pct"] == 15.0 and memory["free_pct"] == 85.0
    assert set(report["flags"]) >= {"tf32_matmul", "tf32_cudnn", "cudnn_benchmark", "cudnn_version"}
    assert report["versions"]["torch"] == torch.__version__
    assert report["torch_cuda_version"] == torch.version.cuda


def test_diagnostics_free_from_used_when_free_missing(install_nvml):
    install_nvml(FakeNvml([FakeDevice(memory_free=None)]))
    assert diagnostics()["memory"]["free_mib"] == 69632.0


@needs_no_cuda
def test_diagnostics_without_anything(install_nvml):
    install_nvml(FakeNvml(init_error=pynvml.NVMLError_LibraryNotFound()))
    report = diagnostics()
    json.dumps(report)
    assert report["available"] is False and report["reason"] == "no NVIDIA driver"
    assert report["device"] is None and report["device_count"] is None
    assert report["cuda_available"] is False
    assert set(report["memory"].values()) == {None}


def test_diagnostics_with_unsupported_memory_and_lost_gpu(install_nvml):
    install_nvml(
        FakeNvml(
            [
                FakeDevice(memory_error=pynvml.NVMLError_NotSupported()),
                FakeDevice(lost=True),
            ]
        )
    )
    report = diagnostics()
    assert report["device"]["name"] == "NVIDIA H100 80GB HBM3"
    assert report["memory"]["total_mib"] is None and report["memory"]["used_pct"] is None
    assert diagnostics(device_index=1)["device"]["lost"] is True
    assert diagnostics(device_index=7)["device"] is None
