"""TOML run configs (nsm.config_file): round trip, and one clear message per kind of bad file."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from nsm.config import FIELDS, RunConfig
from nsm.config_file import ConfigFileError, config_file_text, load_config_file, read_config_values, save_config_file


def _write(tmp_path: Path, text: str | bytes, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _problem(path: Path) -> str:
    with pytest.raises(ConfigFileError) as info:
        load_config_file(path)
    return str(info.value)


def test_a_saved_file_documents_every_knob_and_loads_back_identically(tmp_path: Path) -> None:
    config = RunConfig(domain="kg", epochs=7, lr=1.2345678901234e-4, cycle_weight=0.05, amp=False, wandb="offline", hidden=32, keep_last=3)
    path = save_config_file(tmp_path / "run.toml", config, source="run kg/x")
    assert load_config_file(path) == config
    text = path.read_text()
    for name, spec in FIELDS.items():
        assert f"\n{name} = " in text
        assert f"# {spec.help}" in text and spec.allowed() in text
    assert set(tomllib.loads(text)) == {"schema_version", *FIELDS}
    assert not list(tmp_path.glob(".*.tmp")), "atomic write leaves no temp file"


def test_a_partial_file_sets_only_its_keys_and_labels_work_too(tmp_path: Path) -> None:
    path = _write(tmp_path, "EPOCHS = 12\nlr = 3e-4\ndevice = 'CPU'\n")
    assert read_config_values(path) == {"epochs": 12, "lr": 3e-4, "device": "cpu"}
    assert load_config_file(path) == RunConfig(epochs=12, lr=3e-4, device="cpu")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('epochs = "ten"', ["key epochs", "EPOCHS must be an integer from 1 to 10000", "without quotes", "'ten'"]),
        ('epochs = "10"', ["key epochs", "without quotes"]),
        ("lr = true", ["key lr", "LR must be a number from 1e-06 to 1", "got true"]),
        ("epochs = 2.5", ["key epochs", "an integer", "2.5"]),
        ("amp = 1", ["key amp", "true or false", "got 1"]),
        ("epochs = 0", ["key epochs", "EPOCHS must be an integer from 1 to 10000 (got 0)"]),
        ("lr = nan", ["key lr", "LR must be a number"]),
        ('domain = "chess"', ["key domain", "DOMAIN must be one of causal, planning, kg"]),
        ("epoch = 3", ["key epoch", "unknown key", "did you mean epochs?", "known keys: domain, epochs, batch_size"]),
        ("[train]\nepochs = 3", ["key train", "unknown key"]),
        ("epochs = [1, 2]", ["key epochs", "an array"]),
        ("epochs = 3\nEPOCHS = 4", ["key EPOCHS", "a second time"]),
        ("schema_version = 2", ["schema_version must be 1"]),
        ("num_graphs = 20", ["key batch_size", "BATCH_SIZE must be at most the training split size"]),
        ("epochs = 3\nlr =\n", ["not valid TOML", "line 2"]),
    ],
)
def test_a_bad_key_names_the_file_the_key_and_what_is_allowed(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = _write(tmp_path, text + "\n")
    message = _problem(path)
    assert message.count(str(path)) == 1, message
    for needle in needles:
        assert needle in message, message


def test_every_bad_key_is_listed_at_once(tmp_path: Path) -> None:
    message = _problem(_write(tmp_path, 'epochs = "ten"\nlr = true\nbatch = 3\n'))
    assert "key epochs" in message and "key lr" in message and "key batch" in message


def test_unusable_files_get_one_clear_message_each(tmp_path: Path) -> None:
    assert "does not exist" in _problem(tmp_path / "nope.toml")
    assert "is a folder" in _problem(tmp_path)
    assert "not UTF-8 text (byte 0xff on line 2)" in _problem(_write(tmp_path, b"epochs = 3\n# caf\xff\n"))
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    assert "not a regular file" in _problem(fifo)  # and it does not hang waiting for a writer
    locked = _write(tmp_path, "epochs = 3\n", "locked.toml")
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        pytest.skip("running as root: every file is readable")
    assert "cannot read config file" in _problem(locked) and "ermission denied" in _problem(locked)


def test_saving_into_a_missing_folder_or_onto_a_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="folder .* does not exist"):
        save_config_file(tmp_path / "no" / "run.toml", RunConfig())
    with pytest.raises(ConfigFileError, match="is a folder"):
        save_config_file(tmp_path, RunConfig())


def test_text_from_a_run_stays_inside_its_comment_and_its_string(tmp_path: Path) -> None:
    config = RunConfig(gpu='H100"\n[evil]\x1b]0;t\x07')
    text = config_file_text(config, source="run planning/a\nb = 1")
    assert "\x1b" not in text.split("gpu =")[0]
    path = _write(tmp_path, text)
    assert load_config_file(path).gpu == config.gpu  # escaped by TOML, not cut
