"""Checkpoint analysis only: browse a run made earlier, open its best model,
evaluate, read the confusion matrix and the report.

One tiny run (60 graphs, width 16) is trained once per session with the real
engine and copied into each test's store, so the checkpoints are real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from analysis_fixtures import analysis_app, copy_trained_run, notifications, settle, trained_template, widget_text, write_run
from textual.widgets import DataTable, ProgressBar

from nsm.runs import Run, RunStore
from tui.screens.evaluation import EvaluationScreen
from tui.screens.runs import RunsScreen
from tui.widgets.stacked_bars import StackedBarChart


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_template(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.fixture
def tiny(template: Path, store: RunStore) -> Run:
    return copy_trained_run(template, store, "tiny")


def stage(screen: EvaluationScreen) -> str:
    return widget_text(screen.query_one("#eval-stage"))


async def open_checkpoint(app, pilot, file: str) -> EvaluationScreen:  # type: ignore[no-untyped-def]
    """F2, then enter (to the run's checkpoints), the checkpoint, enter."""
    await pilot.press("f2")
    await settle(app, pilot)
    runs = app.screen
    assert isinstance(runs, RunsScreen)
    await pilot.press("enter")
    table = runs.query_one("#ckpt-table", DataTable)
    assert runs.focused is table
    files = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
    for _ in range(files.index(file)):
        await pilot.press("down")
    await pilot.press("enter")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, EvaluationScreen)
    return screen


async def test_checkpoint_analysis_open_best_evaluate_read_confusion_matrix_and_report(tiny: Run, store: RunStore) -> None:
    saved = json.loads(tiny.evaluation_path("best_model.pt").read_text())
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 36)) as pilot:
        screen = await open_checkpoint(app, pilot, "best_model.pt")
        assert screen.error is None, screen.error
        assert "saved evaluation" in stage(screen)  # the engine evaluated best_model.pt at the end: reused
        assert not screen.query_one("#eval-progress", ProgressBar).display

        summary = widget_text(screen.query_one("#eval-summary"))
        assert f"{100 * saved['acc']:.1f}%" in summary and "macro F1" in summary
        confusion = widget_text(screen.query_one("#eval-confusion"))
        (tn, fp), (fn, tp) = saved["confusion"]
        neg_line = next(line for line in confusion.splitlines() if line.strip().startswith("negative"))
        pos_line = next(line for line in confusion.splitlines() if line.strip().startswith("positive"))
        assert neg_line.split()[1] == str(tn) and neg_line.split()[3] == str(fp)
        assert pos_line.split()[1] == str(fn) and pos_line.split()[3] == str(tp)
        per_class = widget_text(screen.query_one("#eval-perclass"))
        support = saved["per_class"]["positive"]["support"]
        assert next(line for line in per_class.splitlines() if "positive" in line).split()[-1] == str(support)
        baselines = widget_text(screen.query_one("#eval-baselines"))
        majority = saved["baselines"]["majority"]["test_acc"]
        assert "model" in baselines and "structure-blind" in baselines
        assert f"{100 * majority:.1f}%" in next(line for line in baselines.splitlines() if "majority" in line)
        chart = screen.query_one("#eval-confidence", StackedBarChart)
        assert chart.stacked is not None
        right, wrong = (values for _, values in chart.stacked.series)
        assert sum(right) + sum(wrong) == saved["count"]
        subtypes = widget_text(screen.query_one("#eval-subtypes"))
        assert all(name in subtypes for name in saved["per_subtype"])

        await pilot.press("m")
        await settle(app, pilot)
        report = (tiny.path / "tiny_report.md").read_text()
        assert "## Test evaluation" in report and "Confusion matrix" in report
        assert f"| negative | {tn} | {fp} |" in report
        assert any("tiny_report.md" in n for n in notifications(app))

        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_a_checkpoint_without_a_saved_evaluation_is_evaluated_with_progress_and_saved(tiny: Run, store: RunStore, monkeypatch) -> None:
    progress: list[tuple[int, int]] = []
    real = EvaluationScreen._progress
    monkeypatch.setattr(EvaluationScreen, "_progress", lambda self, done, total: (progress.append((done, total)), real(self, done, total))[1])
    saved_path = tiny.evaluation_path("checkpoint_epoch_2.pt")
    assert not saved_path.exists()
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 36)) as pilot:
        screen = await open_checkpoint(app, pilot, "checkpoint_epoch_2.pt")
        assert screen.error is None, screen.error
        result = screen.result
        assert result is not None and result["reused"] is False and result["checkpoint"] == "checkpoint_epoch_2.pt"
        assert progress and progress[-1] == (result["count"], result["count"])
        bar = screen.query_one("#eval-progress", ProgressBar)
        assert (bar.progress, bar.total) == (result["count"], result["count"])
        assert "evaluated in" in stage(screen) and "(epoch 2)" in widget_text(screen.query_one("#eval-title"))
        assert json.loads(saved_path.read_text())["acc"] == result["acc"]

        # Opened again: the saved evaluation is reused; R evaluates from scratch.
        await pilot.press("escape")
        await pilot.press("e")
        await settle(app, pilot)
        again = app.screen
        assert isinstance(again, EvaluationScreen) and again.result["reused"] is True
        assert "saved evaluation" in stage(again)
        await pilot.press("R")
        await settle(app, pilot)
        assert again.result["reused"] is False and again.result["acc"] == result["acc"]


async def test_a_corrupt_checkpoint_is_explained_and_the_app_carries_on(tiny: Run, store: RunStore) -> None:
    (tiny.path / "checkpoint_epoch_2.pt").write_bytes(b"this is not a checkpoint")
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 36)) as pilot:
        screen = await open_checkpoint(app, pilot, "checkpoint_epoch_2.pt")
        assert screen.result is None
        assert "Evaluation failed" in stage(screen) and "checkpoint_epoch_2.pt" in stage(screen)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_a_run_without_checkpoints_has_nothing_to_evaluate(store: RunStore) -> None:
    write_run(store, "early", epochs=10, epochs_done=0, outcome="failed")
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 36)) as pilot:
        await pilot.press("f2")
        await settle(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
        assert isinstance(app.screen, RunsScreen)
        assert any("no checkpoint yet" in n for n in notifications(app))
