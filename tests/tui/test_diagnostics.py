"""The diagnostics screen (F5) in the real app: no-GPU path, a fake H100, clear-cache, errors."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from textual.geometry import Region
from textual.worker import WorkerCancelled, WorkerFailed

from nsm import telemetry
from nsm.config import RunConfig
from nsm.runs import RunStore
from nsm.telemetry import CacheCleared, NvmlSession, torch_stats
from nsm.telemetry import nvml as nvml_mod
from tui.app import create_app
from tui.context import AppContext, Settings
from tui.screens import diagnostics as diagnostics_mod
from tui.screens.diagnostics import DiagnosticsScreen, Packed, format_cudnn_version

HERE = Path(__file__).resolve().parent
SNAPSHOT_APP = HERE / "snapshot_apps" / "diagnostics_app.py"


def _load(name: str, path: Path) -> Any:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


fake_nvml = sys.modules.get("telemetry.fake_pynvml") or _load(
    "_tui_tests_fake_pynvml", HERE.parent / "telemetry" / "fake_pynvml.py"
)
FakeDevice, FakeNvml, MIB = fake_nvml.FakeDevice, fake_nvml.FakeNvml, fake_nvml.MIB


@pytest.fixture(autouse=True)
def fresh_nvml_session():
    nvml_mod.reset_session()
    yield
    nvml_mod.reset_session()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(tmp_path / "config" / "settings.json", {})


@pytest.fixture
def make_app(tmp_path, settings):
    def make(attached: str | None = None) -> Any:
        context = AppContext.create(tmp_path / "runs", settings=settings)
        context.attached = attached
        return create_app(context=context)

    return make


@pytest.fixture
def fake_h100(monkeypatch) -> Any:
    """NVML sees one H100 (this process holds 3 GiB on it); torch's allocator reports 1.2 GiB."""
    fake = FakeNvml([FakeDevice(processes=[(os.getpid(), 3 * 1024 * MIB)])])
    monkeypatch.setattr(nvml_mod, "_import_pynvml", lambda: fake)
    nvml_mod.reset_session()

    def torch_memory(device: Any = None) -> dict[str, Any]:
        return {
            "device": 0,
            "uuid": "GPU-11111111-2222-3333-4444-555555555555",
            "initialized": True,
            "allocated_mib": 1228.8,
            "reserved_mib": 2048.0,
            "peak_allocated_mib": 1536.0,
            "peak_reserved_mib": 2560.0,
        }

    monkeypatch.setattr(torch_stats, "torch_memory", torch_memory)
    return fake


def screen_text(app: Any) -> str:
    """The whole terminal as the user sees it."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def body_text(app: Any, selector: str = "#diag-body > Static, #diag-message") -> str:
    """Every line of the report (or of one part), including any scrolled out of the 24-row window."""
    lines = []
    for widget in app.screen.query(selector):
        width, height = widget.size
        lines += [strip.text.rstrip() for strip in widget.render_lines(Region(0, 0, width, height))]
    return "\n".join(lines)


async def open_diagnostics(app: Any, pilot: Any) -> None:
    await pilot.press("f5")
    await settle(app, pilot)
    assert type(app.screen).__name__ == "DiagnosticsScreen"


def screen_workers(app: Any) -> list[Any]:
    # Only this screen's: another screen may keep a worker alive for as long as the app runs.
    return [worker for worker in app.workers if isinstance(worker.node, DiagnosticsScreen)]


async def settle(app: Any, pilot: Any) -> None:
    """Let the screen's workers finish and their results reach the screen."""
    for _ in range(3):  # a finished worker may start another (clear-cache -> refresh)
        for worker in screen_workers(app):
            try:
                await worker.wait()
            except (WorkerCancelled, WorkerFailed):
                pass  # a newer gather replaced it, or it failed: the screen shows what it must
        await pilot.pause()


def flat(text: str) -> str:
    """Text with line wrapping undone, for phrases that may wrap at 80 columns."""
    return " ".join(text.split())


def real_nvml_works() -> bool:
    session = NvmlSession()
    try:
        return session.available
    finally:
        session.close()


# -- this machine, as it is ---------------------------------------------------------------


