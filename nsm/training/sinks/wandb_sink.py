"""Weights & Biases for a run (WANDB=offline or online; the `wandb` extra).

Project "nsm-tui", the run's name, its config; the same per-epoch series as
TensorBoard, plotted against `epoch`. Offline runs land in `wandb/` in the run
folder (or under $WANDB_DIR) and are uploaded later with `wandb sync`. Online
without an API key is refused before wandb could prompt for one (a detached run
has no terminal to answer it). A resumed run continues the same W&B run (its id
is derived from the run's first event); W&B cannot forget logged steps, so after
a rewind the epochs trained again are logged a second time at the same `epoch`.
"""

from __future__ import annotations

import hashlib
import netrc
import os
from pathlib import Path
from typing import Any

from nsm.runs import events as ev
from nsm.training.sinks import Report, RunSink
from nsm.training.sinks.scalars import EpochScalars

PROJECT = "nsm-tui"
INIT_TIMEOUT_S = 60  # an unreachable server must not hold a run's start for wandb's default 90 s


class WandbSink(RunSink):
    label = "the W&B sink"

    def __init__(self, run_dir: Path, name: str, mode: str, report: Report):
        super().__init__(report)
        self.run_dir = Path(run_dir)
        self.name = name
        self.mode = mode
        self._run: Any = None
        self._scalars = EpochScalars()
        self._exit_code = 0

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind in (ev.RUN_STARTED, ev.RESUMED):
            self._start(event.get("config") if isinstance(event.get("config"), dict) else {})
        if self._run is None:
            return
        found = self._scalars.feed(event)
        if found is not None:
            epoch, values = found
            if kind == ev.FINISHED:
                self._run.summary.update(values)
            else:
                self._run.log({"epoch": epoch, **values})
        if kind in (ev.FINISHED, ev.INTERRUPTED, ev.FAILED):
            self._exit_code = 1 if kind == ev.FAILED else 0

    def shutdown(self) -> None:
        run, self._run = self._run, None
        if run is not None:
            run.finish(exit_code=self._exit_code)

    # ------------------------------------------------------------------
    def _start(self, config: dict[str, Any]) -> None:
        self.shutdown()
        try:
            import wandb
        except ImportError:
            raise RuntimeError("wandb is not installed (pip install 'nsm-tui[wandb]', or WANDB=off)") from None
        if self.mode == "online" and not _has_api_key():
            raise RuntimeError(
                "WANDB=online needs a W&B API key: run `wandb login` or set WANDB_API_KEY "
                "(or train with WANDB=offline and upload later with `wandb sync`)"
            )
        self._run = wandb.init(
            project=PROJECT,
            name=self.name,
            id=self._run_id(),
            resume="allow",
            config=config,
            mode=self.mode,
            dir=os.environ.get("WANDB_DIR") or str(self.run_dir),
            reinit="create_new",  # several runs in one process (a sweep in the TUI)
            settings=wandb.Settings(console="off", silent=True, init_timeout=INIT_TIMEOUT_S),
        )
        self._run.define_metric("epoch")
        self._run.define_metric("*", step_metric="epoch")

    def _run_id(self) -> str:
        """Stable across the attempts of one run, different for a run of the same name made later."""
        first = ev.read_events(self.run_dir / "events.jsonl", types=(ev.RUN_STARTED,))[0]
        started = first[0].get("t") if first else None
        digest = hashlib.sha1(f"{self.run_dir.parent.name}/{self.name}/{started}".encode()).hexdigest()[:8]
        return f"{self.name[:55]}-{digest}"


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    host = base.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    try:
        return netrc.netrc(os.environ.get("NETRC") or None).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False
