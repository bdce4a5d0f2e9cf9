"""The runs & checkpoints screen (F2) in the real app, driven headless.

Runs are prepared directories (config.json + events.jsonl + small stand-in
checkpoint files): nothing here trains or opens a checkpoint.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from analysis_fixtures import (
    analysis_app,
    notifications,
    screen_text,
    settle,
    wait_for_screen,
    widget_text,
    write_large_store,
    write_run,
)
from textual.widgets import DataTable, Input

from nsm.runs import RunStore
from tui.dialogs.analysis_dialogs import ConfirmDialog, ExportDialog, InfoDialog
from tui.screens.runs import RunsScreen


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    """A store with every kind of run the browser must cope with."""
    store = RunStore(tmp_path / "runs")
    now = time.time()
    write_run(store, "alpha", domain="planning", epochs=6, started=now - 500, lr=0.001, eval_every=2, save_every=3)
    write_run(store, "bravo", domain="planning", epochs=6, started=now - 400, lr=0.0003, cycle_weight=0.1, eval_every=2, save_every=3, best_acc=0.95)
    write_run(store, "failed-one", domain="causal", epochs=10, epochs_done=3, outcome="failed", started=now - 300)
    write_run(store, "stale-one", domain="kg", epochs=10, epochs_done=4, outcome=None, started=now - 200)
    write_run(store, "paused", domain="kg", epochs=10, epochs_done=5, outcome="interrupted", started=now - 100, save_every=5)
    corrupt = write_run(store, "corrupt", domain="causal", epochs=4, started=now - 50)
    corrupt.config_path.write_text("{this is not json")
    truncated = write_run(store, "truncated", domain="planning", epochs=4, epochs_done=2, outcome=None, started=now - 20)
    with open(truncated.events_path, "ab") as fh:
        fh.write(b'{"v":1,"seq":99,"t":1.0,"type":"epoch_end","epo')  # cut mid-write
    return store


def runs_screen(app) -> RunsScreen:  # type: ignore[no-untyped-def]
    screen = app.screen
    assert isinstance(screen, RunsScreen), f"expected the runs screen, found {type(screen).__name__}"
    return screen


def table_rows(screen: RunsScreen) -> list[list[str]]:
    table = screen.query_one("#runs-table", DataTable)
    return [[widget_text(cell).strip() for cell in table.get_row_at(i)] for i in range(table.row_count)]


def shown_names(screen: RunsScreen) -> list[str]:
    return [row[2] for row in table_rows(screen)]


async def open_runs(app, pilot) -> RunsScreen:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await pilot.press("f2")
    await settle(app, pilot)
    return runs_screen(app)


async def move_to(screen: RunsScreen, pilot, name: str) -> None:  # type: ignore[no-untyped-def]
    table = screen.query_one("#runs-table", DataTable)
    table.focus()
    ref = next(r.ref for r in screen.shown if r.summary.name == name)
    table.move_cursor(row=table.get_row_index(ref))
    await settle(screen.app, pilot)


async def test_runs_are_grouped_by_domain_with_status_and_metrics(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        rows = {row[2]: row for row in table_rows(screen)}
        assert set(rows) == {"alpha", "bravo", "failed-one", "stale-one", "paused", "corrupt", "truncated"}
        # Grouped: causal, then planning, then kg; the domain is printed on a group's first row only.
        domains = [r.summary.domain for r in screen.shown]
        assert domains == sorted(domains, key=["causal", "planning", "kg"].index)
        assert [row[1] for row in table_rows(screen)].count("planning") == 1
        assert rows["alpha"][3] == "finished" and rows["alpha"][4] == "6/6"
        assert rows["failed-one"][3] == "failed" and rows["failed-one"][4] == "3/10"
        assert rows["stale-one"][3] == "stale"
        assert rows["paused"][3] == "interrupted"
        assert rows["corrupt"][3] == "finished !"  # a problem marker; the config cannot be read
        assert rows["truncated"][3] == "stale" and rows["truncated"][4] == "2/4"
        assert float(rows["bravo"][5]) > float(rows["alpha"][5])  # best val acc
        assert rows["alpha"][9].endswith(("B", "K"))  # disk size

        await move_to(screen, pilot, "corrupt")
        detail = widget_text(screen.query_one("#run-detail"))
        assert "not valid JSON" in detail
        await move_to(screen, pilot, "failed-one")
        assert "CUDA out of memory" in widget_text(screen.query_one("#run-detail"))


async def test_checkpoints_of_the_highlighted_run_with_epoch_metrics_size_and_time(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "alpha")
        table = screen.query_one("#ckpt-table", DataTable)
        files = [widget_text(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert files == ["best_model.pt", "checkpoint_epoch_3.pt", "checkpoint_epoch_6.pt"]
        periodic = [widget_text(c).strip() for c in table.get_row_at(2)]
        assert periodic[1:3] == ["periodic", "6"]
        history = store.get("alpha").history()
        val_loss = history["val"]["loss"][history["val"]["epochs"].index(6)]
        assert float(periodic[3]) == pytest.approx(val_loss, abs=1e-4)  # val loss at that epoch
        assert periodic[5] == "64B"
        assert "Checkpoints of planning/alpha" in widget_text(screen.query_one("#ckpt-title"))


async def test_filter_box_narrows_by_name_domain_and_status(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await pilot.press("slash")
        assert isinstance(screen.focused, Input)
        await pilot.press(*"kg")
        assert sorted(shown_names(screen)) == ["paused", "stale-one"]
        await pilot.press("space", *"stale")
        assert shown_names(screen) == ["stale-one"]
        assert "1 of 7 runs" in widget_text(screen.query_one("#runs-status"))
        await pilot.press("enter")  # back to the table, filter kept
        assert isinstance(screen.focused, DataTable) and shown_names(screen) == ["stale-one"]
        await pilot.press("escape")  # clears the filter
        assert len(shown_names(screen)) == 7


async def test_sorting_cycles_columns_inside_domain_groups(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        planning = lambda: [n for n in shown_names(screen) if n in ("alpha", "bravo", "truncated")]  # noqa: E731
        assert planning() == ["truncated", "bravo", "alpha"]  # newest first
        await pilot.press("s")  # by name
        assert planning() == ["alpha", "bravo", "truncated"]
        assert "sort: name" in widget_text(screen.query_one("#runs-status"))
        await pilot.press("S")  # reversed
        assert planning() == ["truncated", "bravo", "alpha"]
        await pilot.press("s", "s", "s")  # status, epochs, val acc (highest first; none last)
        assert planning() == ["bravo", "alpha", "truncated"]


async def test_config_diff_of_two_marked_runs_lists_only_differing_keys(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "alpha")
        await pilot.press("space")
        await move_to(screen, pilot, "bravo")
        await pilot.press("space")
        assert screen.marked == ["planning/alpha", "planning/bravo"]
        await pilot.press("d")
        dialog = await wait_for_screen(app, pilot, InfoDialog)
        text = widget_text(dialog.query_one("#info-body"))
        assert "2 setting(s) differ" in dialog.title_text
        lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
        assert lines["lr"] == ["0.001", "0.0003"] and lines["cycle_weight"] == ["0.01", "0.1"]
        assert "epochs" not in lines and "domain" not in lines
        await pilot.press("escape")
        assert runs_screen(app) is screen

        # One mark only: nothing to diff, and the screen says how.
        screen.marked = []
        await pilot.press("d")
        assert any("Mark two runs" in n for n in notifications(app))


async def test_show_config_and_a_corrupt_config_explained(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "bravo")
        await pilot.press("c")
        await wait_for_screen(app, pilot, InfoDialog)
        body = widget_text(app.screen.query_one("#info-body"))
        assert "cycle_weight" in body and "0.1" in body
        await pilot.press("escape")
        await move_to(screen, pilot, "corrupt")
        await pilot.press("c")
        await wait_for_screen(app, pilot, InfoDialog)
        assert "not valid JSON" in widget_text(app.screen.query_one("#info-body"))


async def test_delete_asks_first_and_refuses_a_running_run(store: RunStore) -> None:
    running = write_run(store, "live", domain="kg", epochs=10, epochs_done=2, outcome=None, started=time.time())
    running.write_process_info(os.getpid(), "process", "python -m nsm.training.worker")  # alive, on this host
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        alpha = store.get("alpha").path

        await move_to(screen, pilot, "alpha")
        await pilot.press("x")
        await wait_for_screen(app, pilot, ConfirmDialog)
        assert str(alpha) in widget_text(app.screen.query_one("#confirm-message"))
        await pilot.press("n")
        await settle(app, pilot)
        assert alpha.exists() and "alpha" in shown_names(screen)

        await pilot.press("x")
        await wait_for_screen(app, pilot, ConfirmDialog)
        await pilot.press("enter")  # the focused button is Cancel: enter out of habit deletes nothing
        await settle(app, pilot)
        assert alpha.exists()

        await pilot.press("delete")
        await wait_for_screen(app, pilot, ConfirmDialog)
        await pilot.press("y")
        await settle(app, pilot)
        assert not alpha.exists()
        assert "alpha" not in shown_names(screen)
        assert any("Deleted planning/alpha" in n for n in notifications(app))

        await move_to(screen, pilot, "live")
        assert table_rows(screen)[[r.summary.name for r in screen.shown].index("live")][3] == "running"
        await pilot.press("x")
        await settle(app, pilot)
        assert not isinstance(app.screen, ConfirmDialog)
        assert running.path.exists()
        assert any("live is running" in n for n in notifications(app))


async def test_copy_path_puts_it_on_the_clipboard_and_shows_it(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "bravo")
        await pilot.press("y")
        path = str(store.get("bravo").path)
        assert app.clipboard == path
        assert any(path in n for n in notifications(app))
        # From the checkpoint table: the checkpoint's own path.
        await pilot.press("enter")
        await pilot.press("down", "y")
        assert app.clipboard == str(store.get("bravo").path / "checkpoint_epoch_3.pt")


async def test_attach_points_the_dashboard_at_the_run(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "paused")
        await pilot.press("a")
        await pilot.pause()
        assert app.current_mode == "dashboard"
        assert app.context.attached == "kg/paused"


def record_resumes(monkeypatch) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Resumes on the detached-process backend, recorded instead of launched (the runs here are stand-ins)."""
    from nsm.execution import Execution, LocalProcessBackend

    calls: list[tuple] = []

    def resume(self, plan, *, threads=None):  # type: ignore[no-untyped-def]
        calls.append((plan.run.ref, plan.file, plan.explicit, plan.rewinds))
        return Execution(plan.run, "process", pid=4242, checkpoint=plan.file)

    monkeypatch.setattr(LocalProcessBackend, "resume", resume)
    return calls


