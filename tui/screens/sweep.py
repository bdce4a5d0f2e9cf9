"""The sweep screen (F4): define a grid, run its queue, watch it, compare the points.

Three tabs (keys 1, 2, 3): Define (domain, grid rows `knob=v1,v2`, knobs every
point shares, or a JSON list of configs, and how many seeds each point runs
with; checked as you type), Queue (pending / running / done / failed / stopped,
with the current point's epoch and step) and Results (ranked by best validation
loss or accuracy, never by a test metric; the best finished point highlighted; each
out-of-distribution split's accuracy beside test when the points have one).
Over several seeds the results are one row per grid point: every number is the
mean ± 95% CI over its finished seeds, and ≈ marks a point whose difference from
the best is inside the noise (nsm.runs.aggregate: a Welch t-test at 0.05). `enter` on a point opens its run (its
evaluation when it has a checkpoint, else the runs browser on it); `b` opens the
best point. Both tables fit the screen's width (tui/columns.py).

The queue runs as a detached process that outlives the app (default), in a
thread of this app (registered with the app's session, so quitting asks
first), or on Modal (points in parallel on GPUs, as `nsm-tui sweep --backend
modal`). Either way the screen only reads the sweep file and the points' runs
on a self-rescheduling timer, so it shows a queue started from the CLI,
another terminal or an earlier session just the same.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from tui.screens.base import AppScreen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from nsm.config import DOMAINS, FIELDS, RunConfig
from nsm.execution import backend_name
from nsm.text import plain
from nsm.runs import RunStoreError
from nsm.sweeps import (
    DEFAULT_RANKING,
    DONE,
    FAILED,
    METRICS,
    PENDING,
    RUNNING,
    STOPPED,
    Point,
    Sweep,
    SweepError,
    SweepSnapshot,
    create_sweep,
    format_value,
    get_sweep,
    list_sweeps,
    request_stop,
    ranking_metric,
    result_rows,
    snapshot,
)
from nsm.runs.aggregate import SHORT_LEGEND
from nsm.runs.compare import ood_label
from nsm.sweeps.results import GroupRow, best_group, group_rows, is_grouped, ood_metric, ood_splits
from nsm.sweeps.plan import PlanError, SweepPlan, base_from, plan_sweep
from nsm.sweeps.sweep import validate_sweep_name
from tui.columns import DATA_TABLE, Column, fit_columns, knob_column
from tui.messages import AttachRun
from tui.session import SWEEP, Work

REFRESH_S = 0.5
SWEEP_LIST_EVERY = 10  # ticks between re-reading the list of sweeps
MODE_KEY = "sweep.mode"
LAST_CONFIG_KEYS = ("dashboard.last_config", "last_config")
DETACHED, IN_APP, MODAL = "process", "inprocess", "modal"
RUN_MODES = (
    ("detached queue (keeps running after the app closes)", DETACHED),
    ("in this app (a thread)", IN_APP),
    ("on Modal (points in parallel on GPUs)", MODAL),
)
MODAL_PARALLEL_KEY = "sweep.modal_max_parallel"
MODAL_MAX_PARALLEL = 4  # as `nsm-tui sweep --backend modal` (--max-parallel)
# Points at once in a detached queue, as `nsm-tui sweep --parallel` (N or "auto"); the in-app
# queue always trains one point at a time, in this app's process.
LOCAL_PARALLEL_KEY = "sweep.parallel"
GRID_ROWS = 3
FORM_INPUTS = tuple(f"grid-{i}" for i in range(GRID_ROWS)) + ("fixed", "configs", "name", "seeds")
BASE_SHOWN = ("epochs", "batch_size", "lr", "cycle_weight", "num_graphs", "device")
STATE_STYLE = {PENDING: "dim", RUNNING: "bold cyan", DONE: "green", FAILED: "bold red", STOPPED: "yellow"}


class SweepScreen(AppScreen):
    DEFAULT_CSS = """
    SweepScreen #top {
        height: 1;
        padding: 0 1;
    }
    SweepScreen #top Label {
        width: 6;
    }
    SweepScreen #sweep-pick {
        width: 32;
    }
    SweepScreen #sweep-status {
        width: 1fr;
        padding-left: 1;
    }
    SweepScreen TabbedContent {
        height: 1fr;
    }
    SweepScreen TabPane {
        padding: 0 1;
    }
    SweepScreen #form {
        height: 1fr;
    }
    SweepScreen .row {
        height: 1;
        margin-bottom: 1;
    }
    SweepScreen .row Label {
        width: 9;
    }
    SweepScreen .row Input {
        width: 1fr;
    }
    SweepScreen #domain {
        width: 16;
    }
    SweepScreen #mode-label {
        width: 6;
        padding-left: 1;
    }
    SweepScreen #mode {
        width: 1fr;
    }
    SweepScreen #seeds-label {
        width: 7;
        padding-left: 1;
    }
    SweepScreen #seeds {
        width: 6;
    }
    SweepScreen Input.-invalid {
        background: $error 25%;
    }
    SweepScreen #base {
        color: $text-muted;
        height: auto;
    }
    SweepScreen #plan {
        height: auto;
        margin-bottom: 1;
    }
    SweepScreen #plan.-error {
        color: $error;
    }
    SweepScreen #queue-summary {
        height: auto;
    }
    SweepScreen #metric-row {
        height: 1;
    }
    SweepScreen #metric-row Label {
        width: 10;
    }
    SweepScreen #metric {
        width: 18;
    }
    SweepScreen #metric-note {
        width: 1fr;
        padding-left: 1;
        color: $text-muted;
    }
    SweepScreen #best {
        height: auto;
        color: $success;
        text-style: bold;
    }
    SweepScreen DataTable {
        height: 1fr;
    }
    SweepScreen #queue-detail {
        height: auto;
        max-height: 3;
        color: $text-muted;
    }
    """

    BINDINGS = [
        Binding("ctrl+r", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("m", "next_metric", "Metric"),
        Binding("b", "open_best", "Best point"),
        Binding("a", "attach", "Attach", show=False, tooltip="follow the highlighted point's run on the dashboard"),
        Binding("n", "show_tab('define')", "New"),
        Binding("1", "show_tab('define')", "Define", show=False),
        Binding("2", "show_tab('queue-tab')", "Queue", show=False),
        Binding("3", "show_tab('results-tab')", "Results", show=False),
    ]

    class PointChanged(Message):
        """A point of the in-app queue started or ended (posted from the runner thread)."""

        def __init__(self, sweep: str, number: int, state: str) -> None:
            super().__init__()
            self.sweep = sweep
            self.number = number
            self.state = state

    class QueueEnded(Message):
        """The in-app queue returned: outcome 'finished', 'stopped' or 'error'."""

        def __init__(self, sweep: str, outcome: str, error: str | None = None) -> None:
            super().__init__()
            self.sweep = sweep
            self.outcome = outcome
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.sweep: Sweep | None = None
        self.snap: SweepSnapshot | None = None
        self.plan: SweepPlan | None = None
        self.metric = DEFAULT_RANKING
        self.runner: Any = None  # the in-app SweepRunner while it runs
        # Test hook for the in-app runner: (point index, epoch, step) before each step.
        self.step_hook: Callable[[int, int, int], None] | None = None
        self._ticks = 0
        self._sweep_names: list[str] = []
        self._queue_key: Any = None
        self._results_key: Any = None
        self._plan_error = ""
        self._base: dict[str, Any] = RunConfig().to_dict()
        self._base_source = "defaults"

    @property
    def context(self) -> Any:
        return self.app.context  # type: ignore[attr-defined]

    # ================================================================ layout
    def compose(self) -> ComposeResult:
        settings = self.context.settings
        self._base, self._base_source = self._initial_base(settings)
        mode = settings.get(MODE_KEY)
        domain = self._base.get("domain", FIELDS["domain"].default)
        yield Header()
        with Horizontal(id="top"):
            yield Label("Sweep")
            yield Select([], prompt="(none yet: define one)", id="sweep-pick", compact=True, type_to_search=False)
            yield Static("", id="sweep-status", markup=False)
        with TabbedContent(id="tabs"):
            with TabPane("Define (1)", id="define"):
                with VerticalScroll(id="form"):
                    with Horizontal(classes="row"):
                        yield Label("Domain")
                        yield Select(
                            [(d, d) for d in (*DOMAINS, "all")],
                            value=domain if domain in DOMAINS else DOMAINS[0],
                            allow_blank=False,
                            id="domain",
                            compact=True,
                            type_to_search=False,
                        )
                        yield Label("Run", id="mode-label")
                        yield Select(
                            RUN_MODES,
                            value=mode if mode in (DETACHED, IN_APP, MODAL) else DETACHED,
                            allow_blank=False,
                            id="mode",
                            compact=True,
                            type_to_search=False,
                        )
                    for i in range(GRID_ROWS):
                        with Horizontal(classes="row"):
                            yield Label("Grid" if i == 0 else "")
                            yield Input(
                                placeholder="knob=v1,v2,...  e.g. lr=1e-3,1e-4" if i == 0 else "knob=v1,v2,...  e.g. cycle_weight=0.01,0.05",
                                id=f"grid-{i}",
                                compact=True,
                            )
                    with Horizontal(classes="row"):
                        yield Label("Fixed")
                        yield Input(placeholder="knob=value ... shared by every point, e.g. epochs=10", id="fixed", compact=True)
                    with Horizontal(classes="row"):
                        yield Label("Configs")
                        yield Input(placeholder="or a JSON file with a list of configs (instead of the grid)", id="configs", compact=True)
                    with Horizontal(classes="row"):
                        yield Label("Name")
                        yield Input(placeholder="(generated)  runs are named NAME-01, NAME-02, ...", id="name", compact=True)
                        yield Label("Seeds", id="seeds-label")
                        yield Input(
                            placeholder="1", id="seeds", compact=True,
                            tooltip="runs per point, with SEED, SEED+1, ...: the results show mean ± 95% CI over them",
                        )  # fmt: skip
                    yield Static(self._base_text(), id="base", markup=False)
                    yield Static("", id="plan", markup=False)
                    yield Button("Start sweep (ctrl+r)", id="start", variant="success", compact=True)
            with TabPane("Queue (2)", id="queue-tab"):
                yield Static("", id="queue-summary", markup=False)
                yield DataTable(id="queue", cursor_type="row")
                yield Static("", id="queue-detail", markup=False)
            with TabPane("Results (3)", id="results-tab"):
                with Horizontal(id="metric-row"):
                    yield Label("Sorted by")
                    yield Select(
                        [(m.label, m.name) for m in METRICS.values()],
                        value=self.metric,
                        allow_blank=False,
                        id="metric",
                        compact=True,
                        type_to_search=False,
                    )
                    yield Static("", id="metric-note", markup=False)
                yield Static("", id="best", markup=False)
                yield DataTable(id="results", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self._update_plan()
        self._reload_sweep_list()
        if self._sweep_names:
            self.open_sweep(self._sweep_names[0])
        else:
            self.query_one("#grid-0", Input).focus()
        self.set_timer(REFRESH_S, self._tick)

    def on_screen_resume(self) -> None:
        self._reload_sweep_list()
        self.refresh_now()

    def on_unmount(self) -> None:
        # The app is closing: an in-app queue must not keep the process alive.
        if self.runner is not None:
            self.runner.request_stop("the app closed")

    # ============================================================ base config
    @staticmethod
    def _initial_base(settings: Any) -> tuple[dict[str, Any], str]:
        for key in LAST_CONFIG_KEYS:
            base = base_from(settings.get(key))
            if base is not None:
                return base, "the dashboard's last config"
        return RunConfig().to_dict(), "defaults"

    def _base_text(self) -> str:
        shown = " · ".join(f"{FIELDS[k].label} {format_value(self._base.get(k))}" for k in BASE_SHOWN)
        return f"base ({self._base_source}): {shown}; Fixed overrides it"

    # ================================================================== form
    def _form_values(self) -> dict[str, Any]:
        domain = self.query_one("#domain", Select).value
        return {
            "domains": list(DOMAINS) if domain == "all" else [str(domain)],
            "grid": [self.query_one(f"#grid-{i}", Input).value for i in range(GRID_ROWS)],
            "fixed": self.query_one("#fixed", Input).value,
            "configs_file": self.query_one("#configs", Input).value.strip() or None,
            "seeds": self.query_one("#seeds", Input).value,
        }

    @property
    def run_mode(self) -> str:
        value = self.query_one("#mode", Select).value
        return str(value) if value in (DETACHED, IN_APP, MODAL) else DETACHED

    @property
    def modal_max_parallel(self) -> int:
        value = self.context.settings.get(MODAL_PARALLEL_KEY, MODAL_MAX_PARALLEL)
        return value if isinstance(value, int) and value >= 1 else MODAL_MAX_PARALLEL

    def _update_plan(self) -> SweepPlan | None:
        """Check the form as typed: the plan line says what will run or what is wrong."""
        for field_id in FORM_INPUTS:
            self.query_one(f"#{field_id}", Input).remove_class("-invalid")
        line = self.query_one("#plan", Static)
        base = {**self._base, "backend": self.run_mode}
        try:
            plan = plan_sweep(base, **self._form_values())
            name = self.query_one("#name", Input).value.strip()
            if name:
                try:
                    validate_sweep_name(name)
                except SweepError as exc:
                    raise PlanError(str(exc), "name") from None
        except PlanError as exc:
            self.plan = None
            self._plan_error = str(exc)
            if not any(self.query_one(f"#{f}", Input).value.strip() for f in FORM_INPUTS):
                line.update(f"→ {exc}")  # an empty form is not an error yet
                line.remove_class("-error")
                return None
            if exc.field in FORM_INPUTS:
                self.query_one(f"#{exc.field}", Input).add_class("-invalid")
            line.update(f"✗ {exc}")
            line.add_class("-error")
            return None
        self.plan = plan
        where = f" (on Modal, at most {self.modal_max_parallel} at once)" if self.run_mode == MODAL else ""
        line.update(f"→ {plan.describe()}; {len(plan.configs)} new run(s) in {self.context.store.root}{where}")
        line.remove_class("-error")
        return plan

    @on(Input.Changed)
    def _form_changed(self, event: Input.Changed) -> None:
        if event.input.id in FORM_INPUTS:
            self._update_plan()

    @on(Input.Submitted)
    def _form_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in FORM_INPUTS:
            event.stop()
            self.action_start()

    @on(Select.Changed, "#domain")
    def _domain_changed(self) -> None:
        self._update_plan()

    @on(Select.Changed, "#mode")
    def _mode_changed(self) -> None:
        self.context.settings.set(MODE_KEY, self.run_mode)
        self._update_plan()

    @on(Button.Pressed, "#start")
    def _start_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_start()

    # ============================================================ choosing
    def _reload_sweep_list(self) -> None:
        names = [s.name for s in list_sweeps(self.context.store)]
        if names == self._sweep_names:
            return
        self._sweep_names = names
        pick = self.query_one("#sweep-pick", Select)
        with self.prevent(Select.Changed):
            pick.set_options([(n, n) for n in names])
            if self.sweep is not None and self.sweep.name in names:
                pick.value = self.sweep.name

    @on(Select.Changed, "#sweep-pick")
    def _sweep_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and (self.sweep is None or event.value != self.sweep.name):
            self.open_sweep(event.value)

    def open_sweep(self, name: str) -> None:
        try:
            self.sweep = get_sweep(self.context.store, name)
        except SweepError as exc:
            self.notify(str(exc), severity="error")
            return
        pick = self.query_one("#sweep-pick", Select)
        if name not in self._sweep_names:
            self._sweep_names = []
            self._reload_sweep_list()
        if pick.value != name:
            with self.prevent(Select.Changed):
                pick.value = name
        self._queue_key = self._results_key = None
        self.refresh_now()
        if self.snap is not None:
            self.metric = ranking_metric(self.snap.data.metric)
            with self.prevent(Select.Changed):
                self.query_one("#metric", Select).value = self.metric
            self._results_key = None
            self.refresh_now()
        self.action_show_tab("queue-tab")

    # =============================================================== actions
    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        target = {"define": "#grid-0", "queue-tab": "#queue", "results-tab": "#results"}[tab]
        self.query_one(target).focus()

    def action_start(self) -> None:
        """Create the sweep the form describes and start its queue."""
        if self.runner is not None:
            self.notify(f"sweep {self.runner.sweep.name} is running in this app; stop it first (x)", severity="warning")
            return
        plan = self._update_plan()
        if plan is None:
            self.action_show_tab("define")
            self.notify(f"cannot start: {self._plan_error}", severity="error")
            return
        name = self.query_one("#name", Input).value.strip() or None
        if self.run_mode == MODAL:
            self._create_on_modal(plan, name)
            return
        self._create_and_start(plan, name)

    def _create_and_start(self, plan: SweepPlan, name: str | None) -> None:
        try:
            sweep = create_sweep(self.context.store, plan.configs, name=name, axes=plan.axes, metric=self.metric, seeds=plan.seeds)
        except (SweepError, RunStoreError, OSError) as exc:
            self.notify(f"could not create the sweep: {exc}", severity="error")
            return
        self.query_one("#name", Input).value = ""
        self._sweep_names = []
        self._reload_sweep_list()
        self.open_sweep(sweep.name)
        self._start_queue(sweep)

    def action_resume(self) -> None:
        """Run what is left of the chosen sweep (an interrupted point continues from its checkpoint)."""
        sweep, snap = self.sweep, self._fresh_snapshot()
        if sweep is None or snap is None:
            self.notify("no sweep chosen: define one (n) or pick one at the top", severity="warning")
            return
        if self.runner is not None:
            self.notify(f"sweep {self.runner.sweep.name} is running in this app; one in-app queue at a time", severity="warning")
            return
        if snap.status in ("running", "stopping"):
            self.notify(f"sweep {sweep.name} is already running", severity="warning")
            return
        if not snap.remaining:
            self.notify(f"nothing to resume: {snap.summary()}", severity="information")
            return
        self._start_queue(sweep)

    def action_stop(self) -> None:
        sweep, snap = self.sweep, self._fresh_snapshot()
        if sweep is None or snap is None or snap.status not in ("running", "stopping"):
            self.notify("no running sweep to stop" + (f" ({snap.summary()})" if snap else ""), severity="warning")
            return
        from tui.dialogs.sweep_dialogs import ConfirmStopSweepDialog

        current = snap.current.point.run if snap.current else None

        def chosen(stop: bool | None) -> None:
            if stop:
                self.stop_sweep()

        self.app.push_screen(ConfirmStopSweepDialog(sweep.name, current), chosen)

    def stop_sweep(self) -> None:
        sweep = self.sweep
        if sweep is None:
            return
        if self.runner is not None and self.runner.sweep == sweep:
            self.runner.request_stop("stopped from the sweep screen")
        try:
            request_stop(sweep)
        except (SweepError, OSError) as exc:
            self.notify(f"could not ask {sweep.name} to stop: {exc}", severity="error")
            return
        self.notify(f"stopping {sweep.name} after a checkpoint of its current point; finished points are kept")
        self.refresh_now()

    def action_attach(self) -> None:
        """Follow the highlighted point's run on the dashboard (F1)."""
        snap = self.snap
        table = self.query_one("#queue", DataTable)
        if snap is None or not snap.points or table.row_count == 0:
            self.notify("no point to follow: pick a sweep first", severity="warning")
            return
        view = snap.points[min(max(table.cursor_row, 0), len(snap.points) - 1)]
        if view.missing or not view.run.exists():
            self.notify(f"point {view.number} has no run yet (its directory is made when it starts)", severity="warning")
            return
        self.app.post_message(AttachRun(view.point.run))

    @on(DataTable.RowSelected, "#results")
    @on(DataTable.RowSelected, "#queue")
    async def _point_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key is not None:
            await self.open_point(int(key))

    async def action_open_best(self) -> None:
        """Select the best finished point in the results and open its run."""
        snap = self._fresh_snapshot()
        if snap is None:
            self.notify("no sweep chosen: define one (n) or pick one at the top", severity="warning")
            return
        if is_grouped(snap):
            group = best_group(group_rows(snap, self.metric))
            number = group.representative(self.metric).number if group is not None else None
        else:
            best = next((r for r in result_rows(snap, self.metric) if r.best), None)
            number = best.number if best is not None else None
        if number is None:
            self.notify(f"no best point yet: none has finished ({snap.summary()})", severity="warning")
            return
        self.action_show_tab("results-tab")
        table = self.query_one("#results", DataTable)
        table.move_cursor(row=table.get_row_index(str(number)), animate=False)
        await self.open_point(number)

    async def open_point(self, number: int) -> None:
        """Open point `number`'s run: the evaluation of its best checkpoint once it has
        finished with one, else the runs browser (F2) with the cursor on it."""
        snap = self.snap
        view = next((v for v in snap.points if v.number == number), None) if snap is not None else None
        if view is None:
            return
        if view.missing or not view.run.exists():
            self.notify(f"point {number} has no run yet (its directory is made when it starts)", severity="warning")
            return
        checkpoint = _evaluable_checkpoint(view)
        if checkpoint is not None:
            from tui.screens.evaluation import EvaluationScreen

            await self.app.push_screen(EvaluationScreen(view.run, checkpoint))
            return
        app: Any = self.app
        await app.switch_mode("runs")
        show = getattr(app.get_screen_for_mode("runs"), "show_run", None)
        if callable(show):
            show(view.point.run)

    def action_next_metric(self) -> None:
        names = list(METRICS)
        self.query_one("#metric", Select).value = names[(names.index(self.metric) + 1) % len(names)]

    @on(Select.Changed, "#metric")
    def _metric_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value in METRICS:
            self.metric = event.value
            self._results_key = None
            self.refresh_now()

    # =========================================================== the queue
    def _start_queue(self, sweep: Sweep) -> None:
        if self.run_mode == IN_APP:
            self._start_in_app(sweep)
        elif self.run_mode == MODAL:
            self._start_on_modal(sweep)
        else:
            self._start_detached(sweep)
        self.refresh_now()

    def _start_detached(self, sweep: Sweep) -> None:
        from nsm.sweeps.launch import launch_detached_sweep
        from nsm.sweeps.packing import AUTO, ParallelError, packing_for, parse_parallel

        try:
            requested = parse_parallel(self.context.settings.get(LOCAL_PARALLEL_KEY, AUTO))
        except ParallelError:
            requested = AUTO
        try:
            packing = packing_for(sweep, requested)
            pid = launch_detached_sweep(sweep, parallel=packing.points, point_threads=packing.threads)
        except (SweepError, OSError) as exc:
            self.notify(f"could not start {sweep.name}: {exc}", severity="error")
            return
        packed = f"; {packing.line()}" if packing.points > 1 else ""
        self.notify(f"{sweep.name} runs in the background (pid {pid}); it keeps going if you close the app{packed}")

    def _start_in_app(self, sweep: Sweep) -> None:
        from nsm.sweeps.runner import SweepRunner

        def on_point(point: Point, state: str) -> None:
            self.post_message(self.PointChanged(sweep.name, point.number, state))

        # Leave a core to the UI (../shared/TUI-NOTES.md) unless the config says otherwise.
        threads = max(1, (os.cpu_count() or 2) - 1)
        self.runner = SweepRunner(
            sweep, mode="tui", backend="inprocess", on_point=on_point, threads=threads, step_hook=self.step_hook
        )
        runner = self.runner
        # It trains in this process: the app's session knows, so quit and SIGHUP stop it first.
        done = threading.Event()
        self.app.session.add(Work(SWEEP, f"sweep {sweep.name}", stop=runner.request_stop, done=done))  # type: ignore[attr-defined]
        self.run_worker(
            lambda: self._run_in_thread(runner, done), thread=True, exit_on_error=False, group="sweep", name=f"sweep {sweep.name}"
        )
        self.notify(f"{sweep.name} runs in this app; quitting stops it after a checkpoint")

    def _run_in_thread(self, runner: Any, done: threading.Event) -> None:
        try:
            try:
                outcome, error = runner.run(), None
            except SweepError as exc:
                outcome, error = "error", str(exc)
            except Exception as exc:  # shown to the user; the app keeps going
                outcome, error = "error", f"{type(exc).__name__}: {exc}"
            self.post_message(self.QueueEnded(runner.sweep.name, outcome, error))
        finally:
            done.set()

    # ---------------------------------------------------------------- Modal
    # Every Modal call has a deadline of seconds: too long for the event loop, so
    # these run in threads, and any failure is one line of notification.
    @work(group="sweep-modal", exclusive=True, exit_on_error=False)
    async def _create_on_modal(self, plan: SweepPlan, name: str | None) -> None:
        """No token is a set-up problem: say so before any run is written (as the CLI does)."""
        problem = await asyncio.to_thread(_modal_token_problem)
        if problem is not None:
            self.notify(f"cannot start on Modal: {problem}", severity="error", timeout=10)
            return
        self._create_and_start(plan, name)

    @work(group="sweep-modal", exclusive=True, exit_on_error=False)
    async def _start_on_modal(self, sweep: Sweep) -> None:
        try:
            snap = snapshot(sweep)
        except SweepError as exc:
            self.notify(f"could not start {sweep.name} on Modal: {exc}", severity="error")
            return
        runs = [view.run for view in snap.remaining if not view.missing]
        # A point that began training here has its checkpoints here, not on the volume.
        local = [run for run in runs if backend_name(run) != MODAL and run.status() != "created"]
        runs = [run for run in runs if run not in local]
        if local:
            names = ", ".join(run.name for run in local)
            self.notify(
                f"{names} began training on this machine: resume {'it' if len(local) == 1 else 'them'} "
                "detached or in this app (choose that run mode, then r)",
                severity="warning",
                timeout=10,
            )
        if not runs:
            if not local:
                self.notify(f"nothing to send to Modal: {snap.summary()}", severity="information")
            return
        parallel = self.modal_max_parallel
        self.notify(f"sending {len(runs)} point(s) of {sweep.name} to Modal (at most {parallel} at once)…")
        try:
            started = await asyncio.to_thread(_send_to_modal, runs, parallel)
        except Exception as exc:  # noqa: BLE001 - one line for the user, never a traceback
            self.notify(f"could not start {sweep.name} on Modal: {_one_line(exc)}", severity="error", timeout=10)
            self.refresh_now()
            return
        self.notify(f"{sweep.name}: {started} point(s) train on Modal; they keep going if you close the app")
        self.refresh_now()

    def on_sweep_screen_point_changed(self, message: PointChanged) -> None:
        self.refresh_now()

    async def on_sweep_screen_queue_ended(self, message: QueueEnded) -> None:
        self.runner = None
        if message.outcome == "error":
            self.notify(f"sweep {message.sweep} could not run: {message.error}", severity="error", timeout=8)
        elif message.outcome == "stopped":
            self.notify(f"sweep {message.sweep} stopped; finished points are kept. Resume with r")
        else:
            self.notify(f"sweep {message.sweep} finished")
        self.refresh_now()

    # ============================================================ refreshing
    def _tick(self) -> None:
        try:
            self._ticks += 1
            if self.is_current:
                if self._ticks % SWEEP_LIST_EVERY == 0:
                    self._reload_sweep_list()
                self.refresh_now()
        finally:
            # Rescheduled after the work, so a slow disk never piles ticks up.
            self.set_timer(REFRESH_S, self._tick)

    def _fresh_snapshot(self) -> SweepSnapshot | None:
        self.refresh_now()
        return self.snap

    def refresh_now(self) -> None:
        """Re-read the chosen sweep and redraw what changed."""
        status = self.query_one("#sweep-status", Static)
        if self.sweep is None:
            self.snap = None
            status.update("no sweep chosen: define one in the Define tab (n)")
            return
        try:
            snap = snapshot(self.sweep)
        except SweepError as exc:
            self.snap = None
            status.update(f"✗ {exc}")
            return
        self.snap = snap
        status.update(self._status_text(snap))
        self._render_queue(snap)
        self._render_results(snap)

    def _status_text(self, snap: SweepSnapshot) -> str:
        """One line beside the picker: the state and how far (the rest is on the Queue tab)."""
        counts = snap.counts()
        text = f"{snap.status} · {counts[DONE]}/{len(snap.points)} done"
        if counts[FAILED]:
            text += f", {counts[FAILED]} failed"
        return text

    @staticmethod
    def _runner_text(snap: SweepSnapshot) -> str:
        runner = snap.runner or {}
        if not snap.runner_alive:
            return ""
        where = {
            "detached": "in the background (survives the app)",
            "launching": "in the background (starting)",
            "tui": "in this app",
            "attached": "in a terminal (nsm-tui sweep)",
        }.get(str(runner.get("mode")), str(runner.get("mode")))
        pid = f"pid {runner['pid']} " if runner.get("pid") else ""
        return f"runner: {pid}{where}"

    def _knob_columns(self, snap: SweepSnapshot) -> list[Column]:
        return [knob_column(k, FIELDS[k].label, priority=88) for k in snap.data.knobs]

    def _table_width(self) -> int:
        # Both tables sit in a tab pane with one column of padding each side; a hidden
        # tab's table has no size of its own yet, so the screen's width decides.
        return max(20, (self.size.width or self.app.size.width) - 2)

    def on_resize(self) -> None:
        self._queue_key = self._results_key = None
        if self.snap is not None:
            self.refresh_now()

    def _render_queue(self, snap: SweepSnapshot) -> None:
        counts = snap.counts()
        summary = " · ".join(f"{s} {counts[s]}" for s in (PENDING, RUNNING, DONE, FAILED, STOPPED))
        summary += {"stopped": " · r resumes", "running": " · x stops", "queued": " · r starts"}.get(snap.status, "")
        runner = self._runner_text(snap)
        self.query_one("#queue-summary", Static).update(summary + (f"\n{runner}" if runner else ""))
        rows = []
        # Over several seeds each run's seed is a column (a grid over SEED has it as a knob).
        seeds = snap.data.seeds > 1 and "seed" not in snap.data.knobs
        for v in snap.points:
            state = Text(v.state, style=STATE_STYLE.get(v.state, ""))
            values = [format_value(v.point.values.get(k)) for k in snap.data.knobs]
            if seeds:
                values.append(format_value(v.point.config.get("seed")))
            rows.append((str(v.number), [str(v.number), *values, state, v.progress_text(), v.point.run_name]))
        columns = [
            Column("#", keep=True),
            *self._knob_columns(snap),
            *([Column("SEED", priority=87)] if seeds else []),
            Column("state", priority=90),
            Column("progress", priority=60, short="prog"),
            Column("run", keep=True),
        ]
        self._queue_key = _fill_table(self.query_one("#queue", DataTable), columns, rows, self._queue_key, snap.name, self._table_width())
        self._show_point_detail()

    @on(DataTable.RowHighlighted, "#queue")
    def _show_point_detail(self) -> None:
        """The highlighted point in full under the queue: its run, and why it failed."""
        table = self.query_one("#queue", DataTable)
        detail = self.query_one("#queue-detail", Static)
        snap = self.snap
        if snap is None or not snap.points or table.row_count == 0:
            detail.update("")
            return
        view = snap.points[min(max(table.cursor_row, 0), len(snap.points) - 1)]
        knobs = " ".join(f"{k}={format_value(v)}" for k, v in view.point.values.items())
        text = f"point {view.number} ({knobs}): run {view.point.run}"
        if view.missing:
            text += " (its directory is gone; a resume makes it again)" if view.state == PENDING else " (its directory is gone)"
        if view.state == FAILED and view.error:
            text += f"\nfailed: {view.error}"
        elif view.state == STOPPED:
            text += "\nstopped with a checkpoint; r resumes it from there"
        detail.update(Text(plain(text)))  # the error comes from the run's files

    def _render_results(self, snap: SweepSnapshot) -> None:
        if is_grouped(snap):
            self._render_group_results(snap)
            return
        results = result_rows(snap, self.metric)
        spec = METRICS[self.metric]
        best = next((r for r in results if r.best), None)
        best_text = "no finished point yet"
        if best is not None:
            knobs = " ".join(f"{k}={format_value(best.values.get(k))}" for k in snap.data.knobs)
            best_text = f"★ best: point {best.number} ({knobs}) · {spec.label.removeprefix('best ')} {_metric_text(best.metric(self.metric), 3)}"
        self.query_one("#metric-note", Static).update(f"{'higher' if spec.higher_is_better else 'lower'} is better · m: next metric")
        self.query_one("#best", Static).update(best_text)
        splits = ood_splits(results)
        rows = []
        for r in results:
            cells = [
                "★" if r.best else "",
                str(r.number),
                *(format_value(r.values.get(k)) for k in snap.data.knobs),
                r.state,
                _metric_text(r.best_val_loss, 3),
                _metric_text(r.best_val_acc, 3),
                _metric_text(r.test_acc, 3),
                _metric_text(r.test_loss, 3),
                *(_metric_text(r.ood_acc.get(split), 3) for split in splits),
                _duration(r.time_s),
            ]
            # The best finished point stands out in every cell, not only by its star.
            styles = ["bold green" if r.best else (STATE_STYLE.get(c, "") if c == r.state else "") for c in cells]
            rows.append((str(r.number), [Text(c, style=st) for c, st in zip(cells, styles)]))
        # The ranking's two validation columns are kept longest; the test and OOD columns are
        # there to read, not to choose by, and go first when the screen is narrow.
        columns = [
            Column("", keep=True),
            Column("#", keep=True),
            *self._knob_columns(snap),
            *_result_columns(self.metric, splits),
        ]
        self._results_key = _fill_table(self.query_one("#results", DataTable), columns, rows, self._results_key, snap.name, self._table_width())

    def _render_group_results(self, snap: SweepSnapshot) -> None:
        """One row per grid point over its seeds: mean ± 95% CI of each number over the
        finished seeds (n), ranked by the mean; ★ the best, ≈ within its noise."""
        groups = group_rows(snap, self.metric)
        spec = METRICS[self.metric]
        knobs = [k for k in snap.data.knobs if k != "seed"]
        best = best_group(groups)
        best_text = "no finished point yet"
        if best is not None:
            values = " ".join(f"{k}={format_value(best.values.get(k))}" for k in knobs)
            est = best.estimate(self.metric)
            what = spec.label.removeprefix("best ")
            best_text = f"★ best: point {best.number} ({values}) · {what} {est.text(3) if est else '-'} (n={best.done})"
        self.query_one("#metric-note", Static).update(f"{'higher' if spec.higher_is_better else 'lower'} is better · m: next metric")
        self.query_one("#best", Static).update(f"{best_text}\n{SHORT_LEGEND}")
        splits = ood_splits(groups)
        rows = []
        for g in groups:
            cells = [
                g.mark,
                str(g.number),
                *(format_value(g.values.get(k)) for k in knobs),
                str(g.done),
                g.state,
                *(_estimate_text(g, name) for name in ("best_val_loss", "best_val_acc", "test_acc", "test_loss")),
                *(_estimate_text(g, ood_metric(split)) for split in splits),
                _duration(g.metric("time_s")),
            ]
            styles = ["bold green" if g.best else (STATE_STYLE.get(c, "") if c == g.state else "") for c in cells]
            rows.append((str(g.representative(self.metric).number), [Text(c, style=st) for c, st in zip(cells, styles)]))
        columns = [
            Column("", keep=True),
            Column("#", keep=True),
            *(knob_column(k, FIELDS[k].label, priority=88) for k in knobs),
            Column("n", priority=94),
            *_result_columns(self.metric, splits),
        ]
        self._results_key = _fill_table(self.query_one("#results", DataTable), columns, rows, self._results_key, snap.name, self._table_width())

    # Rows of the results table in order, as the user sees them (tests read them).
    def results_view(self) -> list[dict[str, Any]]:
        table = self.query_one("#results", DataTable)
        out = []
        for row_key in table.rows:
            cells = table.get_row(row_key)
            out.append({
                "number": int(str(cells[1])), "best": str(cells[0]) == "★", "mark": str(cells[0]),
                "style": str(cells[1].style) if isinstance(cells[1], Text) else "", "cells": [str(c) for c in cells],
            })  # fmt: skip
        return out


