"""The real `nsm-tui` in a real terminal (tmux, 80×24): attach to a long finished
run, and follow a detached training run, then quit leaving it running.

Each test has its own tmux server (`tmux -L <unique socket>`), so tests cannot
see each other's sessions; every wait polls `capture-pane` with a deadline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from long_runs import write_long_run

from nsm.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]
NSM_TUI = ROOT / ".venv" / "bin" / "nsm-tui"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def nsm_tui() -> list[str]:
    if NSM_TUI.exists():
        return [str(NSM_TUI)]
    return [sys.executable, "-m", "tui.cli"]


class Tmux:
    """One tmux server of our own with one 80×24 session."""

    def __init__(self, env: dict[str, str]):
        self.socket = f"nsm-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session = "S"
        self.env = env

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check, timeout=30)

    def start(self, command: list[str]) -> None:
        env = " ".join(f"{k}={_quote(v)}" for k, v in self.env.items())
        line = f"env {env} " + " ".join(_quote(c) for c in command)
        # remain-on-exit keeps the pane (and its last screen) after the app quits: the test asks whether it did.
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", self.session, "-x", "80", "-y", "24", line)
        self.tmux("set-option", "-t", self.session, "remain-on-exit", "on")

    def screen(self) -> str:
        result = self.tmux("capture-pane", "-p", "-t", self.session, check=False)
        return result.stdout

    def wait_for(self, ok: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if ok(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:.0f} s: {what}; the screen:\n{text}")
            time.sleep(0.1)

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def pane_dead(self) -> bool:
        result = self.tmux("display-message", "-p", "-t", self.session, "#{pane_dead}", check=False)
        return result.stdout.strip() == "1"

    def kill(self) -> None:
        self.tmux("kill-server", check=False)


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def env_for(tmp_path: Path, root: Path) -> dict[str, str]:
    config_dir = tmp_path / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    return {"NSM_RUNS_DIR": str(root), "NSM_CONFIG_DIR": str(config_dir), "TERM": "xterm-256color"}


def test_attach_in_a_terminal_to_a_finished_100k_event_run_shows_its_end(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_long_run(root, "long-run", events=100_000, epochs=100, outcome="finished")
    term = Tmux(env_for(tmp_path, root))
    try:
        term.start([*nsm_tui(), "attach", "long-run"])
        # The status word says "finished" from the first frame (the run's status); the last
        # epoch and the run's final log line show once the whole history is read.
        text = term.wait_for(
            lambda s: "Epoch 100/100" in s and "finished (completed) after 100 epochs" in s,
            60,
            "the screen never showed the finished run at epoch 100/100 with its final log line",
        )
        status = next((line for line in text.splitlines() if "planning/long-run" in line), "")
        assert "finished" in status, text
        term.send("C-q")  # nothing trains: quits at once
        deadline = time.monotonic() + 15
        while not term.pane_dead():
            assert time.monotonic() < deadline, f"ctrl+q did not quit; the screen:\n{term.screen()}"
            time.sleep(0.1)
    finally:
        term.kill()


def epoch_on(screen: str) -> int | None:
    m = re.search(r"Epoch (\d+)/(\d+)", screen)
    return int(m.group(1)) if m else None


def test_follow_a_detached_run_in_a_terminal_then_quit_leaving_it_running(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    env = env_for(tmp_path, root)
    full_env = {**os.environ, **env}
    name = "tmux-detached"
    train = [
        *nsm_tui(), "train", "--domain", "planning", "--epochs", "2000", "--num-graphs", "60", "--batch-size", "8",
        "--patience", "0", "--eval-every", "5", "--save-every", "1000", "--detach", "--name", name,
    ]  # fmt: skip
    started = subprocess.run(train, capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=60)
    assert started.returncode == 0, started.stderr
    term = Tmux(env)
    try:
        term.start([*nsm_tui(), "attach", name])
        first_screen = term.wait_for(
            lambda s: (epoch_on(s) or 0) >= 1 and "running" in s, 90, "the followed run never showed a trained epoch"
        )
        first = epoch_on(first_screen)
        later = term.wait_for(
            lambda s: (epoch_on(s) or 0) >= (first or 0) + 2, 60, f"the epoch never moved on from {first}"
        )
        assert "running" in later

        term.send("C-q")
        dialog = term.wait_for(lambda s: "Leave it running" in s, 15, "ctrl+q did not ask what to do with the run")
        assert "Quit nsm-tui?" in dialog
        term.send("l")
        deadline = time.monotonic() + 15
        while not term.pane_dead():
            assert time.monotonic() < deadline, f"the app did not quit after 'leave it running'; the screen:\n{term.screen()}"
            time.sleep(0.1)

        run = RunStore(root).get(name)
        assert run.status() == "running" and not run.stop_requested()
        listed = subprocess.run([*nsm_tui(), "runs", "list"], capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=60)
        row = next((line for line in listed.stdout.splitlines() if name in line), "")
        assert "running" in row, f"the run is not running after leaving it: {listed.stdout}{listed.stderr}"
    finally:
        term.kill()
        stopped = subprocess.run([*nsm_tui(), "stop", name, "--wait", "60"], capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=90)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
