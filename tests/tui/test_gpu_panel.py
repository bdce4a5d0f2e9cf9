"""GpuPanel: the dashboard's GPU gauges, fed samples made by nsm.telemetry over a fake NVML."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

import pynvml
import pytest
from textual.app import App, ComposeResult
from textual.geometry import Region

from nsm.telemetry import nvml as nvml_mod
from nsm.telemetry import take_sample
from tui.widgets.gpu import HISTORY_LEN, GpuPanel, gpu_memory_point, gpu_unavailable_text, pick_device


def _load_fake_nvml() -> Any:
    """tests/telemetry/fake_pynvml.py, shared with the telemetry tests (tests/ is no package)."""
    for name in ("telemetry.fake_pynvml", "_tui_tests_fake_pynvml"):
        if name in sys.modules:
            return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "telemetry" / "fake_pynvml.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


fake_nvml = _load_fake_nvml()
FakeDevice, FakeNvml, MIB, not_supported = fake_nvml.FakeDevice, fake_nvml.FakeNvml, fake_nvml.MIB, fake_nvml.not_supported

PID = 4242


@pytest.fixture(autouse=True)
def fresh_nvml_session():
    nvml_mod.reset_session()
    yield
    nvml_mod.reset_session()


@pytest.fixture
def sample_from(monkeypatch):
    """sample_from(fake, time=t) -> the dict a `gpu` event carries, read through `fake`."""

    def make(fake: Any, time: float | None = None, pid: int | None = PID) -> dict[str, Any]:
        monkeypatch.setattr(nvml_mod, "_import_pynvml", lambda: fake)
        nvml_mod.reset_session()
        sample = take_sample(pid=pid, include_torch=False)
        if time is not None:
            sample["time"] = time
        return sample

    return make


class PanelApp(App[None]):
    def __init__(self, **panel_args: Any):
        super().__init__()
        self.panel_args = panel_args

    def compose(self) -> ComposeResult:
        yield GpuPanel(id="gpu", **self.panel_args)


def panel_lines(panel: GpuPanel) -> list[str]:
    """What the panel shows, line by line, as the user would read it."""
    width, height = panel.size
    return [strip.text.rstrip() for strip in panel.render_lines(Region(0, 0, width, height))]


async def show(pilot: Any, panel: GpuPanel, sample: Any) -> list[str]:
    panel.update_sample(sample)
    await pilot.pause()
    return panel_lines(panel)


async def test_normal_device_shows_memory_bar_utilisation_temperature_and_power(sample_from) -> None:
    sample = sample_from(FakeNvml([FakeDevice()]))
    app = PanelApp()
    async with app.run_test(size=(80, 8)) as pilot:
        panel = app.query_one(GpuPanel)
        lines = await show(pilot, panel, sample)
        assert panel.size.height == 3  # fits the dashboard's budget of rows

    assert len(lines) == 3
    title, memory, util = lines
    assert title.startswith("GPU 0 NVIDIA H100 80GB HBM3")
    assert title.endswith("64°C · 310/700 W")
    assert memory.startswith("mem  ") and memory.endswith("15% 12.0/80.0 GiB")
    bar = memory[len("mem  ") :].split()[0]
    # 12 of 80 GiB: 15% of the bar is filled, the rest shows the free part.
    assert 0.10 < bar.count("█") / len(bar) < 0.20 and set(bar) == {"█", "░"}
    assert util.startswith("util ") and util.endswith(" 87%")
    assert util.count("▇") + util.count("█") == 1  # one sample so far: one column of history


async def test_not_supported_readings_show_a_dash_not_an_error(sample_from) -> None:
    board = FakeDevice(
        temperature=not_supported(),
        power_mw=not_supported(),
        enforced_limit_mw=not_supported(),
        management_limit_mw=not_supported(),
        utilization_error=not_supported(),
        memory_error=not_supported(),
    )
    sample = sample_from(FakeNvml([board]))
    device = sample["devices"][0]
    assert device["temperature_c"] is None and device["util_gpu_pct"] is None  # the fake did its job

    app = PanelApp()
    async with app.run_test(size=(80, 8)) as pilot:
        title, memory, util = await show(pilot, app.query_one(GpuPanel), sample)

    assert title.startswith("GPU 0 NVIDIA H100") and title.endswith("–°C · – W")
    assert memory.endswith("–% –/–") and "█" not in memory
    assert util.endswith(" –%")


async def test_a_power_reading_without_a_limit_shows_the_draw_alone(sample_from) -> None:
    board = FakeDevice(enforced_limit_mw=not_supported(), management_limit_mw=not_supported())
    app = PanelApp()
    async with app.run_test(size=(80, 8)) as pilot:
        title, *_ = await show(pilot, app.query_one(GpuPanel), sample_from(FakeNvml([board])))
    assert title.endswith("64°C · 310 W")


async def test_lost_gpu_is_clearly_marked_and_keeps_the_panel_alive(sample_from) -> None:
    fake = FakeNvml([FakeDevice()])
    app = PanelApp()
    async with app.run_test(size=(80, 8)) as pilot:
        panel = app.query_one(GpuPanel)
        await show(pilot, panel, sample_from(fake, time=1.0))
        fake.devices[0].lost = True
        lost = sample_from(fake, time=2.0)
        assert lost["devices"][0]["lost"] is True
        title, memory, util = await show(pilot, panel, lost)

        assert title.startswith("GPU 0 LOST") and "stopped answering" in title
        assert memory.endswith("–% –/–")
        assert util.endswith(" –%")
        # The history up to the loss stays on screen; a lost reading adds nothing.
        assert list(panel.util_history) == [87]
        assert gpu_memory_point(lost) is None

        fake.devices[0].lost = False  # the driver recovered it
        title, *_ = await show(pilot, panel, sample_from(fake, time=3.0))
        assert "LOST" not in title and list(panel.util_history) == [87, 87]


async def test_no_driver_is_one_calm_line(sample_from) -> None:
    sample = sample_from(FakeNvml(init_error=pynvml.NVMLError_LibraryNotFound()))
    app = PanelApp()
    async with app.run_test(size=(80, 8)) as pilot:
        panel = app.query_one(GpuPanel)
        lines = await show(pilot, panel, sample)
        assert panel.size.height == 1

    assert lines == ["GPU: n/a (no NVIDIA driver)"]
    assert gpu_unavailable_text(sample) == "GPU: n/a (no NVIDIA driver)"
    assert gpu_memory_point(sample) is None
    assert list(panel.util_history) == []


async def test_this_machines_real_nvml_path_reads_the_same_way() -> None:
    """No fake: on a machine without an NVIDIA driver the panel says so in one line."""
    sample = take_sample(include_torch=False)
    if sample["available"]:
        pytest.skip("this machine has a working NVIDIA driver")
    app = PanelApp()
    async with app.run_test(size=(80, 8)) as pilot:
        lines = await show(pilot, app.query_one(GpuPanel), sample)
    assert lines == [gpu_unavailable_text(sample)]
    assert lines[0].startswith("GPU: n/a (")


async def test_before_the_first_sample_the_panel_waits_calmly() -> None:
    from tui import local_gpu

    before = local_gpu.known()
    try:
        local_gpu.set_answer(local_gpu.LocalGpu(True, ""))  # a machine with a GPU: wait for the run's readings
        app = PanelApp()
        async with app.run_test(size=(80, 8)) as pilot:
            lines = await show(pilot, app.query_one(GpuPanel), None)
        assert lines == ["GPU: no readings yet"]

        local_gpu.set_answer(local_gpu.LocalGpu(False, "no NVIDIA driver"))  # none here: say so, as F5 does
        app = PanelApp()
        async with app.run_test(size=(80, 8)) as pilot:
            panel = app.query_one(GpuPanel)
            assert await show(pilot, panel, None) == ["GPU: n/a (no NVIDIA driver)"]
            panel.set_remote(True)  # a Modal run: only its own samples can tell
            await pilot.pause()
            assert panel_lines(panel) == ["GPU: no readings yet"]
    finally:
        local_gpu.set_answer(before)


async def test_several_devices_show_the_one_the_run_uses(sample_from) -> None:
    idle = FakeDevice(name=b"NVIDIA A100-SXM4-40GB", uuid=b"GPU-aaaa", util_gpu=3, temperature=31)
    busy = FakeDevice(uuid=b"GPU-bbbb", processes=[(PID, 10 * 1024 * MIB)], util_gpu=95)
    sample = sample_from(FakeNvml([idle, busy]))
    app = PanelApp()
    async with app.run_test(size=(80, 8)) as pilot:
        title, _, util = await show(pilot, app.query_one(GpuPanel), sample)

    assert title.startswith("GPU 1 NVIDIA H100") and title.endswith("· +1 GPU")
    assert util.endswith(" 95%")

    # Without process readings (NVML sees host PIDs in a container), torch's UUID decides.
    for device in sample["devices"]:
        device["process_memory_mib"] = None
    assert pick_device(sample)["index"] == 0
    sample["torch_memory"] = {"uuid": "GPU-bbbb", "reserved_mib": 2048.0}
    assert pick_device(sample)["index"] == 1


async def test_utilisation_history_grows_and_stays_bounded(sample_from) -> None:
    fake = FakeNvml([FakeDevice()])
    app = PanelApp()
    async with app.run_test(size=(80, 8)) as pilot:
        panel = app.query_one(GpuPanel)
        for i in range(HISTORY_LEN + 30):
            fake.devices[0].util_gpu = i % 101
            panel.update_sample(sample_from(fake, time=float(i)))
            if i == 9:
                await pilot.pause()
                assert len(panel.util_history) == 10
                spark = panel_lines(panel)[2][len("util ") : -len("   9%")]
                # Ten samples, newest on the right: ten columns drawn, rising from 0% to 9%.
                assert spark.strip(" ") == spark.lstrip(" ") and len(spark.strip(" ")) == 10
        await pilot.pause()
        _, _, util = panel_lines(panel)

        assert len(panel.util_history) == HISTORY_LEN
        assert list(panel.util_history) == [i % 101 for i in range(30, HISTORY_LEN + 30)]
        # The line shows as many recent samples as fit; none of it is blank any more.
        spark = util[len("util ") : util.rindex(" ")].rstrip()
        assert " " not in spark.strip()
        assert len(util) <= 80

        # The same sample delivered twice (a re-render, a re-attach) is not new history.
        again = sample_from(fake, time=float(HISTORY_LEN + 29))
        panel.update_sample(again)
        assert list(panel.util_history)[-1] == (HISTORY_LEN + 29) % 101
        assert len(panel.util_history) == HISTORY_LEN
        assert list(panel.util_history)[-2] == (HISTORY_LEN + 28) % 101


async def test_history_bound_is_configurable(sample_from) -> None:
    fake = FakeNvml([FakeDevice()])
    app = PanelApp(history_len=5)
    async with app.run_test(size=(80, 8)):
        panel = app.query_one(GpuPanel)
        for i in range(12):
            panel.update_sample(sample_from(fake, time=float(i)))
        assert len(panel.util_history) == 5


@pytest.mark.parametrize(
    "sample",
    [
        {},
        {"available": True},
        {"available": True, "devices": "not a list"},
        {"available": True, "devices": [None, 3, "x"]},
        {"available": True, "devices": [{}]},
        {
            "available": True,
            "time": "later",
            "devices": [
                {
                    "index": "zero",
                    "name": 7,
                    "memory_used_mib": "lots",
                    "memory_total_mib": 0,
                    "util_gpu_pct": math.nan,
                    "temperature_c": True,
                    "power_w": [1],
                    "power_limit_w": {},
                }
            ],
            "torch_memory": "n/a",
        },
        {"available": False, "reason": None},
        ["not", "a", "dict"],
    ],
)
async def test_malformed_samples_never_raise(sample: Any) -> None:
    app = PanelApp()
    async with app.run_test(size=(80, 8)) as pilot:
        lines = await show(pilot, app.query_one(GpuPanel), sample)
    assert lines and all(len(line) <= 80 for line in lines)
    assert gpu_memory_point(sample) is None


async def test_narrow_columns_keep_every_line_inside_the_panel(sample_from) -> None:
    sample = sample_from(FakeNvml([FakeDevice(), FakeDevice()]))
    app = PanelApp()
    async with app.run_test(size=(30, 8)) as pilot:
        lines = await show(pilot, app.query_one(GpuPanel), sample)
    assert len(lines) == 3 and all(len(line) <= 30 for line in lines)
    # The readings outrank the board's name when the column is narrow.
    assert "64°C" in lines[0]
    assert lines[1].endswith("15% 12.0/80.0 GiB") and lines[2].endswith(" 87%")


def test_gpu_memory_point_is_the_training_devices_used_memory(sample_from) -> None:
    busy = FakeDevice(processes=[(PID, 10 * 1024 * MIB)], memory_used=20 * 1024 * MIB)
    sample = sample_from(FakeNvml([FakeDevice(), busy]))
    assert gpu_memory_point(sample) == 20 * 1024.0
    assert gpu_unavailable_text(sample) is None

    # A board that does not report memory: this process's share, else torch's reserved memory.
    sample["devices"][1]["memory_used_mib"] = None
    assert gpu_memory_point(sample) == 10 * 1024.0
    sample["devices"][1]["process_memory_mib"] = None
    sample["devices"][0]["memory_used_mib"] = None
    sample["torch_memory"] = {"reserved_mib": 512.0}
    assert gpu_memory_point(sample) == 512.0

    assert gpu_memory_point(None) is None
    assert gpu_unavailable_text(None) is None  # no sample yet is not "no GPU"
    assert gpu_unavailable_text({"available": True, "devices": []}) == "GPU: n/a (no GPU found)"
