"""The real app on the sweep screen (F4) with a finished-and-stopped 2×2×2 sweep whose
points have long run names, for the 80×24 snapshots of the Queue and Results tabs.

Built, never run, here: every number comes from hand-written logs (tests/tui/narrow_fixtures.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis_fixtures import analysis_app  # noqa: E402
from narrow_fixtures import write_ranked_sweep  # noqa: E402

from nsm.runs import RunStore  # noqa: E402
from tui.app import NSMApp  # noqa: E402


def build_sweep_app() -> NSMApp:
    base = Path(tempfile.mkdtemp(prefix="nsm-sweep-snap-"))
    store = RunStore(base / "runs")
    write_ranked_sweep(store)
    return analysis_app(store.root, settings_dir=base / "settings")


app = build_sweep_app()
