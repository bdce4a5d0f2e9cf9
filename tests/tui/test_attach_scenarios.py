"""Attach scenarios at realistic sizes, through Pilot: long finished runs, runs that
grow while watched, and in-process runs one after another in one session.

Every wait is a `pilot.pause()` loop with a deadline: a frozen poll chain (as a
0 s set_timer once caused on long histories) fails with a message, never hangs.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboard_fixtures import dashboard, make_app, settle_charts, start_tiny_run
from long_runs import write_long_run

from tui.screens.dashboard import DashboardScreen

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]



def loss_x(dash: DashboardScreen) -> list[Any]:
    series = dash.charts.charts["loss"].series
    return list(series[0].x) if series else []


async def wait_until(pilot: Any, ok: Callable[[], bool], timeout: float, what: Callable[[], str] | str) -> float:
    """Pause the app until `ok()`; returns the seconds it took. Fails with `what` after `timeout`."""
    start = time.monotonic()
    while not ok():
        if time.monotonic() - start > timeout:
            detail = what() if callable(what) else what
            raise AssertionError(f"not within {timeout:.0f} s: {detail}")
        await pilot.pause(0.02)
    return time.monotonic() - start


# ------------------------------------------------------------ a long finished run


async def test_attach_to_a_finished_100k_event_run_shows_all_of_it_and_stays_responsive(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_long_run(root, "long-run", events=100_000, epochs=100, outcome="finished")
    app = make_app(root, attach="long-run")
    async with app.run_test(size=(80, 24)) as pilot:
        dash = dashboard(app)
        c = dash.controller

        def state() -> str:
            live = c.live
            return f"status {live.status if live else None!r}, last seq {live.last_seq if live else None}, epochs {loss_x(dash)[-1:]}"

        await wait_until(pilot, lambda: c.live is not None and c.live.status == "finished", 60, lambda: "the attach never finished catching up: " + state())
        await settle_charts(pilot)
        assert c.live.last_seq == 99_999
        assert loss_x(dash) == list(range(1, 101))
        assert "finished" in dash.status_line.plain and "planning/long-run" in dash.status_line.plain
        assert any("finished (completed) after 100 epochs" in line for line in dash.log_pane.lines_text)

        # Not frozen: a key still does what it says.
        before = dash.charts.log_scale
        await pilot.press("l")
        await wait_until(pilot, lambda: dash.charts.log_scale is not before, 5, "the l key did nothing")
        await pilot.press("l")
        await wait_until(pilot, lambda: dash.charts.log_scale is before, 5, "the l key did nothing the second time")
        assert app.return_code is None


# ------------------------------------------------------------ a run that goes on

WRITER = r"""
import os, sys, time
sys.path[:0] = [sys.argv[2], sys.argv[3]]
from long_runs import EpochAppender
from nsm.runs import Run

run = Run(sys.argv[1])
first, last = int(sys.argv[4]), int(sys.argv[5])
run.write_process_info(os.getpid(), "process", "scenario writer", log=None)
print("ready", flush=True)
sys.stdin.readline()  # the test says go once the dashboard has caught up
appender = EpochAppender(run, epochs=last, steps=20, epoch_time_s=0.2)
with run.event_writer() as writer:
    for e in range(first, last + 1):
        appender.epoch(writer, e)
        time.sleep(0.2)
    appender.finish(writer, last)
"""


async def test_a_run_that_goes_on_while_watched_shows_each_new_epoch_and_ends_finished(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    run = write_long_run(root, "growing-run", events=2_000, epochs=10, outcome=None, epochs_done=5)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run.path), str(HERE), str(ROOT), "6", "10"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "ready"
        assert run.status() == "running"

        app = make_app(root, attach="growing-run")
        async with app.run_test(size=(80, 24)) as pilot:
            dash = dashboard(app)
            c = dash.controller
            await wait_until(pilot, lambda: loss_x(dash) == [1, 2, 3, 4, 5], 30, lambda: f"history not shown: epochs {loss_x(dash)}")
            assert c.live.last_seq == 1_999 and c.live.status is None
            assert c.active and "running" in dash.status_line.plain

            writer.stdin.write("go\n")
            writer.stdin.flush()
            seen: list[int] = []

            def record() -> bool:
                x = loss_x(dash)
                if x and (not seen or x[-1] != seen[-1]):
                    seen.append(x[-1])
                return c.live.status == "finished" and x[-1:] == [10]

            await wait_until(pilot, record, 60, lambda: f"epochs seen {seen}, status {c.live.status!r}, followed {c.followed_status!r}")
            assert loss_x(dash) == list(range(1, 11))
            # The epochs arrived while the view was live, not in one lump at the end.
            assert len([e for e in seen if 5 < e < 10]) >= 1, f"no epoch between 5 and 10 was ever shown: {seen}"
            await wait_until(pilot, lambda: "finished" in dash.status_line.plain, 10, lambda: dash.status_line.plain)
            assert c.state_word() == "finished" and not c.active
        assert writer.wait(30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


# ------------------------------------------------------------ two runs in one session



def run_lines(dash: DashboardScreen, name: str) -> tuple[bool, bool]:
    lines = dash.log_pane.lines_text
    started = any("run started" in line and name in line for line in lines)
    finished = any("finished (completed)" in line for line in lines)
    return started, finished


async def test_two_in_process_runs_one_after_another_both_log_completely(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        dash = await start_tiny_run(pilot)
        first = dash.controller.run
        await app.workers.wait_for_complete()
        await wait_until(pilot, lambda: all(run_lines(dash, first.name)), 30, lambda: f"first run's log: {dash.log_pane.lines_text}")
        assert dash.controller.state_word() == "finished"
        first_live = dash.controller.live

        dash = await start_tiny_run(pilot, seed=4)
        second = dash.controller.run
        assert second.name != first.name
        del first_live
        gc.collect()  # the first run's LiveRun goes: a new object may get its id()
        await app.workers.wait_for_complete()
        await wait_until(pilot, lambda: all(run_lines(dash, second.name)), 30, lambda: f"second run's log: {dash.log_pane.lines_text}")
        assert dash.controller.state_word() == "finished"
        assert not any(first.name in line for line in dash.log_pane.lines_text if "run started" in line)
        await settle_charts(pilot)
        assert loss_x(dash) == [1, 2, 3]
    assert json.loads((second.path / "config.json").read_text())["seed"] == 4
    assert os.path.exists(second.events_path)
