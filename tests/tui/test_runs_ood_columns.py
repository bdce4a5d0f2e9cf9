"""The out-of-distribution accuracies in the runs list: `nsm-tui runs list` (table, csv,
json) and F2. One column per split after test acc when some listed run has one, the first
to go when the room is short; a store without them lists what it always listed.
Hand-written runs, nothing trains."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

import pytest
from analysis_fixtures import analysis_app, settle, widget_text, write_run
from textual.widgets import DataTable

from nsm.runs import Run, RunStore
from tui.cli import main
from tui.cli.records import RUN_COLUMNS
from tui.screens.runs import RunsScreen

PLAN_OOD = {"ood_steps_11_20": 0.7412, "ood_steps_21_40": 0.6234}
CAUSAL_OOD = {"ood_large": 0.8101}
FULL = {"11-20": "OOD 11-20", "21-40": "OOD 21-40", "large": "OOD large"}


def with_ood_in_log(run: Run, accs: dict[str, float]) -> Run:
    """The finished event as the engine now logs it: `ood` beside `test`."""
    lines = []
    for line in run.events_path.read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "finished":
            event["ood"] = {name: {"acc": acc, "loss": 0.5} for name, acc in accs.items()}
        lines.append(json.dumps(event, separators=(",", ":")))
    run.events_path.write_text("\n".join(lines) + "\n")
    return run


def _store(root: Path, ood: bool = True) -> RunStore:
    """planning and causal runs with OOD numbers (when `ood`), a kg run from before them."""
    store = RunStore(root)
    now = time.time()
    plan = write_run(store, "plan-a", domain="planning", epochs=3, best_acc=0.9, started=now - 300)
    causal = write_run(store, "causal-b", domain="causal", epochs=3, best_acc=0.8, started=now - 200)
    write_run(store, "kg-old", domain="kg", epochs=3, best_acc=0.7, started=now - 100)
    if ood:
        with_ood_in_log(plan, PLAN_OOD)
        with_ood_in_log(causal, CAUSAL_OOD)
    return store


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return _store(tmp_path / "runs")


@pytest.fixture
def old_store(tmp_path: Path) -> RunStore:
    return _store(tmp_path / "old", ood=False)


# ------------------------------------------------------------------ the CLI


def _list(store: RunStore, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["runs", "list", *argv, "--runs-dir", str(store.root)]) == 0
    return capsys.readouterr().out


def _header(out: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith("domain"))
    return re.split(r"\s{2,}", line.strip())


def test_runs_list_has_an_ood_column_per_split_the_first_to_go(store: RunStore, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "200")
    wide = _list(store, capsys)
    labels = _header(wide)
    at = labels.index("test acc") + 1
    assert labels[at : at + 4] == ["OOD large", "OOD 11-20", "OOD 21-40", "started"]  # first seen (causal) first
    rows = {line.split()[1]: re.split(r"\s{2,}", line.strip()) for line in wide.splitlines() if line.split()[:1] in (["planning"], ["causal"], ["kg"])}
    assert rows["plan-a"][at : at + 3] == ["-", "0.7412", "0.6234"]
    assert rows["causal-b"][at : at + 3] == ["0.8101", "-", "-"]
    assert rows["kg-old"][at : at + 3] == ["-", "-", "-"]  # a run from before them

    # At 80 columns the OOD columns are the first to go: the rest is what a store without
    # OOD numbers shows (the start time, next in line, stays).
    monkeypatch.setenv("COLUMNS", "80")
    narrow = _list(store, capsys)
    assert "OOD" not in narrow and "0.7412" not in narrow
    assert _header(narrow) == ["domain", "run", "status", "ep", "val acc", "val loss", "test", "started"]


def test_runs_list_at_80_columns_matches_a_store_without_ood_numbers(store: RunStore, old_store: RunStore, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "80")
    assert _header(_list(store, capsys)) == _header(_list(old_store, capsys))


def test_runs_list_csv_and_json_have_an_acc_column_per_split(store: RunStore, old_store: RunStore, capsys) -> None:  # type: ignore[no-untyped-def]
    table = list(csv.DictReader(io.StringIO(_list(store, capsys, "--format", "csv"))))
    header = list(table[0])
    at = list(RUN_COLUMNS).index("test_loss") + 1
    ood = header[at : at + 3]  # first seen first, in the listing's order
    assert sorted(ood) == ["ood_large_acc", "ood_steps_11_20_acc", "ood_steps_21_40_acc"]
    assert ood.index("ood_steps_11_20_acc") + 1 == ood.index("ood_steps_21_40_acc")
    assert header == [*RUN_COLUMNS[:at], *ood, *RUN_COLUMNS[at:]]
    by_run = {row["run"]: row for row in table}
    assert float(by_run["plan-a"]["ood_steps_21_40_acc"]) == PLAN_OOD["ood_steps_21_40"]
    assert float(by_run["causal-b"]["ood_large_acc"]) == CAUSAL_OOD["ood_large"]
    assert by_run["kg-old"]["ood_large_acc"] == "" and by_run["plan-a"]["ood_large_acc"] == ""
    rows = {r["run"]: r for r in json.loads(_list(store, capsys, "--format", "json"))}
    assert rows["plan-a"]["ood_steps_11_20_acc"] == 0.7412 and rows["kg-old"]["ood_steps_11_20_acc"] is None
    # No run with OOD numbers: the columns as before.
    assert _list(old_store, capsys, "--format", "csv").splitlines()[0] == ",".join(RUN_COLUMNS)
    assert list(json.loads(_list(old_store, capsys, "--json"))[0]) == list(RUN_COLUMNS)


# ----------------------------------------------------------------------- F2


async def _f2(store: RunStore, size: tuple[int, int], tmp_path: Path) -> tuple[list[str], dict[str, list[str]]]:
    app = analysis_app(store.root, settings_dir=tmp_path / "settings")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("f2")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one("#runs-table", DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        rows = [[widget_text(cell).strip() for cell in table.get_row_at(i)] for i in range(table.row_count)]
        return labels, {row[2]: row for row in rows}


async def test_f2_shows_an_ood_column_per_split_where_there_is_room(store: RunStore, old_store: RunStore, tmp_path: Path) -> None:
    labels, rows = await _f2(store, (160, 40), tmp_path)
    at = labels.index("test acc") + 1
    ood = [FULL.get(label, label) for label in labels[at : at + 3]]
    assert sorted(ood) == ["OOD 11-20", "OOD 21-40", "OOD large"] and labels[at + 3] == "started"
    col = {FULL.get(label, label): i for i, label in enumerate(labels)}
    assert rows["plan-a"][col["OOD 11-20"]] == "0.7412" and rows["plan-a"][col["OOD 21-40"]] == "0.6234"
    assert rows["plan-a"][col["OOD large"]] == "-" and rows["causal-b"][col["OOD large"]] == "0.8101"
    assert all(rows["kg-old"][col[label]] == "-" for label in FULL.values())

    # 80×24: the OOD columns go before anything else; what stays is what a store without
    # OOD numbers shows at that size.
    narrow, _ = await _f2(store, (80, 24), tmp_path)
    assert not any(label in FULL or label in FULL.values() for label in narrow)
    old_narrow, _ = await _f2(old_store, (80, 24), tmp_path)
    assert narrow == old_narrow
    old_wide, _ = await _f2(old_store, (160, 40), tmp_path)
    assert old_wide == [label for label in labels if label not in FULL and label not in FULL.values()]
