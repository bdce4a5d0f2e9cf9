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
    DERIVED,
    K,
    NODE_KINDS,
    R,
    RELATIONS,
    SOFT_RELATIONS,
    SUBTYPES,
    KGDomain,
    derive,
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


def _query(g: Graph) -> str:
    return "nationality" if g.node_kind[_head(g)] == K["head_nationality"] else "works_in_country"


def _candidate(g: Graph) -> int:
    return g.node_kind.index(K["candidate"])


def _line(g: Graph, person: int) -> list[int]:
    fathers = {s: d for s, d, r, _ in g.edges if r == R["father"]}
    line = [person]
    while line[-1] in fathers:
        line.append(fathers[line[-1]])
    return line


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
    assert spec.self_loop_id == len(RELATIONS)
    assert spec.num_relations == len(RELATIONS) + 1
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


class Toy:
    """A hand-built world: the head born in district dA (country X), living in dB (country
    Y), working for a firm headquartered in Y's city; countries X, Y, Z."""

    KINDS = {
        "head": "person", "dA": "district", "dB": "district", "dC": "district",
        "cA": "city", "cB": "city", "cC": "city", "gA": "region", "gB": "region", "gC": "region",
        "X": "country", "Y": "country", "Z": "country", "firm": "company",
    }
    EDGES = [
        ("head", "dA", "born_in"), ("head", "dB", "lives_in"), ("head", "firm", "works_for"),
        ("dA", "cA", "district_in"), ("dB", "cB", "district_in"), ("dC", "cC", "district_in"),
        ("cA", "gA", "city_in"), ("cB", "gB", "city_in"), ("cC", "gC", "city_in"), ("firm", "cB", "headquartered_in"),
        ("gA", "X", "region_in"), ("gB", "Y", "region_in"), ("gC", "Z", "region_in"),
    ]

    def __init__(self) -> None:
        self.kinds = dict(self.KINDS)
        self.edges = list(self.EDGES)

    def person(self, name: str, **facts: str) -> "Toy":
        self.kinds[name] = "person"
        for rel, target in facts.items():
            self.edges.append((name, target, rel))
        return self

    def fact(self, src: str, rel: str, dst: str) -> "Toy":
        self.edges.append((src, dst, rel))
        return self

    def query(self, query: str, candidate: str) -> Graph:
        names = list(self.kinds)
        kind = {**self.kinds, "head": "head_" + query, candidate: "candidate"}
        ids = {n: i for i, n in enumerate(names)}
        return Graph(
            node_kind=[K[kind[n]] for n in names],
            x_num=[[] for _ in names],
            edges=[(ids[s], ids[d], R[r], 1.0) for s, d, r in self.edges],
            y=0,
        )

    def id(self, name: str) -> int:
        return list(self.kinds).index(name)


def test_oracle_on_hand_built_worlds() -> None:
    toy = Toy()
    # no father known: nationality is the birth country, not the home country
    assert label_of(toy.query("nationality", "X")) == 1
    assert label_of(toy.query("nationality", "Y")) == 0
    assert subtype_of(toy.query("nationality", "Y")) == "hard_negative"
    # works_in_country follows works_for ∘ headquartered_in ∘ city_in ∘ region_in
    assert label_of(toy.query("works_in_country", "Y")) == 1
    assert subtype_of(toy.query("works_in_country", "X")) == "hard_negative"  # the birth country
    # an unreachable country is an easy negative
    assert subtype_of(toy.query("nationality", "Z")) == "easy_negative"
    # a direct derived edge does not count: the rule must be re-derived from base facts
    g = Toy().fact("head", "nationality", "Z").query("nationality", "Z")
    assert label_of(g) == 0 and subtype_of(g) == "hard_negative"
    # a broken chain (no region_in) derives nothing
    g = toy.query("nationality", "X")
    g.edges = [e for e in g.edges if e[2] != R["region_in"]]
    assert label_of(g) == 0 and rule_tails(g) == set()


def test_nationality_passes_down_the_paternal_line() -> None:
    # the father was born in Z: the head is a Z national, its own birth country X is a hard negative
    toy = Toy().person("dad", born_in="dC").fact("head", "father", "dad")
    assert rule_tails(toy.query("nationality", "Z")) == {toy.id("Z")}
    assert label_of(toy.query("nationality", "Z")) == 1
    assert subtype_of(toy.query("nationality", "X")) == "hard_negative"
    # two generations up: the grandfather's birth country decides
    toy = Toy().person("dad", born_in="dC").person("grandpa", born_in="dB")
    toy.fact("head", "father", "dad").fact("dad", "father", "grandpa")
    assert rule_tails(toy.query("nationality", "Y")) == {toy.id("Y")}
    assert subtype_of(toy.query("nationality", "Z")) == "hard_negative"  # the father's birth country
    # the mother's line is the same shape through the wrong relation
    toy = Toy().person("mum", born_in="dC").fact("head", "mother", "mum")
    assert label_of(toy.query("nationality", "Z")) == 0 and subtype_of(toy.query("nationality", "Z")) == "hard_negative"
    # another person's father changes nothing for the head
    toy = Toy().person("other", born_in="dB").person("their_dad", born_in="dC").fact("other", "father", "their_dad")
    assert rule_tails(toy.query("nationality", "X")) == {toy.id("X")}
    assert derive(toy.query("nationality", "X"), toy.id("other"), "nationality") == {toy.id("Z")}
    # works_in_country ignores the line
    toy = Toy().person("dad", born_in="dC").fact("head", "father", "dad")
    assert rule_tails(toy.query("works_in_country", "Y")) == {toy.id("Y")}
    # a cycle of father edges ends the line instead of looping
    toy = Toy().person("dad", born_in="dC").fact("head", "father", "dad").fact("dad", "father", "head")
    assert rule_tails(toy.query("nationality", "Z")) == {toy.id("Z")}


