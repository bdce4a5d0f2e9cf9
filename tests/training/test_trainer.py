"""The training engine: files, events, exact resume, stop, failures."""

from __future__ import annotations

import errno
import json
import pickle
import random
from pathlib import Path

import pytest
import torch

from nsm.runs import RunStore, read_events
from nsm.training.checkpoint import CheckpointError, load_checkpoint
from nsm.training.trainer import Trainer

from .helpers import metric_rows, tiny_config


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def train(store: RunStore, name: str, **overrides):  # type: ignore[no-untyped-def]
    run = store.create_run(tiny_config(**overrides), name=name)
    events: list[dict] = []
    outcome = Trainer(run, sinks=[events.append]).run()
    return run, outcome, events


def test_a_run_writes_the_notebooks_files_and_a_complete_log(store: RunStore) -> None:
    run, outcome, events = train(store, "full", epochs=4, save_every=2)
    assert outcome == "finished", [e for e in events if e["type"] == "failed"]
    names = {p.name for p in run.path.iterdir()}
    assert {"config.json", "events.jsonl", "best_model.pt", "checkpoint_epoch_2.pt", "checkpoint_epoch_4.pt",
            "training_history.json", "final_results.json"} <= names
    logged, bad = read_events(run.path / "events.jsonl")
    assert bad == 0
    assert [e["seq"] for e in logged] == list(range(len(logged)))
    assert logged == events  # the callback sink saw exactly what the log holds
    types = [e["type"] for e in logged]
    assert types[0] == "run_started" and types[-1] == "finished"
    assert types.count("epoch_end") == 4 and types.count("eval") == 4
    started = logged[0]
    assert started["params"] > 0 and started["dataset"]["splits"]["train"]["count"] == 42
    history = json.loads((run.path / "training_history.json").read_text())
    assert history["epochs"] == [1, 2, 3, 4]
    assert len(history["val"]["loss"]) == 4
    results = json.loads((run.path / "final_results.json").read_text())
    assert 0.0 <= results["test"]["acc"] <= 1.0
    assert sum(map(sum, results["test"]["confusion"])) == results["dataset"]["test"] == results["test"]["count"]
    assert set(results["baselines"]) >= {"majority", "structure_blind"}
    assert run.status() == "finished"


def test_eval_every_and_the_last_epoch(store: RunStore) -> None:
    _, _, events = train(store, "evals", epochs=5, eval_every=2)
    assert [e["epoch"] for e in events if e["type"] == "eval"] == [2, 4, 5]


def test_progress_events_are_throttled(store: RunStore) -> None:
    _, _, events = train(store, "throttle", epochs=2, batch_size=1, num_graphs=60)
    progress = [e for e in events if e["type"] == "progress"]
    assert progress, "progress is reported inside epochs"
    span = events[-1]["t"] - events[0]["t"]
    # 84 steps happened; at most ~4 a second (plus one at each epoch end) may be reported.
    assert len(progress) <= 4 * span + 2 + 2


@pytest.mark.parametrize("stop_at", [(1, 0), (1, 3), (2, 5), (3, 4), "random"])
def test_interrupt_anywhere_then_resume_equals_an_uninterrupted_run(store: RunStore, stop_at) -> None:  # type: ignore[no-untyped-def]
    _, outcome, reference = train(store, "reference")
    assert outcome == "finished"
    if stop_at == "random":
        stop_at = random.choice([(e, s) for e in (1, 2, 3) for s in range(6) if (e, s) != (3, 5)])
    run = store.create_run(tiny_config(), name="interrupted")
    holder: dict[str, Trainer] = {}

    def stop_here(epoch: int, step: int) -> None:
        if (epoch, step) == stop_at:
            holder["t"].request_stop("test")

    first = Trainer(run, on_step=stop_here)
    holder["t"] = first
    assert first.run() == "interrupted"
    interrupted = [e for e in run.events() if e["type"] == "interrupted"][-1]
    assert run.status() == "interrupted"
    ckpt = run.path / interrupted["checkpoint"]
    # Honoured at the next step boundary: the step under way when the stop came is finished.
    blob = load_checkpoint(ckpt)
    epoch, step = stop_at
    steps_per_epoch = 6  # 42 training graphs in batches of 8
    expected = (epoch - 1, step + 1) if step + 1 < steps_per_epoch else (epoch, 0)
    assert (blob["epoch"], blob["step"]) == expected

    resumed = Trainer(run, resume_from=ckpt)
    assert resumed.run() == "finished"
    log = run.events()
    assert [e["seq"] for e in log] == list(range(len(log)))
    assert any(e["type"] == "resumed" for e in log)
    train_a, val_a = metric_rows(reference)
    train_b, val_b = metric_rows(log)
    assert train_b == train_a
    assert val_b == val_a
    ref_final = [e for e in reference if e["type"] == "finished"][0]["test"]
    new_final = [e for e in log if e["type"] == "finished"][-1]["test"]
    assert new_final == ref_final
    assert run.status() == "finished"
    assert json.loads((run.path / "training_history.json").read_text())["epochs"] == [1, 2, 3]


def test_resume_from_an_older_checkpoint_rewrites_the_future(store: RunStore) -> None:
    run, outcome, _ = train(store, "again", epochs=4, save_every=2)
    assert outcome == "finished"
    assert Trainer(run, resume_from=run.path / "checkpoint_epoch_2.pt").run() == "finished"
    history = json.loads((run.path / "training_history.json").read_text())
    assert history["epochs"] == [1, 2, 3, 4]


