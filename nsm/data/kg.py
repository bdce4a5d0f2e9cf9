"""The kg domain: link prediction as subgraph classification.

Each sample is one small typed world — persons, districts, cities, regions,
countries, companies — whose geography is a tree (district_in -> city,
city_in -> region, region_in -> country; headquartered_in: company -> city)
and whose persons carry base facts (born_in, lives_in: a district; works_for,
invests_in: a company; visited: a city; friend_of: a person; father, mother:
the person's parents). Two derived relations follow composition rules:

    works_for ∘ headquartered_in ∘ city_in ∘ region_in          => works_in_country
    father* ∘ born_in ∘ district_in ∘ city_in ∘ region_in       => nationality

Nationality passes down the paternal line (jus sanguinis): it is the birth
country of the earliest known paternal ancestor (the person's own when no
father is known), so its rule is 4 to 4 + `max_ancestors` hops long and must
be told from the same shape through the wrong relations (the mother's birth
country, the person's own when a father is known). Every living person has a
paternal line of its own (0 to `max_ancestors` fathers) and, with
`mother_prob`, a mother, so neither the end of a line nor a mother marks the
head's. Derived facts are stored for only part of the living persons (an
incomplete KG), never for ancestors and mothers (an ancestor's nationality
would shortcut the paternal line).

A query asks whether (head, r, candidate) holds, r one of the derived
relations. EVERY edge of relation r leaving the head is removed (removing only
the target triple would leave the true fact among the negatives' evidence), the
sample is the induced subgraph within `hops` hops of the head only (mixing in
the candidate's neighbourhood would leak the label through graph size), the
head's node kind encodes r (`head_nationality` / `head_works_in_country`) and
the candidate tail is the one node of kind `candidate`.

Content first: the world, the query relation and the ball are drawn without
looking at the label. Both arrangements are then the same graph with a
different country marked as candidate: the true one (y=1), or a wrong one
(y=0): mostly a *hard* negative — a country that the head, one of its
paternal ancestors or the head's mother reach through a person relation that
the rule does not use (the birth or home district, the visited cities, the
employer or an invested-in company, derived facts, a friend's derived facts)
— otherwise any other country of the subgraph (*easy*).

No degree leaks: the wrong country must have exactly the true country's
in/out degree per relation inside the subgraph (worlds without one are
redrawn, for both labels alike), so moving the candidate mark changes no
degree feature, and the true country cannot be told by being the bigger one
(it is reached through a uniformly drawn district or employer). With
`uniform_geography` every country has the same number of regions, cities per
region and districts per city, so worlds offer such a match often. Node-kind
and edge multisets are identical between classes; no edge is repeated.

Edge attribute: a confidence in [0, 1]; geography, born_in, lives_in,
works_for, the parents and derived facts are certain (1.0); the soft facts
(invests_in, visited, friend_of) carry a decorative confidence. The label
never depends on it.
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
    "district",
    "city",
    "region",
    "country",
    "company",
    "head_nationality",
    "head_works_in_country",
    "candidate",
)
RELATIONS = (
    "born_in",  # person -> district
    "lives_in",  # person -> district
    "works_for",  # person -> company
    "invests_in",  # person -> company
    "visited",  # person -> city
    "friend_of",  # person -> person
    "father",  # person -> the person's father
    "mother",  # person -> the person's mother
    "district_in",  # district -> city
    "city_in",  # city -> region
    "region_in",  # region -> country
    "headquartered_in",  # company -> city
    "nationality",  # person -> country (derived)
    "works_in_country",  # person -> country (derived)
)
SUBTYPES = ("true_nationality", "true_works_in_country", "hard_negative", "easy_negative")

K = {name: i for i, name in enumerate(NODE_KINDS)}
R = {name: i for i, name in enumerate(RELATIONS)}
S = {name: i for i, name in enumerate(SUBTYPES)}

# The head's kind tells which derived relation is queried.
HEAD_KIND_QUERY = {K["head_nationality"]: "nationality", K["head_works_in_country"]: "works_in_country"}
DERIVED = (R["nationality"], R["works_in_country"])
# From a district, and from a company, up to the country.
DISTRICT_TO_COUNTRY = (R["district_in"], R["city_in"], R["region_in"])
COMPANY_TO_COUNTRY = (R["headquartered_in"], R["city_in"], R["region_in"])
BIRTH_COUNTRY = (R["born_in"], *DISTRICT_TO_COUNTRY)
WORK_COUNTRY = (R["works_for"], *COMPANY_TO_COUNTRY)
# A person's facts that lead to a country, right or wrong for the query: followed
# from the head, its paternal ancestors and the head's mother they give the hard negatives.
PERSON_PATHS = (
    BIRTH_COUNTRY,
    (R["lives_in"], *DISTRICT_TO_COUNTRY),
    (R["visited"], R["city_in"], R["region_in"]),
    WORK_COUNTRY,
    (R["invests_in"], *COMPANY_TO_COUNTRY),
    *((d,) for d in DERIVED),
    *((R["friend_of"], d) for d in DERIVED),
)
SOFT_RELATIONS = (R["invests_in"], R["visited"], R["friend_of"])
CONFIDENCES = (0.5, 0.75, 1.0)

Edge = tuple[int, int, int, float]


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


class _Index:
    """Stored edges by (source, relation): paths are followed without scanning every edge."""

    def __init__(self, edges: list[tuple[int, int, int]]):
        self.out: dict[tuple[int, int], list[int]] = {}
        for s, d, r in edges:
            self.out.setdefault((s, r), []).append(d)

    def follow(self, starts: set[int], rel: int) -> set[int]:
        return {d for s in starts for d in self.out.get((s, rel), ())}

    def path_ends(self, start: int, rels: tuple[int, ...]) -> set[int]:
        ends = {start}
        for rel in rels:
            ends = self.follow(ends, rel)
        return ends

    def paternal_line(self, person: int) -> list[int]:
        """The person, its father, his father, ... as far as `father` edges are stored."""
        line = [person]
        while True:
            fathers = self.out.get((line[-1], R["father"]), [])
            if not fathers or fathers[0] in line:
                return line
            line.append(fathers[0])

    def derive(self, person: int, query: str) -> set[int]:
        """What the rule of `query` derives for `person`."""
        if query == "nationality":
            return self.path_ends(self.paternal_line(person)[-1], BIRTH_COUNTRY)
        return self.path_ends(person, WORK_COUNTRY)

    def wrong_tails(self, head: int, query: str) -> set[int]:
        line = self.paternal_line(head)
        people = set(line) | self.follow(set(line), R["mother"])
        out: set[int] = set()
        for person in people:
            for path in PERSON_PATHS:
                out |= self.path_ends(person, path)
        return out - self.derive(head, query)


def derive(graph: Any, person: int, query: str) -> set[int]:
    """Nodes t for which the rule of `query` derives (person, query, t) from the stored edges."""
    _, edges = _as_lists(graph)
    return _Index(edges).derive(person, query)


def rule_tails(graph: Any) -> set[int]:
    """Nodes t for which the queried rule derives (head, r, t) from the stored edges."""
    kinds, edges = _as_lists(graph)
    head, query, _ = _head_and_candidate(kinds)
    return _Index(edges).derive(head, query)


def label_of(graph: Any) -> int:
    """1 if the composition rule of the queried relation derives (head, r, candidate)."""
    kinds, edges = _as_lists(graph)
    head, query, cand = _head_and_candidate(kinds)
    return int(cand in _Index(edges).derive(head, query))


def wrong_relation_tails(graph: Any) -> set[int]:
    """Countries (or the candidate) reached through the *wrong* relations.

    Every person path to a country (PERSON_PATHS) from the head, from each of
    its paternal ancestors and from their mothers (the generator gives a mother
    to living persons only), less what the rule derives.
    """
    kinds, edges = _as_lists(graph)
    head, query, _ = _head_and_candidate(kinds)
    return _Index(edges).wrong_tails(head, query)


def subtype_of(graph: Any) -> str:
    """The subtype name a graph should carry, recomputed from its structure."""
    kinds, _ = _as_lists(graph)
    head, query, cand = _head_and_candidate(kinds)
    if label_of(graph):
        return f"true_{query}"
    return "hard_negative" if cand in wrong_relation_tails(graph) else "easy_negative"


def degree_vectors(edges: list[tuple[int, int, int]], nodes: set[int]) -> dict[int, tuple[int, ...]]:
    """Per node of `nodes`: out-degree per relation, then in-degree per relation (what the
    degree probe sees of a node)."""
    vec = {v: [0] * (2 * len(RELATIONS)) for v in nodes}
    for s, d, r in edges:
        if s in vec:
            vec[s][r] += 1
        if d in vec:
            vec[d][len(RELATIONS) + r] += 1
    return {v: tuple(c) for v, c in vec.items()}


# --------------------------------------------------------------------------
# The generator.
# --------------------------------------------------------------------------
@dataclass
class World:
    """A whole world before the query's ball is cut out of it."""

    kinds: list[int]
    edges: list[Edge]  # every base fact and the geography
    derived: list[Edge]  # every derived fact the rules give (but the query's own): a part is stored
    head: int
    query: str
    answer: int  # the country the queried rule derives for the head


