"""Out-of-distribution (OOD) test splits: the same task on larger graphs.

Every domain names a few OOD variants. A variant is a function of the
dataset's own generation parameters that returns the parameters to override
(so `load_dataset(domain, num_graphs, seed, **params)` keeps working with any
params), or a reason why it cannot apply to them; such a split is skipped
and the reason kept in the dataset's stats, never failing a run.

  planning  ood_steps_11_20   plans of 11–20 steps (training plans: 5–10)
            ood_steps_21_40   plans of 21–40 steps
  causal    ood_large         mediators and confounders from one more than the
                              training maximum up to twice it
  kg        ood_large         persons and countries likewise; max_nodes doubled

Each OOD split holds as many graphs as the test split, half of them positive
(labels alternate, as in `generate_graphs`), drawn in a seed namespace of its
own (`<domain>:<split>`), and never a graph of train, val or test (their
fingerprints are excluded while drawing).

Bump OOD_VERSION whenever a definition here changes: it is part of the
dataset cache key (with every resolved override), so caches regenerate.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Iterable

from nsm.data.base import Domain, generate_graphs
from nsm.data.graphs import Graph, GraphSet

log = logging.getLogger(__name__)

OOD_VERSION = 1
OOD_PREFIX = "ood_"

# A variant: the base params (a dict) -> the overrides (a dict), or a string saying why not.
Variant = Callable[[dict[str, Any]], "dict[str, Any] | str"]


def _steps(lo: int, hi: int) -> Variant:
    def resolve(p: dict[str, Any]) -> dict[str, Any] | str:
        steps = p.get("steps")
        if not (isinstance(steps, (list, tuple)) and len(steps) == 2):
            return f"no steps range in the generation parameters ({steps!r})"
        if int(steps[1]) >= lo:
            return f"the training plans already reach {steps[1]} steps (steps={tuple(steps)}): {lo}-{hi} is not out of distribution"
        return {"steps": (lo, hi)}

    return resolve


def _larger(*names: str, extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Variant:
    """min_<name> = max_<name> + 1 and max_<name> = 2 × max_<name> (at least min), for each name."""

    def resolve(p: dict[str, Any]) -> dict[str, Any] | str:
        out: dict[str, Any] = {}
        for name in names:
            hi = p.get(f"max_{name}")
            if isinstance(hi, bool) or not isinstance(hi, int) or f"min_{name}" not in p:
                return f"no min_{name}/max_{name} in the generation parameters"
            out[f"min_{name}"] = hi + 1
            out[f"max_{name}"] = max(2 * hi, hi + 1)
        if extra is not None:
            out.update(extra(p))
        return out

    return resolve


def _kg_nodes(p: dict[str, Any]) -> dict[str, Any]:
    cap = p.get("max_nodes")
    return {"max_nodes": 2 * cap} if isinstance(cap, int) and not isinstance(cap, bool) else {}


OOD_VARIANTS: dict[str, dict[str, Variant]] = {
    "planning": {
        "ood_steps_11_20": _steps(11, 20),
        "ood_steps_21_40": _steps(21, 40),
    },
    "causal": {
        "ood_large": _larger("mediators", "confounders"),
    },
    "kg": {
        "ood_large": _larger("persons", "countries", extra=_kg_nodes),
    },
}

# What each variant means, in words (data stats, reports).
OOD_DESCRIPTIONS = {
    "ood_steps_11_20": "plans of 11-20 steps",
    "ood_steps_21_40": "plans of 21-40 steps",
    "ood_large": "larger graphs (more entities than training ever saw)",
}


def ood_names(domain: str) -> tuple[str, ...]:
    """The OOD split names a domain defines (whether or not they apply to given params)."""
    return tuple(OOD_VARIANTS.get(domain, {}))


def resolve_ood(domain: Domain) -> dict[str, dict[str, Any] | str]:
    """Per OOD split of `domain`: its full overrides (JSON-able), or why it is skipped."""
    base = domain.params_dict()
    out: dict[str, dict[str, Any] | str] = {}
    for name, variant in OOD_VARIANTS.get(domain.spec.name, {}).items():
        try:
            resolved = variant(base)
        except Exception as exc:  # a user value the rule did not expect: skip, never fail
            resolved = f"cannot apply to these parameters ({type(exc).__name__}: {exc})"
        if isinstance(resolved, dict):
            resolved = {k: list(v) if isinstance(v, tuple) else v for k, v in resolved.items()}
        out[name] = resolved
    return out


def ood_signature(domain: Domain) -> dict[str, Any]:
    """What the cache key must cover: the version and every resolved override."""
    return {"version": OOD_VERSION, "splits": resolve_ood(domain)}


def ood_domain(domain: Domain, overrides: dict[str, Any]) -> Domain:
    """The domain with `overrides` applied to its own params (ValueError/TypeError if invalid)."""
    fields = {f.name for f in dataclasses.fields(domain.Params)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}")
    values = {k: tuple(v) if isinstance(getattr(domain.params, k), tuple) else v for k, v in overrides.items()}
    return type(domain)(dataclasses.replace(domain.params, **values))


def build_ood(
    domain: Domain, count: int, seed: int, exclude: Iterable[Graph]
) -> tuple[dict[str, GraphSet], dict[str, str]]:
    """The OOD splits of `domain` (`count` graphs each) and the reasons of those skipped."""
    seen = {g.fingerprint() for g in exclude}
    splits: dict[str, GraphSet] = {}
    skipped: dict[str, str] = {}
    name = domain.spec.name
    for split, resolved in resolve_ood(domain).items():
        if isinstance(resolved, str):
            skipped[split] = resolved
            log.info("%s: OOD split %s skipped: %s", name, split, resolved)
            continue
        try:
            dom = ood_domain(domain, resolved)
            graphs = generate_graphs(dom, count, seed, namespace=f"{name}:{split}", exclude=seen)
        except (ValueError, TypeError, RuntimeError) as exc:
            skipped[split] = f"cannot generate it with {resolved} ({exc})"
            log.warning("%s: OOD split %s skipped: %s", name, split, skipped[split])
            continue
        seen.update(g.fingerprint() for g in graphs)
        splits[split] = GraphSet.from_graphs(graphs, domain.spec.num_numeric)
    return splits, skipped


def ood_count(test_size: int) -> int:
    """Graphs per OOD split: as many as the test split, at least 1."""
    return max(1, test_size)

