"""The real app on the live overview (F6) with three prepared runs that train "now".

Built, never run, here (pytest-textual-snapshot drives it). The overview is given the
fixed clock of the prepared runs (tests/tui/live_fixtures.py), so ETAs and ages, and
with them the snapshot, are the same on any machine.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard_fixtures import make_app  # noqa: E402
from live_fixtures import T_NOW, write_live_store  # noqa: E402

from tui.app import NSMApp  # noqa: E402
from tui.screens.overview import OverviewScreen  # noqa: E402

KEEP_OPEN: list[int] = []  # the mirror lock of the mirrored Modal run, held while the app runs


def build_overview_app() -> NSMApp:
    root = Path(tempfile.mkdtemp(prefix="nsm-live-snap-")) / "runs"
    _store, fds = write_live_store(root)
    KEEP_OPEN.extend(fds)
    app = make_app(root)
    app._modes["overview"] = lambda: OverviewScreen(clock=lambda: T_NOW)  # noqa: SLF001 - this instance's copy of MODES
    return app
