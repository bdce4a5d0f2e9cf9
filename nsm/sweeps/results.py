"""A sweep's results table: one row per point, ranked by a validation metric, the best marked.

Points are ranked by best validation loss (default) or best validation accuracy,
never by a test metric: picking the point with the best test score would select
on the test set, so its test number would no longer be an unbiased estimate.
Ties are broken by the other validation metric, then by queue order.

Only finished points compete for "best": a running point's validation numbers
are provisional, and a failed point has none worth trusting.

A sweep over several seeds (or any sweep where some config ran with more than
one SEED) also has a table per config (`group_rows`): each grid point's runs as
one row, every metric as mean ± 95% CI over its finished runs, ranked by the
mean, and the rows whose difference from the best is inside the noise marked
(nsm.runs.aggregate says how: Student t intervals, a Welch t-test at 0.05).

A finished point also has its best model's accuracy on each out-of-distribution split
(nsm.data.ood) it was evaluated on: `ood_acc`, read like the test numbers and, like them,
never ranked by. A per-config row estimates `<split>_acc` over its seeds beside the other
metrics; `ood_splits` names the splits some point has (none for a sweep made before them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

from nsm.runs import RunStoreError
from nsm.runs.aggregate import Estimate, Group, group_by_config, rank_groups, several_seeds, summarize
from nsm.runs.cache import CACHE
from nsm.runs.compare import ood_numbers
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
    if name in _TEST_METRICS or name.startswith("ood_"):  # an OOD split is a test set too
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
    seed: int | None = None
    # The best model's accuracy on each OOD split, by split name (read, never ranked by).
    ood_acc: dict[str, float] = field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        """A metric by name: a field (best_val_loss, test_acc, time_s, ...) or an OOD
        split's accuracy by its `<split>_acc` (ood_metric)."""
        if hasattr(self, name):
            value = getattr(self, name)
        elif name.endswith(_OOD_SUFFIX):
            value = self.ood_acc.get(name[: -len(_OOD_SUFFIX)])
        else:
            raise AttributeError(name)
        return value if isinstance(value, (int, float)) and math.isfinite(value) else None


_OOD_SUFFIX = "_acc"


def ood_metric(split: str) -> str:
    """The metric (and csv/json column) of an OOD split's accuracy: ood_large -> ood_large_acc."""
    return f"{split}{_OOD_SUFFIX}"


def ood_splits(rows: Iterable[Any]) -> list[str]:
    """Every OOD split some point of `rows` (ResultRows, or GroupRows: their runs) has an
    accuracy for, in queue order: stable whichever metric ranks the rows. Empty when no
    point has one (a sweep made before the OOD splits): the tables are then as before."""
    points: list[ResultRow] = []
    for row in rows:
        points.extend(getattr(row, "members", None) or (row,))
    names: list[str] = []
    for point in sorted(points, key=lambda r: r.number):
        names += [name for name in point.ood_acc if name not in names]
    return names


def _row(view: PointView) -> ResultRow:
    s = view.run_state
    time_s = None
    test_acc, test_loss = s.test_acc, s.test_loss
    results: dict[str, Any] = {}
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
    # As for test: the finished event of the latest attempt first, then final_results.json.
    ood_acc, _ood_loss = ood_numbers(s, results, {})
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
        seed=view.point.config.get("seed") if isinstance(view.point.config.get("seed"), int) else None,
        ood_acc=ood_acc,
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


# ------------------------------------------------------------ per config

# What a config's row estimates over its finished runs: the ranking's metrics first.
GROUP_METRICS = ("best_val_loss", "best_val_acc", "test_acc", "test_loss", "time_s")


def group_metrics(splits: Sequence[str] = ()) -> tuple[str, ...]:
    """GROUP_METRICS with each OOD split's `<split>_acc` after the test metrics."""
    at = GROUP_METRICS.index("test_loss") + 1
    return (*GROUP_METRICS[:at], *(ood_metric(s) for s in splits), *GROUP_METRICS[at:])


@dataclass(frozen=True)
class GroupRow:
    """One grid point over its seeds: its runs (queue order) and their estimates."""

    number: int  # the grid point, 1-based (its runs are NAME-<number>-s<seed>)
    values: dict[str, Any]  # the sweep's knobs, without SEED
    members: tuple[ResultRow, ...]
    estimates: dict[str, Estimate | None]  # over the finished runs
    best: bool = False
    within_noise_of_best: bool | None = None  # None: the best itself, or n < 2 on a side

    @property
    def n(self) -> int:
        return len(self.members)

    @property
    def done(self) -> int:
        return sum(1 for m in self.members if m.state == DONE)

    @property
    def seeds(self) -> list[int | None]:
        return [m.seed for m in self.members]

    @property
    def state(self) -> str:
        """The members' state when they agree, else how many are done: '2/3 done'."""
        states = {m.state for m in self.members}
        return states.pop() if len(states) == 1 else f"{self.done}/{self.n} done"

    @property
    def mark(self) -> str:
        return "★" if self.best else ("≈" if self.within_noise_of_best else "")

    def estimate(self, name: str) -> Estimate | None:
        return self.estimates.get(name)

    def metric(self, name: str) -> float | None:
        est = self.estimates.get(name)
        return est.mean if est is not None else None

    def representative(self, metric: str = DEFAULT_RANKING) -> ResultRow:
        """The run to open for this row: its best finished run by `metric`, else its first."""
        spec = METRICS[ranking_metric(metric)]
        finished = [m for m in self.members if m.state == DONE and m.metric(spec.name) is not None]
        if not finished:
            return self.members[0]
        pick = max if spec.higher_is_better else min
        return pick(finished, key=lambda m: m.metric(spec.name))  # type: ignore[type-var, return-value]


def is_grouped(snap: SweepSnapshot) -> bool:
    """Whether the sweep's results read per config: several seeds per point, or
    (a grid over SEED, say) some config that ran with more than one SEED."""
    if snap.data.seeds > 1:
        return True
    return several_seeds(group_by_config(snap.points, lambda v: v.point.config))


def group_rows(snap: SweepSnapshot, metric: str = DEFAULT_RANKING) -> list[GroupRow]:
    """One row per config (its runs differ only in SEED), ranked by the mean of `metric`
    over the finished runs (ties: the other validation metric, then grid order); the best
    is marked, and each other row whose difference from it a Welch t-test at 0.05 cannot
    tell from noise has `within_noise_of_best`."""
    spec = METRICS[ranking_metric(metric)]
    rows = [_row(v) for v in snap.points]
    config_of = {r.number: v.point.config for r, v in zip(rows, snap.points)}
    groups: list[Group[ResultRow]] = group_by_config(rows, lambda r: config_of[r.number])
    metrics = group_metrics(ood_splits(rows))
    summarize(groups, {name: (lambda r, name=name: r.metric(name)) for name in metrics}, counts=lambda r: r.state == DONE)
    tie = METRICS[spec.tie_break]
    ranked = rank_groups(groups, spec.name, spec.higher_is_better, tie_break=(tie.name, tie.higher_is_better))
    knobs = [k for k in snap.data.knobs if k != "seed"]
    return [
        GroupRow(
            number=g.number,
            values={k: g.members[0].values.get(k) for k in knobs},
            members=tuple(g.members),
            estimates=dict(g.estimates),
            best=g.best,
            within_noise_of_best=g.within_noise_of_best,
        )
        for g in ranked
    ]


def best_group(rows: list[GroupRow]) -> GroupRow | None:
    return next((r for r in rows if r.best), None)