class _WorldBuilder:
    """Draws one world's nodes and base facts, remembering what the rules need."""

    def __init__(self, rng: random.Random, params: Any):
        self.rng, self.p = rng, params
        self.kinds: list[int] = []
        self.edges: list[Edge] = []
        self.cities: list[int] = []
        self.districts: list[int] = []
        self.companies_: list[int] = []
        self.country_of: dict[int, int] = {}  # district, city or company -> its country
        self.born_in: dict[int, int] = {}  # person -> district
        self.employer_of: dict[int, int] = {}  # living person -> company

    def node(self, kind: str) -> int:
        self.kinds.append(K[kind])
        return len(self.kinds) - 1

    def _counter(self, most: int) -> Any:
        """1..most per parent; with uniform geography one draw for every parent of the world."""
        if self.p.uniform_geography:
            fixed = self.rng.randint(1, most)
            return lambda: fixed
        return lambda: self.rng.randint(1, most)

    def geography(self) -> None:
        p, rng = self.p, self.rng
        n_regions = self._counter(p.max_regions_per_country)
        n_cities = self._counter(p.max_cities_per_region)
        n_districts = self._counter(p.max_districts_per_city)
        for country in [self.node("country") for _ in range(rng.randint(p.min_countries, p.max_countries))]:
            for _ in range(n_regions()):
                region = self.node("region")
                self.edges.append((region, country, R["region_in"], 1.0))
                for _ in range(n_cities()):
                    city = self.node("city")
                    self.cities.append(city)
                    self.country_of[city] = country
                    self.edges.append((city, region, R["city_in"], 1.0))
                    for _ in range(n_districts()):
                        district = self.node("district")
                        self.districts.append(district)
                        self.country_of[district] = country
                        self.edges.append((district, city, R["district_in"], 1.0))

    def companies(self) -> None:
        for _ in range(self.rng.randint(self.p.min_companies, self.p.max_companies)):
            co = self.node("company")
            self.companies_.append(co)
            hq = self.rng.choice(self.cities)
            self.country_of[co] = self.country_of[hq]
            self.edges.append((co, hq, R["headquartered_in"], 1.0))

    def _conf(self) -> float:
        return self.rng.choice(CONFIDENCES)

    def living_facts(self, person: int, persons: list[int]) -> None:
        """Birth and home district, employer, investment, visited cities, friends."""
        p, rng, edges = self.p, self.rng, self.edges
        self.born_in[person] = rng.choice(self.districts)
        edges.append((person, self.born_in[person], R["born_in"], 1.0))
        edges.append((person, rng.choice(self.districts), R["lives_in"], 1.0))
        employer = self.employer_of[person] = rng.choice(self.companies_)
        edges.append((person, employer, R["works_for"], 1.0))
        if rng.random() < p.invest_prob and len(self.companies_) > 1:
            others = [c for c in self.companies_ if c != employer]
            edges.append((person, rng.choice(others), R["invests_in"], self._conf()))
        for city in rng.sample(self.cities, rng.randint(0, min(p.max_visited, len(self.cities)))):
            edges.append((person, city, R["visited"], self._conf()))
        others = [q for q in persons if q != person]
        for friend in rng.sample(others, rng.randint(0, min(p.max_friends, len(others)))):
            edges.append((person, friend, R["friend_of"], self._conf()))

    def relative(self) -> int:
        """An ancestor or a mother: where it was born and lived (no job, friends or derived facts)."""
        person = self.node("person")
        self.born_in[person] = self.rng.choice(self.districts)
        self.edges.append((person, self.born_in[person], R["born_in"], 1.0))
        self.edges.append((person, self.rng.choice(self.districts), R["lives_in"], 1.0))
        return person

    def paternal_line(self, person: int) -> list[int]:
        """The person and 0 to max_ancestors fathers above it."""
        line = [person]
        for _ in range(self.rng.randint(0, self.p.max_ancestors)):
            father = self.relative()
            self.edges.append((line[-1], father, R["father"], 1.0))
            line.append(father)
        return line


