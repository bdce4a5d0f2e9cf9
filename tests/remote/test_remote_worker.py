"""The Modal function's body, run here: a temp folder stands for the volume,
plain callables for the queue, the stop flag, the commits and the high-water mark."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nsm.runs import Run, read_events
from remote.worker import EventForwarder, PolledFlag, train_remote
from tests.training.helpers import metric_rows, tiny_config


def request(name: str = "remote-run", launch_id: str = "launch-1", **config: Any) -> dict[str, Any]:
    return {"config": tiny_config(backend="modal", **config).to_dict(), "run": name, "launch_id": launch_id}


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [e["seq"] for e in events]


class SimulatedKill(BaseException):
    """The container vanishing mid-step (not an Exception: the engine cannot catch it)."""


def test_full_tiny_run_lands_on_the_volume_and_streams_every_event(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    commits: list[str] = []
    summary = train_remote(request(), tmp_path, event_sink=sent.append, commit=lambda: commits.append("commit"))

    run = Run(tmp_path / "planning" / "remote-run")
    events, bad = read_events(run.events_path)
    assert summary["outcome"] == "finished" and summary["error"] is None
    assert summary["last_seq"] == events[-1]["seq"] and bad == 0
    assert seqs(events) == list(range(len(events)))
    assert seqs(sent) == seqs(events), "every event of the log was sent, in order"
    assert events[-1]["type"] == "finished"
    assert run.results()["epochs_done"] == 3
    assert {c.file for c in run.checkpoints()} >= {"best_model.pt", "checkpoint_epoch_2.pt"}
    # Committed after the periodic checkpoint (SAVE_EVERY=2) and at the end.
    assert len(commits) == 2
    assert next(e for e in events if e["type"] == "run_started")["backend"] == "modal"


def test_stop_through_the_flag_interrupts_with_a_committed_checkpoint(tmp_path: Path) -> None:
    control: dict[str, bool] = {"stop": False}
    sent: list[dict[str, Any]] = []

    def sink(event: dict[str, Any]) -> None:
        sent.append(event)
        if event["type"] == "epoch_end" and event["epoch"] == 1:
            control["stop"] = True  # the user presses stop while epoch 2 starts

    flag = PolledFlag(lambda: control["stop"], interval_s=0.01).start()
    commits: list[int] = []
    try:
        summary = train_remote(
            request(epochs=4), tmp_path, event_sink=sink, stop_flag=flag, commit=lambda: commits.append(1)
        )
    finally:
        flag.close()
    run = Run(tmp_path / "planning" / "remote-run")
    end = run.events()[-1]
    assert summary["outcome"] == "interrupted"
    assert end["type"] == "interrupted" and end["reason"] == "stop requested"
    assert (run.path / end["checkpoint"]).exists()
    assert end["epoch"] == 1 and end["step"] < 6  # stopped in epoch 2, well before its end
    assert commits, "the interrupt checkpoint was committed"


def test_retry_after_a_kill_resumes_from_the_committed_checkpoint(tmp_path: Path) -> None:
    """Attempt 1 dies in epoch 3 after committing at epoch 2; its uncommitted
    writes are lost. Attempt 2 (same launch) resumes from checkpoint_epoch_2,
    numbers its events after every seq a viewer got, and ends where an
    uninterrupted run ends."""
    work, committed = tmp_path / "work", tmp_path / "committed"
    work.mkdir()
    committed.mkdir()
    viewer: list[dict[str, Any]] = []  # what a follower received live, in order
    high_water: dict[str, int] = {}
    killed = threading.Event()

    def commit() -> None:
        if not killed.is_set():
            shutil.copytree(work, committed, dirs_exist_ok=True)

    def sink(event: dict[str, Any]) -> None:
        viewer.append(event)
        high_water["seq"] = event["seq"]

    def kill_in_epoch_3(epoch: int, step: int) -> None:
        if epoch == 3 and step == 1:
            time.sleep(0.3)  # long enough for a (throttled) progress event that no commit will carry
        if epoch == 3 and step == 2:
            killed.set()
            raise SimulatedKill()

    with pytest.raises(SimulatedKill):
        train_remote(
            request(), work, event_sink=sink, commit=commit, high_water=lambda: high_water.get("seq"),
            trainer_options={"on_step": kill_in_epoch_3},
        )  # fmt: skip
    first_attempt_last = viewer[-1]["seq"]
    # The volume keeps only what was committed; the next attempt starts from that.
    shutil.rmtree(work)
    shutil.copytree(committed, work)
    killed.clear()
    summary = train_remote(
        request(), work, event_sink=sink, commit=commit, high_water=lambda: high_water.get("seq")
    )

    run = Run(work / "planning" / "remote-run")
    events = run.events()
    assert summary["outcome"] == "finished" and summary["attempt"] == 2
    assert seqs(events) == list(range(len(events))), "the volume's log has no gap"
    second = [e for e in viewer if e["seq"] > first_attempt_last]
    assert len(second) == len(viewer) - (first_attempt_last + 1), "no seq was sent twice"
    resumed = next(e for e in second if e["type"] == "resumed")
    assert resumed["checkpoint"] == "checkpoint_epoch_2.pt" and resumed["epoch"] == 2
    placeholders = [e for e in events if e["type"] == "log" and "placeholder" in e["message"]]
    assert placeholders and all(e["seq"] <= first_attempt_last for e in placeholders)
    assert run.history()["epochs"] == [1, 2, 3]

    # The same result as a run that was never interrupted.
    plain = tmp_path / "plain"
    train_remote(request(), plain)
    train, val = metric_rows(Run(plain / "planning" / "remote-run").events())
    viewer_train, viewer_val = metric_rows([e for e in events if e["seq"] >= resumed["seq"]])
    assert viewer_train[3] == train[3] and viewer_val[3] == val[3]


def test_retry_of_a_finished_run_does_not_train_again(tmp_path: Path) -> None:
    train_remote(request(), tmp_path)
    before = read_events(tmp_path / "planning" / "remote-run" / "events.jsonl")[0]
    again = train_remote(request(), tmp_path)  # a retry of the same launch
    assert again["outcome"] == "finished"
    assert read_events(tmp_path / "planning" / "remote-run" / "events.jsonl")[0] == before


def test_a_new_launch_never_writes_into_another_run_of_the_same_name(tmp_path: Path) -> None:
    train_remote(request(epochs=1), tmp_path)
    summary = train_remote(request(epochs=1, launch_id="someone-else"), tmp_path)
    assert summary["outcome"] == "failed"
    assert "already exists on the volume" in summary["error"]


def test_forwarder_marks_the_high_water_before_sending_and_drops_what_cannot_be_sent() -> None:
    order: list[tuple[str, int]] = []
    fail = {"now": False}

    def send(batch: list[dict[str, Any]]) -> None:
        if fail["now"]:
            raise RuntimeError("queue full")
        order.append(("send", batch[-1]["seq"]))

    forwarder = EventForwarder(send, mark=lambda seq: order.append(("mark", seq)), interval_s=60)
    for seq in range(3):
        forwarder({"seq": seq, "type": "log"})
    forwarder.flush()
    fail["now"] = True
    forwarder({"seq": 3, "type": "log"})
    forwarder.close()
    assert order == [("mark", 2), ("send", 2), ("mark", 3)]
    assert forwarder.sent == 3 and forwarder.dropped == 1
