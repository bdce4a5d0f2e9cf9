"""Quit and SIGHUP ask the app's session: everything this process trains, on whichever screen.

An in-app sweep (F4) and the dashboard's in-process run (F1) are both in the
session; ctrl+q on any screen names all of it, and "Stop and quit" stops each
with a checkpoint before the app closes. Training is the tiny config, parked
mid-step by gates so that the keys are pressed while it trains.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from dashboard_fixtures import StepGate, tiny_config
from textual.widgets import Button

from nsm.runs import Run, RunStore
from nsm.sweeps import create_sweep, grid_points, parse_axes, point_configs, snapshot
from tests.training.helpers import TINY as TRAINING_TINY
from tui.app import create_app
from tui.context import AppContext, Settings
from tui.dialogs.quit_choice import QuitDialog
from tui.screens.dashboard import DashboardScreen
from tui.screens.sweep import SweepScreen

SIZE = (100, 34)
TINY = {**TRAINING_TINY, "epochs": 2, "save_every": 1}


def make_app(tmp_path: Path) -> Any:
    settings = Settings(tmp_path / "settings.json", {"sweep.mode": "inprocess"})
    return create_app(context=AppContext(store=RunStore(tmp_path / "runs"), settings=settings))


def tiny_sweep(store: RunStore, name: str) -> Any:
    axes = parse_axes(("lr=1e-3,3e-3",))
    return create_sweep(store, point_configs({**TINY, "backend": "inprocess"}, grid_points(axes)), name=name, axes=axes)


class SweepGate:
    """The in-app runner's step hook: parks point `index` before (epoch, step) until released."""

    def __init__(self, at: tuple[int, int, int]):
        self.at = at
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, index: int, epoch: int, step: int) -> None:
        if (index, epoch, step) == self.at:
            self.reached.set()
            self.release.wait(timeout=60)

    async def wait_reached(self) -> None:
        assert await asyncio.to_thread(self.reached.wait, 120), "the sweep never reached its gate"


