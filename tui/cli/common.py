"""Small pieces every headless command uses: the store, a run by name, formats."""

from __future__ import annotations

import argparse
import time

from nsm.runs import Run, RunStore, RunStoreError, default_runs_dir
from tui.cli.console import CliError


def open_store(args: argparse.Namespace) -> RunStore:
    return RunStore(default_runs_dir(getattr(args, "runs_dir", None)))


def get_run(store: RunStore, ref: str) -> Run:
    try:
        return store.get(ref)
    except RunStoreError as exc:
        raise CliError(str(exc)) from None


def when_text(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


def size_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
