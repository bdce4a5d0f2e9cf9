"""The run configuration form: every knob, checked as you type, with presets.

Each field shows its problem right under it (the same message as the CLI's,
from nsm.config.FIELDS); the Start button — and the dashboard's start key —
stay disabled while any value is invalid. Knobs without a field (model width,
threads) come from `base`, so a loaded or remembered config keeps them.
"""

from __future__ import annotations

from typing import Any, Mapping

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from nsm.config import DOMAINS, FIELDS, RunConfig, cross_field_errors, validate_config
from nsm.runs.names import RunNameError, validate_run_name
from nsm.text import plain
from remote.config import GPU_PRICES_PER_HOUR

# Knobs with a text field, in the notebook's order.
TEXT_FIELDS = ("epochs", "batch_size", "lr", "cycle_weight", "eval_every", "save_every", "seed", "num_graphs", "patience")
BACKEND_CHOICES = (("in-process (thread)", "inprocess"), ("detached process", "process"), ("Modal cloud GPU", "modal"))
GPU_CHOICES = tuple((f"{gpu}  ${price:.2f}/h", gpu) for gpu, price in GPU_PRICES_PER_HOUR.items())
DEVICE_CHOICES = tuple((d, d) for d in FIELDS["device"].choices or ())
PRESETS = {
    "quick": ("Quick validation: 10 epochs, eval every 2", {"epochs": 10, "eval_every": 2, "save_every": 5}),
    "full": ("Full run: 100 epochs, batch 64", {"epochs": 100, "batch_size": 64, "eval_every": 5, "save_every": 10}),
    "last": ("Last config used", {}),
}
LAST_CONFIG_KEY = "dashboard.last_config"
SELECT_VALUES = {
    "domain": set(DOMAINS),
    "device": {v for _l, v in DEVICE_CHOICES},
    "backend": {v for _l, v in BACKEND_CHOICES},
    "gpu": {v for _l, v in GPU_CHOICES},
}
SELECTS = ("domain", "device", "backend", "gpu")


