"""Mean ± 95% CI over seeds and the within-the-noise rule (nsm.runs.aggregate), checked
against the formulas computed here by hand and against known t quantiles."""

from __future__ import annotations

import math

import pytest

from nsm.config import RunConfig
from nsm.runs.aggregate import (
    Estimate,
    estimate,
    experiment_key,
    group_by_config,
    rank_groups,
    several_seeds,
    summarize,
    t_975,
    welch_within_noise,
)


def test_known_t_quantiles() -> None:
    assert t_975(2) == pytest.approx(4.303, abs=5e-4)
    assert t_975(4) == pytest.approx(2.776, abs=5e-4)
    assert t_975(1) == pytest.approx(12.706, abs=5e-4)
    assert t_975(30) == pytest.approx(2.042, abs=5e-4)
    assert t_975(1e9) == pytest.approx(1.960, abs=5e-4)
    # Fractional degrees of freedom (Welch) fall between their neighbours.
    assert t_975(4) > t_975(4.5) > t_975(5)
    assert t_975(35) == pytest.approx(2.030, abs=2e-3)  # scipy: 2.0301
    with pytest.raises(ValueError):
        t_975(0.5)


def test_the_t_table_matches_scipy_where_it_is_installed() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 7, 12, 25, 33.3, 45, 70, 110, 500):
        assert t_975(df) == pytest.approx(float(stats.t.ppf(0.975, df)), abs=2e-3)


def test_mean_std_and_ci_of_three_values_follow_the_formula() -> None:
    values = [0.90, 0.92, 0.95]
    mean = sum(values) / 3
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (3 - 1))
    est = estimate(values)
    assert est is not None and est.n == 3
    assert est.mean == pytest.approx(mean)
    assert est.std == pytest.approx(s)
    assert est.ci95 / (s / math.sqrt(3)) == pytest.approx(4.303, abs=5e-4)
    assert est.text() == f"{mean:.3f} ± {4.3027 * s / math.sqrt(3):.3f}" == "0.923 ± 0.063"


def test_five_values_use_t_with_four_degrees_of_freedom() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    est = estimate(values)
    assert est is not None and est.mean == 3.0 and est.std == pytest.approx(math.sqrt(2.5))
    assert est.ci95 / (math.sqrt(2.5) / math.sqrt(5)) == pytest.approx(2.776, abs=5e-4)


def test_one_value_has_a_mean_but_no_interval_and_missing_values_are_skipped() -> None:
    est = estimate([0.8, None, float("nan"), True])  # a bool is no metric
    assert est == Estimate(n=1, mean=0.8, std=None, ci95=None)
    assert est.text() == "0.800"
    assert estimate([]) is None and estimate([None]) is None


def test_welch_marks_overlapping_seeds_as_noise_and_separated_ones_as_a_difference() -> None:
    best = estimate([0.40, 0.43, 0.39])
    close = estimate([0.42, 0.47, 0.40])
    far = estimate([0.90, 0.92, 0.91])
    assert welch_within_noise(best, close) is True
    assert welch_within_noise(best, far) is False
    # By hand: t and the Welch–Satterthwaite df for best vs close.
    assert best is not None and close is not None and best.std is not None and close.std is not None
    va, vb = best.std**2 / 3, close.std**2 / 3
    t = abs(best.mean - close.mean) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert t < t_975(df)
    # Nothing to test with one value on a side; no spread at all: equal means only.
    assert welch_within_noise(best, estimate([0.41])) is None
    assert welch_within_noise(estimate([0.5, 0.5]), estimate([0.5, 0.5])) is True
    assert welch_within_noise(estimate([0.5, 0.5]), estimate([0.6, 0.6])) is False


def test_grouping_ignores_seed_and_where_a_run_ran_but_not_other_knobs() -> None:
    a = RunConfig(seed=1, lr=1e-3).to_dict()
    b = {**RunConfig(seed=2, lr=1e-3, device="cpu", threads=3, backend="inprocess").to_dict()}
    c = RunConfig(seed=1, lr=3e-4).to_dict()
    d = RunConfig(seed=1, lr=1e-3, pooling=False).to_dict()
    old = {k: v for k, v in RunConfig(seed=3, lr=1e-3).to_dict().items() if k not in ("model", "pooling")}
    old["epochs"] = 100.0  # 100 and 100.0 are the same setting
    assert experiment_key(a) == experiment_key(b) == experiment_key(old)
    assert experiment_key(a) != experiment_key(c) and experiment_key(a) != experiment_key(d)
    runs = [("a", a), ("c", c), ("b", b), ("broken", None), ("d", d), ("old", old)]
    groups = group_by_config(runs, lambda r: r[1])
    assert [[name for name, _ in g.members] for g in groups] == [["a", "b", "old"], ["c"], ["broken"], ["d"]]
    assert groups[0].seeds == [1, 2, 3] and groups[0].number == 1
    assert several_seeds(groups)
    assert not several_seeds(group_by_config([("x", a), ("y", a)], lambda r: r[1]))  # the same seed twice


def test_ranking_marks_the_best_and_the_groups_within_its_noise() -> None:
    losses = {"best": [0.40, 0.43, 0.39], "close": [0.42, 0.47, 0.40], "far": [0.90, 0.92, 0.91], "single": [0.30]}
    items = [(name, lr, v) for lr, (name, vs) in enumerate(losses.items()) for v in vs]
    groups = group_by_config(items, lambda it: {"lr": 10.0 ** -(it[1] + 1), "seed": len(it[0]) + int(it[2] * 100)})
    summarize(groups, {"val_loss": lambda it: it[2]})
    ranked = rank_groups(groups, "val_loss", higher_is_better=False)
    # "single" has the lowest mean but one seed: it is the best, and nothing can be said
    # against it; ranked by "close" to the best (n >= 2), the marks follow Welch.
    assert [g.members[0][0] for g in ranked] == ["single", "best", "close", "far"]
    assert ranked[0].best and [g.within_noise_of_best for g in ranked] == [None, None, None, None]

    without_single = [g for g in groups if g.members[0][0] != "single"]
    ranked = rank_groups(without_single, "val_loss", higher_is_better=False)
    assert [(g.members[0][0], g.mark) for g in ranked] == [("best", "★"), ("close", "≈"), ("far", "")]
    assert [g.within_noise_of_best for g in ranked] == [None, True, False]
