"""The cockpit's key rules at 80×24: typing never triggers actions, an invalid start names
its field, one confirm dialog whose enter is its marked button, a palette of every
screen's actions, and only the knobs that apply (GPU for Modal, AMP with CUDA)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_fixtures import dashboard, make_app, write_run
from textual.widgets import Button, Checkbox, Input, Select

from nsm.runs import RunStore
from nsm.runs.export import run_results
from nsm.runs.hardware import config_for_display, gpu_used
from tui import local_gpu
from tui.commands import all_actions, run_screen_action
from tui.dialogs.base import ChoiceDialog
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.confirm_stop import ConfirmStopDialog
from tui.dialogs.oom_restart import OomRestartDialog
from tui.dialogs.quit_choice import CANCEL, LEAVE, QuitDialog
from tui.dialogs.sweep_dialogs import ConfirmStopSweepDialog
from tui.keys import blocked_while_editing
from tui.screens import SCREEN_MODULES
from tui.screens.base import AppScreen

NO_GPU = local_gpu.LocalGpu(False, "no NVIDIA driver")


@pytest.fixture(autouse=True)
def no_local_gpu():  # type: ignore[no-untyped-def]
    """The same machine everywhere: NVML finds no driver."""
    before = local_gpu.known()
    local_gpu.set_answer(NO_GPU)
    yield
    local_gpu.set_answer(before)


def toasts(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(n.message) for n in app._notifications]  # noqa: SLF001


# ------------------------------------------------------------ typing never acts


async def test_letters_on_a_form_control_do_only_what_the_control_does(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "paused", epochs_done=3, outcome="interrupted", files=("checkpoint_epoch_3_step_2.pt",))
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        dash = dashboard(app)
        for control in ("#start", "#field-domain", "#field-backend", "#field-name"):
            widget = dash.query_one(control)
            widget.focus()
            await pilot.pause()
            footer = [b.binding.key for b in dash.active_bindings.values()]
            assert "s" not in footer and "c" not in footer, control  # hidden while the form has the focus
            await pilot.press(*"scrxalb")
            await pilot.pause()
            assert dash.config_open and app.screen is dash, control  # c did not hide the panel, a opened no picker
            assert dash.controller.run is None, control  # no start, no resume
            assert app.focused is widget, control
        assert widget.value == "scrxalb"  # an Input still gets every letter
        assert RunStore(tmp_path / "runs").get("paused").status() == "interrupted"


async def test_letters_on_the_amp_checkbox_only_toggle_with_space(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        dash = dashboard(app)
        dash.query_one("#field-backend", Select).value = "modal"  # AMP applies on Modal
        await pilot.pause()
        amp = dash.query_one("#field-amp", Checkbox)
        amp.focus()
        await pilot.press("s", "c", "x")
        await pilot.pause()
        assert dash.config_open and dash.controller.run is None and not amp.value
        assert "off" in str(amp.label) and amp.BUTTON_INNER == " "  # off reads as off, without colour
        await pilot.press("space")
        await pilot.pause()
        assert amp.value and "on" in str(amp.label) and amp.BUTTON_INNER == "X"


async def test_escape_leaves_the_form_and_the_keys_work_again(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        dash = dashboard(app)
        assert app.focused is dash.config_panel  # the first focus: keys work at once
        dash.query_one("#start", Button).focus()
        await pilot.pause()
        assert dash.check_action("toggle_config", ()) is False
        await pilot.press("escape")
        assert app.focused is dash.config_panel
        await pilot.press("c")
        await pilot.pause()
        assert not dash.config_open


async def test_every_screen_refuses_its_letters_while_a_form_control_has_focus(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        for mode in SCREEN_MODULES:
            await app.switch_mode(mode)
            await pilot.pause()
            screen = app.get_screen_for_mode(mode)
            assert isinstance(screen, AppScreen), f"{type(screen).__name__} must subclass tui.screens.base.AppScreen"
            actions = {b.action.split("(")[0] for _key, items in screen._bindings.key_to_bindings.items() for b in items}  # noqa: SLF001
            button = Button("probe", id="typing-probe")
            await screen.mount(button)
            button.focus()
            await pilot.pause()
            refused = [a for a in actions if blocked_while_editing(screen, a)]
            assert refused, f"{mode}: no single-letter action is refused with a button focused"
            for action in refused:
                assert screen.check_action(action, ()) is False, (mode, action)
            await button.remove()


async def test_escape_on_the_sweep_form_gives_the_letters_back(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("sweep")
        await pilot.pause()
        screen = app.screen
        screen.query_one("#start", Button).focus()
        await pilot.pause()
        assert screen.check_action("show_tab", ()) is False  # n, 1, 2, 3 do nothing on the button
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.focused, (Button, Input, Select))
        assert screen.check_action("show_tab", ()) is True


# ------------------------------------------------------ an invalid start is named


async def test_start_with_an_invalid_name_names_the_field_and_focuses_it(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        dash = dashboard(app)
        name = dash.query_one("#field-name", Input)
        name.focus()
        await pilot.press(*"bad/name")
        await pilot.press("escape")  # to the panel: s is the start key there
        await pilot.press("s")
        await pilot.pause()
        assert app.focused is name
        message = next(n for n in toasts(app) if n.startswith("cannot start:"))
        assert "NAME" in message and "/" in message
        assert RunStore(tmp_path / "runs").list_runs() == []


# ------------------------------------------------------------ one confirm dialog


def test_every_question_is_a_choice_dialog_with_an_explicit_safe_default() -> None:
    for dialog in (
        ConfirmStopDialog("planning/a"),
        OomRestartDialog("planning/a", "CUDA out of memory", 16, 32),
        ConfirmStopSweepDialog("grid", None),
        ConfirmDialog("Delete run?", "gone for good", "Delete", danger=True),
    ):
        assert isinstance(dialog, ChoiceDialog) and dialog.default is False
    assert QuitDialog(["x trains inside this app"]).default == CANCEL
    with pytest.raises(ValueError, match="default"):  # a disabled button cannot be the default
        ChoiceDialog("t", "b", [(LEAVE, "Leave", "l", "success", False), (CANCEL, "Cancel", "c", "primary", True)], CANCEL, default=LEAVE)


async def _open(app, pilot, dialog):  # type: ignore[no-untyped-def]
    answers: list = []
    app.push_screen(dialog, answers.append)
    await pilot.pause()
    return answers


DIALOGS = (
    lambda: ConfirmStopDialog("planning/a", " (in this app)"),
    lambda: OomRestartDialog("planning/a", "CUDA out of memory", 16, 32),
    lambda: ConfirmStopSweepDialog("grid", "grid-02"),
    lambda: ConfirmDialog("Resume run?", "from checkpoint_epoch_5.pt", "Resume"),
    lambda: ConfirmDialog("Delete run?", "gone for good", "Delete", danger=True),
)


async def test_enter_presses_the_marked_button_and_escape_cancels(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        for make in DIALOGS:  # every place that asks: stop, OOM restart, stop sweep, resume, delete
            answers = await _open(app, pilot, make())
            focused = app.focused
            assert isinstance(focused, Button) and str(focused.label).startswith("▶")
            assert app.screen.marked is False  # the default: the choice that changes nothing
            await pilot.press("enter")
            await pilot.pause()
            assert answers == [False]

        make = DIALOGS[0]
        answers = await _open(app, pilot, make())
        await pilot.press("tab")  # the mark follows the focus: enter now confirms
        await pilot.pause()
        assert app.screen.marked is True and str(app.focused.label).startswith("▶")
        await pilot.press("enter")
        await pilot.pause()
        assert answers == [True]

        answers = await _open(app, pilot, make())
        await pilot.press("right", "escape")  # escape cancels, wherever the mark is
        await pilot.pause()
        assert answers == [False]

        answers = await _open(app, pilot, make())
        await pilot.press("y")
        await pilot.pause()
        assert answers == [True]

        answers = await _open(app, pilot, QuitDialog([], "planning/far-away"))
        assert app.screen.marked == CANCEL
        await pilot.press("enter")
        await pilot.pause()
        assert answers == [CANCEL] and app.return_code is None


# ------------------------------------------------------------- the palette


async def test_the_palette_lists_every_screens_actions_and_runs_one_from_another_screen(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        titles = [a.title for a in all_actions(app)]
        assert titles[0].startswith("Dashboard:")  # the current screen first
        for mode, (_module, cls_name) in SCREEN_MODULES.items():
            assert any(a.mode == mode for a in all_actions(app)), f"no {cls_name} action in the palette"
        assert "Runs: Filter (/)" in titles and "GPU: Refresh (r)" in titles

        # Search from the dashboard for a runs-screen action and run it: the app switches there.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"runs filter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert app.current_mode == "runs"
        assert app.focused is not None and app.focused.id == "runs-filter"
        assert not any("does not apply" in n for n in toasts(app))

        # An action that does not apply now says so instead of doing nothing silently.
        stop = next(a for a in all_actions(app) if a.mode == "dashboard" and a.action == "stop")
        await run_screen_action(app, stop)
        await pilot.pause()
        assert app.current_mode == "dashboard"
        assert any("Stop" in n for n in toasts(app))


# --------------------------------------------------------- only what applies


async def test_gpu_shows_only_for_modal_and_amp_only_with_cuda(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        dash = dashboard(app)
        panel = dash.config_panel
        backend = panel.query_one("#field-backend", Select)
        gpu, amp = panel.query_one("#field-gpu"), panel.query_one("#field-amp")
        assert backend.value == "process"
        assert not gpu.display and not amp.display
        assert "GPU: n/a (no NVIDIA driver)" in str(panel.query_one("#local-gpu").render())

        backend.value = "modal"
        await pilot.pause()
        assert gpu.display and amp.display and not panel.query_one("#local-gpu").display

        panel.query_one("#field-device", Select).value = "cpu"
        await pilot.pause()
        assert gpu.display and not amp.display  # AMP needs a CUDA device

        backend.value = "inprocess"
        panel.query_one("#field-device", Select).value = "auto"
        local_gpu.set_answer(local_gpu.LocalGpu(True, ""))
        panel.validate()
        await pilot.pause()
        assert not gpu.display and amp.display  # a local NVIDIA GPU: AMP applies here


async def test_the_idle_gpu_panel_says_why_there_is_no_gpu(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(120, 30)) as pilot:
        from tui.widgets.gpu import GpuPanel

        panel = dashboard(app).query_one(GpuPanel)
        await pilot.pause()
        assert str(panel.render()).startswith("GPU: n/a (no NVIDIA driver)")
        panel.set_remote(True)  # a Modal run: this machine's GPU says nothing about it
        assert str(panel.render()) == "GPU: no readings yet"


def test_reports_and_runs_show_name_the_gpu_a_run_used(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    cpu = write_run(root, "on-cpu", epochs_done=2)
    cuda = write_run(root, "on-cuda", epochs_done=2, gpu=True)
    assert gpu_used(cpu) is None and run_results(cpu)["gpu"] is None
    assert "gpu" not in config_for_display(cpu.config()) and "gpu" in cpu.config()  # kept in config.json, not shown
    assert gpu_used(cuda) == "cuda"  # the fixture's environment names the device, not the board
    from tui.reports import run_report

    report = run_report(cpu)
    assert "| GPU | none (CPU) |" in report and "A100-40GB" not in report
