"""Planning negatives hide in the degrees: no degree statistic tells a broken plan from a valid one.

Each corruption rewires edges so that every node keeps its in/out degree per
relation, and creates no duplicate edge (nor a pair of nodes joined under two
relations where the valid plan has none); a probe that reads only degrees and
counts must then stay at chance, overall and on every corruption kind.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from nsm.baselines import LEAK_THRESHOLD, SHALLOW_PROBES, leaks
from nsm.data import GraphSet, load_dataset, make_domain
from nsm.data.base import generate_graphs, sample_seed
from nsm.data.graphs import Graph
from nsm.data.planning import CORRUPTIONS, RELATIONS, SUBTYPES, Planning, violations
from nsm.probes import degree_features

PLAN_LENGTHS = [(5, 10), (11, 20), (21, 40)]  # the default plans and the out-of-distribution ones


def degree_signature(g: Graph) -> list[tuple[int, tuple[int, ...]]]:
    """Sorted (node kind, out-degree per relation + in-degree per relation) of every node."""
    r = len(RELATIONS)
    deg = [[0] * (2 * r) for _ in g.node_kind]
    for s, d, rel, _ in g.edges:
        deg[s][rel] += 1
        deg[d][r + rel] += 1
    return sorted((kind, tuple(row)) for kind, row in zip(g.node_kind, deg))


def shared_pairs(g: Graph) -> list[tuple[int, ...]]:
    """Sorted relation sets of the (src, dst) pairs that carry more than one relation."""
    rels: dict[tuple[int, int], set[int]] = {}
    for s, d, r, _ in g.edges:
        rels.setdefault((s, d), set()).add(r)
    return sorted(tuple(sorted(v)) for v in rels.values() if len(v) > 1)


def duplicate_edges(g: Graph) -> int:
    return len(g.edges) - len({(s, d, r) for s, d, r, _ in g.edges})


def only(kind: int, steps: tuple[int, int] = (5, 10)) -> Planning:
    weights = [0.0, 0.0, 0.0]
    weights[kind] = 1.0
    return make_domain("planning", steps=steps, corruption_weights=tuple(weights))  # type: ignore[return-value]


@pytest.mark.parametrize("steps", PLAN_LENGTHS)
@pytest.mark.parametrize("kind", range(3), ids=CORRUPTIONS)
def test_each_corruption_keeps_every_nodes_degrees(kind: int, steps: tuple[int, int]) -> None:
    dom = only(kind, steps)
    for i in range(150 if steps == (5, 10) else 40):
        seed = sample_seed("planning-degrees", kind, i, 0)
        neg, pos = dom.sample(random.Random(seed), 0), dom.sample(random.Random(seed), 1)
        assert neg is not None and pos is not None
        assert violations(neg) == {CORRUPTIONS[kind]} and violations(pos) == set()
        assert degree_signature(neg) == degree_signature(pos), (CORRUPTIONS[kind], seed)
        assert shared_pairs(neg) == shared_pairs(pos), (CORRUPTIONS[kind], seed)  # e.g. next and requires on one pair
        assert duplicate_edges(neg) == duplicate_edges(pos) == 0


@pytest.mark.parametrize("steps", PLAN_LENGTHS)
def test_no_graph_has_a_duplicate_edge(steps: tuple[int, int]) -> None:
    graphs = generate_graphs(make_domain("planning", steps=steps), 600 if steps == (5, 10) else 150, seed=3)
    assert {SUBTYPES[g.subtype] for g in graphs} == set(SUBTYPES)
    assert [duplicate_edges(g) for g in graphs] == [0] * len(graphs)


def ks_statistic(a: torch.Tensor, b: torch.Tensor) -> float:
    values = torch.cat([a, b]).unique()
    cdf_a = (a.unsqueeze(1) <= values).float().mean(0)
    cdf_b = (b.unsqueeze(1) <= values).float().mean(0)
    return float((cdf_a - cdf_b).abs().max())


def test_the_classes_share_their_degree_histograms() -> None:
    """Every column the degree-aware probe reads has one distribution in both classes."""
    dom = make_domain("planning")
    graphs = generate_graphs(dom, 1200, seed=11)
    gs = GraphSet.from_graphs(graphs, num_numeric=1)
    feats = degree_features(gs, dom.spec)
    pos, neg = feats[gs.y == 1], feats[gs.y == 0]
    varying = [j for j in range(feats.shape[1]) if bool((feats[:, j] != feats[0, j]).any())]
    assert len(varying) > 50  # the histograms do vary from plan to plan
    # Two-sample KS at alpha = 0.01 over all varying columns (Bonferroni):
    # D > c * sqrt((n + m) / (n m)), c = sqrt(-ln(alpha / 2) / 2); about 0.13 here.
    n, m = len(pos), len(neg)
    alpha = 0.01 / len(varying)
    critical = math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
    worst = max(varying, key=lambda j: ks_statistic(pos[:, j], neg[:, j]))
    ks = ks_statistic(pos[:, worst], neg[:, worst])
    assert ks < critical, f"degree feature {worst} differs by class (KS={ks:.3f} >= {critical:.3f})"


def test_the_degree_aware_probe_stays_at_chance(tmp_path: Path) -> None:
    ds = load_dataset("planning", cache_dir=tmp_path)  # the default dataset, built afresh
    b = ds.baselines
    degree = b["degree_blind"]
    assert set(degree["per_subtype"]) == set(SUBTYPES)
    assert degree["test_acc"] <= LEAK_THRESHOLD, degree
    assert max(degree["per_subtype"].values()) <= LEAK_THRESHOLD, degree["per_subtype"]
    assert leaks(b) == [], {k: (b[k]["test_acc"], b[k].get("worst_subtype")) for k in SHALLOW_PROBES}
