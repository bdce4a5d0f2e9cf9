"""The Modal backend against a fake that fails like Modal: per-container views of
the volume (changed only by reload / commit), warm containers with stale views,
background commits, retries and pre-emption, the deployed code's hash, and the
ephemeral app."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nsm.runs import Run, RunStore
from remote import config as rc
from remote.client import ModalClient
from remote.codehash import CODE_TAG, compute_code_hash
from remote.errors import DeployedCodeDiffers
from remote.launch import launch_detached
from tests.training.helpers import tiny_config

from fake_modal import FakeModal, VolumeView
from remote_fixtures import (  # noqa: F401  (fixtures)
    _fast_remote_timings,
    _no_modal_env,
    assert_mirrored_exactly,
    client,
    fake,
    follower,
    store,
    volume_events,
)


def _request(name: str, launch_id: str, resume: str | None = None, **config: Any) -> dict[str, Any]:
    return {
        "config": tiny_config(backend="modal", **config).to_dict(), "run": name, "launch_id": launch_id,
        "resume": resume, "min_next_seq": 0,
    }  # fmt: skip


def _stop_at(fake: FakeModal, request: dict[str, Any], epoch: int) -> dict[str, Any]:
    """Trainer options that set the launch's stop flag when `epoch` begins (the user presses stop)."""
    key = rc.stop_key(rc.partition_key(request["config"]["domain"], request["run"], request["launch_id"]))

    def on_step(e: int, step: int) -> None:
        if e == epoch and step == 0:
            fake.dict.data[key] = True
            time.sleep(0.2)  # the container polls the flag every 50 ms

    return {"on_step": on_step}


def _assert_gapless_without_duplicates(events: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in events] == list(range(len(events)))


# ------------------------------------------------------------------ the views


def test_a_container_sees_other_commits_only_after_a_reload_and_not_with_a_file_open(fake: FakeModal) -> None:
    a, b = VolumeView(fake, fake.root / "a"), VolumeView(fake, fake.root / "b")
    (a.path / "f.txt").write_text("from a")
    assert not (fake.committed / "f.txt").exists(), "uncommitted writes stay in the container"
    a.commit()
    assert (fake.committed / "f.txt").read_text() == "from a"
    assert not (b.path / "f.txt").exists(), "another container's view is a snapshot"
    with open(b.path / "mine.txt", "w") as handle:
        with pytest.raises(RuntimeError, match="open files"):
            b.reload()
        handle.write("b's own")
    b.reload()
    assert (b.path / "f.txt").read_text() == "from a"
    assert (b.path / "mine.txt").read_text() == "b's own", "a reload keeps uncommitted changes"
    (a.path / "f.txt").unlink()
    a.commit()
    assert not (fake.committed / "f.txt").exists(), "a committed deletion reaches the volume"


def test_a_warm_container_reloads_before_it_resumes_a_run(fake: FakeModal) -> None:
    """Container A stops the run at epoch 1 and stays warm; a fresh container B takes it on
    to epoch 2. A resume that lands on A again must see B's work, not A's old view."""
    first = _request("warm", "l1", epochs=4)
    fake.trainer_options = _stop_at(fake, first, 2)
    fake.reuse_containers = True
    assert fake.run_container(first, None)["outcome"] == "interrupted"
    container_a = fake.warm[0]

    fake.reuse_containers = False  # B: a new container
    second = _request("warm", "l2", resume="latest", epochs=4)
    fake.trainer_options = _stop_at(fake, second, 3)
    assert fake.run_container(second, None)["outcome"] == "interrupted"
    b_checkpoints = sorted(p.name for p in (fake.committed / "planning" / "warm").glob("checkpoint_epoch_2_step_*.pt"))
    assert b_checkpoints and not list((container_a.view.path / "planning" / "warm").glob("checkpoint_epoch_2_*")), \
        "A's view is stale"

    fake.reuse_containers = True
    fake.trainer_options = {}
    third = _request("warm", "l3", resume="latest", epochs=4)
    assert fake.run_container(third, None)["outcome"] == "finished"
    assert container_a.inputs == 2, "the third attempt ran in the warm container"
    events = volume_events(fake, Run(fake.committed / "planning" / "warm"))
    _assert_gapless_without_duplicates(events)
    resumed = [e for e in events if e["type"] == "resumed"]
    assert [e["epoch"] for e in resumed] == [1, 2] and resumed[-1]["checkpoint"] == b_checkpoints[-1], \
        "the third attempt resumed from B's checkpoint"
    assert fake.volume.temp_files() == []


def test_every_ending_is_committed(fake: FakeModal) -> None:
    request = _request("ends", "l1", epochs=1)
    fake.trainer_options = {"on_step": lambda e, s: (_ for _ in ()).throw(RuntimeError("boom")) if s == 2 else None}
    assert fake.run_container(request, None)["outcome"] == "failed"
    events = volume_events(fake, Run(fake.committed / "planning" / "ends"))
    assert events[-1]["type"] == "failed" and "boom" in events[-1]["error"], "the failure reached the volume"
    fake.trainer_options = {}
    assert fake.run_container(request, None)["outcome"] == "finished"  # Modal's retry of that launch
    # Another retry ends at once (the run is finished); that ending is committed too.
    assert fake.run_container(request, None)["outcome"] == "finished"
    marker = json.loads((fake.committed / "planning" / "ends" / "remote_launch.json").read_text())
    assert marker["attempts"] == 3
    assert fake.volume.temp_files() == []


# ------------------------------------------------------- retries, pre-emption


