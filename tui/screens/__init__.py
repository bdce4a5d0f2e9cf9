"""The app's screens, one module each; `make_screen(mode)` builds a mode's base screen."""

from __future__ import annotations

import importlib
from typing import Any

SCREEN_MODULES = {
    "dashboard": ("tui.screens.dashboard", "DashboardScreen"),
    "runs": ("tui.screens.runs", "RunsScreen"),
    "compare": ("tui.screens.compare", "CompareScreen"),
    "sweep": ("tui.screens.sweep", "SweepScreen"),
    "diagnostics": ("tui.screens.diagnostics", "DiagnosticsScreen"),
    "overview": ("tui.screens.overview", "OverviewScreen"),
}


def make_screen(mode: str) -> Any:
    module_name, cls_name = SCREEN_MODULES[mode]
    module = importlib.import_module(module_name)
    return getattr(module, cls_name)()