async def test_resume_follows_the_rules_and_the_runs_backend_from_the_chosen_checkpoint(store: RunStore, monkeypatch) -> None:
    calls = record_resumes(monkeypatch)
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "paused")
        await pilot.press("r")
        await wait_for_screen(app, pilot, ConfirmDialog)
        message = widget_text(app.screen.query_one("#confirm-message"))
        assert "checkpoint_epoch_5.pt (epoch 5)" in message and "as a background process" in message
        assert "discarded/" not in message  # the latest checkpoint: nothing is rewound
        await pilot.press("n")
        await settle(app, pilot)
        assert calls == []

        # Choose another checkpoint in the checkpoint table, then resume from it (the best
        # model is from epoch 5 too: the furthest point, so nothing is rewound).
        await pilot.press("enter")
        await pilot.press("down")
        assert screen.current_checkpoint_file() == "checkpoint_epoch_5.pt"
        await pilot.press("up")
        await pilot.press("r")
        await wait_for_screen(app, pilot, ConfirmDialog)
        message = widget_text(app.screen.query_one("#confirm-message"))
        assert "best_model.pt (epoch 5)" in message and "discarded/" not in message
        await pilot.press("y")
        await settle(app, pilot)
        assert calls == [("kg/paused", "best_model.pt", True, False)]
        assert any("Resumed kg/paused from best_model.pt (pid 4242)" in n for n in notifications(app))
        assert app.current_mode == "dashboard" and app.context.attached == "kg/paused"


