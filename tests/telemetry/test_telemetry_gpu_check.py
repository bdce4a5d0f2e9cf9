"""bench/gpu_check.py stays runnable, and calm where there is no GPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runs_standalone_without_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the script would run the real checks")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--skip-bench"], capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert result.returncode == 0, result.stderr
    assert "no CUDA GPU here" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("result", "seconds"),
    [
        (2.5, [2.5]),
        ([3, 2.0, 2.0], [3.0, 2.0, 2.0]),
        ({"epoch_times": [1.0, 1.5]}, [1.0, 1.5]),
        ({"seconds_per_epoch": 4}, [4.0]),
        ({"something": 1}, None),
        (["x"], None),
        (None, None),
    ],
)
def test_epoch_seconds_shapes(result, seconds):
    assert _load()._epoch_seconds(result) == seconds
