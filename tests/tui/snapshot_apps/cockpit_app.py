"""The app at 80×24 on a machine without NVIDIA: the idle config panel, the one
confirm dialog, the quit dialog and the command palette (tests/tui/test_cockpit_snapshots.py).

Built, never run, here; fixed data only (a prepared run, NVML's answer fixed), so
every SVG is the same on any machine.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard_fixtures import make_app, write_run  # noqa: E402

from tui import local_gpu  # noqa: E402
from tui.app import NSMApp  # noqa: E402

local_gpu.set_answer(local_gpu.LocalGpu(False, "no NVIDIA driver"))


def build_idle_app() -> NSMApp:
    """No run yet: the dashboard opens on the config panel."""
    root = Path(tempfile.mkdtemp(prefix="nsm-cockpit-snap-")) / "runs"
    return make_app(root)


def build_attached_app() -> NSMApp:
    """Following a finished run (the dialogs and the palette open over it)."""
    root = Path(tempfile.mkdtemp(prefix="nsm-cockpit-snap-")) / "runs"
    write_run(root, "fixture-run", epochs_done=10)
    return make_app(root, attach="fixture-run")


app = build_idle_app()
