"""The real app on the sweep screen (F4) over a store with no sweep, so F4 opens on
its Define tab (the empty form, base config from the defaults), for the 80×24 snapshot.

Built, never run, here: an empty store and empty settings in a fresh temporary
folder (no path is shown on this screen).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis_fixtures import analysis_app  # noqa: E402

from nsm.runs import RunStore  # noqa: E402
from tui import local_gpu  # noqa: E402
from tui.app import NSMApp  # noqa: E402

# The same machine everywhere: no NVIDIA driver.
local_gpu.set_answer(local_gpu.LocalGpu(False, "no NVIDIA driver"))


def build_sweep_define_app() -> NSMApp:
    base = Path(tempfile.mkdtemp(prefix="nsm-sweep-define-snap-"))
    store = RunStore(base / "runs")
    return analysis_app(store.root, settings_dir=base / "settings")


app = build_sweep_define_app()
