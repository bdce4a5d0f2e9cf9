"""The out-of-distribution accuracies of a sweep's points beside their test accuracy: the
results rows, `nsm-tui sweep show` (table, csv, json, --per-run) and the per-config rows
over seeds. Read, never ranked by; a sweep without them shows what it always showed.
Hand-written logs, nothing trains."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from nsm.runs import Run, RunStore
from nsm.sweeps import create_sweep, grid_points, group_rows, parse_axes, point_configs, repeat_over_seeds, result_rows, snapshot
from nsm.sweeps.results import check_metric, group_metrics, ood_splits
from tui.cli import main

from .helpers import TINY, epoch, finished_run, grid_sweep, log_events, started

PLAN = ("ood_steps_11_20", "ood_steps_21_40")


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def finished_with_ood(run: Run, val_loss: float, test_acc: float, ood: dict[str, float], in_log: bool = True) -> None:
    """A finished point whose best model was also scored on the OOD splits: in the
    finished event (as the engine logs it), or only in final_results.json."""
    splits = {name: {"acc": acc, "loss": 1.0 - acc, "count": 300} for name, acc in ood.items()}
    end: dict[str, Any] = {"reason": "completed", "epochs_done": 3, "test": {"acc": test_acc, "loss": 0.5}, "total_time_s": 4.0}
    if in_log:
        end["ood"] = {name: {"acc": v["acc"], "loss": v["loss"]} for name, v in splits.items()}
    log_events(run, [started(), *epoch(1, val_loss + 0.1, 0.5), *epoch(3, val_loss, 1 - val_loss), ("finished", end)])
    run.write_results({"test": {"acc": test_acc, "loss": 0.5}, "ood": splits, "timings": {"total_s": 4.0}})


def _ood_sweep(store: RunStore, name: str = "ood") -> Any:
    """Point 1: OOD numbers in its log; point 2: only in final_results.json; point 3: a run
    from before the OOD splits (and the best validation loss, but no OOD number at all)."""
    sweep = grid_sweep(store, ["lr=1e-3,3e-3,1e-2"], name=name)
    runs = [sweep.run_of(p) for p in sweep.load().points]
    finished_with_ood(runs[0], 0.40, 0.81, {PLAN[0]: 0.7412, PLAN[1]: 0.6234})
    finished_with_ood(runs[1], 0.45, 0.79, {PLAN[0]: 0.9001, PLAN[1]: 0.8502}, in_log=False)
    finished_run(runs[2], val_loss=0.30, val_acc=0.7, test_acc=0.77, test_loss=0.6)
    return sweep


def _show(store: RunStore, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["sweep", "show", *argv, "--runs-dir", str(store.root)]) == 0
    return capsys.readouterr().out


def _header(out: str) -> list[str]:
    """The labels of the results table (plain text: two spaces or more between columns)."""
    line = next(line for line in out.splitlines() if line.startswith("best  #"))
    return re.split(r"\s{2,}", line.strip())


def test_each_point_carries_its_ood_accuracies_and_the_ranking_stays_on_validation(store: RunStore) -> None:
    rows = result_rows(snapshot(_ood_sweep(store)))
    assert [r.number for r in rows] == [3, 1, 2]  # by best val loss; the OOD numbers change nothing
    by_number = {r.number: r for r in rows}
    assert by_number[1].ood_acc == {PLAN[0]: 0.7412, PLAN[1]: 0.6234}  # from the finished event
    assert by_number[2].ood_acc == {PLAN[0]: 0.9001, PLAN[1]: 0.8502}  # from final_results.json
    assert by_number[3].ood_acc == {}  # a run from before them
    assert by_number[1].metric("ood_steps_21_40_acc") == 0.6234 and by_number[3].metric("ood_steps_21_40_acc") is None
    assert ood_splits(rows) == list(PLAN)
    assert rows[0].best and rows[0].number == 3
    for name in ("ood_steps_11_20_acc", "OOD-large-acc"):  # an OOD split is a test set too
        with pytest.raises(ValueError, match="selects on the test set"):
            check_metric(name)


def _table(out: str) -> dict[str, list[str]]:
    """The results table's rows by point number, as cells."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("best  #"))
    rows = [re.split(r"\s{2,}", line.lstrip("* ").strip()) for line in lines[at + 1 :] if re.match(r"^[*≈ ]\s+\d", line)]
    return {row[0]: row for row in rows}