def _evaluable_checkpoint(view: Any) -> str | None:
    """The checkpoint a finished point is evaluated from: its best one, else its latest."""
    if view.state != DONE:
        return None
    try:
        checkpoints = view.run.checkpoints()
    except (RunStoreError, OSError):
        return None
    best = [c for c in checkpoints if c.kind == "best"]
    chosen = best[0] if best else (checkpoints[-1] if checkpoints else None)
    return chosen.file if chosen is not None else None


def _modal_token_problem() -> str | None:
    """Why Modal cannot be used from here (no token, no client), or None. Called in a thread."""
    try:
        from tui import modal_runs

        modal_runs.client().check_token()
    except Exception as exc:  # noqa: BLE001 - ModalNotConfigured, ImportError: one line each
        return _one_line(exc)
    return None


def _send_to_modal(runs: list[Any], max_parallel: int) -> int:
    """Send a sweep's remaining points to Modal (as `nsm-tui sweep --backend modal`): points
    never started go out together, at most `max_parallel` at once; a point stopped on Modal
    resumes there from its latest checkpoint. Returns how many went. Called in a thread."""
    from remote.backend import ModalBackend
    from tui import modal_runs

    client = modal_runs.client()
    client.check_token()
    fresh = [run for run in runs if backend_name(run) != MODAL]
    stopped = [run for run in runs if backend_name(run) == MODAL]
    if fresh:
        modal_runs.start_existing_on_modal(fresh, max_parallel=max_parallel, modal=client)
    backend = ModalBackend(client)
    for run in stopped:
        backend.resume(backend.plan(run))
    return len(fresh) + len(stopped)


