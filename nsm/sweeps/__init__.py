"""Hyperparameter sweeps and run queues, readable without torch.

A sweep is an ordered list of run configs (a grid's cartesian product or an
explicit list) kept in `<root>/.sweeps/<name>/sweep.json`; each point is an
ordinary run of the store. `nsm.sweeps.runner` trains the points one after
another (torch is imported there, lazily).
"""

from nsm.sweeps.grid import (
    Axis,
    GridError,
    describe_overrides,
    format_value,
    grid_points,
    load_config_list,
    parse_axes,
    parse_axis,
    parse_fixed,
    point_configs,
    resolve_knob,
)
from nsm.sweeps.results import DEFAULT_RANKING, METRICS, Metric, ResultRow, best_row, check_metric, ranking_metric, result_rows
from nsm.sweeps.status import PointView, SweepSnapshot, last_progress, request_stop, snapshot
from nsm.sweeps.sweep import (
    DONE,
    FAILED,
    PENDING,
    POINT_STATES,
    RUNNING,
    STOPPED,
    Point,
    Sweep,
    SweepBusy,
    SweepError,
    SweepExists,
    SweepNotFound,
    create_sweep,
    generate_sweep_name,
    get_sweep,
    list_sweeps,
    sweeps_root,
)

__all__ = [
    "DONE",
    "FAILED",
    "DEFAULT_RANKING",
    "METRICS",
    "PENDING",
    "POINT_STATES",
    "RUNNING",
    "STOPPED",
    "Axis",
    "GridError",
    "Metric",
    "Point",
    "PointView",
    "ResultRow",
    "Sweep",
    "SweepBusy",
    "SweepError",
    "SweepExists",
    "SweepNotFound",
    "SweepSnapshot",
    "best_row",
    "check_metric",
    "create_sweep",
    "describe_overrides",
    "format_value",
    "generate_sweep_name",
    "get_sweep",
    "grid_points",
    "last_progress",
    "list_sweeps",
    "load_config_list",
    "parse_axes",
    "parse_axis",
    "parse_fixed",
    "point_configs",
    "request_stop",
    "resolve_knob",
    "ranking_metric",
    "result_rows",
    "snapshot",
    "sweeps_root",
]