def test_a_graceful_preemption_resumes_from_its_checkpoint_without_spending_a_retry(
    fake: FakeModal, client: ModalClient, store: RunStore
) -> None:
    fake.preempt(2, 1, graceful=True)
    run = launch_detached(client, store, [tiny_config()], gpu="A100-40GB", start_mirrors=False)[0]
    result = follower(run, client).follow()
    assert result.outcome == "finished", result
    call = fake.calls[run.remote_info()["function_call_id"]]
    assert (call.attempts, call.retries_used, call.internal_failures) == (2, 0, 1), "the retry was free"
    assert len(fake.containers) == 2, "the retry ran in a fresh container"
    events = run.events()
    interrupted = next(e for e in events if e["type"] == "interrupted")
    resumed = next(e for e in events if e["type"] == "resumed")
    assert resumed["checkpoint"] == interrupted["checkpoint"] and resumed["seq"] > interrupted["seq"]
    assert run.history()["epochs"] == [1, 2, 3]
    assert_mirrored_exactly(fake, run)
    assert fake.volume.temp_files() == []


def test_a_hard_preemption_after_a_background_commit_leaves_no_temp_file_and_no_gap(
    fake: FakeModal, client: ModalClient, store: RunStore
) -> None:
    fake.trainer_options = {"on_step": lambda e, s: time.sleep(0.3) if (e, s) == (3, 0) else None}
    fake.preempt(3, 1, graceful=False, background_commit=True)
    run = launch_detached(client, store, [tiny_config()], gpu="A100-40GB", start_mirrors=False)[0]
    result = follower(run, client).follow()
    assert result.outcome == "finished", result
    call = fake.calls[run.remote_info()["function_call_id"]]
    assert (call.attempts, call.retries_used) == (2, 0)
    assert fake.volume.temp_files() == [], "the half-written checkpoint the background commit caught is gone"
    events = volume_events(fake, run)
    _assert_gapless_without_duplicates(events)
    resumed = next(e for e in events if e["type"] == "resumed")
    assert resumed["checkpoint"] == "checkpoint_epoch_2.pt"
    assert run.history()["epochs"] == [1, 2, 3]
    assert_mirrored_exactly(fake, run)


def test_an_exception_spends_a_retry_each_time_and_the_last_one_fails_the_call(
    fake: FakeModal, client: ModalClient, store: RunStore
) -> None:
    fake.container_error = RuntimeError("CUDA error: an illegal memory access was encountered")
    run = launch_detached(client, store, [tiny_config()], gpu="A100-40GB", start_mirrors=False)[0]
    result = follower(run, client).follow()
    assert result.outcome == "failed" and "illegal memory access" in (result.error or "")
    call = fake.calls[run.remote_info()["function_call_id"]]
    assert (call.attempts, call.retries_used) == (1 + fake.max_retries, fake.max_retries)


# -------------------------------------------------------------- deployed code


def test_code_hash_covers_the_shipped_source_and_nothing_else(tmp_path: Path) -> None:
    for package in rc.LOCAL_PACKAGES:
        (tmp_path / package / "sub").mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "sub" / "m.py").write_text("x = 1\n")
    before = compute_code_hash(tmp_path)
    (tmp_path / "nsm" / "notes.md").write_text("not shipped")
    (tmp_path / "nsm" / "__pycache__").mkdir()
    (tmp_path / "nsm" / "__pycache__" / "m.py").write_text("cache")
    assert compute_code_hash(tmp_path) == before
    (tmp_path / "remote" / "sub" / "m.py").write_text("x = 2\n")
    assert compute_code_hash(tmp_path) != before


@pytest.mark.parametrize("tags", [{CODE_TAG: "0123456789abcdef"}, {}], ids=["other code", "no tag"])
def test_a_deployed_app_with_other_code_is_refused_before_anything_is_made(
    fake: FakeModal, client: ModalClient, store: RunStore, tags: dict[str, str]
) -> None:
    fake.deployed_tags = tags
    with pytest.raises(DeployedCodeDiffers) as caught:
        launch_detached(client, store, [tiny_config()], gpu="A100-40GB", start_mirrors=False)
    message = str(caught.value)
    assert "`modal deploy -m remote.app`" in message and "NSM_MODAL_APP=ephemeral" in message
    assert "\n" not in message and (tags.get(CODE_TAG, "no code tag") in message)
    assert not [op for op in fake.ops if op[0] == "spawn"] and store.refs() == []


def test_the_app_carries_the_hash_of_this_checkout() -> None:
    from modal._utils.async_utils import synchronizer

    import remote.app as modal_app
    from remote.codehash import code_hash

    assert synchronizer._translate_in(modal_app.app)._local_state.tags == {CODE_TAG: code_hash()}


# -------------------------------------------------------------- ephemeral app


def test_ephemeral_launches_from_two_threads_share_one_detached_app_and_outlive_it(
    fake: FakeModal, store: RunStore
) -> None:
    fake.deployed = False
    quick = ModalClient(api=fake, app_module=fake.app_module, control_timeout=5.0, app_start_timeout=5.0)
    together = threading.Barrier(2, timeout=10)
    fake.on_spawn = together.wait  # both launches are inside the app at the same moment
    runs: list[Run] = []
    errors: list[BaseException] = []

    def launch(domain: str) -> None:
        try:
            runs.extend(launch_detached(quick, store, [tiny_config(domain=domain, epochs=1)], gpu="T4", start_mirrors=False))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=launch, args=(d,)) for d in ("planning", "kg")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(runs) == 2
    app = fake.app_module.app
    assert app.runs == 1 and app.detached is True and not app.running, "one app, left when the launches were done"
    for run in runs:
        assert follower(run, quick).follow().outcome == "finished", "the run outlived the launching app context"
