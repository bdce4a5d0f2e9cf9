"""The dashboard: configure a run, start it, watch it live, stop, resume, attach.

Layout (top to bottom): a status line; the config panel beside the monitor
(charts, progress / metrics / GPU gauges, the run's log); the footer with
every key. Under 120 columns the config panel and the monitor take turns
(`c` switches); the charts page with `[` and `]` when they do not all fit.

All drawing happens in `_redraw`, from the controller's LiveRun: at most twice
a second for new data, at once for a key press or a change of state. Widgets
redraw only the parts whose data changed, with fixed heights so that new
numbers never cost a relayout; each redraw takes time from an in-process run.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.widgets import Footer, Static

from nsm.config import ConfigError, validate_config
from nsm.execution import MODAL, resumable_now
from nsm.runs import Run, RunStoreError
from nsm.runs.names import RunNameError
from nsm.text import plain
from tui.dialogs.attach_picker import AttachPicker
from tui.dialogs.config_file_dialog import ConfigFileDialog
from tui.dialogs.confirm_stop import ConfirmStopDialog
from tui.dialogs.oom_restart import OomRestartDialog
from tui.run_controller import IN_PROCESS, RunController
from tui.screens.base import AppScreen
from tui.widgets.config_panel import LAST_CONFIG_KEY, ConfigPanel
from tui.widgets.gpu import GpuPanel
from tui.widgets.run_charts import ChartDeck, PagesChanged
from tui.widgets.run_log import RunLogPane
from tui.widgets.run_panels import MetricsPanel, ProgressPanel
from tui.widgets.status_line import StatusLine

# Data-driven redraws of the panels (4 Hz: an event shows within a quarter second); the
# charts limit themselves further (≤ 1 Hz each, TUI-NOTES); what the user does redraws at once.
RENDER_INTERVAL_S = 0.25
NARROW_WIDTH = 120
CONFIG_FILE_KEY = "dashboard.config_file"  # the last TOML file saved or loaded: the dialogs' default


class DashboardScreen(AppScreen):
    DEFAULT_CSS = """
    DashboardScreen #body {
        height: 1fr;
    }
    DashboardScreen #monitor {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
    }
    DashboardScreen #config {
        display: none;
    }
    DashboardScreen.-config-open #config {
        display: block;
    }
    DashboardScreen.-narrow.-config-open #config {
        width: 1fr;
    }
    DashboardScreen.-narrow.-config-open #monitor {
        display: none;
    }
    DashboardScreen #failure {
        display: none;
        height: auto;
        background: $error 20%;
        color: $text;
        padding: 0 1;
    }
    DashboardScreen #failure.-shown {
        display: block;
    }
    DashboardScreen #info {
        layout: grid;
        grid-size: 3;
        grid-columns: 1fr 1fr 1fr;
        grid-rows: auto;
        grid-gutter: 0 2;
        height: auto;
    }
    DashboardScreen.-narrow #info {
        grid-size: 2;
        grid-columns: 1fr 1fr;
    }
    DashboardScreen.-narrow #gpu {
        column-span: 2;
    }
    DashboardScreen #log {
        height: 4;
    }
    DashboardScreen.-tall #log {
        height: 8;
    }
    """

    BINDINGS = [
        Binding("s", "start", "Start", tooltip="start a run with the config panel's settings"),
        Binding("x", "stop", "Stop", tooltip="stop the run at the next step, with a checkpoint"),
        Binding("r", "resume", "Resume", tooltip="continue the run from its latest checkpoint"),
        Binding("a", "attach", "Attach", tooltip="follow another run"),
        Binding("b", "restart_smaller_batch", "Retry", tooltip="out of GPU memory: a new run with the smaller batch size suggested"),
        Binding("c", "toggle_config", "Config", tooltip="show or hide the config panel"),
        Binding("l", "toggle_log_scale", "Log", tooltip="log scale for the loss charts"),
        # `]` is shown (an 80-column footer has room for one paging key); `[` goes back.
        Binding("right_square_bracket", "chart_page(1)", "charts", key_display="]", tooltip="next page of charts ([ goes back)"),
        Binding("left_square_bracket", "chart_page(-1)", "charts", key_display="[", show=False),
        Binding("escape", "focus_monitor", "Monitor", show=False),
        # ctrl keys: they never type into a field, and the footer stays as it is (also in the palette).
        Binding("ctrl+s", "save_config_file", "Save config", show=False, tooltip="save the config panel to a TOML file"),
        Binding("ctrl+o", "load_config_file", "Load config", show=False, tooltip="fill the config panel from a TOML file"),
        Binding("g", "sample_graph", "Sample graph", show=False, tooltip="draw a sample graph of the domain (with the run's checkpoint: pooling, prediction)"),
    ]

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._render_pending = False
        self._last_render = 0.0
        self._state_key: tuple[Any, ...] | None = None
        self._last_state: str | None = None
        self._failure_key: str | None = None
        self._gpu_fed = (None, 0)
        self._oom_offered: set[tuple[str, int]] = set()
        self._notice: tuple[str, str] | None = None
        self.renders = 0  # how many times the panels were redrawn (benchmarks read it)

    # ================================================================ layout
    @property
    def context(self) -> Any:
        return self.app.context  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        settings = self.context.settings
        last = settings.get(LAST_CONFIG_KEY)
        base = None
        if isinstance(last, dict):
            try:
                base = validate_config(last)
            except ConfigError:
                base = None  # a remembered config from an older version: start from the defaults
        # Layout classes now, before any child exists: set later, each would restyle
        # the whole screen (the dearest part of start-up).
        size = self.app.size
        self._layout_for(size.width, size.height)
        config_open = getattr(self.app, "attach_on_start", None) is None
        self.set_class(config_open, "-config-open")
        # First focus straight where it belongs: every focus move restyles the ancestors.
        # The panel itself, not a field in it: the single-letter keys work at once, tab enters the form.
        self.AUTO_FOCUS = "#config" if config_open else "ChartDeck"
        yield StatusLine(id="status")
        with Horizontal(id="body"):
            yield ConfigPanel(base=base, last=last if base is not None else None, id="config")
            with Vertical(id="monitor"):
                yield Static("", id="failure")
                yield ChartDeck(id="charts")
                with Container(id="info"):
                    yield ProgressPanel(id="progress")
                    yield MetricsPanel(id="metrics")
                    yield GpuPanel(id="gpu")
                yield RunLogPane(id="log")
        yield RunController(self.context.store, id="controller")
        yield Footer(compact=True)

    @property
    def controller(self) -> RunController:
        return self.query_one(RunController)

    @property
    def config_panel(self) -> ConfigPanel:
        return self.query_one(ConfigPanel)

    @property
    def charts(self) -> ChartDeck:
        return self.query_one(ChartDeck)

    @property
    def status_line(self) -> StatusLine:
        return self.query_one(StatusLine)

    @property
    def log_pane(self) -> RunLogPane:
        return self.query_one(RunLogPane)

    def on_mount(self) -> None:
        attach = getattr(self.app, "attach_on_start", None)
        self._redraw()
        if attach is not None:
            self.attach_ref(attach)
        elif self.config_panel.raw_values().get("backend") == IN_PROCESS:
            # After the first frame: the import takes seconds and must not delay it.
            self.call_after_refresh(self.controller.warm_engine)

    def on_resize(self, event: Any) -> None:
        self._layout_for(event.size.width, event.size.height)

    def _layout_for(self, width: int, height: int) -> None:
        self.set_class(width < NARROW_WIDTH, "-narrow")
        self.set_class(height >= 36, "-tall")

    def _set_config_open(self, open_: bool) -> None:
        self.set_class(open_, "-config-open")
        if open_:
            self.call_after_refresh(self._focus_config)
        elif self.focused is None or self.config_panel in self.focused.ancestors_with_self:
            self.call_after_refresh(self.charts.focus)

    def _focus_config(self) -> None:
        self.config_panel.focus()

    @property
    def config_open(self) -> bool:
        return self.has_class("-config-open")

    # =============================================================== drawing
    def on_run_controller_changed(self, message: RunController.Changed) -> None:
        c = self.controller
        # A change of state (started, stopping, ended, gone) shows at once; data at ≤ 2 Hz.
        self._schedule_render(urgent=c.state_word() != self._last_state)

    def _schedule_render(self, urgent: bool = False) -> None:
        """Redraw soon (≤ 2 Hz for data), or now for what the user did or must see at once."""
        if urgent:
            self._redraw()
            return
        if self._render_pending:
            return
        wait = self._last_render + RENDER_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._redraw()
        else:
            self._render_pending = True
            self.set_timer(wait, self._deferred_render)

    def _deferred_render(self) -> None:
        self._render_pending = False
        self._redraw()

    def _redraw(self) -> None:
        self._last_render = time.monotonic()
        self.renders += 1
        c = self.controller
        live = c.live
        state = c.state_word()
        self._last_state = state
        extra = self._status_extra(state)
        right = " · ".join(p for p in (self.charts.page_label(), "log y" if self.charts.log_scale else "") if p)
        self.status_line.set_status(c.run.ref if c.run else None, state, c.backend_label(), c.device_label(), extra, right)
        if live is not None:
            self.charts.show(live)
            self.query_one(ProgressPanel).show(live)
            self.query_one(MetricsPanel).show(live)
            self.log_pane.show(live)
            self._feed_gpu(live)
        self._show_failure(state)
        self.query_one(GpuPanel).set_remote(c.mode == MODAL)
        self.config_panel.set_can_start(not c.in_process_active)
        key = (state, c.stopping, bool(live and live.oom_batch_size()), self.charts.pages, self.config_panel.valid)
        if key != self._state_key:
            self._state_key = key
            self.refresh_bindings()
        if live is not None and live.oom_batch_size():
            self._maybe_offer_oom_restart()

    def _status_extra(self, state: str) -> str:
        c = self.controller
        parts = []
        if state == "starting" and c.mode == IN_PROCESS and not c.engine_ready:
            parts.append("loading torch…")
        elif state == "stopping":
            parts.append("writing a checkpoint…")
        if c.run is None and self._notice is not None:
            parts.append(self._notice[0])
        return " · ".join(parts)

    def _feed_gpu(self, live: Any) -> None:
        fed_for, fed = self._gpu_fed
        if fed_for != live.serial:
            fed = 0
        new = live.gpu_version - fed
        if new > 0:
            panel = self.query_one(GpuPanel)
            for _t, sample in list(live.gpu_samples)[-min(new, len(live.gpu_samples)) :]:
                panel.update_sample(sample)
        self._gpu_fed = (live.serial, live.gpu_version)

    def _show_failure(self, state: str) -> None:
        banner = self.query_one("#failure", Static)
        c = self.controller
        live = c.live
        text: Text | None = None
        if live is not None and live.failed:
            text = Text.assemble(("✗ failed: ", "bold"), live.failure_text())
            hint = live.failure_hint()
            if hint:
                text.append(f" — {hint}")
            batch = live.oom_batch_size()
            if batch:
                text.append(f" · press b to restart with BATCH_SIZE={batch}", style="bold")
        elif state == "failed" and c.error:
            text = Text.assemble(("✗ failed: ", "bold"), plain(c.error))
        elif state == "deleted":
            text = Text("✗ this run's directory was deleted by another process; press a to attach to another run")
        elif state == "stale":
            text = Text(
                "⚠ stale: the run's process is gone without a final event (killed?); press r to resume from its latest checkpoint"
            )
        key = text.plain if text is not None else None
        if key == self._failure_key:
            return
        self._failure_key = key
        if text is None:
            banner.remove_class("-shown")
        else:
            text.no_wrap = False
            banner.update(text)
            banner.add_class("-shown")

    def notice(self, text: str, level: str = "info") -> None:
        """Tell the user something: in the log pane, as a toast, and on the status line when idle."""
        self._notice = (text, level)
        self.log_pane.note(text, "error" if level == "error" else "warning" if level == "warning" else "info")
        severity = {"error": "error", "warning": "warning"}.get(level, "information")
        self.notify(text, severity=severity, timeout=6, markup=False)  # type: ignore[arg-type]  # paths, errors: literal text
        self._schedule_render(urgent=True)

    def on_run_controller_notice(self, message: RunController.Notice) -> None:
        self.notice(message.text, message.level)

    def on_run_controller_ended(self, message: RunController.Ended) -> None:
        if message.error:
            self.notice(f"the in-process run ended with an error: {message.error}", "error")

    def on_run_controller_caught_up(self, message: RunController.CaughtUp) -> None:
        self._schedule_render(urgent=True)

    def on_run_controller_engine_ready(self, message: RunController.EngineReady) -> None:
        self._schedule_render(urgent=True)

    def on_pages_changed(self, message: PagesChanged) -> None:
        # Mid-history the charts would be drawn twice; the end of the catch-up draws them whole.
        self._schedule_render(urgent=not self.controller.catching_up)

    def on_config_panel_validity(self, message: ConfigPanel.Validity) -> None:
        self.refresh_bindings()

    def on_config_panel_backend_chosen(self, message: ConfigPanel.BackendChosen) -> None:
        if message.backend == IN_PROCESS:
            self.controller.warm_engine()

    def on_config_panel_start_pressed(self, message: ConfigPanel.StartPressed) -> None:
        self.start_run(message.config, message.run_name)

    # =============================================================== actions
    def action_applies(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.is_mounted:
            return True
        try:
            c = self.controller
        except Exception:
            return True
        live = c.live
        # Keys that cannot apply now are hidden rather than greyed: an 80-column
        # footer has room for the keys of one moment, not of every moment.
        if action == "start":
            # Also while a field is invalid: pressing it names the field and goes there.
            return not c.in_process_active
        if action == "stop":
            return c.active and not c.stopping
        if action == "resume":
            # After an out-of-memory failure the same batch size would fail again: b is the way on.
            oom = live is not None and live.oom_batch_size() is not None
            # The execution layer's rules decide (a finished run needs an explicit checkpoint: F2).
            return c.run is not None and not c.active and not oom and c.state_word() in ("interrupted", "failed", "stale") and resumable_now(c.run)
        if action == "restart_smaller_batch":
            return bool(live is not None and live.oom_batch_size() and not c.in_process_active)
        if action == "chart_page":
            return self.charts.pages > 1
        return True

    def action_start(self) -> None:
        panel = self.config_panel
        if self.controller.in_process_active:
            self.notice("an in-process run is training here: stop it (x) before starting another", "warning")
            return
        if not panel.valid:
            self.set_class(True, "-config-open")  # not _set_config_open: the focus goes to the field
            panel.point_at_problem()
            return
        panel.request_start()

    def start_run(self, config: Any, name: str | None = None) -> Run | None:
        """Start a run from a validated config (the config panel's, a restart's)."""
        try:
            run = self.controller.start(config, name)
        except (RunStoreError, RunNameError, OSError, ConfigError) as exc:
            self.notice(f"could not start the run: {exc}", "error")
            return None
        values = config.to_dict()
        self.context.settings.set(LAST_CONFIG_KEY, values)
        self.config_panel.last = values
        if run is None:  # Modal: the controller follows the run once Modal has taken it
            self.log_pane.note(f"starting a {config.domain} run on Modal ({config.gpu})…")
            self._schedule_render(urgent=True)
            return None
        self.context.attached = run.ref
        self._notice = None
        self.log_pane.note(f"started {run.ref} ({'in-process' if config.backend == IN_PROCESS else 'detached process'})")
        self._set_config_open(False)
        self._schedule_render(urgent=True)
        return run

    def action_stop(self) -> None:
        c = self.controller
        if not c.active or c.run is None:
            self.notice("no run is training here", "warning")
            return
        where = " (in this app)" if c.mode == IN_PROCESS else ""

        def confirmed(yes: bool | None) -> None:
            if yes and c.stop():
                self.log_pane.note(f"asked {c.run.ref if c.run else 'the run'} to stop at the next step")
            self._schedule_render(urgent=True)

        self.app.push_screen(ConfirmStopDialog(c.run.ref, where), confirmed)

    def action_resume(self) -> None:
        c = self.controller
        if c.run is None:
            self.notice("attach to a run first (a), then resume it", "warning")
            return
        self.resume_ref(c.run.ref, None)

    def resume_ref(self, ref: str, checkpoint: str | None = None) -> bool:
        """Continue run `ref` from `checkpoint` (default: its latest) on the run's own backend."""
        c = self.controller
        try:
            run = self.context.store.get(ref)
            chosen = c.resume(run, None, checkpoint)
        except (RunStoreError, OSError) as exc:
            self.notice(str(exc), "error")
            return False
        self._notice = None
        self.context.attached = run.ref
        name = chosen.rsplit("/", 1)[-1]
        self.log_pane.note(f"resuming {run.ref} from {name} ({c.backend_label() or 'Modal'})")
        self._set_config_open(False)
        self._schedule_render(urgent=True)
        return True

    def action_attach(self) -> None:
        c = self.controller
        if c.in_process_active:
            self.notice("an in-process run is training here: stop it (x) before attaching to another run", "warning")
            return
        store = self.context.store
        runs = store.list_runs()

        def chosen(ref: str | None) -> None:
            if ref:
                self.attach_ref(ref)

        self.app.push_screen(AttachPicker(runs, str(store.root)), chosen)

    def attach_ref(self, ref: str) -> bool:
        """Follow a run by name or domain/name; "" picks the latest running run, else the latest run."""
        store = self.context.store
        try:
            if ref == "":
                runs = store.list_runs()
                if not runs:
                    self.notice(f"no runs to attach to in {store.root}: start one from the config panel", "warning")
                    self._set_config_open(True)
                    return False
                running = [r for r in runs if r.status == "running"]
                ref = (running or runs)[0].ref
            run = store.get(ref)
            self.controller.attach(run)
        except RunStoreError as exc:
            self.notice(str(exc), "error")
            return False
        self._notice = None
        self.context.attached = run.ref
        self._set_config_open(False)
        self._schedule_render(urgent=True)
        return True

    def action_toggle_config(self) -> None:
        self._set_config_open(not self.config_open)

    def action_focus_monitor(self) -> None:
        if self.has_class("-narrow") and self.config_open:
            if self.controller.run is None:
                return
            self._set_config_open(False)
        self.charts.focus()

    def action_toggle_log_scale(self) -> None:
        self.charts.log_scale = not self.charts.log_scale
        self._schedule_render(urgent=True)

    def action_chart_page(self, step: int) -> None:
        self.charts.next_page(step)
        self._schedule_render(urgent=True)

    # ======================================================= OOM and restarts
    def _maybe_offer_oom_restart(self) -> None:
        c = self.controller
        live = c.live
        if live is None or live.failed is None or c.run is None:
            return
        key = (c.run.ref, int(live.failed.get("seq", -1)))
        if key in self._oom_offered or self.app.screen is not self:
            return
        self._oom_offered.add(key)
        self.offer_oom_restart()

    def offer_oom_restart(self) -> None:
        c = self.controller
        live = c.live
        batch = live.oom_batch_size() if live else None
        if live is None or c.run is None or batch is None:
            return
        old = live.config.get("batch_size")

        def answered(yes: bool | None) -> None:
            if yes:
                self.restart_with_batch_size(batch)

        self.app.push_screen(
            OomRestartDialog(c.run.ref, live.failure_text(), batch, old if isinstance(old, int) else None), answered
        )

    def action_restart_smaller_batch(self) -> None:
        self.offer_oom_restart()

    def restart_with_batch_size(self, batch_size: int) -> Run | None:
        c = self.controller
        live = c.live
        if c.run is None or live is None:
            return None
        try:
            values = dict(live.config) or c.run.config()
        except RunStoreError as exc:
            self.notice(f"cannot restart: {exc}", "error")
            return None
        backend = values.get("backend")
        if backend not in (IN_PROCESS, "process"):
            backend = self.config_panel.raw_values().get("backend") or "process"
        values.update(batch_size=batch_size, backend=backend)
        try:
            config = validate_config(values)
        except ConfigError as exc:
            self.notice(f"cannot restart: {exc}", "error")
            return None
        self.config_panel.load_config(config)
        return self.start_run(config, None)

    # ========================================================= config files
    def _config_file_path(self) -> str:
        value = self.context.settings.get(CONFIG_FILE_KEY)
        return value if isinstance(value, str) and value else "run.toml"

    def action_sample_graph(self) -> None:
        from tui.screens.sample_graph import open_sample_graph

        values = self.config_panel.raw_values()
        open_sample_graph(self.app, values.get("domain"), values.get("seed"), self.controller.run)

    def action_save_config_file(self) -> None:
        self._config_file_dialog("Save the run configuration", "save", self.config_panel.save_to_file, "saved the config to")

    def action_load_config_file(self) -> None:
        self._config_file_dialog(
            "Load a run configuration", "load", self.config_panel.load_from_file, "loaded the config from",
            then=lambda: self._set_config_open(True),
        )

    def _config_file_dialog(
        self, title: str, verb: str, do: Callable[[str], str | None], done: str, then: Callable[[], None] | None = None
    ) -> None:
        def act(path: str) -> str | None:
            problem = do(path)
            if problem is None:
                self.context.settings.set(CONFIG_FILE_KEY, path)
                self.notice(f"{done} {plain(path)}", "info")
                if then is not None:
                    then()
            return problem

        self.app.push_screen(ConfigFileDialog(title, verb, self._config_file_path(), act))
