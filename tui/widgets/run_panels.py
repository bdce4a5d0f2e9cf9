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


class MetricsPanel(Static):
    """Train/val loss and accuracy, cycle loss, best so far, patience left."""

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
        return Text("loss  -\nacc   -\ncycle -\nbest  -", style="dim")

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
        t.add_column(justify="right", no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_row("", Text("train", style="cyan"), Text("val", style="orange1"))
        t.add_row("loss", fmt_num(tr.get("loss")), fmt_num(va.get("loss")))
        t.add_row("acc", fmt_num(tr.get("acc"), 3), fmt_num(va.get("acc"), 3))
        t.add_row("cycle", fmt_num(tr.get("cycle_loss")), fmt_num(va.get("cycle_loss")))
        best = Text("best ", style="bold", no_wrap=True, overflow="ellipsis")
        if state.best_epoch is not None:
            best.append(f"val {fmt_num(state.best_val_loss)} @{state.best_epoch}")
        else:
            best.append("-")
        patience = va.get("patience_left")
        configured = integer(live.config.get("patience"))
        tail = Text()
        if configured == 0:
            tail.append(" · patience off", style="dim")
        elif integer(patience) is not None:
            tail.append(" · patience ")
            tail.append(f"{patience} left", style="yellow" if patience <= 2 else "")
        acc = f" acc {fmt_num(state.best_val_acc, 3)}" if state.best_val_acc is not None and state.best_epoch is not None else ""
        if acc and len(best) + len(acc) + len(tail) <= width:
            best.append(acc)  # the accuracy at the best epoch, where there is room for it
        best.append_text(tail)
        return Group(t, best)
