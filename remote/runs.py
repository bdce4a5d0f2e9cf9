"""The local side of a Modal run: its folder in the local store and `remote.json`.

A Modal run has the same folder locally as a local run (config.json, the
mirrored events.jsonl, downloaded files), plus `remote.json`:
{"function_call_id", "app", "gpu", "volume", "volume_path", "partition",
"launch_id", "mode", "started", ...}. Its presence is what makes `nsm-tui
stop`, `resume` and `attach` take the Modal path.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from nsm.atomic import atomic_write_json
from nsm.config import RunConfig
from nsm.runs import Run, RunStore, RunStoreError
from remote import config as rc
from remote.errors import NotARemoteRun


def modal_config(config: RunConfig, gpu: str) -> RunConfig:
    return config.replace(backend="modal", gpu=gpu)


def create_local_run(store: RunStore, config: RunConfig, name: str | None, gpu: str, mode: str) -> Run:
    """The local folder that mirrors a new Modal run (RunStore errors propagate)."""
    return adopt_local_run(store.create_run(modal_config(config, gpu), name=name), gpu, mode)


def adopt_local_run(run: Run, gpu: str, mode: str) -> Run:
    """Make an existing local run that never started (a sweep's pending point)
    a Modal run: its config says so, and it gets a remote.json."""
    if run.events():
        raise RunStoreError(f"run {run.ref} has already started; only a run that never ran can move to Modal")
    atomic_write_json(run.config_path, modal_config(run.run_config(), gpu).to_dict())
    launch_id = uuid.uuid4().hex
    write_remote_info(
        run,
        {
            "function_call_id": None,
            "app": rc.APP_NAME,
            "gpu": gpu,
            "volume": rc.VOLUME_NAME,
            "volume_path": rc.mounted_run_path(run.domain, run.name),
            "partition": rc.partition_key(run.domain, run.name, launch_id),
            "launch_id": launch_id,
            "mode": mode,
            "started": time.time(),
        },
    )
    return run


def write_remote_info(run: Run, info: dict[str, Any]) -> None:
    atomic_write_json(run.remote_path, info)


def update_remote_info(run: Run, **changes: Any) -> dict[str, Any]:
    info = dict(remote_info(run))
    info.update(changes)
    write_remote_info(run, info)
    return info


def remote_info(run: Run) -> dict[str, Any]:
    """remote.json with every key the client relies on (filled from the run's name if missing)."""
    info = run.remote_info()
    if info is None:
        raise NotARemoteRun(f"run {run.ref} is not a Modal run (it has no remote.json)")
    info = dict(info)
    info.setdefault("partition", rc.partition_key(run.domain, run.name, info.get("launch_id")))
    info.setdefault("volume_path", rc.mounted_run_path(run.domain, run.name))
    info.setdefault("gpu", rc.DEFAULT_GPU)
    return info


def volume_rel_path(info: dict[str, Any], run: Run) -> str:
    """The run folder relative to the volume root (what Volume.listdir/read_file take)."""
    path = str(info.get("volume_path") or rc.mounted_run_path(run.domain, run.name))
    prefix = rc.MOUNT.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path.lstrip("/")


def launch_request(
    run: Run,
    config: dict[str, Any],
    *,
    launch_id: str,
    gpu: str,
    resume: str | None = None,
    min_next_seq: int = 0,
    lease_owner: str | None = None,
) -> dict[str, Any]:
    return {
        "config": dict(config),
        "run": run.name,
        "launch_id": launch_id,
        "resume": resume,
        "min_next_seq": int(min_next_seq),
        "gpu": gpu,
        "lease_owner": lease_owner,
    }
