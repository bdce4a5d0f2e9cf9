"""Sweep points from a grid (`lr=1e-3,1e-4` × `cycle_weight=0.01,0.05`) or a list of configs.

Every value goes through `nsm.config.FIELDS`, and every point through
`validate_config`, so a bad knob or value is reported before anything runs,
naming the knob and what it allows.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from nsm.config import FIELDS, ConfigError, RunConfig, validate_config

MAX_POINTS = 500
# A local queue runs on this machine: where it runs is not a knob of the sweep.
FIXED_BY_THE_QUEUE = ("backend", "gpu")


class GridError(ValueError):
    """A grid spec, a fixed knob or a config list that cannot become sweep points."""


@dataclass(frozen=True)
class Axis:
    knob: str  # FIELDS name
    values: tuple[Any, ...]

    @property
    def label(self) -> str:
        return FIELDS[self.knob].label

    def spec(self) -> str:
        return f"{self.knob}={','.join(format_value(v) for v in self.values)}"


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def knob_names() -> list[str]:
    return [n for n in FIELDS if n not in FIXED_BY_THE_QUEUE]


def resolve_knob(raw: str, *, where: str = "") -> str:
    """A knob by its name (`cycle_weight`), flag spelling (`cycle-weight`) or label (`CYCLE_WEIGHT`)."""
    key = raw.strip().lower().replace("-", "_")
    prefix = f"{where}: " if where else ""
    if not key:
        raise GridError(f"{prefix}a knob name is missing before '='; knobs: {', '.join(knob_names())}")
    if key not in FIELDS:
        close = difflib.get_close_matches(key, list(FIELDS), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise GridError(f"{prefix}unknown knob {raw.strip()!r}; {hint}knobs: {', '.join(knob_names())}")
    if key in FIXED_BY_THE_QUEUE:
        raise GridError(f"{prefix}{FIELDS[key].label} cannot be set in a sweep: the queue runs its points on this machine")
    return key


def _split_assignment(spec: str, where: str) -> tuple[str, str]:
    if "=" not in spec:
        raise GridError(f"{where}: expected KNOB=VALUE[,VALUE...], e.g. lr=1e-3,1e-4 (got {spec.strip()!r})")
    name, _, values = spec.partition("=")
    return name, values


def parse_axis(spec: str) -> Axis:
    """`knob=v1,v2,...` -> Axis; GridError naming the knob and what it allows."""
    where = f"grid {spec.strip()!r}"
    name, raw_values = _split_assignment(spec, where)
    knob = resolve_knob(name, where=where)
    field = FIELDS[knob]
    items = [v.strip() for v in raw_values.split(",")]
    if not any(items):
        raise GridError(f"{where}: no values for {field.label}; give {field.allowed()}, separated by commas")
    values: list[Any] = []
    for item in items:
        if not item:
            raise GridError(f"{where}: an empty value between commas; {field.label} takes {field.allowed()}")
        try:
            value = field.parse(item)
        except ValueError as exc:
            raise GridError(f"{where}: {exc}") from None
        if value in values:
            raise GridError(f"{where}: {field.label} lists {format_value(value)} twice")
        values.append(value)
    return Axis(knob, tuple(values))


def parse_axes(specs: Iterable[str]) -> list[Axis]:
    axes: list[Axis] = []
    for spec in specs:
        if not spec.strip():
            continue
        axis = parse_axis(spec)
        if any(a.knob == axis.knob for a in axes):
            raise GridError(f"{axis.label} has two grid rows; list all its values in one: {axis.knob}=v1,v2,...")
        axes.append(axis)
    return axes


def parse_fixed(text: str) -> dict[str, Any]:
    """`epochs=2 batch_size=8` (spaces or ';' between) -> {knob: value}: knobs every point shares."""
    fixed: dict[str, Any] = {}
    for part in re.split(r"[;\s]+", text.strip()):
        if not part:
            continue
        where = f"setting {part!r}"
        name, raw = _split_assignment(part, where)
        knob = resolve_knob(name, where=where)
        field = FIELDS[knob]
        if "," in raw:
            raise GridError(f"{where}: {field.label} takes one value here; put a list of values in a grid row")
        if not raw.strip():
            raise GridError(f"{where}: no value for {field.label}; give {field.allowed()}")
        try:
            fixed[knob] = field.parse(raw)
        except ValueError as exc:
            raise GridError(f"{where}: {exc}") from None
    return fixed


def grid_points(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    """The cartesian product as override dicts; the first axis varies slowest."""
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > MAX_POINTS:
        sizes = " × ".join(str(len(a.values)) for a in axes)
        raise GridError(f"the grid has {count} points ({sizes}); at most {MAX_POINTS} fit in one sweep")
    return [dict(zip((a.knob for a in axes), combo)) for combo in itertools.product(*(a.values for a in axes))]


def point_configs(base: RunConfig | Mapping[str, Any], points: Sequence[Mapping[str, Any]]) -> list[RunConfig]:
    """Each point's full config; GridError naming the first point that is invalid.

    `base` may be a partial dict of knobs: rules that relate two knobs are only
    checked on the points, so a base of NUM_GRAPHS=60 with the default BATCH_SIZE
    is fine when every point sets a batch size that fits."""
    if not points:
        raise GridError("the sweep has no points: give at least one grid row or config")
    if len(points) > MAX_POINTS:
        raise GridError(f"{len(points)} configs; at most {MAX_POINTS} fit in one sweep")
    base_values = base.to_dict() if isinstance(base, RunConfig) else dict(base)
    configs = []
    for i, overrides in enumerate(points, start=1):
        try:
            configs.append(validate_config({**base_values, **overrides}))
        except ConfigError as exc:
            knob, message = next(iter(exc.errors.items()))
            what = describe_overrides(overrides) or "the base config"
            raise GridError(f"point {i} ({what}): {message}") from None
    return configs


def repeat_over_seeds(configs: Sequence[RunConfig], seeds: int, axes: Sequence[Axis] = ()) -> list[RunConfig]:
    """Each config `seeds` times, with SEED, SEED+1, ... (its own SEED first), the repeats
    of a point next to each other. GridError if the grid already varies SEED (two ways of
    choosing the seeds), if a seed would pass SEED's maximum, or if the sweep gets too big."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise GridError(f"seeds must be a whole number >= 1 (got {seeds!r})")
    if seeds == 1:
        return list(configs)
    seed_axis = next((a for a in axes if a.knob == "seed" and len(a.values) > 1), None)
    if seed_axis is not None:
        raise GridError(
            f"{seeds} seeds per point and the grid row {seed_axis.spec()} both choose SEED; "
            "drop the seed row (the seeds start at SEED) or use 1 seed per point"
        )
    total = len(configs) * seeds
    if total > MAX_POINTS:
        raise GridError(f"{len(configs)} points × {seeds} seeds is {total} runs; at most {MAX_POINTS} fit in one sweep")
    field = FIELDS["seed"]
    out: list[RunConfig] = []
    seen: dict[RunConfig, int] = {}
    for i, cfg in enumerate(configs, start=1):
        last = cfg.seed + seeds - 1
        if field.maximum is not None and last > field.maximum:
            raise GridError(f"point {i}: {seeds} seeds from SEED {cfg.seed} end at {last}, past SEED's maximum {_fmt_int(field.maximum)}")
        for offset in range(seeds):
            repeat = cfg.replace(seed=cfg.seed + offset)
            if repeat in seen:
                raise GridError(
                    f"points {seen[repeat]} and {i} both become the run config with SEED {repeat.seed}: "
                    "their seeds overlap; give them SEEDs at least the number of seeds apart"
                )
            seen[repeat] = i
            out.append(repeat)
    return out


def _fmt_int(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def describe_overrides(overrides: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in overrides.items())


def load_config_list(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A JSON file holding a list of objects, each the knobs of one point
    (missing knobs come from the base config)."""
    where = os.fspath(path)
    try:
        with open(os.path.expanduser(where), encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise GridError(f"config list {where} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GridError(f"cannot read config list {where}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise GridError(f"config list {where} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list) or not data:
        raise GridError(f'config list {where} must hold a non-empty JSON list of objects, e.g. [{{"lr": 0.001}}, {{"lr": 0.0003}}]')
    points: list[dict[str, Any]] = []
    for i, item in enumerate(data, start=1):
        item_where = f"config list {where}, item {i}"
        if not isinstance(item, dict):
            raise GridError(f"{item_where}: expected an object of knobs, found {type(item).__name__}")
        point: dict[str, Any] = {}
        for name, raw in item.items():
            if name == "schema_version":
                continue
            knob = resolve_knob(str(name), where=item_where)
            try:
                point[knob] = FIELDS[knob].parse(raw)
            except ValueError as exc:
                raise GridError(f"{item_where}: {exc}") from None
        points.append(point)
    return points
