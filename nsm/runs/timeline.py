"""Resuming from an earlier checkpoint: the files of the discarded future.

A run resumed from a checkpoint that is not its latest goes back in time: the
epochs after the checkpoint are trained again, so what was written about them
(later checkpoints, a best model from a later epoch, the history, the final
results and saved evaluations) no longer describes the run. `discard_future`
moves those files aside, into `<run>/discarded/<stamp>-from-epoch-<E>/`, before
the engine resumes; nothing is deleted.

The `discarded` folder is below the run directory, so checkpoint listings
(which look at the run directory's own files only) and the run listing (which
looks at `<root>/<domain>/<run>` folders only) never see what it holds.

Torch-free: positions come from file names and the `checkpoint` events.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from pathlib import Path
from typing import Any, Iterable

from nsm.atomic import DIR_MODE, atomic_write_json
from nsm.runs import events as ev
from nsm.runs.checkpoints import BEST, BEST_FILE, checkpoint_file_name, parse_checkpoint_name
from nsm.runs.events import read_events

DISCARDED_DIR = "discarded"
INFO_FILE = "info.json"
_HISTORY_FILE = "training_history.json"
_RESULTS_FILE = "final_results.json"

RunLike = Any  # a nsm.runs.Run, or the path of a run directory


def _run_dir(run: RunLike) -> Path:
    path = getattr(run, "path", run)
    return Path(path)


def _evaluation_file(ckpt_file: str) -> str:
    return f"evaluation_{Path(ckpt_file).stem}.json"


def best_model_position(run: RunLike, events: Iterable[dict[str, Any]] | None = None) -> tuple[int, int] | None:
    """(epoch, step) of best_model.pt from the last `checkpoint` event that wrote it;
    None when the log does not describe it."""
    if events is None:
        events = read_events(_run_dir(run) / "events.jsonl", types=(ev.CHECKPOINT,))[0]
    found: tuple[int, int] | None = None
    for event in events:
        if event.get("type") != ev.CHECKPOINT or not isinstance(event.get("file"), str):
            continue
        if os.path.basename(event["file"]) != BEST_FILE:
            continue
        epoch, step = event.get("epoch"), event.get("step", 0)
        if isinstance(epoch, int) and not isinstance(epoch, bool):
            found = (epoch, step if isinstance(step, int) and not isinstance(step, bool) else 0)
    return found


def position_of(run: RunLike, checkpoint_path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(completed epochs, steps into the next) of a checkpoint: from its file name,
    or for best_model.pt from the log; None for a file that is not a checkpoint
    or a best model the log does not describe."""
    parsed = parse_checkpoint_name(Path(checkpoint_path).name)
    if parsed is None:
        return None
    kind, epoch, step = parsed
    if kind == BEST or epoch is None:
        return best_model_position(run)
    return epoch, step


def future_of(run: RunLike, epoch: int, step: int) -> list[Path]:
    """The files of the run that belong to the future discarded by resuming at
    (epoch, step): checkpoints further on, best_model.pt when it is from a later
    epoch, their saved evaluations, training_history.json (rewritten by the
    resumed run) and final_results.json. Only files that exist, in a stable order."""
    folder = _run_dir(run)
    here = (int(epoch), int(step))
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.is_file(follow_symlinks=False))
    except OSError:
        return []
    present = set(names)
    moved: list[str] = []
    for name in names:
        parsed = parse_checkpoint_name(name)
        if parsed is None or parsed[0] == BEST or parsed[1] is None:
            continue
        if (parsed[1], parsed[2]) > here:
            moved.append(name)
    if BEST_FILE in present:
        best = best_model_position(folder)
        if best is not None and best[0] > here[0]:
            moved.append(BEST_FILE)
    evaluations = [_evaluation_file(n) for n in moved if _evaluation_file(n) in present]
    extra = [n for n in (_HISTORY_FILE, _RESULTS_FILE) if n in present]
    return [folder / n for n in [*moved, *evaluations, *extra]]


