"""The run configuration form: every knob, checked as you type, with presets.

Each field shows its problem right under it (the same message as the CLI's,
from nsm.config.FIELDS); pressing Start (or the dashboard's `s`) while a value is
invalid names that field, says what it allows and moves the focus there. Only
the knobs that apply are shown: GPU (and its price) for the Modal backend, AMP
where a CUDA device can be used (Modal, or a local NVIDIA GPU: tui/local_gpu.py,
asked in a worker; never torch), POOLING for MODEL=nsm (the flat reference has no
pooling to turn off). Knobs without a field (model width, threads)
come from `base`, so a loaded or remembered config keeps them.
"""

from __future__ import annotations

from typing import Any, Mapping

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from nsm.config import DOMAINS, FIELDS, MODELS, ConfigError, RunConfig, cross_field_errors, validate_config
from nsm.runs.names import RunNameError, validate_run_name
from nsm.text import plain
from remote.config import GPU_PRICES_PER_HOUR
from tui import local_gpu
from tui.keys import editing_control
from tui.widgets.on_off import OnOffCheckbox

# Knobs with a text field, in the notebook's order.
TEXT_FIELDS = ("epochs", "batch_size", "lr", "cycle_weight", "eval_every", "save_every", "seed", "num_graphs", "patience")
BACKEND_CHOICES = (("in-process (thread)", "inprocess"), ("detached process", "process"), ("Modal cloud GPU", "modal"))
GPU_CHOICES = tuple((f"{gpu}  ${price:.2f}/h", gpu) for gpu, price in GPU_PRICES_PER_HOUR.items())
DEVICE_CHOICES = tuple((d, d) for d in FIELDS["device"].choices or ())
MODEL_CHOICES = (("nsm (hierarchy)", "nsm"), ("flat (reference)", "flat"))
assert tuple(v for _l, v in MODEL_CHOICES) == MODELS
PRESETS = {
    "quick": ("Quick validation: 10 epochs, eval every 2", {"epochs": 10, "eval_every": 2, "save_every": 5}),
    "full": ("Full run: 100 epochs, batch 64", {"epochs": 100, "batch_size": 64, "eval_every": 5, "save_every": 10}),
    "last": ("Last config used", {}),
}
LAST_CONFIG_KEY = "dashboard.last_config"
SELECT_VALUES = {
    "domain": set(DOMAINS),
    "model": set(MODELS),
    "device": {v for _l, v in DEVICE_CHOICES},
    "backend": {v for _l, v in BACKEND_CHOICES},
    "gpu": {v for _l, v in GPU_CHOICES},
}
SELECTS = ("domain", "model", "device", "backend", "gpu")
MODAL = "modal"
# The form's fields in the order they are shown (the first invalid one is the one named).
FORM_ORDER = ("domain", "model", "pooling", *TEXT_FIELDS, "device", "backend", "gpu", "amp", "name")


def amp_applies(backend: Any, device: Any, cuda_here: bool | None) -> bool:
    """AMP needs a CUDA device: on Modal, or a local GPU (None: not known yet, so not hidden)."""
    if device == "cpu":
        return False
    return backend == MODAL or cuda_here is not False


