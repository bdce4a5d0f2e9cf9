"""The kg domain: link prediction as subgraph classification (oracle, near misses, edge cases)."""

from __future__ import annotations

import collections
import random

import pytest
import torch

from nsm.baselines import blind_features
from nsm.data import DOMAIN_CLASSES, load_dataset, make_domain
from nsm.data.base import generate_graphs
from nsm.data.graphs import Graph, GraphSet
from nsm.data.kg import (
    K,
    NODE_KINDS,
    R,
    RELATIONS,
    RULES,
    SOFT_RELATIONS,
    SUBTYPES,
    KGDomain,
    label_of,
    rule_tails,
    subtype_of,
    wrong_relation_tails,
)

HEAD_KINDS = (K["head_nationality"], K["head_works_in_country"])


@pytest.fixture(scope="module")
def graphs() -> list[Graph]:
    return generate_graphs(make_domain("kg"), 200, seed=7)


def _head(g: Graph) -> int:
    (h,) = [i for i, k in enumerate(g.node_kind) if k in HEAD_KINDS]
    return h


def _candidate(g: Graph) -> int:
    return g.node_kind.index(K["candidate"])


def _distances(g: Graph, src: int) -> dict[int, int]:
    adj = collections.defaultdict(list)
    for s, d, _, _ in g.edges:
        adj[s].append(d)
        adj[d].append(s)
    dist = {src: 0}
    queue = [src]
    for u in queue:
        for v in adj[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


# -- vocabulary ----------------------------------------------------------------
def test_registered_with_its_vocabulary() -> None:
    assert DOMAIN_CLASSES["kg"] is KGDomain
    spec = KGDomain.spec
    assert spec.relations == RELATIONS and spec.node_kinds == NODE_KINDS and spec.subtypes == SUBTYPES
    assert spec.self_loop_id == len(RELATIONS) == 11
    assert spec.num_relations == 12
    assert not any("inverse" in r or "self" in r for r in spec.relations)


# -- the oracle ------------------------------------------------------------------
def test_oracle_agrees_with_every_label(graphs: list[Graph]) -> None:
    assert [label_of(g) for g in graphs] == [g.y for g in graphs]
    assert [subtype_of(g) for g in graphs] == [SUBTYPES[g.subtype] for g in graphs]


def test_oracle_agrees_on_the_stored_tensors(graphs: list[Graph]) -> None:
    gs = GraphSet.from_graphs(graphs, 0)
    for i in range(len(gs)):
        data = gs.get(i)
        assert label_of(data) == int(gs.y[i])
        assert subtype_of(data) == SUBTYPES[int(gs.subtype[i])]


def _toy(query: str, candidate_is: str) -> Graph:
    """Head born in A (country X) with a lives_in city B in country Y and a job in Y."""
    names = ["head", "cityA", "cityB", "regA", "regB", "X", "Y", "firm"]
    kind = {"head": "head_" + query, "cityA": "city", "cityB": "city", "regA": "region", "regB": "region",
            "X": "country", "Y": "country", "firm": "company"}
    kind[candidate_is] = "candidate"
    ids = {n: i for i, n in enumerate(names)}
    e = [
        ("head", "cityA", "born_in"), ("head", "cityB", "lives_in"), ("head", "firm", "works_for"),
        ("cityA", "regA", "city_in"), ("cityB", "regB", "city_in"), ("firm", "regB", "headquartered_in"),
        ("regA", "X", "region_in"), ("regB", "Y", "region_in"),
    ]
    return Graph(
        node_kind=[K[kind[n]] for n in names],
        x_num=[[] for _ in names],
        edges=[(ids[s], ids[d], R[r], 1.0) for s, d, r in e],
        y=0,
    )


def test_oracle_on_hand_built_worlds() -> None:
    # nationality follows born_in, not lives_in
    assert label_of(_toy("nationality", "X")) == 1
    assert label_of(_toy("nationality", "Y")) == 0
    assert subtype_of(_toy("nationality", "Y")) == "hard_negative"
    # works_in_country follows works_for ∘ headquartered_in ∘ region_in
    assert label_of(_toy("works_in_country", "Y")) == 1
    assert label_of(_toy("works_in_country", "X")) == 0
    assert subtype_of(_toy("works_in_country", "X")) == "hard_negative"  # the born_in country
    # a direct derived edge does not count: the rule must be re-derived from base facts
    g = _toy("nationality", "Y")
    g.edges.append((0, 6, R["nationality"], 1.0))
    assert label_of(g) == 0
    # a broken chain (no region_in) derives nothing
    g = _toy("nationality", "X")
    g.edges = [e for e in g.edges if e[2] != R["region_in"]]
    assert label_of(g) == 0 and rule_tails(g) == set()
    # an unreachable country is an easy negative
    g = _toy("nationality", "X")
    g.node_kind[5] = K["country"]
    g.node_kind.append(K["candidate"])
    assert label_of(g) == 0 and subtype_of(g) == "easy_negative"


def test_oracle_rejects_malformed_graphs() -> None:
    g = _toy("nationality", "X")
    g.node_kind[0] = K["person"]
    with pytest.raises(ValueError):
        label_of(g)
    g = _toy("nationality", "X")
    g.node_kind[5] = K["country"]
    with pytest.raises(ValueError):
        label_of(g)


# -- near misses: one content, two arrangements -------------------------------------
def test_each_negative_is_a_near_miss_of_its_positive() -> None:
    dom = make_domain("kg")
    checked = 0
    for seed in range(120):
        pos = dom.sample(random.Random(seed), 1)
        neg = dom.sample(random.Random(seed), 0)
        assert (pos is None) == (neg is None)  # feasibility never depends on the label
        if pos is None:
            continue
        assert (pos.y, neg.y) == (1, 0)
        assert sorted(pos.node_kind) == sorted(neg.node_kind)
        assert sorted((r, w) for _, _, r, w in pos.edges) == sorted((r, w) for _, _, r, w in neg.edges)
        # stronger: the very same graph, only the candidate mark moved between two countries
        assert pos.edges == neg.edges
        diff = [i for i, (a, b) in enumerate(zip(pos.node_kind, neg.node_kind)) if a != b]
        assert len(diff) == 2
        assert {pos.node_kind[i] for i in diff} == {neg.node_kind[i] for i in diff} == {K["candidate"], K["country"]}
        pair = GraphSet.from_graphs([pos, neg], 0)
        feats = blind_features(pair, dom.spec)
        assert torch.equal(feats[0], feats[1])
        checked += 1
    assert checked >= 100


def test_size_distributions_match_by_class(graphs: list[Graph]) -> None:
    for measure in (lambda g: len(g.node_kind), lambda g: len(g.edges)):
        pos = sorted(measure(g) for g in graphs if g.y == 1)
        neg = sorted(measure(g) for g in graphs if g.y == 0)
        assert abs(sum(pos) / len(pos) - sum(neg) / len(neg)) < 2.0
        assert abs(pos[len(pos) // 2] - neg[len(neg) // 2]) <= 2


# -- the construction of a query --------------------------------------------------------
def test_query_structure(graphs: list[Graph]) -> None:
    for g in graphs:
        kinds = g.node_kind
        assert sum(k in HEAD_KINDS for k in kinds) == 1
        assert kinds.count(K["candidate"]) == 1
        h, c = _head(g), _candidate(g)
        query = "nationality" if kinds[h] == K["head_nationality"] else "works_in_country"
        # every edge of the queried relation out of the head is removed
        assert not any(s == h and r == R[query] for s, _, r, _ in g.edges)
        # the subgraph is the ball of radius 3 around the head, connected
        dist = _distances(g, h)
        assert len(dist) == len(kinds) and max(dist.values()) <= 3
        # the rule derives exactly one tail, a country inside the ball (a 3-hop path leads there)
        (t,) = rule_tails(g)
        assert kinds[t] in (K["country"], K["candidate"]) and dist[t] <= 3
        # the candidate is type-consistent: a country (only country-typed edges touch it)
        for s, d, r, _ in g.edges:
            assert s != c
            if d == c:
                assert r in (R["region_in"], R["nationality"], R["works_in_country"])
        if g.y == 0:
            assert (c in wrong_relation_tails(g)) == (SUBTYPES[g.subtype] == "hard_negative")


def test_edge_confidences(graphs: list[Graph]) -> None:
    for g in graphs:
        for _, _, r, w in g.edges:
            assert 0.0 <= w <= 1.0
            if r not in SOFT_RELATIONS:
                assert w == 1.0
    soft = {w for g in graphs for _, _, r, w in g.edges if r in SOFT_RELATIONS}
    assert len(soft) > 1  # decorative, but not constant


def test_graph_sizes_stay_small(graphs: list[Graph]) -> None:
    nodes = [len(g.node_kind) for g in graphs]
    edges = [len(g.edges) for g in graphs]
    assert max(nodes) <= KGDomain.Params().max_nodes
    assert 15 <= sum(nodes) / len(nodes) <= 35
    assert 30 <= sum(edges) / len(edges) <= 80


def test_incomplete_kg_has_some_derived_facts(graphs: list[Graph]) -> None:
    derived = collections.Counter(r for g in graphs for _, _, r, _ in g.edges if r in (R["nationality"], R["works_in_country"]))
    assert derived[R["nationality"]] > 0 and derived[R["works_in_country"]] > 0
    # the rules are consistent with every stored derived fact of the other persons
    for g in graphs[:50]:
        for s, d, r, _ in g.edges:
            if r not in (R["nationality"], R["works_in_country"]):
                continue
            first, *rest = RULES["nationality" if r == R["nationality"] else "works_in_country"]
            ends = {dd for ss, dd, rr, _ in g.edges if ss == s and rr == first}
            for rel in rest:
                ends = {dd for ss, dd, rr, _ in g.edges if ss in ends and rr == rel}
            if ends:  # the chain may leave the 3-hop ball; when it is inside it must agree
                assert ends == {d}


# -- coverage, knobs, determinism ------------------------------------------------------------
def test_every_subtype_and_both_queries_occur(graphs: list[Graph]) -> None:
    counts = collections.Counter(SUBTYPES[g.subtype] for g in graphs)
    assert set(counts) == set(SUBTYPES)
    negatives = counts["hard_negative"] + counts["easy_negative"]
    assert counts["hard_negative"] > counts["easy_negative"] >= 0.1 * negatives  # mostly hard


@pytest.mark.parametrize("prob, only", [(1.0, "hard_negative"), (0.0, "easy_negative")])
def test_hard_negative_prob_knob(prob: float, only: str) -> None:
    gs = generate_graphs(make_domain("kg", hard_negative_prob=prob), 40, seed=3)
    assert {SUBTYPES[g.subtype] for g in gs if g.y == 0} == {only}
    assert all(label_of(g) == g.y for g in gs)


def test_small_worlds_still_generate() -> None:
    dom = make_domain("kg", min_countries=2, max_countries=2, min_persons=2, max_persons=2, max_friends=1)
    gs = generate_graphs(dom, 30, seed=1)
    assert all(label_of(g) == g.y for g in gs)
    assert all(g.node_kind.count(K["country"]) == 1 for g in gs)  # the other country is the candidate


def test_deterministic() -> None:
    a = generate_graphs(make_domain("kg"), 20, seed=11)
    b = generate_graphs(make_domain("kg"), 20, seed=11)
    c = generate_graphs(make_domain("kg"), 20, seed=12)
    assert [g.fingerprint() for g in a] == [g.fingerprint() for g in b]
    assert [g.fingerprint() for g in a] != [g.fingerprint() for g in c]


def test_node_ids_are_shuffled(graphs: list[Graph]) -> None:
    heads = collections.Counter(_head(g) for g in graphs)
    assert len(heads) > 5


def test_params_unknown_and_cache_key() -> None:
    with pytest.raises(ValueError, match="unknown kg generation parameter"):
        make_domain("kg", persons=3)
    from nsm.data.base import params_key

    assert params_key(make_domain("kg"), 10, 0) != params_key(make_domain("kg", hops=2), 10, 0)


def test_load_dataset_small(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = load_dataset("kg", num_graphs=200, seed=5, cache_dir=tmp_path, use_cache=False)
    assert ds.stats["subtypes"]["true_nationality"] + ds.stats["subtypes"]["true_works_in_country"] == 100
    for split in ("train", "val", "test"):
        gs = ds.split(split)
        assert int(gs.y.sum()) * 2 == len(gs)
        for i in range(len(gs)):
            assert label_of(gs.get(i)) == int(gs.y[i])
