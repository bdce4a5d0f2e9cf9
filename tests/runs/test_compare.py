"""Comparing runs: best per domain, metrics, differing config values, missing domains."""

from __future__ import annotations

import shutil

import pytest

from nsm.runs import Run, RunStore
from nsm.runs.compare import (
    TEST_ACC,
    VAL_LOSS,
    best_per_domain,
    collect_metrics,
    compare_best_per_domain,
    compare_runs,
    config_differences,
    metrics_table,
)

from .helpers import epoch_end, started, training_events, val


def _finished(epochs: int, val_loss: float, test_acc: float) -> list:
    events = [started(epochs)]
    for e in range(1, epochs + 1):
        events.append(epoch_end(e))
        loss = val_loss + (epochs - e) * 0.1
        events.append(val(e, loss=loss, acc=0.5 + e / 20, best_epoch=e, best_loss=loss))
    events.append(("finished", {
        "reason": "completed", "epochs_done": epochs, "best_epoch": epochs, "best_val_loss": val_loss,
        "test": {"acc": test_acc, "loss": 0.5}, "total_time_s": 2.0 * epochs,
    }))  # fmt: skip
    return events


def test_best_per_domain_prefers_finished_runs_then_the_criterion(store: RunStore, make_run) -> None:
    make_run("p-good", events=_finished(3, val_loss=0.30, test_acc=0.70))
    make_run("p-better-acc", events=_finished(3, val_loss=0.40, test_acc=0.90))
    # Lower val loss, but it never finished: a finished run wins.
    make_run("p-unfinished", events=[started(10), epoch_end(1), val(1, 0.1, 0.9, 1, 0.1)])
    make_run("c-only", domain="causal", events=[started(10), epoch_end(1), val(1, 0.6, 0.6, 1, 0.6)])
    summaries = store.list_runs()

    by_loss = best_per_domain(summaries, VAL_LOSS)
    assert by_loss["planning"].name == "p-good"
    assert by_loss["causal"].name == "c-only"  # unfinished, but the only one
    assert by_loss["kg"] is None
    assert best_per_domain(summaries, TEST_ACC)["planning"].name == "p-better-acc"
    with pytest.raises(ValueError, match="val_loss, test_acc"):
        best_per_domain(summaries, "f1")


def test_config_differences_lists_only_keys_that_differ() -> None:
    a = {"domain": "planning", "lr": 0.001, "epochs": 10, "schema_version": 1}
    b = {"domain": "planning", "lr": 0.0003, "epochs": 10.0, "schema_version": 2}
    c = {"domain": "kg", "lr": 0.001, "epochs": 10}
    assert config_differences({"a": a, "b": b}) == {"lr": {"a": 0.001, "b": 0.0003}}
    diffs = config_differences({"a": a, "b": b, "c": c, "broken": None})
    assert set(diffs) == {"domain", "lr"} and "broken" not in diffs["lr"]
    assert config_differences({"a": a, "same": dict(a)}) == {}
    assert config_differences({"a": a, "short": {"domain": "planning", "lr": 0.001}}) == {"epochs": {"a": 10, "short": None}}


def test_collect_metrics_reads_log_history_and_results(store: RunStore, make_run) -> None:
    run = make_run("done", events=_finished(4, val_loss=0.25, test_acc=0.875))
    run.write_results({"timings": {"total_s": 42.0}, "baselines": {"majority": {"test_acc": 0.5}, "structure_blind": {"test_acc": 0.61}}})
    m = collect_metrics(run)
    assert (m.ref, m.status, m.epochs_done) == ("planning/done", "finished", 4)
    assert (m.test_acc, m.test_loss, m.best_val_loss) == (0.875, 0.5, 0.25)
    assert m.final_cycle_loss == pytest.approx(0.025)  # the last epoch's train cycle loss (loss 1/4 x 0.1)
    assert m.training_time_s == 42.0
    assert m.baselines == {"majority": 0.5, "structure_blind": 0.61}
    assert m.val_epochs == [1, 2, 3, 4] and m.val_acc[-1] == pytest.approx(0.7)

    # Without final_results.json the time is the sum of the epoch times.
    unfinished = make_run("half", events=training_events(epochs=3, total=10))
    assert collect_metrics(unfinished).training_time_s == 6.0
    assert collect_metrics(unfinished).test_acc is None


def test_best_per_domain_comparison_lists_a_missing_domain(store: RunStore, make_run) -> None:
    make_run("p1", events=_finished(3, 0.3, 0.8), lr=0.001)
    make_run("c1", domain="causal", events=_finished(3, 0.2, 0.9), lr=0.01)
    comparison = compare_best_per_domain(store, VAL_LOSS)
    assert [m.domain for m in comparison.runs] == ["causal", "planning"]
    assert comparison.missing == ["kg"]
    assert set(comparison.differences) == {"domain", "lr"}
    columns, rows = metrics_table(comparison)
    assert rows[-1][:3] == ["(no run)", "kg", "missing"]
    assert rows[0][columns.index("test acc")] == 0.9


def test_compare_runs_reports_unknown_and_vanished_runs(store: RunStore, make_run) -> None:
    a = make_run("a", events=_finished(2, 0.3, 0.8))
    gone = make_run("gone", events=_finished(2, 0.3, 0.8))
    shutil.rmtree(gone.path)
    comparison = compare_runs(store, ["a", "nope", "planning/gone"])
    assert comparison.refs == ["planning/a"]
    assert any("nope" in p for p in comparison.problems)
    assert any("gone" in p for p in comparison.problems)
    assert comparison.missing == []  # a hand-picked comparison asks for no particular domains


def test_a_run_with_a_corrupt_config_is_compared_on_what_it_has(make_run) -> None:
    run: Run = make_run("bad", events=_finished(2, 0.3, 0.8))
    run.config_path.write_text("[1, 2]")
    m = collect_metrics(run)
    assert m.config is None and m.test_acc == 0.8
    assert "JSON object" in m.problem
