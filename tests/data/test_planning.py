"""The planning domain: oracle, near-miss negatives, subtypes, generator edge cases."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from nsm.data import DOMAIN_CLASSES, GraphSet, make_domain
from nsm.data.base import generate_graphs, sample_seed
from nsm.data.graphs import Graph
from nsm.data.planning import (
    CORRUPTIONS,
    NODE_KINDS,
    RELATIONS,
    STEP_KINDS,
    SUBTYPES,
    K,
    Planning,
    R,
    label_of,
    step_order,
    violations,
)

STRUCTURAL = ("next", "requires", "decomposes_to", "achieves", "needs_capability", "has_capability")


@pytest.fixture(scope="module")
def graphs() -> list[Graph]:
    return generate_graphs(make_domain("planning"), 240, seed=7)


def pair(domain: Planning, seed: int) -> tuple[Graph, Graph]:
    """The negative and positive arrangement drawn from the same content (same rng seed)."""
    neg = domain.sample(random.Random(seed), 0)
    pos = domain.sample(random.Random(seed), 1)
    assert neg is not None and pos is not None
    return neg, pos


# -- vocabulary ----------------------------------------------------------------
def test_registered_with_its_vocabulary() -> None:
    assert DOMAIN_CLASSES["planning"] is Planning
    spec = Planning.spec
    assert spec.relations == RELATIONS
    assert "self_loop" not in spec.relations and spec.self_loop_id == len(RELATIONS)
    assert spec.numeric == ("position",)
    assert spec.subtypes == ("valid", "order_violation", "missing_capability", "unachieved_leaf")
    assert len(set(spec.node_kinds)) == len(spec.node_kinds) >= 12
    assert {"robot", "other_robot", "dropped_step"} <= set(spec.node_kinds)
    assert K["dropped_step"] not in STEP_KINDS and K["other_robot"] != K["robot"]


# -- the oracle ----------------------------------------------------------------
def test_oracle_agrees_with_every_label(graphs: list[Graph]) -> None:
    assert all(label_of(g) == g.y for g in graphs)


def test_oracle_on_stored_tensors_agrees(graphs: list[Graph]) -> None:
    gs = GraphSet.from_graphs(graphs, num_numeric=1)
    for i in range(len(gs)):
        assert label_of(gs.get(i)) == int(gs.y[i])


def test_each_negative_breaks_exactly_its_subtype_rule(graphs: list[Graph]) -> None:
    for g in graphs:
        if g.y == 1:
            assert g.subtype == 0 and violations(g) == set()
        else:
            assert g.subtype > 0 and violations(g) == {SUBTYPES[g.subtype]}


def _tiny_plan() -> Graph:
    """A hand-built valid plan: 5 steps, goal -> 5 -> 6 (leaf), goal -> 7 (leaf); another robot (11)
    holding capability 9; a dropped step (12) that would have achieved leaf 6."""
    kinds = [K["robot"], K["step_pick"], K["step_place"], K["step_navigate"], K["goal"], K["subgoal"],
             K["subgoal"], K["subgoal"], K["capability"], K["capability"], K["location"], K["other_robot"],
             K["dropped_step"], K["step_inspect"], K["step_pick"]]
    pos = [0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 5]
    edges = [
        (1, 2, R["next"], 1.0), (2, 3, R["next"], 1.0), (3, 13, R["next"], 1.0), (13, 14, R["next"], 1.0),
        (2, 1, R["requires"], 1.0), (3, 1, R["requires"], 1.0), (13, 2, R["requires"], 1.0),
        (4, 5, R["decomposes_to"], 1.0), (5, 6, R["decomposes_to"], 1.0), (4, 7, R["decomposes_to"], 1.0),
        (2, 6, R["achieves"], 1.0), (3, 7, R["achieves"], 1.0), (12, 6, R["achieves"], 1.0),
        (2, 8, R["needs_capability"], 1.0), (0, 8, R["has_capability"], 1.0), (11, 9, R["has_capability"], 1.0),
        (3, 10, R["at"], 0.5), (0, 10, R["at"], 0.75), (11, 10, R["at"], 1.0),
    ]
    return Graph(node_kind=kinds, x_num=[[float(p)] for p in pos], edges=edges, y=1)


def _edit(g: Graph, drop: tuple | None = None, add: tuple | None = None, pos: dict | None = None) -> Graph:
    edges = [e for e in g.edges if e != drop] + ([add] if add else [])
    x = [list(r) for r in g.x_num]
    for v, p in (pos or {}).items():
        x[v] = [float(p)]
    return Graph(g.node_kind, x, edges, y=0)


def test_oracle_on_a_hand_built_plan() -> None:
    g = _tiny_plan()
    assert violations(g) == set() and label_of(g) == 1
    # step 2 requires step 1: swapping their positions breaks the order (next edges do not matter)
    assert violations(_edit(g, pos={1: 2, 2: 1})) == {"order_violation"}
    # a requirement on the same position is not "earlier"
    assert violations(_edit(g, pos={2: 1})) == {"order_violation"}
    # a prerequisite that was dropped from the plan is never done before
    assert violations(_edit(g, add=(13, 12, R["requires"], 1.0))) == {"order_violation"}
    # the held capability moved to the unneeded one
    assert violations(_edit(g, drop=(0, 8, R["has_capability"], 1.0), add=(0, 9, R["has_capability"], 1.0))) == {
        "missing_capability"
    }
    # a capability held by something other than the robot does not count
    assert violations(_edit(g, drop=(0, 8, R["has_capability"], 1.0), add=(1, 8, R["has_capability"], 1.0))) == {
        "missing_capability"
    }
    # nor one that only the other robot holds: it does not carry out the plan
    assert violations(_edit(g, drop=(0, 8, R["has_capability"], 1.0), add=(11, 8, R["has_capability"], 1.0))) == {
        "missing_capability"
    }
    # the other robot holding a needed capability as well as the robot is fine
    assert violations(_edit(g, add=(11, 8, R["has_capability"], 1.0))) == set()
    # what a dropped step would have needed does not matter
    assert violations(_edit(g, add=(12, 9, R["needs_capability"], 1.0))) == set()
    # re-point the only achieves edge of leaf 7 to leaf 6
    repointed = _edit(g, drop=(3, 7, R["achieves"], 1.0), add=(3, 6, R["achieves"], 1.0))
    assert violations(repointed) == {"unachieved_leaf"}
    # leaf 6 achieved only by the dropped step is unachieved
    assert violations(_edit(g, drop=(2, 6, R["achieves"], 1.0))) == {"unachieved_leaf"}
    # an inner subgoal (5 has a child) needs no achieves edge; achieving it does not achieve the leaf
    g_inner = _edit(g, drop=(2, 6, R["achieves"], 1.0), add=(2, 5, R["achieves"], 1.0))
    assert violations(g_inner) == {"unachieved_leaf"}
    # an unheld capability that no step needs is fine
    assert violations(_edit(g, add=(1, 9, R["at"], 1.0))) == set()
    # dropped steps are off the plan order
    assert step_order(g) == [1, 2, 3, 13, 14]


# -- near misses: same content, two arrangements --------------------------------
def _multisets(g: Graph) -> tuple:
    return (
        sorted(g.node_kind),
        sorted(r[0] for r in g.x_num),
        sorted((r, w) for _, _, r, w in g.edges),
    )


def test_negative_is_a_near_miss_of_its_positive() -> None:
    dom = make_domain("planning")
    seen = Counter()
    for i in range(150):
        neg, pos = pair(dom, sample_seed("planning-test", 0, i, 0))
        assert neg.y == 0 and pos.y == 1
        assert _multisets(neg) == _multisets(pos)
        assert len(neg.node_kind) == len(pos.node_kind) and len(neg.edges) == len(pos.edges)
        seen[SUBTYPES[neg.subtype]] += 1
    assert set(seen) == set(CORRUPTIONS)


def _holders(g: Graph) -> Counter:
    """How many capabilities each set of holders has (robot, other robot, both, none)."""
    by_cap: dict[int, set[str]] = {v: set() for v, k in enumerate(g.node_kind) if k == K["capability"]}
    for s, d, r, _ in g.edges:
        if r == R["has_capability"]:
            by_cap[d].add(NODE_KINDS[g.node_kind[s]])
    return Counter(frozenset(h) for h in by_cap.values())


def test_who_holds_capabilities_matches_across_classes() -> None:
    dom = make_domain("planning")
    for i in range(60):
        neg, pos = pair(dom, 1000 + i)
        assert _holders(neg) == _holders(pos)
        # the other robot always holds a capability the robot lacks (the one a missing capability swaps in)
        assert _holders(pos)[frozenset({"other_robot"})] >= 1


def test_dropped_steps_are_off_the_plan(graphs: list[Graph]) -> None:
    for g in graphs:
        dropped = {v for v, k in enumerate(g.node_kind) if k == K["dropped_step"]}
        assert dropped and all(g.x_num[v][0] == 0.0 for v in dropped)
        allowed = {R["achieves"], R["targets"], R["at"]}
        assert all(r in allowed for s, _, r, _ in g.edges if s in dropped)
        assert not any(d in dropped for _, d, _, _ in g.edges)
        assert any(s in dropped for s, _, r, _ in g.edges if r == R["achieves"])


# -- plan structure ------------------------------------------------------------
def test_positions_are_raw_integers_and_next_follows_them(graphs: list[Graph]) -> None:
    for g in graphs:
        steps = [v for v, k in enumerate(g.node_kind) if k in STEP_KINDS]
        positions = sorted(g.x_num[v][0] for v in steps)
        assert positions == [float(p) for p in range(1, len(steps) + 1)]
        assert all(g.x_num[v][0] == 0.0 for v, k in enumerate(g.node_kind) if k not in STEP_KINDS)
        order = step_order(g)
        assert [g.x_num[v][0] for v in order] == positions  # the chain visits every step in position order


def test_sizes_and_strengths(graphs: list[Graph]) -> None:
    p = Planning.Params()
    n_nodes = [len(g.node_kind) for g in graphs]
    n_edges = [len(g.edges) for g in graphs]
    assert 15 <= sum(n_nodes) / len(graphs) <= 35 and max(n_nodes) <= 40
    assert 20 <= sum(n_edges) / len(graphs) <= 80
    for g in graphs:
        steps = sum(k in STEP_KINDS for k in g.node_kind)
        assert p.steps[0] <= steps <= p.steps[1]
        assert sum(k == K["robot"] for k in g.node_kind) == 1 and sum(k == K["goal"] for k in g.node_kind) == 1
        assert sum(k == K["other_robot"] for k in g.node_kind) == 1
        assert len(set((s, d, r) for s, d, r, _ in g.edges)) == len(g.edges)  # no duplicate edge
        for s, d, r, w in g.edges:
            assert 0.0 <= w <= 1.0 and s != d
            if RELATIONS[r] in STRUCTURAL:
                assert w == 1.0
            else:
                assert w in p.decorative_confidence
        assert all(0 <= r < len(RELATIONS) for _, _, r, _ in g.edges)


def test_node_ids_are_shuffled(graphs: list[Graph]) -> None:
    robot_at = Counter(g.node_kind.index(K["robot"]) for g in graphs)
    first_kind = Counter(NODE_KINDS[g.node_kind[0]] for g in graphs)
    assert len(robot_at) > 5 and len(first_kind) > 5


def test_subtype_coverage_and_balance(graphs: list[Graph]) -> None:
    counts = Counter(SUBTYPES[g.subtype] for g in graphs)
    assert counts["valid"] == 120
    for name in CORRUPTIONS:
        assert 20 <= counts[name] <= 70, counts


def test_deterministic() -> None:
    dom = make_domain("planning")
    a = dom.sample(random.Random(123), 0)
    b = dom.sample(random.Random(123), 0)
    c = dom.sample(random.Random(124), 0)
    assert a == b and a is not None and a != c
    assert [g.fingerprint() for g in generate_graphs(dom, 20, 3)] == [g.fingerprint() for g in generate_graphs(dom, 20, 3)]


# -- generator edge cases --------------------------------------------------------
def test_smallest_plans_take_every_corruption() -> None:
    dom = make_domain(
        "planning", steps=(5, 5), locations=(1, 1), objects=(1, 1), capabilities=(2, 2), top_subgoals=(2, 2),
        extra_subgoals=(0, 0), extra_achieves=(0, 0), extra_needs=(0, 0), requires_prob=0.0,
        dropped_steps=(1, 1), dropped_achieves=(1, 1),
    )
    seen = set()
    for i in range(60):
        neg, pos = pair(dom, i)
        assert label_of(pos) == 1 and label_of(neg) == 0 and _multisets(neg) == _multisets(pos)
        assert sum(r == R["requires"] for _, _, r, _ in pos.edges) == 1  # a prerequisite is always there
        seen.add(neg.subtype)
    assert seen == {1, 2, 3}


def test_large_plans_stay_valid() -> None:
    dom = make_domain("planning", steps=(10, 14), capabilities=(5, 6), extra_subgoals=(3, 5), extra_achieves=(4, 6),
                      extra_needs=(3, 5), requires_prob=1.0, second_requires_prob=1.0, dropped_steps=(2, 4),
                      dropped_achieves=(2, 3))
    for g in generate_graphs(dom, 40, 1):
        assert label_of(g) == g.y
        assert violations(g) == (set() if g.y else {SUBTYPES[g.subtype]})


@pytest.mark.parametrize("steps", [(11, 20), (21, 40)])
def test_long_plans_generate_fast_and_stay_valid(steps: tuple[int, int]) -> None:
    """The out-of-distribution plan lengths: every label from the oracle, every corruption there."""
    start = time.perf_counter()
    graphs = generate_graphs(make_domain("planning", steps=steps), 300, 2)
    assert time.perf_counter() - start < 5.0  # a few seconds at most (about 0.2 s on a quiet core)
    assert {g.subtype for g in graphs} == {0, 1, 2, 3}
    for g in graphs:
        assert violations(g) == (set() if g.y else {SUBTYPES[g.subtype]})
        assert steps[0] <= len(step_order(g)) <= steps[1]


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_corruption_weights_select_the_subtype(kind: int) -> None:
    weights = [0.0, 0.0, 0.0]
    weights[kind] = 1.0
    dom = make_domain("planning", corruption_weights=tuple(weights))
    negs = [g for g in generate_graphs(dom, 30, 5) if g.y == 0]
    assert {g.subtype for g in negs} == {kind + 1}
    assert all(violations(g) == {CORRUPTIONS[kind]} for g in negs)


@pytest.mark.parametrize(
    "params",
    [
        {"steps": (1, 5)},
        {"steps": (4, 8)},  # an order violation needs two interior steps that are not neighbours
        {"steps": (6, 5)},
        {"dropped_steps": (0, 2)},
        {"dropped_achieves": (0, 1)},
        {"capabilities": (1, 3)},
        {"top_subgoals": (1, 2)},
        {"objects": (0, 2)},
        {"requires_prob": 1.5},
        {"decorative_confidence": (0.5, 1.5)},
        {"corruption_weights": (0.0, 0.0, 0.0)},
        {"corruption_weights": (1.0, 1.0)},
    ],
)
def test_bad_parameters_are_refused(params: dict) -> None:
    with pytest.raises(ValueError, match="planning parameter"):
        make_domain("planning", **params)


def test_unknown_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown planning generation parameter"):
        make_domain("planning", plan_length=5)


def test_params_change_the_cache_key() -> None:
    from nsm.data.base import params_key

    assert params_key(make_domain("planning"), 100, 0) != params_key(make_domain("planning", steps=(5, 9)), 100, 0)
