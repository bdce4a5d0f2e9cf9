"""Signals of a background training process: stop cooperatively, outlive the terminal."""

from __future__ import annotations

import signal
from typing import Callable


def stop_on_signals(request_stop: Callable[[str], None]) -> None:
    """SIGINT/SIGTERM ask for a stop at the next step (checkpoint, "interrupted");
    SIGHUP — the terminal or ssh link went away — is ignored."""

    def on_signal(signum: int, _frame: object) -> None:
        request_stop(f"received {signal.Signals(signum).name}")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
