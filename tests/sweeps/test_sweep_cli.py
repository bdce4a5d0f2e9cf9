"""`nsm-tui sweep …` headless, through the parser that add_sweep_parser builds."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pytest

from nsm.runs import RunStore
from nsm.sweeps import DONE, STOPPED, get_sweep, snapshot
from tui.cli import Parser
from tui.cli.sweeps import add_sweep_parser, cmd_sweep
from tui.cli.console import CliError

from .helpers import grid_sweep

TINY_FLAGS = [
    "--epochs", "2", "--batch-size", "8", "--num-graphs", "60", "--device", "cpu", "--seed", "3",
    "--eval-every", "1", "--patience", "0", "--grid", "hidden=16", "--grid", "threads=1",
]  # fmt: skip


def parse(*argv: str) -> argparse.Namespace:
    parser = Parser(prog="nsm-tui")
    parser.add_argument("--runs-dir", default=None)
    add_sweep_parser(parser.add_subparsers(dest="command", parser_class=Parser))
    return parser.parse_args(list(argv))


def sweep(runs: Path, *argv: str) -> int:
    return cmd_sweep(parse("--runs-dir", str(runs), "sweep", *argv))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def test_a_headless_2x2_sweep_prints_the_results_with_the_best_point(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = sweep(runs, "--domain", "planning", "--grid", "lr=1e-3,3e-3", "--grid", "cycle_weight=0.01,0.1", *TINY_FLAGS, "--name", "cli", "--json")
    assert code == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert out["status"] == "finished" and out["counts"]["done"] == 4
    assert out["knobs"] == ["lr", "cycle_weight"]  # the one-value axes are fixed knobs, not columns
    ranked = [(r["best_val_loss"], -r["best_val_acc"]) for r in out["results"]]
    assert ranked == sorted(ranked)  # by val loss, ties by val acc; never by test acc
    assert out["results"][0]["best"] and out["best"]["number"] == out["results"][0]["number"]
    config = RunStore(runs).get(out["best"]["run"]).run_config()
    assert (config.hidden, config.threads, config.epochs, config.backend) == (16, 1, 2, "inprocess")

    assert sweep(runs, "show", "cli", "--metric", "best_val_loss") == 0
    shown = capsys.readouterr().out
    assert "sweep cli (sweep): finished: 4 done" in shown
    assert "results ranked by best val loss (lower is better; ties: best val acc)" in shown
    table = shown.split("ties: best val acc)\n", 1)[1].splitlines()
    assert table[1].startswith("*")  # the first row under the header is the best, marked
    assert "best: point" in shown
    assert sweep(runs, "list") == 0
    assert "cli" in capsys.readouterr().out


def test_ctrl_c_stops_after_a_checkpoint_and_resume_finishes(runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    from nsm.sweeps import runner as runner_mod

    real = runner_mod.SweepRunner

    class InterruptedInPoint2(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            def hook(index: int, epoch: int, step: int) -> None:
                if (index, epoch, step) == (1, 1, 1):
                    os.kill(os.getpid(), signal.SIGINT)  # the user's ctrl+c

            super().__init__(*args, **kwargs, step_hook=hook)

    monkeypatch.setattr(runner_mod, "SweepRunner", InterruptedInPoint2)
    assert sweep(runs, "--domain", "planning", "--grid", "lr=1e-3,3e-3,5e-3", *TINY_FLAGS, "--name", "ctrlc") == 0
    out = capsys.readouterr().out
    assert "stopping after a checkpoint of the current point" in out
    assert "stopped; resume with: nsm-tui sweep resume ctrlc" in out
    assert [p.state for p in snapshot(get_sweep(RunStore(runs), "ctrlc")).points] == [DONE, STOPPED, "pending"]
    monkeypatch.setattr(runner_mod, "SweepRunner", real)

    with pytest.raises(CliError, match="is not running"):
        sweep(runs, "stop", "ctrlc")
    assert sweep(runs, "resume", "ctrlc") == 0
    out = capsys.readouterr().out
    assert "resumed from checkpoint_epoch_0_step_" in out
    assert [p.state for p in snapshot(get_sweep(RunStore(runs), "ctrlc")).points] == [DONE] * 3
    with pytest.raises(CliError, match="nothing to resume: sweep ctrlc is finished: 3 done"):
        sweep(runs, "resume", "ctrlc")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--grid", "lr=1e-3,1e-4"], "--domain is required"),
        (["--domain", "planning"], "give the points: at least one --grid"),
        (["--domain", "planning", "--grid", "lrr=1e-3"], "--grid: grid 'lrr=1e-3': unknown knob 'lrr'; did you mean lr?"),
        (["--domain", "planning", "--grid", "lr=1e-3,2"], "LR must be a number from 1e-06 to 1 (got 2)"),
        (["--domain", "planning", "--grid", "lr=1e-3", "--lr", "1e-4"], "--lr and --grid lr=... both set LR; drop one"),
        (["--domain", "planning", "--grid", "lr=1e-3", "--configs", "c.json"], "--configs and --grid both define the points"),
        (["--domain", "planning", "--grid", "batch_size=8,64", "--num-graphs", "60"], "point 2 (batch_size=64): BATCH_SIZE must be at most"),
        (["--domain", "all", "--grid", "domain=kg"], "--domain or with --grid domain=..., not both"),
        (["--domain", "planning", "--grid", "lr=1e-3", "--name", "../x"], "--name: invalid sweep name '../x'"),
        (["show", "nope"], "no sweep 'nope'"),
        (["resume", "nope"], "no sweep 'nope'"),
        (["stop", "nope"], "no sweep 'nope'"),
    ],
)
def test_bad_input_gets_one_clear_message(runs: Path, argv: list[str], expected: str) -> None:
    with pytest.raises(CliError) as info:
        sweep(runs, *argv)
    assert expected in str(info.value)
    assert not (runs / "planning").exists()  # nothing was made


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--domain", "plan", "--grid", "lr=1e-3"], "DOMAIN must be one of causal, planning, kg, a comma list of them, or all"),
        (["--domain", "planning", "--grid", "lr=1e-3", "--metric", "f1"], "unknown metric 'f1'; choose one of best_val_loss, best_val_acc"),
        (["--domain", "planning", "--grid", "lr=1e-3", "--metric", "test_acc"], "choosing the best point by a test metric selects on the test set"),
        (["--domain", "planning", "--grid", "lr=1e-3", "--epochs", "0"], "EPOCHS must be an integer from 1 to 10000"),
        (["--domain", "planning", "--grid", "lr=1e-3", "--parallel", "0"], "argument --parallel: must be a whole number >= 1 or auto (got '0')"),
        (["resume", "some-sweep", "--parallel", "many"], "argument --parallel: must be a whole number >= 1 or auto (got 'many')"),
    ],
)
def test_bad_flag_values_exit_2_naming_the_flag(runs: Path, argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        sweep(runs, *argv)
    assert info.value.code == 2
    assert expected in capsys.readouterr().err


def test_stop_asks_a_running_sweep_through_its_folder(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from nsm.runs.process import this_host

    swept = grid_sweep(RunStore(runs), name="live")
    swept.runner_path.write_text(json.dumps({"pid": os.getpid(), "host": this_host(), "started": time.time(), "mode": "detached", "token": "t"}))
    assert sweep(runs, "stop", "live") == 0
    assert "asked sweep live to stop" in capsys.readouterr().out
    assert swept.stop_requested()
    with pytest.raises(CliError, match="did not stop within 0.3 s"):
        sweep(runs, "stop", "live", "--wait", "0.3")
    with pytest.raises(CliError, match="already running"):
        sweep(runs, "resume", "live")


def test_parallel_is_refused_for_a_modal_sweep_before_anything_is_written(runs: Path) -> None:
    with pytest.raises(CliError, match=r"--parallel packs points on this machine; a Modal sweep takes --max-parallel N"):
        sweep(runs, "--domain", "planning", "--grid", "lr=1e-3,3e-4", "--backend", "modal", "--parallel", "2")
    assert not (runs / ".sweeps").exists() and not (runs / "planning").exists()
