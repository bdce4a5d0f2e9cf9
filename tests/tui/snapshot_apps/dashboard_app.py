"""The real app on the dashboard, attached to a fixed finished run (with GPU samples).

Built, never run, here: pytest-textual-snapshot's `snap_compare` imports this file
and drives `app`. Every number on screen comes from the prepared events (fixed
times and metrics, tests/tui/dashboard_fixtures.py), so the snapshot is the same
on any machine. `build_config_app()` opens the config panel instead.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard_fixtures import make_app, write_run  # noqa: E402

from tui.app import NSMApp  # noqa: E402


def build_monitor_app() -> NSMApp:
    root = Path(tempfile.mkdtemp(prefix="nsm-dash-snap-")) / "runs"
    write_run(root, "fixture-run", epochs_done=10, gpu=True)
    return make_app(root, attach="fixture-run")


def build_config_app() -> NSMApp:
    root = Path(tempfile.mkdtemp(prefix="nsm-dash-snap-")) / "runs"
    return make_app(root)


app = build_monitor_app()