class Ended:
    """The sweep screen's QueueEnded messages, awaitable (recorded by run_test's message hook)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._event = asyncio.Event()

    def hook(self, message: Any) -> None:
        if isinstance(message, SweepScreen.QueueEnded):
            self.messages.append(message)
            self._event.set()

    async def wait(self, timeout: float = 180) -> Any:
        await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()
        return self.messages[-1]


async def start_gated_sweep(app: Any, pilot: Any, gate: SweepGate) -> SweepScreen:
    await pilot.press("f4")
    screen = app.screen
    assert isinstance(screen, SweepScreen)
    screen.step_hook = gate
    await pilot.press("r")
    await gate.wait_reached()
    return screen


async def exited(app: Any, pilot: Any) -> None:
    """The app's quit worker exits once what it stopped has ended: await it, then its exit."""
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_ctrl_q_on_the_dashboard_names_the_in_app_sweep_and_stops_it_with_a_checkpoint(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    sweep = tiny_sweep(app.context.store, "lr-grid")
    ended = Ended()
    gate = SweepGate(at=(0, 1, 1))
    async with app.run_test(size=SIZE, message_hook=ended.hook) as pilot:
        try:
            await start_gated_sweep(app, pilot, gate)
            await pilot.press("f1")
            assert isinstance(app.screen, DashboardScreen)
            await pilot.press("ctrl+q")  # the sweep trains on another screen: still asked
            dialog = app.screen
            assert isinstance(dialog, QuitDialog)
            assert dialog.in_app == [
                "sweep lr-grid runs inside this app (its current point stops with a checkpoint; finished points are kept)"
            ]
            leave = next(b for b in dialog.query(Button) if str(b.label).lstrip(" ▶").startswith("Leave"))
            assert leave.disabled  # what trains inside the app cannot outlive it
            await pilot.press("s")
            assert app.return_code is None  # not before the checkpoint is written
        finally:
            gate.release.set()
        assert (await ended.wait()).outcome == "stopped"
        await exited(app, pilot)
        assert app.return_code == 0
    first = snapshot(sweep).points[0]
    assert first.state == "stopped"
    last = Run(first.run.path).events()[-1]
    assert last["type"] == "interrupted" and last["reason"] == "the app is quitting"
    assert (first.run.path / last["checkpoint"]).exists()


async def test_cancel_keeps_the_app_and_the_sweep_going(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    sweep = tiny_sweep(app.context.store, "keep")
    ended = Ended()
    gate = SweepGate(at=(0, 1, 1))
    async with app.run_test(size=SIZE, message_hook=ended.hook) as pilot:
        try:
            screen = await start_gated_sweep(app, pilot, gate)
            await pilot.press("f1")
            await pilot.press("ctrl+q")
            assert isinstance(app.screen, QuitDialog)
            await pilot.press("c")
            await pilot.pause()
            assert isinstance(app.screen, DashboardScreen) and app.return_code is None
            assert app.session.busy() and screen.runner is not None and not screen.runner.stop_requested()
        finally:
            gate.release.set()
        assert (await ended.wait()).outcome == "finished"  # it trained on to the end
        assert app.return_code is None and not app.session.busy()
    assert [p.state for p in snapshot(sweep).points] == ["done", "done"]


async def test_ctrl_q_with_nothing_training_exits_at_once(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not isinstance(app.screen, QuitDialog)
        assert app.return_code == 0


async def test_the_dialog_lists_the_in_process_run_and_the_sweep_and_stops_both(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    sweep = tiny_sweep(app.context.store, "both")
    ended = Ended()
    sweep_gate = SweepGate(at=(0, 1, 1))
    run_gate = StepGate(epoch=1, step=1)
    async with app.run_test(size=SIZE, message_hook=ended.hook) as pilot:
        try:
            await start_gated_sweep(app, pilot, sweep_gate)
            await pilot.press("f1")
            dash = app.screen
            assert isinstance(dash, DashboardScreen)
            dash.controller.trainer_options = {"on_step": run_gate}
            dash.config_panel.load_config(tiny_config(epochs=3))
            await pilot.pause()
            await pilot.press("s")
            await run_gate.wait_reached()
            ref = dash.controller.run.ref
            await pilot.press("f2")  # any screen: the same question
            await pilot.press("ctrl+q")
            dialog = app.screen
            assert isinstance(dialog, QuitDialog)
            assert dialog.in_app[0].startswith("sweep both runs inside this app")
            assert dialog.in_app[1] == f"{ref} trains inside this app"
            await pilot.press("s")
        finally:
            sweep_gate.release.set()
            run_gate.open()
        assert (await ended.wait()).outcome == "stopped"
        await exited(app, pilot)
        assert app.return_code == 0
    assert snapshot(sweep).points[0].state == "stopped"
    run = RunStore(tmp_path / "runs").get(ref)
    assert run.status() == "interrupted" and run.events()[-1]["reason"] == "the app is quitting"


async def test_sighup_stops_the_in_app_sweep_and_exits_once_it_has_ended(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    sweep = tiny_sweep(app.context.store, "hup")
    ended = Ended()
    gate = SweepGate(at=(0, 1, 1))
    async with app.run_test(size=SIZE, message_hook=ended.hook) as pilot:
        try:
            await start_gated_sweep(app, pilot, gate)
            done = app.stop_run_for_hangup()  # what the signal handler calls (thread-safe)
            assert done is not None and not done.is_set()
            app.on_terminal_hangup()  # then, on the loop
            await pilot.pause()
            assert app.return_code is None
        finally:
            gate.release.set()
        assert (await ended.wait()).outcome == "stopped"
        await exited(app, pilot)
        assert app.return_code == 0 and done.is_set()
    last = Run(snapshot(sweep).points[0].run.path).events()[-1]
    assert last["type"] == "interrupted" and "SIGHUP" in last["reason"]
