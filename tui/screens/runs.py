"""Runs & checkpoints browser (F2): every run of the store, grouped by domain,
with its checkpoints; evaluate, resume, attach, config, diff, copy, export, delete.

The store is listed in a thread worker (cached reads: an unchanged run costs
a few stats), refreshed every couple of seconds while the screen is shown,
so runs started, finished or deleted by other processes show up by
themselves. Nothing here trusts a run directory to stay put: every action
re-reads the run and reports a vanished or broken one instead of failing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from tui.screens.base import AppScreen, cursor_key
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.worker import get_current_worker

from nsm.config import DOMAINS
from nsm.runs import CheckpointInfo, Run, RunIsRunning, RunNotFound, RunStoreError, RunSummary
from nsm.runs.compare import config_differences, ood_label, ood_numbers
from nsm.runs.store import RUNNING
from nsm.text import plain
from tui.columns import DATA_TABLE, Column, Fitted, fit_columns
from tui.dialogs.analysis_dialogs import ConfirmDialog, ExportDialog, InfoDialog, config_diff_table, config_table
from tui.messages import AttachRun, ResumeRun

REFRESH_S = 2.0

STATUS_STYLES = {
    "running": "bold green",
    "finished": "",
    "interrupted": "yellow",
    "failed": "bold red",
    "stale": "magenta",
    "created": "dim",
}


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" or size >= 100 else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}T"


def num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def when(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%m-%d %H:%M", time.localtime(t))


# ---------------------------------------------------------------- listing


@dataclass(frozen=True)
class RunRow:
    summary: RunSummary
    size: int

    @property
    def ref(self) -> str:
        return self.summary.ref


# (label, key, newest/largest first by default); None values always sort last.
SORTS: list[tuple[str, Callable[[RunRow], Any], bool]] = [
    ("started", lambda r: r.summary.sort_time, True),
    ("name", lambda r: r.summary.name.lower(), False),
    ("status", lambda r: r.summary.status, False),
    ("epochs", lambda r: r.summary.epoch, True),
    ("val acc", lambda r: r.summary.best_val_acc, True),
    ("val loss", lambda r: r.summary.best_val_loss, False),
    ("test acc", lambda r: r.summary.state.test_acc, True),
    ("size", lambda r: r.size, True),
]

# The runs table's columns, most important kept longest when the screen is narrow (80
# columns over ssh): the mark, the domain and the run name always; the start time, the
# size and the test score (runs are never chosen by it) go first. `s` still sorts by them.
RUN_COLUMNS = [
    Column(" ", keep=True),
    Column("domain", priority=87, short="dom"),
    Column("run", keep=True),
    Column("status", priority=90),
    Column("epochs", priority=60, short="ep"),
    Column("val acc", priority=80, numeric=True),
    Column("val loss", priority=85, numeric=True),
    Column("test acc", priority=40, short="test", numeric=True),
    Column("started", priority=30),
    Column("size", priority=35),
]


def run_columns(splits: Sequence[str]) -> list[Column]:
    """RUN_COLUMNS, with one column per OOD split after test acc when some listed run has
    one ("OOD 11-20", short "11-20"): read, never chosen by, the first to go when narrow."""
    at = next(i for i, c in enumerate(RUN_COLUMNS) if c.label == "test acc") + 1
    ood = [Column(ood_label(s), priority=10, short=ood_label(s, short=True), numeric=True) for s in splits]
    return [*RUN_COLUMNS[:at], *ood, *RUN_COLUMNS[at:]]


def ood_acc(summary: RunSummary) -> dict[str, float]:
    """A run's OOD accuracies by split from its log's finished event, as its test accuracy
    ({} for a run made before the OOD splits, or not finished)."""
    return ood_numbers(summary.state, {}, {})[0]


def ood_splits_of(rows: list[RunRow]) -> list[str]:
    """The OOD splits some of `rows` has, first seen first."""
    names: list[str] = []
    for row in rows:
        names += [name for name in ood_acc(row.summary) if name not in names]
    return names

CHECKPOINT_COLUMNS = [
    Column("file", keep=True),
    Column("kind", priority=70),
    Column("epoch", priority=80, short="ep"),
    Column("val loss", priority=90, numeric=True),
    Column("val acc", priority=85, numeric=True),
    Column("size", priority=50),
    Column("saved", priority=40),
]

_SIZE_CACHE: dict[str, tuple[tuple[int, int], int]] = {}


def run_disk_size(path: Path) -> int:
    """A run's size, recomputed only when its folder or its log changed
    (an atomic checkpoint write renames into the folder, moving its mtime)."""
    try:
        stamp = (path.stat().st_mtime_ns, (path / "events.jsonl").stat().st_size)
    except FileNotFoundError:
        try:
            stamp = (path.stat().st_mtime_ns, -1)
        except OSError:
            return 0
    except OSError:
        return 0
    hit = _SIZE_CACHE.get(str(path))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    size = Run(path).disk_size()
    _SIZE_CACHE[str(path)] = (stamp, size)
    return size


def list_rows(store: Any) -> dict[str, RunRow]:
    return {s.ref: RunRow(s, run_disk_size(s.path)) for s in store.list_runs()}


def prefetch_runs(store: Any) -> Any:
    """Read the store once in a background thread, so that the first open
    of the runs screen finds every log already summarised (the app can call
    this at start-up; without it the first open reads every log itself)."""
    import threading

    def read() -> None:
        try:
            list_rows(store)
        except Exception:
            pass  # the screen reports listing problems when it opens

    thread = threading.Thread(target=read, name="prefetch-runs", daemon=True)
    thread.start()
    return thread


def domain_order(domain: str) -> tuple[int, str]:
    return (DOMAINS.index(domain) if domain in DOMAINS else len(DOMAINS), domain)


def matches(row: RunRow, words: list[str]) -> bool:
    s = row.summary
    hay = f"{s.domain}/{s.name} {s.status}".lower()
    return all(w in hay for w in words)


def arrange(rows: list[RunRow], sort_index: int, reverse: bool, text: str) -> list[RunRow]:
    """Filtered rows, grouped by domain, sorted inside each group."""
    words = text.lower().split()
    shown = [r for r in rows if matches(r, words)]
    _label, key, descending = SORTS[sort_index]
    descending ^= reverse
    with_value = [r for r in shown if key(r) is not None]
    without = [r for r in shown if key(r) is None]
    with_value.sort(key=key, reverse=descending)
    ordered = with_value + without
    # A stable sort by domain keeps the chosen order inside each group.
    ordered.sort(key=lambda r: domain_order(r.summary.domain))
    return ordered


class RunsScreen(AppScreen):
    """Runs grouped by domain (table) and the highlighted run's checkpoints."""

    DEFAULT_CSS = """
    RunsScreen #runs-filter {
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
    }
    RunsScreen #runs-status {
        height: 1;
        color: $text-muted;
        padding: 0 1;
    }
    RunsScreen #runs-table {
        height: 1fr;
        min-height: 5;
    }
    RunsScreen #ckpt-title {
        height: 1;
        padding: 0 1;
        background: $boost;
        text-style: bold;
    }
    RunsScreen #ckpt-table {
        height: 7;
    }
    RunsScreen #run-detail {
        height: auto;
        max-height: 3;
        padding: 0 1;
        color: $text-muted;
    }
    """

    # The footer shows the everyday keys (an 80-column footer has room for
    # about eight); `?` lists them all, and so does the command palette.
    BINDINGS = [
        Binding("e", "evaluate", "Evaluate"),
        Binding("r", "resume", "Resume"),
        Binding("a", "attach", "Attach"),
        Binding("space", "mark", "Mark"),
        Binding("d", "diff", "Diff"),
        Binding("x,delete", "delete", "Delete"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("question_mark", "keys", "Keys"),
        Binding("c", "show_config", "Config", show=False),
        Binding("v", "compare", "Compare marked", show=False),
        Binding("y", "copy_path", "Copy path", show=False),
        Binding("o", "export", "Export", show=False),
        Binding("s", "cycle_sort", "Sort", show=False),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("R", "reload", "Reload", show=False),
        Binding("escape", "escape", "Back", show=False),
        Binding("g", "sample_graph", "Sample graph", show=False),
        Binding("D", "download", "Download from Modal", show=False),
    ]
    AUTO_FOCUS = "#runs-table"

    class RunsListed(Message):
        """The table shows a fresh listing (`shown` of `total` runs)."""

        def __init__(self, total: int, shown: int) -> None:
            super().__init__()
            self.total = total
            self.shown = shown

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, RunRow] = {}
        self.shown: list[RunRow] = []
        self.marked: list[str] = []
        self.sort_index = 0
        self.sort_reverse = False
        self.filter_text = ""
        self.listed_once = False
        self.checkpoints: list[CheckpointInfo] = []
        self._checkpoints_of: str | None = None
        self._signature: tuple[Any, ...] | None = None
        self._ckpt_signature: tuple[Any, ...] | None = None
        self._list_error: str | None = None
        self.columns_shown: Fitted | None = None  # the columns shown at this width
        self._select_ref: str | None = None  # a run to put the cursor on once it is listed

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="/ filter: name, domain or status (words all match)", id="runs-filter")
        yield Static("reading runs…", id="runs-status")
        table = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("Checkpoints", id="ckpt-title")
        yield DataTable(id="ckpt-table", cursor_type="row")
        yield Static("", id="run-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.load_runs()
        self.set_interval(REFRESH_S, self._tick)

    def on_screen_resume(self) -> None:
        if self.listed_once:
            self.load_runs()

    def on_resize(self) -> None:
        if self.listed_once:
            self._show_rows()
            self.load_checkpoints()

    def _tick(self) -> None:
        if self.is_active:
            self.load_runs()

    # ----------------------------------------------------------- listing

    @work(thread=True, exclusive=True, group="runs-list", exit_on_error=False)
    def load_runs(self) -> None:
        worker = get_current_worker()
        error = None
        try:
            rows = list_rows(self.store)
        except Exception as exc:  # a store on a dead mount, permissions: say so and keep the last listing
            rows, error = None, f"cannot list {self.store.root}: {exc}"
        if worker.is_cancelled:
            return
        try:
            self.app.call_from_thread(self._listed, rows, error)
        except RuntimeError:
            pass  # the app is shutting down

    def _listed(self, rows: dict[str, RunRow] | None, error: str | None) -> None:
        self._list_error = error
        if rows is not None:
            self.rows = rows
            self.marked = [r for r in self.marked if r in rows]
        self.listed_once = True
        self._show_rows()
        self._select_pending()
        self.post_message(self.RunsListed(len(self.rows), len(self.shown)))
        self.load_checkpoints()

    def show_run(self, ref: str) -> None:
        """Put the cursor on run `ref` ("domain/name"), now or once it is listed (the sweep
        screen opens a point's run here); a filter that hides it is cleared."""
        self._select_ref = ref
        if self.filter_text and not any(r.ref == ref for r in self.shown):
            self.query_one("#runs-filter", Input).value = ""
            self.filter_text = ""
            self._show_rows()
        if self._select_pending():
            self.load_checkpoints()
        else:
            self.load_runs()

    def _select_pending(self) -> bool:
        ref = self._select_ref
        if ref is None or not self.listed_once or not any(r.ref == ref for r in self.shown):
            return False
        self._select_ref = None
        table = self.query_one("#runs-table", DataTable)
        table.move_cursor(row=table.get_row_index(ref), animate=False)
        table.focus()
        return True

    def _show_rows(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        self.shown = arrange(list(self.rows.values()), self.sort_index, self.sort_reverse, self.filter_text)
        width = table.size.width or self.size.width or self.app.size.width
        signature = (width, *(self._row_signature(r) for r in self.shown))
        if signature != self._signature:
            self._signature = signature
            current = self.current_ref()
            cells, previous_domain = [], None
            splits = ood_splits_of(self.shown)
            for row in self.shown:
                domain = row.summary.domain
                cells.append(self._cells(row, show_domain=domain != previous_domain, splits=splits))
                previous_domain = domain
            layout = fit_columns(run_columns(splits), [[_cell_text(c) for c in row] for row in cells], width, DATA_TABLE)
            if self.columns_shown is None or layout.labels != self.columns_shown.labels:
                table.clear(columns=True)
                table.add_columns(*layout.labels)
            else:
                table.clear()
            self.columns_shown = layout
            for row, row_cells in zip(self.shown, cells):
                table.add_row(*layout.pick(row_cells), key=row.ref)
            if current in self.rows and any(r.ref == current for r in self.shown):
                table.move_cursor(row=table.get_row_index(current), animate=False)
        self._update_status()

    def _row_signature(self, row: RunRow) -> tuple[Any, ...]:
        s = row.summary
        return (
            row.ref, s.status, s.epoch, s.epochs, s.best_val_acc, s.best_val_loss, s.state.test_acc,
            tuple(ood_acc(s).items()), s.sort_time, row.size, row.ref in self.marked,
        )  # fmt: skip

    def _cells(self, row: RunRow, show_domain: bool, splits: Sequence[str] = ()) -> list[Any]:
        s = row.summary
        status = Text(s.status, style=STATUS_STYLES.get(s.status, ""))
        if s.problem:
            status.append(" !", style="bold red")
        epochs = f"{s.epoch}/{s.epochs}" if s.epochs is not None else str(s.epoch)
        ood = ood_acc(s) if splits else {}
        return [
            Text("●", style="bold cyan") if row.ref in self.marked else "",
            Text(s.domain, style="bold") if show_domain else "",
            s.name,
            status,
            Text(epochs, justify="right"),
            Text(num(s.best_val_acc), justify="right"),
            Text(num(s.best_val_loss), justify="right"),
            Text(num(s.state.test_acc), justify="right"),
            *(Text(num(ood.get(split)), justify="right") for split in splits),
            when(s.sort_time or None),
            Text(human_size(row.size), justify="right"),
        ]

    def _update_status(self) -> None:
        label, _key, descending = SORTS[self.sort_index]
        arrow = "↓" if descending ^ self.sort_reverse else "↑"
        parts = [f"{len(self.shown)} of {len(self.rows)} runs" if self.filter_text else f"{len(self.rows)} runs"]
        parts.append(f"sort: {label} {arrow} (s)")
        if self.filter_text:
            parts.append(f"filter: {self.filter_text!r}")
        if self.marked:
            parts.append(f"marked: {len(self.marked)}")
        text = Text("  ·  ".join(parts))
        if self._list_error:
            text = Text(self._list_error, style="bold red")
        elif not self.rows and self.listed_once:
            text = Text(f"no runs in {self.store.root} — start one from the dashboard (F1) or `nsm-tui train`")
        self.query_one("#runs-status", Static).update(text)

    # ------------------------------------------------------- checkpoints

    @on(DataTable.RowHighlighted, "#runs-table")
    def _run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value != self._checkpoints_of:
            self.load_checkpoints()

    def load_checkpoints(self) -> None:
        ref = self.current_ref()
        self._read_checkpoints(ref, self.rows.get(ref) if ref else None)

    @work(thread=True, exclusive=True, group="runs-ckpts", exit_on_error=False)
    def _read_checkpoints(self, ref: str | None, row: RunRow | None) -> None:
        worker = get_current_worker()
        checkpoints: list[CheckpointInfo] = []
        val: dict[int, tuple[Any, Any]] = {}
        if row is not None:
            run = Run(row.summary.path)
            try:
                checkpoints = run.checkpoints()
                history = run.history()
                v = history.get("val") or {}
                val = {e: (l, a) for e, l, a in zip(v.get("epochs") or [], v.get("loss") or [], v.get("acc") or [])}
            except Exception:
                pass  # deleted or unreadable meanwhile: the next listing says so
        if worker.is_cancelled:
            return
        try:
            self.app.call_from_thread(self._show_checkpoints, ref, checkpoints, val)
        except RuntimeError:
            pass

    def _show_checkpoints(self, ref: str | None, checkpoints: list[CheckpointInfo], val: dict[int, tuple[Any, Any]]) -> None:
        self._checkpoints_of = ref
        self.checkpoints = checkpoints
        table = self.query_one("#ckpt-table", DataTable)
        width = table.size.width or self.size.width or self.app.size.width
        signature = (width, ref, tuple((c.file, c.size, c.mtime) for c in checkpoints))
        if signature != self._ckpt_signature:
            self._ckpt_signature = signature
            current = self.current_checkpoint_file()
            cells = []
            for c in checkpoints:
                loss = c.metrics.get("val_loss")
                acc = c.metrics.get("val_acc")
                if c.epoch in val and c.step == 0:
                    loss, acc = val[c.epoch]
                epoch = "-" if c.epoch is None else (f"{c.epoch}" if c.step == 0 else f"{c.epoch}+{c.step} steps")
                cells.append([
                    Text(plain(c.file)), c.kind, epoch,
                    Text(num(loss if isinstance(loss, (int, float)) else None), justify="right"),
                    Text(num(acc if isinstance(acc, (int, float)) else None), justify="right"),
                    Text(human_size(c.size), justify="right"), when(c.mtime),
                ])  # fmt: skip
            layout = fit_columns(CHECKPOINT_COLUMNS, [[_cell_text(x) for x in row] for row in cells], width, DATA_TABLE)
            table.clear(columns=True)
            table.add_columns(*layout.labels)
            for c, row_cells in zip(checkpoints, cells):
                table.add_row(*layout.pick(row_cells), key=c.file)
            if current and any(c.file == current for c in checkpoints):
                table.move_cursor(row=table.get_row_index(current), animate=False)
        row = self.rows.get(ref) if ref else None
        title = f"Checkpoints of {ref}" if ref else "Checkpoints"
        if ref and not checkpoints:
            title += " — none yet"
        self.query_one("#ckpt-title", Static).update(title)
        self.query_one("#run-detail", Static).update(self._detail(row))

    def _detail(self, row: RunRow | None) -> Text:
        if row is None:
            return Text("")
        s = row.summary
        text = Text(plain(s.path), style="dim")
        if s.status == "stale":
            text.append("\nstale: no terminal event and no live process — it crashed or was killed; resume it (r)", style="magenta")
        if s.error:
            text.append(f"\nerror: {plain(s.error)}", style="red")
        if s.problem:
            text.append(f"\nproblem: {plain(s.problem)}", style="red")
        return text

    # ----------------------------------------------------------- helpers

    def current_ref(self) -> str | None:
        return cursor_key(self.query_one("#runs-table", DataTable))

    def current_row(self) -> RunRow | None:
        ref = self.current_ref()
        return self.rows.get(ref) if ref else None

    def current_checkpoint_file(self) -> str | None:
        return cursor_key(self.query_one("#ckpt-table", DataTable))

    def _chosen_checkpoint(self) -> CheckpointInfo | None:
        """The checkpoint under the cursor when the checkpoint table has focus."""
        if self.focused is not self.query_one("#ckpt-table", DataTable) or self._checkpoints_of != self.current_ref():
            return None
        file = self.current_checkpoint_file()
        return next((c for c in self.checkpoints if c.file == file), None)

    def _need_run(self) -> Run | None:
        row = self.current_row()
        if row is None:
            self.notify("No run selected" if self.rows else "The store has no runs yet", severity="warning")
            return None
        run = Run(row.summary.path)
        if not run.exists():
            self.notify(f"Run {row.ref} no longer exists (deleted by another process?)", severity="error")
            self.load_runs()
            return None
        return run

    # ----------------------------------------------------------- actions

    @on(DataTable.RowSelected, "#runs-table")
    def _run_selected(self) -> None:
        self.query_one("#ckpt-table", DataTable).focus()

    @on(DataTable.RowSelected, "#ckpt-table")
    def _checkpoint_selected(self) -> None:
        self.action_evaluate()

    def action_evaluate(self) -> None:
        run = self._need_run()
        if run is None:
            return
        chosen = self._chosen_checkpoint()
        if chosen is None:
            checkpoints = run.checkpoints()
            if not checkpoints:
                self.notify(f"{run.ref} has no checkpoint yet: nothing to evaluate", severity="warning")
                return
            best = [c for c in checkpoints if c.kind == "best"]
            chosen = best[0] if best else checkpoints[-1]
        from tui.screens.evaluation import EvaluationScreen

        self.app.push_screen(EvaluationScreen(run, chosen.file))

    @work(exclusive=True, group="runs-action")
    async def action_resume(self) -> None:
        """Resume the run from the checkpoint under the cursor (else its latest), where it trains:
        the execution layer's rules say whether and from where, its backend says how."""
        from nsm.execution import IN_PROCESS, MODAL, Backend, backend_for

        run = self._need_run()
        if run is None:
            return
        chosen = self._chosen_checkpoint()
        file = chosen.file if chosen is not None else None
        backend: Backend
        try:
            backend = backend_for(run)  # where the run trains: its config, or Modal for a Modal run
            # Modal's rules read the volume's files: network calls with deadlines, off the loop.
            plan = await asyncio.to_thread(backend.plan, run, file) if backend.slow else backend.plan(run, file)
        except Exception as exc:  # noqa: BLE001 - NotResumable, RunLocked, ModalError: their own wording
            self.notify(_one_line(exc), severity="error", timeout=8)
            return
        where = backend.name
        how = {
            IN_PROCESS: "inside this app (its config's in-process backend)",
            MODAL: "on Modal",
        }.get(where, "as a background process")
        message = f"Continue {run.ref} from {plan.describe()} {how}, then follow it on the dashboard."
        if plan.rewinds:
            message += (
                "\nThis goes back to an earlier point: the epochs after this checkpoint are moved aside "
                "to discarded/ and trained again."
            )
        ok = await self.app.push_screen_wait(ConfirmDialog("Resume run?", message, "Resume"))
        if not ok:
            return
        checkpoint = plan.file if plan.explicit else None
        if where == IN_PROCESS:
            # The dashboard owns in-process runs: it resumes this one (the rules are asked again there).
            self.app.post_message(ResumeRun(run.ref, checkpoint))
            return
        try:
            # A detached process starts in milliseconds, Modal in seconds: both off the loop.
            execution = await asyncio.to_thread(backend.resume, plan)
        except Exception as exc:  # noqa: BLE001 - one line for the user, never a traceback
            self.notify(f"Could not resume {run.ref}: {_one_line(exc)}", severity="error", timeout=8)
            return
        how = " on Modal" if where == MODAL else f" (pid {execution.pid})" if execution.pid else ""
        self.notify(f"Resumed {run.ref} from {plan.file}{how}")
        self.attach_dashboard(run.ref)

    def action_attach(self) -> None:
        row = self.current_row()
        if row is None:
            self.notify("No run selected", severity="warning")
            return
        self.attach_dashboard(row.ref)

    def attach_dashboard(self, ref: str) -> None:
        """Make the dashboard follow run `ref` and show it (the app does both)."""
        self.app.post_message(AttachRun(ref))

    def action_show_config(self) -> None:
        run = self._need_run()
        if run is None:
            return
        try:
            body: Any = config_table(run.config())
        except RunStoreError as exc:
            body = Text(f"{exc}", style="red")
        self.app.push_screen(InfoDialog(f"Config of {run.ref}", body))

    def action_mark(self) -> None:
        ref = self.current_ref()
        if ref is None:
            return
        if ref in self.marked:
            self.marked.remove(ref)
        else:
            self.marked.append(ref)
        self._show_rows()
        table = self.query_one("#runs-table", DataTable)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_diff(self) -> None:
        refs = list(self.marked)
        current = self.current_ref()
        if len(refs) == 1 and current and current not in refs:
            refs.append(current)
        if len(refs) != 2:
            self.notify("Mark two runs with space, then press d to diff their configs", severity="warning")
            return
        configs: dict[str, Any] = {}
        for ref in refs:
            row = self.rows.get(ref)
            try:
                configs[ref] = Run(row.summary.path).config() if row else None
            except RunStoreError as exc:
                self.notify(str(exc), severity="error")
                return
            if configs[ref] is None:
                self.notify(f"Run {ref} no longer exists", severity="error")
                return
        diffs = config_differences(configs)
        names = [ref.split("/", 1)[1] for ref in refs]
        title = f"Config diff: {refs[0]} vs {refs[1]} — {len(diffs)} setting(s) differ"
        self.app.push_screen(InfoDialog(title, config_diff_table(names, diffs, refs)))

    async def action_compare(self) -> None:
        refs = list(self.marked) or ([self.current_ref()] if self.current_ref() else [])
        if not refs:
            self.notify("Mark runs with space first", severity="warning")
            return
        app: Any = self.app
        await app.switch_mode("compare")
        compare = app.get_screen_for_mode("compare")
        show = getattr(compare, "show_runs", None)
        if callable(show):
            show(refs)

    def action_copy_path(self) -> None:
        row = self.current_row()
        if row is None:
            self.notify("No run selected", severity="warning")
            return
        checkpoint = self._chosen_checkpoint()
        path = str(checkpoint.path if checkpoint else row.summary.path)
        self.app.copy_to_clipboard(path)
        # OSC 52 is silently ignored by some terminals (and often over ssh):
        # the path is always shown so it can be selected by hand.
        self.notify(path, title="Copied to the clipboard", timeout=8)

    @work(exclusive=True, group="runs-action")
    async def action_export(self) -> None:
        run = self._need_run()
        if run is None:
            return
        choice = await self.app.push_screen_wait(ExportDialog(f"run {run.ref}", str(run.path)))
        if not choice:
            return
        fmt, folder = choice
        try:
            paths = await asyncio.to_thread(export_files, run, fmt, Path(folder).expanduser())
        except (RunStoreError, OSError, ValueError) as exc:
            self.notify(f"Export failed: {exc}", severity="error")
            return
        self.notify("\n".join(str(p) for p in paths), title=f"Exported {run.ref}", timeout=10)

    @work(exclusive=True, group="runs-action")
    async def action_delete(self) -> None:
        run = self._need_run()
        if run is None:
            return
        if run.status() == RUNNING:
            self.notify(f"{run.ref} is running: stop it before deleting it", severity="error")
            return
        row = self.rows.get(run.ref)
        size = human_size(row.size if row else None)
        count = len(run.checkpoints())
        message = (
            f"Delete {run.ref}?\n{run.path}\n{size} on disk, {count} checkpoint(s), its events and results.\n"
            "This cannot be undone."
        )
        ok = await self.app.push_screen_wait(ConfirmDialog("Delete run?", message, "Delete", danger=True))
        if not ok:
            return
        try:
            await asyncio.to_thread(self.store.delete, run.ref)
        except RunIsRunning as exc:
            self.notify(str(exc), severity="error")
            return
        except RunNotFound:
            pass  # someone else deleted it: the outcome the user asked for
        except (RunStoreError, OSError) as exc:
            self.notify(f"Could not delete {run.ref}: {exc}", severity="error")
            return
        self.marked = [r for r in self.marked if r != run.ref]
        self.notify(f"Deleted {run.ref}")
        self.load_runs()

    def action_sample_graph(self) -> None:
        run = self._need_run()
        if run is None:
            return
        from tui.screens.sample_graph import open_sample_graph

        chosen = self._chosen_checkpoint()
        open_sample_graph(self.app, run.domain, (self.current_row().summary.config or {}).get("seed"), run, chosen.file if chosen else None)

    @work(exclusive=True, group="runs-download")
    async def action_download(self) -> None:
        """D: a Modal run's checkpoints from the volume into its folder (network calls with deadlines, off the loop)."""
        run = self._need_run()
        if run is None:
            return
        if run.remote_info() is None:
            self.notify(f"{run.ref} is a local run: its checkpoints are already here (D downloads a Modal run's)", severity="warning")
            return
        from tui.modal_runs import download_missing_checkpoints

        def on_file(i: int, n: int, file: str) -> None:
            self.app.call_from_thread(self.notify, f"downloading {file} ({i} of {n}) from Modal…", timeout=4)

        self.notify(f"looking for {run.ref}'s checkpoints on the Modal volume…", timeout=3)
        try:
            fetched, left = await asyncio.to_thread(download_missing_checkpoints, run, on_file=on_file)
        except Exception as exc:  # noqa: BLE001 - ModalNotConfigured, ModalUnreachable, OSError: their own wording
            self.notify(f"Could not download {run.ref}'s checkpoints: {_one_line(exc)}", severity="error", timeout=10)
            return
        if not fetched:
            self.notify(f"{run.ref}: every checkpoint on the volume is already here")
        else:
            more = f"; {len(left)} left (took too long: press D again)" if left else ""
            self.notify(f"{run.ref}: downloaded {', '.join(fetched)}{more}", title="Downloaded from Modal", timeout=8)
        self._ckpt_signature = None
        self.load_checkpoints()

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.sort_reverse = False
        self._show_rows()

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._show_rows()

    def action_focus_filter(self) -> None:
        self.query_one("#runs-filter", Input).focus()

    def action_escape(self) -> None:
        runs = self.query_one("#runs-table", DataTable)
        if self.focused is not runs:
            runs.focus()
        elif self.filter_text:
            self.query_one("#runs-filter", Input).value = ""

    def action_reload(self) -> None:
        self.load_runs()

    def action_keys(self) -> None:
        from rich.table import Table

        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        table.add_column("key", no_wrap=True, style="bold")
        table.add_column("does")
        for line in KEYS_HELP.splitlines():
            key, _, does = line.partition("  ")
            table.add_row(key.strip(), does.strip())
        self.app.push_screen(InfoDialog("Keys of the runs screen", table))

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        if self.listed_once:
            self._show_rows()

    @on(Input.Submitted, "#runs-filter")
    def _filter_done(self) -> None:
        self.query_one("#runs-table", DataTable).focus()


KEYS_HELP = """\
enter      on a run: to its checkpoints; on a checkpoint: evaluate it
e          evaluate the checkpoint under the cursor (else the run's best_model.pt)
r          resume from the checkpoint under the cursor (else the latest), on the run's backend
a          attach the dashboard to the run
c          show the run's config
space      mark / unmark a run
d          diff the configs of the two marked runs (or marked + current)
v          compare the marked runs (F3)
y          copy the run's (or checkpoint's) path
o          export history and results: CSV, JSON, Markdown report
x, delete  delete the run (asks first; refused while it runs)
s / S      sort by the next column / reverse the order
/          filter by name, domain or status; escape leaves the filter
g          sample graph: traced through the checkpoint under the cursor (else the best)
D          download a Modal run's checkpoints from the volume (those not here yet)
R          read the store again now (it refreshes every 2 s by itself)
tab        move between the filter, the runs and the checkpoints
"""


def _cell_text(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _one_line(exc: BaseException) -> str:
    """An error as one line of notification: the rules' and Modal's messages are sentences."""
    from remote.errors import ModalError

    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if isinstance(exc, (RunStoreError, ModalError, OSError)):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def export_files(run: Run, fmt: str, folder: Path) -> list[Path]:
    """csv / json / md / all into `folder`; returns the files written."""
    from nsm.runs.export import export_run
    from tui.reports import write_report

    paths: list[Path] = []
    for one in ("csv", "json", "md") if fmt == "all" else (fmt,):
        if one == "md":
            paths.append(write_report(run, folder))
        else:
            paths += export_run(run, one, folder)
    return paths
