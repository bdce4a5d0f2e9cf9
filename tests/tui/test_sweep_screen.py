"""The sweep screen (F4) in the real app at 80×24: define a 2×2 grid on tiny data, run it to
completion with the best point highlighted; stop in the middle and resume; follow a queue
that another process runs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from rich.text import Text
from textual.widgets import DataTable, Input, Static

from nsm.runs import EventLogWriter, Run, RunStore
from nsm.runs.process import this_host
from nsm.sweeps import create_sweep, grid_points, list_sweeps, parse_axes, point_configs, snapshot
from tests.training.helpers import TINY as TRAINING_TINY
from tui.app import create_app, quit_line
from tui.context import AppContext, Settings
from tui.dialogs.quit_choice import QuitDialog
from tui.screens.sweep import SweepScreen

SIZE = (80, 24)
# A point trains in well under a second (the engine tests' tiny run, 2 epochs).
TINY = {**TRAINING_TINY, "epochs": 2, "save_every": 1}


def make_app(tmp_path: Path, mode: str = "inprocess", last_config: dict[str, Any] | None = None) -> Any:
    settings = Settings(tmp_path / "settings.json", {"sweep.mode": mode})
    if last_config is not None:
        settings.values["dashboard.last_config"] = last_config  # what the dashboard remembers
    return create_app(context=AppContext(store=RunStore(tmp_path / "runs"), settings=settings))


class Messages:
    """Awaitable messages of the sweep screen, recorded by run_test's message hook."""

    def __init__(self) -> None:
        self.ended: list[Any] = []
        self._event = asyncio.Event()

    def hook(self, message: Any) -> None:
        if isinstance(message, SweepScreen.QueueEnded):
            self.ended.append(message)
            self._event.set()

    async def queue_ended(self, timeout: float = 180) -> Any:
        await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()
        return self.ended[-1]


def rows(screen: SweepScreen, table_id: str) -> list[list[Text | str]]:
    table = screen.query_one(table_id, DataTable)
    return [list(table.get_row_at(i)) for i in range(table.row_count)]


def column(screen: SweepScreen, table_id: str, name: str) -> list[str]:
    table = screen.query_one(table_id, DataTable)
    labels = [str(c.label) for c in table.columns.values()]
    index = labels.index(name)
    return [str(row[index]) for row in rows(screen, table_id)]


