"""The real app with the sample graph of the causal domain, sample 2 (seed 42), pushed over
the dashboard. Built, never run, here; the generator is deterministic, so is the snapshot."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard_fixtures import make_app  # noqa: E402

from tui.app import NSMApp  # noqa: E402


def build_sample_graph_app() -> NSMApp:
    return make_app(Path(tempfile.mkdtemp(prefix="nsm-sample-snap-")) / "runs")
