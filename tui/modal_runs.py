"""Modal runs for the TUI: start, stop, resume, mirror, list and download.

A Modal run is mirrored into the local store (its events.jsonl grows as the
remote run emits), so the dashboard follows it exactly like a detached local
run: start it here, then attach to the returned Run. Every function below
makes network calls with deadlines (seconds, never minutes): call them from a
thread worker, not the event loop. Each raises `ModalError` (from
remote.errors) with a message fit for a notification; ModalNotConfigured
means no token (`modal setup`), ModalUnreachable a deadline that passed.

No textual here and no torch: the dashboard and the runs browser import it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

from nsm.config import RunConfig
from nsm.runs import Run, RunStore
from remote import config as rc
from remote.client import ModalClient
from remote.errors import ModalError, ModalNotConfigured, ModalUnreachable, MirrorBusy
from remote.follow import FollowControl, FollowResult, RunFollower
from remote.backend import ModalBackend, shared_client
from remote.launch import ensure_mirror, launch_detached, prepare_existing, spawn_prepared
from remote.mirror import mirror_running
from remote.volume import RemoteCheckpoint, RemoteRun, download_checkpoint, download_run, list_remote_runs
from remote.volume import remote_checkpoints as _remote_checkpoints

__all__ = [
    "MirrorThread",
    "ModalError",
    "ModalNotConfigured",
    "ModalUnreachable",
    "RemoteCheckpoint",
    "RemoteRun",
    "download_missing_checkpoints",
    "download_remote_checkpoint",
    "download_remote_run",
    "ensure_mirroring",
    "gpu_choices",
    "is_modal_run",
    "list_volume_runs",
    "price_line",
    "remote_checkpoints",
    "resume_modal_run",
    "start_existing_on_modal",
    "start_modal_run",
    "start_modal_runs",
    "stop_modal_run",
]

def client() -> ModalClient:
    """One client per process (handles to the queue, dict and volume are reused)."""
    return shared_client()


def is_modal_run(run: Run) -> bool:
    return run.remote_info() is not None


def gpu_choices() -> list[tuple[str, float]]:
    """(Modal GPU type, list price per hour) for a picker; DEFAULT_GPU first."""
    items = sorted(rc.GPU_PRICES_PER_HOUR.items(), key=lambda kv: kv[1])
    return sorted(items, key=lambda kv: kv[0] != rc.DEFAULT_GPU)


def price_line(gpu: str) -> str:
    """'H100: about $3.95 per GPU-hour (list price 2026-05)' or a note when unknown."""
    price = rc.price_per_hour(gpu)
    if price is None:
        return f"{gpu}: price unknown (see {rc.PRICING_URL})"
    return f"{gpu}: about ${price:.2f} per GPU-hour (list price {rc.PRICES_AS_OF}, {rc.PRICING_URL})"


def start_modal_runs(
    store: RunStore,
    configs: Sequence[RunConfig],
    *,
    gpu: str | None = None,
    names: Sequence[str | None] | None = None,
    max_parallel: int | None = None,
    modal: ModalClient | None = None,
    mirror: bool = True,
) -> list[Run]:
    """Create the local runs and spawn them on Modal (in parallel; at most
    `max_parallel` GPUs at once for a sweep). With `mirror`, a detached mirror
    process per run keeps its local events.jsonl growing: attach to the
    returned runs like to any detached run."""
    chosen = rc.gpu_choice(gpu or (configs[0].gpu if configs else None))
    return launch_detached(
        modal or client(), store, configs, gpu=chosen, names=names, max_parallel=max_parallel, start_mirrors=mirror
    )


def start_existing_on_modal(
    runs: Sequence[Run],
    *,
    gpu: str | None = None,
    max_parallel: int | None = None,
    modal: ModalClient | None = None,
    mirror: bool = True,
) -> list[Run]:
    """Send runs that are in the store but never started (a sweep's pending
    points) to Modal, in parallel with at most `max_parallel` GPUs at once."""
    m = modal or client()
    chosen = rc.gpu_choice(gpu or (runs[0].run_config().gpu if runs else None))
    prepared = prepare_existing(m, runs, gpu=chosen)
    return spawn_prepared(m, prepared, gpu=chosen, max_parallel=max_parallel, start_mirrors=mirror)


def start_modal_run(store: RunStore, config: RunConfig, *, gpu: str | None = None, name: str | None = None,
                    modal: ModalClient | None = None, mirror: bool = True) -> Run:  # fmt: skip
    return start_modal_runs(store, [config], gpu=gpu, names=[name], modal=modal, mirror=mirror)[0]


def stop_modal_run(run: Run, *, hard: bool = False, modal: ModalClient | None = None) -> str:
    """Cooperative stop (the engine saves a checkpoint and emits `interrupted`,
    which the mirror brings into the local log); `hard` cancels the call."""
    return ModalBackend(modal).stop(run, hard=hard)


def resume_modal_run(run: Run, checkpoint: str | None = None, *, modal: ModalClient | None = None,
                     mirror: bool = True) -> Run:  # fmt: skip
    """Continue a stopped Modal run on Modal (from `checkpoint` on the volume, or its latest)."""
    backend = ModalBackend(modal, mirror=mirror)
    backend.resume(backend.plan(run, checkpoint))
    return run


def ensure_mirroring(run: Run) -> bool:
    """Start the mirror process of a Modal run that nobody mirrors (after the
    TUI or the ssh link went away). True if one was started."""
    return ensure_mirror(run) is not None


def list_volume_runs(domain: str | None = None, *, modal: ModalClient | None = None) -> list[RemoteRun]:
    """Runs on the volume nsm-checkpoints, newest first (files, sizes, checkpoints)."""
    return list_remote_runs(modal or client(), domain)


def remote_checkpoints(run: Run, *, modal: ModalClient | None = None) -> list[RemoteCheckpoint]:
    """A Modal run's checkpoints on the volume (`.local` tells which are already here)."""
    return _remote_checkpoints(modal or client(), run)


