"""No terminal, no TUI: one line and exit 2; a terminal that vanishes ends the TUI.

`ssh box nsm-tui` without `-t` gives the process pipes, not a TTY: the dashboard
must say so (naming `ssh -t` and the headless commands) instead of drawing into
a pipe. A dashboard whose pty disappears without SIGHUP (it is not the session's
controlling process) must notice and exit rather than spin on EOF.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tui.terminal import NO_TERMINAL, require_terminal, terminal_fds, terminal_gone, watch_terminal

ROOT = Path(__file__).resolve().parents[2]


def _env(runs: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["NSM_RUNS_DIR"] = str(runs)
    env["TERM"] = "xterm-256color"
    return env


@pytest.mark.parametrize("args", [[], ["attach"], ["attach", "SOMERUN"]])
def test_without_a_tty_the_dashboard_is_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    with open(os.devnull) as devnull:
        out = subprocess.run(
            [sys.executable, "-m", "tui.cli", *args],
            cwd=ROOT,
            stdin=devnull,
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            timeout=60,
        )
    assert out.returncode == 2, out
    assert out.stdout == ""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "ssh -t" in lines[0] and "--headless" in lines[0]
    assert "Traceback" not in out.stderr


def test_headless_commands_still_work_without_a_tty(tmp_path: Path) -> None:
    with open(os.devnull) as devnull:
        out = subprocess.run(
            [sys.executable, "-m", "tui.cli", "runs", "list"],
            cwd=ROOT,
            stdin=devnull,
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            timeout=60,
        )
    assert out.returncode == 0, out.stderr
    assert "ssh -t" not in out.stderr


class _FakeStream:
    def __init__(self, tty: bool | None):
        self.tty = tty

    def isatty(self) -> bool:
        if self.tty is None:
            raise ValueError("I/O operation on closed file")
        return self.tty


def test_require_terminal_needs_both_stdin_and_stdout() -> None:
    yes, no, closed = _FakeStream(True), _FakeStream(False), _FakeStream(None)
    assert require_terminal(yes, yes) is None
    assert require_terminal(no, yes) == NO_TERMINAL
    assert require_terminal(yes, no) == NO_TERMINAL
    assert require_terminal(yes, closed) == NO_TERMINAL


def test_terminal_gone_when_the_pty_master_closes_or_the_fd_is_closed() -> None:
    master, slave = pty.openpty()
    try:
        assert terminal_fds([slave]) == (slave,)
        assert not terminal_gone([slave])
        os.close(master)  # the terminal emulator / sshd went away: the slave is hung up (EIO)
        master = -1
        assert terminal_gone([slave])
    finally:
        if master >= 0:
            os.close(master)
        os.close(slave)
    assert terminal_gone([slave])  # a closed fd (EBADF) is gone too


def test_watch_terminal_calls_back_once_when_the_terminal_vanishes() -> None:
    master, slave = pty.openpty()
    called = threading.Event()
    calls: list[int] = []

    def on_gone() -> None:
        calls.append(1)
        called.set()

    stop = watch_terminal(on_gone, fds=[slave], interval=0.05)
    try:
        assert not called.wait(0.3)  # the terminal is there: nothing happens
        os.close(master)
        assert called.wait(5)
        time.sleep(0.2)
        assert calls == [1]
    finally:
        stop.set()
        os.close(slave)


def test_watch_terminal_stops_when_told() -> None:
    master, slave = pty.openpty()
    called = threading.Event()
    stop = watch_terminal(called.set, fds=[slave], interval=0.05)
    stop.set()
    time.sleep(0.2)
    os.close(master)
    try:
        assert not called.wait(0.3)
    finally:
        os.close(slave)


def test_a_dashboard_whose_pty_vanishes_without_sighup_exits(tmp_path: Path) -> None:
    """The pty is the child's stdin/stdout/stderr but not its controlling terminal
    (start_new_session): closing the master sends no SIGHUP; the watchdog must notice."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli"],
        cwd=ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env(tmp_path),
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    try:
        output = b""
        deadline = time.monotonic() + 60
        while len(output) < 200 and time.monotonic() < deadline:  # the first frame is being drawn
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    output += os.read(master, 65536)
                except OSError:
                    break
            assert proc.poll() is None, output[-600:]
        assert len(output) >= 200, f"no dashboard drew: {output[-600:]!r}"
        time.sleep(1.0)  # let start-up finish; nothing else is sent
        os.close(master)  # the terminal vanishes
        master = -1
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("nsm-tui kept running after its terminal vanished")
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