def test_sweep_show_has_an_ood_column_per_split_after_test_loss_dropped_first(store: RunStore, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _ood_sweep(store)
    monkeypatch.setenv("COLUMNS", "200")
    wide = _show(store, capsys, "ood")
    labels = _header(wide)
    assert labels == ["best", "#", "LR", "state", "best val loss", "best val acc", "test acc", "test loss", "OOD 11-20", "OOD 21-40", "time s"]
    rows = _table(wide)
    assert rows["1"][labels.index("OOD 11-20") - 1 : labels.index("OOD 21-40")] == ["0.7412", "0.6234"]  # no "best" cell
    assert rows["2"][labels.index("OOD 21-40") - 1] == "0.8502"
    assert rows["3"][labels.index("OOD 11-20") - 1 : labels.index("OOD 21-40")] == ["-", "-"]  # a run from before them
    assert "best: point 3" in wide  # validation picks the best, not OOD

    # 80 columns: the labels shorten first ("11-20"); narrower still, the OOD columns are the
    # first to go, before the test columns and the time.
    monkeypatch.setenv("COLUMNS", "80")
    assert _header(_show(store, capsys, "ood"))[-3:] == ["11-20", "21-40", "time s"]
    monkeypatch.setenv("COLUMNS", "70")  # the rightmost first
    assert _header(_show(store, capsys, "ood"))[-2:] == ["11-20", "time s"]
    monkeypatch.setenv("COLUMNS", "66")
    assert _header(_show(store, capsys, "ood")) == ["best", "#", "LR", "state", "val loss", "val acc", "test", "t.loss", "time s"]


def test_sweep_show_csv_and_json_have_a_column_per_split(store: RunStore, capsys) -> None:  # type: ignore[no-untyped-def]
    _ood_sweep(store)
    table = list(csv.DictReader(io.StringIO(_show(store, capsys, "ood", "--format", "csv"))))
    header = list(table[0])
    assert header[header.index("test_loss") + 1 : header.index("test_loss") + 3] == ["ood_steps_11_20_acc", "ood_steps_21_40_acc"]
    by_point = {row["point"]: row for row in table}
    assert float(by_point["1"]["ood_steps_11_20_acc"]) == 0.7412 and float(by_point["2"]["ood_steps_21_40_acc"]) == 0.8502
    assert by_point["3"]["ood_steps_11_20_acc"] == ""  # missing: an empty cell
    rows = json.loads(_show(store, capsys, "ood", "--format", "json"))
    assert [r["point"] for r in rows] == [3, 1, 2]
    assert rows[1]["ood_steps_21_40_acc"] == 0.6234 and rows[0]["ood_steps_21_40_acc"] is None
    document = json.loads(_show(store, capsys, "ood", "--json"))
    assert document["results"][1]["ood_steps_11_20_acc"] == 0.7412 and "ood_steps_11_20_acc" not in document["results"][0]


def test_a_sweep_without_ood_numbers_shows_what_it_always_showed(store: RunStore, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sweep = grid_sweep(store, ["lr=1e-3,3e-3"], name="old")
    for p, loss in zip(sweep.load().points, (0.4, 0.5)):
        finished_run(sweep.run_of(p), val_loss=loss, val_acc=1 - loss, test_acc=0.7, test_loss=loss)
    monkeypatch.setenv("COLUMNS", "200")
    assert _header(_show(store, capsys, "old")) == ["best", "#", "LR", "state", "best val loss", "best val acc", "test acc", "test loss", "time s"]
    header = _show(store, capsys, "old", "--format", "csv").splitlines()[0]
    assert header == "point,run,state,best,lr,epochs_done,epochs_planned,test_acc,test_loss,best_val_acc,best_val_loss,time_s,error"
    document = json.loads(_show(store, capsys, "old", "--json"))
    assert not any(key.startswith("ood") for r in document["results"] for key in r)


# ---------------------------------------------------------------- over seeds


def _seeds_sweep(store: RunStore) -> Any:
    axes = parse_axes(["lr=1e-3,3e-3"])
    configs = repeat_over_seeds(point_configs(TINY, grid_points(axes)), 2, axes)
    sweep = create_sweep(store, configs, name="rep", axes=axes, seeds=2)
    accs = {1e-3: ([0.70, 0.74], [0.60, 0.64]), 3e-3: ([0.80, 0.84], [0.50, 0.52])}
    for i, p in enumerate(sweep.load().points):
        near, far = accs[p.config["lr"]]
        k = i % 2
        finished_with_ood(sweep.run_of(p), 0.4 + 0.01 * i, 0.8, {PLAN[0]: near[k], PLAN[1]: far[k]})
    return sweep


def test_per_config_rows_estimate_each_split_over_the_seeds(store: RunStore, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    snap = snapshot(_seeds_sweep(store))
    groups = group_rows(snap)
    assert [g.number for g in groups] == [1, 2]  # by the mean val loss, never by OOD
    est = groups[0].estimate("ood_steps_11_20_acc")
    assert est is not None and est.n == 2 and est.mean == pytest.approx(0.72) and est.ci95 is not None
    assert groups[1].metric("ood_steps_21_40_acc") == pytest.approx(0.51)
    assert group_metrics(ood_splits(groups)) == ("best_val_loss", "best_val_acc", "test_acc", "test_loss", "ood_steps_11_20_acc", "ood_steps_21_40_acc", "time_s")

    rows = json.loads(_show(store, capsys, "rep", "--format", "json"))
    assert rows[0]["ood_steps_11_20_acc_mean"] == pytest.approx(0.72) and rows[0]["ood_steps_11_20_acc_n"] == 2
    assert rows[0]["ood_steps_11_20_acc_ci95"] == pytest.approx(est.ci95)
    assert rows[1]["ood_steps_21_40_acc_mean"] == pytest.approx(0.51) and rows[1]["ood_steps_21_40_acc_std"] is not None
    header = _show(store, capsys, "rep", "--format", "csv").splitlines()[0].split(",")
    at = header.index("test_loss_n") + 1
    assert header[at : at + 8] == [f"{s}_acc_{x}" for s in PLAN for x in ("mean", "std", "ci95", "n")]
    per_run = list(csv.DictReader(io.StringIO(_show(store, capsys, "rep", "--format", "csv", "--per-run"))))
    assert {float(r["ood_steps_11_20_acc"]) for r in per_run} == {0.70, 0.74, 0.80, 0.84}
    document = json.loads(_show(store, capsys, "rep", "--json"))
    assert document["groups"][0]["ood_steps_21_40_acc_mean"] == pytest.approx(0.62)

    monkeypatch.setenv("COLUMNS", "250")
    wide = _show(store, capsys, "rep")
    assert _header(wide)[-3:] == ["OOD 11-20", "OOD 21-40", "time s"]
    assert f"0.720 ± {est.ci95:.3f}" in wide
    monkeypatch.setenv("COLUMNS", "80")
    assert "OOD" not in _show(store, capsys, "rep")
