"""torch_stats on this CPU machine, and its CUDA paths against a stand-in torch."""

from __future__ import annotations

import json
import sys
import types

import pytest

from nsm.telemetry import torch_stats
from nsm.telemetry.torch_stats import CacheCleared, clear_cache, reset_peak, torch_flags, torch_memory, versions

from .fake_pynvml import MIB, FakeNvml

torch = pytest.importorskip("torch")
needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only path")


class FakeCuda:
    """The slice of torch.cuda that torch_stats reads."""

    def __init__(self, count: int = 2, initialized: bool = True):
        self.count = count
        self.initialized = initialized
        self.current = 0
        self.allocated = [100 * MIB] * count
        self.reserved = [300 * MIB] * count
        self.peak_allocated = [200 * MIB] * count
        self.peak_reserved = [400 * MIB] * count
        self.resets: list[int] = []

    def is_available(self) -> bool:
        return self.count > 0

    def is_initialized(self) -> bool:
        return self.initialized

    def current_device(self) -> int:
        assert self.initialized, "current_device() would initialise CUDA"
        return self.current

    def device_count(self) -> int:
        return self.count

    def _stat(self, values: list[int], index: int) -> int:
        # Real torch reads empty statistics before CUDA is initialised.
        return values[index] if self.initialized else 0

    def memory_allocated(self, index: int) -> int:
        return self._stat(self.allocated, index)

    def memory_reserved(self, index: int) -> int:
        return self._stat(self.reserved, index)

    def max_memory_allocated(self, index: int) -> int:
        return self._stat(self.peak_allocated, index)

    def max_memory_reserved(self, index: int) -> int:
        return self._stat(self.peak_reserved, index)

    def empty_cache(self) -> None:
        self.reserved = list(self.allocated)

    def reset_peak_memory_stats(self, index: int) -> None:
        self.resets.append(index)

    def get_device_properties(self, index: int):
        return types.SimpleNamespace(uuid=f"0000000{index}-aaaa-bbbb-cccc-dddddddddddd")


class FakeDevice:
    def __init__(self, spec):
        if isinstance(spec, FakeDevice):
            self.type, self.index = spec.type, spec.index
            return
        kind, _, index = str(spec).partition(":")
        if kind not in ("cpu", "cuda", "mps"):
            raise RuntimeError(f"bad device {spec!r}")
        self.type, self.index = kind, int(index) if index else None


@pytest.fixture
def fake_torch(monkeypatch):
    cuda = FakeCuda()
    module = types.SimpleNamespace(
        cuda=cuda, device=FakeDevice, __version__="9.9.9", version=types.SimpleNamespace(cuda="12.8")
    )
    monkeypatch.setitem(sys.modules, "torch", module)
    return module


# -- this machine (real torch, no CUDA) --------------------------------------------------


@needs_no_cuda
def test_memory_is_none_without_cuda():
    assert torch_memory() is None
    assert torch_memory(0) is None


@needs_no_cuda
def test_clear_cache_and_reset_peak_are_calm_noops():
    result = clear_cache()
    assert isinstance(result, CacheCleared)
    assert result.freed_bytes == 0
    assert "no CUDA" in result.message
    freed, message = result  # unpacks like a tuple
    assert reset_peak() is False


def test_flags_are_plain_values():
    flags = torch_flags()
    assert set(flags) >= {"tf32_matmul", "tf32_cudnn", "cudnn_benchmark", "cudnn_enabled", "cudnn_version"}
    assert flags["tf32_matmul"] == torch.backends.cuda.matmul.allow_tf32
    assert flags["cudnn_benchmark"] == torch.backends.cudnn.benchmark
    assert isinstance(flags["cudnn_enabled"], bool)
    json.dumps(flags)


def test_flags_follow_the_switches(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    assert torch_flags()["cudnn_benchmark"] is True


def test_versions(install_nvml):
    install_nvml(FakeNvml(driver=b"550.54.15", cuda=12040))
    info = versions()
    assert info["torch"] == torch.__version__
    assert info["torch_cuda"] == torch.version.cuda
    assert info["python"].count(".") == 2
    assert info["torch_geometric"] and info["numpy"] and info["nvidia_ml_py"]
    assert info["driver"] == "550.54.15" and info["cuda_driver"] == "12.4"
    json.dumps(info)


def test_versions_without_driver(install_nvml):
    import pynvml

    install_nvml(FakeNvml(init_error=pynvml.NVMLError_LibraryNotFound()))
    info = versions()
    assert info["driver"] is None and info["cuda_driver"] is None


def test_torch_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    assert torch_memory() is None
    assert clear_cache().freed_bytes == 0
    assert reset_peak() is False
    assert set(torch_flags().values()) == {None}
    assert versions()["torch_cuda"] is None


# -- CUDA paths, against the stand-in ----------------------------------------------------


def test_memory_of_current_device(fake_torch):
    fake_torch.cuda.current = 1
    assert torch_memory() == {
        "device": 1,
        "uuid": "GPU-00000001-aaaa-bbbb-cccc-dddddddddddd",
        "initialized": True,
        "allocated_mib": 100.0,
        "reserved_mib": 300.0,
        "peak_allocated_mib": 200.0,
        "peak_reserved_mib": 400.0,
    }


@pytest.mark.parametrize(("spec", "index"), [(1, 1), ("cuda:1", 1), ("cuda", 0), (FakeDevice("cuda:0"), 0)])
def test_memory_device_spellings(fake_torch, spec, index):
    assert torch_memory(spec)["device"] == index


@pytest.mark.parametrize("spec", ["cpu", "nonsense"])
def test_memory_of_a_non_cuda_device_is_none(fake_torch, spec):
    assert torch_memory(spec) is None


def test_memory_never_initialises_cuda(fake_torch):
    fake_torch.cuda.initialized = False
    memory = torch_memory()
    assert memory["initialized"] is False and memory["uuid"] is None
    assert memory["allocated_mib"] == 0.0 and memory["device"] == 0


def test_memory_survives_a_failing_allocator(fake_torch, monkeypatch):
    def broken(index):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(fake_torch.cuda, "memory_allocated", broken)
    assert torch_memory() is None


def test_clear_cache_reports_bytes_freed_on_every_device(fake_torch):
    result = clear_cache()
    assert result.freed_bytes == 2 * 200 * MIB
    assert "400.0 MiB" in result.message


def test_clear_cache_before_cuda_init(fake_torch):
    fake_torch.cuda.initialized = False
    result = clear_cache()
    assert result.freed_bytes == 0 and "not initialised" in result.message


def test_reset_peak(fake_torch):
    assert reset_peak("cuda:1") is True
    assert fake_torch.cuda.resets == [1]
    fake_torch.cuda.initialized = False
    assert reset_peak() is False


def test_uuid_already_prefixed(fake_torch, monkeypatch):
    monkeypatch.setattr(
        fake_torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(uuid="MIG-123")
    )
    assert torch_stats.torch_memory()["uuid"] == "MIG-123"
