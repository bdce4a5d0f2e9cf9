"""GpuSampler and describe(). Samples are awaited with events, never with sleeps."""

from __future__ import annotations

import threading
import time

import pynvml
import pytest

from nsm.telemetry import GpuSampler, NvmlSession, describe

from .fake_pynvml import FakeDevice, FakeNvml

WAIT = 10.0  # generous: only ever reached when something is broken


class Collector:
    """A callback that records samples and signals when `want` have arrived."""

    def __init__(self, want: int = 1, fail_first: int = 0):
        self.samples: list[dict] = []
        self.want = want
        self.fail_first = fail_first
        self.enough = threading.Event()

    def __call__(self, sample: dict) -> None:
        self.samples.append(sample)
        if len(self.samples) >= self.want:
            self.enough.set()
        if len(self.samples) <= self.fail_first:
            raise RuntimeError("callback blew up")


def test_samples_arrive_repeatedly(h100):
    got = Collector(want=3)
    sampler = GpuSampler(0.01, got, pid=4242).start()
    try:
        assert got.enough.wait(WAIT)
    finally:
        assert sampler.stop()
    assert all(s["available"] for s in got.samples)
    assert got.samples[0]["devices"][0]["process_memory_mib"] == 10240.0
    assert sampler.samples >= 3 and sampler.errors == 0
    assert sampler.last_sample is got.samples[-1]


def test_stop_is_prompt_with_a_long_interval(h100):
    got = Collector()
    sampler = GpuSampler(interval_s=3600, callback=got).start()
    assert got.enough.wait(WAIT)
    started = time.monotonic()
    assert sampler.stop()
    assert time.monotonic() - started < 2.0
    assert not sampler.running
    assert len(got.samples) == 1


def test_callback_errors_are_counted_not_fatal(h100):
    got = Collector(want=4, fail_first=2)
    sampler = GpuSampler(0.01, got).start()
    try:
        assert got.enough.wait(WAIT)
        assert sampler.running
    finally:
        sampler.stop()
    assert sampler.errors == 2
    assert sampler.last_error.startswith("callback: RuntimeError")


def test_sampling_errors_are_counted_not_fatal():
    calls = {"n": 0}

    def flaky() -> dict:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError("transient")
        return {"available": True, "n": calls["n"]}

    got = Collector(want=2)
    sampler = GpuSampler(0.01, got, sample_fn=flaky).start()
    try:
        assert got.enough.wait(WAIT)
    finally:
        sampler.stop()
    assert sampler.errors == 2 and sampler.last_error.startswith("sample: OSError")
    assert [s["n"] for s in got.samples[:2]] == [3, 4]


def _await_thread_end(sampler: GpuSampler) -> None:
    thread = sampler._thread
    assert thread is not None
    thread.join(WAIT)
    assert not thread.is_alive()


def test_unavailable_emits_one_calm_sample_then_rests(install_nvml):
    fake = install_nvml(FakeNvml(init_error=pynvml.NVMLError_LibraryNotFound()))
    got = Collector()
    sampler = GpuSampler(0.001, got).start()
    _await_thread_end(sampler)
    assert len(got.samples) == 1 and sampler.samples == 1
    assert got.samples[0]["available"] is False
    assert got.samples[0]["reason"] == "no NVIDIA driver"
    assert sampler.unavailable and sampler.errors == 0
    assert len(fake.calls_named("nvmlInit")) == 1
    assert sampler.stop()


def test_real_no_gpu_path_of_this_machine():
    if NvmlSession().available:
        pytest.skip("this machine has a working NVIDIA driver")
    got = Collector()
    sampler = GpuSampler(0.001, got).start()
    _await_thread_end(sampler)
    assert len(got.samples) == 1
    (sample,) = got.samples
    assert sample["available"] is False and "no NVIDIA driver" in sample["reason"]
    assert sample["devices"] == []
    assert sampler.errors == 0
    assert describe(sample) == f"GPU: n/a ({sample['reason']})"


