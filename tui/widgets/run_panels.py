"""Text panels of the dashboard: progress (epochs, batches, speed) and latest metrics.

Both render from a LiveRun and redraw only when its version counters moved.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tui.live_run import LiveRun, fmt_duration, fmt_num, integer, number


def _bar_row(label: str, done: float, total: float, right: str) -> Table:
    row = Table.grid(expand=True, padding=(0, 1))
    row.add_column(no_wrap=True)
    row.add_column(ratio=1)
    row.add_column(no_wrap=True, justify="right")
    total = max(total, 1e-9)
    row.add_row(
        Text(label, style="bold"),
        ProgressBar(total=total, completed=min(done, total), complete_style="cyan", finished_style="green"),
        Text(right),
    )
    return row


class ProgressPanel(Static):
    """Epochs with the whole run's ETA, batches within the epoch, graphs per second."""

    DEFAULT_CSS = """
    ProgressPanel {
        height: 3;
        width: 1fr;
    }
    """

    def __init__(self, **kwargs: Any):
        super().__init__(self._idle(), **kwargs)
        self._version: tuple[int, int, int] | None = None

    @staticmethod
    def _idle() -> Text:
        return Text.assemble(("Epoch  -\n", "bold"), ("Batch  -\n", "bold"), ("no run attached", "dim"))

    def clear(self) -> None:
        self._version = None
        self.update(self._idle())

    def show(self, live: LiveRun) -> None:
        key = (live.serial, live.progress_version, live.status_version)
        if key == self._version:
            return
        self._version = key
        # A fixed height: new numbers never need a new layout of the screen.
        self.update(self.render_live(live), layout=False)

    @staticmethod
    def render_live(live: LiveRun) -> Group:
        epochs = live.epochs or integer(live.config.get("epochs")) or 0
        done = live.epochs_done()
        batch = live.batch_position()
        frac = batch[0] / batch[1] if batch and batch[1] and live.status is None else 0.0
        early = stopped_early_text(live)
        if early is not None:
            # Not a bar stuck short of its end: the run is over, and says why it stopped there.
            rows: list[Any] = [Text(early, style="bold green", no_wrap=True, overflow="ellipsis")]
        else:
            epoch_label = f"Epoch {done}/{epochs}" if epochs else f"Epoch {done}"
            rows = [_bar_row(epoch_label, done + frac, epochs or 1, f"{100 * (done + frac) / max(epochs, 1):3.0f}%")]
        if batch:
            rows.append(_bar_row(f"Batch {batch[0]}/{batch[1]}", batch[0], batch[1], f"{100 * batch[0] / max(batch[1], 1):3.0f}%"))
        else:
            rows.append(Text("Batch -", style="bold"))
        speed = number(live.latest("graphs_per_s"))
        speed_text = f"{speed:,.0f} graphs/s" if speed is not None else "- graphs/s"
        status = live.status
        if status == "finished":
            tail = f"done in {fmt_duration((live.terminal or {}).get('total_time_s'))}"
        elif status is not None:
            tail = f"elapsed {fmt_duration(live.latest('elapsed_s'))}"
        else:
            eta = live.latest("eta_s")
            tail = f"ETA {fmt_duration(eta)}" if eta is not None else "ETA -"
        rows.append(Text(f"{tail} · {speed_text}", no_wrap=True, overflow="ellipsis"))
        return Group(*rows)


def stopped_early_text(live: LiveRun) -> str | None:
    """"Stopped early at E/N (patience P)" for a run that early stopping ended; else None."""
    end = live.terminal or {}
    if end.get("type") != "finished" or end.get("reason") != "early_stopped":
        return None
    done = integer(end.get("epochs_done")) or live.epochs_done()
    planned = live.epochs or integer(live.config.get("epochs"))
    patience = integer(live.config.get("patience"))
    text = f"Stopped early at {done}/{planned}" if planned else f"Stopped early at epoch {done}"
    return text + (f" (patience {patience})" if patience else "")


def patience_text(live: LiveRun, state: Any) -> Text:
    """Early stopping's count, in its true unit: PATIENCE is epochs without a better val
    loss, checked after every epoch, while val loss is only measured every EVAL_EVERY
    epochs (the count is reset at an eval that improves on the best)."""
    configured = integer(live.config.get("patience"))
    text = Text(no_wrap=True, overflow="ellipsis")
    if configured is None:
        return text
    if configured == 0:
        text.append("patience off: no early stopping", style="dim")
        return text
    if stopped_early_text(live) is not None:
        text.append(f"patience 0/{configured} epochs left: stopped", style="yellow")
        return text
    every = integer(live.config.get("eval_every")) or 1
    cadence = f" · val every {every}" if every > 1 else ""
    if state.best_epoch is None:
        text.append(f"patience {configured} epochs, from the first val{cadence}", style="dim")
        return text
    # The eval event's patience_left as of that eval, counted on by the epochs since:
    # the engine checks after every epoch, so the count falls per epoch, not per eval.
    left = max(0, configured - (live.epochs_done() - state.best_epoch))
    text.append("patience ")
    text.append(f"{left}/{configured}", style="yellow" if left <= max(1, every) else "bold")
    text.append(f" epochs left{cadence}")
    return text


class MetricsPanel(Static):
    """Train/val loss, accuracy and cycle loss, the best epoch's val numbers, patience left."""

    DEFAULT_CSS = """
    MetricsPanel {
        height: 5;
        width: 1fr;
    }
    """

    def __init__(self, **kwargs: Any):
        super().__init__(self._idle(), **kwargs)
        self._version: tuple[int, int] | None = None

    @staticmethod
    def _idle() -> Text:
        return Text("       train  val  best\nloss  -\nacc   -\ncycle -", style="dim")

    def clear(self) -> None:
        self._version = None
        self.update(self._idle())

    def show(self, live: LiveRun) -> None:
        key = (live.serial, live.progress_version, self.size.width)
        if key == self._version:
            return
        self._version = key
        self.update(self.render_live(live, self.size.width or 80), layout=False)

    def on_resize(self) -> None:
        self._version = None

    @staticmethod
    def render_live(live: LiveRun, width: int = 80) -> Group:
        tr = live.last_epoch_end or {}
        va = live.last_eval or {}
        state = live.state()
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold", no_wrap=True)
        for _ in range(3):
            t.add_column(justify="right", no_wrap=True)
        # The best epoch's own val numbers side by side: its accuracy is epoch E's, not
        # the highest accuracy of some other epoch.
        best_cycle = None
        if state.best_epoch is not None:
            val = live.history().get("val") or {}
            epochs = val.get("epochs") or []
            if state.best_epoch in epochs:
                best_cycle = (val.get("cycle_loss") or [None] * len(epochs))[epochs.index(state.best_epoch)]
        best_head = Text(f"best@{state.best_epoch}" if state.best_epoch is not None else "best", style="green")
        t.add_row("", Text("train", style="cyan"), Text("val", style="orange1"), best_head)
        t.add_row("loss", fmt_num(tr.get("loss")), fmt_num(va.get("loss")), fmt_num(state.best_val_loss))
        t.add_row("acc", fmt_num(tr.get("acc"), 3), fmt_num(va.get("acc"), 3), fmt_num(state.best_val_acc, 3))
        t.add_row("cycle", fmt_num(tr.get("cycle_loss")), fmt_num(va.get("cycle_loss")), fmt_num(best_cycle))
        return Group(t, patience_text(live, state))
