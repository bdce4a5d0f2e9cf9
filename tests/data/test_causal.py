"""The causal domain: the oracle, near-miss pairs, subtypes and generator edge cases."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

import nsm.data
from nsm.data.base import generate_graphs, make_domain
from nsm.data.cache import load_dataset
from nsm.data.causal import (
    BENEFICIAL,
    DECREASES,
    HARD_NEGATIVE,
    HARD_POSITIVE,
    INCREASES,
    NOT_BENEFICIAL,
    STRENGTHS,
    SUBTYPE_LABEL,
    SUBTYPES,
    SYMPTOM,
    TREATMENT,
    VARIABLE,
    CausalDomain,
    draw_skeleton,
    effects,
    label_of,
    signed,
    subtype_of,
    total_effect,
)
from nsm.data.graphs import Graph, GraphSet

N = 200


@pytest.fixture(scope="module")
def graphs() -> list[Graph]:
    return generate_graphs(CausalDomain(), N, seed=3)


def brute_force_effect(g: Graph) -> float:
    """Sum over every directed treatment -> symptom path of the product of signed strengths."""
    t = g.node_kind.index(TREATMENT)
    s = g.node_kind.index(SYMPTOM)
    out: dict[int, list[tuple[int, float]]] = {}
    for a, b, r, w in g.edges:
        out.setdefault(a, []).append((b, signed(r, w)))

    def walk(v: int, prod: float, seen: frozenset[int]) -> float:
        if v == s:
            return prod
        return sum(walk(b, prod * w, seen | {b}) for b, w in out.get(v, []) if b not in seen)

    return walk(t, 1.0, frozenset({t}))


def edge_labels(g: Graph) -> Counter:
    return Counter((r, w) for _, _, r, w in g.edges)


def tiny(edges: list[tuple[int, int, int, float]], kinds: list[int] | None = None) -> Graph:
    n = 1 + max(max(a, b) for a, b, _, _ in edges)
    kinds = kinds if kinds is not None else [TREATMENT, SYMPTOM] + [VARIABLE] * (n - 2)
    return Graph(node_kind=kinds, x_num=[[] for _ in range(n)], edges=edges, y=0)


# -- registration and vocabulary ---------------------------------------------


def test_registered_with_its_vocabulary() -> None:
    assert nsm.data.DOMAIN_CLASSES["causal"] is CausalDomain
    spec = make_domain("causal").spec
    assert spec.node_kinds == ("treatment", "symptom", "variable")
    assert spec.relations == ("increases", "decreases")
    assert spec.self_loop_id == 2 and spec.num_relations == 3
    assert spec.subtypes == SUBTYPES
    assert {SUBTYPE_LABEL[k] for k in (BENEFICIAL, HARD_POSITIVE)} == {1}
    assert {SUBTYPE_LABEL[k] for k in (NOT_BENEFICIAL, HARD_NEGATIVE)} == {0}


def test_unknown_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown causal generation parameter"):
        make_domain("causal", mediators=3)


# -- the oracle ----------------------------------------------------------------


def test_oracle_agrees_with_every_label_and_subtype(graphs: list[Graph]) -> None:
    for g in graphs:
        assert label_of(g) == g.y
        assert subtype_of(g) == g.subtype
        assert SUBTYPE_LABEL[g.subtype] == g.y


def test_oracle_reads_the_stored_tensors(graphs: list[Graph]) -> None:
    gs = GraphSet.from_graphs(graphs, num_numeric=0)
    for i in range(len(gs)):
        data = gs.get(i)
        assert label_of(data) == int(gs.y[i])
        assert subtype_of(data) == int(gs.subtype[i])


def test_dp_equals_path_enumeration(graphs: list[Graph]) -> None:
    for g in graphs[:60]:
        assert total_effect(g) == brute_force_effect(g)  # exact: dyadic rationals


def test_no_graph_in_the_margin(graphs: list[Graph]) -> None:
    for g in graphs:
        te = total_effect(g)
        assert te <= -0.25 or te >= 0.0
        assert (te <= -0.25) == (g.y == 1)


def test_oracle_on_hand_built_graphs() -> None:
    T, S, M, C = 0, 1, 2, 3
    # direct harmful/beneficial edges
    assert label_of(tiny([(T, S, DECREASES, 0.5)])) == 1
    assert label_of(tiny([(T, S, INCREASES, 0.25)])) == 0
    # boundaries are inclusive: -0.25 is beneficial, 0 is not
    assert label_of(tiny([(T, M, INCREASES, 0.5), (M, S, DECREASES, 0.5)])) == 1
    cancel = tiny([(T, S, DECREASES, 0.25), (T, M, INCREASES, 0.5), (M, S, INCREASES, 0.5)])
    assert total_effect(cancel) == 0.0 and label_of(cancel) == 0
    # inside the margin: no label
    assert label_of(tiny([(T, M, DECREASES, 0.5), (M, S, INCREASES, 0.25)])) is None
    # no directed path at all: effect 0 (edges pointing into T or out of S do not count)
    assert total_effect(tiny([(S, T, DECREASES, 1.0)])) == 0.0
    assert total_effect(tiny([(M, T, DECREASES, 1.0), (M, S, DECREASES, 1.0)])) == 0.0


def test_backdoor_and_hard_subtypes_on_hand_built_graphs() -> None:
    T, S, C, Z = 0, 1, 2, 3
    # causal effect +0.25, but the confounder makes T and S look negatively associated
    g = tiny([(C, T, INCREASES, 1.0), (C, S, DECREASES, 1.0), (T, S, INCREASES, 0.25), (Z, T, INCREASES, 1.0)])
    e = effects(g)
    assert e == {"total_effect": 0.25, "backdoor": -1.0, "association": -0.75}
    assert label_of(g) == 0 and subtype_of(g) == HARD_NEGATIVE
    # the mirror image: beneficial, looks harmful
    g = tiny([(C, T, DECREASES, 1.0), (C, S, DECREASES, 1.0), (T, S, DECREASES, 0.5)])
    assert label_of(g) == 1 and subtype_of(g) == HARD_POSITIVE
    # a confounder's only route to S through T is no back-door path
    g = tiny([(C, T, INCREASES, 1.0), (T, S, DECREASES, 0.5)])
    assert effects(g)["backdoor"] == 0.0 and subtype_of(g) == BENEFICIAL


def test_oracle_rejects_malformed_graphs() -> None:
    with pytest.raises(ValueError, match="cycle"):
        label_of(tiny([(0, 2, INCREASES, 1.0), (2, 0, INCREASES, 1.0), (0, 1, INCREASES, 1.0)]))
    with pytest.raises(ValueError, match="treatment"):
        label_of(tiny([(0, 1, INCREASES, 1.0)], kinds=[VARIABLE, SYMPTOM]))
    with pytest.raises(ValueError, match="symptom"):
        label_of(tiny([(0, 1, INCREASES, 1.0)], kinds=[TREATMENT, VARIABLE]))


# -- near misses and content ---------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_negative_is_a_near_miss_of_its_positive(seed: int) -> None:
    dom = CausalDomain()
    pos = dom.sample(random.Random(seed), 1)
    neg = dom.sample(random.Random(seed), 0)
    assert (pos is None) == (neg is None)  # acceptance never depends on the label
    if pos is None or neg is None:
        return
    assert (pos.y, neg.y) == (1, 0)
    assert pos.node_kind == neg.node_kind  # same nodes, same (shuffled) ids
    assert edge_labels(pos) == edge_labels(neg)  # same (relation, strength) multiset
    # Same skeleton, every edge with the same relation (so every node keeps its signed
    # degrees): only strengths move, among edges of one relation.
    assert {(a, b): r for a, b, r, _ in pos.edges} == {(a, b): r for a, b, r, _ in neg.edges}
    assert pos.edges != neg.edges  # ... arranged differently


def test_content_is_well_formed(graphs: list[Graph]) -> None:
    for g in graphs:
        n = len(g.node_kind)
        assert g.node_kind.count(TREATMENT) == 1 and g.node_kind.count(SYMPTOM) == 1
        assert all(len(row) == 0 for row in g.x_num) and len(g.x_num) == n
        pairs = [(a, b) for a, b, _, _ in g.edges]
        assert len(set(pairs)) == len(pairs)  # no parallel edges
        assert all(a != b for a, b in pairs)  # no self loops in the data
        for _, _, r, w in g.edges:
            assert r in (INCREASES, DECREASES) and w in STRENGTHS and 0.0 <= w <= 1.0


def test_node_ids_are_shuffled(graphs: list[Graph]) -> None:
    positions = Counter(g.node_kind.index(TREATMENT) for g in graphs)
    assert len(positions) > 5
    assert max(positions.values()) < len(graphs) / 3


def test_deterministic() -> None:
    a = generate_graphs(CausalDomain(), 20, seed=11)
    b = generate_graphs(CausalDomain(), 20, seed=11)
    c = generate_graphs(CausalDomain(), 20, seed=12)
    assert [g.fingerprint() for g in a] == [g.fingerprint() for g in b]
    assert [g.fingerprint() for g in a] != [g.fingerprint() for g in c]


# -- subtypes -------------------------------------------------------------------


def test_every_subtype_is_covered(graphs: list[Graph]) -> None:
    counts = Counter(g.subtype for g in graphs)
    assert set(counts) == set(range(len(SUBTYPES)))
    # half of each class is hard: about a quarter of all samples are hard negatives
    for k in range(len(SUBTYPES)):
        assert 0.15 * N <= counts[k] <= 0.35 * N


def test_association_alone_is_near_chance(graphs: list[Graph]) -> None:
    agree = sum((effects(g)["association"] <= -0.25) == (g.y == 1) for g in graphs)
    assert 0.35 * N <= agree <= 0.65 * N
    for g in graphs:
        if g.subtype == HARD_NEGATIVE:
            assert effects(g)["association"] <= -0.25 and total_effect(g) >= 0.0


def test_hard_fractions_zero_and_one() -> None:
    easy = generate_graphs(CausalDomain(CausalDomain.Params(hard_positive_frac=0.0, hard_negative_frac=0.0)), 40, seed=5)
    assert {g.subtype for g in easy} == {BENEFICIAL, NOT_BENEFICIAL}
    hard = generate_graphs(CausalDomain(CausalDomain.Params(hard_positive_frac=1.0, hard_negative_frac=1.0)), 40, seed=5)
    assert {g.subtype for g in hard} == {HARD_POSITIVE, HARD_NEGATIVE}
    for g in easy + hard:
        assert label_of(g) == g.y and subtype_of(g) == g.subtype


def test_wider_margin_is_respected() -> None:
    dom = CausalDomain(CausalDomain.Params(margin=0.5))
    for g in generate_graphs(dom, 30, seed=2):
        te = total_effect(g)
        assert te <= -0.5 or te >= 0.0
        assert label_of(g, margin=0.5) == g.y


# -- the skeleton's roles ----------------------------------------------------------


def _reach(edges: list[tuple[int, int]], start: int, blocked: int | None = None) -> set[int]:
    out: dict[int, list[int]] = {}
    for a, b in edges:
        out.setdefault(a, []).append(b)
    seen, stack = {start}, [start]
    while stack:
        for b in out.get(stack.pop(), []):
            if b not in seen and b != blocked:
                seen.add(b)
                stack.append(b)
    return seen


def _longest(edges: list[tuple[int, int]], a: int, b: int) -> int:
    out: dict[int, list[int]] = {}
    for x, y in edges:
        out.setdefault(x, []).append(y)

    def go(v: int) -> int:
        if v == b:
            return 0
        best = [1 + go(w) for w in out.get(v, []) if b in _reach(edges, w)]
        return max(best) if best else -(10**9)

    return go(a)


@pytest.mark.parametrize("seed", range(25))
def test_skeleton_roles(seed: int) -> None:
    p = CausalDomain.Params()
    sk = draw_skeleton(random.Random(seed), p)
    T, S = 0, 1
    e = sk.edges
    role = sk.roles
    parents = {v: {a for a, b in e if b == v} for v in range(len(role))}
    assert S in _reach(e, T)
    assert _longest(e, T, S) <= 3
    for v, r in enumerate(role):
        if r in ("M1", "M2"):  # mediators lie on a directed T -> S path
            assert v in _reach(e, T) and S in _reach(e, v)
        if r == "C":  # confounders cause T and reach S without T
            assert (v, T) in e and S in _reach(e, v, blocked=T)
            assert not parents[v]
        if r == "Z":  # instruments reach S only through T
            assert (v, T) in e and S not in _reach(e, v, blocked=T)
        if r == "O":  # other causes: not connected to T's ancestors, reach S
            assert S in _reach(e, v) and T not in _reach(e, v)
        if r in ("D", "X"):  # descendants and side effects never reach S
            assert S not in _reach(e, v)
    assert p.min_confounders <= role.count("C") <= p.max_confounders
    assert p.min_mediators <= role.count("M1") + role.count("M2") <= p.max_mediators
    assert parents[T] == {v for v, r in enumerate(role) if r in ("C", "Z")}


# -- the dataset ------------------------------------------------------------------


def test_generation_is_fast() -> None:
    t0 = time.perf_counter()
    generate_graphs(CausalDomain(), 200, seed=9)
    assert time.perf_counter() - t0 < 3.0  # 2000 graphs take ~1-2 s


def test_signs_are_content_drawn_before_the_strengths_are_arranged() -> None:
    """A content is kept only if T reaches S along paths of both signs and the back door
    has both signs too (else one hard kind could not exist), whatever the label."""
    dom = CausalDomain()
    for seed in range(30):
        g = dom.sample(random.Random(seed), seed % 2)
        if g is None:
            continue
        t, s = g.node_kind.index(TREATMENT), g.node_kind.index(SYMPTOM)
        signs = {e: -1 if r == DECREASES else 1 for e, (_, _, r, _) in enumerate(g.edges)}
        out: dict[int, list[tuple[int, int]]] = {}
        for e, (a, b, _, _) in enumerate(g.edges):
            out.setdefault(a, []).append((e, b))

        def path_signs(v: int, blocked: int) -> set[int]:
            if v == s:
                return {1}
            return {signs[e] * x for e, b in out.get(v, []) if b != blocked for x in path_signs(b, blocked)}

        assert path_signs(t, -1) == {1, -1}
        back = {signs[e] * x for e, (a, b, _, _) in enumerate(g.edges) if b == t for x in path_signs(a, t)}
        assert back == {1, -1}


def test_dataset_splits_and_stats(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = load_dataset("causal", num_graphs=N, seed=1, cache_dir=tmp_path, use_cache=False)
    assert len(ds.train) + len(ds.val) + len(ds.test) == N
    assert set(ds.stats["subtypes"]) == set(SUBTYPES)
    assert ds.stats["relations"]["self_loop"] == 0
    for name in ("train", "val", "test"):
        gs = ds.split(name)
        assert abs(int(gs.y.sum()) * 2 - len(gs)) <= 1
        for i in range(0, len(gs), 7):
            assert label_of(gs.get(i)) == int(gs.y[i])
