"""The real app on the all-domains comparison (F3) over three finished runs, one per
domain (planning, causal, kg), for the 80×24 snapshot.

Built, never run, here: every number comes from hand-written logs
(tests/tui/analysis_fixtures.py write_run) with fixed start times shown in UTC, and
the store lives at a fixed path of its own, so the SVG is the same on any machine.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis_fixtures import analysis_app, write_run  # noqa: E402

from nsm.runs import RunStore  # noqa: E402
from tui import local_gpu  # noqa: E402
from tui.app import NSMApp  # noqa: E402

# The same machine everywhere: no NVIDIA driver.
local_gpu.set_answer(local_gpu.LocalGpu(False, "no NVIDIA driver"))

ROOT = Path("/tmp/nsm-tui-snapshot-compare")
STARTED = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def build_compare_app() -> NSMApp:
    os.environ["TZ"] = "UTC"
    time.tzset()
    shutil.rmtree(ROOT, ignore_errors=True)
    store = RunStore(ROOT / "runs")
    write_run(store, "plan-alpha", domain="planning", epochs=6, seed=1, loss_scale=0.6, best_acc=0.88, started=STARTED, lr=0.001)
    write_run(store, "causal-beta", domain="causal", epochs=4, seed=2, best_acc=0.92, started=STARTED + 600, eval_every=2)
    write_run(store, "kg-gamma", domain="kg", epochs=5, seed=3, loss_scale=1.2, best_acc=0.76, started=STARTED + 1200, cycle_weight=0.1)
    return analysis_app(store.root, settings_dir=ROOT / "settings")


app = build_compare_app()