def static_text(screen: SweepScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def tiny_sweep(store: RunStore, specs: tuple[str, ...] = ("lr=1e-3,3e-3", "cycle_weight=0.01,0.1"), name: str = "grid") -> Any:
    axes = parse_axes(specs)
    return create_sweep(store, point_configs({**TINY, "backend": "inprocess"}, grid_points(axes)), name=name, axes=axes)


def expected_best(store: RunStore, sweep: Any, key: str) -> int:
    """The best point computed from the runs' own logs: lowest best val loss (ties: higher
    val acc), or highest best val acc (ties: lower val loss); then the earlier point."""
    ranked = []
    for i, point in enumerate(sweep.load().points, start=1):
        state = store.get(point.run).state()
        loss, acc = state.best_val_loss, state.best_val_acc
        ranked.append(((loss, -acc) if key == "best_val_loss" else (-acc, loss), i))
    return min(ranked)[1]


def assert_best_highlighted(screen: SweepScreen, number: int) -> None:
    first = rows(screen, "#results")[0]
    assert str(first[0]) == "★" and str(first[1]) == str(number)
    assert all(isinstance(c, Text) and "bold" in str(c.style) and "green" in str(c.style) for c in first)
    assert all(str(r[0]) == "" for r in rows(screen, "#results")[1:])
    assert f"★ best: point {number} " in static_text(screen, "#best")


async def test_a_2x2_grid_defined_in_the_form_runs_to_completion_with_the_best_highlighted(tmp_path: Path) -> None:
    app = make_app(tmp_path, last_config={**TINY, "backend": "process", "schema_version": 1})
    messages = Messages()
    async with app.run_test(size=SIZE, message_hook=messages.hook) as pilot:
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        assert "the dashboard's last config" in static_text(screen, "#base") and "EPOCHS 2" in static_text(screen, "#base")
        assert screen.query_one("#grid-0", Input).has_focus  # no sweep yet: the form is open
        await pilot.press(*"lr=1e-3,3e-3", "tab", *"cycle_weight=0.01,0.1")
        assert static_text(screen, "#plan").startswith("→ 4 runs: LR 2 × CYCLE_WEIGHT 2")
        await pilot.press("ctrl+r")
        ended = await messages.queue_ended()
        assert ended.outcome == "finished", ended.error
        await pilot.pause()

        store = app.context.store
        (sweep,) = list_sweeps(store)
        assert screen.query_one("#tabs").active == "queue-tab"
        assert column(screen, "#queue", "state") == ["done"] * 4
        assert column(screen, "#queue", "LR") == ["0.001", "0.001", "0.003", "0.003"]
        assert column(screen, "#queue", "CYCLE_WEIGHT") == ["0.01", "0.1", "0.01", "0.1"]
        assert column(screen, "#queue", "progress") == ["epoch 2/2"] * 4
        assert static_text(screen, "#sweep-status") == "finished · 4/4 done"
        # Every point is a normal run with the form's knobs on the remembered base config.
        assert sorted(r.config["lr"] for r in store.list_runs()) == [1e-3, 1e-3, 3e-3, 3e-3]
        assert {(r.config["epochs"], r.config["hidden"], r.status) for r in store.list_runs()} == {(2, 16, "finished")}

        await pilot.press("3")
        assert screen.query_one("#tabs").active == "results-tab"
        assert static_text(screen, "#metric-note").startswith("lower is better")
        assert_best_highlighted(screen, expected_best(store, sweep, "best_val_loss"))
        losses = [float(a) for a in column(screen, "#results", "val loss")]
        assert losses == sorted(losses)
        await pilot.press("m")  # rank by val accuracy instead: higher is better
        assert static_text(screen, "#metric-note").startswith("higher is better")
        assert_best_highlighted(screen, expected_best(store, sweep, "best_val_acc"))
        accs = [float(a) for a in column(screen, "#results", "val acc")]
        assert accs == sorted(accs, reverse=True)
        assert sorted(column(screen, "#results", "#")) == ["1", "2", "3", "4"]


class StepGate:
    """Holds the in-app runner before one step of one point until the test lets it go."""

    def __init__(self, loop: asyncio.AbstractEventLoop, at: tuple[int, int, int]):
        self.loop = loop
        self.at = at
        self.reached = asyncio.Event()
        self.release = threading.Event()

    def __call__(self, index: int, epoch: int, step: int) -> None:
        if (index, epoch, step) == self.at:
            self.loop.call_soon_threadsafe(self.reached.set)
            self.release.wait(timeout=60)


async def test_stop_in_the_middle_keeps_finished_points_and_resume_completes(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    store = app.context.store
    sweep = tiny_sweep(store)
    messages = Messages()
    async with app.run_test(size=SIZE, message_hook=messages.hook) as pilot:
        await pilot.press("f4")
        screen = app.screen
        assert screen.sweep == sweep  # the newest sweep is opened on its queue
        assert static_text(screen, "#queue-summary").endswith("· r starts")
        gate = StepGate(asyncio.get_running_loop(), at=(1, 1, 2))  # point 2, epoch 1, before step 3
        screen.step_hook = gate
        try:
            await pilot.press("r")
            await asyncio.wait_for(gate.reached.wait(), 120)
            await pilot.press("x")
            assert app.screen.__class__.__name__ == "ConfirmStopSweepDialog"
            await pilot.press("y")
            assert sweep.stop_requested()
        finally:
            gate.release.set()
        ended = await messages.queue_ended()
        assert ended.outcome == "stopped"
        await pilot.pause()
        assert column(screen, "#queue", "state") == ["done", "stopped", "pending", "pending"]
        assert static_text(screen, "#queue-summary").startswith("pending 2 · running 0 · done 1 · failed 0 · stopped 1")
        first, second = (Run(store.root / p.run) for p in sweep.load().points[:2])
        first_log = first.events_path.read_bytes()
        interrupted = [e for e in second.events() if e["type"] == "interrupted"]
        assert [e["checkpoint"] for e in interrupted] == ["checkpoint_epoch_0_step_3.pt"]

        screen.step_hook = None
        await pilot.press("r")
        ended = await messages.queue_ended()
        assert ended.outcome == "finished", ended.error
        await pilot.pause()
        assert column(screen, "#queue", "state") == ["done"] * 4
        assert first.events_path.read_bytes() == first_log  # the finished point was not touched
        resumed = [e for e in second.events() if e["type"] == "resumed"]
        assert [(e["checkpoint"], e["epoch"], e["step"]) for e in resumed] == [("checkpoint_epoch_0_step_3.pt", 0, 3)]
        await pilot.press("3")
        assert_best_highlighted(screen, expected_best(store, sweep, "best_val_loss"))


async def test_the_form_names_a_bad_knob_or_value_as_you_type_and_starts_nothing(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        screen = app.screen
        grid = screen.query_one("#grid-0", Input)
        await pilot.press(*"lrr=1")
        assert "unknown knob 'lrr'; did you mean lr?" in static_text(screen, "#plan")
        assert grid.has_class("-invalid")
        await pilot.press("ctrl+r")
        assert list_sweeps(app.context.store) == [] and app.context.store.list_runs() == []
        await pilot.press("home", "delete", "delete", "delete", *"lr", "end", "backspace", *"0,1e-3")
        assert grid.value == "lr=0,1e-3"
        assert "LR must be a number from 1e-06 to 1 (got 0)" in static_text(screen, "#plan")
        grid.value = "lr=1e-3,1e-4"
        await pilot.pause()
        assert not grid.has_class("-invalid")
        assert static_text(screen, "#plan").startswith("→ 2 runs: LR 2")
        fixed = screen.query_one("#fixed", Input)
        fixed.value = "epochs=ten"
        await pilot.pause()
        assert fixed.has_class("-invalid") and "EPOCHS must be an integer" in static_text(screen, "#plan")
        fixed.value = "num_graphs=60"  # the default BATCH_SIZE 64 does not fit 42 training graphs
        await pilot.pause()
        assert "point 1 (lr=0.001): BATCH_SIZE must be at most the training split size" in static_text(screen, "#plan")
        await pilot.press("ctrl+r")
        assert list_sweeps(app.context.store) == []


def log_events(run: Run, events: list[tuple[str, dict[str, Any]]]) -> None:
    with EventLogWriter(run.events_path) as writer:
        for kind, payload in events:
            writer.emit(kind, **payload)


async def test_the_screen_follows_a_queue_that_another_process_runs(tmp_path: Path) -> None:
    app = make_app(tmp_path, mode="process")
    store = app.context.store
    sweep = tiny_sweep(store, ("lr=1e-3,3e-3",), name="elsewhere")
    first, second = (Run(store.root / p.run) for p in sweep.load().points)
    started = ("run_started", {"run": "x", "domain": "planning", "config": {"epochs": 2}, "epochs": 2, "steps_per_epoch": 6})
    log_events(first, [started, ("eval", {"epoch": 2, "split": "val", "loss": 0.6, "acc": 0.7}),
                       ("finished", {"reason": "completed", "epochs_done": 2, "test": {"acc": 0.8, "loss": 0.5}})])  # fmt: skip
    log_events(second, [started, ("progress", {"epoch": 1, "step": 4, "steps": 6, "loss": 0.7})])
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        info = {"pid": runner.pid, "host": this_host(), "started": time.time(), "mode": "detached", "token": "t"}
        sweep.runner_path.write_text(json.dumps(info))
        second.write_process_info(runner.pid, backend="process", command="python -m nsm.sweeps.runner")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f4")
            screen = app.screen
            assert static_text(screen, "#sweep-status") == "running · 1/2 done"
            assert f"runner: pid {runner.pid} in the background" in static_text(screen, "#queue-summary")
            assert column(screen, "#queue", "progress") == ["epoch 2/2", "epoch 1/2 · step 4/6"]
            log_events(second, [("progress", {"epoch": 2, "step": 5, "steps": 6, "loss": 0.6})])

            async def shown(predicate: Callable[[], bool]) -> None:
                # The screen re-reads the files on its timer; these files come from "another process".
                for _ in range(100):
                    if predicate():
                        return
                    await pilot.pause(0.05)
                raise AssertionError("the screen did not pick up the new events")

            await shown(lambda: column(screen, "#queue", "progress")[1] == "epoch 2/2 · step 5/6")
            await pilot.press("x", "y")
            assert sweep.stop_requested()  # the detached runner reads this file
            await shown(lambda: static_text(screen, "#sweep-status").startswith("stopping"))
            await pilot.press("3")
            assert_best_highlighted(screen, 1)
    finally:
        runner.kill()
        runner.wait()


async def test_quitting_while_an_in_app_sweep_runs_stops_it_with_a_checkpoint(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    store = app.context.store
    sweep = tiny_sweep(store, ("lr=1e-3,3e-3",), name="quit")
    messages = Messages()
    async with app.run_test(size=SIZE, message_hook=messages.hook) as pilot:
        await pilot.press("f4")
        screen = app.screen
        gate = StepGate(asyncio.get_running_loop(), at=(0, 1, 1))
        screen.step_hook = gate
        try:
            await pilot.press("r")
            await asyncio.wait_for(gate.reached.wait(), 120)
            await pilot.press("ctrl+q")
            assert isinstance(app.screen, QuitDialog)  # the app's one quit dialog
            assert app.screen.in_app == [quit_line(app.session.training()[0])]
            await pilot.press("s")
        finally:
            gate.release.set()
        ended = await messages.queue_ended()
        assert ended.outcome == "stopped"
        await app.workers.wait_for_complete()  # the app's quit worker exits once the sweep's thread ended
        await pilot.pause()
        assert app.return_code == 0, "the app closes once the point's checkpoint is written"
    assert [p.state for p in snapshot(sweep).points] == ["stopped", "pending"]
    assert sweep.runner_info() is None


# --------------------------------------------------------------------- Modal


def modal_client(tmp_path: Path, **fake_options: Any) -> Any:
    """A Modal client over the fake Modal of tests/remote (no network, no token of the developer's)."""
    from remote.client import ModalClient
    from tests.remote.fake_modal import FakeModal

    fake = FakeModal(tmp_path / "modal", **fake_options)
    return fake, ModalClient(api=fake, control_timeout=5.0, app_start_timeout=5.0, app_mode="auto")


async def test_a_modal_sweep_without_a_token_says_so_in_one_line_and_creates_nothing(tmp_path: Path, monkeypatch: Any) -> None:
    fake, client = modal_client(tmp_path, token=False)
    monkeypatch.setattr("tui.modal_runs.client", lambda: client)
    app = make_app(tmp_path, mode="modal")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f4")
            screen = app.screen
            assert screen.run_mode == "modal"
            await pilot.press(*"lr=1e-3,3e-3")
            assert "on Modal, at most 4 at once" in static_text(screen, "#plan")
            await pilot.press("ctrl+r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            errors = [n.message for n in app._notifications if n.severity == "error"]
            assert len(errors) == 1 and "\n" not in errors[0], errors
            assert errors[0].startswith("cannot start on Modal: no Modal token found: run `modal setup`")
            assert list_sweeps(app.context.store) == [] and app.context.store.list_runs() == []
    finally:
        fake.close()


async def test_a_modal_sweep_sends_its_points_to_modal_in_parallel(tmp_path: Path, monkeypatch: Any) -> None:
    from tui.modal_runs import MirrorThread

    fake, client = modal_client(tmp_path)
    mirrors: list[Any] = []

    def mirror_thread(run: Any) -> int:
        # A mirror process could not see the fake Modal: mirror in a thread instead.
        mirrors.append(MirrorThread(run, modal=client, poll_timeout_s=0.1, probe_every_s=0.3, fill_every_s=0.1, lease_renew_s=0.5).start())
        return 4242

    from remote import config as rc

    monkeypatch.setattr(rc, "LIVENESS_PROBE_S", 0.3)
    monkeypatch.setattr(rc, "FORWARD_INTERVAL_S", 0.05)
    monkeypatch.setattr("tui.modal_runs.client", lambda: client)
    monkeypatch.setattr("remote.launch.start_mirror_process", mirror_thread)
    spawned: list[Any] = []
    original_spawn = client.spawn
    monkeypatch.setattr(client, "spawn", lambda requests, gpu, **kw: spawned.append((len(requests), kw)) or original_spawn(requests, gpu, **kw))
    app = make_app(tmp_path, mode="modal", last_config={**TINY, "schema_version": 1})
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f4")
            screen = app.screen
            await pilot.press(*"lr=1e-3,3e-3")
            await pilot.press("ctrl+r")
            await app.workers.wait_for_complete()
            (sweep,) = list_sweeps(app.context.store)
            assert spawned == [(2, {"max_parallel": 4})]
            assert all(Run(app.context.store.root / p.run).remote_info() for p in sweep.load().points)
            finished = await asyncio.to_thread(lambda: all(m.done.wait(120) for m in mirrors))
            assert finished and len(mirrors) == 2
            screen.refresh_now()
            assert column(screen, "#queue", "state") == ["done", "done"]
            errors = [n.message for n in app._notifications if n.severity == "error"]
            assert errors == []
    finally:
        for m in mirrors:
            m.stop()
        fake.close()


async def test_a_failed_points_error_shows_as_literal_text(tmp_path: Path) -> None:
    app = make_app(tmp_path, mode="process")
    store = app.context.store
    sweep = tiny_sweep(store, ("lr=1e-3,3e-3",), name="hostile")
    first, _second = (Run(store.root / p.run) for p in sweep.load().points)
    started = ("run_started", {"run": "x", "domain": "planning", "config": {"epochs": 2}, "epochs": 2, "steps_per_epoch": 6})
    hostile = "boom [/x] [link=http://evil]click[/link]\x1b]0;pwned\x07\x1b[2J"
    log_events(first, [started, ("failed", {"error": hostile, "error_type": "exception", "hint": None})])
    points = sweep.load()
    from nsm.sweeps.sweep import FAILED as POINT_FAILED

    points.points[0].state, points.points[0].error = POINT_FAILED, hostile
    sweep.save(points)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        screen = app.screen
        detail = static_text(screen, "#queue-detail")
        assert "failed: boom [/x] [link=http://evil]click[/link]" in detail
        assert "\x1b" not in detail and "\x07" not in detail


async def test_a_detached_queue_packs_as_many_points_as_the_parallel_setting_says(tmp_path: Path, monkeypatch: Any) -> None:
    launched: list[dict[str, Any]] = []
    monkeypatch.setattr("nsm.sweeps.launch.launch_detached_sweep", lambda sweep, **kw: launched.append(kw) or 4242)
    settings = Settings(tmp_path / "settings.json", {"sweep.mode": "process", "sweep.parallel": 2})
    settings.values["dashboard.last_config"] = {**TINY, "schema_version": 1}
    app = create_app(context=AppContext(store=RunStore(tmp_path / "runs"), settings=settings))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await pilot.press(*"lr=1e-3,3e-3,1e-2")
        await pilot.press("ctrl+r")
        await pilot.pause()
        from nsm.sweeps.packing import usable_cores

        assert launched == [{"parallel": 2, "point_threads": max(1, usable_cores() // 2)}]
        infos = [n.message for n in app._notifications if "runs in the background (pid 4242)" in n.message]
        assert len(infos) == 1 and "parallel: 2 point(s) at once" in infos[0] and "(as asked)" in infos[0]
