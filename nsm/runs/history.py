"""What a run's events add up to: the per-epoch curves and a short summary.

Both are folds over the event stream, so a viewer can feed events one at a
time as they arrive (`HistoryBuilder`, `StateBuilder`) or all at once
(`history_from_events`, `latest_state`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterable

from nsm.runs import events as ev

TRAIN_KEYS = (
    "loss", "task_loss", "cycle_loss", "acc", "grad_norm", "lr",
    "epoch_time_s", "graphs_per_s", "gpu_peak_mem_mb",
)  # fmt: skip
VAL_KEYS = ("loss", "task_loss", "cycle_loss", "acc")


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


def _epoch_of(event: dict[str, Any]) -> int | None:
    e = event.get("epoch")
    return e if isinstance(e, int) and not isinstance(e, bool) else None


def _finite(x: Any) -> float | None:
    x = _number(x)
    return x if x is not None and math.isfinite(x) else None


class _ValPoints:
    """Validation points by epoch, and the best one."""

    def __init__(self) -> None:
        self.points: dict[int, dict[str, Any]] = {}
        # (epoch, loss) as reported by the engine's early stopping; it may use
        # rules (min delta) that a plain minimum over the points would not.
        self._reported: tuple[int, float] | None = None
        # What each eval reported, by its epoch: a rewind goes back to the report made then.
        self._reported_at: dict[int, tuple[int, float]] = {}
        # val_acc in the metrics of each best_model.pt save, by the epoch it holds.
        self._saved_acc: dict[int, float | None] = {}

    def feed_eval(self, event: dict[str, Any], epoch: int) -> None:
        self.points[epoch] = {k: event.get(k) for k in VAL_KEYS}
        best_epoch, best_loss = event.get("best_epoch"), _number(event.get("best_val_loss"))
        if isinstance(best_epoch, int) and not isinstance(best_epoch, bool) and best_loss is not None:
            self._reported = self._reported_at[epoch] = (best_epoch, best_loss)

    def truncate(self, epoch: int) -> None:
        self.points = {e: p for e, p in self.points.items() if e <= epoch}
        self._reported_at = {e: r for e, r in self._reported_at.items() if e <= epoch}
        self._saved_acc = {e: a for e, a in self._saved_acc.items() if e <= epoch}
        # The best as the engine saw it at the checkpoint (its early-stop state).
        reported = self._reported_at[max(self._reported_at)] if self._reported_at else None
        self._reported = reported if reported is not None and reported[0] <= epoch else None

    def best(self) -> tuple[int | None, float | None]:
        if self._reported is not None:
            return self._reported
        best: tuple[int | None, float | None] = (None, None)
        for epoch in sorted(self.points):
            loss = _finite(self.points[epoch].get("loss"))
            if loss is not None and (best[1] is None or loss < best[1]):
                best = (epoch, loss)
        return best

    def feed_best_checkpoint(self, event: dict[str, Any], epoch: int) -> None:
        metrics = event.get("metrics") if isinstance(event.get("metrics"), dict) else {}
        self._saved_acc[epoch] = _finite(metrics.get("val_acc"))

    def best_acc(self) -> float | None:
        """The val accuracy of the best epoch's evaluation: what best_model.pt was saved
        with (its checkpoint event), else that eval's own accuracy. Never the highest
        accuracy of another epoch: beside "best val loss L @ epoch E" it is E's."""
        epoch, _loss = self.best()
        if epoch is None:
            return None
        saved = self._saved_acc.get(epoch)
        if saved is not None:
            return saved
        point = self.points.get(epoch)
        return _finite(point.get("acc")) if point else None


def _is_val_eval(event: dict[str, Any]) -> bool:
    return event.get("type") == ev.EVAL and event.get("split", "val") == "val"


