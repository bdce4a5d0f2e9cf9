"""TensorBoard and W&B sinks: what a finished, resumed or rewound run leaves for those tools."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nsm.runs import RunStore
from nsm.runs.timeline import discard_future
from nsm.training.sinks.tensorboard_sink import TensorBoardSink
from nsm.training.trainer import Trainer

from .helpers import tiny_config


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def _board(run) -> EventAccumulator:
    acc = EventAccumulator(str(run.path / "tensorboard"))
    acc.Reload()
    return acc


def _series(acc: EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    points = acc.Scalars(tag)
    return [p.step for p in points], [p.value for p in points]


def _assert_matches_history(acc: EventAccumulator, history: dict) -> None:
    """Every per-epoch series of training_history.json is in TensorBoard, with the same values."""
    tags = set(acc.Tags()["scalars"])
    checked = 0
    for split, epochs, tag_of in (
        ("train", history["epochs"], lambda k: "gpu/peak_mem_mb" if k == "gpu_peak_mem_mb" else f"train/{k}"),
        ("val", history["val"]["epochs"], lambda k: f"val/{k}"),
    ):
        for key, values in history[split].items():
            if key == "epochs" or all(v is None for v in values):
                continue  # gpu_peak_mem_mb is null on a CPU
            tag = tag_of(key)
            assert tag in tags, f"{tag} missing from TensorBoard (has {sorted(tags)})"
            steps, got = _series(acc, tag)
            assert steps == epochs, tag
            assert got == pytest.approx(values, rel=1e-6), tag
            checked += 1
    assert checked >= 12


def test_tensorboard_files_hold_every_series_of_the_history_and_the_hparams(store: RunStore) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    run = store.create_run(tiny_config(), name="tb")
    assert Trainer(run).run() == "finished"
    history = json.loads((run.path / "training_history.json").read_text())
    acc = _board(run)
    _assert_matches_history(acc, history)
    results = json.loads((run.path / "final_results.json").read_text())
    assert _series(acc, "test/acc") == ([3], [pytest.approx(results["test"]["acc"])])
    assert _series(acc, "val/best_loss")[1][-1] == pytest.approx(results["best_val_loss"])
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == pytest.approx(run.run_config().lr)
    assert start.hparams["domain"].string_value == "planning"
    assert "_hparams_/session_end_info" in content


def test_a_resume_continues_the_steps_and_a_rewind_drops_the_discarded_epochs(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=4, save_every=1), name="tb-resume")
    holder: dict[str, Trainer] = {}
    first = holder["t"] = Trainer(run, on_step=lambda e, s: holder["t"].request_stop("test") if (e, s) == (3, 2) else None)
    assert first.run() == "interrupted"
    assert Trainer(run, resume_from=run.latest_checkpoint().path).run() == "finished"
    acc = _board(run)
    _assert_matches_history(acc, json.loads((run.path / "training_history.json").read_text()))
    assert _series(acc, "test/acc")[0] == [4]
    assert len(list((run.path / "tensorboard").iterdir())) == 1, "the resume's file replaces the earlier one"

    # Back to epoch 2, then stopped during epoch 4: TensorBoard shows epochs 1-3, no test result.
    discard_future(run, 2, 0)
    holder["t"] = Trainer(run, resume_from=run.path / "checkpoint_epoch_2.pt",
                          on_step=lambda e, s: holder["t"].request_stop("test") if (e, s) == (4, 0) else None)  # fmt: skip
    assert holder["t"].run() == "interrupted"
    acc = _board(run)
    assert _series(acc, "train/loss")[0] == [1, 2, 3]
    assert _series(acc, "val/loss")[0] == [1, 2, 3]
    assert "test/acc" not in acc.Tags()["scalars"]
    _assert_matches_history(acc, json.loads((run.path / "training_history.json").read_text()))


def test_a_failing_tensorboard_writer_turns_the_sink_off_and_the_run_goes_on(store: RunStore, monkeypatch) -> None:
    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TensorBoardSink, "_add", full_disk)
    run = store.create_run(tiny_config(), name="tb-broken")
    assert Trainer(run).run() == "finished"
    warnings = [e for e in run.events() if e["type"] == "log" and "TensorBoard" in e["message"]]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"
    assert "No space left on device" in warnings[0]["message"] and "training goes on" in warnings[0]["message"]
    assert json.loads((run.path / "training_history.json").read_text())["epochs"] == [1, 2, 3]


def test_tensorboard_off_writes_no_event_files(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=1, tensorboard=False), name="tb-off")
    assert Trainer(run).run() == "finished"
    assert not (run.path / "tensorboard").exists()


def test_wandb_offline_writes_its_offline_run_folder(store: RunStore, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    (tmp_path / "wandb-dir").mkdir()
    run = store.create_run(tiny_config(epochs=2, wandb="offline"), name="wb")
    assert Trainer(run).run() == "finished"
    assert not [e for e in run.events() if e["type"] == "log" and "W&B" in e["message"]]
    folders = list((tmp_path / "wandb-dir" / "wandb").glob("offline-run-*"))
    assert len(folders) == 1
    files = {p.name for p in folders[0].rglob("*")}
    assert any(name.endswith(".wandb") for name in files), files


def test_wandb_online_without_an_api_key_says_so_once_and_the_run_goes_on(store: RunStore, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    run = store.create_run(tiny_config(epochs=1, wandb="online", tensorboard=False), name="wb-online")
    assert Trainer(run).run() == "finished"
    warnings = [e for e in run.events() if e["type"] == "log" and "W&B" in e["message"]]
    assert len(warnings) == 1 and "API key" in warnings[0]["message"] and "wandb login" in warnings[0]["message"]
    assert not os.path.exists(tmp_path / "wandb")
