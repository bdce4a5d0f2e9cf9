"""Run configuration: every knob, its default, its allowed values, one validator.

The CLI, the TUI's config panel and the Modal client all validate through
`FIELDS`, so a bad value gets the same message wherever it is typed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

DOMAINS = ("causal", "planning", "kg")
DEVICES = ("auto", "cpu", "cuda")
WANDB_MODES = ("off", "offline", "online")
BACKENDS = ("inprocess", "process", "modal")
# nsm: the 3-level hierarchy; flat: the same relational layers without pooling or
# cycle loss, the reference a hierarchy has to beat (nsm.models.FlatRGCN).
MODELS = ("nsm", "flat")
CONFIG_SCHEMA_VERSION = 1


class ConfigError(ValueError):
    """One or more knobs are invalid; `errors` maps knob name -> message."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str  # the notebook's name, shown in the TUI
    kind: type  # int, float, str or bool
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    # Fields with user-facing flags in the CLI and inputs in the TUI.
    public: bool = True

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            return "any text"
        lo = "" if self.minimum is None else _fmt(self.minimum)
        hi = "" if self.maximum is None else _fmt(self.maximum)
        what = "an integer" if self.kind is int else "a number"
        if lo and hi:
            return f"{what} from {lo} to {hi}"
        if lo:
            return f"{what} >= {lo}"
        if hi:
            return f"{what} <= {hi}"
        return what

    def parse(self, raw: Any) -> Any:
        """Turn user input (text or a Python value) into a checked value.

        Raises ValueError with a message naming the knob and what is allowed.
        """
        value = _coerce(self, raw)
        problem = self.check(value)
        if problem:
            raise ValueError(problem)
        return value

    def check(self, value: Any) -> str | None:
        if self.choices is not None:
            if value not in self.choices:
                return f"{self.label} must be {self.allowed()} (got {value!r})"
            return None
        if self.kind in (int, float):
            if isinstance(value, float) and not math.isfinite(value):
                return f"{self.label} must be {self.allowed()} (got {value!r})"
            if self.minimum is not None and value < self.minimum:
                return f"{self.label} must be {self.allowed()} (got {_fmt(value)})"
            if self.maximum is not None and value > self.maximum:
                return f"{self.label} must be {self.allowed()} (got {_fmt(value)})"
        return None


def _fmt(x: float) -> str:
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e15):
        return str(int(x))
    return f"{x:g}"


def _coerce(spec: FieldSpec, raw: Any) -> Any:
    bad = ValueError(f"{spec.label} must be {spec.allowed()} (got {raw!r})")
    if spec.kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise bad
    if spec.kind is int:
        if isinstance(raw, bool):
            raise bad
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        try:
            return int(str(raw).strip().replace("_", ""))
        except ValueError:
            raise bad from None
    if spec.kind is float:
        if isinstance(raw, bool):
            raise bad
        try:
            value = float(str(raw).strip()) if not isinstance(raw, (int, float)) else float(raw)
        except ValueError:
            raise bad from None
        return value
    text = str(raw).strip()
    if spec.choices is not None:
        text = text.lower()
    return text


_SPECS = [
    FieldSpec("domain", "DOMAIN", str, "planning", "reasoning task to train on", choices=DOMAINS),
    FieldSpec("epochs", "EPOCHS", int, 100, "number of training epochs", 1, 10_000),
    FieldSpec("batch_size", "BATCH_SIZE", int, 64, "graphs per training step", 1, 4096),
    FieldSpec("lr", "LR", float, 1e-3, "peak learning rate (AdamW)", 1e-6, 1.0),
    FieldSpec("cycle_weight", "CYCLE_WEIGHT", float, 0.01, "weight of the cycle-consistency loss", 0.0, 10.0),
    FieldSpec("eval_every", "EVAL_EVERY", int, 5, "validate every N epochs (and at the last)", 1, 10_000),
    FieldSpec("save_every", "SAVE_EVERY", int, 10, "write checkpoint_epoch_<N>.pt every N epochs", 1, 10_000),
    FieldSpec("seed", "SEED", int, 42, "seed for data, model init and shuffling", 0, 2**31 - 1),
    FieldSpec("num_graphs", "NUM_GRAPHS", int, 2000, "dataset size (split 70/15/15)", 20, 200_000),
    FieldSpec("patience", "PATIENCE", int, 30, "early stopping: epochs without val-loss improvement (0 = off)", 0, 10_000),
    FieldSpec("device", "DEVICE", str, "auto", "where to train", choices=DEVICES),
    FieldSpec("num_workers", "NUM_WORKERS", int, 0, "background threads preparing the next batches (0 = in the training loop)", 0, 64),
    FieldSpec("amp", "AMP", bool, False, "mixed precision (CUDA only)"),
    FieldSpec("backend", "BACKEND", str, "process", "where the engine runs", choices=BACKENDS),
    FieldSpec("gpu", "GPU", str, "A100-40GB", "Modal GPU type (modal backend only)"),
    FieldSpec("tensorboard", "TENSORBOARD", bool, True, "also write TensorBoard event files (tensorboard/ in the run folder)"),
    FieldSpec("wandb", "WANDB", str, "off", "also log to Weights & Biases (needs the wandb extra)", choices=WANDB_MODES),
    FieldSpec("keep_last", "KEEP_LAST", int, 0, "keep only the newest N periodic checkpoints (best_model.pt always kept; 0 = keep all)", 0, 10_000),
    FieldSpec("model", "MODEL", str, "nsm", "nsm (3-level hierarchy) or flat (relational reference: no pooling, no cycle loss)", choices=MODELS),
    FieldSpec("pooling", "POOLING", bool, True, "NSM ablation: off keeps every node at every level (the hierarchy without pooling; MODEL=nsm only)"),
    FieldSpec("hidden", "HIDDEN", int, 96, "model width", 8, 1024, public=False),
    FieldSpec("threads", "THREADS", int, 0, "torch CPU threads (0 = usable cores - 1, at least 1)", 0, 256, public=False),
]

