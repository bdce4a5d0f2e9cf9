"""Runs of one config over several seeds: mean ± 95% confidence interval, and which
differences from the best config are inside the noise.

Grouping. Runs whose configs are equal except SEED (and the knobs that say where and
how a run was made, not what it learns: BACKEND, GPU, DEVICE, NUM_WORKERS, THREADS,
TENSORBOARD, WANDB, KEEP_LAST, SAVE_EVERY) are repeats of one config: one group. A knob
missing from an older config.json counts as its default; 1 and 1.0 are the same value.

Estimates. For each metric of a group, over the runs that have it: the mean, the sample
standard deviation s (n - 1 in the denominator), n, and the half-width of the 95%
confidence interval of the mean with Student's t: t(0.975, n - 1) · s / √n. One run
(n = 1) has a mean and nothing else: no spread, no interval. Shown as `0.912 ± 0.013`.

Inside the noise. A group is within the noise of the best group (marked ≈) when a
two-sided Welch t-test cannot tell their means apart at the 5% level: with
se² = s₁²/n₁ + s₂²/n₂, t = (m₁ − m₂)/se and the Welch–Satterthwaite degrees of freedom
df = se⁴ / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1)), the difference is significant when
|t| > t(0.975, df). Welch does not assume equal variances (a config that diverges on one
seed has a much larger spread). It needs a spread on both sides: with n = 1 on either,
nothing is claimed (None). Two groups with no spread at all are within the noise only
when their means are equal.

The t quantiles come from a table (scipy is no dependency): exact to 4 decimals at the
integer degrees of freedom listed, interpolated linearly in 1/df between them (Welch's
df is fractional), 1.96 in the limit.

Pure Python and torch-free: the run store, the sweep results, the CLI and the TUI use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, Mapping, Sequence, TypeVar

from nsm.config import FIELDS

T = TypeVar("T")

NOISE_MARK = "≈"
CI_LEGEND = "± 95% CI of the mean over the seeds (Student t)"
NOISE_LEGEND = f"{NOISE_MARK} within the noise of the best: Welch t-test, p ≥ 0.05"
SHORT_LEGEND = f"± 95% CI over the seeds · {NOISE_MARK} within the noise of ★ (Welch t-test, p ≥ 0.05)"

# Knobs that tell repeats of a config apart without changing what is learnt.
NOT_THE_EXPERIMENT = frozenset(
    {"seed", "schema_version", "backend", "gpu", "device", "num_workers", "threads", "tensorboard", "wandb", "keep_last", "save_every"}
)

# t(0.975, df): the two-sided 95% quantile of Student's t.
T_975: dict[int, float] = {
    1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 6: 2.4469, 7: 2.3646, 8: 2.3060,
    9: 2.2622, 10: 2.2281, 11: 2.2010, 12: 2.1788, 13: 2.1604, 14: 2.1448, 15: 2.1314,
    16: 2.1199, 17: 2.1098, 18: 2.1009, 19: 2.0930, 20: 2.0860, 21: 2.0796, 22: 2.0739,
    23: 2.0687, 24: 2.0639, 25: 2.0595, 26: 2.0555, 27: 2.0518, 28: 2.0484, 29: 2.0452,
    30: 2.0423, 40: 2.0211, 50: 2.0086, 60: 2.0003, 80: 1.9901, 100: 1.9840, 120: 1.9799,
}  # fmt: skip
Z_975 = 1.95996


def t_975(df: float) -> float:
    """t(0.975, df) for df >= 1 (fractional df interpolated in 1/df)."""
    if not df >= 1:
        raise ValueError(f"degrees of freedom must be at least 1 (got {df!r})")
    if df == int(df) and int(df) in T_975:
        return T_975[int(df)]
    keys = sorted(T_975)
    if df > keys[-1]:
        lo_df, lo_t, hi_inv, hi_t = keys[-1], T_975[keys[-1]], 0.0, Z_975
    else:
        hi_df = next(k for k in keys if k > df)
        lo_df = max(k for k in keys if k < df)
        lo_t, hi_inv, hi_t = T_975[lo_df], 1.0 / hi_df, T_975[hi_df]
    lo_inv = 1.0 / lo_df
    w = (lo_inv - 1.0 / df) / (lo_inv - hi_inv)
    return lo_t + w * (hi_t - lo_t)


@dataclass(frozen=True)
class Estimate:
    """A metric over the runs of a group: mean, sample std, n, 95% CI half-width."""

    n: int
    mean: float
    std: float | None  # None with one value
    ci95: float | None  # None with one value

    def text(self, digits: int = 3) -> str:
        """`0.912 ± 0.013`, or `0.912` for one run."""
        if self.ci95 is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.ci95:.{digits}f}"


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def estimate(values: Iterable[Any]) -> Estimate | None:
    """The estimate of the finite numbers among `values` (None if there are none)."""
    xs = [v for v in (_number(x) for x in values) if v is not None]
    if not xs:
        return None
    n = len(xs)
    mean = math.fsum(xs) / n
    if n < 2:
        return Estimate(n, mean, None, None)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    return Estimate(n, mean, std, t_975(n - 1) * std / math.sqrt(n))


def welch_within_noise(a: Estimate | None, b: Estimate | None) -> bool | None:
    """True when a two-sided Welch t-test at 0.05 cannot tell the means apart; None
    when either side has no spread to test with (n < 2, or no value)."""
    if a is None or b is None or a.std is None or b.std is None:
        return None
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    se2 = va + vb
    if se2 == 0:
        return a.mean == b.mean
    t = abs(a.mean - b.mean) / math.sqrt(se2)
    df = se2**2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    return t <= t_975(max(df, 1.0))


# ------------------------------------------------------------------ grouping


def _same_value(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, dict)):
        return repr(value)
    return value


def experiment_key(config: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    """What a run's config says about the experiment: every knob but SEED and the ones
    that only say where and how it ran; None for a config that could not be read."""
    if not isinstance(config, Mapping):
        return None
    values = {name: spec.default for name, spec in FIELDS.items()}
    values.update(config)
    return tuple(sorted((str(k), _same_value(v)) for k, v in values.items() if k not in NOT_THE_EXPERIMENT))


@dataclass
class Group(Generic[T]):
    """Repeats of one config: its members in the order given, and their estimates."""

    number: int  # 1-based, in the order of each group's first member
    members: list[T]
    config: Mapping[str, Any] | None  # the first member's
    seeds: list[Any]  # each member's SEED (None where its config has none)
    estimates: dict[str, Estimate | None] = field(default_factory=dict)
    best: bool = False
    within_noise_of_best: bool | None = None  # None for the best itself and where untestable

    @property
    def n(self) -> int:
        return len(self.members)

    def mean(self, metric: str) -> float | None:
        est = self.estimates.get(metric)
        return est.mean if est is not None else None

    @property
    def mark(self) -> str:
        """★ for the best group, ≈ for one within its noise, else nothing."""
        return "★" if self.best else (NOISE_MARK if self.within_noise_of_best else "")


def group_by_config(items: Sequence[T], config_of: Callable[[T], Mapping[str, Any] | None]) -> list[Group[T]]:
    """Items grouped by `experiment_key` of their config, groups and members in the
    order given; an item whose config cannot be read is a group of its own."""
    groups: list[Group[T]] = []
    by_key: dict[tuple[Any, ...], Group[T]] = {}
    for item in items:
        config = config_of(item)
        key = experiment_key(config)
        seed = config.get("seed") if isinstance(config, Mapping) else None
        group = by_key.get(key) if key is not None else None
        if group is None:
            group = Group(len(groups) + 1, [], config, [])
            groups.append(group)
            if key is not None:
                by_key[key] = group
        group.members.append(item)
        group.seeds.append(seed)
    return groups


def several_seeds(groups: Iterable[Group[Any]]) -> bool:
    """Whether some config was run with more than one seed."""
    return any(len({repr(s) for s in g.seeds}) > 1 for g in groups)


def summarize(
    groups: Sequence[Group[T]],
    metrics: Mapping[str, Callable[[T], Any]],
    counts: Callable[[T], bool] = lambda _item: True,
) -> list[Group[T]]:
    """Fill each group's estimate of each metric, over the members `counts` accepts."""
    for group in groups:
        members = [m for m in group.members if counts(m)]
        group.estimates = {name: estimate(get(m) for m in members) for name, get in metrics.items()}
    return list(groups)


