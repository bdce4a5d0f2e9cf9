"""A sweep as a form describes it: domains, grid rows, fixed knobs or a config file.

Each problem is a PlanError that names the field it comes from, so a form
can mark that field and say what is allowed (the CLI words its own flags).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from nsm.config import DOMAINS, FIELDS, RunConfig
from nsm.sweeps.grid import (
    Axis,
    GridError,
    grid_points,
    load_config_list,
    parse_axis,
    parse_fixed,
    point_configs,
    repeat_over_seeds,
)


class PlanError(GridError):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field  # "domain", "grid-<i>", "fixed", "configs", "seeds" or "points"


@dataclass(frozen=True)
class SweepPlan:
    configs: list[RunConfig]
    axes: list[Axis] = field(default_factory=list)
    from_file: bool = False
    seeds: int = 1  # runs per point: configs holds each point's repeats one after another

    @property
    def shape(self) -> str:
        """'LR 2 × CYCLE_WEIGHT 2' (the axes with more than one value), '× 3 seeds' over seeds."""
        varying = [a for a in self.axes if len(a.values) > 1]
        if varying:
            text = " × ".join(f"{a.label} {len(a.values)}" for a in varying)
        else:
            text = "config list" if self.from_file else "one config"
        return f"{text} × {self.seeds} seeds" if self.seeds > 1 else text

    def describe(self) -> str:
        n = len(self.configs)
        return f"{n} run{'s' if n != 1 else ''}: {self.shape}"


def plan_sweep(
    base: Mapping[str, Any],
    *,
    domains: Sequence[str],
    grid: Sequence[str] = (),
    fixed: str = "",
    configs_file: str | None = None,
    seeds: int | str = 1,
) -> SweepPlan:
    """The points of a sweep, checked; PlanError naming the field at fault."""
    bad = [d for d in domains if d not in DOMAINS]
    if not domains or bad:
        raise PlanError(f"DOMAIN must be one of {', '.join(DOMAINS)} (got {', '.join(bad) or 'nothing'})", "domain")
    try:
        fixed_values = parse_fixed(fixed)
    except GridError as exc:
        raise PlanError(str(exc), "fixed") from None
    axes: list[Axis] = []
    for i, spec in enumerate(grid):
        if not spec.strip():
            continue
        try:
            axis = parse_axis(spec)
        except GridError as exc:
            raise PlanError(str(exc), f"grid-{i}") from None
        if any(a.knob == axis.knob for a in axes):
            raise PlanError(f"{axis.label} is in two grid rows; list all its values in one row", f"grid-{i}")
        if axis.knob in fixed_values:
            raise PlanError(f"{axis.label} is both fixed and in a grid row; drop one", "fixed")
        if axis.knob == "domain" and len(domains) > 1:
            raise PlanError("the domains come from DOMAIN (all) or from a grid row, not both", f"grid-{i}")
        axes.append(axis)
    path = (configs_file or "").strip()
    if path and axes:
        raise PlanError("a config file and grid rows both define the points; clear one of them", "configs")
    if "domain" in fixed_values and len(domains) > 1:
        raise PlanError("DOMAIN is fixed here and set to all above; drop one", "fixed")
    if len(domains) > 1:
        axes.insert(0, Axis("domain", tuple(domains)))
    if not path and not axes:
        raise PlanError("add a grid row, e.g. lr=1e-3,1e-4 (knob=values, comma-separated)", "grid-0")
    values = {**dict(base), "domain": domains[0], **fixed_values}
    values.pop("schema_version", None)
    try:
        points = load_config_list(path) if path else grid_points(axes)
    except GridError as exc:
        raise PlanError(str(exc), "configs" if path else "points") from None
    try:
        configs = point_configs(values, points)
    except GridError as exc:
        raise PlanError(str(exc), "points") from None
    count = parse_seeds(seeds)
    try:
        configs = repeat_over_seeds(configs, count, axes)
    except GridError as exc:
        raise PlanError(str(exc), "seeds") from None
    return SweepPlan(configs, axes, from_file=bool(path), seeds=count)


def parse_seeds(raw: int | str) -> int:
    """The number of seeds per point as typed (blank: 1); PlanError on the seeds field."""
    text = str(raw).strip()
    if not text:
        return 1
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or isinstance(raw, bool):
        raise PlanError(f"seeds must be a whole number >= 1: runs per point, SEED, SEED+1, ... (got {text!r})", "seeds")
    return value


def base_from(values: Any) -> dict[str, Any] | None:
    """A remembered config (e.g. the dashboard's last one) as knob values, or
    None if it is not a usable config (an older version's, say)."""
    if not isinstance(values, Mapping):
        return None
    known = {k: v for k, v in values.items() if k in FIELDS}
    try:
        from nsm.config import validate_config

        return validate_config(known).to_dict()
    except ValueError:
        return None
