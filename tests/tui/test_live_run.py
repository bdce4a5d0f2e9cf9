"""LiveRun: the dashboard's fold of a run's events (no Textual involved)."""

from __future__ import annotations

from dashboard_fixtures import run_events, tiny_config

from nsm.runs.events import make_event
from tui.live_run import LiveRun, fmt_duration


def events(kinds_payloads, start: int = 0):  # type: ignore[no-untyped-def]
    return [make_event(start + i, kind, t=1000.0 + i, **payload) for i, (kind, payload) in enumerate(kinds_payloads)]


def prepared(epochs_done: int = 6, **kwargs):  # type: ignore[no-untyped-def]
    config = tiny_config(epochs=10, eval_every=2, save_every=5, patience=5)
    return events(run_events(name="r", config=config, epochs_done=epochs_done, **kwargs))


def test_events_fold_into_history_progress_and_logs() -> None:
    live = LiveRun("planning/r")
    assert live.feed_all(prepared()) == len(prepared())
    h = live.history()
    assert h["epochs"] == [1, 2, 3, 4, 5, 6] and h["val"]["epochs"] == [2, 4, 6]
    assert live.epochs == 10 and live.epochs_done() == 6 and live.status == "finished"
    assert live.batch_position() == (6, 6)  # finished: the last epoch's batches all done
    assert any("finished (completed)" in line.text for line in live.logs)
    assert live.log_time(live.logs[-1]).startswith("+")


def test_the_same_events_twice_change_nothing() -> None:
    """In-process sink and file follower may both deliver a seq: the first copy counts."""
    live = LiveRun()
    evs = prepared()
    live.feed_all(evs)
    versions = (live.history_version, live.progress_version, live.log_count)
    assert live.feed_all(evs) == 0
    assert (live.history_version, live.progress_version, live.log_count) == versions


def test_a_resume_from_an_older_checkpoint_rewrites_the_future() -> None:
    live = LiveRun()
    evs = prepared(epochs_done=6, outcome="interrupted")
    live.feed_all(evs)
    assert live.status == "interrupted"
    resumed = make_event(len(evs), "resumed", t=2000.0, checkpoint="checkpoint_epoch_5.pt", epoch=5, step=0, config={"epochs": 10})
    live.feed(resumed)
    assert live.status is None  # a new attempt is under way
    assert live.history()["epochs"] == [1, 2, 3, 4, 5]
    assert "resumed from checkpoint_epoch_5.pt" in live.logs[-1].text


def test_malformed_events_are_tolerated() -> None:
    live = LiveRun()
    junk = [
        "not a dict",
        {"seq": "1", "type": "epoch_end"},
        {"seq": 0, "type": "epoch_end", "epoch": "one", "loss": "x"},
        {"seq": 1, "type": "gpu", "sample": ["not", "a", "dict"]},
        {"seq": 2, "type": "log", "level": 7, "message": None},
        {"seq": 3, "type": "progress", "epoch": None, "step": "x"},
        {"seq": 4, "type": "failed"},
        {"seq": 5, "type": "eval", "epoch": 2, "loss": None, "acc": "?"},
    ]
    for e in junk:
        live.feed(e)
    assert live.status == "failed" and live.failure_text() == "the run failed"
    assert live.batch_position() is None
    assert live.history()["epochs"] == []
    assert live.latest("eta_s") is None


def test_an_oom_failure_suggests_a_batch_size() -> None:
    live = LiveRun()
    live.feed_all(prepared(epochs_done=1, outcome="failed", oom_batch=4))
    assert live.oom_batch_size() == 4
    other = LiveRun()
    other.feed_all(prepared(epochs_done=1, outcome="failed"))
    assert other.oom_batch_size() is None
    assert other.failure_hint() and "lower LR" in other.failure_hint()
    # An OOM event without a suggestion (an older engine): half the run's batch size.
    legacy = LiveRun()
    legacy.feed_all(events([("run_started", {"config": {"batch_size": 64}}), ("failed", {"error": "CUDA out of memory", "error_type": "oom"})]))
    assert legacy.oom_batch_size() == 32


def test_progress_inside_an_epoch() -> None:
    live = LiveRun()
    live.feed_all(events([
        ("run_started", {"epochs": 4, "steps_per_epoch": 10, "config": {}}),
        ("progress", {"epoch": 1, "step": 4, "steps": 10, "graphs_per_s": 100.0, "eta_s": 30.0}),
    ]))  # fmt: skip
    assert live.batch_position() == (4, 10)
    assert live.latest("graphs_per_s") == 100.0 and live.latest("eta_s") == 30.0


def test_durations_read_well() -> None:
    assert [fmt_duration(x) for x in (None, 5, 65, 3725, -1)] == ["-", "5s", "1m05s", "1h02m", "-"]