class HistoryBuilder:
    """Folds events into the `training_history.json` structure.

    A `resumed` event drops train and val points after its `epoch`: resuming
    from an older checkpoint rewrites the run's future.
    """

    def __init__(self) -> None:
        self._train: dict[int, dict[str, Any]] = {}
        self._val = _ValPoints()

    def feed(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        epoch = _epoch_of(event)
        if epoch is None:
            return
        if kind == ev.EPOCH_END:
            self._train[epoch] = {k: event.get(k) for k in TRAIN_KEYS}
        elif _is_val_eval(event):
            self._val.feed_eval(event, epoch)
        elif kind == ev.RESUMED:
            self._train = {e: row for e, row in self._train.items() if e <= epoch}
            self._val.truncate(epoch)

    def feed_all(self, events: Iterable[dict[str, Any]]) -> "HistoryBuilder":
        for event in events:
            self.feed(event)
        return self

    def to_dict(self) -> dict[str, Any]:
        epochs = sorted(self._train)
        val = self._val.points
        val_epochs = sorted(val)
        best_epoch, best_loss = self._val.best()
        return {
            "epochs": epochs,
            "train": {k: [self._train[e][k] for e in epochs] for k in TRAIN_KEYS},
            "val": {"epochs": val_epochs, **{k: [val[e][k] for e in val_epochs] for k in VAL_KEYS}},
            "best_epoch": best_epoch,
            "best_val_loss": best_loss,
        }


def history_from_events(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return HistoryBuilder().feed_all(events).to_dict()


def empty_history() -> dict[str, Any]:
    return HistoryBuilder().to_dict()


@dataclass
class RunState:
    """What a run's events say about it, for listings and headers."""

    # finished / interrupted / failed, from a terminal event after the last
    # run_started/resumed; None while the latest attempt has not ended.
    status: str | None = None
    reason: str | None = None
    run: str | None = None
    domain: str | None = None
    epoch: int = 0  # epochs completed
    epochs: int | None = None  # epochs planned
    params: int | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    # val accuracy at best_epoch (the one best_model.pt holds), not the highest seen
    best_val_acc: float | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    # {split: {"acc", "loss"}} of the out-of-distribution splits, from the finished
    # event (empty for a run logged before them)
    ood: dict[str, dict[str, float | None]] = dataclasses.field(default_factory=dict)
    error: str | None = None  # last error of the latest attempt
    started: float | None = None  # time of the first run_started
    finished: float | None = None  # time of the terminal event
    last_event_t: float | None = None
    last_seq: int = -1
    attempts: int = 0  # run_started + resumed events
    threads: int | None = None  # torch threads of the latest attempt (its environment)


class StateBuilder:
    """Folds events into a RunState; feed events in seq order."""

    def __init__(self) -> None:
        self._state = RunState()
        self._val = _ValPoints()

    def feed(self, event: dict[str, Any]) -> None:
        s = self._state
        kind = event.get("type")
        seq = event.get("seq")
        if isinstance(seq, int):
            s.last_seq = max(s.last_seq, seq)
        t = _number(event.get("t"))
        if t is not None:
            s.last_event_t = t
        epoch = _epoch_of(event)

        if kind in ev.START_TYPES:
            s.attempts += 1
            s.status = s.reason = s.error = None
            s.finished = None
            # Test metrics belong to the attempt that finished; a new attempt (a
            # resume, maybe from an earlier checkpoint) has not been tested yet.
            s.test_acc = s.test_loss = None
            s.ood = {}
            config = event.get("config") if isinstance(event.get("config"), dict) else {}
            planned = event.get("epochs", config.get("epochs"))
            if isinstance(planned, int):
                s.epochs = planned
            env = event.get("environment") if isinstance(event.get("environment"), dict) else {}
            threads = env.get("threads")
            s.threads = threads if isinstance(threads, int) and not isinstance(threads, bool) else None
            if kind == ev.RUN_STARTED:
                if s.started is None:
                    s.started = t
                s.run = event.get("run", s.run)
                s.domain = event.get("domain", config.get("domain", s.domain))
                if isinstance(event.get("params"), int):
                    s.params = event["params"]
            elif epoch is not None:
                s.epoch = epoch
                self._val.truncate(epoch)
        elif kind == ev.EPOCH_END and epoch is not None:
            s.epoch = epoch
        elif _is_val_eval(event) and epoch is not None:
            self._val.feed_eval(event, epoch)
        elif kind == ev.CHECKPOINT and event.get("kind") == "best" and epoch is not None:
            self._val.feed_best_checkpoint(event, epoch)
        elif kind == ev.LOG and event.get("level") == "error":
            s.error = str(event.get("message", ""))
        elif kind in ev.TERMINAL_TYPES:
            s.status = kind
            s.finished = t
            s.reason = event.get("reason") if isinstance(event.get("reason"), str) else None
            if kind == ev.FAILED:
                s.error = str(event.get("error") or event.get("error_type") or "failed")
            elif kind == ev.FINISHED:
                done = event.get("epochs_done")
                if isinstance(done, int):
                    s.epoch = done
                test = event.get("test") if isinstance(event.get("test"), dict) else {}
                s.test_acc = _number(test.get("acc"))
                s.test_loss = _number(test.get("loss"))
                ood = event.get("ood") if isinstance(event.get("ood"), dict) else {}
                s.ood = {
                    str(name): {"acc": _number(v.get("acc")), "loss": _number(v.get("loss"))}
                    for name, v in ood.items()
                    if isinstance(v, dict)
                }

    def feed_all(self, events: Iterable[dict[str, Any]]) -> "StateBuilder":
        for event in events:
            self.feed(event)
        return self

    def state(self) -> RunState:
        best_epoch, best_loss = self._val.best()
        return dataclasses.replace(
            self._state, best_epoch=best_epoch, best_val_loss=best_loss, best_val_acc=self._val.best_acc()
        )


def latest_state(events: Iterable[dict[str, Any]]) -> RunState:
    return StateBuilder().feed_all(events).state()
