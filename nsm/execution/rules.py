"""What may be resumed from where, and what may be stopped: one set of rules, one wording.

The CLI, every screen and the Modal backend ask these functions, so a finished
run, an earlier checkpoint or a missing one reads the same everywhere:
- a run another process trains (its lock is held) is never resumed;
- a finished run is resumed only from a checkpoint chosen explicitly (going
  back to an earlier point and training from there again);
- an unfinished run resumes from its latest checkpoint unless told otherwise;
- a checkpoint that is not the latest rewinds the run: the files of the
  discarded future are moved aside before training goes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from nsm.runs import lock as run_lock
from nsm.runs import Run
from nsm.runs.checkpoints import CheckpointInfo, latest_checkpoint, parse_checkpoint_name
from nsm.runs.retention import removal_note
from nsm.runs.errors import RunStoreError
from nsm.runs.process import this_host


class NotResumable(RunStoreError):
    """The run cannot be resumed as asked; the message says why and what to do."""


class NotStoppable(RunStoreError):
    """Nothing of this run is training; the message gives its status."""


@dataclass(frozen=True)
class ResumePlan:
    run: Run
    file: str  # the checkpoint's file name
    path: Path | None  # local path (None for a checkpoint that lives only on the Modal volume)
    epoch: int | None
    step: int
    latest: bool  # the furthest point the run reached: nothing is discarded
    explicit: bool  # chosen by the user

    @property
    def rewinds(self) -> bool:
        return not self.latest

    def describe(self) -> str:
        where = f"epoch {self.epoch}" + (f", step {self.step}" if self.step else "") if self.epoch is not None else "its best model"
        return f"{self.file} ({where})"


def check_not_training(run: Run, *, what: str = "resume") -> None:
    """Raise RunLocked / NotResumable when the run is training somewhere."""
    if run.status() != "running":  # a held lock reads as running too
        return
    holder = run_lock.holder(run.path)
    if holder is not None:
        raise run_lock.RunLocked(run.ref, holder)
    info = run.process_info() or {}
    where = f" (pid {info['pid']} on {info.get('host')})" if info.get("pid") else ""
    remote = " on Modal" if run.remote_info() is not None else ""
    raise NotResumable(f"run {run.name} is still running{remote}{where}; stop it first (nsm-tui stop {run.name}) before you {what} it")


def plan_resume(
    run: Run,
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    available: Iterable[str] | None = None,
) -> ResumePlan:
    """The checkpoint to continue `run` from, or NotResumable / RunLocked saying why not.

    `available` names the checkpoint files when they are not in the local
    folder (a Modal run's volume); by default the run's own folder is read.
    """
    check_not_training(run)
    local = run.checkpoints()
    if available is not None:
        names = sorted(set(available) | {c.file for c in local})
        infos = [_info_for(run, name, local) for name in names if parse_checkpoint_name(name) is not None]
    else:
        infos = local
    furthest = latest_checkpoint(infos)
    if checkpoint is not None:
        chosen = _find(run, infos, checkpoint)
        return _plan(run, chosen, furthest, explicit=True)
    if run.status() == "finished":
        state = run.state()
        raise NotResumable(
            f"run {run.name} already finished ({state.reason or 'completed'} after {state.epoch} epochs); "
            "to train from an earlier point again, pick one of its checkpoints "
            f"(nsm-tui resume {run.name} --checkpoint FILE, or r on a checkpoint in the runs screen)"
        )
    if furthest is None:
        raise NotResumable(
            f"run {run.name} has no checkpoint to resume from (it stopped before its first one); "
            f"start it again from scratch under its name: nsm-tui resume {run.name} --restart"
        )
    return _plan(run, furthest, furthest, explicit=False)


def check_restart(run: Run) -> None:
    """May `run` be started again from scratch under its name (`resume --restart`)? Only a run
    that nothing trains and that has no checkpoint: nothing of value is set aside."""
    check_not_training(run, what="restart")
    if run.checkpoints():
        raise NotResumable(
            f"run {run.name} has checkpoints: resume it (nsm-tui resume {run.name}, or --checkpoint FILE) "
            "instead of restarting it from scratch"
        )


def resumable_now(run: Run) -> bool:
    """Would a plain resume (latest checkpoint) be allowed? For hiding a key, never raises."""
    try:
        plan_resume(run)
        return True
    except RunStoreError:
        return False
    except OSError:
        return False


def _find(run: Run, infos: list[CheckpointInfo], checkpoint: str | os.PathLike[str]) -> CheckpointInfo:
    text = os.fspath(checkpoint)
    name = os.path.basename(text)
    if (os.path.isabs(text) or os.path.dirname(text)) and not _in_folder(run, text):
        raise NotResumable(f"--checkpoint: {text} is not in the folder of run {run.name} ({run.path})")
    for info in infos:
        if info.file == name:
            return info
    names = ", ".join(c.file for c in infos) or "none"
    removed = removal_note(run.path, name)
    if removed:
        raise NotResumable(f"--checkpoint: {removed}; resume from one that is left: {names}")
    raise NotResumable(f"--checkpoint: {name} is not a checkpoint of run {run.name} (it has: {names})")


def _in_folder(run: Run, text: str) -> bool:
    """Whether the checkpoint path `text` (absolute, or relative to the run) names a file in the run's own folder."""
    path = Path(text) if os.path.isabs(text) else run.path / text
    try:
        return path.resolve().parent == run.path.resolve()
    except (OSError, RuntimeError):
        return path.parent == run.path


def _plan(run: Run, chosen: CheckpointInfo, furthest: CheckpointInfo | None, *, explicit: bool) -> ResumePlan:
    latest = furthest is None or chosen.file == furthest.file or (
        chosen.epoch is not None and furthest.epoch is not None and chosen.position >= furthest.position
    )
    path = chosen.path if chosen.path is not None and chosen.path.exists() else None
    return ResumePlan(run, chosen.file, path, chosen.epoch, chosen.step, latest=latest, explicit=explicit)


def _info_for(run: Run, name: str, local: list[CheckpointInfo]) -> CheckpointInfo:
    for info in local:
        if info.file == name:
            return info
    kind, epoch, step = parse_checkpoint_name(name)  # type: ignore[misc]
    return CheckpointInfo(name, run.path / name, epoch, step, kind, 0, 0.0)


# ------------------------------------------------------------------ stop


@dataclass(frozen=True)
class StopTarget:
    run: Run
    pid: int | None  # a local process that may be signalled (this host, holds the lock)
    not_signalled: int | None = None  # a pid process.json names that does not hold the lock


def not_signalled_note(target: StopTarget) -> str:
    """The words for a pid that `stop` leaves alone because it is not the run's trainer."""
    if target.not_signalled is None:
        return ""
    return (
        f"; pid {target.not_signalled} named in its process.json does not hold the run's lock, "
        "so it is not this run's process and was not signalled"
    )


def plan_stop(run: Run) -> StopTarget:
    """Who to ask to stop, or NotStoppable naming the run's status."""
    holder = run_lock.holder(run.path)
    remote = run.remote_info() is not None
    if holder is not None:
        pid = holder.pid if holder.host in (None, this_host()) and holder.pid and holder.pid != os.getpid() else None
        return StopTarget(run, pid)
    status = run.status()
    if status != "running":
        raise NotStoppable(f"run {run.name} is not running (status: {status})")
    info = run.process_info() or {}
    named = info.get("pid") if not remote and info.get("host") == this_host() else None
    # A trainer of this host holds the lock; a pid merely named in process.json (reused,
    # or written by hand) is not this run's process and is never signalled: only the
    # stop-request file is left, which reaches nothing but a real trainer of the run.
    return StopTarget(run, None, not_signalled=named if isinstance(named, int) else None)