FIELDS: dict[str, FieldSpec] = {s.name: s for s in _SPECS}


@dataclass(frozen=True)
class RunConfig:
    domain: str = "planning"
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    cycle_weight: float = 0.01
    eval_every: int = 5
    save_every: int = 10
    seed: int = 42
    num_graphs: int = 2000
    patience: int = 30
    device: str = "auto"
    num_workers: int = 0
    amp: bool = False
    backend: str = "process"
    gpu: str = "A100-40GB"
    tensorboard: bool = True
    wandb: str = "off"
    keep_last: int = 0
    model: str = "nsm"
    pooling: bool = True
    hidden: int = 96
    threads: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["schema_version"] = CONFIG_SCHEMA_VERSION
        return d

    def replace(self, **changes: Any) -> "RunConfig":
        return validate_config({**self.to_dict(), **changes})

    def differs_from(self, other: "RunConfig") -> dict[str, tuple[Any, Any]]:
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


assert [f.name for f in dataclasses.fields(RunConfig)] == list(FIELDS), "FIELDS and RunConfig disagree"
assert all(getattr(RunConfig(), n) == s.default for n, s in FIELDS.items()), "defaults disagree"


def validate_config(values: Mapping[str, Any], *, base: RunConfig | None = None) -> RunConfig:
    """Check every knob and return a RunConfig; raise ConfigError listing each bad knob.

    Unknown keys are refused (a typo must not silently fall back to a default),
    except `schema_version`.
    """
    start = (base or RunConfig()).to_dict()
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for key, raw in values.items():
        if key == "schema_version":
            continue
        spec = FIELDS.get(key)
        if spec is None:
            errors[key] = f"unknown setting {key!r}; known settings: {', '.join(FIELDS)}"
            continue
        try:
            parsed[key] = spec.parse(raw)
        except ValueError as exc:
            errors[key] = str(exc)
    merged = {k: v for k, v in start.items() if k != "schema_version"}
    merged.update(parsed)
    errors.update(cross_field_errors(merged, errors))
    if errors:
        raise ConfigError(errors)
    return RunConfig(**merged)


def cross_field_errors(values: Mapping[str, Any], already: Mapping[str, str] = {}) -> dict[str, str]:
    """Rules that relate two knobs; skipped for knobs that are already invalid."""
    errors: dict[str, str] = {}
    ok: Callable[[str], bool] = lambda k: k not in already and k in values
    if ok("amp") and values["amp"] and ok("device") and values["device"] == "cpu":
        errors["amp"] = "AMP needs a CUDA device; set DEVICE to cuda or auto, or turn AMP off"
    if ok("pooling") and not values["pooling"] and ok("model") and values["model"] != "nsm":
        errors["pooling"] = (
            f"POOLING=off applies to MODEL=nsm only (MODEL={values['model']} has no pooling to turn off); "
            "set MODEL to nsm or POOLING to on"
        )
    if ok("hidden") and values["hidden"] % 2:
        errors["hidden"] = f"HIDDEN must be even (the coupling blocks split features in halves; got {values['hidden']})"
    if ok("batch_size") and ok("num_graphs"):
        train = int(values["num_graphs"] * 0.7)
        if values["batch_size"] > max(train, 1):
            errors["batch_size"] = (
                f"BATCH_SIZE must be at most the training split size ({train} graphs "
                f"for NUM_GRAPHS={values['num_graphs']})"
            )
    return errors


def field_error(name: str, raw: Any) -> str | None:
    """Validate one knob as typed (for the TUI's field-by-field messages)."""
    try:
        FIELDS[name].parse(raw)
    except ValueError as exc:
        return str(exc)
    return None
