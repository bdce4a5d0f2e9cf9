"""KEEP_LAST: which checkpoints a long run may delete, and what to say about one it did.

After a periodic checkpoint, with KEEP_LAST = N > 0, the run keeps the newest N
epoch-boundary checkpoints and drops older ones, together with interrupt
checkpoints (`_step_<K>`) from before the newest periodic one, which it supersedes.
Never touched: best_model.pt, the checkpoint the current attempt resumed from,
anything in discarded/ (only the run folder's own files are looked at). Each
removal is a `checkpoint_removed` event, so a later request for the file can say
why it is gone. Torch-free: positions come from the file names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from nsm.runs import events as ev
from nsm.runs.checkpoints import BEST, parse_checkpoint_name

REASON = "keep_last"


def checkpoints_to_remove(run_dir: Path, keep_last: int, protect: Iterable[str] = ()) -> list[str]:
    """The checkpoint files of `run_dir` KEEP_LAST=`keep_last` lets go (oldest first)."""
    if keep_last <= 0:
        return []
    protected = {os.path.basename(os.fspath(p)) for p in protect}
    boundary: list[tuple[int, str]] = []
    mid_epoch: list[tuple[tuple[int, int], str]] = []
    try:
        names = [e.name for e in os.scandir(run_dir) if e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    for name in names:
        parsed = parse_checkpoint_name(name)
        if parsed is None or parsed[0] == BEST or parsed[1] is None:
            continue
        _kind, epoch, step = parsed
        if step == 0:
            boundary.append((epoch, name))
        else:
            mid_epoch.append(((epoch, step), name))
    boundary.sort()
    if not boundary:
        return []
    newest = boundary[-1][0]
    drop = [name for _e, name in boundary[:-keep_last]]
    drop += [name for position, name in sorted(mid_epoch) if position < (newest, 0)]
    order = {name: parse_checkpoint_name(name)[1:] for name in drop}  # type: ignore[index]
    return sorted((n for n in drop if n not in protected), key=lambda n: order[n])


def removal_note(run_dir: Path, file: str) -> str | None:
    """Why checkpoint `file` is not in the run folder, when KEEP_LAST removed it:
    "checkpoint_epoch_2.pt was removed by KEEP_LAST=2 after epoch 6 ..."; else None."""
    name = os.path.basename(os.fspath(file))
    found: dict[str, Any] | None = None
    for event in ev.read_events(Path(run_dir) / "events.jsonl", types=(ev.CHECKPOINT_REMOVED,))[0]:
        if event.get("file") == name:
            found = event
    if found is None:
        return None
    keep = found.get("keep_last")
    after = found.get("after_epoch")
    return (
        f"{name} was removed by KEEP_LAST={keep}"
        + (f" after epoch {after}" if isinstance(after, int) else "")
        + f" (the run keeps best_model.pt and its {keep} newest periodic checkpoints)"
    )
