"""Starting, resuming and stopping Modal runs: what the CLI and the TUI call.

Order of a launch: check the token and find the app (fails fast, before
anything is created), create the local run folders, spawn (or stream), record
the function call ids in remote.json. A launch that fails before Modal took
it removes the local folders it made, so a failed start leaves nothing behind.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from nsm.config import RunConfig
from nsm.runs import Run, RunStore
from remote import config as rc
from remote.client import ModalClient
from remote.errors import ModalError, NotARemoteRun
from remote.follow import RunFollower
from remote.mirror import mirror_running, start_mirror_process
from remote.runs import (
    adopt_local_run,
    create_local_run,
    launch_request,
    remote_info,
    update_remote_info,
    volume_rel_path,
)

if TYPE_CHECKING:
    from nsm.execution.rules import ResumePlan


@dataclass
class Prepared:
    run: Run
    request: dict[str, Any]
    created: bool = True  # made by this launch (a failed launch removes it); else an adopted run


def prepare_runs(
    client: ModalClient,
    store: RunStore,
    configs: Sequence[RunConfig],
    *,
    gpu: str,
    names: Sequence[str | None] | None = None,
    mode: str,
) -> list[Prepared]:
    """Resolve the app (token, reachability) and create the local folders."""
    client.functions()
    names = list(names) if names is not None else [None] * len(configs)
    prepared: list[Prepared] = []
    try:
        for config, name in zip(configs, names):
            run = create_local_run(store, config, name, gpu, mode)
            info = remote_info(run)
            prepared.append(
                Prepared(run, launch_request(run, run.config(), launch_id=info["launch_id"], gpu=gpu))
            )
    except BaseException:
        discard(prepared)
        raise
    return prepared


def prepare_existing(client: ModalClient, runs: Sequence[Run], *, gpu: str, mode: str = "detached") -> list[Prepared]:
    """Runs already in the store that never started (a sweep's points) become
    Modal runs, ready to spawn."""
    client.functions()
    prepared = []
    for run in runs:
        adopt_local_run(run, gpu, mode)
        info = remote_info(run)
        prepared.append(
            Prepared(run, launch_request(run, run.config(), launch_id=info["launch_id"], gpu=gpu), created=False)
        )
    return prepared


def discard(prepared: Sequence[Prepared]) -> None:
    """Undo launches Modal never took: remove the folders this launch created
    (if still without events); an adopted run only loses its remote.json."""
    for p in prepared:
        if not p.run.exists() or p.run.events():
            continue
        if p.created:
            shutil.rmtree(p.run.path, ignore_errors=True)
        else:
            p.run.remote_path.unlink(missing_ok=True)


def spawn_prepared(
    client: ModalClient, prepared: Sequence[Prepared], *, gpu: str, max_parallel: int | None = None,
    start_mirrors: bool = True,
) -> list[Run]:  # fmt: skip
    """Spawn every prepared run (detached); start a local mirror process per run."""
    try:
        ids = client.spawn([p.request for p in prepared], gpu, max_parallel=max_parallel)
    except BaseException:
        discard(prepared)
        raise
    runs = []
    for p, call_id in zip(prepared, ids):
        update_remote_info(p.run, function_call_id=call_id, mode="detached")
        if start_mirrors:
            start_mirror_process(p.run)
        runs.append(p.run)
    return runs


def launch_detached(
    client: ModalClient,
    store: RunStore,
    configs: Sequence[RunConfig],
    *,
    gpu: str,
    names: Sequence[str | None] | None = None,
    max_parallel: int | None = None,
    start_mirrors: bool = True,
) -> list[Run]:
    prepared = prepare_runs(client, store, configs, gpu=gpu, names=names, mode="detached")
    return spawn_prepared(client, prepared, gpu=gpu, max_parallel=max_parallel, start_mirrors=start_mirrors)


# ---------------------------------------------------------------- resume


def plan_on_volume(client: ModalClient, run: Run, checkpoint: str | None = None) -> "ResumePlan":
    """nsm.execution's resume rules (NotResumable / RunLocked say why not) against the
    checkpoints on the volume; ModalError for Modal's part."""
    from nsm.execution.rules import plan_resume

    folder = volume_rel_path(remote_info(run), run)
    files = {e.path.rsplit("/", 1)[-1] for e in client.listdir(folder)}
    if not files:
        raise ModalError(f"run {run.name} has no folder on the volume {rc.VOLUME_NAME} ({folder}); nothing to resume")
    return plan_resume(run, checkpoint, available=files)


def resume_request(
    client: ModalClient, run: Run, checkpoint: str | None = None, *, plan: "ResumePlan | None" = None
) -> dict[str, Any]:
    """A launch request that continues `run` on Modal from `checkpoint` (a file
    of the run on the volume) or its latest checkpoint; `plan` when the rules
    were already applied (the volume is not listed again)."""
    plan = plan or plan_on_volume(client, run, checkpoint)
    info = remote_info(run)
    checkpoint = plan.file if plan.explicit else None
    gpu = str(info.get("gpu") or rc.DEFAULT_GPU)
    # Events of the last launch that never reached this copy come first; the new launch numbers after them.
    next_seq = RunFollower(run, client).catch_up()
    launch_id = uuid.uuid4().hex
    update_remote_info(
        run,
        launch_id=launch_id,
        partition=rc.partition_key(run.domain, run.name, launch_id),
        function_call_id=None,
        cancelled=False,
        ended=None,
        outcome=None,
    )
    return launch_request(
        run, run.config(), launch_id=launch_id, gpu=gpu, resume=checkpoint or "latest", min_next_seq=next_seq
    )


# ------------------------------------------------------------------ stop


def stop_run(client: ModalClient, run: Run, *, hard: bool = False) -> str:
    """Ask a Modal run to stop (the flag the engine polls), or cancel its call
    (`hard`: no final checkpoint). Returns what was done, for the user."""
    info = remote_info(run)
    if hard:
        call_id = info.get("function_call_id")
        if not call_id:
            raise ModalError(f"run {run.name} has no recorded function call to cancel (was its launch cut off?)")
        update_remote_info(run, cancelled=True)  # before the call ends, so its follower reads it
        try:
            client.cancel(call_id)
        except BaseException:
            update_remote_info(run, cancelled=False)
            raise
        return f"cancelled the Modal call of {run.name}; it resumes from its last committed checkpoint"
    client.set_stop(info["partition"], True)
    return f"asked {run.name} to stop at its next step (a checkpoint is saved and committed)"


def ensure_mirror(run: Run) -> int | None:
    """Start a mirror process for a Modal run that is not mirrored yet and has not ended."""
    if run.remote_info() is None:
        raise NotARemoteRun(f"run {run.ref} is not a Modal run")
    if mirror_running(run):
        return None
    info = run.remote_info() or {}
    if info.get("ended") and run.state().status is not None:
        return None
    return start_mirror_process(run)


def wait_for_terminal(run: Run, timeout: float, after_seq: int | None = None) -> dict[str, Any] | None:
    """The first terminal event after `after_seq` in the local log (written by a mirror), within `timeout`."""
    from nsm.execution.source import EventSource, follow

    start = run.state().last_seq if after_seq is None else after_seq
    return follow(EventSource(run.events_path, start + 1, condense=("progress", "gpu")), lambda _e: None, timeout=timeout)
