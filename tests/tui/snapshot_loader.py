"""The builders in tests/tui/snapshot_apps/, loaded once per process by file name.

They are files, not a package (pytest-textual-snapshot imports them by path too), so
every snapshot test gets them through here instead of its own importlib dance.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

APPS = Path(__file__).resolve().parent / "snapshot_apps"


def snapshot_app(file: str) -> ModuleType:
    """tests/tui/snapshot_apps/<file>.py as a module."""
    name = f"_snapshot_app_{file}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, APPS / f"{file}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
    return sys.modules[name]
