"""What the dashboard knows about one run: a fold of its events, without Textual.

Events arrive from a thread (in-process runs) or from a followed log (detached,
remote or finished runs), possibly both for the same seqs; `feed` keeps the
first copy of each seq and ignores the rest. Every part the dashboard draws
has a version counter, so a widget redraws only when its part changed.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable

from nsm.execution.render import EPOCH, elapsed_stamp, fmt_duration, fmt_num, integer, number, render  # noqa: F401 - the panels import them from here
from nsm.runs import events as ev
from nsm.runs.history import HistoryBuilder, StateBuilder
from nsm.text import plain

MAX_LOG_LINES = 500
MAX_GPU_POINTS = 4000

# Serial numbers of LiveRuns: never reused (unlike id(), which a new object may
# get once an old one is garbage collected), so two LiveRuns are told apart by them.
_SERIALS = itertools.count(1)


@dataclass(frozen=True)
class LogLine:
    t: float | None
    level: str  # info / warning / error / event
    text: str


class LiveRun:
    """The dashboard's model of one run, fed event by event."""

    def __init__(self, ref: str | None = None):
        self.ref = ref
        self.serial = next(_SERIALS)  # unique for the life of the process
        self.last_seq = -1
        self.events_seen = 0
        self._history = HistoryBuilder()
        self._state = StateBuilder()
        self.config: dict[str, Any] = {}
        self.environment: dict[str, Any] = {}
        self.backend: str | None = None
        self.epochs: int | None = None
        self.steps_per_epoch: int | None = None
        self.t0: float | None = None  # time of the first run_started: log times are relative to it
        self.progress: dict[str, Any] | None = None  # the latest progress event
        self.last_epoch_end: dict[str, Any] | None = None
        self.last_eval: dict[str, Any] | None = None
        self.terminal: dict[str, Any] | None = None  # terminal event of the latest attempt
        self.gpu_sample: dict[str, Any] | None = None
        self.gpu_samples: deque[tuple[float, dict[str, Any]]] = deque(maxlen=MAX_GPU_POINTS)
        self.logs: deque[LogLine] = deque(maxlen=MAX_LOG_LINES)
        self.log_count = 0  # lines ever added (the log pane appends the ones it has not shown)
        # Version counters, one per drawn part.
        self.history_version = 0
        self.progress_version = 0
        self.gpu_version = 0
        self.status_version = 0
        self._history_cache: tuple[int, dict[str, Any]] | None = None
        # The small per-epoch events, by epoch, so that a resume from an earlier
        # checkpoint can show the state at that checkpoint (the last progress,
        # epoch_end and val eval of each epoch: a few dicts per epoch).
        self._epoch_ends: dict[int, dict[str, Any]] = {}
        self._evals: dict[int, dict[str, Any]] = {}
        self._progress_at: dict[int, dict[str, Any]] = {}

    # ------------------------------------------------------------------ feed
    def feed_all(self, events: Iterable[dict[str, Any]]) -> int:
        n = 0
        for event in events:
            n += self.feed(event)
        return n

    def feed(self, event: Any) -> int:
        """Fold one event; returns 1 if it was new, 0 if it was a repeat or unusable."""
        if not isinstance(event, dict):
            return 0
        seq = integer(event.get("seq"))
        if seq is None or seq <= self.last_seq:
            return 0
        self.last_seq = seq
        self.events_seen += 1
        try:
            self._feed(event)
        except Exception as exc:  # a malformed payload must never take the dashboard down
            self._log(event, "warning", f"ignored a malformed {event.get('type')!r} event (seq {seq}): {type(exc).__name__}")
        return 1

    def _feed(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        self._history.feed(e)
        self._state.feed(e)
        logged = False
        if kind in (ev.RUN_STARTED, ev.RESUMED):
            logged = self._on_start(e)
        elif kind == ev.PROGRESS:
            self.progress = e
            self.progress_version += 1
            epoch = integer(e.get("epoch"))
            if epoch is not None:
                self._progress_at[epoch] = e
        elif kind == ev.EPOCH_END:
            self.last_epoch_end = e
            self.history_version += 1
            self.progress_version += 1
            epoch = integer(e.get("epoch"))
            if epoch is not None:
                self._epoch_ends[epoch] = e
        elif kind == ev.EVAL:
            self.last_eval = e
            epoch = integer(e.get("epoch"))
            if epoch is not None and e.get("split", "val") == "val":
                self._evals[epoch] = e
            self.history_version += 1
            self.progress_version += 1
        elif kind == ev.GPU:
            self._on_gpu(e)
        elif kind in ev.TERMINAL_TYPES:
            self._on_terminal(e)
        if not logged:
            # The one renderer writes the log; epochs are on the charts, not in the log.
            for line in render(e):
                if line.kind != EPOCH:
                    self._log(e, line.level, line.text)

    def _on_start(self, e: dict[str, Any]) -> bool:
        """Fold a start or resume; True when it wrote its own log line (a rewind says more)."""
        kind = e["type"]
        config = e.get("config")
        if isinstance(config, dict):
            self.config = config
        env = e.get("environment")
        if isinstance(env, dict):
            self.environment = env
        self.backend = e.get("backend") if isinstance(e.get("backend"), str) else self.backend or self.config.get("backend")
        planned = integer(e.get("epochs")) or integer(self.config.get("epochs"))
        if planned:
            self.epochs = planned
        steps = integer(e.get("steps_per_epoch"))
        if steps:
            self.steps_per_epoch = steps
        t = number(e.get("t"))
        if self.t0 is None and t is not None:
            self.t0 = t
        self.terminal = None
        self.progress = None
        rewound = self._rewind(e) if kind == ev.RESUMED else None
        self.status_version += 1
        self.history_version += 1
        self.progress_version += 1
        if rewound is None:
            return False
        first, last = rewound
        gone = f"epoch {first}" if first == last else f"epochs {first}–{last}"
        self._log(
            e,
            "event",
            f"resumed from {e.get('checkpoint')}: the run goes back to epoch {e.get('epoch')}"
            + (f", step {e.get('step')}" if integer(e.get("step")) else "")
            + f" ({gone} discarded)",
        )
        return True

    def _rewind(self, e: dict[str, Any]) -> tuple[int, int] | None:
        """A resume from before the epochs already seen: forget their events and
        show the state at the checkpoint. Returns the discarded epochs (first, last)."""
        epoch = integer(e.get("epoch"))
        seen = max([*self._epoch_ends, *self._evals], default=None)
        if epoch is None or seen is None or epoch >= seen:
            return None
        self._epoch_ends = {k: v for k, v in self._epoch_ends.items() if k <= epoch}
        self._evals = {k: v for k, v in self._evals.items() if k <= epoch}
        self._progress_at = {k: v for k, v in self._progress_at.items() if k <= epoch}
        self.last_epoch_end = self._epoch_ends[max(self._epoch_ends)] if self._epoch_ends else None
        self.last_eval = self._evals[max(self._evals)] if self._evals else None
        self.progress = self._progress_at[max(self._progress_at)] if self._progress_at else None
        return epoch + 1, seen

    def _on_gpu(self, e: dict[str, Any]) -> None:
        sample = e.get("sample")
        if not isinstance(sample, dict):
            return
        self.gpu_sample = sample
        t = number(sample.get("time")) or number(e.get("t"))
        if t is not None:
            self.gpu_samples.append((t, sample))
        self.gpu_version += 1

    def _on_terminal(self, e: dict[str, Any]) -> None:
        self.terminal = e
        self.status_version += 1
        self.progress_version += 1

    def _log(self, e: dict[str, Any], level: str, text: str) -> None:
        self.logs.append(LogLine(number(e.get("t")), level, text))
        self.log_count += 1

    # ------------------------------------------------------------ read side
    def history(self) -> dict[str, Any]:
        if self._history_cache is None or self._history_cache[0] != self.history_version:
            self._history_cache = (self.history_version, self._history.to_dict())
        return self._history_cache[1]

    def state(self) -> Any:
        return self._state.state()

    @property
    def status(self) -> str | None:
        """finished / interrupted / failed once the latest attempt ended; None before."""
        return self.terminal["type"] if self.terminal else None

    @property
    def started(self) -> bool:
        return self.t0 is not None

    @property
    def failed(self) -> dict[str, Any] | None:
        return self.terminal if self.terminal and self.terminal.get("type") == ev.FAILED else None

    def failure_text(self) -> str:
        f = self.failed or {}
        return plain(f.get("error") or f.get("error_type") or "the run failed")

    def failure_hint(self) -> str | None:
        hint = (self.failed or {}).get("hint")
        return plain(hint) if hint else None

    def oom_batch_size(self) -> int | None:
        """The smaller BATCH_SIZE an out-of-memory failure suggests, if it was one."""
        f = self.failed
        if not f or f.get("error_type") != "oom":
            return None
        suggested = f.get("suggested_config")
        value = integer(suggested.get("batch_size")) if isinstance(suggested, dict) else None
        if value is None:
            current = integer(self.config.get("batch_size"))
            value = max(1, current // 2) if current else None
        return value if value and value >= 1 else None

    def epochs_done(self) -> int:
        return self.state().epoch

    def batch_position(self) -> tuple[int, int] | None:
        """(step, steps) of the epoch in progress, when known."""
        steps = self.steps_per_epoch
        p = self.progress
        done = self.epochs_done()
        if p is not None and integer(p.get("epoch")) == done + 1:
            step, total = integer(p.get("step")), integer(p.get("steps")) or steps
            if step is not None and total:
                return step, total
        if steps:
            return (steps, steps) if self.terminal and self.terminal.get("type") == ev.FINISHED else (0, steps)
        return None

    def latest(self, key: str) -> Any:
        """The most recent value of a progress/epoch_end field (eta_s, graphs_per_s, elapsed_s)."""
        candidates = [e for e in (self.progress, self.last_epoch_end) if e is not None and number(e.get(key)) is not None]
        if not candidates:
            return None
        return max(candidates, key=lambda e: integer(e.get("seq")) or -1)[key]

    def log_time(self, line: LogLine) -> str:
        return elapsed_stamp(line.t, self.t0) or "     "
