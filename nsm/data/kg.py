"""The kg domain: link prediction as subgraph classification.

Each sample is one small typed world — persons, cities, regions, countries,
companies — whose geography is a tree (city_in -> region, region_in -> country,
headquartered_in -> region) and whose persons carry base facts (born_in,
lives_in, works_for, invests_in, visited, friend_of). Two derived relations
follow composition rules of length 3:

    born_in ∘ city_in ∘ region_in              => nationality
    works_for ∘ headquartered_in ∘ region_in   => works_in_country

Derived facts are stored for only part of the persons (an incomplete KG).

A query asks whether (head, r, candidate) holds, r one of the derived
relations. EVERY edge of relation r leaving the head is removed (removing only
the target triple would leave the true fact among the negatives' evidence), the
sample is the induced subgraph within 3 hops of the head only (mixing in the
candidate's neighbourhood would leak the label through graph size), the head's
node kind encodes r (`head_nationality` / `head_works_in_country`) and the
candidate tail is the one node of kind `candidate`.

Content first: the world, the query relation and the 3-hop ball are drawn
without looking at the label. Both arrangements are then the same graph with a
different country marked as candidate: the true one (y=1), or a wrong one
(y=0): mostly a *hard* negative — a country the head reaches through the wrong
relations (lives_in/visited cities, the other derived rule, an invested-in
company, a friend's derived facts, the head's other derived edge) — otherwise
any other country of the subgraph (*easy*). Node-kind and edge multisets are
therefore identical between classes, and the blind baseline sits at chance.

Edge attribute: a confidence in [0, 1]; geography, born_in, lives_in,
works_for and derived facts are certain (1.0); the soft facts (invests_in,
visited, friend_of) carry a decorative confidence. The label never depends on
it.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from nsm.data.base import Domain, DomainSpec, register
from nsm.data.graphs import Graph

NODE_KINDS = (
    "person",
    "city",
    "region",
    "country",
    "company",
    "head_nationality",
    "head_works_in_country",
    "candidate",
)
RELATIONS = (
    "born_in",  # person -> city
    "lives_in",  # person -> city
    "works_for",  # person -> company
    "invests_in",  # person -> company
    "visited",  # person -> city
    "friend_of",  # person -> person
    "city_in",  # city -> region
    "region_in",  # region -> country
    "headquartered_in",  # company -> region
    "nationality",  # person -> country (derived)
    "works_in_country",  # person -> country (derived)
)
SUBTYPES = ("true_nationality", "true_works_in_country", "hard_negative", "easy_negative")

K = {name: i for i, name in enumerate(NODE_KINDS)}
R = {name: i for i, name in enumerate(RELATIONS)}
S = {name: i for i, name in enumerate(SUBTYPES)}

# The head's kind tells which derived relation is queried.
HEAD_KIND_QUERY = {K["head_nationality"]: "nationality", K["head_works_in_country"]: "works_in_country"}
# The first hop of each rule; the rest is shared: (first) ∘ second ∘ region_in.
RULES = {
    "nationality": (R["born_in"], R["city_in"], R["region_in"]),
    "works_in_country": (R["works_for"], R["headquartered_in"], R["region_in"]),
}
SOFT_RELATIONS = (R["invests_in"], R["visited"], R["friend_of"])
CONFIDENCES = (0.5, 0.75, 1.0)


# --------------------------------------------------------------------------
# Oracle: the label (and the negative's kind) from a stored graph alone.
# --------------------------------------------------------------------------
def _as_lists(graph: Any) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Node kinds and (src, dst, rel) edges of a `Graph` or a PyG `Data` (one graph)."""
    if isinstance(graph, Graph):
        return list(graph.node_kind), [(s, d, r) for s, d, r, _ in graph.edges]
    kinds = [int(k) for k in graph.node_kind.tolist()]
    ei = graph.edge_index.tolist()
    et = graph.edge_type.tolist()
    return kinds, list(zip(ei[0], ei[1], et))


def _head_and_candidate(kinds: list[int]) -> tuple[int, str, int]:
    heads = [i for i, k in enumerate(kinds) if k in HEAD_KIND_QUERY]
    cands = [i for i, k in enumerate(kinds) if k == K["candidate"]]
    if len(heads) != 1 or len(cands) != 1:
        raise ValueError(f"a kg graph has exactly one head and one candidate (got {len(heads)}, {len(cands)})")
    return heads[0], HEAD_KIND_QUERY[kinds[heads[0]]], cands[0]


def _follow(edges: list[tuple[int, int, int]], starts: set[int], rel: int) -> set[int]:
    return {d for s, d, r in edges if r == rel and s in starts}


