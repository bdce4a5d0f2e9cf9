"""Sinks on the event bus that copy a run's events into other tools' formats.

Each is optional and best effort: a sink that cannot start (its package is not
installed, no API key) or fails later (a full disk) turns itself off with one
`log` warning saying why, and the run goes on. `run_sinks` builds the ones the
config asks for; nothing here imports tensorboard or wandb until a run starts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from nsm.config import RunConfig
from nsm.runs import events as ev

log = logging.getLogger(__name__)

Report = Callable[[str], None]  # says (once) that a sink turned itself off and why

ENDINGS = frozenset({ev.FINISHED, ev.INTERRUPTED, ev.FAILED})


class RunSink:
    """A bus sink that can fail without failing the run: `handle` does the work, any
    exception turns the sink off (reported once), `close` ends it at every ending."""

    label = "sink"

    def __init__(self, report: Report):
        self._report = report
        self.off_reason: str | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        if self.off_reason is not None:
            return
        try:
            self.handle(event)
            if event.get("type") in ENDINGS:
                self.shutdown()
        except Exception as exc:
            self.turn_off(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)

    def close(self) -> None:
        """The backstop for an attempt that ended without a terminal event reaching us."""
        if self.off_reason is not None:
            return
        try:
            self.shutdown()
        except Exception:
            log.exception("closing the %s sink failed", self.label)

    def turn_off(self, why: str) -> None:
        self.off_reason = why
        self._report(f"{self.label} is off for this run: {why}; training goes on without it")
        try:
            self.shutdown()
        except Exception:
            log.debug("shutting down the failed %s sink failed too", self.label, exc_info=True)

    def handle(self, event: dict[str, Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def shutdown(self) -> None:
        """Flush and close; called once per ending, must tolerate being called again."""


def run_sinks(run_dir: Path, name: str, config: RunConfig, report: Report) -> list[RunSink]:
    """The sinks `config` asks for (TENSORBOARD, WANDB), writing for the run in `run_dir`."""
    sinks: list[RunSink] = []
    if config.tensorboard:
        from nsm.training.sinks.tensorboard_sink import TensorBoardSink

        sinks.append(TensorBoardSink(run_dir, report))
    if config.wandb != "off":
        from nsm.training.sinks.wandb_sink import WandbSink

        sinks.append(WandbSink(run_dir, name, config.wandb, report))
    return sinks
