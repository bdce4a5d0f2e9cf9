"""`--format csv|json` of `runs list`, `compare` and `sweep show`: pandas reads them as they are."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from nsm.config import RunConfig
from nsm.runs import RunStore
from nsm.sweeps import get_sweep
from tests.sweeps.helpers import epoch, finished, finished_run, grid_sweep, log_events, started
from tui.cli import main
from tui.cli.records import COMPARE_COLUMNS, RUN_COLUMNS

PRECISE = 0.8612345678901234  # every digit must survive


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "runs")
    done = store.create_run(RunConfig(domain="planning", lr=3e-4, gpu="\x1b]0;pwned\x07H100\x1b[2J"), name="done")
    log_events(done, [started(), *epoch(1, 0.61, 0.7), *epoch(3, 0.4123456789012345, 0.8), finished(PRECISE, 0.35)])
    store.create_run(RunConfig(domain="planning", lr=1e-3), name="fresh")
    return store


def _out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_runs_list_csv_has_the_columns_and_numbers_pandas_expects(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    out = _out(capsys, "--runs-dir", str(store.root), "runs", "list", "--format", "csv")
    df = pd.read_csv(io.StringIO(out))
    assert list(df.columns) == list(RUN_COLUMNS)
    assert len(df) == 2
    assert df["epoch"].dtype.kind == "i" and df["best_val_loss"].dtype.kind == "f" and df["started"].dtype.kind == "f"
    done = df.set_index("run").loc["done"]
    assert done["test_acc"] == PRECISE and done["best_val_loss"] == 0.4123456789012345 and done["status"] == "finished"
    assert pd.isna(df.set_index("run").loc["fresh", "test_acc"])  # missing is an empty cell, not "—"
    as_json = json.loads(_out(capsys, "--runs-dir", str(store.root), "runs", "list", "--format", "json"))
    assert [list(row) for row in as_json] == [list(RUN_COLUMNS)] * 2
    assert json.loads(_out(capsys, "--runs-dir", str(store.root), "runs", "list", "--json")) == as_json  # the old flag


def test_compare_csv_has_a_row_per_run_every_knob_and_the_missing_domains(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    out = _out(capsys, "--runs-dir", str(store.root), "compare", "--format", "csv")
    assert "\x1b" not in out and "\x07" not in out  # text from the store is stripped of escapes
    df = pd.read_csv(io.StringIO(out))
    assert list(df.columns) == list(COMPARE_COLUMNS)
    assert sorted(df["status"]) == ["finished", "missing", "missing"]
    assert df["test_acc"].dtype.kind == "f" and df["lr"].dtype.kind == "f"
    best = df[df["status"] == "finished"].iloc[0]
    assert (best["run"], best["test_acc"], best["lr"], best["gpu"]) == ("done", PRECISE, 3e-4, "H100")
    rows = json.loads(_out(capsys, "--runs-dir", str(store.root), "compare", "done", "fresh", "--format", "json"))
    assert [r["run"] for r in rows] == ["done", "fresh"] and all(list(r) == list(COMPARE_COLUMNS) for r in rows)


def test_sweep_show_csv_is_the_results_table_sorted_with_the_best_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore(tmp_path / "runs")
    sweep = grid_sweep(store, name="g")
    points = sweep.load().points
    # Ranked on validation: the best test accuracy (0.9) is not the best point.
    for point, acc, val_loss in zip(points[:3], (0.7, 0.9, 0.8), (0.3, 0.5, 0.4)):
        finished_run(store.get(point.run), val_loss=val_loss, val_acc=0.6, test_acc=acc, test_loss=0.4)
    out = _out(capsys, "--runs-dir", str(store.root), "sweep", "show", "g", "--format", "csv")
    df = pd.read_csv(io.StringIO(out))
    assert list(df.columns) == [
        "point", "run", "state", "best", "lr", "cycle_weight", "epochs_done", "epochs_planned",
        "test_acc", "test_loss", "best_val_acc", "best_val_loss", "time_s", "error",
    ]  # fmt: skip
    assert list(df["test_acc"].iloc[:3]) == [0.7, 0.8, 0.9] and pd.isna(df["test_acc"].iloc[3])
    assert df["best"].dtype == bool and list(df["best"]) == [True, False, False, False]
    assert df["lr"].dtype.kind == "f" and df["point"].dtype.kind == "i"
    rows = json.loads(_out(capsys, "--runs-dir", str(store.root), "sweep", "show", "g", "--format", "json"))
    assert [r["point"] for r in rows] == list(df["point"]) and list(rows[0]) == list(df.columns)
    document = json.loads(_out(capsys, "--runs-dir", str(store.root), "sweep", "show", "g", "--json"))
    assert document["name"] == get_sweep(store, "g").name and len(document["results"]) == 4  # --json: the whole sweep, as before


def test_json_and_csv_asked_together_is_one_clear_error(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--runs-dir", str(store.root), "runs", "list", "--json", "--format", "csv"]) == 2
    assert "--json and --format csv ask for two formats" in capsys.readouterr().err
