"""The causal domain: is the treatment's *causal* effect on the symptom beneficial?

One sample is a small causal DAG around a treatment T and a symptom S. Every
other node is a plain `variable`; its role exists only in the structure:

- confounders   C -> T and C -> S (some also C -> a mediator): back-door paths;
- mediators     T -> M -> S, in two layers, with chains M1 -> M2 between them;
- a direct edge T -> S (most samples);
- instruments   Z -> T (cause the treatment only);
- other causes  O -> S or O -> a mediator (cause the outcome only);
- descendants   S -> D (sometimes also M -> D: a collider);
- side effects  T -> X or M -> X (dead ends that never reach S).

Edges are `increases` or `decreases` with a strength in {0.25, 0.5, 0.75, 1.0}.
The total effect of T on S is the sum over directed T -> S paths of the
product of signed strengths (a DP over the DAG; every value is a dyadic
rational, so it is exact in floating point). Label: beneficial (y=1) when the
total effect is <= -0.25, not beneficial (y=0) when it is >= 0; arrangements in
between are never produced (a margin instead of label noise).

The *association* a naive observer sees adds the back-door paths: for every
parent P of T, strength(P -> T) times P's directed effect on S avoiding T.
A sample is *hard* when association and causation disagree: a hard negative
has no causal benefit but looks beneficial (association <= -0.25), a hard
positive is beneficial but looks harmful (association >= 0). With half of each
class hard, the association alone is at chance.

Generation (DOMAINS.md): the content (the DAG skeleton, the node kinds, each
edge's relation, the multiset of strengths of each relation) is drawn first;
then random permutations of the strengths *among the edges of the same
relation* are tried until one arrangement of every kind (beneficial, hard
positive, not beneficial, hard negative) is found, and the requested label
picks one of them. Every node therefore keeps its in/out degree per relation
(T's and S's signed degrees would otherwise tell the label) and every
relation keeps its strength sum. Edge signs are redrawn until the treatment
reaches the symptom along paths of both signs and the back-door paths have
both signs (without both, one of the hard kinds cannot exist); samples whose
content still cannot produce every kind are redrawn — for both labels alike,
so the content never depends on the label. Node ids are shuffled.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from nsm.data.base import Domain, DomainSpec, register
from nsm.data.graphs import Graph

TREATMENT, SYMPTOM, VARIABLE = 0, 1, 2
INCREASES, DECREASES = 0, 1

SUBTYPES = ("beneficial", "hard_positive", "not_beneficial", "hard_negative")
BENEFICIAL, HARD_POSITIVE, NOT_BENEFICIAL, HARD_NEGATIVE = range(4)
SUBTYPE_LABEL = {BENEFICIAL: 1, HARD_POSITIVE: 1, NOT_BENEFICIAL: 0, HARD_NEGATIVE: 0}

STRENGTHS = (0.25, 0.5, 0.75, 1.0)


# ---------------------------------------------------------------------------
# The oracle: effects recomputed from stored edges alone
# ---------------------------------------------------------------------------


def _as_lists(g: Any) -> tuple[list[int], list[tuple[int, int, int, float]]]:
    """(node kinds, edges) of a `Graph`, a PyG `Data`, or a (node_kind, edges) pair."""
    if isinstance(g, Graph):
        return list(g.node_kind), [(int(s), int(d), int(r), float(w)) for s, d, r, w in g.edges]
    if isinstance(g, tuple) and len(g) == 2:
        kinds, edges = g
        return [int(k) for k in kinds], [(int(s), int(d), int(r), float(w)) for s, d, r, w in edges]
    # A torch_geometric Data of one graph (e.g. GraphSet.get(i)).
    kinds = [int(k) for k in g.node_kind.tolist()]
    src, dst = g.edge_index.tolist()
    edges = list(zip(src, dst, g.edge_type.tolist(), g.edge_attr.double().tolist()))
    return kinds, [(int(s), int(d), int(r), float(w)) for s, d, r, w in edges]


def signed(rel: int, strength: float) -> float:
    if rel == INCREASES:
        return float(strength)
    if rel == DECREASES:
        return -float(strength)
    raise ValueError(f"unknown causal relation id {rel}")


def _topological_order(n: int, edges: Sequence[tuple[int, int, int, float]]) -> list[int]:
    indeg = [0] * n
    children: list[list[int]] = [[] for _ in range(n)]
    for s, d, _, _ in edges:
        children[s].append(d)
        indeg[d] += 1
    order = [v for v in range(n) if indeg[v] == 0]
    i = 0
    while i < len(order):
        for d in children[order[i]]:
            indeg[d] -= 1
            if indeg[d] == 0:
                order.append(d)
        i += 1
    if len(order) != n:
        raise ValueError("the causal graph has a directed cycle")
    return order


def _the_node(kinds: list[int], kind: int, name: str) -> int:
    found = [i for i, k in enumerate(kinds) if k == kind]
    if len(found) != 1:
        raise ValueError(f"a causal graph needs exactly one {name} node (found {len(found)})")
    return found[0]


def effects(g: Any) -> dict[str, float]:
    """Total causal effect of the treatment on the symptom, and the association.

    `total_effect`: forward DP from T in topological order, eff[T] = 1,
    eff[v] = sum over edges u -> v of eff[u] * signed strength; the answer is
    eff[S] (the sum over directed T -> S paths of products of signed strengths).
    `backdoor`: for each parent P of T, signed(P -> T) times the directed
    effect of P on S over paths that avoid T. `association` = their sum.
    """
    kinds, edges = _as_lists(g)
    n = len(kinds)
    t = _the_node(kinds, TREATMENT, "treatment")
    s = _the_node(kinds, SYMPTOM, "symptom")
    order = _topological_order(n, edges)
    incoming: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for u, v, r, w in edges:
        incoming[v].append((u, signed(r, w)))

    def forward_from(source: int, blocked: int | None) -> list[float]:
        eff = [0.0] * n
        eff[source] = 1.0
        for v in order:
            if v == source or v == blocked:
                continue
            eff[v] = sum(eff[u] * w for u, w in incoming[v])
        return eff

    total = forward_from(t, None)[s]
    backdoor = 0.0
    for p, w in incoming[t]:
        backdoor += w * forward_from(p, t)[s]
    return {"total_effect": total, "backdoor": backdoor, "association": total + backdoor}


def total_effect(g: Any) -> float:
    return effects(g)["total_effect"]


def label_of(g: Any, margin: float = 0.25) -> int | None:
    """1 = beneficial (total effect <= -margin), 0 = not (>= 0), None in the margin."""
    te = total_effect(g)
    if te <= -margin:
        return 1
    if te >= 0.0:
        return 0
    return None


def subtype_of(g: Any, margin: float = 0.25) -> int | None:
    """Which of SUBTYPES a graph is, from its edges alone (None if in a margin)."""
    e = effects(g)
    te, assoc = e["total_effect"], e["association"]
    looks = 1 if assoc <= -margin else 0 if assoc >= 0.0 else None
    is_ = 1 if te <= -margin else 0 if te >= 0.0 else None
    if looks is None or is_ is None:
        return None
    if is_ == 1:
        return BENEFICIAL if looks == 1 else HARD_POSITIVE
    return NOT_BENEFICIAL if looks == 0 else HARD_NEGATIVE


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------


@dataclass
class Skeleton:
    """A label-free DAG: node roles (for tests and debugging) and directed edges."""

    roles: list[str]  # "T", "S", "C", "Z", "M1", "M2", "O", "D", "X"
    edges: list[tuple[int, int]]


def draw_skeleton(rng: random.Random, p: "CausalDomain.Params") -> Skeleton:
    roles = ["T", "S"]
    edges: list[tuple[int, int]] = []
    T, S = 0, 1

    def add(role: str) -> int:
        roles.append(role)
        return len(roles) - 1

    # Mediators: layer 1 (children of T), layer 2 (children of layer 1).
    n_med = rng.randint(p.min_mediators, p.max_mediators)
    n_l2 = rng.randint(0, n_med // 2)
    layer1 = [add("M1") for _ in range(n_med - n_l2)]
    layer2 = [add("M2") for _ in range(n_l2)]
    for m in layer1:
        edges.append((T, m))
    has_child = set()
    for m in layer2:
        parent = rng.choice(layer1)
        edges.append((parent, m))
        has_child.add(parent)
        for other in layer1:  # chains between mediators
            if other != parent and rng.random() < p.p_mediator_chain:
                edges.append((other, m))
                has_child.add(other)
        if rng.random() < p.p_treatment_to_layer2:
            edges.append((T, m))
        edges.append((m, S))
    for m in layer1:
        if m not in has_child or rng.random() < p.p_layer1_to_symptom:
            edges.append((m, S))
    if rng.random() < p.p_direct:
        edges.append((T, S))
    mediators = layer1 + layer2

    # Confounders: C -> T, and C -> S and/or C -> a mediator.
    for _ in range(rng.randint(p.min_confounders, p.max_confounders)):
        c = add("C")
        edges.append((c, T))
        to_s = rng.random() < p.p_confounder_to_symptom
        to_m = rng.random() < p.p_confounder_to_mediator
        if to_s or not to_m:
            edges.append((c, S))
        if to_m:
            edges.append((c, rng.choice(mediators)))
    for _ in range(rng.randint(p.min_instruments, p.max_instruments)):
        edges.append((add("Z"), T))
    for _ in range(rng.randint(p.min_other_causes, p.max_other_causes)):
        o = add("O")
        edges.append((o, S if rng.random() < 0.5 else rng.choice(mediators)))
    for _ in range(rng.randint(p.min_descendants, p.max_descendants)):
        d = add("D")
        edges.append((S, d))
        if rng.random() < p.p_collider:
            edges.append((rng.choice(mediators), d))
    for _ in range(rng.randint(p.min_side_effects, p.max_side_effects)):
        x = add("X")
        edges.append((T if rng.random() < 0.5 else rng.choice(mediators), x))
    return Skeleton(roles, edges)


class _Evaluator:
    """Effect of T on S and back-door sum for many strength arrangements of one skeleton at once.

    One reverse DP: to_s[v] = directed effect of v on S with T blocked; then
    total effect = sum over T -> c of w * to_s[c], back-door = sum over p -> T
    of w * to_s[p] (T has no path back to itself, so blocking it changes only
    the back-door legs). Vectorised over arrangements: thousands of them cost
    about as much as a few in pure Python.
    """

    def __init__(self, n: int, edges: list[tuple[int, int]], t: int, s: int):
        order = _topological_order(n, [(a, b, 0, 0.0) for a, b in edges])
        out: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for e, (a, b) in enumerate(edges):
            if b != t:  # to_s[T] is 0 by definition (T blocked): such terms vanish
                out[a].append((e, b))
        self.n, self.t, self.s = n, t, s
        self.plan = [(v, out[v]) for v in reversed(order) if v not in (t, s) and out[v]]
        self.t_out = out[t]
        self.t_in = [(e, a) for e, (a, b) in enumerate(edges) if b == t]

    def __call__(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signed weights of shape (edges, arrangements) -> (total effects, back-door sums)."""
        to_s = np.zeros((self.n, w.shape[1]))
        to_s[self.s] = 1.0
        for v, outs in self.plan:
            acc = to_s[v]
            for e, b in outs:
                acc += w[e] * to_s[b]
        te = sum((w[e] * to_s[b] for e, b in self.t_out), np.zeros(w.shape[1]))
        bd = sum((w[e] * to_s[a] for e, a in self.t_in), np.zeros(w.shape[1]))
        return te, bd

    def path_signs(self, rels: Sequence[int]) -> tuple[int, int, int, int]:
        """(positive, negative) T -> S paths, then (positive, negative) back-door paths."""
        pos, neg = [0] * self.n, [0] * self.n
        pos[self.s] = 1

        def leg(e: int, b: int) -> tuple[int, int]:
            return (pos[b], neg[b]) if rels[e] == INCREASES else (neg[b], pos[b])

        for v, outs in self.plan:
            for e, b in outs:
                dp, dn = leg(e, b)
                pos[v] += dp
                neg[v] += dn
        causal = [leg(e, b) for e, b in self.t_out]
        back = [leg(e, a) for e, a in self.t_in]
        return (
            sum(c[0] for c in causal),
            sum(c[1] for c in causal),
            sum(c[0] for c in back),
            sum(c[1] for c in back),
        )