async def test_resume_of_a_finished_run_needs_a_chosen_checkpoint(store: RunStore, monkeypatch) -> None:
    calls = record_resumes(monkeypatch)
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "alpha")
        await pilot.press("r")
        await settle(app, pilot)
        assert app.screen is screen and calls == []
        # The rules' own words (nsm.execution.rules), the same as the CLI's.
        assert any("run alpha already finished" in n and "pick one of its checkpoints" in n for n in notifications(app))


async def test_resume_is_refused_while_the_run_is_running(store: RunStore, monkeypatch) -> None:
    calls = record_resumes(monkeypatch)
    running = write_run(store, "live", domain="kg", epochs=10, epochs_done=2, outcome=None, started=time.time())
    running.write_process_info(os.getpid(), "process", "python -m nsm.training.worker")
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "live")
        await pilot.press("r")
        await settle(app, pilot)
        assert app.screen is screen and calls == []
        assert any("run live is still running" in n and "stop it first" in n for n in notifications(app))


async def test_an_in_process_resume_is_handed_to_the_dashboard(store: RunStore, monkeypatch) -> None:
    from tui.screens.dashboard import DashboardScreen

    calls = record_resumes(monkeypatch)
    write_run(store, "here", domain="kg", epochs=10, epochs_done=5, outcome="interrupted", save_every=5, backend="inprocess")
    handed: list[tuple] = []
    monkeypatch.setattr(DashboardScreen, "resume_ref", lambda self, ref, checkpoint=None: handed.append((ref, checkpoint)) or True)
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "here")
        await pilot.press("r")
        await wait_for_screen(app, pilot, ConfirmDialog)
        assert "inside this app" in widget_text(app.screen.query_one("#confirm-message"))
        await pilot.press("y")
        await settle(app, pilot)
        assert handed == [("kg/here", None)] and calls == []  # the latest checkpoint: none named
        assert app.current_mode == "dashboard"


