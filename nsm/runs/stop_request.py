"""A stop request as a file: any process on any host sharing the folder can leave one.

A signal only reaches a pid on this machine; a file reaches a run (or a sweep's
queue runner) wherever it trains, and the engine polls it at each step boundary.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from nsm.atomic import atomic_write_json
from nsm.runs.process import this_host

STOP_FILE = "stop_requested"


class StopRequests:
    """Mixin for a folder-backed object with a `path`: request, check, clear."""

    path: Path

    @property
    def stop_path(self) -> Path:
        return self.path / STOP_FILE

    def request_stop(self) -> None:
        atomic_write_json(self.stop_path, {"requested": time.time(), "host": this_host(), "pid": os.getpid()})

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def clear_stop_request(self) -> None:
        try:
            self.stop_path.unlink()
        except FileNotFoundError:
            pass