def classify(te: float, assoc: float, margin: float) -> int | None:
    is_ = 1 if te <= -margin else 0 if te >= 0.0 else None
    looks = 1 if assoc <= -margin else 0 if assoc >= 0.0 else None
    if is_ is None or looks is None:
        return None
    if is_ == 1:
        return BENEFICIAL if looks == 1 else HARD_POSITIVE
    return NOT_BENEFICIAL if looks == 0 else HARD_NEGATIVE


def _classify_many(te: np.ndarray, assoc: np.ndarray, margin: float) -> np.ndarray:
    """`classify` over arrays; -1 where either value lies in the margin."""
    is_pos, is_neg = te <= -margin, te >= 0.0
    looks_pos, looks_neg = assoc <= -margin, assoc >= 0.0
    out = np.full(te.shape, -1)
    out[is_pos & looks_pos] = BENEFICIAL
    out[is_pos & looks_neg] = HARD_POSITIVE
    out[is_neg & looks_neg] = NOT_BENEFICIAL
    out[is_neg & looks_pos] = HARD_NEGATIVE
    return out


@register
class CausalDomain(Domain):
    spec = DomainSpec(
        name="causal",
        node_kinds=("treatment", "symptom", "variable"),
        relations=("increases", "decreases"),
        numeric=(),
        subtypes=SUBTYPES,
    )
    version = 2

    @dataclass(frozen=True)
    class Params:
        min_mediators: int = 3
        max_mediators: int = 6
        p_mediator_chain: float = 0.25
        p_treatment_to_layer2: float = 0.25
        p_layer1_to_symptom: float = 0.5
        p_direct: float = 0.6
        min_confounders: int = 2
        max_confounders: int = 4
        p_confounder_to_symptom: float = 0.75
        p_confounder_to_mediator: float = 0.35
        min_instruments: int = 1
        max_instruments: int = 2
        min_other_causes: int = 1
        max_other_causes: int = 3
        min_descendants: int = 1
        max_descendants: int = 2
        p_collider: float = 0.3
        min_side_effects: int = 1
        max_side_effects: int = 2
        p_decreases: float = 0.5
        margin: float = 0.25  # beneficial: total effect <= -margin; not: >= 0
        hard_positive_frac: float = 0.5  # of the positives, the share that looks harmful
        hard_negative_frac: float = 0.5  # of the negatives, the share that looks beneficial
        max_tries: int = 400  # strength arrangements tried per content before redrawing it
        max_sign_draws: int = 20  # edge-sign draws per skeleton until both signs reach S (else redraw)

    def _wanted(self) -> set[int]:
        p = self.params
        wanted = {BENEFICIAL, NOT_BENEFICIAL}
        if p.hard_positive_frac > 0:
            wanted.add(HARD_POSITIVE)
        if p.hard_negative_frac > 0:
            wanted.add(HARD_NEGATIVE)
        if p.hard_positive_frac >= 1:
            wanted.discard(BENEFICIAL)
        if p.hard_negative_frac >= 1:
            wanted.discard(NOT_BENEFICIAL)
        return wanted

    def _relations(self, rng: random.Random, evaluate: _Evaluator, m: int) -> list[int] | None:
        """Edge signs under which T -> S and the back door both carry paths of either sign.

        With one sign only, the effect (or the back-door sum) could never change
        sign under a permutation of strengths, and the content would be wasted.
        """
        p = self.params
        for _ in range(p.max_sign_draws):
            rels = [DECREASES if rng.random() < p.p_decreases else INCREASES for _ in range(m)]
            if min(evaluate.path_signs(rels)) > 0:
                return rels
        return None

    def _arrangements(
        self, rng: random.Random, evaluate: _Evaluator, rels: list[int], strengths: list[float]
    ) -> dict[int, list[float]] | None:
        """One strength arrangement (per edge) of every wanted kind, or None.

        Strengths move only among edges of one relation, so every node's
        per-relation degrees and every relation's strength sum stay as drawn.
        """
        p = self.params
        gen = np.random.default_rng(rng.getrandbits(64))
        rel = np.array(rels)
        base = np.array(strengths)
        groups = [np.flatnonzero(rel == r) for r in (INCREASES, DECREASES)]
        sign = np.where(rel == INCREASES, 1.0, -1.0)[:, None]
        wanted = self._wanted()
        found: dict[int, list[float]] = {}
        # Most contents that work show every kind early: a small first batch
        # saves the full search for the rest.
        first = max(1, p.max_tries // 4)
        for k in (first, p.max_tries - first):
            if k <= 0:
                continue
            table = np.empty((len(rels), k))  # strengths: (edge, arrangement)
            for idx in groups:
                if len(idx):
                    table[idx] = base[idx][np.argsort(gen.random((len(idx), k)), axis=0)]
            te, bd = evaluate(table * sign)
            kind = _classify_many(te, te + bd, p.margin)
            for want in wanted - set(found):
                hits = np.flatnonzero(kind == want)
                if len(hits):
                    found[want] = table[:, hits[0]].tolist()
            if len(found) == len(wanted):
                return found
        return None

    def sample(self, rng: random.Random, label: int) -> Graph | None:
        p = self.params
        # -- content, drawn without looking at the label ---------------------
        sk = draw_skeleton(rng, p)
        n, m = len(sk.roles), len(sk.edges)
        evaluate = _Evaluator(n, sk.edges, 0, 1)
        rels = self._relations(rng, evaluate, m)
        if rels is None:
            return None  # this skeleton cannot give both signs: redraw (for both labels alike)
        strengths = [rng.choice(STRENGTHS) for _ in range(m)]
        coin = rng.random()
        perm_node = list(range(n))
        rng.shuffle(perm_node)
        # -- every kind of arrangement of that content -----------------------
        found = self._arrangements(rng, evaluate, rels, strengths)
        if found is None:
            return None  # this content cannot give every kind: redraw (for both labels alike)
        # -- the requested label picks one ------------------------------------
        if label == 1:
            kind = HARD_POSITIVE if coin < p.hard_positive_frac else BENEFICIAL
        else:
            kind = HARD_NEGATIVE if coin < p.hard_negative_frac else NOT_BENEFICIAL
        chosen = found[kind]
        edges = [(perm_node[a], perm_node[b], r, s) for (a, b), r, s in zip(sk.edges, rels, chosen)]
        edges.sort()
        kinds = [VARIABLE] * n
        kinds[perm_node[0]] = TREATMENT
        kinds[perm_node[1]] = SYMPTOM
        return Graph(node_kind=kinds, x_num=[[] for _ in range(n)], edges=edges, y=SUBTYPE_LABEL[kind], subtype=kind)
