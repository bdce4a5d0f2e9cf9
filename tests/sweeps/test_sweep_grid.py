"""Grid specs, fixed knobs and config lists: parsing, errors that name the knob, product order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsm.config import DOMAINS
from nsm.sweeps import GridError, grid_points, load_config_list, parse_axes, parse_axis, parse_fixed, point_configs
from nsm.sweeps.grid import MAX_POINTS
from nsm.sweeps.plan import PlanError, plan_sweep

from .helpers import TINY


def test_a_grid_row_accepts_the_knobs_name_flag_spelling_or_label() -> None:
    assert parse_axis("lr=1e-3,1e-4").values == (1e-3, 1e-4)
    axis = parse_axis(" CYCLE_WEIGHT = 0.01, 0.05 ")
    assert (axis.knob, axis.values) == ("cycle_weight", (0.01, 0.05))
    assert parse_axis("batch-size=32,64").values == (32, 64)
    assert parse_axis("device=cpu,CUDA").values == ("cpu", "cuda")
    assert parse_axis("amp=true,false").values == (True, False)
    assert parse_axis("hidden=16").values == (16,)  # one value fixes a hidden knob


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("lrr=1e-3", "unknown knob 'lrr'; did you mean lr?"),
        ("lr=0,1e-3", "LR must be a number from 1e-06 to 1 (got 0)"),
        ("epochs=2.5", "EPOCHS must be an integer from 1 to 10000"),
        ("device=tpu", "DEVICE must be one of auto, cpu, cuda"),
        ("lr=", "no values for LR"),
        ("lr=1e-3,,1e-4", "an empty value between commas; LR takes a number from 1e-06 to 1"),
        ("lr 1e-3", "expected KNOB=VALUE"),
        ("=1e-3", "a knob name is missing"),
        ("lr=1e-3,0.001", "LR lists 0.001 twice"),
        ("backend=modal", "BACKEND cannot be set in a sweep"),
    ],
)
def test_a_bad_grid_row_names_the_knob_and_what_it_allows(spec: str, expected: str) -> None:
    with pytest.raises(GridError, match=None) as info:
        parse_axis(spec)
    assert expected in str(info.value)


def test_a_knob_in_two_rows_is_refused() -> None:
    with pytest.raises(GridError, match="LR has two grid rows"):
        parse_axes(["lr=1e-3", "", "lr=1e-4"])


def test_the_product_varies_the_first_axis_slowest() -> None:
    axes = parse_axes(["lr=1e-3,1e-4", "cycle_weight=0.01,0.05", "seed=1,2"])
    points = grid_points(axes)
    assert len(points) == 8
    assert [(p["lr"], p["cycle_weight"], p["seed"]) for p in points[:4]] == [
        (1e-3, 0.01, 1), (1e-3, 0.01, 2), (1e-3, 0.05, 1), (1e-3, 0.05, 2),
    ]  # fmt: skip
    assert grid_points(axes) == points  # deterministic


def test_a_grid_too_large_is_refused_before_anything_is_made() -> None:
    axes = parse_axes(["seed=" + ",".join(str(i) for i in range(100)), "epochs=" + ",".join(str(i) for i in range(1, 11))])
    with pytest.raises(GridError, match=f"1000 points .*at most {MAX_POINTS}"):
        grid_points(axes)


def test_fixed_knobs_take_one_value_each() -> None:
    assert parse_fixed("epochs=2 batch_size=8;seed=1  HIDDEN=16") == {"epochs": 2, "batch_size": 8, "seed": 1, "hidden": 16}
    assert parse_fixed("  ") == {}
    with pytest.raises(GridError, match="EPOCHS takes one value here"):
        parse_fixed("epochs=2,3")
    with pytest.raises(GridError, match="expected KNOB=VALUE"):
        parse_fixed("epochs")
    with pytest.raises(GridError, match="PATIENCE must be an integer"):
        parse_fixed("patience=-1")


def test_rules_between_knobs_are_checked_on_each_point_not_on_the_base() -> None:
    base = {**TINY, "batch_size": 64}  # too big for 60 graphs, but every point sets its own
    configs = point_configs(base, grid_points(parse_axes(["batch_size=8,16"])))
    assert [c.batch_size for c in configs] == [8, 16]
    with pytest.raises(GridError, match=r"point 2 \(batch_size=64\): BATCH_SIZE must be at most the training split size \(42"):
        point_configs(base, grid_points(parse_axes(["batch_size=8,64"])))


def test_a_config_list_file(tmp_path: Path) -> None:
    path = tmp_path / "configs.json"
    path.write_text(json.dumps([{"lr": 0.001, "EPOCHS": 3}, {"lr": "3e-4", "cycle-weight": 0.1}]))
    assert load_config_list(path) == [{"lr": 0.001, "epochs": 3}, {"lr": 3e-4, "cycle_weight": 0.1}]


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "does not exist"),
        ("[{'lr': 1}]", "is not valid JSON"),
        ('{"lr": 0.001}', "must hold a non-empty JSON list of objects"),
        ("[]", "must hold a non-empty JSON list of objects"),
        ('[{"lr": 0.001}, 3]', "item 2: expected an object of knobs, found int"),
        ('[{"lr": 0.001}, {"lr": 5}]', "item 2: LR must be a number from 1e-06 to 1 (got 5)"),
        ('[{"learning_rate": 0.001}]', "item 1: unknown knob 'learning_rate'"),
    ],
)
def test_a_bad_config_list_says_which_item_and_knob(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "configs.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(GridError) as info:
        load_config_list(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_a_form_plan_names_the_field_at_fault() -> None:
    plan = plan_sweep(TINY, domains=["planning"], grid=["lr=1e-3,3e-3", "", "cycle_weight=0.01,0.1"], fixed="epochs=3")
    assert plan.describe() == "4 runs: LR 2 × CYCLE_WEIGHT 2"
    assert {c.epochs for c in plan.configs} == {3}

    def field(**kwargs) -> str:  # type: ignore[no-untyped-def]
        with pytest.raises(PlanError) as info:
            plan_sweep(TINY, **{"domains": ["planning"], "grid": ["lr=1e-3"], **kwargs})
        return info.value.field

    assert field(grid=["lr=1e-3", "lrr=2"]) == "grid-1"
    assert field(grid=[]) == "grid-0"
    assert field(fixed="lr=1e-3") == "fixed"
    assert field(fixed="epochs=zero") == "fixed"
    assert field(configs_file="x.json") == "configs"
    assert field(grid=["batch_size=8,64"]) == "points"


def test_all_domains_become_the_first_axis() -> None:
    plan = plan_sweep(TINY, domains=list(DOMAINS), grid=["lr=1e-3,3e-3"])
    assert [(c.domain, c.lr) for c in plan.configs][:3] == [("causal", 1e-3), ("causal", 3e-3), ("planning", 1e-3)]
    assert plan.describe() == "6 runs: DOMAIN 3 × LR 2"
