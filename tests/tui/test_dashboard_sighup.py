"""Remote monitoring: the terminal goes away, the detached run does not.

The real `nsm-tui` runs in a pseudo-terminal (as over ssh or in tmux), starts
a detached run with its start key, then gets SIGHUP as when the ssh link drops.
The TUI must exit; the run must train on to "finished"; a new `nsm-tui attach`
must show all of it.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import sys
import termios
import threading
import time
from pathlib import Path

from dashboard_fixtures import tiny_config

from nsm.runs import EventFollower, RunStore

ROOT = Path(__file__).resolve().parents[2]


class PtyApp:
    """`python -m tui.cli ARGS` on the slave side of a pty; its output is drained continuously."""

    def __init__(self, args: list[str], env: dict[str, str], size: tuple[int, int] = (80, 24)):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes the session leader with the pty as its terminal
            try:
                os.chdir(ROOT)
                os.execve(sys.executable, [sys.executable, "-m", "tui.cli", *args], env)
            finally:
                os._exit(127)
        cols, rows = size
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.5)
                if not ready:
                    continue
                data = os.read(self.fd, 65536)
            except OSError:
                return  # EIO: the child side closed
            if not data:
                return
            with self._lock:
                self.output += data

    def wait_for_output(self, needle: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if needle in self.output:
                    return
            time.sleep(0.05)  # another process's terminal output: nothing to await here
        raise AssertionError(f"{needle!r} never appeared; last output: {bytes(self.output[-600:])!r}")

    def send(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return status
            time.sleep(0.05)
        return None

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass


def wait_for(run_dir: Path, types: set[str], timeout: float) -> dict:
    follower = EventFollower(run_dir / "events.jsonl")
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in follower.poll():
            seen.append(event["type"])
            if event["type"] in types:
                return event
        time.sleep(0.1)  # a file another process writes
    raise AssertionError(f"none of {types} within {timeout} s; events so far: {seen}")


def test_a_detached_run_keeps_training_when_the_terminal_hangs_up(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    # The dashboard opens on the last config used: a tiny detached run.
    last = tiny_config(epochs=4, backend="process").to_dict()
    (config_dir / "settings.json").write_text(json.dumps({"dashboard.last_config": last}))
    env = dict(os.environ, NSM_CONFIG_DIR=str(config_dir), NSM_RUNS_DIR=str(root), TERM="xterm-256color")
    env.pop("TEXTUAL_FPS", None)

    tui = PtyApp([], env)
    try:
        tui.wait_for_output(b"Run configuration", timeout=30)
        tui.send(b"s")
        deadline = time.monotonic() + 30
        runs = []
        while not runs and time.monotonic() < deadline:
            runs = RunStore(root).list_runs()
            time.sleep(0.05)  # the TUI (another process) creates the run directory
        assert runs, "the start key did not create a run"
        run_dir = runs[0].path
        info = json.loads((run_dir / "process.json").read_text())
        worker_pid = info["pid"]
        assert worker_pid != tui.pid and info["backend"] == "process"
        wait_for(run_dir, {"run_started"}, timeout=120)

        os.kill(tui.pid, signal.SIGHUP)  # the ssh link drops
        status = tui.wait_exit(timeout=20)
        assert status is not None, "the TUI did not exit on SIGHUP"
        assert os.WIFEXITED(status)  # its handler ran: not killed by the signal
    finally:
        tui.kill()

    end = wait_for(run_dir, {"finished", "interrupted", "failed"}, timeout=180)
    assert end["type"] == "finished", end
    assert RunStore(root).get(run_dir.name).status() == "finished"


def test_an_in_process_run_is_stopped_with_a_checkpoint_when_the_terminal_goes(tmp_path: Path) -> None:
    """An in-process run cannot outlive the app; on hang-up it stops cleanly instead of dying."""
    root = tmp_path / "runs"
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    last = tiny_config(epochs=500, backend="inprocess").to_dict()
    (config_dir / "settings.json").write_text(json.dumps({"dashboard.last_config": last}))
    env = dict(os.environ, NSM_CONFIG_DIR=str(config_dir), NSM_RUNS_DIR=str(root), TERM="xterm-256color")

    tui = PtyApp([], env)
    try:
        tui.wait_for_output(b"Run configuration", timeout=30)
        tui.send(b"s")
        deadline = time.monotonic() + 30
        runs = []
        while not runs and time.monotonic() < deadline:
            runs = RunStore(root).list_runs()
            time.sleep(0.05)  # the TUI (another process) creates the run directory
        assert runs, "the start key did not create a run"
        run_dir = runs[0].path
        wait_for(run_dir, {"epoch_end"}, timeout=120)
        os.close(tui.fd)  # the terminal itself goes away, as when sshd drops the link
        os.kill(tui.pid, signal.SIGHUP)
        status = tui.wait_exit(timeout=60)
        assert status is not None, "the TUI did not exit after the hang-up"
    finally:
        tui.kill()
    end = wait_for(run_dir, {"finished", "interrupted", "failed"}, timeout=5)
    assert end["type"] == "interrupted" and "SIGHUP" in end["reason"]
    assert (run_dir / end["checkpoint"]).exists()


def test_a_new_attach_shows_what_happened_while_away(tmp_path: Path) -> None:
    """Re-attaching after the fact: the whole history arrives at once."""
    import asyncio

    from dashboard_fixtures import make_app, write_run

    write_run(tmp_path / "runs", "away-run", epochs_done=10)

    async def check() -> None:
        app = make_app(tmp_path / "runs", attach="away-run")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            dash = app.get_screen_for_mode("dashboard")
            assert dash.controller.live.epochs_done() == 10
            assert dash.charts.charts["loss"].series[0].x == list(range(1, 11))

    asyncio.run(check())
