"""Small pieces every headless command uses: the store, a run by name, formats."""

from __future__ import annotations

import argparse
import time

from nsm.runs import Run, RunStore, RunStoreError, default_runs_dir
from nsm.runs.store import check_store_root
from tui.cli.console import CliError


def open_store(args: argparse.Namespace, *, write: bool = False) -> RunStore:
    """The store of --runs-dir / $NSM_RUNS_DIR; CliError (one line, exit 2) when
    that root cannot be a store (a file, /proc, too long; not writable with `write`)."""
    try:
        root = default_runs_dir(getattr(args, "runs_dir", None))
        check_store_root(root, write=write)
    except RunStoreError as exc:
        raise CliError(str(exc)) from None
    return RunStore(root)


def get_run(store: RunStore, ref: str) -> Run:
    try:
        return store.get(ref)
    except RunStoreError as exc:
        raise CliError(str(exc)) from None


def when_text(t: float | None) -> str:
    if not t or not isinstance(t, (int, float)):
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
    except (OverflowError, ValueError, OSError):  # inf, nan or far out of range in a damaged file
        return "-"


def size_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
