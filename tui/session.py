"""Everything this app trains in its own process: the dashboard's in-process run and in-app sweeps.

Quit, SIGHUP and the status line ask the session, not the screens: a run or a
sweep that would die with the app is never left out of the question. Entries
are added by whoever starts the work and leave when their thread ends.
Thread-safe (the SIGHUP handler reads it from a signal context).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

RUN, SWEEP = "run", "sweep"


@dataclass
class Work:
    kind: str  # RUN or SWEEP
    label: str  # "planning/quick-1a2b", "sweep lr-grid"
    stop: Callable[[str], None]  # thread-safe: stop at the next step, with a checkpoint
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def alive(self) -> bool:
        return not self.done.is_set()


class Session:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work: list[Work] = []

    def add(self, work: Work) -> Work:
        with self._lock:
            self._work = [w for w in self._work if w.alive]
            self._work.append(work)
        return work

    def training(self) -> list[Work]:
        """What trains in this process now."""
        with self._lock:
            return [w for w in self._work if w.alive]

    def busy(self) -> bool:
        return bool(self.training())

    def describe(self) -> str:
        items = self.training()
        return ", ".join(w.label for w in items)

    def stop_all(self, reason: str) -> threading.Event | None:
        """Ask everything to stop; an Event set once all of it has ended (None if nothing trains)."""
        items = self.training()
        if not items:
            return None
        for w in items:
            w.stop(reason)
        all_done = threading.Event()

        def wait() -> None:
            for w in items:
                w.done.wait()
            all_done.set()

        threading.Thread(target=wait, name="session-stop", daemon=True).start()
        return all_done
