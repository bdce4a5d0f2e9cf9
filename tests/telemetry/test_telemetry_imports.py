"""nsm.telemetry is cheap to import: no torch, no pynvml, never textual or modal."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import nsm.telemetry

PACKAGE = Path(nsm.telemetry.__file__).parent
FORBIDDEN_ANYWHERE = {"textual", "modal", "plotext", "tui", "remote"}
LAZY_ONLY = {"torch", "torch_geometric", "numpy", "pynvml"}


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node, node.module.split(".")[0]


def test_no_forbidden_or_module_level_heavy_imports():
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        module_level = {id(node) for node in tree.body}
        for node, top in _imports(tree):
            assert top not in FORBIDDEN_ANYWHERE, f"{path.name}:{node.lineno} imports {top}"
            if top in LAZY_ONLY:
                assert id(node) not in module_level, f"{path.name}:{node.lineno} imports {top} at module level"


def test_import_and_sample_do_not_load_torch():
    code = """
import json, sys
import nsm.telemetry as t
after_import = sorted(m for m in ("torch", "pynvml", "textual", "modal") if m in sys.modules)
sample = t.take_sample()
line = t.describe(sample)
after_sample = sorted(m for m in ("torch", "textual", "modal") if m in sys.modules)
print(json.dumps({"after_import": after_import, "after_sample": after_sample, "sample": sample, "line": line}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["after_import"] == []
    assert report["after_sample"] == []
    assert report["sample"]["torch_memory"] is None
    assert report["line"].startswith(("GPU: n/a", "NVIDIA", "GPU"))
