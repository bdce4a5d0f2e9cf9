"""The out-of-distribution splits wherever test results appear: the evaluation screen,
the comparison (F3 table, `nsm-tui compare` as a table, csv and json), the Markdown
reports and the export; and runs made before them still show, with a dash."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from analysis_fixtures import analysis_app, copy_trained_run, settle, trained_template, widget_text, write_run
from textual.widgets import DataTable

from nsm.runs import Run, RunStore
from nsm.runs.compare import build_comparison, metrics_table
from nsm.runs.export import export_run
from tui.cli import main
from tui.cli.records import COMPARE_COLUMNS
from tui.reports import comparison_report, run_report
from tui.screens.compare import CompareScreen
from tui.screens.evaluation import EvaluationScreen

PLAN_OOD = {"ood_steps_11_20": 0.7412, "ood_steps_21_40": 0.6234}
CAUSAL_OOD = {"ood_large": 0.8101}


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_template(tmp_path_factory.mktemp("trained"))


def _with_ood(run: Run, accs: dict[str, float]) -> Run:
    """final_results.json as the engine now writes it: `ood` beside `test` (the log stays old)."""
    results = json.loads((run.path / "final_results.json").read_text())
    results["ood"] = {
        name: {"count": 300, "acc": acc, "loss": 0.5, "per_subtype": {"valid": {"acc": acc, "count": 150}, "swap": {"acc": 0.4, "count": 150}}}
        for name, acc in accs.items()
    }
    run.write_results(results)
    return run


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    """planning and causal with OOD results, kg from before them."""
    store = RunStore(tmp_path / "runs")
    _with_ood(write_run(store, "plan-a", domain="planning", epochs=3, best_acc=0.9, started=1.7e9), PLAN_OOD)
    _with_ood(write_run(store, "causal-b", domain="causal", epochs=3, best_acc=0.8, started=1.7e9 + 60), CAUSAL_OOD)
    write_run(store, "kg-old", domain="kg", epochs=3, best_acc=0.7, started=1.7e9 + 120)
    return store


# ------------------------------------------------------------------ evaluation


async def _evaluation(app, pilot, run: Run) -> EvaluationScreen:  # type: ignore[no-untyped-def]
    await pilot.pause()
    app.push_screen(EvaluationScreen(run, "best_model.pt"))
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, EvaluationScreen) and screen.error is None, getattr(screen, "error", None)
    return screen


async def test_the_evaluation_screen_shows_the_ood_splits_beside_test(template: Path, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run = copy_trained_run(template, store, "tiny")
    saved = json.loads(run.evaluation_path("best_model.pt").read_text())
    assert list(saved["ood"]) == ["ood_steps_11_20", "ood_steps_21_40"]  # written at the end of the run
    app = analysis_app(store.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _evaluation(app, pilot, run)
        text = widget_text(screen.query_one("#eval-ood"))
        lines = {line.split()[0] + (" " + line.split()[1] if line.split()[0] == "OOD" else ""): line for line in text.splitlines() if line.strip()}
        assert f"{100 * saved['acc']:.1f}%" in lines["test"]
        for name, label in (("ood_steps_11_20", "OOD 11-20"), ("ood_steps_21_40", "OOD 21-40")):
            ev = saved["ood"][name]
            assert f"{100 * ev['acc']:.1f}%" in lines[label] and str(ev["count"]) in lines[label]


async def test_an_evaluation_saved_before_the_ood_splits_shows_a_dash(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run = write_run(store, "old", domain="planning", epochs=3)
    ckpt = run.path / "best_model.pt"
    saved = {**json.loads((run.path / "final_results.json").read_text())["test"], "checkpoint": "best_model.pt", "split": "test"}
    run.evaluation_path("best_model.pt").write_text(json.dumps(saved))
    import os

    os.utime(ckpt, (1.6e9, 1.6e9))  # older than the saved evaluation: it is reused
    app = analysis_app(store.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _evaluation(app, pilot, run)
        assert screen.result is not None and screen.result["reused"] is True
        assert "Out-of-distribution splits: —" in widget_text(screen.query_one("#eval-ood"))
    assert "no out-of-distribution splits in this evaluation" in run_report(run)


# --------------------------------------------------------------------- compare


def _labels(screen: CompareScreen) -> list[str]:
    table = screen.query_one("#compare-metrics", DataTable)
    return [str(c.label) for c in table.columns.values()]


async def _compare_labels(store: RunStore, size: tuple[int, int]) -> tuple[list[str], dict[str, list[str]]]:
    app = analysis_app(store.root)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("f3")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        table = screen.query_one("#compare-metrics", DataTable)
        rows = [[widget_text(c).strip() for c in table.get_row_at(i)] for i in range(table.row_count)]
        return _labels(screen), {row[1]: row for row in rows}


async def test_compare_shows_one_column_per_ood_split_where_there_is_room(store: RunStore) -> None:
    labels, rows = await _compare_labels(store, (160, 40))
    # First seen first (causal, then planning); where room is short a label loses its "OOD ".
    full = {"large": "OOD large", "11-20": "OOD 11-20", "21-40": "OOD 21-40"}
    after_test = [full.get(label, label) for label in labels[labels.index("test loss") + 1 : labels.index("test loss") + 4]]
    assert after_test == ["OOD large", "OOD 11-20", "OOD 21-40"]
    at = {full.get(label, label): i for i, label in enumerate(labels)}
    assert rows["plan-a"][at["OOD 11-20"]] == "0.7412" and rows["plan-a"][at["OOD large"]] == "-"
    assert rows["causal-b"][at["OOD large"]] == "0.8101"
    assert all(rows["kg-old"][at[label]] == "-" for label in full.values())  # a run from before the OOD splits

    narrow, _ = await _compare_labels(store, (80, 24))
    assert narrow == [label for label in labels if label not in full and label not in full.values()]  # dropped first, the rest stays


def test_compare_csv_and_json_have_an_ood_column_per_split(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--runs-dir", str(store.root), "compare", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    at = list(COMPARE_COLUMNS).index("test_loss") + 1
    assert list(df.columns) == [*COMPARE_COLUMNS[:at], "ood_large_acc", "ood_steps_11_20_acc", "ood_steps_21_40_acc", *COMPARE_COLUMNS[at:]]
    by_run = df.set_index("run")
    assert by_run.loc["plan-a", "ood_steps_21_40_acc"] == PLAN_OOD["ood_steps_21_40"]
    assert by_run.loc["causal-b", "ood_large_acc"] == CAUSAL_OOD["ood_large"]
    assert pd.isna(by_run.loc["kg-old", "ood_large_acc"])
    assert main(["--runs-dir", str(store.root), "compare", "kg-old", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert list(rows[0]) == list(COMPARE_COLUMNS)  # no run with OOD numbers: the columns as before


def test_compare_table_in_the_cli_keeps_ood_columns_when_wide(store: RunStore, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "240")
    assert main(["--runs-dir", str(store.root), "compare"]) == 0
    wide = capsys.readouterr().out
    assert "OOD 11-20" in wide and "0.7412" in wide
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--runs-dir", str(store.root), "compare"]) == 0
    narrow = capsys.readouterr().out
    assert "OOD" not in narrow and "test acc" in narrow and "threads" in narrow


def test_reports_and_exports_carry_the_ood_numbers(store: RunStore, tmp_path: Path) -> None:
    runs = [store.get(ref) for ref in ("plan-a", "causal-b", "kg-old")]
    columns, rows = metrics_table(build_comparison(runs))
    assert "OOD large" in columns
    report = comparison_report(runs)
    assert "| OOD 11-20 | OOD 21-40 | OOD large |" in report  # the runs as given: planning first and "0.7412" in report
    plan = run_report(runs[0])
    assert "| OOD 11-20 acc | 0.7412 |" in plan and "## Test evaluation" in plan
    assert "| OOD 21-40 | 300 | 0.6234 | 0.5 | swap 40% |" in plan  # graphs, acc, loss, worst subtype
    assert "OOD" not in run_report(runs[2]).split("## Config")[0]  # an old run: no OOD rows, no error

    _, results_path = export_run(runs[0], "json", tmp_path / "out")
    exported = json.loads(results_path.read_text())
    assert exported["ood_acc"] == PLAN_OOD and exported["final_results"]["ood"]["ood_steps_11_20"]["acc"] == PLAN_OOD["ood_steps_11_20"]
    _, csv_path = export_run(runs[0], "csv", tmp_path / "out")
    assert "ood_acc.ood_steps_21_40,0.6234" in csv_path.read_text()
    assert json.loads(export_run(runs[2], "json", tmp_path / "old")[1].read_text())["ood_acc"] == {}