def rank_groups(
    groups: Sequence[Group[T]],
    metric: str,
    higher_is_better: bool,
    tie_break: tuple[str, bool] | None = None,
    within: Callable[[Group[T]], Any] | None = None,
) -> list[Group[T]]:
    """Groups with a mean of `metric` first, best first (ties: `tie_break`'s mean, then
    group number), then the rest in order. The best of each partition (`within`, e.g. the
    domain; default one partition) is marked, and every other group of it with a
    testable estimate gets `within_noise_of_best` (see the module's rule)."""

    def goodness(group: Group[T], name: str, higher: bool) -> float:
        mean = group.mean(name)
        return math.inf if mean is None else (-mean if higher else mean)

    def key(group: Group[T]) -> tuple[float, float, int]:
        second = goodness(group, *tie_break) if tie_break else 0.0
        return (goodness(group, metric, higher_is_better), second, group.number)

    partitions: dict[Any, list[Group[T]]] = {}
    for group in groups:
        group.best, group.within_noise_of_best = False, None
        partitions.setdefault(within(group) if within else None, []).append(group)
    ordered: list[Group[T]] = []
    for members in partitions.values():
        scored = sorted((g for g in members if g.mean(metric) is not None), key=key)
        unscored = [g for g in members if g.mean(metric) is None]
        if scored:
            best = scored[0]
            best.best = True
            for other in scored[1:]:
                other.within_noise_of_best = welch_within_noise(best.estimates.get(metric), other.estimates.get(metric))
        ordered += scored + unscored
    return ordered


