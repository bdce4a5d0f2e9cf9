from __future__ import annotations

import re

import pytest

from nsm.runs import RunNameError, generate_run_name, validate_run_name


@pytest.mark.parametrize("name", ["a", "run-1", "lr_0.001", "A.b-c_d", "x" * 64, "9lives", "_private"])
def test_valid_names_pass_unchanged(name: str) -> None:
    assert validate_run_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("x" * 65, "65 characters"),
        ("../x", "path separator"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        (".hidden", "starts with '.'"),
        ("-rf", "starts with '-'"),
        ("tab\there", "control character"),
        ("nl\n", "control character"),
        ("del\x7f", "control character"),
        ("space here", "' '"),
        ("caf\u00e9", "'\u00e9'"),
    ],
)
def test_invalid_names_say_what_is_wrong_and_what_is_allowed(name: str, why: str) -> None:
    with pytest.raises(RunNameError) as info:
        validate_run_name(name)
    message = str(info.value)
    assert why in message
    assert "allowed" in message and "64" in message
    assert isinstance(info.value, ValueError)


def test_non_text_is_refused() -> None:
    with pytest.raises(RunNameError, match="must be text"):
        validate_run_name(None)


def test_generated_names_are_short_valid_and_distinct() -> None:
    early = generate_run_name("planning", now=1_800_000_000)
    late = generate_run_name("planning", now=1_800_000_000 + 120)
    assert re.fullmatch(r"\d{4}-\d{4}-[0-9a-f]{4}", early) and len(early) == 14
    assert "planning" not in early  # the ref is planning/<name>: the domain is not repeated
    assert early[:9] < late[:9]
    assert len({generate_run_name("kg", now=1_800_000_000) for _ in range(50)}) > 40
    assert validate_run_name(generate_run_name())


def test_long_names_of_older_runs_stay_valid() -> None:
    assert validate_run_name("planning-20261201-204454-6a7d") == "planning-20261201-204454-6a7d"