@register
class KGDomain(Domain):
    spec = DomainSpec(name="kg", node_kinds=NODE_KINDS, relations=RELATIONS, numeric=(), subtypes=SUBTYPES)
    version = 2

    @dataclass(frozen=True)
    class Params:
        min_countries: int = 4
        max_countries: int = 5
        max_regions_per_country: int = 1
        max_cities_per_region: int = 2
        max_districts_per_city: int = 2
        uniform_geography: bool = True  # every country alike: one draw of each count per world
        min_companies: int = 2
        max_companies: int = 3
        min_persons: int = 4
        max_persons: int = 6
        invest_prob: float = 0.5  # a person invests in a second company
        max_visited: int = 2
        max_friends: int = 2  # friend_of edges out of each person
        max_ancestors: int = 4  # each living person's known paternal line: 0 to this many fathers
        mother_prob: float = 0.5  # each living person has a known mother
        known_derived_prob: float = 0.3  # each derived fact of a living person is stored with this probability
        max_derived_draws: int = 8  # draws of the stored derived facts per world before redrawing it
        hops: int = 8  # radius of the subgraph around the head (the longest rule: 4 + max_ancestors)
        hard_negative_prob: float = 0.75  # share of hard negatives; the rest are easy
        max_nodes: int = 60  # worlds whose subgraph is larger are redrawn
        max_world_tries: int = 50  # worlds drawn per sample before giving up (the base retries)

    # -- content --------------------------------------------------------------
    def _world(self, rng: random.Random) -> World:
        p = self.params
        b = _WorldBuilder(rng, p)
        b.geography()
        b.companies()
        persons = [b.node("person") for _ in range(rng.randint(p.min_persons, p.max_persons))]
        head = persons[0]
        query = rng.choice(("nationality", "works_in_country"))
        for person in persons:
            b.living_facts(person, persons)
        # Every living person's paternal line: the head's is the rule's, the others' make
        # the end of a line no clue by itself. Mothers take the father's shape through the
        # wrong relation; every living person may have one (mothers on the head's line
        # alone would mark that line).
        lines = {person: b.paternal_line(person) for person in persons}
        for child in persons:
            if rng.random() < p.mother_prob:
                b.edges.append((child, b.relative(), R["mother"], 1.0))
        derived: list[Edge] = []
        for person in persons:
            facts = (("nationality", b.born_in[lines[person][-1]]), ("works_in_country", b.employer_of[person]))
            for rel, via in facts:
                if person == head and rel == query:
                    continue  # the query: every edge of r out of the head is removed
                derived.append((person, b.country_of[via], R[rel], 1.0))
        b.kinds[head] = K["head_" + query]
        via = b.born_in[lines[head][-1]] if query == "nationality" else b.employer_of[head]
        return World(b.kinds, b.edges, derived, head, query, b.country_of[via])

    @staticmethod
    def _ball(adj: list[list[int]], extra: list[Edge], center: int, hops: int) -> set[int]:
        """Nodes within `hops` of `center` over `adj` plus the `extra` edges."""
        more: dict[int, list[int]] = {}
        for s, d, _, _ in extra:
            more.setdefault(s, []).append(d)
            more.setdefault(d, []).append(s)
        dist = {center: 0}
        queue = deque([center])
        while queue:
            u = queue.popleft()
            if dist[u] == hops:
                continue
            for v in adj[u] + more.get(u, []):
                if v not in dist:
                    dist[v] = dist[u] + 1
                    queue.append(v)
        return set(dist)

    def _content(
        self, rng: random.Random, want_hard: bool
    ) -> tuple[list[int], list[Edge], str, int, int] | None:
        """One world's ball around the head and both candidate choices (the true
        country, a wrong one of the wanted kind with the same degree vector), or
        None if the world offers no such wrong country. Never looks at the label.

        Which derived facts are stored decides most of a country's degrees, and
        it is cheap to redraw: it is redrawn a few times before the whole world.
        """
        p = self.params
        world = self._world(rng)
        adj: list[list[int]] = [[] for _ in world.kinds]
        for s, d, _, _ in world.edges:
            adj[s].append(d)
            adj[d].append(s)
        for _ in range(p.max_derived_draws):
            stored = [e for e in world.derived if rng.random() < p.known_derived_prob]
            inside = self._ball(adj, stored, world.head, p.hops)
            if len(inside) > p.max_nodes:
                continue
            true_tail = world.answer
            if true_tail not in inside:
                return None  # the rule's path left the ball (`hops` below the rule's length)
            edges = [e for e in world.edges + stored if e[0] in inside and e[1] in inside]
            plain = [(s, d, r) for s, d, r, _ in edges]
            # The degree match first: it is the cheap test that fails most often.
            countries = {c for c in inside if world.kinds[c] == K["country"]}
            degrees = degree_vectors(plain, countries)
            same = sorted(c for c in countries if c != true_tail and degrees[c] == degrees[true_tail])
            if not same:
                continue
            index = _Index(plain)
            if index.derive(world.head, world.query) != {true_tail}:
                return None  # the rule's path left the ball, though its country is inside
            hard_set = index.wrong_tails(world.head, world.query)
            pool = [c for c in same if (c in hard_set) == want_hard]
            if pool:
                return self._shuffled(rng, world, inside, edges, true_tail, rng.choice(pool))
        return None

    @staticmethod
    def _shuffled(
        rng: random.Random, world: World, inside: set[int], edges: list[Edge], true_tail: int, negative: int
    ) -> tuple[list[int], list[Edge], str, int, int]:
        """Renumber the ball's nodes at random: position in the node list carries nothing."""
        order = sorted(inside)
        rng.shuffle(order)
        new_id = {old: i for i, old in enumerate(order)}
        kinds = [world.kinds[old] for old in order]
        sub = [(new_id[s], new_id[d], r, w) for s, d, r, w in edges]
        rng.shuffle(sub)
        return kinds, sub, world.query, new_id[true_tail], new_id[negative]

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
        kinds, edges, query, true_tail, negative = content
        # The arrangement: which country is the candidate.
        kinds[true_tail if label == 1 else negative] = K["candidate"]
        if label == 1:
            subtype = S[f"true_{query}"]
        else:
            subtype = S["hard_negative"] if want_hard else S["easy_negative"]
        return Graph(node_kind=kinds, x_num=[[] for _ in kinds], edges=edges, y=label, subtype=subtype)
