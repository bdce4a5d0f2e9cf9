"""Checkpoints: written atomically, read with `weights_only=True`, refused clearly.

A checkpoint holds tensors and plain data only, so loading it never runs code:
a pickled object (a hostile file) makes torch's restricted unpickler refuse it
before anything executes. Every failure becomes a CheckpointError whose
message names the file and what is wrong with it.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from nsm.atomic import atomic_open

CHECKPOINT_FORMAT = "nsm-checkpoint"
CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("config", "epoch", "step", "model")


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message says why."""


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> int:
    """Write `state` atomically; returns the file size in bytes."""
    blob = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    # Serialise in memory first: a failure half-way must not leave a temp file
    # that fills the disk, and the rename only happens after fsync.
    buf = io.BytesIO()
    torch.save(blob, buf)
    data = buf.getbuffer()
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return len(data)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    name = path.name
    if not path.exists():
        raise CheckpointError(f"checkpoint {name} does not exist ({path})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {name} is not a regular file ({path})")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {name} is empty (0 bytes): the write that made it did not finish")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        detail = _detail(text)
        if "GLOBAL" in text or "Unsupported global" in text:
            raise CheckpointError(
                f"checkpoint {name} was refused: it contains pickled Python objects, not just tensors "
                "and plain data. Loading it could run arbitrary code, so it is not loaded. "
                f"Only checkpoints written by nsm-tui are accepted. ({detail})"
            ) from None
        raise CheckpointError(
            f"checkpoint {name} is corrupt or not a PyTorch checkpoint; the safe loader stopped at: {detail}"
        ) from None
    except Exception as exc:  # torch reports damaged files with many exception types (IndexError, EOFError, ...)
        raise CheckpointError(
            f"checkpoint {name} is corrupt or truncated and cannot be read "
            f"({type(exc).__name__}: {_first_line(str(exc))})"
        ) from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {name} is not an nsm-tui checkpoint (a PyTorch file, but without the "
            f"'{CHECKPOINT_FORMAT}' format marker): it was written by another program"
        )
    if blob.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {name} has format version {blob.get('version')!r}; this nsm-tui reads version {CHECKPOINT_VERSION}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in blob]
    if missing:
        raise CheckpointError(f"checkpoint {name} is incomplete: missing {', '.join(missing)}")
    if not isinstance(blob["config"], dict):
        raise CheckpointError(
            f"checkpoint {name} is damaged: its config should be a mapping of settings, found {type(blob['config']).__name__}"
        )
    if not isinstance(blob["model"], dict):
        raise CheckpointError(f"checkpoint {name} is damaged: its model weights should be a mapping, found {type(blob['model']).__name__}")
    return blob


def _detail(text: str) -> str:
    """The line of torch's long weights-only message that says what was refused."""
    for line in text.splitlines():
        if "GLOBAL" in line or "Unsupported" in line:
            return line.strip()[:300]
    return _first_line(text)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:300]