def _one_line(exc: BaseException) -> str:
    """A user-facing sentence for a notification: the error's own first line."""
    from remote.errors import ModalError, describe_exception

    if isinstance(exc, (ModalError, RunStoreError, SweepError)):
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    if isinstance(exc, ImportError):
        return "the Modal client is not installed (pip install modal)"
    return describe_exception(exc)


def _fill_table(
    table: DataTable, specs: list[Column], rows: list[tuple[str, list[Any]]], shape: Any, owner: str, width: int
) -> Any:
    """Show `rows` (key, cells) in `table`, in the columns that fit `width`. With the same
    columns and row order as last time only the cells that changed are updated, so the
    cursor and the scroll position stay put while a point trains; returns the new shape."""
    # Cells come from run files (errors, config values): literal text, never markup or escapes.
    rows = [(key, [_literal(cell) for cell in cells]) for key, cells in rows]
    text = [[c.plain if isinstance(c, Text) else str(c) for c in cells] for _key, cells in rows]
    fitted = fit_columns(specs, text, width, DATA_TABLE)
    columns = list(fitted.labels)
    rows = [(key, fitted.pick(cells)) for key, cells in rows]
    new_shape = (owner, tuple(columns), tuple(key for key, _ in rows))
    if new_shape == shape:
        for r, (_key, cells) in enumerate(rows):
            current = table.get_row_at(r)
            for c, cell in enumerate(cells):
                if not _same(current[c], cell):
                    table.update_cell_at(Coordinate(r, c), cell)
        return new_shape
    cursor = table.cursor_row
    table.clear(columns=True)
    table.add_columns(*columns)
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if rows:
        table.move_cursor(row=min(cursor, len(rows) - 1))
    return new_shape


