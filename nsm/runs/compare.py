"""Comparing runs: final metrics side by side, the config values that differ,
the best run of each domain, and which domains have no run at all.

Torch-free and tolerant like the rest of the store: a run with a corrupt
config, a truncated log or no results yet is compared on what it has, with
the missing numbers left as None.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from nsm.config import DOMAINS, FIELDS
from nsm.runs.cache import load_json_object
from nsm.runs.checkpoints import BEST_FILE
from nsm.runs.errors import RunStoreError
from nsm.runs.store import FINISHED, Run, RunStore, RunSummary

VAL_LOSS = "val_loss"
TEST_ACC = "test_acc"
CRITERIA = {VAL_LOSS: "best val loss", TEST_ACC: "test accuracy"}

# An OOD split's name (nsm.data.ood): anything else in a damaged file is no column name.
_SPLIT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Keys that never tell two runs apart in a useful way.
_IGNORED_KEYS = frozenset({"schema_version"})


@dataclass
class RunMetrics:
    """One run's final numbers, for a comparison table and its charts."""

    ref: str
    name: str
    domain: str
    status: str
    epochs_done: int = 0
    epochs_planned: int | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    # Accuracy and loss of the best model on each out-of-distribution split (nsm.data.ood),
    # by split name; empty for a run made before them, or not finished.
    ood_acc: dict[str, float] = field(default_factory=dict)
    ood_loss: dict[str, float] = field(default_factory=dict)
    best_val_loss: float | None = None
    best_val_acc: float | None = None
    best_epoch: int | None = None
    final_cycle_loss: float | None = None  # training cycle loss of the last epoch
    training_time_s: float | None = None
    params: int | None = None
    model: str = "nsm"  # the MODEL knob (a config from before it is an nsm run)
    threads: int | None = None  # torch threads the latest attempt trained with
    baselines: dict[str, float] = field(default_factory=dict)  # name -> test accuracy
    config: dict[str, Any] | None = None
    val_epochs: list[int] = field(default_factory=list)
    val_acc: list[float | None] = field(default_factory=list)
    problem: str | None = None


