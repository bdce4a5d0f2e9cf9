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

from dashboard_fixtures import make_app, tiny_config, write_run  # noqa: E402

from tui.app import NSMApp  # noqa: E402
from tui import local_gpu  # noqa: E402

# The same machine everywhere: no NVIDIA driver (the config panel hides AMP and says why).
local_gpu.set_answer(local_gpu.LocalGpu(False, "no NVIDIA driver"))


def build_monitor_app() -> NSMApp:
    root = Path(tempfile.mkdtemp(prefix="nsm-dash-snap-")) / "runs"
    write_run(root, "fixture-run", epochs_done=10, gpu=True)
    return make_app(root, attach="fixture-run")


def build_failed_app() -> NSMApp:
    """A run that broke at epoch 3 (the loss became nan): the charts say failed."""
    root = Path(tempfile.mkdtemp(prefix="nsm-dash-snap-")) / "runs"
    write_run(root, "failed-run", epochs_done=3, outcome="failed")
    return make_app(root, attach="failed-run")


def build_early_stopped_app() -> NSMApp:
    """PATIENCE=3 ended a 20-epoch run at epoch 9 (best at 6): the epoch bar says so."""
    root = Path(tempfile.mkdtemp(prefix="nsm-dash-snap-")) / "runs"
    config = tiny_config(epochs=20, eval_every=1, save_every=5, patience=3, backend="process")
    write_run(root, "early-run", config=config, epochs_done=9, reason="early_stopped")
    return make_app(root, attach="early-run")


def build_config_app() -> NSMApp:
    root = Path(tempfile.mkdtemp(prefix="nsm-dash-snap-")) / "runs"
    return make_app(root)


app = build_monitor_app()
