"""Baselines reported beside every model: majority class and structure-blind probes.

A structure-blind probe sees only bag-of-parts features (how many nodes of each
kind, edges of each type, the strength sums per type, the sums of numeric node
columns, graph size) — never how the parts are connected. If it solves a task,
the task is too shallow to need a graph model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nsm.data.graphs import GraphSet

if TYPE_CHECKING:
    from nsm.data.base import DomainDataset, DomainSpec


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


def _probe(make: Any, xs: dict[str, torch.Tensor], ys: dict[str, torch.Tensor], seed: int) -> dict[str, Any]:
    """Train on train, pick the weight decay on val, report test accuracy."""
    mean = xs["train"].mean(0)
    std = xs["train"].std(0).clamp_min(1e-6)
    norm = {k: (v - mean) / std for k, v in xs.items()}
    best: tuple[float, float, nn.Module] | None = None
    for wd in (0.0, 1e-3, 1e-2):
        torch.manual_seed(seed)
        model = make(norm["train"].shape[1])
        _fit(model, norm["train"], ys["train"], steps=300, wd=wd)
        with torch.no_grad():
            val_acc = float((model(norm["val"]).argmax(1) == ys["val"]).float().mean())
        if best is None or val_acc > best[0]:
            best = (val_acc, wd, model)
    assert best is not None
    val_acc, wd, model = best
    with torch.no_grad():
        test_acc = float((model(norm["test"]).argmax(1) == ys["test"]).float().mean())
        train_acc = float((model(norm["train"]).argmax(1) == ys["train"]).float().mean())
    return {
        "test_acc": round(test_acc, 4),
        "val_acc": round(val_acc, 4),
        "train_acc": round(train_acc, 4),
        "weight_decay": wd,
    }


def compute_baselines(ds: "DomainDataset", seed: int = 0) -> dict[str, Any]:
    """Majority, logistic regression and MLP on blind features; test accuracy of each."""
    state = torch.random.get_rng_state()
    try:
        xs = {s: blind_features(ds.split(s), ds.spec) for s in ("train", "val", "test")}
        ys = {s: ds.split(s).y for s in ("train", "val", "test")}
        logreg = _probe(lambda d: nn.Linear(d, 2), xs, ys, seed)
        mlp = _probe(lambda d: nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, 2)), xs, ys, seed)
    finally:
        torch.random.set_rng_state(state)
    blind_best = max(logreg["test_acc"], mlp["test_acc"])
    return {
        "majority": majority_baseline(ys["train"], ys["test"]),
        "blind_logreg": logreg,
        "blind_mlp": mlp,
        # The stronger of the two blind probes: the bar a graph model must clear.
        "structure_blind": {"test_acc": blind_best},
        "features": "counts of node kinds and edge types, strength sums per type, numeric column sums, nodes, edges",
    }
