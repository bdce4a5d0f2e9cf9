"""The Modal app definition, inspected offline (no network, no token), and its
functions' bodies run locally through `Function.local()` with a temp folder
standing in for the volume."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

import remote.app as modal_app
from remote import config as rc
from tests.training.helpers import tiny_config

from fake_modal import FakeModal
from remote_fixtures import _fast_remote_timings  # noqa: F401  (autouse fixture)


def _raw(obj: Any) -> Any:
    from modal._utils.async_utils import synchronizer

    return synchronizer._translate_in(obj)


def _closure(raw: Any) -> dict[str, Any]:
    load = raw._load
    return dict(zip(load.__code__.co_freevars, [c.cell_contents for c in load.__closure__ or ()]))


def _image_layers(image: Any) -> list[dict[str, Any]]:
    """The image's layers from the top (last added) down to the base."""
    layers = []
    raw = _raw(image)
    while raw is not None:
        c = _closure(raw)
        layers.append(c)
        base = c.get("base_image")
        if base is None and c.get("base_images"):
            base = next(iter(c["base_images"].values()))
        raw = base
    return layers


def _dockerfile(layer: dict[str, Any]) -> list[str]:
    fn = layer.get("dockerfile_function")
    return fn("2025.06").commands if fn else []


def test_app_name_functions_and_shared_volume() -> None:
    assert _raw(modal_app.app)._name == rc.APP_NAME == "nsm-tui"
    train, stream = _raw(modal_app.train), _raw(modal_app.stream)
    assert train._tag == rc.TRAIN_FUNCTION and not train._is_generator
    assert stream._tag == rc.STREAM_FUNCTION and stream._is_generator
    assert _raw(train._app) is _raw(modal_app.app) and _raw(stream._app) is _raw(modal_app.app)
    volumes = train._spec.volumes
    assert list(volumes) == ["/checkpoints"] == [rc.MOUNT]
    assert _raw(volumes["/checkpoints"])._rep == "modal.Volume.from_name('nsm-checkpoints')"


def test_train_runs_on_an_a100_with_a_per_attempt_timeout_and_retries() -> None:
    train = _raw(modal_app.train)
    assert train._spec.gpus == "A100-40GB" == rc.DEFAULT_GPU
    options = _closure(train)
    assert options["timeout"] == rc.attempt_timeout_s() == 6 * 3600
    retry = options["retry_policy"]
    assert retry.retries == 3 and retry.initial_delay_ms == 10_000 and retry.backoff_coefficient == 2.0
    # Every attempt in a fresh container: its mount is the volume as last committed.
    assert options["single_use_containers"] is True
    # The stream relay needs no GPU and no volume; it lives as long as the run it follows.
    stream = _raw(modal_app.stream)
    assert stream._spec.gpus is None and not stream._spec.volumes
    assert _closure(stream)["timeout"] == 24 * 3600


def test_attempt_timeout_is_overridable_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSM_MODAL_TIMEOUT_S", "7200")
    assert rc.attempt_timeout_s() == 7200
    monkeypatch.setenv("NSM_MODAL_TIMEOUT_S", str(48 * 3600))
    assert rc.attempt_timeout_s() == 24 * 3600


def test_image_has_cuda_torch_pyg_and_nsm_added_last() -> None:
    layers = _image_layers(modal_app.image)
    top = layers[0]
    assert set(top) == {"base_image", "mount"}, "the local source is the last layer"
    assert _raw(modal_app.image)._added_python_source_set == frozenset({"nsm", "remote"})
    commands = [cmd for layer in layers for cmd in _dockerfile(layer)]
    torch = next(cmd for cmd in commands if "pip install" in cmd and "torch==" in cmd)
    # The CUDA 12.8 build: kernels for every GPU offered, B200 (sm_100) included.
    assert "torch==2.7.1+cu128" in torch and "--index-url https://download.pytorch.org/whl/cu128" in torch
    pip = next(cmd for cmd in commands if "pip install" in cmd and "torch-geometric==" in cmd)
    for package in ("torch-geometric==2.6.1", "numpy==2.4.6", "nvidia-ml-py==13.615.71"):
        assert package in pip
    for package in rc.IMAGE_PACKAGES + rc.TORCH_PACKAGES:
        assert "==" in package, f"{package} is not pinned"
    assert any(cmd.startswith("FROM python:3.11") for cmd in commands)
    assert any("NSM_CACHE_DIR" in cmd and "/checkpoints/.cache/datasets" in cmd for cmd in commands)
    # torch 2.7.1 is inside the project's range (torch>=2.4,<2.14).
    major, minor = (int(x) for x in rc.TORCH_VERSION.split(".")[:2])
    assert (2, 4) <= (major, minor) < (2, 14)


def test_gpu_choice_and_prices() -> None:
    assert rc.gpu_choice(None) == "A100-40GB"
    assert rc.gpu_choice("h100") == "H100" and rc.gpu_choice("a100") == "A100-40GB" and rc.gpu_choice("H100:1") == "H100"
    # A run trains on one GPU: more would be billed and sit idle.
    with pytest.raises(rc.GpuChoiceError, match="a run trains on one GPU: use H100"):
        rc.gpu_choice("H100:2")
    with pytest.raises(rc.GpuChoiceError, match="GPU must be one of T4, L4"):
        rc.gpu_choice("TPU")
    assert len(rc.partition_key("planning", "x" * 64, "f" * 32).encode()) <= 64
    assert rc.partition_key("kg", "a", "0123456789abcdef") == "kg/a@0123456789ab"


@pytest.fixture
def local_modal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeModal:
    """The app module's `modal`, volume and mount point swapped for the fake and a temp folder."""
    fake = FakeModal(tmp_path / "modal")
    monkeypatch.setattr(modal_app, "modal", fake)
    monkeypatch.setattr(modal_app, "volume", fake.volume)
    monkeypatch.setattr(rc, "MOUNT", str(fake.work))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*executing locally.*")
        yield fake
    fake.close()


def test_train_function_body_runs_locally_with_a_temp_volume(local_modal: FakeModal) -> None:
    request = {"config": tiny_config(backend="modal").to_dict(), "run": "local-1", "launch_id": "l1"}
    summary = modal_app.train.local(request)
    assert summary["outcome"] == "finished" and summary["attempt"] == 1
    assert (local_modal.committed / "planning" / "local-1" / "final_results.json").exists(), "committed at the end"
    partition = rc.partition_key("planning", "local-1", "l1")
    streamed = local_modal.queue.parts[partition]
    assert [e["seq"] for e in streamed] == list(range(summary["last_seq"] + 1))
    assert local_modal.dict.data[rc.high_water_key(partition)] == summary["last_seq"]


def test_stream_function_body_relays_the_spawned_run(local_modal: FakeModal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modal_app, "train", local_modal.functions["train"])  # the relay spawns through the fake
    request = {"config": tiny_config(backend="modal").to_dict(), "run": "local-2", "launch_id": "l2", "gpu": "L4"}
    items = list(modal_app.stream.local(request))
    assert items[0]["_nsm"] == "call" and items[0]["function_call_id"] in local_modal.calls
    events = [i for i in items if "seq" in i]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert items[-1]["_nsm"] == "result" and items[-1]["result"]["outcome"] == "finished"
    assert ("spawn", {"run": "local-2", "gpu": "L4"}) in local_modal.ops
