"""The real app on the runs browser (F2) over runs with long names, for the 80×24 snapshot.

Built, never run, here. Start times and checkpoint times are fixed and shown in UTC, and
the store lives at a fixed path (the detail line shows it), so the SVG is the same on
any machine.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis_fixtures import analysis_app  # noqa: E402
from narrow_fixtures import write_long_names_store  # noqa: E402

from tui.app import NSMApp  # noqa: E402

ROOT = Path("/tmp/nsm-tui-snapshot-runs")


def build_runs_app() -> NSMApp:
    os.environ["TZ"] = "UTC"
    time.tzset()
    shutil.rmtree(ROOT, ignore_errors=True)
    store = write_long_names_store(ROOT / "runs")
    return analysis_app(store.root, settings_dir=ROOT / "settings")


app = build_runs_app()
