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


def test_a_rewind_shows_the_checkpoints_state() -> None:
    """Resumed from epoch 5 after 10 finished epochs: the dashboard is back at epoch 5."""
    live = LiveRun()
    evs = prepared(epochs_done=10)
    live.feed_all(evs)
    assert live.status == "finished" and live.state().test_acc == 0.861
    assert live.last_epoch_end["epoch"] == 10 and live.last_eval["epoch"] == 10
    versions = (live.history_version, live.progress_version, live.status_version)
    live.feed(make_event(len(evs), "resumed", t=2000.0, checkpoint="checkpoint_epoch_5.pt", epoch=5, step=0, config={"epochs": 10}))
    assert live.status is None and live.terminal is None
    assert live.last_epoch_end["epoch"] == 5
    assert live.last_eval["epoch"] == 4  # evals every 2 epochs: the last one at or before the checkpoint
    assert live.progress is not None and live.progress["epoch"] == 5
    assert live.epochs_done() == 5 and live.batch_position() == (0, 6)
    assert live.latest("elapsed_s") == 30.0  # the numbers of epoch 5, not of epoch 10
    state = live.state()
    assert state.epoch == 5 and state.best_epoch == 4 and state.test_acc is None and state.test_loss is None
    assert live.history()["epochs"] == [1, 2, 3, 4, 5]
    assert all(a < b for a, b in zip(versions, (live.history_version, live.progress_version, live.status_version)))
    assert live.logs[-1].text == "resumed from checkpoint_epoch_5.pt: the run goes back to epoch 5 (epochs 6–10 discarded)"
    # Re-trained epochs replace the discarded ones; a second rewind forgets them too.
    n = len(evs) + 1
    live.feed(make_event(n, "epoch_end", t=2001.0, epoch=6, loss=0.5, elapsed_s=36.0))
    assert live.last_epoch_end["epoch"] == 6 and live.latest("elapsed_s") == 36.0
    live.feed(make_event(n + 1, "resumed", t=2002.0, checkpoint="checkpoint_epoch_5.pt", epoch=5, step=0))
    assert live.last_epoch_end["epoch"] == 5
    assert live.logs[-1].text.endswith("(epoch 6 discarded)")


def test_a_resume_from_the_latest_checkpoint_is_no_rewind() -> None:
    live = LiveRun()
    evs = prepared(epochs_done=6, outcome="interrupted")
    live.feed_all(evs)
    last = live.last_epoch_end
    live.feed(make_event(len(evs), "resumed", t=2000.0, checkpoint="checkpoint_epoch_6_step_2.pt", epoch=6, step=2))
    assert live.last_epoch_end is last and live.progress is None and live.status is None
    assert live.logs[-1].text == "resumed from checkpoint_epoch_6_step_2.pt (epoch 6, step 2)"


def test_every_live_run_has_its_own_serial() -> None:
    import gc

    first = LiveRun()
    serial = first.serial
    del first
    gc.collect()
    others = [LiveRun() for _ in range(5)]
    serials = [live.serial for live in others]
    assert len(set(serials)) == 5 and serial not in serials
    assert all(s > serial for s in serials)
