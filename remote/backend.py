"""The Modal backend: nsm.execution's Backend for runs that train in a Modal function.

A Modal run is a local run folder with a `remote.json`; its events reach the
local `events.jsonl` through a mirror process, so `events()` is the same
EventSource as for any local run once a mirror runs. Every call here makes
network calls with deadlines (seconds): `slow` tells a UI to call it from a
worker thread. Errors: ModalError (remote.errors) for Modal's part, the
execution layer's NotResumable / RunLocked for the rules.
"""

from __future__ import annotations

import threading
from typing import Any

from nsm.execution.backend import MODAL, Backend, Execution, register_backend
from nsm.execution.rules import ResumePlan
from nsm.execution.source import EventSource
from nsm.runs import Run
from remote import config as rc
from remote.client import ModalClient
from remote.launch import ensure_mirror, plan_on_volume, prepare_existing, resume_request, spawn_prepared, stop_run
from remote.mirror import start_mirror_process
from remote.runs import update_remote_info

_client_lock = threading.Lock()
_shared: ModalClient | None = None


def shared_client() -> ModalClient:
    """One client per process (handles to the queue, dict and volume are reused)."""
    global _shared
    with _client_lock:
        if _shared is None:
            _shared = ModalClient()
        return _shared


class ModalBackend(Backend):
    name = MODAL
    slow = True

    def __init__(self, client: ModalClient | None = None, *, gpu: str | None = None, mirror: bool = True, **_: Any):
        self._client = client
        self.gpu = gpu
        self.mirror = mirror

    @property
    def client(self) -> ModalClient:
        return self._client or shared_client()

    def start(self, run: Run, *, threads: int | None = None) -> Execution:
        """Send a run that is in the store but never trained to Modal."""
        gpu = rc.gpu_choice(self.gpu or run.run_config().gpu)
        prepared = prepare_existing(self.client, [run], gpu=gpu)
        spawn_prepared(self.client, prepared, gpu=gpu, start_mirrors=self.mirror)
        return Execution(run, MODAL)

    def plan(self, run: Run, checkpoint: str | None = None) -> ResumePlan:
        """The resume rules, against the checkpoints on the volume."""
        return plan_on_volume(self.client, run, checkpoint)

    def resume(self, plan: ResumePlan, *, threads: int | None = None) -> Execution:
        run = plan.run
        request = resume_request(self.client, run, plan=plan)
        (call_id,) = self.client.spawn([request], request["gpu"])
        update_remote_info(run, function_call_id=call_id, mode="detached")
        if self.mirror:
            start_mirror_process(run)
        return Execution(run, MODAL, checkpoint=plan.file)

    def stop(self, run: Run, *, hard: bool = False, reason: str = "stop requested") -> str:
        message = stop_run(self.client, run, hard=hard)
        ensure_mirror(run)  # the run's last events must reach the local log
        return message

    def events(self, run: Run, from_seq: int = 0) -> EventSource:
        ensure_mirror(run)
        return super().events(run, from_seq)


def register() -> None:
    """Make `backend_for` able to answer "modal" in this process."""
    register_backend(MODAL, ModalBackend)


register()
