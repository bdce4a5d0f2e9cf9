"""Live overview (F6): every run that trains now, wherever it trains — in this app, as a
detached process, on Modal, as a sweep point — with its epoch, speed, ETA, state and
GPU; `enter` attaches the dashboard to the highlighted run (nvitop's process list,
for training runs).

The rows come from nsm.runs.live_overview (torch-free, cached reads: an unchanged
run costs a few stats), collected in a thread worker that schedules the next poll
itself once it is done, so a slow disk never stacks polls up.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from tui.screens.base import AppScreen, cursor_key
from textual.widgets import DataTable, Footer, Header, Static

from nsm.runs import live_overview as lo
from nsm.text import plain
from tui.messages import AttachRun

POLL_S = 1.5

STATE_STYLES = {
    lo.RUNNING: "bold green",
    lo.STARTING: "cyan",
    lo.STALE_HEARTBEAT: "bold magenta",
    lo.RECONNECTING: "yellow",
    lo.NO_MIRROR: "yellow",
}
RIGHT = {"epoch", "g/s", "ETA", "GPU"}


class OverviewScreen(AppScreen):
    """One row per run that trains now; the highlighted row's details below the table."""

    DEFAULT_CSS = """
    OverviewScreen #live-status {
        height: 1;
        color: $text-muted;
        padding: 0 1;
    }
    OverviewScreen #live-table {
        height: 1fr;
    }
    OverviewScreen #live-detail {
        height: 2;
        padding: 0 1;
        color: $text-muted;
    }
    """

    BINDINGS = [
        # Priority: the table would take enter first, and say nothing when it is empty.
        Binding("enter", "attach", "Attach", priority=True),
        Binding("R", "reload", "Reload"),
    ]
    AUTO_FOCUS = "#live-table"

    class Polled(Message):
        """The table shows a fresh collection of `count` rows."""

        def __init__(self, count: int) -> None:
            super().__init__()
            self.count = count

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        # The snapshot app passes a fixed clock: ETAs and "ago" then read the same on any machine.
        self.clock = clock
        self.rows: list[lo.LiveRow] = []
        self.polled_once = False
        self._collector: lo.LiveCollector | None = None
        self._signature: tuple[Any, ...] | None = None
        self._error: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("looking for runs that train…", id="live-status")
        yield DataTable(id="live-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="live-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#live-table", DataTable)
        for column in lo.COLUMNS:
            table.add_column(Text(column, justify="right") if column in RIGHT else column, key=column)
        self.poll()

    def on_screen_resume(self) -> None:
        if self.polled_once:
            self.poll()

    def _in_app(self) -> list[str]:
        session = getattr(self.app, "session", None)
        return [w.label for w in session.training()] if session is not None else []

    # ------------------------------------------------------------ polling

    @work(thread=True, exclusive=True, group="live-poll", exit_on_error=False)
    def poll(self) -> None:
        if self._collector is None or self._collector.store is not self.store:
            self._collector = lo.LiveCollector(self.store)
        error = None
        try:
            rows = self._collector.collect(self._in_app(), now=self.clock())
        except Exception as exc:  # a store on a dead mount: say so, keep the last rows
            rows, error = None, f"cannot read {self.store.root}: {exc}"
        try:
            self.app.call_from_thread(self._polled, rows, error)
        except RuntimeError:
            pass  # the app is shutting down

    def _polled(self, rows: list[lo.LiveRow] | None, error: str | None) -> None:
        self._error = error
        if rows is not None:
            self.rows = rows
        self.polled_once = True
        self._show()
        self.post_message(self.Polled(len(self.rows)))
        # The next poll once this one is shown: never two at once, whatever the disk does.
        self.set_timer(POLL_S, self._next_poll)

    def _next_poll(self) -> None:
        if self.is_active:
            self.poll()
        # An inactive screen polls again when it is shown (on_screen_resume).

    def action_reload(self) -> None:
        self.poll()

    # ------------------------------------------------------------- layout

    def _show(self) -> None:
        table = self.query_one("#live-table", DataTable)
        now = self.clock()
        cells = lo.table_rows(self.rows, now)
        signature = tuple((r.ref, *c) for r, c in zip(self.rows, cells))
        if signature != self._signature:
            self._signature = signature
            current = self.current_ref()
            table.clear()
            for row, texts in zip(self.rows, cells):
                table.add_row(*self._cells(row, texts), key=row.ref)
            if current is not None and any(r.ref == current for r in self.rows):
                table.move_cursor(row=table.get_row_index(current), animate=False)
        self._update_status()
        self._update_detail()

    def _cells(self, row: lo.LiveRow, texts: list[str]) -> list[Any]:
        out: list[Any] = []
        for column, text in zip(lo.COLUMNS, texts):
            if column == "state":
                out.append(Text(text, style=STATE_STYLES.get(text, "")))
            elif column in RIGHT:
                out.append(Text(text, justify="right"))
            else:
                out.append(plain(text))
        return out

    def _update_status(self) -> None:
        if self._error:
            text = Text(self._error, style="bold red")
        elif not self.rows and self.polled_once:
            text = Text("nothing trains now — start a run on the dashboard (F1), `nsm-tui train`, or a sweep (F4)")
        else:
            counts: dict[str, int] = {}
            for r in self.rows:
                counts[r.backend] = counts.get(r.backend, 0) + 1
            where = ", ".join(f"{n} {b}" for b, n in counts.items())
            text = Text(f"{len(self.rows)} training" + (f" ({where})" if where else "") + "  ·  enter attaches")
        self.query_one("#live-status", Static).update(text)

    def _update_detail(self) -> None:
        row = self.current_row()
        detail = Text(plain(lo.describe(row, self.clock()))) if row is not None else Text("")
        self.query_one("#live-detail", Static).update(detail)

    @on(DataTable.RowHighlighted, "#live-table")
    def _highlighted(self) -> None:
        self._update_detail()

    # ------------------------------------------------------------- actions

    def current_ref(self) -> str | None:
        return cursor_key(self.query_one("#live-table", DataTable))

    def current_row(self) -> lo.LiveRow | None:
        ref = self.current_ref()
        return next((r for r in self.rows if r.ref == ref), None)

    def action_attach(self) -> None:
        row = self.current_row()
        if row is None:
            self.notify("Nothing trains now: no run to attach to", severity="warning")
            return
        if row.backend == lo.MODAL and row.state == lo.NO_MIRROR:
            self._start_mirror(row)
        self.app.post_message(AttachRun(row.ref))

    @work(thread=True, group="live-mirror", exit_on_error=False)
    def _start_mirror(self, row: lo.LiveRow) -> None:
        """A Modal run that nobody mirrors: start its mirror (as `nsm-tui attach` does), off the loop."""
        from nsm.runs import Run

        try:
            from tui.modal_runs import ensure_mirroring

            started = ensure_mirroring(Run(row.path))
        except Exception as exc:  # noqa: BLE001 - one line for the user
            self.app.call_from_thread(self.notify, f"could not start mirroring {row.ref}: {exc}", severity="error")
            return
        if started:
            self.app.call_from_thread(self.notify, f"mirroring {row.ref} from Modal again")
