"""Fixtures for run store tests: a store in a temp folder and runs with logs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from nsm.config import RunConfig
from nsm.runs import EventLogWriter, Run, RunStore

from .helpers import Events, training_events


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.fixture
def make_run(store: RunStore) -> Callable[..., Run]:
    """make_run(name, domain=..., events=[(type, payload), ...]) -> Run with those events logged."""

    def make(name: str | None = None, domain: str = "planning", events: Events = (), **config: Any) -> Run:
        run = store.create_run(RunConfig(domain=domain, **config), name=name)
        if events:
            with EventLogWriter(run.events_path) as writer:
                for kind, payload in events:
                    writer.emit(kind, **payload)
        return run

    return make


@pytest.fixture
def finished_run(make_run) -> Run:
    return make_run("done", events=training_events(epochs=3, finish=True))


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped (fresh per test,
    so a long session cannot have handed the pid to someone else)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
