"""Dataset statistics: counts, balance per split, size distributions, vocabulary usage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from nsm.data.base import DomainDataset

from nsm.data.base import SPLITS


def distribution(values: torch.Tensor) -> dict[str, float]:
    if values.numel() == 0:
        return {"min": 0, "p25": 0, "median": 0, "mean": 0.0, "p75": 0, "max": 0}
    v = values.float()
    q = torch.quantile(v, torch.tensor([0.25, 0.5, 0.75]))
    return {
        "min": float(v.min()),
        "p25": float(q[0]),
        "median": float(q[1]),
        "mean": round(float(v.mean()), 3),
        "p75": float(q[2]),
        "max": float(v.max()),
    }


def split_stats(gs: Any) -> dict[str, Any]:
    """Size and label balance of one split."""
    pos = int(gs.y.sum())
    return {
        "count": len(gs),
        "positive": pos,
        "negative": len(gs) - pos,
        "positive_frac": round(pos / max(len(gs), 1), 4),
    }


def ood_stats(
    ds: "DomainDataset", params: dict[str, Any] | None = None, skipped: dict[str, str] | None = None
) -> dict[str, Any]:
    """Each OOD split's size, balance and graph sizes (nodes, edges), with the
    test split's sizes beside them and the generation parameters it overrides."""
    out: dict[str, Any] = {}
    for name, gs in ds.ood.items():
        out[name] = {
            **split_stats(gs),
            "nodes": distribution(gs.num_nodes()),
            "edges": distribution(gs.num_edges()),
            "overrides": dict((params or {}).get(name) or {}),
        }
    return {
        "test": {"nodes": distribution(ds.test.num_nodes()), "edges": distribution(ds.test.num_edges())},
        "splits": out,
        "skipped": dict(skipped or {}),
    }


def dataset_stats(
    ds: "DomainDataset", ood_params: dict[str, Any] | None = None, ood_skipped: dict[str, str] | None = None
) -> dict[str, Any]:
    """`splits` covers train/val/test (the num_graphs generated); `ood` the OOD splits."""
    spec = ds.spec
    splits: dict[str, Any] = {}
    nodes = {"positive": [], "negative": []}
    edges = {"positive": [], "negative": []}
    rel_counts = torch.zeros(spec.num_relations, dtype=torch.long)
    kind_counts = torch.zeros(spec.num_kinds, dtype=torch.long)
    sub_counts = torch.zeros(len(spec.subtypes), dtype=torch.long)
    for name in SPLITS:
        gs = ds.split(name)
        splits[name] = split_stats(gs)
        for cls, key in ((1, "positive"), (0, "negative")):
            mask = gs.y == cls
            nodes[key].append(gs.num_nodes()[mask])
            edges[key].append(gs.num_edges()[mask])
        rel_counts += torch.bincount(gs.edge_type, minlength=spec.num_relations)[: spec.num_relations]
        kind_counts += torch.bincount(gs.node_kind, minlength=spec.num_kinds)[: spec.num_kinds]
        sub_counts += torch.bincount(gs.subtype, minlength=len(spec.subtypes))[: len(spec.subtypes)]
    node_all = torch.cat(nodes["positive"] + nodes["negative"])
    edge_all = torch.cat(edges["positive"] + edges["negative"])
    return {
        "domain": spec.name,
        "num_graphs": ds.num_graphs,
        "seed": ds.seed,
        "params": ds.params,
        "splits": splits,
        "nodes": {
            "all": distribution(node_all),
            "positive": distribution(torch.cat(nodes["positive"])),
            "negative": distribution(torch.cat(nodes["negative"])),
        },
        "edges": {
            "all": distribution(edge_all),
            "positive": distribution(torch.cat(edges["positive"])),
            "negative": distribution(torch.cat(edges["negative"])),
        },
        "relations": {spec.relation_name(r): int(c) for r, c in enumerate(rel_counts)},
        "node_kinds": {k: int(c) for k, c in zip(spec.node_kinds, kind_counts)},
        "subtypes": {k: int(c) for k, c in zip(spec.subtypes, sub_counts)},
        "ood": ood_stats(ds, ood_params, ood_skipped),
    }
