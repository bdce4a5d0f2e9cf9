from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

import nsm.runs.cache as cache_mod
import nsm.runs.store as store_mod
from nsm.config import RunConfig
from nsm.runs import EventLogWriter, RunStore, latest_state, make_event
from nsm.runs.events import encode_event

from .helpers import training_events


def test_listing_an_empty_or_missing_store(tmp_path: Path) -> None:
    assert RunStore(tmp_path / "nothing-here").list_runs() == []


def test_listing_shows_state_newest_first_and_filters_by_domain(store: RunStore, make_run, dead_pid: int) -> None:
    done = make_run("done", events=training_events(epochs=3, total=3, finish=True))
    broken = make_run("broken", domain="kg", events=training_events(epochs=2, total=10))
    broken.write_process_info(dead_pid, "process", "x")
    fresh = make_run("fresh", domain="causal")
    for i, run in enumerate((done, broken, fresh)):
        os.utime(run.config_path, (1000 + i, 1000 + i))
    rows = store.list_runs()
    # Runs with events sort by their start time (now), above a run that never started.
    assert {r.ref for r in rows[:2]} == {"planning/done", "kg/broken"} and rows[2].ref == "causal/fresh"
    by = {r.name: r for r in rows}
    assert by["done"].status == "finished"
    assert (by["done"].epoch, by["done"].epochs, by["done"].best_val_loss) == (3, 3, 1 / 3)
    assert by["done"].state.test_acc == 0.9 and by["done"].problem is None
    assert by["broken"].status == "stale" and (by["broken"].epoch, by["broken"].epochs) == (2, 10)
    assert by["fresh"].status == "created" and by["fresh"].epochs == 100  # from config.json
    assert by["fresh"].config["domain"] == "causal" and by["fresh"].created == 1002
    assert [r.name for r in store.list_runs(domain="kg")] == ["broken"]


def test_listing_survives_a_corrupt_config_and_bad_log_lines(store: RunStore, make_run) -> None:
    run = make_run("corrupt", events=training_events(epochs=1, finish=True))
    run.config_path.write_text("{not json")
    with open(run.events_path, "ab") as fh:
        fh.write(b"garbage line\n")
    missing = make_run("no-config")
    missing.config_path.unlink()
    by = {r.name: r for r in store.list_runs()}
    assert by["corrupt"].status == "finished"
    assert "not valid JSON" in by["corrupt"].problem and "1 unreadable line(s)" in by["corrupt"].problem
    assert by["corrupt"].config is None
    assert by["no-config"].problem == "config.json is missing"


def test_listing_ignores_stray_files_and_hidden_dirs(store: RunStore, make_run) -> None:
    make_run("real")
    (store.root / "README.txt").write_text("hello")
    (store.root / "planning" / "notes.txt").write_text("hi")
    (store.root / "planning" / ".deleting-old-1-2").mkdir()
    (store.root / ".trash").mkdir()
    assert [r.name for r in store.list_runs()] == ["real"]