async def test_without_a_gpu_the_screen_is_calm_and_shows_the_cpu_facts(make_app) -> None:
    if real_nvml_works():
        pytest.skip("this machine has a working NVIDIA driver")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        screen = screen_text(app)
        body = body_text(app)
        log_file = app.session_log.path

    versions = torch_stats.versions()
    assert "GPU: n/a (no NVIDIA driver)" in screen
    assert f"Log{log_file}" in "".join(body.split())  # this session's log file; a long path wraps
    assert "Memory    n/a (no GPU)" in screen
    assert f"torch {versions['torch']}" in body
    assert f"PyG {versions['torch_geometric']}" in body
    assert f"numpy {versions['numpy']}" in body
    assert f"nvidia-ml-py {versions['nvidia_ml_py']}" in body
    assert f"python {versions['python']}" in body
    assert re.search(r"TF32 matmul (on|off) · TF32 cuDNN (on|off) · cuDNN benchmark (on|off)", body)
    assert f"{os.cpu_count()} cores" in body
    if versions["torch_cuda"] is None:
        assert "is a CPU build: training runs on the CPU" in body
    assert "Traceback" not in screen


async def test_clear_cache_on_cpu_says_there_is_nothing_to_clear(make_app) -> None:
    if real_nvml_works():
        pytest.skip("this machine has a working NVIDIA driver")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        body = body_text(app)
    assert "nothing to clear" in body
    assert "only this app's own cache (in-process runs); a detached run's cache belongs to its process" in flat(body)


async def test_with_a_real_gpu_the_screen_names_it(make_app) -> None:
    """Runs where an NVIDIA driver answers (a GPU box); the CPU path is tested above."""
    if not real_nvml_works():
        pytest.skip("no working NVIDIA driver on this machine")
    device = nvml_mod.sample_devices()[0]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        body = body_text(app)
    assert f"{device.name} (GPU 0 of " in body
    assert f"Driver    {device.driver_version}" in body
    assert re.search(r"total\s+\d+\.\d GiB", body)
    assert "GPU: n/a" not in body


async def test_the_report_is_gathered_once_per_showing(make_app, fake_h100, monkeypatch) -> None:
    calls: list[int] = []
    real = diagnostics_mod.gather_report

    def counted() -> dict[str, Any]:
        calls.append(1)
        return real()

    monkeypatch.setattr(diagnostics_mod, "gather_report", counted)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        assert len(calls) == 1
        await pilot.press("f1")
        await open_diagnostics(app, pilot)  # back again: fresh readings
        assert len(calls) == 2


# -- a fake H100 -------------------------------------------------------------------------


async def test_fake_gpu_shows_device_versions_memory_and_flags(make_app, fake_h100) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        body = body_text(app)
        versions = flat(body_text(app, "#diag-versions"))

    assert "NVIDIA H100 80GB HBM3 (GPU 0 of 1) · util 87% · 64°C · 310/700 W" in body
    assert "550.54.15 · CUDA 12.4 (driver API)" in body
    assert "GPU: n/a" not in body
    # NVML's whole-device view, then torch's allocator in this process, with shares of the total.
    assert re.search(r"total\s+80\.0 GiB", body)
    assert re.search(r"used\s+12\.0 GiB\s+15\.0%", body)
    assert re.search(r"free\s+68\.0 GiB\s+85\.0%", body)
    assert re.search(r"allocated\s+1\.2 GiB\s+1\.5%", body)
    assert re.search(r"reserved\s+2\.0 GiB\s+2\.5%", body)
    assert re.search(r"peak alloc\s+1\.5 GiB\s+1\.9%", body)
    assert re.search(r"this app\s+3\.0 GiB\s+3\.8%", body)
    assert versions.startswith("Versions python ")
    assert "driver 550.54.15" in versions and "CUDA driver 12.4" in versions
    assert re.search(r"TF32 matmul (on|off)", body)


async def test_a_lost_gpu_is_marked_on_the_screen(make_app, fake_h100) -> None:
    fake_h100.devices[0].lost = True
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        body = body_text(app)
    assert "LOST stopped answering" in body


async def test_refresh_gathers_again_and_shows_new_readings(make_app, fake_h100) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        assert "util 87%" in body_text(app)
        fake_h100.devices[0].util_gpu = 12
        await pilot.press("r")
        await settle(app, pilot)
        body = body_text(app)
    assert "util 12%" in body and "util 87%" not in body
    assert "r refresh · c clear this process's CUDA cache" in body  # "gathering…" is gone


async def test_clear_cache_reports_what_was_freed_and_refreshes(make_app, fake_h100, monkeypatch) -> None:
    cleared: list[str] = []

    def clear_cache() -> CacheCleared:
        cleared.append(threading_name())
        return CacheCleared(512 * MIB, "freed 512.0 MiB of cached CUDA memory")

    monkeypatch.setattr(telemetry, "clear_cache", clear_cache)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        gathered = app.screen.gathered
        await pilot.press("c")
        await settle(app, pilot)
        body = body_text(app)
        regathered = app.screen.gathered

    assert len(cleared) == 1 and cleared[0] != "MainThread"  # torch work stays off the UI thread
    assert "freed 512.0 MiB of cached CUDA memory" in flat(body)
    assert regathered is not gathered  # the reserved memory it shows is fresh