def _stamp(now: float | _dt.datetime | None) -> tuple[str, float]:
    if isinstance(now, _dt.datetime):
        t = now.timestamp() if now.tzinfo is not None else now.replace(tzinfo=_dt.timezone.utc).timestamp()
    else:
        t = time.time() if now is None else float(now)
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(t)), t


def discard_future(
    run: RunLike,
    epoch: int,
    step: int,
    *,
    now: float | _dt.datetime | None = None,
    checkpoint: str | None = None,
) -> Path | None:
    """Move `future_of(run, epoch, step)` into `<run>/discarded/<UTC stamp>-from-epoch-<E>/`
    (with `-step-<K>` for a mid-epoch position) and write an info.json there saying
    from which checkpoint the run was resumed and when. Returns that folder, or
    None when there was nothing to move. `now`: unix time or datetime (default:
    the clock); `checkpoint`: the file resumed from (default: the name of the
    periodic/interrupt checkpoint at (epoch, step))."""
    folder = _run_dir(run)
    files = future_of(folder, epoch, step)
    if not files:
        return None
    stamp, t = _stamp(now)
    base = f"{stamp}-from-epoch-{int(epoch)}" + (f"-step-{int(step)}" if step else "")
    target, moved = _set_aside(folder, base, [p.name for p in files])
    if target is None:
        return None
    atomic_write_json(
        target / INFO_FILE,
        {
            "resumed_from": checkpoint or checkpoint_file_name(int(epoch), int(step)),
            "epoch": int(epoch),
            "step": int(step),
            "discarded_at": _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "t": t,
            "files": moved,
            "note": f"the run was resumed from epoch {int(epoch)}"
            + (f", step {int(step)}" if step else "")
            + "; these files describe the epochs after it, which were discarded and trained again",
        },
    )
    return target


# What a restart from scratch sets aside: everything the earlier attempt wrote except
# the config (the run keeps its name and settings), its lock and its output log.
_RESTART_FILES = ("events.jsonl", _HISTORY_FILE, _RESULTS_FILE, "process.json", "heartbeat", "failed.json", "stop_requested")


def set_aside_for_restart(run: RunLike, *, now: float | _dt.datetime | None = None) -> Path | None:
    """Move the record of an attempt that never reached a checkpoint into
    `<run>/discarded/<UTC stamp>-restart/` (with an info.json), so the run can start
    again from scratch under its name. Returns that folder, or None when nothing was there."""
    folder = _run_dir(run)
    try:
        present = {e.name for e in os.scandir(folder) if e.is_file(follow_symlinks=False)}
    except OSError:
        return None
    files = [n for n in _RESTART_FILES if n in present]
    files += sorted(n for n in present if n.startswith("evaluation_") and n.endswith(".json"))
    if not files:
        return None
    stamp, t = _stamp(now)
    target, moved = _set_aside(folder, f"{stamp}-restart", files)
    if target is None:
        return None
    atomic_write_json(
        target / INFO_FILE,
        {
            "restarted_at": _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "t": t,
            "files": moved,
            "note": "the run was restarted from scratch (it had no checkpoint); these files are its earlier attempt",
        },
    )
    return target


def _set_aside(folder: Path, base: str, names: list[str]) -> tuple[Path | None, list[str]]:
    """Move the files `names` of `folder` into a new `discarded/<base>[-N]/`; the folder and
    what was moved (None and [] when none of them was still there)."""
    parent = folder / DISCARDED_DIR
    parent.mkdir(mode=DIR_MODE, exist_ok=True)
    target, n = parent / base, 1
    while True:
        try:
            target.mkdir(mode=DIR_MODE)
            break
        except FileExistsError:
            n += 1
            target = parent / f"{base}-{n}"
    moved = []
    for name in names:
        try:
            os.rename(folder / name, target / name)
        except FileNotFoundError:
            continue  # removed since we looked
        moved.append(name)
    if not moved:
        try:
            target.rmdir()
        except OSError:
            pass
        return None, []
    return target, moved
