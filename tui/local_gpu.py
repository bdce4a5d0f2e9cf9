"""Whether this machine has a GPU to train on: NVML's answer, asked once per process.

NVML (not torch: importing torch takes seconds) is what F5 asks too, so the idle
dashboard's "GPU: n/a (no NVIDIA driver)" and the config panel's AMP row agree with
F5. The first call may load the NVML library: call `probe()` from a worker thread;
`known()` never blocks.
"""

from __future__ import annotations

import threading
from typing import NamedTuple


class LocalGpu(NamedTuple):
    available: bool
    reason: str  # why not, in nsm.telemetry's words ("no NVIDIA driver"); "" when available


_lock = threading.Lock()
_answer: LocalGpu | None = None


def probe() -> LocalGpu:
    """Ask NVML once (blocking on the first call); later calls return the same answer."""
    global _answer
    with _lock:
        if _answer is None:
            try:
                from nsm.telemetry.nvml import get_session

                session = get_session()
                _answer = LocalGpu(bool(session.available), session.reason)
            except Exception as exc:  # noqa: BLE001 - a broken NVML means "no readings here", never a crash
                _answer = LocalGpu(False, f"NVML failed: {type(exc).__name__}")
        return _answer


def known() -> LocalGpu | None:
    """The answer if it has been asked for already, else None (unknown: do not guess)."""
    return _answer


def set_answer(answer: LocalGpu | None) -> None:
    """Fix the answer (snapshot apps and tests: the same screen on any machine); None forgets it."""
    global _answer
    with _lock:
        _answer = answer