def _literal(cell: Any) -> Any:
    if isinstance(cell, Text):
        cleaned = plain(cell.plain)
        if cleaned == cell.plain:
            return cell
        return Text(cleaned, style=cell.style)
    return Text(plain(cell)) if isinstance(cell, str) else cell


def _same(a: Any, b: Any) -> bool:
    # rich's Text equality ignores the base style, which is what marks the best row.
    if isinstance(a, Text) and isinstance(b, Text):
        return a == b and str(a.style) == str(b.style)
    return type(a) is type(b) and a == b


def _result_columns(metric: str, splits: list[str]) -> list[Column]:
    """The results columns after the point's identity: state, then the numbers."""
    return [
        Column("state", priority=70),
        Column("val loss", priority=95 if metric == "best_val_loss" else 93),
        Column("val acc", priority=95 if metric == "best_val_acc" else 93),
        Column("test acc", priority=60, short="test"),
        Column("test loss", priority=50, short="t.loss"),
        *_ood_columns(splits),
        Column("time", priority=40),
    ]


def _ood_columns(splits: list[str]) -> list[Column]:
    """One column per OOD split after the test columns ("OOD 11-20", short "11-20"): read,
    never ranked by, and the first to go when the screen is narrow."""
    return [Column(ood_label(split), priority=10, short=ood_label(split, short=True)) for split in splits]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _estimate_text(row: GroupRow, name: str, digits: int = 3) -> str:
    est = row.estimate(name)
    return "-" if est is None else est.text(digits)


def _metric_text(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