def test_start_twice_is_one_thread_and_restart_works(h100):
    got = Collector(want=1)
    sampler = GpuSampler(3600, got)
    sampler.start()
    first = sampler._thread
    sampler.start()
    assert sampler._thread is first
    assert got.enough.wait(WAIT)
    assert sampler.stop()

    again = Collector(want=1)
    sampler.callback = again
    sampler.start()
    assert sampler._thread is not first
    assert again.enough.wait(WAIT)
    assert sampler.stop()


def test_stop_from_inside_the_callback(h100):
    done = threading.Event()
    holder: dict = {}

    def callback(sample: dict) -> None:
        holder["stopped"] = holder["sampler"].stop()
        done.set()

    holder["sampler"] = sampler = GpuSampler(0.01, callback)
    with sampler:
        assert done.wait(WAIT)
    assert holder["stopped"] is False  # the thread cannot have ended while inside its own callback
    assert not sampler.running


def test_context_manager_stops(h100):
    got = Collector()
    with GpuSampler(3600, got) as sampler:
        assert got.enough.wait(WAIT)
    assert not sampler.running


def test_thread_is_a_daemon(h100):
    got = Collector()
    with GpuSampler(3600, got) as sampler:
        assert sampler._thread.daemon
        got.enough.wait(WAIT)


def test_arguments_are_checked():
    with pytest.raises(TypeError):
        GpuSampler(1.0)
    with pytest.raises(ValueError):
        GpuSampler(0, lambda s: None)


# -- describe ------------------------------------------------------------------------------

H100 = {
    "index": 0,
    "name": "NVIDIA H100",
    "memory_used_mib": 12595.2,
    "memory_total_mib": 81920.0,
    "util_gpu_pct": 87,
    "temperature_c": 64,
    "power_w": 310.4,
    "power_limit_w": 700.0,
    "lost": False,
}


def _sample(*devices: dict) -> dict:
    return {"time": 0.0, "available": True, "reason": "", "devices": list(devices), "torch_memory": None}


def test_describe_full():
    assert describe(_sample(H100)) == "NVIDIA H100 · 12.3/80.0 GiB (15%) · util 87% · 64°C · 310/700 W"


def test_describe_unavailable():
    sample = {"available": False, "reason": "no NVIDIA driver", "devices": []}
    assert describe(sample) == "GPU: n/a (no NVIDIA driver)"
    assert describe({"available": False}) == "GPU: n/a"


@pytest.mark.parametrize("junk", [None, {}, "text", 3])
def test_describe_junk(junk):
    assert describe(junk) == "GPU: n/a"


def test_describe_missing_fields_are_left_out():
    device = {"index": 0, "name": "NVIDIA H100", "util_gpu_pct": 87, "power_w": 90.0}
    assert describe(_sample(device)) == "NVIDIA H100 · util 87% · 90 W"
    assert describe(_sample({"index": 2})) == "GPU 2"


def test_describe_lost():
    assert describe(_sample({"index": 0, "lost": True})).startswith("GPU 0: lost")


def test_describe_no_devices():
    assert describe(_sample()) == "GPU: none found"
    assert describe(_sample(H100), device_index=3) == "GPU 3: not found"


def test_describe_several_devices_prefers_the_process_one():
    idle = dict(H100, index=0, name="Idle", process_memory_mib=None)
    busy = dict(H100, index=1, name="Busy", process_memory_mib=2048.0)
    assert describe(_sample(idle, busy)).startswith("Busy · ")
    assert describe(_sample(idle, busy)).endswith("+1 GPU")
    assert describe(_sample(idle, busy), device_index=0).startswith("Idle · ")


def test_describe_real_sample(install_nvml):
    install_nvml(FakeNvml([FakeDevice(name=b"NVIDIA H100 80GB HBM3")]))
    from nsm.telemetry import take_sample

    assert describe(take_sample()) == (
        "NVIDIA H100 80GB HBM3 · 12.0/80.0 GiB (15%) · util 87% · 64°C · 310/700 W"
    )
