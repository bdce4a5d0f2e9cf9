"""Baselines reported beside every model: majority class and shallow probes.

A structure-blind probe sees only bag-of-parts features (how many nodes of each
kind, edges of each type, the strength sums per type, the sums of numeric node
columns, graph size) — never how the parts are connected. The degree-aware
probe adds degree histograms, isolated nodes and duplicate edges (a corruption
that only rewires an edge shows there). If either solves a task, the task is too
shallow to need a graph model. The relational 1-WL probe sees local structure;
it is reported as information, not as a cap.

Every learned probe is fit on train (weight decay picked on val) and scored on
test, overall and per subtype: for each subtype, a probe of the same kind is fit
to tell that subtype's graphs from the other class, scored by balanced accuracy
(a leak confined to one corruption shows even where it barely moves the total).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nsm.probes import WL_BUCKETS, WL_ROUNDS, degree_features, wl_features

if TYPE_CHECKING:  # nsm.data builds datasets with these probes: a runtime import would be circular
    from nsm.data.base import DomainDataset, DomainSpec
    from nsm.data.graphs import GraphSet

# A shallow probe above this (overall or on a subtype) means the domain leaks its label.
LEAK_THRESHOLD = 0.60
# Display order and names of the probes stored in a dataset's baselines.
PROBE_NAMES = {
    "majority": "majority class",
    "blind_logreg": "structure-blind logistic regression",
    "blind_mlp": "structure-blind MLP",
    "degree_blind": "degree-aware logistic regression",
    "wl": "relational 1-WL colour histogram",
}
# The probes that must stay near chance; 1-WL is information only.
SHALLOW_PROBES = ("majority", "blind_logreg", "blind_mlp", "degree_blind")


def blind_features(gs: GraphSet, spec: "DomainSpec") -> torch.Tensor:
    g = len(gs)
    node_graph = torch.arange(g).repeat_interleave(gs.num_nodes())
    edge_graph = torch.arange(g).repeat_interleave(gs.num_edges())
    kinds = torch.zeros(g, spec.num_kinds)
    kinds.index_put_((node_graph, gs.node_kind), torch.ones(len(gs.node_kind)), accumulate=True)
    rels = torch.zeros(g, spec.num_relations)
    rels.index_put_((edge_graph, gs.edge_type), torch.ones(len(gs.edge_type)), accumulate=True)
    strength = torch.zeros(g, spec.num_relations)
    strength.index_put_((edge_graph, gs.edge_type), gs.edge_attr, accumulate=True)
    numeric = torch.zeros(g, gs.num_numeric)
    if gs.num_numeric:
        numeric.index_add_(0, node_graph, gs.x_num)
    size = torch.stack([gs.num_nodes().float(), gs.num_edges().float()], dim=1)
    return torch.cat([kinds, rels, strength, numeric, size], dim=1)


def majority_baseline(train_y: torch.Tensor, test_y: torch.Tensor) -> dict[str, Any]:
    majority = int(torch.bincount(train_y, minlength=2).argmax())
    return {"predicts": majority, "test_acc": round(float((test_y == majority).float().mean()), 4)}


def _fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, wd: float) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=wd)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()


def _standardise(xs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Scale by train statistics, dropping columns constant on train.

    A column constant on train but not on test would otherwise be divided by
    ~0 and swamp every prediction on test.
    """
    mean = xs["train"].mean(0)
    std = xs["train"].std(0)
    keep = std > 1e-6
    if not bool(keep.any()):  # nothing varies: one zero column, so the probe is its bias (the majority)
        return {k: torch.zeros(len(v), 1) for k, v in xs.items()}
    return {k: (v[:, keep] - mean[keep]) / std[keep] for k, v in xs.items()}


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _probe(
    make: Any,
    xs: dict[str, torch.Tensor],
    ys: dict[str, torch.Tensor],
    seed: int,
    subtypes: dict[str, torch.Tensor] | None = None,
    names: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Train on train, pick the weight decay on val, report test accuracy (and per subtype)."""
    norm = _standardise(xs)
    best: tuple[float, float, nn.Module] | None = None
    for wd in (0.0, 1e-3, 1e-2):
        torch.manual_seed(seed)
        model = make(norm["train"].shape[1])
        _fit(model, norm["train"], ys["train"], steps=300, wd=wd)
        val_acc = _accuracy(model, norm["val"], ys["val"])
        if best is None or val_acc > best[0]:
            best = (val_acc, wd, model)
    assert best is not None
    val_acc, wd, model = best
    out: dict[str, Any] = {
        "test_acc": round(_accuracy(model, norm["test"], ys["test"]), 4),
        "val_acc": round(val_acc, 4),
        "train_acc": round(_accuracy(model, norm["train"], ys["train"]), 4),
        "weight_decay": wd,
    }
    if subtypes is not None and names:
        with torch.no_grad():
            pred = model(norm["test"]).argmax(1)
        per = _per_subtype(pred, ys["test"], subtypes["test"], names)
        if per:
            out["per_subtype"] = per
            worst = max(per, key=lambda k: per[k])
            out["worst_subtype"] = {"name": worst, "acc": per[worst]}
    return out


def _per_subtype(
    pred: torch.Tensor, y: torch.Tensor, subtype: torch.Tensor, names: tuple[str, ...]
) -> dict[str, float]:
    """Per subtype: balanced test accuracy of the probe on that subtype's graphs against the other class.

    Balanced, so a probe that always says one class scores 0.5 on every subtype;
    against the whole other class, not a probe fit per subtype, because subtypes
    can be told apart by features unrelated to the label (kg's head kind names
    the queried relation), which would look like a leak.
    """
    per: dict[str, float] = {}
    for sid, name in enumerate(names):
        own = subtype == sid
        if not bool(own.any()):
            continue
        cls = int(y[own].float().mean().round())
        other = y != cls
        if not bool(other.any()):
            continue
        recall_own = float((pred[own] == cls).float().mean())
        recall_other = float((pred[other] != cls).float().mean())
        per[name] = round((recall_own + recall_other) / 2, 4)
    return per


def compute_baselines(ds: "DomainDataset", seed: int = 0) -> dict[str, Any]:
    """Majority and the learned probes on each feature set; test accuracy of each, overall and per subtype."""
    state = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    # These matrices are tiny: thread hand-offs cost more than they save (4x slower
    # on two busy cores), and the setting is restored for whoever runs next.
    torch.set_num_threads(1)
    splits = ("train", "val", "test")
    names = ds.spec.subtypes if len(ds.spec.subtypes) > 1 else ()
    try:
        ys = {s: ds.split(s).y for s in splits}
        subs = {s: ds.split(s).subtype for s in splits}
        blind = {s: blind_features(ds.split(s), ds.spec) for s in splits}
        degree = {s: torch.cat([blind[s], degree_features(ds.split(s), ds.spec)], dim=1) for s in splits}
        wl = {s: wl_features(ds.split(s), ds.spec) for s in splits}

        def linear(d: int) -> nn.Module:
            return nn.Linear(d, 2)

        logreg = _probe(linear, blind, ys, seed, subs, names)
        mlp = _probe(lambda d: nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, 2)), blind, ys, seed, subs, names)
        degree_probe = _probe(linear, degree, ys, seed, subs, names)
        wl_probe = _probe(linear, wl, ys, seed, subs, names)
    finally:
        torch.random.set_rng_state(state)
        torch.set_num_threads(threads)
    blind_best = max(logreg["test_acc"], mlp["test_acc"])
    return {
        "majority": majority_baseline(ys["train"], ys["test"]),
        "blind_logreg": logreg,
        "blind_mlp": mlp,
        # The stronger of the two blind probes: the bar a graph model must clear.
        "structure_blind": {"test_acc": blind_best},
        "degree_blind": {**degree_probe, "shallow": True},
        "wl": {**wl_probe, "shallow": False, "rounds": WL_ROUNDS, "buckets": WL_BUCKETS},
        "features": "counts of node kinds and edge types, strength sums per type, numeric column sums, nodes, edges",
        "degree_features": "the counts plus, per node kind, in/out degree histograms per relation, total-degree histogram, isolated nodes; duplicate edges per relation",
        "wl_features": f"relational 1-WL colours (kind + numeric columns; relation, direction, strength), rounds 0-{WL_ROUNDS}, hashed into {WL_BUCKETS} buckets",
    }


def leaks(baselines: dict[str, Any], threshold: float = LEAK_THRESHOLD) -> list[str]:
    """Names of the shallow probes above `threshold` overall or on their worst subtype."""
    out = []
    for key in SHALLOW_PROBES:
        value = baselines.get(key)
        if not isinstance(value, dict):
            continue
        worst = value.get("worst_subtype") or {}
        scores = [value.get("test_acc"), worst.get("acc")]
        if any(isinstance(a, (int, float)) and a > threshold for a in scores):
            out.append(key)
    return out
