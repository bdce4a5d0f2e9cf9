"""The dashboard in the real app, driven headless with Pilot.

Runs that train do so in-process on the tiny config (60 graphs, width 16, about
a second); where a key must be pressed mid-run, a StepGate parks the training
thread so that presses are quick and the timing is deterministic.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

from dashboard_fixtures import StepGate, dashboard, make_app, screen_text, settle_charts, start_tiny_run, tiny_config, write_run
from textual.widgets import Button, Input, Static

from nsm.runs import Run, RunStore
from nsm.runs.process import this_host
from tui.commands import titles as command_titles
from tui.dialogs.attach_picker import AttachPicker
from tui.dialogs.confirm_stop import ConfirmStopDialog
from tui.dialogs.oom_restart import OomRestartDialog
from tui.dialogs.quit_choice import QuitDialog
from tui.run_controller import RunController
from tui.widgets.gpu import GpuPanel
from tui.widgets.run_panels import MetricsPanel, ProgressPanel



def toasts(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(n.message) for n in app._notifications]  # noqa: SLF001


def text_of(widget: Static) -> str:
    from rich.console import Console

    console = Console(width=max(20, widget.size.width or 80), record=True, file=open(os.devnull, "w"))
    console.print(widget.content)
    return console.export_text()


def pretend_running(run: Run) -> None:
    """Make a prepared run look alive: its process is this test's (never signalled: it is us)."""
    info = {"pid": os.getpid(), "host": this_host(), "started": time.time() - 5, "command": "test", "backend": "process", "log": "train.log"}
    (run.path / "process.json").write_text(json.dumps(info))



# ------------------------------------------------------------------- training


async def test_quick_in_process_run_fills_charts_progress_and_metrics(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(160, 48)) as pilot:
        dash = await start_tiny_run(pilot)
        assert dash.controller.mode == "inprocess"
        await app.workers.wait_for_complete()
        await pilot.pause()
        await settle_charts(pilot)

        c = dash.controller
        assert c.outcome == "finished" and c.state_word() == "finished"
        loss = dash.charts.charts["loss"]
        train, val = loss.series
        assert train.x == [1, 2, 3] and len(val.y) == 3
        assert loss.paints >= 1 and "Total loss" in loss.render_text(60, 12).plain
        assert dash.charts.charts["lr"].series[0].y[-1] > 0
        # The GPU chart says why it is empty on a machine without NVIDIA.
        assert "GPU: n/a" in dash.charts.charts["gpu"].empty_text

        progress = text_of(dash.query_one(ProgressPanel))
        assert "Epoch 3/3" in progress and "100%" in progress and "graphs/s" in progress
        metrics = text_of(dash.query_one(MetricsPanel))
        last_eval = [e for e in c.run.events() if e["type"] == "eval"][-1]
        assert f"{last_eval['loss']:.4f}" in metrics
        assert "best" in metrics
        assert "finished" in dash.status_line.plain and "in-process" in dash.status_line.plain
        assert any("finished (completed)" in line for line in dash.log_pane.lines_text)
    assert Run(c.run.path).status() == "finished"


async def test_a_burst_of_engine_events_wakes_the_ui_once(tmp_path: Path) -> None:
    from nsm.execution import EventSource
    from tui.live_run import LiveRun

    app = make_app(tmp_path / "runs")
    run = RunStore(tmp_path / "runs").create_run(tiny_config(), name="burst")
    inbox = 0

    def hook(message) -> None:  # type: ignore[no-untyped-def]
        nonlocal inbox
        if isinstance(message, RunController.Inbox):
            inbox += 1

    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        c = dashboard(app).controller
        c.run, c.mode, c.live = run, "inprocess", LiveRun(run.ref)
        c._source = EventSource.for_viewer(run.events_path)  # noqa: SLF001
        with run.event_writer() as writer:
            for seq in range(300):  # as the training thread would: into the log, then the sink
                c._sink(writer.emit("progress", epoch=1, step=seq, steps=300))  # noqa: SLF001
        await pilot.pause()
        assert inbox == 1
        assert c.live.last_seq == 299 and c.live.progress["step"] == 299