def _raw(value: Any) -> str:
    if isinstance(value, float):
        # repr, not :g: a loaded 1.2345e-4 must not become 0.000123450 less precise.
        return f"{value:g}" if value.is_integer() else repr(value)
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
    ConfigPanel #form Label.-focused {
        text-style: bold reverse;
    }
    ConfigPanel .problem {
        color: $error;
        height: auto;
    }
    ConfigPanel #preset {
        width: 1fr;
    }
    ConfigPanel #start {
        margin-top: 1;
        width: 1fr;
    }
    ConfigPanel #local-gpu {
        color: $text-muted;
        height: auto;
        display: none;
    }
    ConfigPanel #summary {
        color: $text-muted;
        height: auto;
    }
    """

    BINDINGS = [Binding("escape", "leave_field", "Keys", tooltip="leave the form: the dashboard's single-letter keys work again")]

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
        self._shown: dict[str, bool] = {}  # rows that apply now (gpu, amp)
        self._marked: Label | None = None  # the label beside the focused field

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
            model = cfg.model if cfg.model in SELECT_VALUES["model"] else FIELDS["model"].default
            yield from self._select_row("model", list(MODEL_CHOICES), model)
            yield Label("POOLING", id="label-pooling")
            yield OnOffCheckbox(cfg.pooling, compact=True, id="field-pooling", tooltip=f"{FIELDS['pooling'].help}: space toggles")
            for name in TEXT_FIELDS:
                spec = FIELDS[name]
                yield Label(spec.label, id=f"label-{name}")
                yield Input(
                    _raw(getattr(cfg, name)), compact=True, id=f"field-{name}", tooltip=f"{spec.help} ({spec.allowed()})"
                )
            yield from self._select_row("device", list(DEVICE_CHOICES), cfg.device)
            backend = cfg.backend if cfg.backend in SELECT_VALUES["backend"] else "process"
            yield from self._select_row("backend", list(BACKEND_CHOICES), backend)
            gpu = cfg.gpu if cfg.gpu in SELECT_VALUES["gpu"] else FIELDS["gpu"].default
            yield from self._select_row("gpu", list(GPU_CHOICES), gpu)
            yield Label("AMP", id="label-amp")
            yield OnOffCheckbox(cfg.amp, compact=True, id="field-amp", tooltip=f"{FIELDS['amp'].help}: space toggles")
            yield Label("NAME", id="label-name")
            yield Input("", placeholder="generated", compact=True, id="field-name")
        # What this machine has, for a local backend: why AMP is not offered, in F5's words.
        yield Static("", id="local-gpu")
        yield Button("Start ▶", id="start", variant="success", compact=True, tooltip="start a run (enter here, s outside the form)")
        yield Static("", id="summary")

    def _select_row(self, name: str, options: list[tuple[str, str]], value: str) -> ComposeResult:
        yield Label(FIELDS[name].label, id=f"label-{name}")
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
        if local_gpu.known() is None:
            self._probe_local_gpu()

    @work(thread=True, exit_on_error=False, group="local-gpu")
    def _probe_local_gpu(self) -> None:
        local_gpu.probe()
        self.app.call_from_thread(self.validate)  # AMP shows or hides with the answer

    # ------------------------------------------------------ what applies now
    def _apply_visibility(self) -> None:
        backend = self.query_one("#field-backend", Select).value
        device = self.query_one("#field-device", Select).value
        here = local_gpu.known()
        rows = {
            "pooling": self.query_one("#field-model", Select).value == "nsm",
            "gpu": backend == MODAL,
            "amp": amp_applies(backend, device, None if here is None else here.available),
        }
        note = ""
        if backend != MODAL and here is not None and not here.available:
            note = f"GPU: n/a ({here.reason})" if here.reason else "GPU: n/a"
            note += " · trains on the CPU, no AMP"
        if note != getattr(self, "_note", None):
            self._note = note
            widget = self.query_one("#local-gpu", Static)
            widget.update(Text(note))
            widget.display = bool(note)
        for name, shown in rows.items():
            if self._shown.get(name) == shown:
                continue
            self._shown[name] = shown
            for selector in (f"#label-{name}", f"#field-{name}"):
                self.query_one(selector).display = shown
            if not shown and name in self._problems:
                self._show_problem(name, "")

    def applies(self, name: str) -> bool:
        """Whether field `name` is shown (GPU only for Modal, AMP only with CUDA)."""
        return self._shown.get(name, True)

    # ------------------------------------------------------------- read/write
    def raw_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in SELECTS:
            values[name] = self.query_one(f"#field-{name}", Select).value
        for name in TEXT_FIELDS:
            values[name] = self.query_one(f"#field-{name}", Input).value
        # A hidden AMP does not apply (no CUDA here): the run trains without it.
        values["amp"] = self.query_one("#field-amp", Checkbox).value and self.applies("amp")
        # A hidden POOLING (MODEL=flat) does not apply: the reference has no pooling to turn off.
        values["pooling"] = self.query_one("#field-pooling", Checkbox).value or not self.applies("pooling")
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
            if "pooling" in values:
                self.query_one("#field-pooling", Checkbox).value = bool(values["pooling"])
        finally:
            self._loading = False
        self.validate()

    def save_to_file(self, path: str) -> str | None:
        """Write the form (with the knobs it has no field for) to a TOML file; the problem, or None."""
        from nsm.config_file import ConfigFileError, save_config_file

        try:
            config = self.config()
        except ConfigError as exc:
            return f"fix the form first: {next(iter(exc.errors.values()))}"
        try:
            save_config_file(path, config, source="the nsm-tui config panel")
        except ConfigFileError as exc:
            return str(exc)
        return None

    def load_from_file(self, path: str) -> str | None:
        """Fill the form from a TOML file; a bad file changes nothing and its problem is returned."""
        from nsm.config_file import ConfigFileError, load_config_file

        try:
            config = load_config_file(path)
        except ConfigFileError as exc:
            return str(exc)
        self.load_config(config)
        return None

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
        self._apply_visibility()
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
            self._show_problem(field, errors.get(field, "") if self.applies(field) else "")
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
        # Enabled while a field is invalid: pressing it names the field (a greyed button says nothing).
        self.query_one("#start", Button).disabled = not self.can_start
        summary = self.query_one("#summary", Static)
        if self.errors:
            summary.update(Text(f"✗ fix {len(self.errors)} field(s) to start", style="red"))
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
            # Only on a form control; with the focus on the panel itself escape is the screen's.
            return editing_control(self.screen) is not None
        return True

    def on_descendant_focus(self, event: Any) -> None:
        self._mark_label(event.widget)

    def on_descendant_blur(self, event: Any) -> None:
        self._mark_label(None)

    def _mark_label(self, widget: Any) -> None:
        """Mark the focused field's label (reverse video: the focus shows without colour)."""
        label = None
        field_id = getattr(widget, "id", None) or ""
        if field_id.startswith("field-"):
            try:
                label = self.query_one(f"#label-{field_id.removeprefix('field-')}", Label)
            except Exception:
                label = None
        if label is self._marked:
            return
        if self._marked is not None:
            self._marked.remove_class("-focused")
        if label is not None:
            label.add_class("-focused")
        self._marked = label

    def action_leave_field(self) -> None:
        # To the panel itself: still here, and every single-letter key works again.
        self.focus()

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
        if self.validate():
            self.point_at_problem()
            return False
        if not self.can_start:
            self.app.notify("an in-process run is training here: stop it (x) before starting another", severity="warning")
            return False
        self.post_message(self.StartPressed(self.config(), self.run_name()))
        return True

    def first_problem(self) -> tuple[str, str] | None:
        """(field, message) of the first invalid field in the form's order, or None."""
        for name in (*FORM_ORDER, *self.errors):
            if name in self.errors:
                return name, self.errors[name]
        return None

    def point_at_problem(self) -> str | None:
        """Say which field stops a start and what it allows, and move the focus there."""
        problem = self.first_problem()
        if problem is None:
            return None
        name, message = problem
        label = "NAME" if name == "name" else FIELDS[name].label
        named = message if message.startswith(label) else f"{label}: {message}"
        self.app.notify(f"cannot start: {named}", severity="error", timeout=8)
        try:
            self.query_one(f"#field-{name}").focus()
        except Exception:
            pass
        return name
