"""TensorBoard event files for every run: `<run folder>/tensorboard/`.

`tensorboard --logdir runs/` then shows every run of a store, one per folder.
Scalars per epoch (the step is the epoch), the config as hparams with the final
test metrics. The writer and its import (about 0.3 s) come with the first
`run_started`/`resumed` event.

The event files are derived data, like training_history.json: a resume writes
a new file that replays the run's own log up to the resumed epoch, then removes
the older files. So a resumed run continues at the right steps, and after a
rewind the discarded future is gone from TensorBoard too. (SummaryWriter's
purge_step would rely on TensorBoard reading the files in creation order, which
their names do not guarantee within one second of one process.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nsm.runs import events as ev
from nsm.training.sinks import Report, RunSink
from nsm.training.sinks.scalars import FINAL_METRICS, EpochScalars, hparams_of

TENSORBOARD_DIR = "tensorboard"
_EVENT_FILE_MARK = ".tfevents."
_REPLAYED = (ev.RUN_STARTED, ev.RESUMED, ev.EPOCH_END, ev.EVAL, ev.GPU)


class TensorBoardSink(RunSink):
    label = "the TensorBoard sink"

    def __init__(self, run_dir: Path, report: Report):
        super().__init__(report)
        self.run_dir = Path(run_dir)
        self.log_dir = self.run_dir / TENSORBOARD_DIR
        self._writer: Any = None
        self._scalars = EpochScalars()
        self._session_end: Any = None  # the hparams "session ended" summary, written at `finished`

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind in (ev.RUN_STARTED, ev.RESUMED):
            self._start(event)
        if self._writer is None:
            return
        self._write(event)
        if kind == ev.FINISHED and self._session_end is not None:
            self._writer._get_file_writer().add_summary(self._session_end)
        if kind in (ev.EPOCH_END, ev.EVAL):
            self._writer.flush()

    def shutdown(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    # ------------------------------------------------------------------
    def _start(self, event: dict[str, Any]) -> None:
        self.shutdown()
        earlier = self._event_files()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise RuntimeError(f"tensorboard cannot be imported ({exc}); pip install tensorboard, or TENSORBOARD=off") from None

        # flush_secs only bounds a silent stretch: the epoch-end flushes do the work.
        self._writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=30)
        self._write_hparams(event.get("config"))
        if event.get("type") == ev.RESUMED:
            self._replay(event)
        self._writer.flush()
        for path in earlier:  # superseded by the file just written
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def _replay(self, resumed: dict[str, Any]) -> None:
        """Write what the log says about the epochs up to the resumed one, as the run's
        timeline has it now (each `resumed` drops the epochs after its own)."""
        points: dict[int, list[tuple[dict[str, Any], dict[str, float]]]] = {}
        scalars = EpochScalars()
        seq = resumed.get("seq")
        for event in ev.read_events(self.run_dir / "events.jsonl", types=_REPLAYED)[0]:
            if isinstance(seq, int) and event["seq"] >= seq:
                break
            if event["type"] in (ev.RUN_STARTED, ev.RESUMED):
                back_to = event.get("epoch") if event["type"] == ev.RESUMED else 0
                if isinstance(back_to, int):
                    points = {e: p for e, p in points.items() if e <= back_to}
            found = scalars.feed(event)
            if found is not None:
                points.setdefault(found[0], []).append((event, found[1]))
        upto = resumed.get("epoch") if isinstance(resumed.get("epoch"), int) else 0
        for epoch in sorted(e for e in points if e <= upto):
            for event, values in points[epoch]:
                self._add(epoch, values, event)

    def _write(self, event: dict[str, Any]) -> None:
        found = self._scalars.feed(event)
        if found is not None:
            self._add(found[0], found[1], event)

    def _add(self, epoch: int, values: dict[str, float], event: dict[str, Any]) -> None:
        wall_time = event.get("t") if isinstance(event.get("t"), (int, float)) else None
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, global_step=epoch, walltime=wall_time)

    def _event_files(self) -> list[Path]:
        try:
            return [Path(e.path) for e in os.scandir(self.log_dir) if _EVENT_FILE_MARK in e.name and e.is_file()]
        except OSError:
            return []

    def _write_hparams(self, config: Any) -> None:
        if not isinstance(config, dict):
            return
        from torch.utils.tensorboard.summary import hparams

        # Into this run's own folder (SummaryWriter.add_hparams would make a sub-run per call):
        # the hparams view reads the FINAL_METRICS scalars of the same folder as the results.
        experiment, start, self._session_end = hparams(hparams_of(config), {tag: 0.0 for tag in FINAL_METRICS})
        file_writer = self._writer._get_file_writer()
        file_writer.add_summary(experiment)
        file_writer.add_summary(start)