def threading_name() -> str:
    import threading

    return threading.current_thread().name


# -- the attached run --------------------------------------------------------------------


@pytest.fixture
def detached_run(tmp_path) -> Any:
    """A run another process trains (pid 1 on this host), with two GPU samples in its log."""
    store = RunStore(tmp_path / "runs")
    run = store.create_run(RunConfig(domain="causal", device="cuda"), name="on-gpu")
    with run.event_writer() as writer:
        writer.emit("log", level="info", message="started")
        for used in (4096.0, 6144.0):
            sample = {
                "time": time.time() - 5,
                "available": True,
                "reason": "",
                "devices": [
                    {
                        "index": 0,
                        "name": "NVIDIA A100-SXM4-40GB",
                        "memory_used_mib": used,
                        "memory_total_mib": 40960.0,
                        "util_gpu_pct": 93,
                        "temperature_c": 58,
                        "power_w": 250.0,
                        "power_limit_w": 400.0,
                    }
                ],
                "torch_memory": None,
            }
            writer.emit("gpu", sample=sample)
    run.write_process_info(1, backend="process", command="nsm-tui train")
    return run


async def test_attached_runs_latest_gpu_reading_and_whose_cache_clear_touches(make_app, detached_run, monkeypatch) -> None:
    monkeypatch.setattr(telemetry, "clear_cache", lambda: CacheCleared(0, "no CUDA device: nothing to clear"))
    app = make_app(attached=detached_run.ref)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        before = body_text(app)
        await pilot.press("c")
        await settle(app, pilot)
        after = body_text(app)

    assert "causal/on-gpu (process 1): NVIDIA A100-SXM4-40GB · 6.0/40.0 GiB (15%) · util 93%" in flat(before)
    age = re.search(r"· (\d+) s ago", before)
    assert age and 4 <= int(age.group(1)) < 120  # the sample is 5 s old when the app starts
    assert "causal/on-gpu runs in another process (pid 1): only that process can free its cache" in flat(after)


async def test_an_attached_run_that_was_deleted_is_reported_not_fatal(make_app, detached_run) -> None:
    import shutil

    app = make_app(attached=detached_run.ref)
    shutil.rmtree(detached_run.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        body = body_text(app)
    assert "Run causal/on-gpu: no run 'causal/on-gpu'" in flat(body)
    assert "Versions" in body  # the rest of the report is there


# -- failures ----------------------------------------------------------------------------


async def test_a_failing_gather_is_a_message_not_a_crash(make_app, monkeypatch) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("NVML exploded [badly]")

    monkeypatch.setattr(diagnostics_mod, "gather_report", broken)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_diagnostics(app, pilot)
        body = body_text(app)
        assert app.is_running
    assert "could not gather diagnostics: RuntimeError: NVML exploded [badly]" in flat(body)
    assert "no report: r tries again" in body and "gathering" not in body


# -- formatting helpers ------------------------------------------------------------------


@pytest.mark.parametrize("value, text", [(8907, "8.9.7"), (90100, "9.1.0"), (None, "–"), (True, "–"), (0, "–")])
def test_cudnn_versions_read_as_people_write_them(value: Any, text: str) -> None:
    assert format_cudnn_version(value) == text


def test_packed_parts_wrap_between_parts_only() -> None:
    lines = Packed(["python 3.11.7", "torch 2.13.0+cpu", "numpy 2.4.6"]).lines(30)
    assert lines == ["python 3.11.7", "torch 2.13.0+cpu · numpy 2.4.6"]


# -- the snapshot ------------------------------------------------------------------------


def _keys(value: Any, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return set()
    keys = set()
    for key, inner in value.items():
        keys.add(prefix + key)
        if key != "devices":
            keys |= _keys(inner, prefix + key + ".")
    return keys


def test_the_snapshot_report_has_the_shape_of_the_real_one(fake_h100) -> None:
    """The snapshot's fixed data must stay what diagnostics() really returns."""
    snapshot_app = _load("_tui_tests_diagnostics_app", SNAPSHOT_APP)
    real = diagnostics_mod.gather_report()
    assert _keys(snapshot_app.REPORT) == _keys(real)
    assert set(snapshot_app.REPORT["devices"][0]) == set(real["devices"][0])


def test_diagnostics_screen_snapshot(snap_compare) -> None:
    """A fake H100 at 80×24: device, driver, memory with shares, flags, versions, CPU."""

    async def open_it(pilot: Any) -> None:
        await settle(pilot.app, pilot)

    assert snap_compare(SNAPSHOT_APP, terminal_size=(80, 24), run_before=open_it)
