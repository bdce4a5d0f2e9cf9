"""The headless command line: bad input is one line and exit 2; commands do their job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--num-graphs", "60", "--batch-size", "8", "--hidden", "16", "--threads", "1", "--eval-every", "1", "--device", "cpu"]


def cli(*args: str, runs: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if runs is not None:
        env["NSM_RUNS_DIR"] = str(runs)
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--domain", "planning", "--epochs", "0"], "--epochs: EPOCHS must be an integer from 1 to 10000 (got 0)"),
        (["train", "--domain", "chess"], "DOMAIN must be one of causal, planning, kg or all (got 'chess')"),
        (["train", "--domain", "kg", "--lr", "fast"], "LR must be a number from 1e-06 to 1 (got 'fast')"),
        (["train", "--domain", "kg", "--device", "tpu"], "DEVICE must be one of auto, cpu, cuda (got 'tpu')"),
        (["train", "--domain", "kg", "--batch-size", "500", "--num-graphs", "100"], "--batch-size: BATCH_SIZE must be at most"),
        (["train", "--domain", "kg", "--name", "../escape"], "--name:"),
        (["data", "stats", "--domain", "kg", "--num-graphs", "5"], "NUM_GRAPHS must be an integer from 20"),
        (["runs", "show", "nope"], "no run 'nope'"),
        (["resume", "nope"], "nope"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_exit_2_no_traceback(args: list[str], needle: str, tmp_path: Path) -> None:
    out = cli(*args, runs=tmp_path)
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert needle in lines[0]


def test_model_summary_counts_parameters_per_module() -> None:
    out = cli("model", "summary", "--domain", "causal", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert 200_000 <= data["total"] <= 500_000
    assert sum(m["params"] for m in data["modules"]) == data["total"]
    assert any(m["module"].startswith("levels.2") for m in data["modules"])


def test_data_stats_with_every_probe() -> None:
    out = cli("data", "stats", "--domain", "kg", "--num-graphs", "200", "--seed", "5", "--json")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["num_graphs"] == 200 and stats["seed"] == 5
    assert {"majority", "structure_blind", "blind_logreg", "blind_mlp", "degree_blind", "wl"} <= set(stats["baselines"])
    assert set(stats["baselines"]["degree_blind"]["per_subtype"]) == set(stats["subtypes"])
    plain = cli("data", "stats", "--domain", "kg", "--num-graphs", "200", "--seed", "5")
    assert "probes (test accuracy" in plain.stdout and "\x1b[" not in plain.stdout  # plain when piped
    for name in ("structure-blind logistic regression", "degree-aware logistic regression", "relational 1-WL"):
        assert name in plain.stdout
    # The verdict line appears exactly when a shallow probe is over the bar.
    from nsm.baselines import leaks

    assert ("the domain leaks" in plain.stdout) == bool(leaks(stats["baselines"]))


def test_train_show_eval_and_list_a_run(tmp_path: Path) -> None:
    out = cli("train", "--domain", "planning", "--epochs", "2", *TINY, "--name", "cli-run", "--json", runs=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["outcome"] == "finished" and result["results"]["test"]["acc"] is not None

    listing = json.loads(cli("runs", "list", "--json", runs=tmp_path).stdout)
    assert [(r["run"], r["status"], r["epoch"]) for r in listing] == [("cli-run", "finished", 2)]

    shown = json.loads(cli("runs", "show", "cli-run", "--json", runs=tmp_path).stdout)
    assert {c["file"] for c in shown["checkpoints"]} >= {"best_model.pt"}
    assert shown["config"]["epochs"] == 2

    ev = cli("eval", "cli-run", "--json", runs=tmp_path)
    assert ev.returncode == 0, ev.stderr
    evaluation = json.loads(ev.stdout)
    assert evaluation["checkpoint"] == "best_model.pt"
    assert sum(map(sum, evaluation["confusion"])) == evaluation["count"]
    assert evaluation["baselines"]["majority"]["test_acc"] <= 0.6

    text = cli("eval", "cli-run", "--checkpoint", "missing.pt", runs=tmp_path)
    assert text.returncode == 2 and "missing.pt does not exist in run cli-run" in text.stderr

    again = cli("train", "--domain", "kg", "--epochs", "1", *TINY, "--name", "cli-run", runs=tmp_path)
    assert again.returncode == 2 and "cli-run" in again.stderr and "already" in again.stderr

    finished = cli("resume", "cli-run", runs=tmp_path)
    assert finished.returncode == 2 and "already finished" in finished.stderr

    stop = cli("stop", "cli-run", runs=tmp_path)
    assert stop.returncode == 1 and "is not running (status: finished)" in stop.stderr


def test_runs_dir_flag_beats_the_environment(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    out = cli("--runs-dir", str(a), "train", "--domain", "kg", "--epochs", "1", *TINY, "--name", "here", runs=b)
    assert out.returncode == 0, out.stderr
    assert (a / "kg" / "here" / "events.jsonl").exists()
    assert not b.exists()


def test_version_is_printed_and_python_dash_m_tui_is_the_same_command(capsys, monkeypatch) -> None:
    import importlib.metadata
    import tomllib

    import tui
    from tui.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"nsm-tui {tui.package_version()}\n"
    # The fallback for a source tree that is not installed stays the project's version.
    assert tui.__version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert tui.package_version() == tui.__version__

    out = subprocess.run([sys.executable, "-m", "tui", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout, out.stderr) == (0, f"nsm-tui {tui.__version__}\n", "")
    out = subprocess.run([sys.executable, "-m", "tui", "frobnicate"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "nsm-tui: error: argument COMMAND: invalid choice: 'frobnicate'" in out.stderr
