"""The client against a fake Modal: launching, live mirroring into the local
store, a dropped stream, re-attaching, expired queues, parallel domains, a
sweep's concurrency cap, stop, remote failures."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nsm.runs import Run, RunStore
from remote import config as rc
from remote.client import ModalClient
from remote.follow import DETACHED, FollowControl
from remote.launch import launch_detached, prepare_runs, stop_run
from tests.training.helpers import tiny_config

from fake_modal import FakeModal
from remote_fixtures import (  # noqa: F401  (fixtures)
    _fast_remote_timings,
    _no_modal_env,
    assert_mirrored_exactly,
    client,
    fake,
    follower,
    store,
)


def test_attached_run_streams_into_the_local_store(fake: FakeModal, client: ModalClient, store: RunStore) -> None:
    seen: list[int] = []
    prepared = prepare_runs(client, store, [tiny_config()], gpu="H100", mode="attached")[0]
    result = follower(prepared.run, client, on_event=lambda e: seen.append(e["seq"])).attach_stream(prepared.request)

    run = prepared.run
    assert result.outcome == "finished" and result.duplicates == 0
    assert_mirrored_exactly(fake, run)
    assert seen == [e["seq"] for e in run.events()], "every event reached the viewer once, in order"
    info = run.remote_info()
    assert info["function_call_id"] in fake.calls and info["gpu"] == "H100"
    assert ("remote_gen", {"run": run.name}) in fake.ops
    assert any(op == "spawn" and args.get("gpu") == "H100" for op, args in fake.ops if args)
    # Browsed like a local run: status, history, results and the best model are local.
    assert run.status() == "finished"
    assert run.history()["epochs"] == [1, 2, 3]
    assert run.results()["epochs_done"] == 3
    assert (run.path / "best_model.pt").exists()
    assert run.config()["backend"] == "modal" and run.config()["gpu"] == "H100"


def test_dropped_stream_reattaches_without_losing_or_repeating_events(
    fake: FakeModal, client: ModalClient, store: RunStore
) -> None:
    fake.drop_stream_after = 6  # the connection resets after six items
    notes: list[str] = []
    prepared = prepare_runs(client, store, [tiny_config()], gpu="A100-40GB", mode="attached")[0]
    result = follower(prepared.run, client, notes=notes).attach_stream(prepared.request)

    assert result.outcome == "finished"
    assert any("stream dropped" in n for n in notes), notes
    assert_mirrored_exactly(fake, prepared.run)


def test_reattach_after_the_local_process_died(fake: FakeModal, client: ModalClient, store: RunStore) -> None:
    fake.trainer_options = {"on_step": lambda epoch, step: time.sleep(0.02)}
    run = launch_detached(client, store, [tiny_config(epochs=4)], gpu="A100-40GB", start_mirrors=False)[0]
    partition = run.remote_info()["partition"]

    # First follower: gone after a few events (the terminal closed).
    control = FollowControl()

    def on_event(event: dict[str, Any]) -> None:
        if event["seq"] >= 4:
            control.detach.set()

    assert follower(run, client, on_event=on_event, control=control).follow().outcome == DETACHED
    got_before = len(run.events())
    # Events a dying follower took from the queue but never wrote: only the volume has them now.
    stolen = fake.queue.get_many(3, block=True, timeout=10, partition=partition)
    assert stolen

    result = follower(run, client).follow()
    assert result.outcome == "finished"
    assert len(run.events()) > got_before
    assert_mirrored_exactly(fake, run)


def test_expired_queue_falls_back_to_the_volume_log(fake: FakeModal, client: ModalClient, store: RunStore) -> None:
    run = launch_detached(client, store, [tiny_config()], gpu="A100-40GB", start_mirrors=False)[0]
    fake.calls[run.remote_info()["function_call_id"]].join(120)
    fake.queue.expire(run.remote_info()["partition"])  # nobody read it for a day

    result = follower(run, client).follow()
    assert result.outcome == "finished"
    assert result.from_volume == len(run.events())
    assert_mirrored_exactly(fake, run)


def test_missing_queue_is_reported_and_the_volume_log_used(fake: FakeModal, client: ModalClient, store: RunStore) -> None:
    run = launch_detached(client, store, [tiny_config()], gpu="A100-40GB", start_mirrors=False)[0]
    fake.queue_missing = True
    notes: list[str] = []
    result = follower(run, client, notes=notes).follow()
    assert result.outcome == "finished"
    assert any("following the volume's log instead" in n for n in notes)
    assert_mirrored_exactly(fake, run)


def test_three_domains_train_in_parallel(fake: FakeModal, client: ModalClient, store: RunStore) -> None:
    together = threading.Barrier(3)

    def meet(epoch: int, step: int) -> None:
        if epoch == 1 and step == 0:
            together.wait(timeout=120)  # breaks (and fails the run) unless all three run at once

    fake.trainer_options = {"on_step": meet}
    configs = [tiny_config(domain=d) for d in ("causal", "planning", "kg")]
    runs = launch_detached(client, store, configs, gpu="A100-40GB", start_mirrors=False)
    results: dict[str, str] = {}

    def follow(run: Run) -> None:
        results[run.domain] = follower(run, client).follow().outcome

    threads = [threading.Thread(target=follow, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert results == {"causal": "finished", "planning": "finished", "kg": "finished"}
    assert fake.max_containers_seen == 3
    for run in runs:
        assert_mirrored_exactly(fake, run)


def test_sweep_points_respect_the_concurrency_cap(fake: FakeModal, client: ModalClient, store: RunStore) -> None:
    pair = threading.Barrier(2)
    fake.trainer_options = {"on_step": lambda e, s: pair.wait(timeout=120) if (e, s) == (1, 0) else None}
    configs = [tiny_config(epochs=1, lr=lr) for lr in (1e-3, 2e-3, 3e-3, 4e-3)]
    runs = launch_detached(client, store, configs, gpu="T4", max_parallel=2, start_mirrors=False)
    for run in runs:
        assert follower(run, client).follow().outcome == "finished"
    assert fake.max_containers_seen == 2
    spawns = [args for op, args in fake.ops if op == "spawn"]
    assert len(spawns) == 4 and all(a["max_containers"] == 2 and a["gpu"] == "T4" for a in spawns)


def test_stop_through_the_flag_ends_with_an_interrupt_checkpoint(
    fake: FakeModal, client: ModalClient, store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rc, "STOP_POLL_S", 0.05)
    fake.trainer_options = {"on_step": lambda epoch, step: time.sleep(0.01)}
    prepared = prepare_runs(client, store, [tiny_config(epochs=30)], gpu="A100-40GB", mode="attached")[0]
    run = prepared.run
    asked = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "epoch_end" and not asked.is_set():
            asked.set()
            threading.Thread(target=stop_run, args=(client, run)).start()

    result = follower(run, client, on_event=on_event).attach_stream(prepared.request)
    assert result.outcome == "interrupted"
    end = run.events()[-1]
    assert end["type"] == "interrupted" and end["epoch"] < 30
    assert (fake.committed / run.domain / run.name / end["checkpoint"]).exists(), "the checkpoint was committed"
    assert_mirrored_exactly(fake, run)


def test_remote_exception_fails_the_run_with_its_summary(fake: FakeModal, client: ModalClient, store: RunStore) -> None:
    fake.container_error = RuntimeError("CUDA error: an illegal memory access was encountered\nstack...")
    prepared = prepare_runs(client, store, [tiny_config()], gpu="A100-40GB", mode="attached")[0]
    result = follower(prepared.run, client).attach_stream(prepared.request)
    assert result.outcome == "failed"
    assert "RuntimeError: CUDA error: an illegal memory access was encountered" in result.error
    assert prepared.run.status() == "failed"
    failed = prepared.run.events()[-1]
    assert failed["type"] == "failed" and failed["error_type"] == "remote"
    # The container log's tail is saved into the run folder and named in the message.
    saved = prepared.run.path / "modal_failure.log"
    assert str(saved) in failed["error"] and str(saved) in result.error and str(saved) in failed["hint"]
    assert "RuntimeError: CUDA error: an illegal memory access" in saved.read_text()


def test_launch_that_cannot_start_leaves_no_local_run(fake: FakeModal, store: RunStore) -> None:
    fake.hang = {"spawn"}
    client = ModalClient(api=fake, control_timeout=0.3, app_start_timeout=0.3)
    from remote.errors import ModalUnreachable

    with pytest.raises(ModalUnreachable):
        launch_detached(client, store, [tiny_config()], gpu="A100-40GB", start_mirrors=False)
    assert store.list_runs() == []


def test_hard_stop_cancels_the_recorded_call(fake: FakeModal, client: ModalClient, store: RunStore) -> None:
    fake.trainer_options = {"on_step": lambda epoch, step: time.sleep(0.01)}
    run = launch_detached(client, store, [tiny_config(epochs=30)], gpu="A100-40GB", start_mirrors=False)[0]
    call_id = run.remote_info()["function_call_id"]
    message = stop_run(client, run, hard=True)
    assert "cancelled" in message
    assert fake.calls[call_id].cancelled and run.remote_info()["cancelled"] is True
    result = follower(run, client).follow()
    assert result.outcome == "failed"
    end = run.events()[-1]
    assert end["type"] == "failed" and end["error_type"] == "cancelled"
    # Cancel kills: no cooperative stop, so no interrupt checkpoint reached the volume.
    assert not any(e["type"] == "interrupted" for e in run.events())
    assert not list((fake.committed / run.domain / run.name).glob("*_step_*.pt"))
    assert f"nsm-tui resume {run.name}" in end["hint"]


def test_workdir_and_committed_views_differ_until_commit(fake: FakeModal, tmp_path: Path) -> None:
    # The fake's volume must behave like Modal's: the client sees committed state only.
    (fake.work / "planning" / "x").mkdir(parents=True)
    (fake.work / "planning" / "x" / "events.jsonl").write_text("{}\n")
    assert not any(fake.committed.iterdir())
    fake.volume.commit()
    assert (fake.committed / "planning" / "x" / "events.jsonl").exists()


def test_resume_takes_what_the_last_launch_left_in_its_queue_first(
    fake: FakeModal, client: ModalClient, store: RunStore
) -> None:
    """Nobody followed the first launch: its events wait in its queue partition.
    The resumed launch gets a partition of its own and numbers after all of them."""
    from remote.launch import resume_request

    fake.trainer_options = {"on_step": lambda epoch, step: time.sleep(0.01)}
    run = launch_detached(client, store, [tiny_config(epochs=12)], gpu="A100-40GB", start_mirrors=False)[0]
    first = run.remote_info()
    stop_run(client, run)
    fake.calls[first["function_call_id"]].join(120)
    assert run.events() == [], "nothing was mirrored yet"

    fake.trainer_options = {}
    request = resume_request(client, run)
    local = run.events()
    assert local and local[-1]["type"] == "interrupted", "the old launch's events came in first"
    assert request["min_next_seq"] == local[-1]["seq"] + 1 and request["resume"] == "latest"
    second = run.remote_info()
    assert second["partition"] != first["partition"] and second["launch_id"] == request["launch_id"]
    (call_id,) = client.spawn([request], request["gpu"])
    from remote.runs import update_remote_info

    update_remote_info(run, function_call_id=call_id)
    assert follower(run, client).follow().outcome == "finished"
    assert_mirrored_exactly(fake, run)
    assert run.history()["epochs"] == list(range(1, 13))


def test_a_sweeps_pending_points_go_to_modal_with_a_cap(fake: FakeModal, client: ModalClient, store: RunStore) -> None:
    from nsm.sweeps import create_sweep
    from tui.modal_runs import start_existing_on_modal

    sweep = create_sweep(store, [tiny_config(epochs=1, cycle_weight=w) for w in (0.0, 0.01, 0.1)], name="cw")
    points = [store.get(p.run) for p in sweep.load().points]
    runs = start_existing_on_modal(points, gpu="L4", max_parallel=2, modal=client, mirror=False)
    assert [r.ref for r in runs] == [r.ref for r in points]
    for run in runs:
        assert follower(run, client).follow().outcome == "finished"
        assert run.config()["backend"] == "modal" and run.config()["gpu"] == "L4"
        assert_mirrored_exactly(fake, run)
    assert 1 <= fake.max_containers_seen <= 2
