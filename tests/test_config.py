"""Every knob is validated before a run starts, with a message naming it and what is allowed."""

from __future__ import annotations

import pytest

from nsm.config import FIELDS, ConfigError, RunConfig, field_error, validate_config


def test_defaults_are_the_notebooks() -> None:
    cfg = RunConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.cycle_weight, cfg.eval_every, cfg.save_every) == (100, 64, 0.01, 5, 10)
    assert validate_config({}) == cfg


@pytest.mark.parametrize(
    ("knob", "value", "expected"),
    [
        ("epochs", 0, "EPOCHS must be an integer from 1 to 10000 (got 0)"),
        ("epochs", "ten", "EPOCHS must be an integer from 1 to 10000 (got 'ten')"),
        ("lr", "-1", "LR must be a number from 1e-06 to 1 (got -1)"),
        ("lr", "nan", "LR must be a number from 1e-06 to 1"),
        ("domain", "chess", "DOMAIN must be one of causal, planning, kg (got 'chess')"),
        ("device", "tpu", "DEVICE must be one of auto, cpu, cuda (got 'tpu')"),
        ("cycle_weight", 11, "CYCLE_WEIGHT must be a number from 0 to 10 (got 11)"),
        ("batch_size", 2.5, "BATCH_SIZE must be an integer from 1 to 4096 (got 2.5)"),
        ("amp", "maybe", "AMP must be true or false (got 'maybe')"),
    ],
)
def test_bad_value_names_the_knob_and_the_allowed_range(knob: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config({knob: value})
    assert expected in info.value.errors[knob]
    assert field_error(knob, value) is not None


def test_every_bad_knob_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config({"epochs": -1, "lr": 0, "eval_every": 0})
    assert set(info.value.errors) == {"epochs", "lr", "eval_every"}


def test_unknown_setting_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'epoch'.*epochs"):
        validate_config({"epoch": 5})


def test_cross_field_rules() -> None:
    with pytest.raises(ConfigError, match="AMP needs a CUDA device"):
        validate_config({"amp": True, "device": "cpu"})
    with pytest.raises(ConfigError, match="at most the training split size"):
        validate_config({"batch_size": 200, "num_graphs": 100})
    with pytest.raises(ConfigError, match="HIDDEN must be even"):
        validate_config({"hidden": 33})


def test_text_input_is_parsed_as_typed() -> None:
    cfg = validate_config({"epochs": " 10 ", "lr": "3e-4", "amp": "no", "domain": "KG"})
    assert (cfg.epochs, cfg.lr, cfg.amp, cfg.domain) == (10, 3e-4, False, "kg")


def test_round_trip_and_diff() -> None:
    a = RunConfig(domain="causal", lr=1e-3)
    b = validate_config(a.to_dict()).replace(lr=1e-4)
    assert validate_config(a.to_dict()) == a
    assert a.differs_from(b) == {"lr": (1e-3, 1e-4)}
    assert all(spec.help for spec in FIELDS.values())
