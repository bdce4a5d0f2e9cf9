"""The out-of-distribution splits at the end of a real (tiny) run: final_results.json,
the best checkpoint's saved evaluation and the finished event hold them beside test,
and `nsm-tui eval --split` evaluates a checkpoint on one of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsm.runs import Run, RunStore, read_events
from nsm.runs.compare import collect_metrics
from nsm.training.trainer import Trainer
from tui.cli import main

from .helpers import tiny_config

OOD = ("ood_steps_11_20", "ood_steps_21_40")  # TINY is a planning run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Run:
    store = RunStore(tmp_path_factory.mktemp("ood") / "runs")
    run = store.create_run(tiny_config(epochs=2, save_every=1), name="ood")
    assert Trainer(run).run() == "finished"
    return run


def test_final_results_hold_every_ood_split_beside_test(trained: Run) -> None:
    results = json.loads((trained.path / "final_results.json").read_text())
    assert list(results["ood"]) == list(OOD)
    for name in OOD:
        ev = results["ood"][name]
        assert ev["count"] == results["test"]["count"] == results["dataset"][name]
        assert 0.0 <= ev["acc"] <= 1.0 and ev["loss"] > 0
        assert sum(map(sum, ev["confusion"])) == ev["count"]
        assert set(ev["per_subtype"]) <= {"valid", "order_violation", "missing_capability", "unachieved_leaf"}
    # Evaluating the OOD splits is a small part of the run's end.
    assert 0 <= results["timings"]["ood_eval_s"] < 5
    saved = json.loads(trained.evaluation_path("best_model.pt").read_text())
    assert saved["split"] == "test" and saved["ood"] == results["ood"]


def test_the_finished_event_carries_ood_accuracy_and_loss(trained: Run) -> None:
    events, bad = read_events(trained.events_path)
    assert bad == 0
    finished = events[-1]
    assert finished["type"] == "finished"
    results = json.loads((trained.path / "final_results.json").read_text())
    assert finished["ood"] == {n: {"acc": results["ood"][n]["acc"], "loss": results["ood"][n]["loss"]} for n in OOD}
    state = trained.state()
    assert state.ood == finished["ood"]
    metrics = collect_metrics(trained)
    assert metrics.ood_acc == {n: results["ood"][n]["acc"] for n in OOD}


def _eval(capsys: pytest.CaptureFixture[str], run: Run, *args: str) -> tuple[int, str, str]:
    code = main(["--runs-dir", str(run.path.parent.parent), "eval", run.name, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_split_evaluates_a_checkpoint_on_an_ood_split(trained: Run, capsys: pytest.CaptureFixture[str]) -> None:
    results = json.loads((trained.path / "final_results.json").read_text())
    # best_model.pt: the evaluation saved at the end of the run already holds the split.
    code, out, err = _eval(capsys, trained, "--split", "ood_steps_21_40", "--json")
    assert code == 0, err
    reused = json.loads(out)
    assert reused["split"] == "ood_steps_21_40" and reused["reused"] is True
    assert reused["acc"] == results["ood"]["ood_steps_21_40"]["acc"]
    # Another checkpoint is evaluated for real, and not saved (only test evaluations are).
    code, out, err = _eval(capsys, trained, "--checkpoint", "checkpoint_epoch_1.pt", "--split", "ood_steps_11_20", "--json")
    assert code == 0, err
    fresh = json.loads(out)
    assert (fresh["split"], fresh["reused"], fresh["count"]) == ("ood_steps_11_20", False, results["ood"]["ood_steps_11_20"]["count"])
    assert "ood" not in fresh
    assert not trained.evaluation_path("checkpoint_epoch_1.pt").exists()
    # On test (the default), the OOD splits come along and are printed beside it.
    code, out, err = _eval(capsys, trained, "--checkpoint", "checkpoint_epoch_1.pt")
    assert code == 0, err
    assert "out-of-distribution" in out and "ood_steps_11_20" in out and "ood_steps_21_40" in out
    saved = json.loads(trained.evaluation_path("checkpoint_epoch_1.pt").read_text())
    assert list(saved["ood"]) == list(OOD)


def test_eval_of_a_split_the_dataset_lacks_lists_the_allowed_ones(trained: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _eval(capsys, trained, "--split", "ood_large")
    assert code == 2
    assert "--split" in err and "ood_steps_11_20" in err and "ood_large" in err


def test_a_run_from_before_the_ood_splits_still_shows(trained: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """final_results.json, the saved evaluation and the log without any `ood`."""
    import shutil

    old = tmp_path / "runs" / "planning" / "old"
    shutil.copytree(trained.path, old)
    results = json.loads((old / "final_results.json").read_text())
    results.pop("ood")
    (old / "final_results.json").write_text(json.dumps(results))
    saved = json.loads((old / "evaluation_best_model.json").read_text())
    saved.pop("ood")
    (old / "evaluation_best_model.json").write_text(json.dumps(saved))
    lines = [json.loads(line) for line in (old / "events.jsonl").read_text().splitlines()]
    lines[-1].pop("ood")
    (old / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    run = RunStore(tmp_path / "runs").get("old")
    assert run.state().ood == {} and collect_metrics(run).ood_acc == {}
    code = main(["--runs-dir", str(tmp_path / "runs"), "runs", "show", "old"])
    out = capsys.readouterr().out
    assert code == 0 and "out-of-distribution splits: none" in out
    code, out, err = _eval(capsys, run)  # the saved evaluation is reused as it is
    assert code == 0, err
    assert "none in this evaluation" in out