def download_remote_checkpoint(run: Run, file: str, *, modal: ModalClient | None = None) -> Path:
    """Fetch one checkpoint into the run's local folder (then evaluate it like a local one)."""
    return download_checkpoint(modal or client(), run, file)


DOWNLOAD_DEADLINE_S = 900.0  # no new file is started after this long (each file has its own deadline too)


def download_missing_checkpoints(run: Run, *, on_file: Any = None, deadline_s: float = DOWNLOAD_DEADLINE_S,
                                 modal: ModalClient | None = None) -> tuple[list[str], list[str]]:  # fmt: skip
    """Fetch every checkpoint of a Modal run that is on the volume but not here, best first.
    `on_file(i, n, file)` is called before each. Returns (fetched, left): `left` are the ones
    not started because `deadline_s` passed. ModalError as the other calls (no token, unreachable)."""
    import time

    m = modal or client()
    if run.remote_info() is None:
        raise ModalError(f"run {run.ref} is a local run, not a Modal run: it has nothing on the volume")
    missing = [c.file for c in _remote_checkpoints(m, run) if not c.local]
    started = time.monotonic()
    fetched: list[str] = []
    for i, file in enumerate(missing):
        if time.monotonic() - started > deadline_s:
            return fetched, missing[i:]
        if on_file is not None:
            on_file(i + 1, len(missing), file)
        download_checkpoint(m, run, file)
        fetched.append(file)
    return fetched, []


def download_remote_run(store: RunStore, ref: str, *, checkpoints: Sequence[str] | None = None,
                        all_checkpoints: bool = False, modal: ModalClient | None = None) -> tuple[Run, list[str]]:  # fmt: skip
    return download_run(modal or client(), store, ref, checkpoints=checkpoints, all_checkpoints=all_checkpoints)


class MirrorThread:
    """Mirror a Modal run from a thread of this process (instead of a mirror
    process): for a TUI that wants the mirror to end with it, and for tests.
    `result` is set when the run ended or the mirror stopped."""

    def __init__(self, run: Run, *, modal: ModalClient | None = None, **follower_options: Any):
        self.run = run
        self.control = FollowControl()
        self.result: FollowResult | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._follower = RunFollower(run, modal or client(), control=self.control, **follower_options)
        self._thread = threading.Thread(target=self._main, name=f"mirror {run.ref}", daemon=True)

    def start(self) -> "MirrorThread":
        if mirror_running(self.run):
            raise MirrorBusy(f"run {self.run.name} is already mirrored by another process")
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self.result = self._follower.follow()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop mirroring (the remote run goes on)."""
        self.control.detach.set()
        self._thread.join(timeout)
