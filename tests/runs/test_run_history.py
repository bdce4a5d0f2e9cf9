from __future__ import annotations

from nsm.runs import history_from_events, latest_state, make_event
from nsm.runs.history import HistoryBuilder, StateBuilder

from .helpers import epoch_end, started, training_events, val


def _events(pairs):
    return [make_event(i, kind, t=1000.0 + i, **payload) for i, (kind, payload) in enumerate(pairs)]


def test_history_has_the_documented_shape() -> None:
    h = history_from_events(_events(training_events(epochs=3, progress=2)))
    assert h["epochs"] == [1, 2, 3]
    assert set(h["train"]) == {
        "loss", "task_loss", "cycle_loss", "acc", "grad_norm", "lr", "epoch_time_s", "graphs_per_s", "gpu_peak_mem_mb",
    }  # fmt: skip
    assert h["train"]["loss"] == [1.0, 0.5, 1 / 3]
    assert h["train"]["gpu_peak_mem_mb"] == [None, None, None]
    assert h["val"]["epochs"] == [1, 2, 3]
    assert set(h["val"]) == {"epochs", "loss", "task_loss", "cycle_loss", "acc"}
    assert (h["best_epoch"], h["best_val_loss"]) == (3, 1 / 3)


def test_empty_history() -> None:
    h = history_from_events([])
    assert h["epochs"] == [] and h["val"]["epochs"] == [] and h["best_epoch"] is None


def test_resumed_truncates_the_future_it_rewrites() -> None:
    pairs = [
        started(),
        epoch_end(1), val(1, 0.9, 0.6, 1, 0.9),
        epoch_end(2), val(2, 0.5, 0.7, 2, 0.5),
        epoch_end(3), val(3, 0.4, 0.8, 3, 0.4),
        ("interrupted", {"epoch": 3, "step": 0, "reason": "user"}),
        ("resumed", {"checkpoint": "checkpoint_epoch_1.pt", "epoch": 1, "step": 0}),
        epoch_end(2, loss=0.7),
    ]  # fmt: skip
    h = history_from_events(_events(pairs))
    assert h["epochs"] == [1, 2]
    assert h["train"]["loss"] == [1.0, 0.7]
    assert h["val"]["epochs"] == [1]
    # The reported best (epoch 3) was in the discarded future.
    assert (h["best_epoch"], h["best_val_loss"]) == (1, 0.9)


def test_best_follows_the_engine_report_over_a_plain_minimum() -> None:
    # Early stopping with a min delta does not count 0.899 as better than 0.9.
    pairs = [started(), epoch_end(1), val(1, 0.9, 0.6, 1, 0.9), epoch_end(2), val(2, 0.899, 0.6, 1, 0.9)]
    assert history_from_events(_events(pairs))["best_epoch"] == 1


def test_best_without_report_is_the_lowest_val_loss() -> None:
    pairs = [started(), epoch_end(1), val(1, 0.9, 0.6), epoch_end(2), val(2, 0.3, 0.7), epoch_end(3), val(3, 0.4, 0.9)]
    h = history_from_events(_events(pairs))
    assert (h["best_epoch"], h["best_val_loss"]) == (2, 0.3)


def test_builder_fed_one_by_one_matches_the_batch_fold() -> None:
    events = _events(training_events(epochs=4))
    b = HistoryBuilder()
    for e in events:
        b.feed(e)
    assert b.to_dict() == history_from_events(events)


def test_state_of_a_finished_run() -> None:
    s = latest_state(_events(training_events(epochs=3, total=3, finish=True)))
    assert s.status == "finished" and s.reason == "completed"
    assert (s.epoch, s.epochs) == (3, 3)
    assert s.best_val_loss == 1 / 3 and s.best_epoch == 3
    assert s.best_val_acc == 0.5 + 3 / 50
    assert s.test_acc == 0.9
    assert s.started == 1000.0 and s.finished is not None
    assert s.params == 300_000 and s.attempts == 1


def test_state_of_a_run_in_progress_has_no_status() -> None:
    s = latest_state(_events(training_events(epochs=2, total=10)))
    assert s.status is None and s.finished is None
    assert (s.epoch, s.epochs) == (2, 10)


def test_a_resume_clears_the_earlier_terminal_event_and_error() -> None:
    pairs = [
        started(epochs=5), epoch_end(1),
        ("failed", {"error": "CUDA out of memory", "error_type": "OutOfMemoryError", "hint": None}),
        ("resumed", {"checkpoint": "checkpoint_epoch_1.pt", "epoch": 1, "step": 0, "config": {"epochs": 8}}),
    ]  # fmt: skip
    events = _events(pairs)
    before = latest_state(events[:3])
    assert before.status == "failed" and before.error == "CUDA out of memory"
    after = latest_state(events)
    assert after.status is None and after.error is None and after.finished is None
    assert after.epochs == 8 and after.attempts == 2


def test_state_records_error_logs_and_interrupts() -> None:
    pairs = [
        started(), epoch_end(1), ("log", {"level": "error", "message": "disk nearly full"}),
        ("interrupted", {"epoch": 1, "step": 5, "checkpoint": "checkpoint_epoch_1_step_5.pt", "reason": "user"}),
    ]  # fmt: skip
    s = latest_state(_events(pairs))
    assert s.status == "interrupted" and s.reason == "user" and s.error == "disk nearly full"


def test_state_builder_snapshot_is_independent() -> None:
    b = StateBuilder()
    b.feed(make_event(0, "run_started", epochs=3))
    first = b.state()
    b.feed(make_event(1, "finished", reason="completed", epochs_done=3))
    assert first.status is None and b.state().status == "finished"