def estimate_fields(prefix: str, est: Estimate | None) -> dict[str, Any]:
    """`<prefix>_mean`, `_std`, `_ci95`, `_n` of one estimate, for csv/json rows."""
    if est is None:
        return {f"{prefix}_mean": None, f"{prefix}_std": None, f"{prefix}_ci95": None, f"{prefix}_n": 0}
    return {f"{prefix}_mean": est.mean, f"{prefix}_std": est.std, f"{prefix}_ci95": est.ci95, f"{prefix}_n": est.n}


def estimate_columns(prefix: str) -> list[str]:
    return [f"{prefix}_mean", f"{prefix}_std", f"{prefix}_ci95", f"{prefix}_n"]


# ---------------------------------------------------------- comparisons

GROUPINGS = ("auto", "config", "run")  # `compare --group`: when runs of one config become one row


def groups_apply(groups: Sequence[Group[Any]], grouping: str = "auto") -> bool:
    """Whether a comparison reads per config: `config` always, `run` never, `auto` when
    some config was run with several seeds."""
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)} (got {grouping!r})")
    return grouping == "config" or (grouping == "auto" and several_seeds(groups))


@dataclass
class GroupedTable:
    """A comparison's table (nsm.runs.compare.metrics_table) with one row per config."""

    columns: list[str]  # "", "runs", "n", then the table's own columns from "domain" on
    rows: list[list[str]]
    groups: list[Group[int]]  # members: row indices into the comparison's runs, ranked
    criterion: str

    def keys(self) -> list[str]:
        """A stable key per row: the group's first run's index, as text."""
        return [str(g.members[0]) for g in self.groups]


_TEXT_COLUMNS = ("run", "domain", "status", "model")


def _common(values: Sequence[Any]) -> str:
    shown = [("-" if v is None else str(v)) for v in values]
    distinct = list(dict.fromkeys(shown))
    if len(distinct) == 1:
        return distinct[0]
    return " ".join(f"{v}×{shown.count(v)}" for v in distinct)


def _cell(est: Estimate | None, integers: bool, digits: int) -> str:
    if est is None:
        return "-"
    if integers and (est.std is None or est.std == 0) and float(est.mean).is_integer():
        return str(int(est.mean))
    return est.text(1 if integers else digits)


def group_comparison(comparison: Any, criterion: str | None = None, digits: int = 3) -> GroupedTable:
    """Group a Comparison's runs by config (differences in SEED only), each metric column
    of its table as mean ± 95% CI over the runs that have it; ranked per domain by the
    criterion (best val loss, or test accuracy) with ★ and ≈ (the module's rule)."""
    from nsm.runs.compare import TEST_ACC, VAL_LOSS, metric_of, metrics_table

    crit = criterion or comparison.criterion or VAL_LOSS
    columns, table = metrics_table(comparison)
    runs = list(comparison.runs)
    rows = table[: len(runs)]
    metric_idx = [
        i for i, c in enumerate(columns)
        if c not in _TEXT_COLUMNS and any(_number(r[i]) is not None for r in rows)
    ]  # fmt: skip
    other_idx = [i for i, c in enumerate(columns) if c != "run" and i not in metric_idx]
    groups: list[Group[int]] = group_by_config(list(range(len(runs))), lambda i: runs[i].config)
    getters: dict[str, Callable[[int], Any]] = {columns[i]: (lambda r, i=i: rows[r][i]) for i in metric_idx}
    getters["__rank__"] = lambda r: metric_of(runs[r], crit)
    summarize(groups, getters)
    ranked = rank_groups(groups, "__rank__", higher_is_better=crit == TEST_ACC, within=lambda g: runs[g.members[0]].domain)
    integers = {i: all(isinstance(r[i], int) or r[i] is None for r in rows) for i in metric_idx}
    out_columns = ["", "runs", "n", *(columns[i] for i in sorted(other_idx + metric_idx))]
    out_rows: list[list[str]] = []
    for g in ranked:
        names = [runs[i].name for i in g.members]
        label = names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"
        cells = [g.mark, label, str(g.n)]
        for i in sorted(other_idx + metric_idx):
            if i in metric_idx:
                cells.append(_cell(g.estimates.get(columns[i]), integers[i], digits))
            else:
                cells.append(_common([rows[m][i] for m in g.members]))
        out_rows.append(cells)
    for domain in comparison.missing:
        out_rows.append(["", "(no run)", "0", *(domain if columns[i] == "domain" else ("missing" if columns[i] == "status" else "-") for i in sorted(other_idx + metric_idx))])
    return GroupedTable(out_columns, out_rows, ranked, crit)


__all__ = [
    "CI_LEGEND",
    "Estimate",
    "GROUPINGS",
    "Group",
    "GroupedTable",
    "NOISE_LEGEND",
    "NOISE_MARK",
    "NOT_THE_EXPERIMENT",
    "SHORT_LEGEND",
    "estimate",
    "estimate_columns",
    "estimate_fields",
    "experiment_key",
    "group_by_config",
    "group_comparison",
    "groups_apply",
    "rank_groups",
    "several_seeds",
    "summarize",
    "t_975",
    "welch_within_noise",
]