def test_oracle_rejects_malformed_graphs() -> None:
    g = Toy().query("nationality", "X")
    g.node_kind[0] = K["person"]
    with pytest.raises(ValueError):
        label_of(g)
    g = Toy().query("nationality", "X")
    g.node_kind[g.node_kind.index(K["candidate"])] = K["country"]
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
        assert abs(sum(pos) / len(pos) - sum(neg) / len(neg)) < 3.0
        assert abs(pos[len(pos) // 2] - neg[len(neg) // 2]) <= 3


# -- the construction of a query --------------------------------------------------------
def test_query_structure(graphs: list[Graph]) -> None:
    hops = KGDomain.Params().hops
    for g in graphs:
        kinds = g.node_kind
        assert sum(k in HEAD_KINDS for k in kinds) == 1
        assert kinds.count(K["candidate"]) == 1
        h, c = _head(g), _candidate(g)
        query = _query(g)
        # every edge of the queried relation out of the head is removed
        assert not any(s == h and r == R[query] for s, _, r, _ in g.edges)
        # the subgraph is the ball of radius `hops` around the head, connected
        dist = _distances(g, h)
        assert len(dist) == len(kinds) and max(dist.values()) <= hops
        # the rule derives exactly one tail, a country
        (t,) = rule_tails(g)
        assert kinds[t] in (K["country"], K["candidate"])
        # the candidate is type-consistent: a country (only country-typed edges touch it)
        for s, d, r, _ in g.edges:
            assert s != c
            if d == c:
                assert r in (R["region_in"], *DERIVED)
        if g.y == 0:
            assert (c in wrong_relation_tails(g)) == (SUBTYPES[g.subtype] == "hard_negative")


def test_paternal_lines_of_every_depth(graphs: list[Graph]) -> None:
    most = KGDomain.Params().max_ancestors
    depths = collections.Counter(len(_line(g, _head(g))) - 1 for g in graphs if _query(g) == "nationality")
    assert set(depths) == set(range(most + 1))
    # other persons have lines too: being the end of a line does not mark the head's
    def line_ends(g: Graph) -> int:
        sons = {s for s, _, r, _ in g.edges if r == R["father"]}
        return len({d for _, d, r, _ in g.edges if r == R["father"]} - sons)

    assert sum(line_ends(g) >= 2 for g in graphs) > len(graphs) / 2


def test_the_own_birth_country_misleads_once_a_father_is_known(graphs: list[Graph]) -> None:
    seen = 0
    for g in graphs:
        h = _head(g)
        if _query(g) != "nationality" or len(_line(g, h)) == 1:
            continue
        own = derive(Graph(g.node_kind, g.x_num, [e for e in g.edges if e[2] != R["father"]], g.y), h, "nationality")
        if own != rule_tails(g):
            assert own <= wrong_relation_tails(g)
            seen += 1
    assert seen > 10


def test_edge_confidences(graphs: list[Graph]) -> None:
    for g in graphs:
        for _, _, r, w in g.edges:
            assert 0.0 <= w <= 1.0
            if r not in SOFT_RELATIONS:
                assert w == 1.0
    soft = {w for g in graphs for _, _, r, w in g.edges if r in SOFT_RELATIONS}
    assert len(soft) > 1  # decorative, but not constant


def test_graph_sizes_stay_moderate(graphs: list[Graph]) -> None:
    nodes = [len(g.node_kind) for g in graphs]
    assert max(nodes) <= KGDomain.Params().max_nodes
    assert 20 <= sum(nodes) / len(nodes) <= KGDomain.Params().max_nodes


def test_incomplete_kg_stores_derived_facts_of_living_persons_only(graphs: list[Graph]) -> None:
    derived = collections.Counter(r for g in graphs for _, _, r, _ in g.edges if r in DERIVED)
    assert derived[R["nationality"]] > 0 and derived[R["works_in_country"]] > 0
    for g in graphs[:60]:
        relatives = {d for _, d, r, _ in g.edges if r in (R["father"], R["mother"])}
        for s, d, r, _ in g.edges:
            if r not in DERIVED:
                continue
            assert s not in relatives  # an ancestor's nationality would shortcut the line
            # each stored fact is what the rule derives for its person
            assert derive(g, s, RELATIONS[r]) == {d}


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


def test_without_ancestors_nationality_is_the_birth_country() -> None:
    gs = generate_graphs(make_domain("kg", max_ancestors=0), 40, seed=2)
    assert not any(r == R["father"] for g in gs for _, _, r, _ in g.edges)
    assert all(label_of(g) == g.y and subtype_of(g) == SUBTYPES[g.subtype] for g in gs)


def test_a_ball_smaller_than_the_longest_rule_keeps_labels_exact() -> None:
    # With 5 hops a line of 2+ fathers reaches its country only through a shortcut of
    # the ball; worlds whose rule path leaves it are redrawn, so every label still holds.
    gs = generate_graphs(make_domain("kg", hops=5), 40, seed=4)
    assert any(_query(g) == "nationality" for g in gs)
    for g in gs:
        assert label_of(g) == g.y and subtype_of(g) == SUBTYPES[g.subtype]


def test_varied_geography_still_generates() -> None:
    gs = generate_graphs(make_domain("kg", uniform_geography=False, max_regions_per_country=2), 30, seed=6)
    assert all(label_of(g) == g.y and subtype_of(g) == SUBTYPES[g.subtype] for g in gs)


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
