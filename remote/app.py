"""The Modal app `nsm-tui`: an image with CUDA torch + PyG + nsm, the checkpoint
volume, and two functions.

- `train` (spawned): the unchanged engine on a GPU (A100-40GB unless the
  client asks for another with `with_options(gpu=...)`), the run folder on
  the volume `nsm-checkpoints` at /checkpoints/<domain>/<run>/, committed
  after every periodic checkpoint and at the end; a per-attempt timeout and
  retries that resume from the latest committed checkpoint. Events go to a
  partition of the queue `nsm-tui-events`; the stop flag lives in the dict
  `nsm-tui-control`.
- `stream` (generator, no GPU): what an attached client iterates with
  `remote_gen`: it spawns `train` and relays its events as they arrive.

Deploy once with `modal deploy -m remote.app`; without a deployment the client
runs it as an ephemeral (detached) app. The app carries the hash of the source
it was deployed with (tag `nsm_code`, remote.codehash): a launch from a
checkout whose source differs is refused with a request to redeploy. Function bodies live in
remote/worker.py and remote/relay.py as plain functions, so tests run them without Modal.
"""

from __future__ import annotations

from typing import Any, Iterator

import modal

from remote import config as rc
from remote.codehash import CODE_TAG, code_hash

app = modal.App(rc.APP_NAME, tags={CODE_TAG: code_hash()})

volume = modal.Volume.from_name(rc.VOLUME_NAME, create_if_missing=True)

image = (
    modal.Image.debian_slim(python_version=rc.PYTHON_VERSION)
    .pip_install(*rc.TORCH_PACKAGES, index_url=rc.TORCH_INDEX_URL)
    .pip_install(*rc.IMAGE_PACKAGES)
    .env({"NSM_CACHE_DIR": rc.DATASET_CACHE, "PYTHONUNBUFFERED": "1"})
    # Local source last: editing nsm/ or remote/ rebuilds only this layer.
    .add_local_python_source(*rc.LOCAL_PACKAGES)
)

RETRIES = modal.Retries(
    max_retries=rc.MAX_RETRIES,
    initial_delay=rc.RETRY_INITIAL_DELAY_S,
    backoff_coefficient=2.0,
)

TRAIN_OPTIONS: dict[str, Any] = {
    "image": image,
    "gpu": rc.DEFAULT_GPU,
    "volumes": {rc.MOUNT: volume},
    "timeout": rc.attempt_timeout_s(),
    "retries": RETRIES,
    # A fresh container per attempt: its mount is the volume as last committed, never a warm
    # container's older view (the worker reloads as well).
    "single_use_containers": True,
}

# The relay lives as long as the run it follows (all attempts), on a fraction of a CPU.
STREAM_OPTIONS: dict[str, Any] = {
    "image": image,
    "timeout": 24 * 3600,
    "cpu": 0.25,
}


@app.function(**TRAIN_OPTIONS)
def train(request: dict[str, Any]) -> dict[str, Any]:
    from remote.worker import run_in_container

    return run_in_container(request, modal, volume, rc.MOUNT)


@app.function(**STREAM_OPTIONS)
def stream(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from remote.relay import relay_in_container

    yield from relay_in_container(request, modal, train)
