"""The planning domain: is this robot plan valid?

One sample is a small plan graph:

    robot ──has_capability──> capability <──needs_capability── step
    step ──next──> step                     (the plan order, a chain)
    step ──requires──> step                 (a prerequisite; must come earlier)
    goal ──decomposes_to──> subgoal ──decomposes_to──> subgoal
    step ──achieves──> leaf subgoal         (a leaf = a subgoal without children)
    navigate step ──at──> location, object ──at──> location, robot ──at──> location,
    pick/place/inspect step ──targets──> object   (decorative: no bearing on the label)

Node input: the kind id (four step kinds, one per action) and one numeric
column, `position`: a step's place in the plan as a raw integer 1..n (0 for
every other node). DOMAINS.md: dividing it by the plan length makes order
violations unlearnable on long plans.

Label (see `violations`): the plan is valid iff
  1. every `requires` edge points to a step with a smaller position,
  2. every capability that some step needs has a `has_capability` edge,
  3. every leaf subgoal has at least one incoming `achieves` edge.

Generation draws a valid plan first (without looking at the label); a negative
then gets exactly one corruption that keeps every count — node kinds, edge
types, strengths, the multiset of positions:
  - order_violation: swap the positions of a step and one of its prerequisites
    (the `next` chain is rebuilt from the new positions);
  - missing_capability: move a `has_capability` edge from a needed capability
    to an unheld one (at least one capability is unheld in every plan);
  - unachieved_leaf: re-point the only `achieves` edge of a leaf to another leaf.
The corruption kind is the sample's subtype.

Edge strength is a confidence in [0, 1]: 1.0 on the plan's structural edges,
a drawn perception confidence on the decorative at/targets edges.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from nsm.data.base import Domain, DomainSpec, register
from nsm.data.graphs import Graph

NODE_KINDS = (
    "robot",
    "location",
    "object",
    "goal",
    "subgoal",
    "capability",
    "step_navigate",
    "step_pick",
    "step_place",
    "step_inspect",
)
RELATIONS = (
    "next",
    "requires",
    "decomposes_to",
    "achieves",
    "needs_capability",
    "has_capability",
    "at",
    "targets",
)
SUBTYPES = ("valid", "order_violation", "missing_capability", "unachieved_leaf")
CORRUPTIONS = SUBTYPES[1:]

K = {name: i for i, name in enumerate(NODE_KINDS)}
R = {name: i for i, name in enumerate(RELATIONS)}
STEP_KINDS = tuple(K[k] for k in NODE_KINDS if k.startswith("step_"))
# Steps that act on an object (a decorative `targets` edge); navigate only moves.
OBJECT_STEP_KINDS = (K["step_pick"], K["step_place"], K["step_inspect"])


@register
class Planning(Domain):
    spec = DomainSpec(
        name="planning",
        node_kinds=NODE_KINDS,
        relations=RELATIONS,
        numeric=("position",),
        subtypes=SUBTYPES,
    )
    version = 1

    @dataclass(frozen=True)
    class Params:
        steps: tuple[int, int] = (5, 10)  # plan length, inclusive range
        locations: tuple[int, int] = (2, 3)
        objects: tuple[int, int] = (2, 3)
        capabilities: tuple[int, int] = (3, 5)  # at least one is always unheld
        top_subgoals: tuple[int, int] = (2, 3)  # children of the goal
        extra_subgoals: tuple[int, int] = (0, 2)  # attached below existing subgoals
        requires_prob: float = 0.6  # chance that a step (after the first) has a prerequisite
        second_requires_prob: float = 0.25  # chance of a second prerequisite
        extra_achieves: tuple[int, int] = (0, 2)  # achieves edges beyond one per leaf
        extra_needs: tuple[int, int] = (0, 2)  # needs_capability edges beyond one per needed capability
        decorative_confidence: tuple[float, ...] = (0.5, 0.625, 0.75, 0.875, 1.0)
        # relative frequency of order_violation, missing_capability, unachieved_leaf among negatives
        corruption_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __init__(self, params: "Planning.Params | None" = None):
        super().__init__(params)
        p = self.params
        for name in ("steps", "locations", "objects", "capabilities", "top_subgoals", "extra_subgoals",
                     "extra_achieves", "extra_needs"):
            lo, hi = getattr(p, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"planning parameter {name} must be a range lo <= hi (got {(lo, hi)})")
        if p.steps[0] < 2:
            raise ValueError("planning parameter steps must allow at least 2 steps (a prerequisite needs two)")
        if p.capabilities[0] < 2:
            raise ValueError("planning parameter capabilities must be >= 2 (one held and needed, one unheld)")
        if p.top_subgoals[0] < 2:
            raise ValueError("planning parameter top_subgoals must be >= 2 (a leaf needs another leaf)")
        if p.locations[0] < 1 or p.objects[0] < 1:
            raise ValueError("planning parameters locations and objects must be >= 1")
        if not (0.0 <= p.requires_prob <= 1.0 and 0.0 <= p.second_requires_prob <= 1.0):
            raise ValueError("planning parameters requires_prob and second_requires_prob must be in [0, 1]")
        if not p.decorative_confidence or not all(0.0 <= c <= 1.0 for c in p.decorative_confidence):
            raise ValueError("planning parameter decorative_confidence must hold values in [0, 1]")
        if len(p.corruption_weights) != 3 or min(p.corruption_weights) < 0 or sum(p.corruption_weights) <= 0:
            raise ValueError("planning parameter corruption_weights must be 3 non-negative weights, not all 0")

    # ------------------------------------------------------------------
    def sample(self, rng: random.Random, label: int) -> Graph | None:
        plan = self._valid_plan(rng)
        subtype = 0
        if label == 0:
            kind = rng.choices(range(3), weights=self.params.corruption_weights)[0]
            _CORRUPT[kind](plan, rng)
            subtype = kind + 1
        g = plan.to_graph(rng, label, subtype)
        return g if label_of(g) == label else None  # never happens; a guard, not a filter

    def _valid_plan(self, rng: random.Random) -> "_Plan":
        """A valid plan; everything here is drawn without the label."""
        p = self.params
        plan = _Plan()
        robot = plan.add(K["robot"])
        locations = [plan.add(K["location"]) for _ in range(rng.randint(*p.locations))]
        objects = [plan.add(K["object"]) for _ in range(rng.randint(*p.objects))]
        n = rng.randint(*p.steps)
        steps = [plan.add(rng.choice(STEP_KINDS)) for _ in range(n)]
        plan.steps = steps
        for i, s in enumerate(steps):
            plan.pos[s] = i + 1

        # Prerequisites: each points to an earlier step.
        requires: set[tuple[int, int]] = set()
        for i in range(1, n):
            if rng.random() < p.requires_prob:
                requires.add((steps[i], steps[rng.randrange(i)]))
                if i >= 2 and rng.random() < p.second_requires_prob:
                    requires.add((steps[i], steps[rng.randrange(i)]))
        if not requires:  # every plan can take an order violation
            i = rng.randrange(1, n)
            requires.add((steps[i], steps[rng.randrange(i)]))
        plan.requires = sorted(requires)

        # Goal hierarchy.
        goal = plan.add(K["goal"])
        children: dict[int, list[int]] = {}
        subgoals: list[int] = []
        for _ in range(rng.randint(*p.top_subgoals)):
            sg = plan.add(K["subgoal"])
            subgoals.append(sg)
            plan.decomposes.append((goal, sg))
        for _ in range(rng.randint(*p.extra_subgoals)):
            parent = rng.choice(subgoals)
            sg = plan.add(K["subgoal"])
            subgoals.append(sg)
            children.setdefault(parent, []).append(sg)
            plan.decomposes.append((parent, sg))
        leaves = [sg for sg in subgoals if sg not in children]
        plan.leaves = leaves

        # Achievement: one step per leaf, plus extras on a strict subset of the
        # leaves, so that some leaf is achieved exactly once.
        achieves: set[tuple[int, int]] = {(rng.choice(steps), leaf) for leaf in leaves}
        spare = rng.sample(leaves, len(leaves) - 1)
        for _ in range(rng.randint(*p.extra_achieves)):
            for _try in range(10):
                edge = (rng.choice(steps), rng.choice(spare))
                if edge not in achieves:
                    achieves.add(edge)
                    break
        plan.achieves = sorted(achieves)

        # Capabilities: needed ⊆ held ⊊ all.
        caps = [plan.add(K["capability"]) for _ in range(rng.randint(*p.capabilities))]
        held = rng.sample(caps, rng.randint(1, len(caps) - 1))
        needed = rng.sample(held, rng.randint(1, len(held)))
        needs: set[tuple[int, int]] = {(rng.choice(steps), c) for c in needed}
        for _ in range(rng.randint(*p.extra_needs)):
            for _try in range(10):
                edge = (rng.choice(steps), rng.choice(needed))
                if edge not in needs:
                    needs.add(edge)
                    break
        plan.needs = sorted(needs)
        plan.robot = robot
        plan.held = sorted(held)
        plan.caps = caps

        # Decorative facts, with perception confidences.
        conf = p.decorative_confidence
        plan.decor.append((robot, rng.choice(locations), R["at"], rng.choice(conf)))
        for o in objects:
            plan.decor.append((o, rng.choice(locations), R["at"], rng.choice(conf)))
        for s in steps:  # a navigate step goes somewhere; the others act on an object
            if plan.kind[s] in OBJECT_STEP_KINDS:
                plan.decor.append((s, rng.choice(objects), R["targets"], rng.choice(conf)))
            else:
                plan.decor.append((s, rng.choice(locations), R["at"], rng.choice(conf)))
        return plan


class _Plan:
    """A plan under construction, in role terms (node ids before shuffling)."""

    def __init__(self) -> None:
        self.kind: list[int] = []
        self.pos: dict[int, int] = {}
        self.steps: list[int] = []
        self.requires: list[tuple[int, int]] = []
        self.decomposes: list[tuple[int, int]] = []
        self.leaves: list[int] = []
        self.achieves: list[tuple[int, int]] = []
        self.needs: list[tuple[int, int]] = []
        self.robot = -1
        self.held: list[int] = []
        self.caps: list[int] = []
        self.decor: list[tuple[int, int, int, float]] = []

    def add(self, kind: int) -> int:
        self.kind.append(kind)
        return len(self.kind) - 1

    def to_graph(self, rng: random.Random, label: int, subtype: int) -> Graph:
        order = sorted(self.steps, key=self.pos.__getitem__)
        edges: list[tuple[int, int, int, float]] = [(a, b, R["next"], 1.0) for a, b in zip(order, order[1:])]
        edges += [(a, b, R["requires"], 1.0) for a, b in self.requires]
        edges += [(a, b, R["decomposes_to"], 1.0) for a, b in self.decomposes]
        edges += [(a, b, R["achieves"], 1.0) for a, b in self.achieves]
        edges += [(a, b, R["needs_capability"], 1.0) for a, b in self.needs]
        edges += [(self.robot, c, R["has_capability"], 1.0) for c in self.held]
        edges += self.decor
        # Shuffle node ids (and the edge order): list position carries nothing.
        n = len(self.kind)
        new_id = list(range(n))
        rng.shuffle(new_id)
        node_kind = [0] * n
        x_num = [[0.0] for _ in range(n)]
        for old in range(n):
            node_kind[new_id[old]] = self.kind[old]
            x_num[new_id[old]][0] = float(self.pos.get(old, 0))
        out = [(new_id[a], new_id[b], r, float(w)) for a, b, r, w in edges]
        rng.shuffle(out)
        return Graph(node_kind=node_kind, x_num=x_num, edges=out, y=label, subtype=subtype)


# -- corruptions (each keeps every count and breaks exactly one rule) -----------
def _order_violation(plan: _Plan, rng: random.Random) -> None:
    a, b = rng.choice(plan.requires)  # a requires b, so pos[b] < pos[a]
    plan.pos[a], plan.pos[b] = plan.pos[b], plan.pos[a]


def _missing_capability(plan: _Plan, rng: random.Random) -> None:
    needed = sorted({c for _, c in plan.needs})
    unheld = [c for c in plan.caps if c not in plan.held]
    lost = rng.choice(needed)
    gained = rng.choice(unheld)
    plan.held = sorted([c for c in plan.held if c != lost] + [gained])


def _unachieved_leaf(plan: _Plan, rng: random.Random) -> None:
    count = {leaf: 0 for leaf in plan.leaves}
    for _, leaf in plan.achieves:
        count[leaf] += 1
    once = [leaf for leaf in plan.leaves if count[leaf] == 1]
    leaf = rng.choice(once)
    (i,) = [k for k, (_, t) in enumerate(plan.achieves) if t == leaf]
    step = plan.achieves[i][0]
    targets = [t for t in plan.leaves if t != leaf and (step, t) not in plan.achieves]
    if not targets:  # the step already achieves every other leaf: a duplicate edge keeps the counts
        targets = [t for t in plan.leaves if t != leaf]
    plan.achieves[i] = (step, rng.choice(targets))


_CORRUPT = (_order_violation, _missing_capability, _unachieved_leaf)


# -- the oracle ---------------------------------------------------------------
def _as_lists(g: Any) -> tuple[list[int], list[float], list[tuple[int, int, int]]]:
    """(node kinds, positions, edges (src, dst, rel)) of a Graph or a PyG Data / one-graph batch."""
    if isinstance(g, Graph):
        return list(g.node_kind), [row[0] for row in g.x_num], [(s, d, r) for s, d, r, _ in g.edges]
    kinds = g.node_kind.tolist()
    pos = g.x_num[:, 0].tolist()
    src, dst = g.edge_index.tolist()
    return kinds, pos, list(zip(src, dst, g.edge_type.tolist()))


def violations(g: Any) -> set[str]:
    """Which validity rules the plan breaks, from the stored graph alone (empty = valid).

    Names: "order_violation" (a `requires` edge points to a step that is not
    earlier), "missing_capability" (a needed capability without `has_capability`),
    "unachieved_leaf" (a subgoal with no children and no `achieves` edge).
    """
    kinds, pos, edges = _as_lists(g)
    found: set[str] = set()
    held: set[int] = set()
    needed: set[int] = set()
    parents: set[int] = set()
    achieved: set[int] = set()
    for s, d, r in edges:
        if r == R["requires"] and not pos[d] < pos[s]:
            found.add("order_violation")
        elif r == R["has_capability"] and kinds[s] == K["robot"]:
            held.add(d)
        elif r == R["needs_capability"]:
            needed.add(d)
        elif r == R["decomposes_to"]:
            parents.add(s)
        elif r == R["achieves"]:
            achieved.add(d)
    if needed - held:
        found.add("missing_capability")
    leaves = {v for v, k in enumerate(kinds) if k == K["subgoal"] and v not in parents}
    if leaves - achieved:
        found.add("unachieved_leaf")
    return found


def label_of(g: Any) -> int:
    """1 if the plan is valid, else 0 — recomputed from the graph's structure only."""
    return 0 if violations(g) else 1


def step_order(g: Any) -> list[int]:
    """Step node ids in plan order, following the `next` chain (for checks)."""
    kinds, _, edges = _as_lists(g)
    succ = {s: d for s, d, r in edges if r == R["next"]}
    has_pred = {d for s, d, r in edges if r == R["next"]}
    steps = [v for v, k in enumerate(kinds) if k in STEP_KINDS]
    heads = [v for v in steps if v not in has_pred]
    if len(heads) != 1:
        return []
    out = [heads[0]]
    while out[-1] in succ and len(out) <= len(steps):
        out.append(succ[out[-1]])
    return out

