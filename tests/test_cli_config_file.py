"""`--config FILE` on train and sweep, and `nsm-tui config save|show`: defaults < file < flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsm.config import RunConfig
from nsm.config_file import load_config_file
from tui.cli import build_parser, main
from tui.cli.console import CliError
from tui.cli.sweeps import sweep_configs
from tui.cli.training import train_configs


def _resolve(*argv: str) -> list[RunConfig]:
    """What `nsm-tui train ARGV` would train, without training."""
    return train_configs(build_parser().parse_args(["train", *argv]))


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return str(path)


def test_defaults_then_the_file_then_the_flags(tmp_path: Path) -> None:
    path = _file(tmp_path, 'domain = "kg"\nepochs = 50\nlr = 3e-4\nseed = 7\nhidden = 32\n')
    (cfg,) = _resolve("--config", path, "--epochs", "5", "--seed", "8")
    assert (cfg.domain, cfg.epochs, cfg.seed) == ("kg", 5, 8)  # flags win
    assert (cfg.lr, cfg.hidden) == (3e-4, 32)  # the file beats the defaults
    assert (cfg.batch_size, cfg.cycle_weight) == (RunConfig().batch_size, RunConfig().cycle_weight)  # defaults
    assert cfg.backend == "inprocess"  # attached, as without a file


def test_domain_on_the_command_line_beats_the_files_and_all_keeps_the_files_knobs(tmp_path: Path) -> None:
    path = _file(tmp_path, 'domain = "kg"\nepochs = 9\n')
    assert [c.domain for c in _resolve("--config", path, "--domain", "causal")] == ["causal"]
    configs = _resolve("--config", path, "--domain", "all")
    assert [c.domain for c in configs] == ["causal", "planning", "kg"] and {c.epochs for c in configs} == {9}


def test_without_a_domain_anywhere_it_asks_for_one(tmp_path: Path) -> None:
    path = _file(tmp_path, "epochs = 9\n")
    with pytest.raises(CliError, match=r"--domain is required.*or set domain in .*run\.toml"):
        _resolve("--config", path)


def test_a_file_for_modal_trains_there_unless_the_command_line_says_local(tmp_path: Path) -> None:
    path = _file(tmp_path, 'domain = "kg"\nbackend = "modal"\ngpu = "H100"\n')
    (cfg,) = _resolve("--config", path)
    assert (cfg.backend, cfg.gpu) == ("modal", "H100")
    (cfg,) = _resolve("--config", path, "--backend", "local", "--detach")
    assert cfg.backend == "process"


def test_bad_files_and_clashes_are_one_line_naming_the_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ('domain = "kg"\nepochs = "ten"\n', ["--config", "run.toml: key epochs: EPOCHS must be an integer"]),
        ('domain = "kg"\nlr = true\n', ["key lr: LR must be a number from 1e-06 to 1"]),
        ('domain = "kg"\nnum_graphs = 20\n', ["--config", "run.toml: BATCH_SIZE must be at most the training split size"]),
    ]
    for text, needles in cases:
        path = _file(tmp_path, text)
        assert main(["--runs-dir", str(tmp_path / "runs"), "train", "--config", path]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert all(n in err for n in needles), err
    # A flag that fixes the clash wins over the file: the error names the flag it came from.
    path = _file(tmp_path, 'domain = "kg"\nnum_graphs = 20\n')
    with pytest.raises(CliError, match=r"^--batch-size: "):
        _resolve("--config", path, "--batch-size", "64")
    assert main(["train", "--config", str(tmp_path / "missing.toml"), "--domain", "kg"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_config_save_from_defaults_or_a_run_then_train_from_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    out = tmp_path / "run.toml"
    assert main(["--runs-dir", str(runs), "config", "save", str(out), "--epochs", "7"]) == 0
    assert load_config_file(out) == RunConfig(epochs=7)
    assert main(["config", "save", str(out)]) == 2
    assert "exists; add --force" in capsys.readouterr().err
    run_dir = runs / "causal" / "earlier"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(RunConfig(domain="causal", lr=2e-4, hidden=48).to_dict()))
    assert main(["--runs-dir", str(runs), "config", "save", str(out), "--from", "earlier", "--seed", "5", "--force"]) == 0
    assert load_config_file(out) == RunConfig(domain="causal", lr=2e-4, hidden=48, seed=5)
    assert "from run causal/earlier" in out.read_text()
    capsys.readouterr()
    assert main(["config", "show", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lr"] == 2e-4
    (cfg,) = _resolve("--config", str(out))
    assert (cfg.domain, cfg.lr, cfg.seed) == ("causal", 2e-4, 5)


def _sweep_args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["sweep", *argv])


def test_a_sweep_takes_a_base_config_file_that_the_grid_and_flags_override(tmp_path: Path) -> None:
    path = _file(tmp_path, 'domain = "causal"\nepochs = 4\nlr = 5e-4\ncycle_weight = 0.2\nnum_graphs = 60\nbatch_size = 8\n')
    configs, _axes = sweep_configs(_sweep_args("--config", path, "--grid", "lr=1e-3,3e-3", "--epochs", "2"))
    assert [c.lr for c in configs] == [1e-3, 3e-3]  # the grid beats the file
    assert {(c.domain, c.epochs, c.cycle_weight, c.num_graphs) for c in configs} == {("causal", 2, 0.2, 60)}
    configs, _ = sweep_configs(_sweep_args("--config", path, "--domain", "kg", "--grid", "seed=1,2"))
    assert {c.domain for c in configs} == {"kg"}
    configs, _ = sweep_configs(_sweep_args("--config", path, "--domain", "kg,planning", "--grid", "seed=1"))
    assert [c.domain for c in configs] == ["kg", "planning"] and {c.cycle_weight for c in configs} == {0.2}
    bad = _file(tmp_path, "lr = true\n")
    with pytest.raises(CliError, match="--config: .*run.toml: key lr"):
        sweep_configs(_sweep_args("--config", bad, "--domain", "kg", "--grid", "seed=1,2"))
