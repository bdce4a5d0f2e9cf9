"""The shallow probes find a leak planted in a tiny dataset, and stay near chance without one."""

from __future__ import annotations

import random

from nsm.data.base import SPLITS, DomainDataset, DomainSpec, stratified_split
from nsm.data.graphs import Graph, GraphSet
from nsm.baselines import compute_baselines, leaks

SPEC = DomainSpec(name="toy", node_kinds=("a", "b"), relations=("r",), subtypes=("valid", "leaky", "clean"))


def _path(rng: random.Random, n: int) -> list[tuple[int, int, int, float]]:
    order = list(range(n))
    rng.shuffle(order)
    return [(order[i], order[i + 1], 0, 1.0) for i in range(n - 1)]


def _isolated(rng: random.Random, n: int) -> list[tuple[int, int, int, float]]:
    """As many edges as a path on n nodes, but on a cycle of n-1 nodes: one node left isolated."""
    order = list(range(n))
    rng.shuffle(order)
    ring = order[:-1]
    return [(ring[i], ring[(i + 1) % len(ring)], 0, 1.0) for i in range(len(ring))]


def _dataset(make, count: int = 400, seed: int = 0) -> DomainDataset:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    graphs = [make(rng, i % 2, i) for i in range(count)]
    parts = stratified_split([g.y for g in graphs], seed)
    sets = {s: GraphSet.from_graphs([graphs[i] for i in parts[s]], 0) for s in SPLITS}
    return DomainDataset(spec=SPEC, num_graphs=count, seed=seed, params={}, **sets)


def _isolated_leak(rng: random.Random, y: int, i: int) -> Graph:
    # Half the negatives leave a node isolated; node and edge counts never differ.
    n = 7
    kinds = [0] * 4 + [1] * 3
    rng.shuffle(kinds)
    if y == 1:
        return Graph(kinds, [[] for _ in kinds], _path(rng, n), 1, 0)
    leaky = (i // 2) % 2 == 0
    return Graph(kinds, [[] for _ in kinds], _isolated(rng, n) if leaky else _path(rng, n), 0, 1 if leaky else 2)


def _no_leak(rng: random.Random, y: int, i: int) -> Graph:
    kinds = [0] * 4 + [1] * 3
    rng.shuffle(kinds)
    return Graph(kinds, [[] for _ in kinds], _path(rng, 7), y, 0 if y else 1 + (i // 2) % 2)


def _wl_leak(rng: random.Random, y: int, i: int) -> Graph:
    # Same degrees per kind in both classes (every node: one in, one out); only who points at whom differs.
    kinds = [0, 0, 1, 1]
    edges = [(0, 2, 0, 1.0), (3, 1, 0, 1.0)] if y else [(0, 1, 0, 1.0), (2, 3, 0, 1.0)]
    perm = list(range(4))
    rng.shuffle(perm)
    inv = {p: j for j, p in enumerate(perm)}
    pk = [kinds[p] for p in perm]
    extra = [(rng.randrange(4), rng.randrange(4), 0, 1.0)]  # noise so graphs differ
    return Graph(pk, [[] for _ in pk], [(inv[s], inv[d], r, w) for s, d, r, w in edges] + extra, y, 0 if y else 1)


def test_degree_probe_finds_an_isolated_node_the_counts_cannot_see() -> None:
    b = compute_baselines(_dataset(_isolated_leak))
    assert b["blind_logreg"]["test_acc"] < 0.65 and b["blind_mlp"]["test_acc"] < 0.65
    # Clean negatives look like positives, so overall tops out near 0.75; the leaky subtype is found outright.
    assert b["degree_blind"]["test_acc"] > 0.6
    per = b["degree_blind"]["per_subtype"]
    assert per["leaky"] > 0.9 and per["clean"] < 0.65
    assert b["degree_blind"]["worst_subtype"] == {"name": "leaky", "acc": per["leaky"]}
    assert leaks(b) == ["degree_blind"]


def test_no_planted_leak_leaves_every_probe_near_chance() -> None:
    b = compute_baselines(_dataset(_no_leak))
    for key in ("blind_logreg", "blind_mlp", "degree_blind", "wl"):
        assert b[key]["test_acc"] < 0.65, (key, b[key])
        assert b[key]["worst_subtype"]["acc"] < 0.7, (key, b[key])
    assert b["majority"]["test_acc"] == 0.5


def test_wl_probe_sees_who_points_at_whom_where_degrees_cannot() -> None:
    b = compute_baselines(_dataset(_wl_leak))
    assert b["degree_blind"]["test_acc"] < 0.7
    assert b["wl"]["test_acc"] > 0.9
    assert b["wl"]["shallow"] is False and leaks(b) == []  # 1-WL is information, never a leak verdict


def test_duplicate_edges_are_counted() -> None:
    from nsm.probes import degree_features

    g1 = Graph([0, 0, 1], [[], [], []], [(0, 1, 0, 1.0), (0, 1, 0, 1.0), (1, 2, 0, 1.0)], 1)
    g2 = Graph([0, 0, 1], [[], [], []], [(0, 1, 0, 1.0), (0, 2, 0, 1.0), (1, 2, 0, 1.0)], 0)
    f = degree_features(GraphSet.from_graphs([g1, g2], 0), SPEC)
    # Last columns: duplicates of relation r, of the self-loop id, and of the same pair under any relation.
    assert f[:, -3].tolist() == [1.0, 0.0] and f[:, -1].tolist() == [1.0, 0.0]
