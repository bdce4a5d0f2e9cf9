"""A sweep's results table: one row per point, ranked by a validation metric, the best marked.

Points are ranked by best validation loss (default) or best validation accuracy,
never by a test metric: picking the point with the best test score would select
on the test set, so its test number would no longer be an unbiased estimate.
Ties are broken by the other validation metric, then by queue order.

Only finished points compete for "best": a running point's validation numbers
are provisional, and a failed point has none worth trusting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from nsm.runs import RunStoreError
from nsm.runs.cache import CACHE
from nsm.sweeps.status import PointView, SweepSnapshot
from nsm.sweeps.sweep import DONE


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    higher_is_better: bool
    tie_break: str  # the other validation metric, compared when this one is equal


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("best_val_loss", "best val loss", False, "best_val_acc"),
        Metric("best_val_acc", "best val acc", True, "best_val_loss"),
    )
}
DEFAULT_RANKING = "best_val_loss"
_TEST_METRICS = ("test_acc", "test_loss")


def check_metric(raw: str) -> str:
    """The metric's name, or ValueError naming the ones there are."""
    name = raw.strip().lower().replace("-", "_").replace(" ", "_")
    if name in _TEST_METRICS:
        raise ValueError(
            f"results are not ranked by {name}: choosing the best point by a test metric selects on the "
            f"test set; choose one of {', '.join(METRICS)}"
        )
    if name not in METRICS:
        raise ValueError(f"unknown metric {raw!r}; choose one of {', '.join(METRICS)}")
    return name


def ranking_metric(name: object) -> str:
    """The metric a sweep is ranked by: its own if it is a validation metric; a sweep
    written before test metrics were refused (metric "test_acc") ranks by the default."""
    return name if isinstance(name, str) and name in METRICS else DEFAULT_RANKING


@dataclass(frozen=True)
class ResultRow:
    number: int  # 1-based point number
    run: str
    values: dict[str, Any]
    state: str
    epoch: int
    epochs: int | None
    test_acc: float | None
    test_loss: float | None
    best_val_acc: float | None
    best_val_loss: float | None
    time_s: float | None
    error: str | None
    best: bool = False

    def metric(self, name: str) -> float | None:
        value = getattr(self, name)
        return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _row(view: PointView) -> ResultRow:
    s = view.run_state
    time_s = None
    test_acc, test_loss = s.test_acc, s.test_loss
    if view.state == DONE and not view.missing:
        try:
            results = CACHE.json_object(view.run.results_path, "results") or {}
        except RunStoreError:
            results = {}
        timings = results.get("timings") if isinstance(results.get("timings"), dict) else {}
        total = timings.get("total_s")
        time_s = float(total) if isinstance(total, (int, float)) else None
        test = results.get("test") if isinstance(results.get("test"), dict) else {}
        if test_acc is None and isinstance(test.get("acc"), (int, float)):
            test_acc = float(test["acc"])
        if test_loss is None and isinstance(test.get("loss"), (int, float)):
            test_loss = float(test["loss"])
    return ResultRow(
        number=view.number,
        run=view.point.run,
        values=dict(view.point.values),
        state=view.state,
        epoch=s.epoch,
        epochs=s.epochs if s.epochs is not None else view.point.config.get("epochs"),
        test_acc=test_acc,
        test_loss=test_loss,
        best_val_acc=s.best_val_acc,
        best_val_loss=s.best_val_loss,
        time_s=time_s,
        error=view.error if view.state != DONE else None,
    )


def result_rows(snap: SweepSnapshot, metric: str = DEFAULT_RANKING) -> list[ResultRow]:
    """Rows with a value of `metric` first, best first (ties: the other validation
    metric, then queue order); then the rest in queue order. The best finished point
    has `best=True`."""
    spec = METRICS[ranking_metric(metric)]
    rows = [_row(v) for v in snap.points]
    scored = [r for r in rows if r.metric(spec.name) is not None]
    unscored = [r for r in rows if r.metric(spec.name) is None]
    scored.sort(key=lambda r: _rank_key(r, spec))
    ordered = scored + unscored
    for i, row in enumerate(ordered):
        if row.state == DONE and row.metric(spec.name) is not None:
            ordered[i] = replace(row, best=True)
            break
    return ordered


def _rank_key(row: ResultRow, spec: Metric) -> tuple[float, float, int]:
    def better_first(name: str) -> float:
        value = row.metric(name)
        if value is None:
            return math.inf  # no tie-break value: after the ones that have it
        return -value if METRICS[name].higher_is_better else value

    return (better_first(spec.name), better_first(spec.tie_break), row.number)


def best_row(rows: list[ResultRow]) -> ResultRow | None:
    return next((r for r in rows if r.best), None)