def _raw(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return plain(value)  # a run's config.json can hold anything


class ConfigPanel(VerticalScroll):
    DEFAULT_CSS = """
    ConfigPanel {
        width: 40;
        height: 1fr;
        padding: 0 1;
        background: $boost;
        scrollbar-size-vertical: 1;
    }
    ConfigPanel .title {
        text-style: bold;
        margin-bottom: 1;
    }
    ConfigPanel #form {
        layout: grid;
        grid-size: 2;
        grid-columns: 14 1fr;
        grid-rows: auto;
        height: auto;
    }
    ConfigPanel #form Label {
        height: 1;
    }
    ConfigPanel .problem {
        color: $error;
        height: auto;
    }
    ConfigPanel #preset {
        margin-bottom: 1;
        width: 1fr;
    }
    ConfigPanel #start {
        margin-top: 1;
        width: 1fr;
    }
    ConfigPanel #summary {
        color: $text-muted;
        height: auto;
    }
    """

    BINDINGS = [Binding("escape", "leave_field", "Leave field", tooltip="out of the field: the dashboard's keys work again")]

    class Validity(Message):
        """Posted when the form turns valid or invalid."""

        def __init__(self, valid: bool) -> None:
            super().__init__()
            self.valid = valid

    class StartPressed(Message):
        def __init__(self, config: RunConfig, name: str | None) -> None:
            super().__init__()
            self.config = config
            self.run_name = name

    class BackendChosen(Message):
        def __init__(self, backend: str) -> None:
            super().__init__()
            self.backend = backend

    def __init__(self, base: RunConfig | None = None, last: Mapping[str, Any] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.base = base or RunConfig()
        self.last = dict(last or {})
        self.errors: dict[str, str] = {}
        self._valid = True
        self._loading = False
        self.can_start = True  # the dashboard turns this off while a run is active
        self._problems: dict[str, Static] = {}

    # ----------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Static("Run configuration", classes="title")
        options = [(label, key) for key, (label, _v) in PRESETS.items() if key != "last" or self.last]
        yield Select(options, prompt="preset…", allow_blank=True, compact=True, id="preset")
        cfg = self.base
        # Label and field side by side in one grid (not a row container each: fewer
        # widgets, a faster start-up); a field's problem is mounted under it when it has one.
        with Container(id="form"):
            yield from self._select_row("domain", [(d, d) for d in DOMAINS], cfg.domain)
            for name in TEXT_FIELDS:
                spec = FIELDS[name]
                yield Label(spec.label)
                yield Input(
                    _raw(getattr(cfg, name)), compact=True, id=f"field-{name}", tooltip=f"{spec.help} ({spec.allowed()})"
                )
            yield from self._select_row("device", list(DEVICE_CHOICES), cfg.device)
            backend = cfg.backend if cfg.backend in SELECT_VALUES["backend"] else "process"
            yield from self._select_row("backend", list(BACKEND_CHOICES), backend)
            gpu = cfg.gpu if cfg.gpu in SELECT_VALUES["gpu"] else FIELDS["gpu"].default
            yield from self._select_row("gpu", list(GPU_CHOICES), gpu)
            yield Label("AMP")
            yield Checkbox("mixed precision", cfg.amp, compact=True, id="field-amp")
            yield Label("NAME")
            yield Input("", placeholder="generated", compact=True, id="field-name")
        yield Button("Start ▶  (s)", id="start", variant="success", compact=True)
        yield Static("", id="summary")

    def _select_row(self, name: str, options: list[tuple[str, str]], value: str) -> ComposeResult:
        yield Label(FIELDS[name].label)
        yield Select(options, value=value, allow_blank=False, compact=True, id=f"field-{name}")

    def _show_problem(self, name: str, message: str) -> None:
        problem = self._problems.get(name)
        if problem is None:
            if not message:
                return
            problem = Static("", classes="problem", id=f"problem-{name}")
            self._problems[name] = problem
            # Under the field, in its column: an empty label keeps the label column.
            spacer = Label("", id=f"problem-spacer-{name}")
            self.query_one("#form").mount(spacer, problem, after=self.query_one(f"#field-{name}"))
        if message != getattr(problem, "_message", None):
            problem._message = message  # type: ignore[attr-defined]
            problem.update(Text(message))
            # `display`, not a class: a class change restyles the node, a display change does not.
            problem.display = bool(message)
            self.query_one(f"#problem-spacer-{name}").display = bool(message)

    def on_mount(self) -> None:
        self.validate()

    # ------------------------------------------------------------- read/write
    def raw_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in SELECTS:
            values[name] = self.query_one(f"#field-{name}", Select).value
        for name in TEXT_FIELDS:
            values[name] = self.query_one(f"#field-{name}", Input).value
        values["amp"] = self.query_one("#field-amp", Checkbox).value
        return values

    def run_name(self) -> str | None:
        name = self.query_one("#field-name", Input).value.strip()
        return name or None

    def load_config(self, config: RunConfig | Mapping[str, Any]) -> None:
        """Fill the form from a config (a preset, the last one used, a failed run's)."""
        values = config.to_dict() if isinstance(config, RunConfig) else dict(config)
        try:
            self.base = validate_config({k: v for k, v in values.items() if k in FIELDS}, base=self.base)
        except Exception:
            pass  # keep the old base for the hidden knobs; the visible ones show their own problems
        self._loading = True
        try:
            for name in SELECTS:
                if name in values:
                    select = self.query_one(f"#field-{name}", Select)
                    if values[name] in SELECT_VALUES[name]:
                        select.value = values[name]
            for name in TEXT_FIELDS:
                if name in values:
                    self.query_one(f"#field-{name}", Input).value = _raw(values[name])
            if "amp" in values:
                self.query_one("#field-amp", Checkbox).value = bool(values["amp"])
        finally:
            self._loading = False
        self.validate()

    def apply_preset(self, key: str) -> None:
        if key == "last":
            if self.last:
                self.load_config(self.last)
            return
        _label, changes = PRESETS[key]
        current = self.raw_values()
        keep = {k: current[k] for k in SELECTS if current.get(k) is not None}
        defaults = RunConfig().to_dict()
        self.load_config({**{k: defaults[k] for k in TEXT_FIELDS}, **keep, **changes})

    # -------------------------------------------------------------- checking
    def validate(self) -> dict[str, str]:
        values = self.raw_values()
        errors: dict[str, str] = {}
        parsed: dict[str, Any] = {}
        for name, raw in values.items():
            if raw is Select.NULL:
                errors[name] = f"{FIELDS[name].label} must be {FIELDS[name].allowed()}"
                continue
            try:
                parsed[name] = FIELDS[name].parse(raw)
            except ValueError as exc:
                errors[name] = str(exc)
        merged = {**{k: v for k, v in self.base.to_dict().items() if k != "schema_version"}, **parsed}
        errors.update({k: v for k, v in cross_field_errors(merged, errors).items() if k in values})
        name = self.run_name()
        if name is not None:
            try:
                validate_run_name(name)
            except RunNameError as exc:
                errors["name"] = str(exc)
        self.errors = errors
        for field in (*values, "name"):
            self._show_problem(field, errors.get(field, ""))
        self._update_start()
        valid = not errors
        if valid != self._valid:
            self._valid = valid
            self.post_message(self.Validity(valid))
        return errors

    @property
    def valid(self) -> bool:
        return not self.errors

    def config(self) -> RunConfig:
        """The form as a RunConfig; ConfigError when a value is invalid."""
        values = self.raw_values()
        return validate_config(values, base=self.base)

    def set_can_start(self, can: bool) -> None:
        if can != self.can_start:
            self.can_start = can
            self._update_start()

    def _update_start(self) -> None:
        key = (len(self.errors), self.can_start)
        if key == getattr(self, "_start_key", None):
            return
        self._start_key = key
        button = self.query_one("#start", Button)
        button.disabled = bool(self.errors) or not self.can_start
        summary = self.query_one("#summary", Static)
        if self.errors:
            summary.update(Text(f"fix {len(self.errors)} field(s) to start", style="red"))
        elif not self.can_start:
            summary.update("an in-process run is training: stop it (x) to start another")
        else:
            summary.update("")

    # ---------------------------------------------------------------- events
    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _changed(self, event: Message) -> None:
        event.stop()
        widget = getattr(event, "control", None)
        if widget is not None and widget.id == "preset":
            value = getattr(event, "value", None)
            if isinstance(value, str) and value in PRESETS:
                self.apply_preset(value)
            return
        if self._loading:
            return
        self.validate()
        if widget is not None and widget.id == "field-backend":
            value = getattr(event, "value", None)
            if isinstance(value, str):
                self.post_message(self.BackendChosen(value))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            # Only where letters are typed into a field; elsewhere the dashboard's keys work.
            return isinstance(self.screen.focused, Input)
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def action_leave_field(self) -> None:
        focused = self.screen.focused
        if isinstance(focused, (Input, Select, Checkbox)):
            start = self.query_one("#start", Button)
            (start if not start.disabled else self).focus()
            return
        leave = getattr(self.screen, "action_focus_monitor", None)
        if leave is not None:
            leave()

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        # Enter confirms a value and moves on; it never starts a run by surprise.
        event.stop()
        self.screen.focus_next()

    @on(Button.Pressed, "#start")
    def _start(self, event: Button.Pressed) -> None:
        event.stop()
        self.request_start()

    def request_start(self) -> bool:
        if self.validate() or not self.can_start:
            return False
        self.post_message(self.StartPressed(self.config(), self.run_name()))
        return True
