"""The runs and checkpoints on the volume `nsm-checkpoints`, and downloading them.

The volume holds runs in the run-store layout (`<domain>/<run>/`), so a run
downloaded into the local store is browsed, evaluated and compared like a
local one. A run that exists only on the volume (made from another machine)
is imported: its config, event log and result files first, checkpoints on
demand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from nsm.atomic import atomic_write_json
from nsm.runs import BEST_FILE, Run, RunStore, RunStoreError
from nsm.runs.checkpoints import parse_checkpoint_name
from nsm.runs.names import is_valid_run_name
from remote import config as rc
from remote.client import ModalClient, RemoteEntry
from remote.errors import ModalError
from remote.mirror import LocalMirror, MirrorLock
from remote.runs import remote_info, volume_rel_path

SMALL_FILES = ("training_history.json", "final_results.json", "evaluation_best_model.json")


@dataclass
class RemoteCheckpoint:
    file: str
    kind: str  # best / periodic / interrupt
    epoch: int | None
    step: int
    size: int
    mtime: float
    local: bool = False  # already downloaded


@dataclass
class RemoteRun:
    domain: str
    name: str
    files: dict[str, RemoteEntry] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.domain}/{self.name}"

    @property
    def size(self) -> int:
        return sum(e.size for e in self.files.values())

    @property
    def mtime(self) -> float:
        return max((e.mtime for e in self.files.values()), default=0.0)

    @property
    def finished(self) -> bool:
        return "final_results.json" in self.files

    def checkpoints(self) -> list[RemoteCheckpoint]:
        found = []
        for name, entry in self.files.items():
            parsed = parse_checkpoint_name(name)
            if parsed is None:
                continue
            kind, epoch, step = parsed
            found.append(RemoteCheckpoint(name, kind, epoch, step, entry.size, entry.mtime))
        found.sort(key=lambda c: (c.kind != "best", c.epoch if c.epoch is not None else -1, c.step))
        return found


def list_remote_runs(client: ModalClient, domain: str | None = None) -> list[RemoteRun]:
    """Every run folder on the volume (newest first): one listing per domain."""
    domains = [
        e.path.rsplit("/", 1)[-1]
        for e in client.listdir("/")
        if e.is_dir and is_valid_run_name(e.path.rsplit("/", 1)[-1])
    ]
    runs: dict[tuple[str, str], RemoteRun] = {}
    for d in sorted(domains):
        if domain is not None and d != domain:
            continue
        for entry in client.listdir(d, recursive=True):
            parts = entry.path.split("/")
            if len(parts) < 2 or parts[0] != d or not is_valid_run_name(parts[1]):
                continue
            run = runs.setdefault((d, parts[1]), RemoteRun(d, parts[1]))
            if len(parts) == 3 and not entry.is_dir:
                run.files[parts[2]] = entry
    return sorted(runs.values(), key=lambda r: (r.mtime, r.name), reverse=True)


def find_remote_run(client: ModalClient, ref: str) -> RemoteRun:
    domain, _, name = ref.rpartition("/")
    matches = [r for r in list_remote_runs(client, domain or None) if r.name == name]
    if not matches:
        raise ModalError(f"no run {ref!r} on the volume {rc.VOLUME_NAME} (list them with `nsm-tui runs list --remote`)")
    if len(matches) > 1:
        raise ModalError(f"run name {name!r} is in several domains on the volume; use domain/name")
    return matches[0]


def remote_checkpoints(client: ModalClient, run: Run) -> list[RemoteCheckpoint]:
    """The checkpoints of a Modal run on the volume, marked when a local copy exists."""
    folder = volume_rel_path(remote_info(run), run)
    entries = {e.path.rsplit("/", 1)[-1]: e for e in client.listdir(folder) if not e.is_dir}
    found = RemoteRun(run.domain, run.name, entries).checkpoints()
    for c in found:
        c.local = (run.path / c.file).exists()
    return found


def download_checkpoint(client: ModalClient, run: Run, file: str) -> Path:
    """Copy one checkpoint of a Modal run from the volume into its local folder."""
    if parse_checkpoint_name(file) is None:
        raise ModalError(f"{file} is not a checkpoint file name (best_model.pt or checkpoint_epoch_<N>[_step_<K>].pt)")
    folder = volume_rel_path(remote_info(run), run)
    dest = run.path / file
    if client.download(f"{folder}/{file}", dest) is None:
        names = ", ".join(c.file for c in remote_checkpoints(client, run)) or "none"
        raise ModalError(f"checkpoint {file} is not on the volume for run {run.name} (it has: {names})")
    return dest


def download_run(
    client: ModalClient,
    store: RunStore,
    ref: str,
    *,
    checkpoints: Sequence[str] | None = None,
    all_checkpoints: bool = False,
) -> tuple[Run, list[str]]:
    """Bring a run from the volume into the local store: its log (completed),
    result files, and checkpoints (`checkpoints`, all of them, or by default
    the best model). Returns the local run and the files fetched."""
    try:
        run: Run | None = store.get(ref)
    except RunStoreError:
        run = None
    if run is not None and run.remote_info() is None:
        raise ModalError(f"run {run.ref} is a local run, not a Modal run: it has nothing on the volume")
    if run is None:
        run = _import(client, store, find_remote_run(client, ref))
    folder = volume_rel_path(remote_info(run), run)
    entries = {e.path.rsplit("/", 1)[-1]: e for e in client.listdir(folder) if not e.is_dir}
    if not entries:
        raise ModalError(f"run {run.name} has no folder on the volume ({folder})")
    fetched = _complete_log(client, run, folder)
    for name in SMALL_FILES:
        if name in entries and client.download(f"{folder}/{name}", run.path / name) is not None:
            fetched.append(name)
    remote = RemoteRun(run.domain, run.name, entries).checkpoints()
    if all_checkpoints:
        wanted = [c.file for c in remote]
    elif checkpoints:
        wanted = list(checkpoints)
    else:
        wanted = [BEST_FILE] if BEST_FILE in entries else []
    for file in wanted:
        download_checkpoint(client, run, file)
        fetched.append(file)
    return run, fetched


def _complete_log(client: ModalClient, run: Run, folder: str) -> list[str]:
    lock = MirrorLock(run)
    if not lock.acquire():
        return []  # a mirror is writing the log right now
    try:
        mirror = LocalMirror(run)
        try:
            n = mirror.fill(client.read_file(f"{folder}/events.jsonl"))
        finally:
            mirror.close()
    finally:
        lock.release()
    return ["events.jsonl"] if n else []


def _import(client: ModalClient, store: RunStore, remote: RemoteRun) -> Run:
    raw = client.read_file(f"{remote.domain}/{remote.name}/config.json")
    try:
        config = json.loads(raw or b"")
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise ModalError(f"run {remote.ref} on the volume has no readable config.json")
    path = store.root / remote.domain / remote.name
    path.mkdir(parents=True, exist_ok=False)
    atomic_write_json(path / "config.json", config)
    atomic_write_json(
        path / "remote.json",
        {
            "function_call_id": None,
            "app": rc.APP_NAME,
            "gpu": config.get("gpu") or rc.DEFAULT_GPU,
            "volume": rc.VOLUME_NAME,
            "volume_path": rc.mounted_run_path(remote.domain, remote.name),
            "partition": rc.partition_key(remote.domain, remote.name),
            "launch_id": None,
            "mode": "imported",
            "ended": remote.mtime or None,
        },
    )
    return Run(path)


def summarize(runs: Iterable[RemoteRun], store: RunStore) -> list[dict[str, Any]]:
    """Rows for listings: one per remote run, with whether a local copy exists."""
    local = set(store.refs())
    rows = []
    for r in runs:
        ckpts = r.checkpoints()
        rows.append(
            {
                "run": r.name,
                "domain": r.domain,
                "finished": r.finished,
                "checkpoints": [c.file for c in ckpts],
                "size": r.size,
                "modified": r.mtime or None,
                "local": r.ref in local,
                "volume_path": rc.mounted_run_path(r.domain, r.name),
            }
        )
    return rows
