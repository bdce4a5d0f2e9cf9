"""Checkpoint files of a run, described from their names and the log.

The names alone give epoch and step (`checkpoint_epoch_<N>[_step_<K>].pt`);
`checkpoint` events add the kind and the validation metrics when they exist.
Nothing here opens a checkpoint: that needs torch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from nsm.runs import events as ev

BEST_FILE = "best_model.pt"
BEST, PERIODIC, INTERRUPT = "best", "periodic", "interrupt"
_EPOCH_FILE = re.compile(r"checkpoint_epoch_(\d+)(?:_step_(\d+))?\.pt")


def checkpoint_file_name(epoch: int, step: int = 0) -> str:
    """The file an engine writes after `epoch` completed epochs and `step`
    steps of the next one (step 0: an epoch boundary)."""
    return f"checkpoint_epoch_{epoch}.pt" if step == 0 else f"checkpoint_epoch_{epoch}_step_{step}.pt"


def parse_checkpoint_name(name: str) -> tuple[str, int | None, int] | None:
    """(kind, epoch, step) from a file name, or None for a file that is not a checkpoint."""
    if name == BEST_FILE:
        return BEST, None, 0
    m = _EPOCH_FILE.fullmatch(name)
    if m is None:
        return None
    step = int(m.group(2) or 0)
    return (INTERRUPT if m.group(2) is not None else PERIODIC), int(m.group(1)), step


@dataclass(frozen=True)
class CheckpointInfo:
    file: str
    path: Path
    epoch: int | None  # completed epochs; None for a best model the log does not describe
    step: int  # steps into the next epoch (0 at an epoch boundary)
    kind: str  # best / periodic / interrupt
    size: int
    mtime: float
    metrics: dict[str, Any] = field(default_factory=dict)  # val metrics, when the log has them

    @property
    def position(self) -> tuple[int, int]:
        return (self.epoch if self.epoch is not None else -1, self.step)


def list_checkpoints(run_dir: Path, events: Iterable[dict[str, Any]] = ()) -> list[CheckpointInfo]:
    """Checkpoints in `run_dir`: the best model first, then by (epoch, step)."""
    described: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.get("type") == ev.CHECKPOINT and isinstance(event.get("file"), str):
            # The file is overwritten in place (best_model.pt), so the last event describes it.
            described[os.path.basename(event["file"])] = event
    found: list[CheckpointInfo] = []
    try:
        entries = list(os.scandir(run_dir))
    except OSError:
        return []
    for entry in entries:
        parsed = parse_checkpoint_name(entry.name)
        if parsed is None:
            continue
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
        except OSError:
            continue  # removed while we looked
        kind, epoch, step = parsed
        event = described.get(entry.name, {})
        # An interrupt that lands on an epoch boundary writes a plain epoch file.
        if kind != BEST and event.get("kind") in (PERIODIC, INTERRUPT):
            kind = event["kind"]
        if epoch is None and isinstance(event.get("epoch"), int):
            epoch, step = event["epoch"], event.get("step") if isinstance(event.get("step"), int) else 0
        metrics = event.get("metrics") if isinstance(event.get("metrics"), dict) else {}
        found.append(CheckpointInfo(entry.name, Path(entry.path), epoch, step, kind, st.st_size, st.st_mtime, metrics))
    found.sort(key=lambda c: (c.kind != BEST, c.position, c.file))
    return found


def latest_checkpoint(checkpoints: Iterable[CheckpointInfo]) -> CheckpointInfo | None:
    """Where training stopped: the furthest periodic or interrupt checkpoint,
    else the best model."""
    checkpoints = list(checkpoints)
    resumable = [c for c in checkpoints if c.kind != BEST]
    if resumable:
        return max(resumable, key=lambda c: (c.position, c.mtime))
    best = [c for c in checkpoints if c.file == BEST_FILE]
    return best[0] if best else None
