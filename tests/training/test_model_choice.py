"""MODEL = nsm | flat as a run knob, and what makes a run's numbers reproducible
(the torch thread count it trained with)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nsm.config import ConfigError, RunConfig, validate_config
from nsm.runs import RunStore
from nsm.runs.compare import build_comparison, metrics_table
from nsm.runs.timeline import discard_future
from nsm.training.checkpoint import load_checkpoint, save_checkpoint
from nsm.training.trainer import Trainer

from .helpers import metric_rows, tiny_config

SMALL = dict(epochs=2, num_graphs=40, save_every=1)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_model_knob_defaults_to_nsm_and_names_what_it_allows() -> None:
    assert RunConfig().model == "nsm"
    old = RunConfig().to_dict()
    del old["model"]  # a config.json written before the knob existed
    assert validate_config(old).model == "nsm"
    with pytest.raises(ConfigError) as info:
        validate_config({"model": "gcn"})
    assert info.value.errors == {"model": "MODEL must be one of nsm, flat (got 'gcn')"}


def test_a_flat_run_trains_evaluates_traces_and_sits_beside_an_nsm_run(store: RunStore) -> None:
    from nsm.data.sample_view import render_sample
    from nsm.training.evaluation import evaluate_checkpoint
    from nsm.training.sample_trace import trace_sample

    nsm_run = store.create_run(tiny_config(**SMALL), name="hier")
    flat_run = store.create_run(tiny_config(**SMALL, model="flat"), name="flat")
    assert Trainer(nsm_run).run() == "finished"
    assert Trainer(flat_run).run() == "finished"

    flat_start = next(e for e in flat_run.events() if e["type"] == "run_started")
    nsm_start = next(e for e in nsm_run.events() if e["type"] == "run_started")
    assert flat_start["config"]["model"] == "flat" and flat_start["params"] != nsm_start["params"]
    flat_epochs = [e for e in flat_run.events() if e["type"] == "epoch_end"]
    assert flat_epochs and all(e["cycle_loss"] == 0 for e in flat_epochs), "the flat reference has no cycle loss"

    # Evaluating a flat checkpoint builds the flat model (an NSM would not fit its weights).
    result = evaluate_checkpoint(flat_run, "checkpoint_epoch_2.pt", device="cpu", reuse=False)
    assert 0.0 <= result["acc"] <= 1.0

    # The sample trace says a flat model pools nothing, instead of listing levels.
    view = trace_sample(flat_run.path / "checkpoint_epoch_2.pt", 0)
    assert view.trace is not None and view.trace.model == "flat"
    text = "\n".join(render_sample(view, 100))
    assert "Pooling: none (MODEL=flat" in text and "level 2" not in text
    nsm_text = "\n".join(render_sample(trace_sample(nsm_run.path / "checkpoint_epoch_2.pt", 0), 100))
    assert "level 2:" in nsm_text and "level 3:" in nsm_text

    comparison = build_comparison([nsm_run, flat_run])
    columns, rows = metrics_table(comparison)
    assert [r[columns.index("model")] for r in rows] == ["nsm", "flat"]
    assert [r[columns.index("threads")] for r in rows] == [1, 1]
    assert comparison.differences["model"] == {nsm_run.ref: "nsm", flat_run.ref: "flat"}


def test_same_config_seed_and_threads_give_identical_numbers(store: RunStore) -> None:
    a = store.create_run(tiny_config(**SMALL), name="first")
    b = store.create_run(tiny_config(**SMALL), name="second")
    assert Trainer(a).run() == "finished"
    assert Trainer(b).run() == "finished"
    train, val = metric_rows(a.events())
    assert train and val
    assert (train, val) == metric_rows(b.events())
    assert a.state().threads == b.state().threads == 1

    # Resumed with the count it trained with: no warning, and the same numbers again.
    discard_future(b, 1, 0)
    seen = len(b.events())
    assert Trainer(b, resume_from=b.path / "checkpoint_epoch_1.pt", threads=1).run() == "finished"
    assert not [e for e in b.events()[seen:] if e["type"] == "log" and "torch thread" in str(e.get("message"))]
    assert metric_rows(b.events()) == (train, val)


def test_resuming_an_old_checkpoint_with_another_thread_count_warns(store: RunStore) -> None:
    # Few steps: two threads on a shared small box are slow.
    run = store.create_run(tiny_config(**SMALL, batch_size=16), name="threads")
    assert Trainer(run).run() == "finished"

    # A checkpoint from before MODEL and the thread count were recorded: it still
    # resumes as an nsm run, and the count it trained with comes from the log.
    ckpt = run.path / "checkpoint_epoch_1.pt"
    blob = load_checkpoint(ckpt)
    blob.pop("threads")
    del blob["config"]["model"]
    save_checkpoint(ckpt, {k: v for k, v in blob.items() if k not in ("format", "version")})

    discard_future(run, 1, 0)
    seen = len(run.events())
    assert Trainer(run, resume_from=ckpt, threads=2).run() == "finished"
    after = run.events()[seen:]
    warnings = [e for e in after if e["type"] == "log" and e["level"] == "warning" and "torch thread" in e["message"]]
    assert [w["message"] for w in warnings] == [
        "resumed with 2 torch threads; the run trained with 1 so far: numbers will not match a run trained with one count"
    ]
    assert run.state().threads == 2

    rewritten = load_checkpoint(run.path / "checkpoint_epoch_2.pt")
    assert rewritten["threads"] == 2 and rewritten["config"]["model"] == "nsm"
