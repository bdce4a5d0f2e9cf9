"""Tables at 80 columns: `runs list`, `sweep show`, the column-fitting rule and the
dashboard's header. Every run name and number is shown whole; what is dropped comes
back at 160 columns. Hand-written stores, nothing trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from narrow_fixtures import LONG_RUNS, RANKED_SWEEP, write_long_names_store, write_ranked_sweep
from textual.app import App, ComposeResult

from nsm.runs import RunStore
from tui.cli import main
from tui.columns import DATA_TABLE, PLAIN, Column, fit_columns
from tui.widgets.status_line import StatusLine


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = write_long_names_store(tmp_path / "r")
    write_ranked_sweep(store)
    return store


def cli_output(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, width: int, *argv: str) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


def _numbers(line: str) -> list[str]:
    return re.findall(r"\d+\.\d+", line)


def test_the_fitting_rule_shortens_labels_then_drops_the_least_important_never_a_kept_column() -> None:
    columns = [
        Column("run", keep=True),
        Column("status", priority=90),
        Column("best val loss", priority=80, short="val loss"),
        Column("started", priority=10),
    ]
    rows = [["a-rather-long-run-name-01", "finished", "0.4123", "2026-12-01 20:44"]]
    wide = fit_columns(columns, rows, 160, PLAIN)
    assert wide.labels == ("run", "status", "best val loss", "started")
    assert fit_columns(columns, rows, 63, PLAIN).labels == ("run", "status", "val loss", "started")
    # Dropping "started" frees enough room for every full label again (all or none).
    assert fit_columns(columns, rows, 55, PLAIN).labels == ("run", "status", "best val loss")
    narrow = fit_columns(columns, rows, 20, DATA_TABLE)
    assert narrow.labels == ("run",) and narrow.pick(rows[0]) == ["a-rather-long-run-name-01"]


def test_runs_list_at_80_columns_shows_every_name_and_number_whole(store: RunStore, capsys, monkeypatch) -> None:
    lines = cli_output(capsys, monkeypatch, 80, "runs", "list", "--runs-dir", str(store.root))
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("domain")) :]  # the title may wrap
    assert all(len(line) <= 80 for line in table), [line for line in table if len(line) > 80]
    assert not any("…" in line for line in lines)
    for name, _domain, _outcome, _epochs in LONG_RUNS:
        assert any(re.search(rf"\b{re.escape(name)}(\s|$)", line) for line in table), name
    header = table[0].split()
    assert header[:3] == ["domain", "run", "status"] and "started" not in header
    # The numbers shown are the store's, in full.
    by_name = {r.name: r for r in store.list_runs()}
    row = next(line for line in table if line.split()[1:2] == ["planning-20261201-204454-6a7d"])
    assert f"{by_name['planning-20261201-204454-6a7d'].best_val_loss:.4f}".rstrip("0") in row

    wide = cli_output(capsys, monkeypatch, 160, "runs", "list", "--runs-dir", str(store.root))
    assert wide[1].split() == ["domain", "run", "status", "epochs", "best", "val", "acc", "best", "val", "loss", "test", "acc", "started"]


def test_sweep_show_at_80_columns_ranks_by_val_loss_and_keeps_names_and_numbers_whole(store: RunStore, capsys, monkeypatch) -> None:
    lines = cli_output(capsys, monkeypatch, 80, "sweep", "show", RANKED_SWEEP, "--runs-dir", str(store.root))
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert not any("…" in line for line in lines)
    for n in range(1, 9):
        assert any(line.endswith(f"{RANKED_SWEEP}-0{n}") for line in lines), n
    start = next(i for i, line in enumerate(lines) if line.startswith("results ranked by best val loss"))
    results = lines[start + 2 : start + 10]
    assert [line.split()[0] for line in results][:1] == ["*"]
    # Point 5 ties point 2 on val loss and wins on val acc; point 7's best test acc does not count.
    assert [int(line.lstrip("* ").split()[0]) for line in results] == [5, 2, 3, 1, 7, 6, 4, 8]
    assert _numbers(results[0])[:2] == ["0.0003", "0.01"]
    assert "0.41" in results[0].split() and "0.86" in results[0].split()
    assert "CYC_W" in lines[start + 1] and "best val loss" not in lines[start + 1]  # labels shortened

    wide = cli_output(capsys, monkeypatch, 160, "sweep", "show", RANKED_SWEEP, "--runs-dir", str(store.root))
    start = next(i for i, line in enumerate(wide) if line.startswith("results ranked by"))
    assert "CYCLE_WEIGHT" in wide[start + 1] and "best val loss" in wide[start + 1] and "test loss" in wide[start + 1]


def test_sweep_show_csv_is_not_fitted(store: RunStore, capsys, monkeypatch) -> None:
    lines = cli_output(capsys, monkeypatch, 80, "sweep", "show", RANKED_SWEEP, "--format", "csv", "--runs-dir", str(store.root))
    assert lines[0].split(",")[:4] == ["point", "run", "state", "best"] and "test_acc" in lines[0]
    assert lines[1].split(",")[:4] == ["5", f"planning/{RANKED_SWEEP}-05", "done", "True"]


class _Header(App[None]):
    def compose(self) -> ComposeResult:
        yield StatusLine()


async def test_the_dashboard_header_drops_parts_by_priority_never_the_run_name() -> None:
    ref = "planning/planning-20261201-204454-6a7d"
    app = _Header()
    async with app.run_test(size=(80, 3)) as pilot:
        line = app.query_one(StatusLine)
        line.set_status(ref, "running", "process (pid 123456)", "cuda ×1", "writing a checkpoint…", "charts 1/3")
        await pilot.pause()
        shown = str(line.render_line(0).text)
        assert ref in shown and "running" in shown and "charts 1/3" in shown and "(pid" not in shown
        assert "writing a checkpoint" in line.plain  # the full text, for tests and logs
        await pilot.resize_terminal(160, 3)
        await pilot.pause()
        assert "process (pid 123456)" in str(line.render_line(0).text)


def test_on_a_terminal_the_rich_tables_fit_80_columns_too(store: RunStore, capsys, monkeypatch) -> None:
    monkeypatch.setattr("tui.cli.console.is_tty", lambda: True)
    lines = cli_output(capsys, monkeypatch, 80, "runs", "list", "--runs-dir", str(store.root))
    lines += cli_output(capsys, monkeypatch, 80, "sweep", "show", RANKED_SWEEP, "--runs-dir", str(store.root))
    assert all(len(line) <= 80 for line in lines) and not any("…" in line for line in lines)
    for name, *_ in LONG_RUNS:
        assert any(f" {name} " in line for line in lines), name
    assert any("★" in line and " 5 " in line for line in lines)