async def test_resume_from_an_earlier_checkpoint_really_trains_again_detached(tmp_path: Path) -> None:
    """A real tiny run, then F2: back to epoch 2 of 4 as a detached process (the rewind moves epochs 3-4 aside)."""
    import asyncio

    from dashboard_fixtures import tiny_config

    from nsm.execution import InProcessBackend
    from nsm.runs import EventFollower

    store = RunStore(tmp_path / "runs")
    run = store.create_run(tiny_config(epochs=4, save_every=2, backend="process"), name="rewind")
    assert InProcessBackend().run_here(run).outcome == "finished"
    assert (run.path / "checkpoint_epoch_2.pt").exists()

    def wait_for(types: set[str], timeout: float = 180.0) -> dict:
        follower = EventFollower(run.events_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in follower.poll():
                if event["type"] in types:
                    return event
            time.sleep(0.1)  # a file another process writes
        raise AssertionError(f"none of {types} within {timeout} s")

    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "rewind")
        await pilot.press("enter")  # to the checkpoints
        table = screen.query_one("#ckpt-table", DataTable)
        table.move_cursor(row=table.get_row_index("checkpoint_epoch_2.pt"))
        await pilot.press("r")
        await wait_for_screen(app, pilot, ConfirmDialog)
        message = widget_text(app.screen.query_one("#confirm-message"))
        assert "checkpoint_epoch_2.pt (epoch 2)" in message and "discarded/" in message
        await pilot.press("y")
        await settle(app, pilot)
        assert app.current_mode == "dashboard" and app.context.attached == "planning/rewind"
        resumed = await asyncio.to_thread(wait_for, {"resumed"})
        assert resumed["checkpoint"] == "checkpoint_epoch_2.pt" and resumed["epoch"] == 2
    end = await asyncio.to_thread(wait_for, {"finished", "failed", "interrupted"})
    assert end["type"] == "finished", end
    assert (run.path / "discarded").is_dir()


