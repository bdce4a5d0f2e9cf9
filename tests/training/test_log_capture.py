"""Warnings and WARNING+ records of the training thread become `log` events, and nothing else does."""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from nsm.models import NSMModel
from nsm.runs import RunStore
from nsm.training.bus import EventBus
from nsm.training.log_capture import capture_run_logs
from nsm.training.trainer import Trainer

from .helpers import tiny_config

Line = tuple[str, str, str]


@pytest.fixture
def shown_warnings():
    """Every warning shown, as Python's default filter would not repeat them per location."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        yield shown


def _in_thread(fn: Any) -> None:
    t = threading.Thread(target=fn)
    t.start()
    t.join(10)


def test_repeats_are_shown_three_times_then_counted(shown_warnings) -> None:
    lines: list[Line] = []
    hook, handlers = warnings.showwarning, list(logging.getLogger("torch").handlers)
    with capture_run_logs(lambda *line: lines.append(line)):
        for _ in range(12):
            warnings.warn("a slow path was taken", UserWarning)
        logging.getLogger("torch_geometric.fake").warning("edge index %s is unsorted", "x\nsecond line")
        logging.getLogger("torch_geometric.fake").info("not a warning")
    texts = [message for _, message, _ in lines]
    assert len([t for t in texts if t.startswith("UserWarning: a slow path was taken (test_log_capture.py:")]) == 5
    assert texts[3].endswith("(seen 10 times so far)") and texts[5].endswith("(seen 12 times in all)")
    assert lines[4] == ("warning", "torch_geometric.fake: edge index x", "torch_geometric.fake")
    assert {level for level, _, _ in lines} == {"warning"} and len(lines) == 6
    assert len(shown_warnings) == 3  # the counted repeats are not shown elsewhere either
    assert warnings.showwarning is hook and logging.getLogger("torch").handlers == handlers


def test_only_the_capturing_thread_is_captured_and_overlapping_runs_restore_cleanly(shown_warnings) -> None:
    hook = warnings.showwarning
    first: list[Line] = []
    second: list[Line] = []
    started, release = threading.Event(), threading.Event()

    def other_run() -> None:
        with capture_run_logs(lambda *line: second.append(line)):
            started.set()
            release.wait(10)
            warnings.warn("from the second run")

    t = threading.Thread(target=other_run)
    cm = capture_run_logs(lambda *line: first.append(line))
    cm.__enter__()
    t.start()
    assert started.wait(10)
    warnings.warn("from the first run")
    _in_thread(lambda: warnings.warn("from a UI thread"))
    cm.__exit__(None, None, None)  # the first run ends while the second still trains
    release.set()
    t.join(10)
    assert [m.split(" (")[0] for _, m, _ in first] == ["UserWarning: from the first run"]
    assert [m.split(" (")[0] for _, m, _ in second] == ["UserWarning: from the second run"]
    assert warnings.showwarning is hook
    assert len(shown_warnings) == 3  # every warning still reached the usual place


def test_a_failing_emit_is_dropped_without_recursion(shown_warnings) -> None:
    def broken(*line: str) -> None:
        warnings.warn("the emitter warns too")
        logging.getLogger("nsm.training.bus").error("could not write")
        raise OSError(28, "No space left on device")

    with capture_run_logs(broken) as capture:
        warnings.warn("once")
        logging.getLogger("torch").warning("twice")
    assert capture.dropped == 2
    assert warnings.showwarning is not None


def test_a_sink_that_warns_inside_the_bus_does_not_deadlock(shown_warnings) -> None:
    events: list[dict[str, Any]] = []

    def noisy_sink(event: dict[str, Any]) -> None:
        events.append(event)
        if event["type"] == "epoch_end":
            warnings.warn("sink is deprecated", DeprecationWarning)

    bus = EventBus(None, [noisy_sink])

    def train() -> None:
        with capture_run_logs(lambda level, message, source: bus.emit("log", level=level, message=message, source=source)):
            bus.emit("epoch_end", epoch=1)

    t = threading.Thread(target=train)
    t.start()
    t.join(10)
    assert not t.is_alive(), "the capture deadlocked on the bus lock"
    assert [e["type"] for e in events] == ["epoch_end", "log"]
    assert events[1]["level"] == "warning" and events[1]["source"] == "py.warnings"
    assert events[1]["message"].startswith("DeprecationWarning: sink is deprecated")


def test_a_warning_in_every_training_step_is_logged_once_then_counted(tmp_path: Path, monkeypatch, shown_warnings) -> None:
    forward = NSMModel.forward

    def warning_forward(self: NSMModel, *args: Any, **kwargs: Any) -> Any:
        if self.training:
            warnings.warn("scatter_reduce is slow on this device", UserWarning)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(NSMModel, "forward", warning_forward)
    run = RunStore(tmp_path / "runs").create_run(tiny_config(epochs=1, batch_size=4), name="noisy")  # 11 steps
    seen: list[dict[str, Any]] = []
    assert Trainer(run, sinks=[seen.append]).run() == "finished"

    logs = [e for e in run.events() if e["type"] == "log" and e.get("source") == "py.warnings"]
    started = run.events()[0]
    steps = started["steps_per_epoch"] * started["epochs"]
    assert [e["level"] for e in logs] == ["warning"] * 5
    assert all("UserWarning: scatter_reduce is slow on this device" in e["message"] for e in logs)
    assert logs[3]["message"].endswith("(seen 10 times so far)")
    assert logs[4]["message"].endswith(f"(seen {steps} times in all)")
    assert [e for e in seen if e["type"] == "log" and e.get("source")] == logs  # the viewers got them too
    assert run.events()[-1]["type"] == "finished"  # the total came before the end, where viewers stop