async def test_stop_asks_first_then_interrupts_with_a_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        dash = dashboard(app)
        gate = StepGate(epoch=2, step=0)
        dash.controller.trainer_options = {"on_step": gate}
        await start_tiny_run(pilot)
        await gate.wait_reached()
        await pilot.pause()

        await pilot.press("x")
        assert isinstance(app.screen, ConfirmStopDialog)
        await pilot.press("n")  # changed my mind: nothing happens
        assert not isinstance(app.screen, ConfirmStopDialog)
        assert not dash.controller.stopping

        await pilot.press("x")
        assert isinstance(app.screen, ConfirmStopDialog)
        await pilot.press("y")
        assert dash.controller.stopping
        gate.open()
        await app.workers.wait_for_complete()
        await pilot.pause()

        run = dash.controller.run
        assert dash.controller.outcome == "interrupted"
        assert run.status() == "interrupted"
        end = run.events()[-1]
        assert end["type"] == "interrupted" and (run.path / end["checkpoint"]).exists()
        assert end["checkpoint"] == "checkpoint_epoch_1_step_1.pt"
        assert "interrupted" in dash.status_line.plain
        assert dash.check_action("resume", ()) is True

        dash.controller.trainer_options = {}
        await pilot.press("r")
        await pilot.pause()
        assert dash.controller.mode == "inprocess"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert dash.controller.outcome == "finished"
        state = run.state()
        assert state.status == "finished" and state.epoch == 3
        # The history before the stop stayed on the charts and the resumed epochs joined it.
        assert dash.charts.charts["loss"].series[0].x == [1, 2, 3]
        assert [e["type"] for e in run.events()].count("resumed") == 1