async def test_runs_made_and_deleted_by_other_processes_show_up(store: RunStore) -> None:
    app = analysis_app(store.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        write_run(store, "newcomer", domain="causal", epochs=3)  # as another process would
        shutil.rmtree(store.get("bravo").path)
        await pilot.press("R")
        await settle(app, pilot)
        names = shown_names(screen)
        assert "newcomer" in names and "bravo" not in names

        # A run removed behind the screen's back: actions say so instead of failing.
        await move_to(screen, pilot, "alpha")
        shutil.rmtree(store.get("alpha").path)
        await pilot.press("e")
        await settle(app, pilot)
        assert app.screen is screen
        assert any("no longer exists" in n for n in notifications(app))


async def test_export_from_the_screen_writes_csv_json_and_a_markdown_report(store: RunStore, tmp_path: Path) -> None:
    app = analysis_app(store.root)
    out = tmp_path / "exported"
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(app, pilot)
        await move_to(screen, pilot, "alpha")
        await pilot.press("o")
        dialog = await wait_for_screen(app, pilot, ExportDialog)
        dialog.query_one("#export-dir", Input).value = str(out)
        await pilot.click("#export-all")
        await settle(app, pilot)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["alpha_history.csv", "alpha_history.json", "alpha_report.md", "alpha_results.csv", "alpha_results.json"]
    with open(out / "alpha_history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and rows[0]["val_loss"] == "" and rows[1]["val_loss"] != ""  # EVAL_EVERY=2
    assert json.loads((out / "alpha_results.json").read_text())["status"] == "finished"
    report = (out / "alpha_report.md").read_text()
    assert report.startswith("# Run `planning/alpha`")
    assert "| true \\ predicted | negative | positive |" in report and "| negative | 120 | 30 |" in report
    assert "```text" in report and "accuracy" in report  # the curves, drawn as text


async def test_a_store_of_200_runs_opens_and_filters(tmp_path: Path) -> None:
    store = write_large_store(tmp_path / "runs", runs=200, epochs=30)
    app = analysis_app(store.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(app, pilot)
        assert screen.query_one("#runs-table", DataTable).row_count == 200
        await pilot.press("slash", *"kg-run-00")
        assert sorted(shown_names(screen)) == ["kg-run-002", "kg-run-005", "kg-run-008"]
        assert "kg-run-002" in screen_text(app)


async def test_a_modal_run_resumes_on_modal_with_the_rules_read_against_the_volume(tmp_path: Path, monkeypatch) -> None:
    """A Modal run stopped mid-way (over the fake Modal of tests/remote): F2's r plans off the
    event loop against the volume's checkpoints and resumes it there, then follows it."""
    import asyncio

    from dashboard_fixtures import tiny_config

    from remote import config as rc
    from remote.client import ModalClient
    from tests.remote.fake_modal import FakeModal
    from tui.modal_runs import MirrorThread, start_modal_run, stop_modal_run

    fast = dict(poll_timeout_s=0.1, probe_every_s=0.3, fill_every_s=0.1, lease_renew_s=0.5)
    for name, value in (("LIVENESS_PROBE_S", 0.3), ("FORWARD_INTERVAL_S", 0.05), ("STOP_POLL_S", 0.05)):
        monkeypatch.setattr(rc, name, value)
    fake = FakeModal(tmp_path / "modal")
    client = ModalClient(api=fake, control_timeout=5.0, app_start_timeout=5.0, app_mode="auto")
    mirrors: list[MirrorThread] = []

    def mirror_thread(run) -> int:  # type: ignore[no-untyped-def]
        mirrors.append(MirrorThread(run, modal=client, **fast).start())
        return 4242

    monkeypatch.setattr("remote.backend.shared_client", lambda: client)
    monkeypatch.setattr("remote.backend.start_mirror_process", mirror_thread)
    monkeypatch.setattr("remote.backend.ensure_mirror", lambda run: None)
    store = RunStore(tmp_path / "runs")
    try:
        fake.trainer_options = {"on_step": lambda epoch, step: time.sleep(0.01)}
        run = start_modal_run(store, tiny_config(epochs=40, backend="modal"), modal=client, mirror=False)
        first = MirrorThread(run, modal=client, **fast).start()

        def trained_an_epoch() -> bool:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(e["type"] == "epoch_end" for e in run.events()):
                    return True
                time.sleep(0.05)  # the mirror thread writes the log
            return False

        assert await asyncio.to_thread(trained_an_epoch)
        stop_modal_run(run, modal=client)
        assert await asyncio.to_thread(first.done.wait, 60) and first.result.outcome == "interrupted"
        fake.trainer_options = {}

        app = analysis_app(store.root)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_runs(app, pilot)
            await move_to(screen, pilot, run.name)
            await pilot.press("r")
            await wait_for_screen(app, pilot, ConfirmDialog)
            assert "on Modal" in widget_text(app.screen.query_one("#confirm-message"))
            await pilot.press("y")
            await settle(app, pilot)
            assert app.current_mode == "dashboard" and app.context.attached == run.ref
            assert len(mirrors) == 1
            assert await asyncio.to_thread(mirrors[0].done.wait, 120)
        assert mirrors[0].result.outcome == "finished"
        assert [e["type"] for e in run.events()].count("resumed") == 1
    finally:
        for m in mirrors:
            m.stop()
        fake.close()
