"""POOLING = on | off: the NSM without pooling as an ablation knob, from the config to a
checkpoint's evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsm.config import ConfigError, RunConfig, validate_config
from nsm.config_file import load_config_file, save_config_file
from nsm.runs import RunStore
from nsm.runs.compare import build_comparison
from nsm.sweeps import GridError, grid_points, parse_axes, point_configs
from nsm.training.trainer import Trainer
from tui.cli import build_parser
from tui.cli.console import CliError
from tui.cli.sweeps import sweep_configs
from tui.cli.training import train_configs

from .helpers import TINY, tiny_config

SMALL = dict(epochs=2, num_graphs=40, save_every=1)
REFUSED = "POOLING=off applies to MODEL=nsm only (MODEL=flat has no pooling to turn off); set MODEL to nsm or POOLING to on"


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_pooling_defaults_to_on_and_is_refused_off_with_the_flat_reference() -> None:
    assert RunConfig().pooling is True
    old = RunConfig().to_dict()
    del old["pooling"]  # a config.json written before the knob existed
    assert validate_config(old).pooling is True
    assert validate_config({"pooling": "off"}).pooling is False
    assert validate_config({"model": "flat"}).pooling is True  # the default is not an ablation
    with pytest.raises(ConfigError) as info:
        validate_config({"model": "flat", "pooling": False})
    assert info.value.errors == {"pooling": REFUSED}


def test_the_knob_round_trips_through_a_config_file_and_the_cli_flag(tmp_path: Path) -> None:
    path = save_config_file(tmp_path / "run.toml", RunConfig(pooling=False), source="a test")
    assert "\npooling = false" in path.read_text()
    assert load_config_file(path).pooling is False
    (cfg,) = train_configs(build_parser().parse_args(["train", "--domain", "kg", "--no-pooling"]))
    assert cfg.pooling is False
    (cfg,) = train_configs(build_parser().parse_args(["train", "--domain", "kg", "--config", str(path), "--pooling"]))
    assert cfg.pooling is True  # the flag beats the file
    with pytest.raises(CliError, match=r"--pooling: POOLING=off applies to MODEL=nsm only \(MODEL=flat"):
        train_configs(build_parser().parse_args(["train", "--domain", "kg", "--model", "flat", "--no-pooling"]))


def test_a_sweep_grid_varies_pooling_and_refuses_it_off_for_flat() -> None:
    axes = parse_axes(["pooling=on,off"])
    configs = point_configs(TINY, grid_points(axes))
    assert [c.pooling for c in configs] == [True, False]
    args = build_parser().parse_args(["sweep", "--domain", "planning", "--grid", "pooling=on,off", "--grid", "lr=1e-3,3e-3"])
    configs, _ = sweep_configs(args)
    assert [(c.pooling, c.lr) for c in configs] == [(True, 1e-3), (True, 3e-3), (False, 1e-3), (False, 3e-3)]
    with pytest.raises(GridError, match=r"point 4 \(model=flat pooling=false\): POOLING=off applies to MODEL=nsm only"):
        point_configs(TINY, grid_points(parse_axes(["model=nsm,flat", "pooling=on,off"])))


def test_a_run_without_pooling_trains_evaluates_traces_and_compares_beside_the_default(store: RunStore) -> None:
    from nsm.data.sample_view import render_sample
    from nsm.training.evaluation import evaluate_checkpoint
    from nsm.training.sample_trace import trace_sample

    pooled = store.create_run(tiny_config(**SMALL), name="pooled")
    unpooled = store.create_run(tiny_config(**SMALL, pooling=False), name="unpooled")
    assert Trainer(pooled).run() == "finished"
    assert Trainer(unpooled).run() == "finished"
    start = {r.name: next(e for e in r.events() if e["type"] == "run_started") for r in (pooled, unpooled)}
    assert start["unpooled"]["config"]["pooling"] is False and start["pooled"]["config"]["pooling"] is True
    assert start["unpooled"]["params"] < start["pooled"]["params"]  # the pooling layers' weights are gone

    # The checkpoint's own config builds the model: a pooling NSM would not load these weights.
    result = evaluate_checkpoint(unpooled, "checkpoint_epoch_2.pt", device="cpu", reuse=False)
    assert 0.0 <= result["acc"] <= 1.0
    view = trace_sample(unpooled.path / "checkpoint_epoch_2.pt", 0)
    assert view.trace is not None and all(len(level) == len(view.nodes) for level in view.trace.levels)
    text = "\n".join(render_sample(view, 100))
    assert f"level 3: {len(view.nodes)} of {len(view.nodes)} nodes" in text

    comparison = build_comparison([pooled, unpooled])
    assert comparison.differences["pooling"] == {pooled.ref: True, unpooled.ref: False}
