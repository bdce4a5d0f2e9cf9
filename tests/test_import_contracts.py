"""DESIGN §2's import rules, enforced.

import-linter checks the static import graph (pyproject's contracts); the
subprocess test checks what actually gets imported at start-up, which is what
keeps `nsm-tui` fast: no torch until a run or a checkpoint needs it.
"""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the dev extra"
    result = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _modules(package: str) -> list[str]:
    pkg_dir = ROOT / package
    names = [package]
    for info in pkgutil.walk_packages([str(pkg_dir)], prefix=f"{package}."):
        names.append(info.name)
    return names


@pytest.mark.parametrize("package", ["tui", "nsm.runs", "nsm.sweeps", "nsm.telemetry", "nsm.config", "nsm.execution"])
def test_importing_does_not_load_torch(package: str) -> None:
    """Every module of these packages imports without pulling torch in."""
    top = package.split(".")[0]
    mods = _modules(top) if package == top else [m for m in _modules(top) if m == package or m.startswith(package + ".")]
    mods = [m for m in mods if not m.split(".")[-1].startswith("_")] or [package]
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "heavy = sorted(k for k in ('torch', 'torch_geometric') if k in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing {package} loaded {out.stdout.strip()}"