def test_a_stop_request_before_the_first_step_still_leaves_a_checkpoint(store: RunStore) -> None:
    run = store.create_run(tiny_config(), name="early-stop")
    trainer = Trainer(run)
    trainer.request_stop("user")
    assert trainer.run() == "interrupted"
    last = run.events()[-1]
    assert last["type"] == "interrupted" and last["reason"] == "user"
    assert load_checkpoint(run.path / last["checkpoint"])["epoch"] == 0


class _Boom:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, ("touch /tmp/nsm-hostile-marker",))


def test_a_hostile_pickle_checkpoint_is_refused_without_running_it(store: RunStore, tmp_path: Path) -> None:
    marker = Path("/tmp/nsm-hostile-marker")
    marker.unlink(missing_ok=True)
    bad = tmp_path / "checkpoint_epoch_1.pt"
    torch.save({"format": "nsm-checkpoint", "version": 1, "model": _Boom()}, bad)
    with pytest.raises(CheckpointError, match="refused.*pickled Python objects"):
        load_checkpoint(bad)
    assert not marker.exists()

    run = store.create_run(tiny_config(), name="hostile")
    outcome = Trainer(run, resume_from=bad).run()
    assert outcome == "failed"
    failed = run.events()[-1]
    assert failed["type"] == "failed" and "refused" in failed["error"]
    assert not marker.exists()

    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not marker.exists()


def test_corrupt_truncated_and_foreign_checkpoints_get_clear_messages(store: RunStore, tmp_path: Path) -> None:
    run, _, _ = train(store, "source", epochs=2)
    good = (run.path / "checkpoint_epoch_2.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 3])
    with pytest.raises(CheckpointError, match="truncated.pt is corrupt or truncated"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(empty)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not an nsm-tui checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_checkpoint_of_another_config_is_refused(store: RunStore) -> None:
    other, _, _ = train(store, "other", epochs=2, lr=5e-3)
    run = store.create_run(tiny_config(), name="mine")
    assert Trainer(run, resume_from=other.path / "checkpoint_epoch_2.pt").run() == "failed"
    assert "does not belong to this run" in run.events()[-1]["error"]


def test_a_full_disk_fails_the_run_clearly_and_keeps_the_last_checkpoint(store: RunStore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import nsm.training.trainer as trainer_mod

    real_save = trainer_mod.save_checkpoint
    calls = {"n": 0}

    def save(path, state):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if Path(path).name == "checkpoint_epoch_4.pt":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(path, state)

    monkeypatch.setattr(trainer_mod, "save_checkpoint", save)
    run, outcome, events = train(store, "full-disk", epochs=4, save_every=2)
    assert outcome == "failed"
    failed = events[-1]
    assert failed["type"] == "failed" and failed["error_type"] == "disk"
    assert "disk is full" in failed["error"] and "checkpoint_epoch_2.pt is intact" in failed["error"]
    assert "free disk space" in failed["hint"]
    assert load_checkpoint(run.path / "checkpoint_epoch_2.pt")["epoch"] == 2
    assert not any(p.name.endswith(".tmp") for p in run.path.iterdir())
    assert run.status() == "failed"


def test_no_gpu_for_device_cuda_is_a_clear_failure(store: RunStore) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run, outcome, events = train(store, "cuda", device="cuda")
    assert outcome == "failed"
    assert "DEVICE=cuda but torch sees no CUDA GPU" in events[-1]["error"]
    assert "DEVICE=auto" in events[-1]["hint"]


def test_cuda_out_of_memory_suggests_half_the_batch(store: RunStore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import nsm.training.trainer as trainer_mod

    real_step = trainer_mod.Trainer._train_step

    def step(self, ids, batch=None):  # type: ignore[no-untyped-def]
        if self.epoch == 1 and self.step == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, ids, batch)

    monkeypatch.setattr(trainer_mod.Trainer, "_train_step", step)
    run, outcome, events = train(store, "oom", epochs=3, save_every=1)
    assert outcome == "failed"
    failed = events[-1]
    assert failed["error_type"] == "oom"
    assert "out of memory" in failed["error"] and "BATCH_SIZE=8" in failed["error"]
    assert failed["suggested_config"] == {"batch_size": 4}
    assert failed["checkpoint"] == "checkpoint_epoch_1.pt"
    assert load_checkpoint(run.path / "checkpoint_epoch_1.pt")["epoch"] == 1


def test_a_broken_viewer_never_stops_training(store: RunStore) -> None:
    run = store.create_run(tiny_config(epochs=1), name="viewer")

    def broken(event: dict) -> None:
        raise RuntimeError("viewer crashed")

    assert Trainer(run, sinks=[broken]).run() == "finished"


def test_early_stopping_with_patience(store: RunStore) -> None:
    run, outcome, events = train(store, "patience", epochs=30, patience=2, lr=1e-6)
    assert outcome == "finished"
    finished = events[-1]
    if finished["reason"] == "early_stopped":
        assert finished["epochs_done"] < 30
        evals = [e for e in events if e["type"] == "eval"]
        assert evals[-1]["patience_left"] == 0
    else:  # the val loss kept improving every epoch: nothing to stop
        assert finished["epochs_done"] == 30


def test_batches_prepared_by_worker_threads_train_exactly_the_same(store: RunStore) -> None:
    _, _, plain = train(store, "no-workers", epochs=2)
    _, outcome, threaded = train(store, "workers", epochs=2, num_workers=2)
    assert outcome == "finished"
    assert metric_rows(threaded) == metric_rows(plain)