@dataclass
class Comparison:
    runs: list[RunMetrics]
    missing: list[str]  # domains asked for that have no run
    differences: dict[str, dict[str, Any]]  # config key -> {ref: value}
    criterion: str | None = None  # set when the runs are the best per domain
    problems: list[str] = field(default_factory=list)  # runs that could not be read at all

    @property
    def refs(self) -> list[str]:
        return [m.ref for m in self.runs]


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def dig(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]... or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _baseline_accs(baselines: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(baselines, Mapping):
        for name, value in baselines.items():
            acc = _number(value.get("test_acc")) if isinstance(value, Mapping) else _number(value)
            if acc is not None:
                out[str(name)] = acc
    return out


def _last(values: Any) -> float | None:
    if isinstance(values, list):
        for v in reversed(values):
            n = _number(v)
            if n is not None:
                return n
    return None


def collect_metrics(run: Run, summary: RunSummary | None = None) -> RunMetrics:
    """The numbers of one run from its log, history, final_results.json and
    the saved evaluation of best_model.pt, whichever exist."""
    problems: list[str] = []
    summary = summary or run.summary()
    if summary.problem:
        problems.append(summary.problem)
    state = summary.state
    history: dict[str, Any] = {}
    try:
        history = run.history()
    except (RunStoreError, OSError) as exc:
        problems.append(f"history: {exc}")
    try:
        results = run.results() or {}
    except RunStoreError as exc:
        results = {}
        problems.append(str(exc))
    try:
        best_eval = load_json_object(run.evaluation_path(BEST_FILE), "evaluation") or {}
    except RunStoreError:
        best_eval = {}
    train = history.get("train") or {}
    val = history.get("val") or {}
    time_s = _number(dig(results, "timings", "total_s"))
    if time_s is None:
        times = [t for t in (_number(x) for x in train.get("epoch_time_s") or []) if t is not None]
        time_s = sum(times) if times else None
    test_acc = _first(state.test_acc, dig(results, "test", "acc"), best_eval.get("acc"))
    test_loss = _first(state.test_loss, dig(results, "test", "loss"), best_eval.get("loss"))
    val_epochs = [e for e in val.get("epochs") or [] if isinstance(e, int)]
    val_acc = list(val.get("acc") or [])[: len(val_epochs)]
    ood_acc, ood_loss = ood_numbers(state, results, best_eval)
    return RunMetrics(
        ref=summary.ref,
        name=summary.name,
        domain=summary.domain,
        status=summary.status,
        epochs_done=state.epoch,
        epochs_planned=summary.epochs,
        test_acc=test_acc,
        test_loss=test_loss,
        ood_acc=ood_acc,
        ood_loss=ood_loss,
        best_val_loss=_first(state.best_val_loss, results.get("best_val_loss")),
        best_val_acc=_first(state.best_val_acc, results.get("best_val_acc")),
        best_epoch=state.best_epoch if state.best_epoch is not None else results.get("best_epoch"),
        final_cycle_loss=_last(train.get("cycle_loss")),
        training_time_s=time_s,
        params=state.params if state.params is not None else results.get("params"),
        model=_model_of(summary.config),
        threads=state.threads,
        baselines=_baseline_accs(results.get("baselines") or best_eval.get("baselines")),
        config=summary.config,
        val_epochs=val_epochs,
        val_acc=[_number(a) for a in val_acc],
        problem="; ".join(problems) or None,
    )


def ood_numbers(state: Any, results: Mapping[str, Any], best_eval: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """OOD accuracy and loss by split: the latest attempt's finished event first (as
    for test), then final_results.json, then the saved evaluation of best_model.pt."""
    for source in (getattr(state, "ood", None), results.get("ood"), best_eval.get("ood")):
        if isinstance(source, Mapping) and source:
            named = {k: v for k, v in source.items() if isinstance(k, str) and _SPLIT_NAME.fullmatch(k)}
            acc = {k: a for k, v in named.items() if (a := _number(dig(v, "acc"))) is not None}
            loss = {k: x for k, v in named.items() if (x := _number(dig(v, "loss"))) is not None}
            if acc or loss:
                return acc, loss
    return {}, {}


def ood_label(name: str, short: bool = False) -> str:
    """A column label of an OOD split: ood_steps_11_20 -> "OOD 11-20" ("11-20" short),
    ood_large -> "OOD large" ("large")."""
    rest = name[4:] if name.startswith("ood_") else name
    if rest.startswith("steps_"):
        rest = rest[len("steps_") :]
    rest = rest.replace("_", "-")
    return rest if short else f"OOD {rest}"


def ood_split_names(runs: Iterable[RunMetrics]) -> list[str]:
    """Every OOD split some run has a number for, in first-seen order."""
    names: list[str] = []
    for m in runs:
        for name in (*m.ood_acc, *m.ood_loss):
            if name not in names:
                names.append(name)
    return names


def ood_rows(evaluation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The test split and each OOD split of one evaluation (final_results.json's test
    with its `ood`, or a saved evaluation) as rows: split, label, count, acc, loss
    and the worst subtype ("name 58%"). Empty when the evaluation has no OOD split."""
    ood = evaluation.get("ood")
    if not isinstance(ood, Mapping) or not ood:
        return []
    rows = [_split_row("test", "test", evaluation)]
    for name, result in ood.items():
        if isinstance(result, Mapping):
            rows.append(_split_row(str(name), ood_label(str(name)), result))
    return rows


def _split_row(split: str, label: str, result: Mapping[str, Any]) -> dict[str, Any]:
    worst = None
    per = result.get("per_subtype")
    if isinstance(per, Mapping):
        scored = [(a, str(k)) for k, v in per.items() if (a := _number(dig(v, "acc"))) is not None]
        if len(scored) > 1:
            acc, name = min(scored)
            worst = f"{name} {100 * acc:.0f}%"
    count = result.get("count")
    return {
        "split": split,
        "label": label,
        "count": count if isinstance(count, int) and not isinstance(count, bool) else None,
        "acc": _number(result.get("acc")),
        "loss": _number(result.get("loss")),
        "worst": worst,
    }


def _model_of(config: Mapping[str, Any] | None) -> str:
    model = config.get("model") if isinstance(config, Mapping) else None
    return model if isinstance(model, str) and model else FIELDS["model"].default


def _first(*values: Any) -> float | None:
    for v in values:
        n = _number(v)
        if n is not None:
            return n
    return None


def metric_of(summary: RunSummary | RunMetrics, criterion: str) -> float | None:
    if criterion == VAL_LOSS:
        return summary.best_val_loss
    if criterion == TEST_ACC:
        return summary.test_acc if isinstance(summary, RunMetrics) else summary.state.test_acc
    raise ValueError(f"criterion must be one of {', '.join(CRITERIA)} (got {criterion!r})")


def rank_key(summary: RunSummary, criterion: str) -> tuple[bool, bool, float, float]:
    """Higher is better: a run with the metric beats one without, a finished
    run beats an unfinished one, then the metric decides, then recency."""
    value = metric_of(summary, criterion)
    goodness = -math.inf if value is None else (-value if criterion == VAL_LOSS else value)
    return (value is not None, summary.status == FINISHED, goodness, summary.sort_time)


def best_per_domain(
    summaries: Iterable[RunSummary], criterion: str = VAL_LOSS, domains: Sequence[str] = DOMAINS
) -> dict[str, RunSummary | None]:
    """The best run of each domain (None where a domain has no run). Domains
    found in the store beyond `domains` are included after them."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)} (got {criterion!r})")
    by_domain: dict[str, list[RunSummary]] = {d: [] for d in domains}
    for s in summaries:
        by_domain.setdefault(s.domain, []).append(s)
    return {d: max(runs, key=lambda s: rank_key(s, criterion)) if runs else None for d, runs in by_domain.items()}


def config_differences(configs: Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """Config keys whose values are not the same in every config, as
    {key: {ref: value}} (a key a config lacks has the value None). Configs
    that could not be read (None) take no part."""
    readable = {ref: cfg for ref, cfg in configs.items() if isinstance(cfg, Mapping)}
    keys: list[str] = []
    for cfg in readable.values():
        keys += [k for k in cfg if k not in keys and k not in _IGNORED_KEYS]
    diffs: dict[str, dict[str, Any]] = {}
    for key in keys:
        values = {ref: cfg.get(key) for ref, cfg in readable.items()}
        if len({_hashable(v) for v in values.values()}) > 1:
            diffs[key] = values
    return diffs


def _hashable(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 1e-3 typed as 0.001 or 1 vs 1.0 is the same setting
    if isinstance(value, (list, dict)):
        return repr(value)
    return value


def build_comparison(
    runs: Sequence[Run],
    *,
    domains: Sequence[str] = (),
    criterion: str | None = None,
    summaries: Mapping[str, RunSummary] | None = None,
) -> Comparison:
    """Metrics and config differences of `runs`; each of `domains` with no
    run among them is listed as missing."""
    metrics: list[RunMetrics] = []
    problems: list[str] = []
    for run in runs:
        if not run.exists():
            problems.append(f"run {run.ref} no longer exists")
            continue
        try:
            metrics.append(collect_metrics(run, (summaries or {}).get(run.ref)))
        except (RunStoreError, OSError) as exc:
            problems.append(f"run {run.ref}: {exc}")
    present = {m.domain for m in metrics}
    missing = [d for d in domains if d not in present]
    differences = config_differences({m.ref: m.config for m in metrics})
    return Comparison(metrics, missing, differences, criterion, problems)


def compare_runs(store: RunStore, refs: Sequence[str]) -> Comparison:
    """A comparison of the named runs (refs that are not found become problems)."""
    runs: list[Run] = []
    problems: list[str] = []
    for ref in refs:
        try:
            runs.append(store.get(ref))
        except RunStoreError as exc:
            problems.append(str(exc))
    comparison = build_comparison(runs)
    comparison.problems[:0] = problems
    return comparison


def compare_best_per_domain(
    store: RunStore, criterion: str = VAL_LOSS, domains: Sequence[str] = DOMAINS, summaries: Sequence[RunSummary] | None = None
) -> Comparison:
    """The best run of each domain side by side; domains without a run are missing."""
    summaries = list(summaries) if summaries is not None else store.list_runs()
    best = best_per_domain(summaries, criterion, domains)
    chosen = [s for s in best.values() if s is not None]
    return build_comparison(
        [Run(s.path) for s in chosen],
        domains=list(best),
        criterion=criterion,
        summaries={s.ref: s for s in chosen},
    )


# ------------------------------------------------------------------ table

METRIC_COLUMNS = (
    ("test_acc", "test acc"),
    ("test_loss", "test loss"),
    ("best_val_loss", "best val loss"),
    ("best_val_acc", "best val acc"),
    ("final_cycle_loss", "cycle loss"),
    ("training_time_s", "time (s)"),
    ("epochs_done", "epochs"),
    ("threads", "threads"),
)


def metric_columns(comparison: Comparison) -> list[tuple[str, str]]:
    """METRIC_COLUMNS, with one `ood:<split>` column (its accuracy) per OOD split
    that some run has, right after the test columns."""
    ood = [(f"ood:{name}", ood_label(name)) for name in ood_split_names(comparison.runs)]
    return [*METRIC_COLUMNS[:2], *ood, *METRIC_COLUMNS[2:]]


def metric_value(m: RunMetrics, key: str) -> Any:
    """A RunMetrics value by METRIC_COLUMNS key, or an OOD accuracy by `ood:<split>`."""
    if key.startswith("ood:"):
        return m.ood_acc.get(key[4:])
    return getattr(m, key)


def metrics_table(comparison: Comparison) -> tuple[list[str], list[list[Any]]]:
    """Rows of final metrics (one per run, then one per missing domain)."""
    metrics = metric_columns(comparison)
    columns = ["run", "domain", "status", "model", *(label for _, label in metrics)]
    rows: list[list[Any]] = []
    for m in comparison.runs:
        rows.append([m.name, m.domain, m.status, m.model, *(metric_value(m, key) for key, _ in metrics)])
    for domain in comparison.missing:
        rows.append(["(no run)", domain, "missing", None, *([None] * len(metrics))])
    return columns, rows


def differences_table(comparison: Comparison) -> tuple[list[str], list[list[Any]]]:
    columns = ["setting", *(m.name for m in comparison.runs)]
    rows = [[key, *(values.get(m.ref) for m in comparison.runs)] for key, values in comparison.differences.items()]
    return columns, rows
