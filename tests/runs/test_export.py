"""Export of a run's history and results as CSV and JSON (torch-free)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from nsm.runs import Run
from nsm.runs.export import ExportError, export_run, history_columns, history_csv, history_rows, run_results

from .helpers import epoch_end, started, val


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def sparse_eval_run(make_run) -> Run:
    """4 epochs, validated at epochs 2 and 4 only (EVAL_EVERY=2), finished."""
    events = [started(4)]
    for e in range(1, 5):
        events.append(epoch_end(e, acc=0.5 + e / 10))
        if e % 2 == 0:
            events.append(val(e, loss=1.0 / e, acc=0.6 + e / 20, best_epoch=e, best_loss=1.0 / e))
    events.append(("finished", {
        "reason": "completed", "epochs_done": 4, "best_epoch": 4, "best_val_loss": 0.25,
        "test": {"acc": 0.8, "loss": 0.4}, "total_time_s": 8.0,
    }))  # fmt: skip
    return make_run("sparse", events=events, epochs=4, eval_every=2)


def test_history_csv_has_one_row_per_epoch_with_val_empty_where_not_evaluated(sparse_eval_run: Run) -> None:
    rows = _csv(history_csv(sparse_eval_run.history()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert list(rows[0]) == history_columns()
    assert [float(r["train_acc"]) for r in rows] == pytest.approx([0.6, 0.7, 0.8, 0.9])
    assert [r["val_loss"] for r in rows[::2]] == ["", ""]  # epochs 1 and 3 were not validated
    assert float(rows[1]["val_loss"]) == 0.5 and float(rows[3]["val_acc"]) == pytest.approx(0.8)
    assert rows[0]["train_gpu_peak_mem_mb"] == ""  # null on CPU


def test_history_rows_keep_a_validated_epoch_whose_train_row_is_missing() -> None:
    history = {"epochs": [1], "train": {"loss": [0.9]}, "val": {"epochs": [1, 2], "loss": [0.8, 0.7], "acc": [0.5, 0.6]}}
    rows = history_rows(history)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["train_loss"] is None and rows[1]["val_loss"] == 0.7


def test_export_csv_and_json_write_named_files_into_the_folder(sparse_eval_run: Run, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "nested"
    csv_paths = export_run(sparse_eval_run, "csv", out)
    json_paths = export_run(sparse_eval_run, "json", out)
    assert [p.name for p in csv_paths] == ["sparse_history.csv", "sparse_results.csv"]
    assert [p.name for p in json_paths] == ["sparse_history.json", "sparse_results.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in csv_paths + json_paths)  # no temp files left

    history = json.loads(json_paths[0].read_text())
    assert history["run"] == "planning/sparse" and history["epochs"] == [1, 2, 3, 4]
    assert history["val"]["epochs"] == [2, 4]
    results = json.loads(json_paths[1].read_text())
    assert results["status"] == "finished" and results["test_acc"] == 0.8 and results["best_val_loss"] == 0.25
    assert results["config"]["eval_every"] == 2 and results["problems"] == []

    flat = {r["key"]: r["value"] for r in _csv(csv_paths[1].read_text())}
    assert flat["status"] == "finished" and flat["test_acc"] == "0.8" and flat["config.eval_every"] == "2"


def test_export_defaults_to_the_run_directory_and_includes_saved_results(finished_run: Run) -> None:
    finished_run.write_results({"test": {"acc": 0.9, "confusion": [[4, 1], [0, 5]]}, "timings": {"total_s": 12.5}})
    (finished_run.path / "evaluation_best_model.json").write_text(json.dumps({"checkpoint": "best_model.pt", "acc": 0.9}))
    paths = export_run(finished_run, "csv")
    assert all(p.parent == finished_run.path for p in paths)
    flat = {r["key"]: r["value"] for r in _csv(paths[1].read_text())}
    assert flat["final_results.test.confusion"] == "[[4,1],[0,5]]"
    assert flat["final_results.timings.total_s"] == "12.5"
    assert flat["evaluations.best_model.pt.acc"] == "0.9"


def test_export_of_a_failed_run_with_a_corrupt_config_and_a_cut_log(make_run, tmp_path: Path) -> None:
    run = make_run("broken", events=[started(10), epoch_end(1), epoch_end(2)])
    run.config_path.write_text("{not json")
    with open(run.events_path, "ab") as fh:
        fh.write(b'{"v":1,"seq":3,"t":1.0,"type":"epoch_e')  # a write cut short
    csv_path, results_path = export_run(run, "csv", tmp_path)
    assert [r["epoch"] for r in _csv(csv_path.read_text())] == ["1", "2"]
    results = run_results(run)
    assert results["config"] is None and "not valid JSON" in results["problems"][0]
    assert "problems" in results_path.read_text()


def test_export_refuses_an_unknown_format_and_an_unwritable_folder(finished_run: Run, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="csv, json"):
        export_run(finished_run, "xlsx", tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match="cannot write the export to"):
        export_run(finished_run, "json", blocker / "sub")


def test_export_of_a_deleted_run_says_so(finished_run: Run, tmp_path: Path) -> None:
    import shutil

    shutil.rmtree(finished_run.path)
    with pytest.raises(ExportError, match="does not exist"):
        export_run(finished_run, "csv", tmp_path)