def _path_ends(edges: list[tuple[int, int, int]], head: int, rels: tuple[int, ...]) -> set[int]:
    ends = {head}
    for rel in rels:
        ends = _follow(edges, ends, rel)
    return ends


def rule_tails(graph: Any) -> set[int]:
    """Nodes t for which the queried rule derives (head, r, t) from the stored edges."""
    kinds, edges = _as_lists(graph)
    head, query, _ = _head_and_candidate(kinds)
    return _path_ends(edges, head, RULES[query])


def label_of(graph: Any) -> int:
    """1 if the composition rule of the queried relation derives (head, r, candidate)."""
    kinds, edges = _as_lists(graph)
    head, query, cand = _head_and_candidate(kinds)
    return int(cand in _path_ends(edges, head, RULES[query]))


def wrong_relation_tails(graph: Any) -> set[int]:
    """Countries (or the candidate) the head reaches through the *wrong* relations.

    Rule-shaped paths whose first hop is another person relation, the other
    rule, a friend's derived facts, and the head's own other derived edge.
    """
    kinds, edges = _as_lists(graph)
    head, query, _ = _head_and_candidate(kinds)
    out: set[int] = set()
    for first in (R["born_in"], R["lives_in"], R["visited"]):
        out |= _path_ends(edges, head, (first, R["city_in"], R["region_in"]))
    for first in (R["works_for"], R["invests_in"]):
        out |= _path_ends(edges, head, (first, R["headquartered_in"], R["region_in"]))
    for derived in (R["nationality"], R["works_in_country"]):
        out |= _path_ends(edges, head, (derived,))
        out |= _path_ends(edges, head, (R["friend_of"], derived))
    return out - _path_ends(edges, head, RULES[query])


def subtype_of(graph: Any) -> str:
    """The subtype name a graph should carry, recomputed from its structure."""
    kinds, _ = _as_lists(graph)
    head, query, cand = _head_and_candidate(kinds)
    if label_of(graph):
        return f"true_{query}"
    return "hard_negative" if cand in wrong_relation_tails(graph) else "easy_negative"


