"""The real app opened on the diagnostics screen, with a fixed report of a fake H100.

Built, never run, here: pytest-textual-snapshot's `snap_compare` imports this file
and drives `app`. Every value the screen shows comes from REPORT, so the snapshot
is the same on any machine (GPU or not, any torch, any core count). The app opens
straight on diagnostics, so nothing another screen does at start-up can leak in.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

from textual import events

from nsm.runs import RunStore
from nsm.telemetry import CacheCleared
from tui import app as tui_app
from tui.app import NSMApp
from tui.context import AppContext, Settings
from tui.screens.diagnostics import DiagnosticsScreen
from tui.session_log import SessionLog

MIB = 1024 * 1024

# The shape of nsm.telemetry.diagnostics() (tests/tui/test_diagnostics.py keeps it in step),
# plus the "cpu" facts the screen's default source adds.
REPORT: dict[str, Any] = {
    "time": 1_700_000_000.0,
    "available": True,
    "reason": "",
    "device_count": 1,
    "device": {"index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-11111111-2222-3333-4444-555555555555", "lost": False},
    "driver_version": "550.54.15",
    "cuda_driver_version": "12.4",
    "torch_cuda_version": "12.1",
    "cuda_available": True,
    "memory": {
        "total_mib": 81559.0,
        "used_mib": 12288.0,
        "free_mib": 69271.0,
        "allocated_mib": 1228.8,
        "reserved_mib": 2048.0,
        "peak_allocated_mib": 1536.0,
        "used_pct": 15.1,
        "free_pct": 84.9,
        "allocated_pct": 1.5,
        "reserved_pct": 2.5,
        "peak_allocated_pct": 1.9,
    },
    "torch_memory": {
        "device": 0,
        "uuid": "GPU-11111111-2222-3333-4444-555555555555",
        "initialized": True,
        "allocated_mib": 1228.8,
        "reserved_mib": 2048.0,
        "peak_allocated_mib": 1536.0,
        "peak_reserved_mib": 2560.0,
    },
    "flags": {
        "tf32_matmul": True,
        "tf32_cudnn": True,
        "float32_matmul_precision": "high",
        "cudnn_benchmark": False,
        "cudnn_deterministic": False,
        "cudnn_enabled": True,
        "cudnn_available": True,
        "cudnn_version": 90100,
        "deterministic_algorithms": False,
    },
    "versions": {
        "python": "3.11.7",
        "python_implementation": "CPython",
        "platform": "linux",
        "torch": "2.5.1+cu121",
        "torch_cuda": "12.1",
        "torch_geometric": "2.6.1",
        "numpy": "2.1.3",
        "nvidia_ml_py": "12.560.30",
        "driver": "550.54.15",
        "cuda_driver": "12.4",
    },
    "devices": [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": "GPU-11111111-2222-3333-4444-555555555555",
            "memory_used_mib": 12288.0,
            "memory_total_mib": 81559.0,
            "memory_free_mib": 69271.0,
            "util_gpu_pct": 87,
            "util_memory_pct": 40,
            "temperature_c": 64,
            "power_w": 310.5,
            "power_limit_w": 700.0,
            "fan_pct": None,
            "process_memory_mib": 2560.0,
            "driver_version": "550.54.15",
            "cuda_driver_version": "12.4",
            "lost": False,
        }
    ],
    "cpu": {"cores": 16, "usable_cores": 16, "machine": "x86_64"},
}


def fixed_report() -> dict[str, Any]:
    return copy.deepcopy(REPORT)


def fixed_clear() -> CacheCleared:
    return CacheCleared(512 * MIB, "freed 512.0 MiB of cached CUDA memory")


class DiagnosticsSnapshotApp(NSMApp):
    # NSMApp's relative CSS_PATH would be looked up next to this file.
    CSS_PATH = str(Path(tui_app.__file__).with_name("app.tcss"))
    MODES = {
        **NSMApp.MODES,
        "diagnostics": lambda: DiagnosticsScreen(source=fixed_report, clear=fixed_clear),
    }

    def on_load(self, event: events.Load) -> None:
        event.prevent_default()  # NSMApp's would open a log named by today's date and this pid
        self.session_log = SessionLog(Path("~/.local/state/nsm-tui/log/nsm-tui-20240105-093000-4242.log"))

    def on_mount(self, event: events.Mount) -> None:
        event.prevent_default()  # NSMApp's own handler would open the dashboard
        self.switch_mode("diagnostics")


def build_app() -> DiagnosticsSnapshotApp:
    # A store path that is never created, and settings that are never read from disk.
    scratch = Path(tempfile.gettempdir()) / "nsm-tui-snapshot-diagnostics"
    context = AppContext(store=RunStore(scratch / "runs"), settings=Settings(scratch / "settings.json", {}))
    return DiagnosticsSnapshotApp(context)


app = build_app()