async def test_quit_with_an_in_process_run_asks_and_cannot_leave_it_running(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        dash = dashboard(app)
        gate = StepGate(epoch=1, step=1)
        dash.controller.trainer_options = {"on_step": gate}
        await start_tiny_run(pilot)
        await gate.wait_reached()

        await pilot.press("ctrl+c")  # never kills anything
        await pilot.pause()
        assert app.return_code is None and dash.controller.in_process_active

        await pilot.press("ctrl+q")
        dialog = app.screen
        assert isinstance(dialog, QuitDialog)
        buttons = {str(b.label): b for b in dialog.query(Button)}
        leave = next(b for label, b in buttons.items() if label.lstrip(" ▶").startswith("Leave"))
        assert leave.disabled
        assert "cannot be left running" in screen_text(app)
        await pilot.press("l")  # the disabled choice does nothing
        assert app.screen is dialog
        await pilot.press("c")
        assert app.screen is dash and app.return_code is None

        await pilot.press("ctrl+q")
        await pilot.press("s")  # stop it and quit
        gate.open()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.return_code == 0
    run = RunStore(tmp_path / "runs").list_runs()[0]
    assert run.status == "interrupted"
    assert Run(run.path).events()[-1]["reason"] == "the app is quitting"


async def test_quit_while_following_a_detached_run_can_leave_it_running(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    run = write_run(root, "live-run", epochs_done=4, outcome=None)
    pretend_running(run)
    app = make_app(root, attach="live-run")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dash = dashboard(app)
        assert dash.controller.active and "running" in dash.status_line.plain
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitDialog)
        await pilot.press("l")
        await pilot.pause()
        assert app.return_code == 0
    assert not run.stop_requested()  # left running, untouched


async def test_quit_while_following_a_detached_run_can_stop_it(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    run = write_run(root, "live-run", epochs_done=4, outcome=None)
    pretend_running(run)
    app = make_app(root, attach="live-run")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.press("s")
        await pilot.pause()
        assert app.return_code == 0
    assert run.stop_requested()


async def test_quit_without_an_active_run_quits_at_once(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "done-run")
    app = make_app(tmp_path / "runs", attach="done-run")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.return_code == 0


# ---------------------------------------------------------------------- attach


async def test_attach_to_a_prepared_run_shows_its_whole_history(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "fixture-run", epochs_done=10, gpu=True)
    app = make_app(tmp_path / "runs", attach="fixture-run")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await settle_charts(pilot)
        dash = dashboard(app)
        assert not dash.config_open
        loss = dash.charts.charts["loss"]
        train, val = loss.series
        assert train.x == list(range(1, 11)) and val.x == [2, 4, 6, 8, 10]
        assert loss.vlines == [6]  # the best val epoch is marked
        gpu = dash.charts.charts["gpu"]
        assert gpu.series and len(gpu.series[0].y) == 11 and gpu.series[0].y[-1] > gpu.series[0].y[0]
        assert len(dash.query_one(GpuPanel).util_history) == 11  # the gauges got every sample
        assert "finished" in dash.status_line.plain and "planning/fixture-run" in dash.status_line.plain
        text = screen_text(app)
        assert "Epoch 10/10" in text and "NVIDIA A100" in text
        assert any("test acc 0.861" in line for line in dash.log_pane.lines_text)
        assert dash.check_action("stop", ()) is False  # nothing to stop: the key is hidden


async def test_attach_without_a_name_picks_the_running_run_over_newer_ones(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    live = write_run(root, "older-but-running", epochs_done=3, outcome=None)
    pretend_running(live)
    write_run(root, "newer-finished", epochs_done=10)
    os.utime(live.path / "config.json", (1, 1))
    app = make_app(root, attach="")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert dashboard(app).controller.run.name == "older-but-running"


async def test_attach_without_a_name_and_no_runs_says_so(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs", attach="")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dash = dashboard(app)
        assert dash.controller.run is None and dash.config_open
        assert "no runs to attach to" in dash.status_line.plain


async def test_attach_key_lists_runs_and_follows_the_chosen_one(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_run(root, "first-run", epochs_done=10)
    write_run(root, "second-run", epochs_done=3, outcome="interrupted", files=("checkpoint_epoch_3_step_2.pt",))
    app = make_app(root)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("escape")
        dash = dashboard(app)
        dash.charts.focus()
        await pilot.press("a")
        picker = app.screen
        assert isinstance(picker, AttachPicker)
        assert "first-run" in screen_text(app) and "second-run" in screen_text(app)
        option_ids = [picker.query_one("OptionList").get_option_at_index(i).id for i in range(2)]
        await pilot.press(*["down"] * option_ids.index("planning/second-run"), "enter")
        await pilot.pause()
        assert app.screen is dash
        assert dash.controller.run.name == "second-run"
        assert dash.charts.charts["acc"].series[0].x == [1, 2, 3]
        assert "interrupted" in dash.status_line.plain
        assert dash.check_action("resume", ()) is True


async def test_attach_to_a_missing_run_says_so_and_keeps_going(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "real-run")
    app = make_app(tmp_path / "runs", attach="no-such-run")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dash = dashboard(app)
        assert dash.controller.run is None
        assert "no run 'no-such-run'" in dash.status_line.plain
        assert any("no-such-run" in line for line in dash.log_pane.lines_text)


async def test_bad_event_lines_are_skipped_with_a_note(tmp_path: Path) -> None:
    bad = [b"this is not json\n", b'{"seq": "nine", "type": "epoch_end"}\n', b'[1, 2]\n', b'{"v": 1, "seq": 999, "t": 1, "type": "epoch_end", "epoch": "x", "loss": "y"}\n', b'{"partial": ']
    write_run(tmp_path / "runs", "messy-run", epochs_done=4, outcome=None, extra_lines=bad)
    app = make_app(tmp_path / "runs", attach="messy-run")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dash = dashboard(app)
        assert dash.charts.charts["loss"].series[0].x == [1, 2, 3, 4]
        assert any("unreadable line" in line for line in dash.log_pane.lines_text)
        assert app.return_code is None


async def test_a_run_deleted_while_followed_is_reported_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    run = write_run(root, "doomed-run", epochs_done=2, outcome=None)
    pretend_running(run)
    app = make_app(root, attach="doomed-run")
    deleted = asyncio.Event()

    def hook(message) -> None:  # type: ignore[no-untyped-def]
        if isinstance(message, RunController.Notice) and "deleted" in message.text:
            deleted.set()

    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        await pilot.pause()
        shutil.rmtree(run.path)
        await asyncio.wait_for(deleted.wait(), 10)  # the follower's next poll notices
        await pilot.pause()
        dash = dashboard(app)
        assert dash.controller.state_word() == "deleted"
        assert "deleted" in dash.status_line.plain
        assert "deleted by another process" in screen_text(app)
        await pilot.press("l", "]")  # still responsive
        assert app.return_code is None


# ----------------------------------------------------------------- failures


async def test_a_run_whose_process_vanished_is_shown_stale_and_resumable(tmp_path: Path) -> None:
    run = write_run(tmp_path / "runs", "lost-run", epochs_done=5, outcome=None, files=("checkpoint_epoch_5.pt",))
    info = {"pid": 999_999_999, "host": this_host(), "started": 1.0, "command": "x", "backend": "process", "log": "train.log"}
    (run.path / "process.json").write_text(json.dumps(info))
    app = make_app(tmp_path / "runs", attach="lost-run")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        dash = dashboard(app)
        assert dash.controller.state_word() == "stale"
        assert "stale: the run's process is gone" in screen_text(app)
        assert dash.check_action("resume", ()) is True and dash.check_action("stop", ()) is False


async def test_a_failed_run_shows_the_reason_and_hint_not_a_traceback(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "bad-run", epochs_done=2, outcome="failed")
    app = make_app(tmp_path / "runs", attach="bad-run")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        dash = dashboard(app)
        text = screen_text(app)
        assert "failed: the loss became nan at epoch 3, step 2" in text
        assert "lower LR" in text
        assert "Traceback" not in text and not any("Traceback" in line for line in dash.log_pane.lines_text)
        assert "failed" in dash.status_line.plain
        assert dash.check_action("restart_smaller_batch", ()) is False  # not an OOM


async def test_an_oom_failure_offers_a_restart_with_the_suggested_batch_size(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    config = tiny_config(num_graphs=120, batch_size=64, epochs=1, backend="inprocess")
    write_run(root, "oom-run", config=config, epochs_done=0, outcome="failed", oom_batch=32, gpu=True)
    app = make_app(root, attach="oom-run")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        dash = dashboard(app)
        dialog = app.screen
        assert isinstance(dialog, OomRestartDialog)
        assert "BATCH_SIZE=32" in screen_text(app) and "out of memory" in screen_text(app)
        await pilot.press("n")
        assert app.screen is dash
        assert "press b to restart with BATCH_SIZE=32" in screen_text(app)
        assert dash.check_action("restart_smaller_batch", ()) is True

        await pilot.press("b")
        assert isinstance(app.screen, OomRestartDialog)
        await pilot.press("y")
        await pilot.pause()
        new_run = dash.controller.run
        assert new_run is not None and new_run.name != "oom-run"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert json.loads((new_run.path / "config.json").read_text())["batch_size"] == 32
        assert new_run.status() == "finished"
        assert dash.query_one("#field-batch_size", Input).value == "32"


# ------------------------------------------------------------------ config


async def test_an_invalid_field_shows_its_message_and_start_names_and_focuses_it(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        dash = dashboard(app)
        assert dash.config_open
        epochs = dash.query_one("#field-epochs", Input)
        epochs.focus()
        epochs.value = ""
        await pilot.press("0")
        await pilot.pause()
        problem = dash.query_one("#problem-epochs", Static)
        assert problem.display and "EPOCHS must be an integer from 1 to 10000 (got 0)" in text_of(problem)

        # The Start button (enter) names the field, says what it allows and goes there.
        start = dash.query_one("#start", Button)
        start.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.focused is epochs
        assert any(n.startswith("cannot start: EPOCHS must be an integer from 1 to 10000") for n in toasts(app))
        assert RunStore(tmp_path / "runs").list_runs() == []

        # So does s, from outside the form (escape leaves it: the panel itself has the focus).
        await pilot.press("escape")
        assert app.focused is dash.config_panel
        app.clear_notifications()
        await pilot.press("s")
        await pilot.pause()
        assert app.focused is epochs and any("EPOCHS" in n for n in toasts(app))
        assert RunStore(tmp_path / "runs").list_runs() == []

        await pilot.press("backspace", "1", "2")
        await pilot.pause()
        assert not problem.display
        assert dash.check_action("start", ()) is False  # a form control has the focus: s is not a key here
        dash.config_panel.focus()
        await pilot.pause()
        assert dash.check_action("start", ()) is True


async def test_cross_field_rules_show_beside_the_field(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        dash = dashboard(app)
        dash.query_one("#field-num_graphs", Input).value = "60"
        dash.query_one("#field-batch_size", Input).value = "64"
        await pilot.pause()
        assert "at most the training split size (42 graphs" in text_of(dash.query_one("#problem-batch_size", Static))
        assert dash.config_panel.first_problem()[0] == "batch_size"


async def test_presets_fill_the_form_and_the_last_config_is_remembered(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = dashboard(app)
        dash.config_panel.apply_preset("quick")
        await pilot.pause()
        values = dash.config_panel.raw_values()
        assert values["epochs"] == "10" and values["eval_every"] == "2"
        dash.config_panel.apply_preset("full")
        await pilot.pause()
        assert dash.config_panel.raw_values()["epochs"] == "100"
        await start_tiny_run(pilot, epochs=2, seed=11)
        await app.workers.wait_for_complete()
        await pilot.pause()

    again = make_app(root)  # a new session, same settings file
    async with again.run_test(size=(80, 24)) as pilot:
        dash = dashboard(again)
        values = dash.config_panel.raw_values()
        # The form opens on the last config used, hidden knobs included...
        assert values["seed"] == "11" and values["epochs"] == "2" and values["backend"] == "inprocess"
        assert dash.config_panel.base.hidden == 16
        dash.config_panel.apply_preset("quick")
        await pilot.pause()
        assert dash.config_panel.raw_values()["epochs"] == "10"
        # ...and the "last" preset brings it back after edits.
        dash.config_panel.apply_preset("last")
        await pilot.pause()
        values = dash.config_panel.raw_values()
        assert values["seed"] == "11" and values["epochs"] == "2"


# ------------------------------------------------------------------- keys


async def test_log_scale_and_chart_pages_keys(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "fixture-run")
    app = make_app(tmp_path / "runs", attach="fixture-run")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dash = dashboard(app)
        charts = dash.charts
        assert charts.pages == 3 and charts.charts["loss"].display and not charts.charts["lr"].display
        await pilot.press("l")
        assert charts.charts["loss"].log_y and not charts.charts["acc"].log_y
        await pilot.press("]", "]")
        assert charts.charts["lr"].display and not charts.charts["loss"].display
        assert "charts 3/3" in dash.status_line.plain or charts.page == 2
        await pilot.press("[")
        assert charts.page == 1


async def test_every_dashboard_key_is_in_the_footer_and_the_palette(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "fixture-run", epochs_done=3, outcome="interrupted", files=("checkpoint_epoch_3_step_2.pt",))
    app = make_app(tmp_path / "runs", attach="fixture-run")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        for key in ("s Start", "r Resume", "a Attach", "c Config", "l Log", "] charts", "^q Quit", "F1-F6"):
            assert key in footer, (key, footer)
        titles = {c.title for c in app.get_system_commands(app.screen)} | set(command_titles(app))
        for title in ("Dashboard: Start (s)", "Dashboard: Stop (x)", "Dashboard: Resume (r)", "Dashboard: Attach (a)", "Dashboard: Log (l)", "Dashboard: Save config (^s)", "Quit", "Screen: Runs"):
            assert title in titles, sorted(titles)


# ------------------------------------------------------- detached process runs


class ChangeWaiter:
    """Awaits the controller's Changed messages until a condition holds (for runs in other processes)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def hook(self, message) -> None:  # type: ignore[no-untyped-def]
        if isinstance(message, (RunController.Changed, RunController.Notice)):
            self.event.set()

    async def until(self, condition, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            assert left > 0, "timed out waiting for the run"
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), min(left, 5.0))
            except asyncio.TimeoutError:
                pass


async def test_a_detached_run_is_followed_stopped_and_resumed_from_the_dashboard(tmp_path: Path) -> None:
    waiter = ChangeWaiter()
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(100, 30), message_hook=waiter.hook) as pilot:
        dash = await start_tiny_run(pilot, backend="process", epochs=500)
        c = dash.controller
        assert c.mode == "process" and c.pid
        await waiter.until(lambda: c.live.epochs_done() >= 1)
        await pilot.pause()
        assert c.active and "running" in dash.status_line.plain and f"pid {c.pid}" in dash.status_line.plain

        await pilot.press("x", "y")
        await waiter.until(lambda: c.live.status is not None)
        await pilot.pause()
        run = c.run
        end = run.events()[-1]
        assert end["type"] == "interrupted" and (run.path / end["checkpoint"]).exists()
        assert "interrupted" in dash.status_line.plain

        await pilot.press("r")  # the config panel's backend: a detached process again
        await pilot.pause()
        assert c.mode == "process" and c.run == run
        # The old ending stays on screen until the resumed process says it has started.
        await waiter.until(lambda: c.live.status is None and c.active)
        assert any(e["type"] == "resumed" for e in run.events(end["seq"]))
        await pilot.press("x", "y")
        await waiter.until(lambda: c.live.status is not None)
    kinds = [e["type"] for e in run.events()]
    assert kinds.count("interrupted") == 2 and kinds.count("resumed") == 1
