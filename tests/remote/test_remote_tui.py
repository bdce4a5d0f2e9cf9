"""A Modal run, live in the real app: events stream from the (fake) container
through the queue into the local store, and the dashboard shows them like a
detached local run's; the TUI helper starts and stops Modal runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from nsm.runs import RunStore
from remote.client import ModalClient
from tests.training.helpers import tiny_config
from tui.app import create_app
from tui.context import AppContext, Settings
from tui.modal_runs import MirrorThread, start_modal_run, stop_modal_run

from fake_modal import FakeModal
from remote_fixtures import (  # noqa: F401  (fixtures)
    FAST,
    _fast_remote_timings,
    _no_modal_env,
    assert_mirrored_exactly,
    client,
    fake,
    store,
)


async def wait_until(pilot: Any, predicate: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    # The mirror writes the run's log from another thread; the dashboard reads it on a timer.
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def make_app(store: RunStore, tmp_path: Path, attach: str) -> Any:
    context = AppContext(store=store, settings=Settings.load(tmp_path / "settings" / "settings.json"))
    return create_app(attach=attach, context=context)


async def test_modal_run_streams_live_into_the_dashboard(
    fake: FakeModal, client: ModalClient, store: RunStore, tmp_path: Path
) -> None:
    parked, release = threading.Event(), threading.Event()

    def hold_in_epoch_2(epoch: int, step: int) -> None:
        if (epoch, step) == (2, 0) and not release.is_set():
            parked.set()
            release.wait(60)

    fake.trainer_options = {"on_step": hold_in_epoch_2}
    run = start_modal_run(store, tiny_config(), gpu="A100-40GB", modal=client, mirror=False)
    mirror = MirrorThread(run, modal=client, **FAST).start()
    app = make_app(store, tmp_path, attach=run.name)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            dash = app.get_screen_for_mode("dashboard")
            loss = dash.charts.charts["loss"]

            def train_epochs() -> list[Any]:
                return list(loss.series[0].x) if loss.series else []

            await wait_until(pilot, lambda: parked.is_set() and train_epochs() == [1], "epoch 1 on the dashboard")
            status = dash.status_line.plain
            assert "running" in status and "modal" in status and run.ref in status
            assert dash.controller.active, "a live Modal run can be stopped from the dashboard"

            release.set()
            await wait_until(pilot, lambda: "finished" in dash.status_line.plain, "the run to finish")
            await wait_until(pilot, lambda: train_epochs() == [1, 2, 3], "all epochs charted")
            assert len(loss.series[1].y) == 3  # val loss, every epoch (EVAL_EVERY=1)
    finally:
        release.set()
        mirror.done.wait(60)
    assert mirror.error is None and mirror.result.outcome == "finished"
    assert_mirrored_exactly(fake, run)


async def test_stop_from_the_tui_helper_interrupts_the_remote_run(
    fake: FakeModal, client: ModalClient, store: RunStore, tmp_path: Path
) -> None:
    fake.trainer_options = {"on_step": lambda epoch, step: time.sleep(0.01)}
    run = start_modal_run(store, tiny_config(epochs=40), modal=client, mirror=False)
    mirror = MirrorThread(run, modal=client, **FAST).start()
    app = make_app(store, tmp_path, attach=run.name)
    async with app.run_test(size=(100, 30)) as pilot:
        dash = app.get_screen_for_mode("dashboard")
        await wait_until(pilot, lambda: bool(dash.charts.charts["loss"].series), "the first epoch")
        message = stop_modal_run(run, modal=client)  # the fake answers at once; the dashboard calls it from a worker
        assert "asked" in message and "stop" in message
        await wait_until(pilot, lambda: "interrupted" in dash.status_line.plain, "the run to stop")
    assert mirror.done.wait(60) and mirror.result.outcome == "interrupted"
    assert run.events()[-1]["type"] == "interrupted"


async def test_the_dashboard_starts_and_stops_a_modal_run_with_its_keys(
    fake: FakeModal, client: ModalClient, store: RunStore, tmp_path: Path, monkeypatch: Any
) -> None:
    mirrors: list[MirrorThread] = []

    def mirror_thread(run: Any) -> int:
        # A mirror process could not see the fake Modal: mirror in a thread instead.
        mirrors.append(MirrorThread(run, modal=client, **FAST).start())
        return 4242

    monkeypatch.setattr("remote.backend.shared_client", lambda: client)
    monkeypatch.setattr("remote.launch.start_mirror_process", mirror_thread)
    monkeypatch.setattr("remote.backend.start_mirror_process", mirror_thread)
    monkeypatch.setattr("remote.launch.mirror_running", lambda run: any(m.run == run and not m.done.is_set() for m in mirrors), raising=False)
    fake.trainer_options = {"on_step": lambda epoch, step: time.sleep(0.01)}
    app = make_app(store, tmp_path, attach=None)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            dash = app.get_screen_for_mode("dashboard")
            dash.config_panel.load_config(tiny_config(epochs=40, backend="modal", gpu="H100").to_dict())
            await pilot.pause()
            assert dash.config_panel.raw_values()["backend"] == "modal"
            dash.action_start()
            await wait_until(pilot, lambda: dash.controller.run is not None and dash.controller.active, "the Modal run to start")
            run = dash.controller.run
            assert run.remote_info()["gpu"] == "H100"
            await wait_until(pilot, lambda: bool(dash.charts.charts["loss"].series), "the first epoch")
            await wait_until(pilot, lambda: "modal" in dash.status_line.plain, "the status line to name the backend")
            dash.action_stop()
            await pilot.pause()
            await pilot.press("y")
            await wait_until(pilot, lambda: "interrupted" in dash.status_line.plain, "the run to stop", timeout=120)
    finally:
        for m in mirrors:
            m.stop()
    assert run.events()[-1]["type"] == "interrupted"
    assert run.status() == "interrupted"