def test_listing_skips_a_run_deleted_while_it_is_read(store: RunStore, make_run, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b", "c"):
        make_run(name, events=training_events(epochs=1))
    real = store_mod._summarize

    def deleting(run):
        if run.name == "b":
            shutil.rmtree(run.path)
        return real(run)

    monkeypatch.setattr(store_mod, "_summarize", deleting)
    assert sorted(r.name for r in store.list_runs()) == ["a", "c"]


def test_listing_skips_a_run_whose_read_fails_as_it_vanishes(store: RunStore, make_run, monkeypatch) -> None:
    for name in ("a", "b"):
        make_run(name)
    real = store_mod._summarize

    def vanishing(run):
        if run.name == "a":
            shutil.rmtree(run.path)
            raise FileNotFoundError(2, "No such file or directory", str(run.events_path))
        return real(run)

    monkeypatch.setattr(store_mod, "_summarize", vanishing)
    assert [r.name for r in store.list_runs()] == ["b"]


def test_listing_follows_a_growing_log_incrementally(store: RunStore, make_run, monkeypatch) -> None:
    run = make_run("growing", events=training_events(epochs=2, total=5))
    assert store.list_runs()[0].epoch == 2
    parsed: list[int] = []
    real_fold = cache_mod._fold
    monkeypatch.setattr(cache_mod, "_fold", lambda data, *a: (parsed.append(len(data)), real_fold(data, *a))[1])
    assert store.list_runs()[0].epoch == 2
    assert parsed == []  # unchanged: nothing re-read
    with EventLogWriter(run.events_path) as w:
        w.emit("epoch_end", epoch=3, loss=0.3, acc=0.9)
    assert store.list_runs()[0].epoch == 3
    assert len(parsed) == 1 and parsed[0] < 200  # only the new line
    # Replaced by a shorter log: read from scratch.
    run.events_path.write_bytes(encode_event(make_event(0, "run_started", epochs=5)))
    assert store.list_runs()[0].epoch == 0


def _write_fixture_run(root: Path, domain: str, name: str, log: bytes, config: bytes) -> None:
    path = root / domain / name
    path.mkdir(parents=True)
    (path / "config.json").write_bytes(config)
    (path / "events.jsonl").write_bytes(log)


def test_listing_200_runs_is_fast_and_cached(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "big"
    # 100 epochs, validated every 5th, with progress and GPU samples: ~1000 lines a run.
    pairs = training_events(epochs=100, total=100, progress=8, finish=True)
    pairs = [p for p in pairs if p[0] != "eval" or p[1]["epoch"] % 5 == 0]
    pairs[1:1] = [("gpu", {"sample": {"util": 50, "mem_used_mb": 1000.0}})] * 100
    log = b"".join(encode_event(make_event(i, kind, **payload)) for i, (kind, payload) in enumerate(pairs))
    config = json.dumps(RunConfig().to_dict()).encode()
    domains = ("planning", "causal", "kg")
    for i in range(200):
        _write_fixture_run(root, domains[i % 3], f"run-{i:03d}", log, config)
    store = RunStore(root)

    t0 = time.perf_counter()
    rows = store.list_runs()
    first = time.perf_counter() - t0
    assert len(rows) == 200 and all(r.status == "finished" and r.epoch == 100 and r.best_val_loss == 0.01 for r in rows)
    assert first < 1.0, f"first listing of 200 runs took {first:.2f}s"

    folds: list[int] = []
    real_fold = cache_mod._fold
    monkeypatch.setattr(cache_mod, "_fold", lambda data, *a: (folds.append(1), real_fold(data, *a))[1])
    t0 = time.perf_counter()
    again = store.list_runs()
    second = time.perf_counter() - t0
    assert [r.ref for r in again] == [r.ref for r in rows]
    assert folds == []
    assert second < 0.5, f"cached listing of 200 runs took {second:.2f}s"


def test_the_listing_summary_agrees_with_a_full_parse(make_run) -> None:
    pairs = training_events(epochs=4, total=9, progress=3)
    pairs += [
        ("gpu", {"sample": {"type": "eval", "epoch": 99}}),  # a "type" inside a payload
        ("log", {"level": "info", "message": '"type":"failed"'}),
        ("log", {"level": "error", "message": "loss is nan"}),
        ("checkpoint", {"epoch": 4, "step": 2, "file": "checkpoint_epoch_4_step_2.pt", "kind": "interrupt"}),
        ("interrupted", {"epoch": 4, "step": 2, "checkpoint": "checkpoint_epoch_4_step_2.pt", "reason": "user"}),
        # An odd envelope ("t" is not a plain number): read the slow way.
        ("resumed", {"checkpoint": "checkpoint_epoch_2.pt", "epoch": 2, "config": {"epochs": 9}, "t": float("inf")}),
        ("progress", {"epoch": 3, "step": 1, "steps": 3}),
    ]  # fmt: skip
    run = make_run("mixed", events=pairs)
    full = latest_state(run.events())
    assert run.state() == full
    assert (full.status, full.epoch, full.epochs, full.best_epoch, full.attempts) == (None, 2, 9, 2, 2)
    assert full.last_seq == len(pairs) - 1

    # The same log written by another JSON writer (spaces after separators).
    other = make_run("foreign")
    other.events_path.write_text("".join(json.dumps(e) + "\n" for e in run.events()))
    assert other.state() == full
