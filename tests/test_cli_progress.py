"""Headless progress (`train` attached, `attach --headless`): rounded rates, a line while
the dataset is made, the log's clock said once, and after ctrl+c no bar drawn again."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from nsm.execution.render import CLOCK_NOTE
from tui.cli.progress import ProgressView, dataset_line, rate_text

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000.0
STARTED = {"type": "run_started", "seq": 0, "t": T0, "run": "r", "config": {"epochs": 3}, "epochs": 3,
           "params": 1000, "train_size": 42, "environment": {"device": "cpu"}, "dataset": {"data_time_s": 3.217}}  # fmt: skip


def _progress(seq: int, step: int) -> dict:
    return {"type": "progress", "seq": seq, "t": T0 + seq, "epoch": 1, "step": step, "steps": 6, "loss": 0.61234,
            "graphs_per_s": 271.8966154750548, "elapsed_s": 18.4, "eta_s": 155.2}  # fmt: skip


def test_rates_are_whole_graphs_a_second_and_durations_read_1m05s() -> None:
    assert rate_text(271.8966154750548) == "272 graphs/s"
    assert rate_text(12345.6) == "12,346 graphs/s"
    assert rate_text(None) == "- graphs/s"
    out = io.StringIO()
    with ProgressView("r", stream=out, tty=True) as view:
        view.on_event(STARTED)
        view.on_event(_progress(1, 3))
        assert view.progress.tasks[0].fields["info"] == "272 graphs/s · 18s · ETA 2m35s"
        assert view.progress.tasks[1].fields["info"] == "loss 0.6123"


def test_piped_lines_carry_the_runs_clock_and_say_which_it_is() -> None:
    out = io.StringIO()
    with ProgressView("r", stream=out, tty=False) as view:
        view.on_event(STARTED)
        view.on_event({"type": "epoch_end", "seq": 1, "t": T0 + 65.2, "epoch": 1, "loss": 0.5, "acc": 0.7,
                       "cycle_loss": 0.01, "graphs_per_s": 271.89})  # fmt: skip
    lines = out.getvalue().splitlines()
    assert lines[0] == f"({CLOCK_NOTE})"
    assert lines[1].startswith("+0s run started: r")
    assert lines[2].startswith("+1m05s epoch 1: loss 0.5000") and lines[2].endswith("· 272 graphs/s")


def test_a_line_while_the_dataset_is_made_then_its_time(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NSM_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert dataset_line({"domain": "planning", "num_graphs": 2000, "seed": 42}) == "generating the planning dataset: 2,000 graphs…"
    assert dataset_line({}) is None
    out = io.StringIO()
    with ProgressView("r", stream=out, tty=False) as view:
        view.preparing({"domain": "kg", "num_graphs": 60, "seed": 3})
        view.on_event(STARTED)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["generating the kg dataset: 60 graphs…", "dataset ready in 3.2s"]


def test_stopping_takes_the_bars_down_once_and_lines_follow_without_them() -> None:
    out = io.StringIO()
    with ProgressView("r", stream=out, tty=True) as view:
        view.on_event(STARTED)
        view.on_event(_progress(1, 3))
        assert view.progress is not None
        view.stopping("stopping at the next step")
        deadline = time.monotonic() + 10
        while view.progress is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert view.progress is None
        mark = len(out.getvalue())
        view.on_event(_progress(2, 4))  # a step still reported before the stop lands
        view.on_event({"type": "interrupted", "seq": 3, "t": T0 + 3, "epoch": 0, "step": 4, "checkpoint": "checkpoint_epoch_0_step_4.pt"})
        assert view.progress is None  # no bar comes back
    after = out.getvalue()[mark:]
    assert "━" not in after and "interrupted in epoch 1 at step 4" in after and "checkpoint_epoch_0_step_4.pt" in after


def test_ctrl_c_on_an_attached_train_prints_no_bar_after_the_interrupted_line(tmp_path: Path) -> None:
    """A real `nsm-tui train` on a terminal (a pty): bars while it trains; SIGINT; then
    the stop's lines, the checkpoint, and no bar drawn again."""
    env = {**os.environ, "NSM_RUNS_DIR": str(tmp_path / "runs"), "NSM_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "100", "LINES": "30"}
    tiny = ["--num-graphs", "60", "--batch-size", "8", "--hidden", "16", "--threads", "1", "--eval-every", "1", "--device", "cpu"]
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "train", "--domain", "planning", "--epochs", "10000", *tiny, "--name", "ctrl-c"],
        cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    seen = b""

    def read_for(seconds: float, until: bytes | None = None) -> None:
        nonlocal seen
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until in seen):
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    return
                if not chunk:
                    return
                seen += chunk

    try:
        read_for(120, until="━".encode())
        assert "━".encode() in seen, seen.decode(errors="replace")[-2000:]
        read_for(0.5)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        read_for(2)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text[-2000:]
    assert "generating the planning dataset: 60 graphs…" in text
    tail = text[text.index("stopping at the next step") :]
    # "interrupted in epoch N at step K" mid-epoch, "interrupted after epoch N" at a boundary
    assert "interrupted " in tail and "checkpoint checkpoint_epoch_" in tail
    after = tail[tail.index("interrupted ") :]
    assert "━" not in after and "graphs/s · " not in after, after  # no bar re-printed
    assert "resume with: nsm-tui resume ctrl-c" in after