# --------------------------------------------------------------------------
# The generator.
# --------------------------------------------------------------------------
@register
class KGDomain(Domain):
    spec = DomainSpec(name="kg", node_kinds=NODE_KINDS, relations=RELATIONS, numeric=(), subtypes=SUBTYPES)
    version = 1

    @dataclass(frozen=True)
    class Params:
        min_countries: int = 3
        max_countries: int = 4
        max_regions_per_country: int = 2
        max_cities_per_region: int = 2
        min_companies: int = 2
        max_companies: int = 3
        min_persons: int = 4
        max_persons: int = 6
        invest_prob: float = 0.5  # a person invests in a second company
        max_visited: int = 2
        max_friends: int = 2  # friend_of edges out of each person
        known_derived_prob: float = 0.5  # each derived fact is stored with this probability
        hops: int = 3  # radius of the subgraph around the head
        hard_negative_prob: float = 0.75  # share of hard negatives; the rest are easy
        max_nodes: int = 40  # worlds whose subgraph is larger are redrawn
        max_world_tries: int = 50  # worlds drawn per sample before giving up (the base retries)

    # -- content --------------------------------------------------------------
    def _world(self, rng: random.Random) -> tuple[list[int], list[tuple[int, int, int, float]], int, str]:
        """A whole world: node kinds, edges, the head's id and the queried relation."""
        p = self.params
        kinds: list[int] = []
        edges: list[tuple[int, int, int, float]] = []

        def node(kind: str) -> int:
            kinds.append(K[kind])
            return len(kinds) - 1

        countries = [node("country") for _ in range(rng.randint(p.min_countries, p.max_countries))]
        regions: list[int] = []
        region_country: dict[int, int] = {}
        for c in countries:
            for _ in range(rng.randint(1, p.max_regions_per_country)):
                r = node("region")
                regions.append(r)
                region_country[r] = c
                edges.append((r, c, R["region_in"], 1.0))
        cities: list[int] = []
        city_region: dict[int, int] = {}
        for r in regions:
            for _ in range(rng.randint(1, p.max_cities_per_region)):
                ci = node("city")
                cities.append(ci)
                city_region[ci] = r
                edges.append((ci, r, R["city_in"], 1.0))
        companies: list[int] = []
        company_region: dict[int, int] = {}
        for _ in range(rng.randint(p.min_companies, p.max_companies)):
            co = node("company")
            companies.append(co)
            company_region[co] = rng.choice(regions)
            edges.append((co, company_region[co], R["headquartered_in"], 1.0))

        def conf() -> float:
            return rng.choice(CONFIDENCES)

        persons = [node("person") for _ in range(rng.randint(p.min_persons, p.max_persons))]
        head = persons[0]
        query = rng.choice(("nationality", "works_in_country"))
        for person in persons:
            born = rng.choice(cities)
            edges.append((person, born, R["born_in"], 1.0))
            edges.append((person, rng.choice(cities), R["lives_in"], 1.0))
            employer = rng.choice(companies)
            edges.append((person, employer, R["works_for"], 1.0))
            if rng.random() < p.invest_prob:
                others = [c for c in companies if c != employer]
                edges.append((person, rng.choice(others), R["invests_in"], conf()))
            for ci in rng.sample(cities, rng.randint(0, min(p.max_visited, len(cities)))):
                edges.append((person, ci, R["visited"], conf()))
            others = [q for q in persons if q != person]
            for friend in rng.sample(others, rng.randint(0, min(p.max_friends, len(others)))):
                edges.append((person, friend, R["friend_of"], conf()))
            derived = {
                "nationality": region_country[city_region[born]],
                "works_in_country": region_country[company_region[employer]],
            }
            for rel, country in derived.items():
                if person == head and rel == query:
                    continue  # the query: every edge of r out of the head is removed
                if rng.random() < p.known_derived_prob:
                    edges.append((person, country, R[rel], 1.0))
        kinds[head] = K["head_" + query]
        return kinds, edges, head, query

    @staticmethod
    def _ball(n: int, edges: list[tuple[int, int, int, float]], center: int, hops: int) -> list[int]:
        adj: list[list[int]] = [[] for _ in range(n)]
        for s, d, _, _ in edges:
            adj[s].append(d)
            adj[d].append(s)
        dist = {center: 0}
        queue = deque([center])
        while queue:
            u = queue.popleft()
            if dist[u] == hops:
                continue
            for v in adj[u]:
                if v not in dist:
                    dist[v] = dist[u] + 1
                    queue.append(v)
        return sorted(dist)

    def _content(
        self, rng: random.Random, want_hard: bool
    ) -> tuple[list[int], list[tuple[int, int, int, float]], int, str, int, int, bool] | None:
        """One world's 3-hop subgraph and both candidate choices, or None if it has no
        negative of the wanted kind. Never looks at the label."""
        p = self.params
        kinds, edges, head, query = self._world(rng)
        keep = self._ball(len(kinds), edges, head, p.hops)
        if len(keep) > p.max_nodes:
            return None
        # Shuffle ids: position in the node list carries nothing.
        order = keep[:]
        rng.shuffle(order)
        new_id = {old: i for i, old in enumerate(order)}
        sub_kinds = [kinds[old] for old in order]
        sub_edges = [(new_id[s], new_id[d], r, w) for s, d, r, w in edges if s in new_id and d in new_id]
        rng.shuffle(sub_edges)
        h = new_id[head]

        plain = [(s, d, r) for s, d, r, _ in sub_edges]
        true_tails = _path_ends(plain, h, RULES[query])
        if len(true_tails) != 1:
            return None  # cannot happen with one born_in/works_for per person; kept as a guard
        (true_tail,) = true_tails
        wrong = [i for i, k in enumerate(sub_kinds) if k == K["country"] and i != true_tail]
        probe = Graph(node_kind=sub_kinds[:], x_num=[], edges=sub_edges, y=0)
        probe.node_kind[true_tail] = K["candidate"]
        hard_set = wrong_relation_tails(probe)
        pool = [c for c in wrong if (c in hard_set) == want_hard]
        if not pool:
            return None
        return sub_kinds, sub_edges, h, query, true_tail, rng.choice(pool), want_hard

    def sample(self, rng: random.Random, label: int) -> Graph | None:
        p = self.params
        # The negative's kind is drawn first and kept while worlds are redrawn until
        # one offers such a negative (redrawing through the base would re-draw the
        # kind too and skew the mix towards the kind more often available).
        want_hard = rng.random() < p.hard_negative_prob
        for _ in range(p.max_world_tries):
            content = self._content(rng, want_hard)
            if content is not None:
                break
        else:
            return None
        kinds, edges, _, query, true_tail, negative, hard = content
        # The arrangement: which country is the candidate.
        cand = true_tail if label == 1 else negative
        kinds[cand] = K["candidate"]
        if label == 1:
            subtype = S[f"true_{query}"]
        else:
            subtype = S["hard_negative"] if hard else S["easy_negative"]
        return Graph(node_kind=kinds, x_num=[[] for _ in kinds], edges=edges, y=label, subtype=subtype)
