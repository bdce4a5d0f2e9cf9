"""The planning domain: is this robot plan valid?

One sample is a small plan graph:

    robot ──has_capability──> capability <──needs_capability── step
    other_robot ──has_capability──> capability   (a second agent that does not run the plan)
    step ──next──> step                     (the plan order, a chain)
    step ──requires──> step                 (a prerequisite; must come earlier)
    goal ──decomposes_to──> subgoal ──decomposes_to──> subgoal
    step ──achieves──> leaf subgoal         (a leaf = a subgoal without children)
    dropped_step ──achieves──> leaf subgoal (an action considered for the plan and dropped:
                                             position 0, off the `next` chain, no requires/needs)
    navigate step / robots / objects ──at──> location,
    pick/place/inspect and dropped steps ──targets──> object   (decorative: no bearing on the label)

Node input: the kind id (four step kinds, one per action, plus the dropped step)
and one numeric column, `position`: a plan step's place in the plan as a raw
integer 1..n (0 for every other node). DOMAINS.md: dividing it by the plan
length makes order violations unlearnable on long plans.

Label (see `violations`): the plan is valid iff
  1. every `requires` edge points to a plan step with a smaller position,
  2. every capability a plan step needs is held by the robot (kind `robot`;
     what the other robot holds does not count),
  3. every leaf subgoal is achieved by a step on the plan (an `achieves` edge
     from a dropped step does not count).

Generation draws a valid plan first, without looking at the label, and redraws
it until it can take each of the three corruptions. A negative then gets
exactly one corruption, and each keeps every node's in/out degree per relation
exactly (so no degree or count statistic tells the classes apart), every edge
strength and the multiset of positions, and creates no duplicate edge:
  - order_violation: swap the positions of a step and one of its prerequisites,
    both interior (neither first nor last), so rebuilding the `next` chain from
    the new positions leaves every step's `next` degrees as they were; and never
    so that a `requires` edge runs along a `next` edge (same source and target,
    which no valid plan has);
  - missing_capability: a double edge swap — robot→c (c needed, held only by
    the robot) and other_robot→d (d held only by the other robot) become
    robot→d and other_robot→c;
  - unachieved_leaf: a double edge swap — a plan step's `achieves` edge to a
    leaf no other plan step achieves, and a dropped step's `achieves` edge to
    another leaf, trade targets, so the first leaf is left to the dropped step.
The corruption kind is the sample's subtype.

Edge strength is a confidence in [0, 1]: 1.0 on the plan's structural edges,
a drawn perception confidence on the decorative at/targets edges.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
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
    "other_robot",
    "dropped_step",
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
# The steps on the plan (one kind per action); a dropped step is not one of them.
STEP_KINDS = (K["step_navigate"], K["step_pick"], K["step_place"], K["step_inspect"])
# Steps that act on an object (a decorative `targets` edge); navigate only moves.
OBJECT_STEP_KINDS = (K["step_pick"], K["step_place"], K["step_inspect"])
# How a capability beyond the two every plan has is held: by the robot, by the
# other robot, by both, by neither.
CAPABILITY_ROLES = ("robot", "other", "shared", "unheld")
# Content draws until one can take all three corruptions (about 1 in 10 cannot: short
# plans whose only usable prerequisite pair would end up running along `next`).
MAX_REDRAWS = 100


@register
class Planning(Domain):
    spec = DomainSpec(
        name="planning",
        node_kinds=NODE_KINDS,
        relations=RELATIONS,
        numeric=("position",),
        subtypes=SUBTYPES,
    )
    # 3: degree-preserving corruptions, the other robot, dropped steps (2: drafts of it, cached by some).
    version = 3

    @dataclass(frozen=True)
    class Params:
        steps: tuple[int, int] = (5, 10)  # plan length, inclusive range
        locations: tuple[int, int] = (2, 3)
        objects: tuple[int, int] = (2, 3)
        capabilities: tuple[int, int] = (3, 5)  # one needed and held only by the robot, one only the other robot's
        top_subgoals: tuple[int, int] = (2, 3)  # children of the goal
        extra_subgoals: tuple[int, int] = (0, 2)  # attached below existing subgoals
        requires_prob: float = 0.6  # chance that a step (after the first) has a prerequisite
        second_requires_prob: float = 0.25  # chance of a second prerequisite
        extra_achieves: tuple[int, int] = (0, 2)  # plan-step achieves edges beyond one per leaf
        extra_needs: tuple[int, int] = (0, 2)  # needs_capability edges beyond one per needed capability
        dropped_steps: tuple[int, int] = (1, 2)  # steps considered and dropped from the plan
        dropped_achieves: tuple[int, int] = (1, 2)  # leaves each dropped step achieves
        decorative_confidence: tuple[float, ...] = (0.5, 0.625, 0.75, 0.875, 1.0)
        # relative frequency of order_violation, missing_capability, unachieved_leaf among negatives
        corruption_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __init__(self, params: "Planning.Params | None" = None):
        super().__init__(params)
        _check_params(self.params)

    # ------------------------------------------------------------------
    def sample(self, rng: random.Random, label: int) -> Graph | None:
        # Which plans can take every corruption is decided before the label is
        # looked at, so both classes are drawn from the same plans.
        for _ in range(MAX_REDRAWS):
            plan = self._valid_plan(rng)
            options = (_order_swaps(plan), _capability_swaps(plan), _leaf_swaps(plan))
            if all(options):
                break
        else:
            return None
        subtype = 0
        if label == 0:
            kind = rng.choices(range(3), weights=self.params.corruption_weights)[0]
            _CORRUPT[kind](plan, rng.choice(options[kind]))
            subtype = kind + 1
        g = plan.to_graph(rng, label, subtype)
        return g if label_of(g) == label else None  # never happens; a guard, not a filter

    def _valid_plan(self, rng: random.Random) -> "_Plan":
        """A valid plan; everything here is drawn without the label."""
        p = self.params
        plan = _Plan()
        plan.robot = plan.add(K["robot"])
        plan.other = plan.add(K["other_robot"])
        locations = [plan.add(K["location"]) for _ in range(rng.randint(*p.locations))]
        objects = [plan.add(K["object"]) for _ in range(rng.randint(*p.objects))]
        _draw_steps(plan, rng, p)
        _draw_goals(plan, rng, p)
        _draw_achievement(plan, rng, p)
        _draw_capabilities(plan, rng, p)
        _draw_decor(plan, rng, p, locations, objects)
        return plan


def _check_params(p: "Planning.Params") -> None:
    for name in ("steps", "locations", "objects", "capabilities", "top_subgoals", "extra_subgoals",
                 "extra_achieves", "extra_needs", "dropped_steps", "dropped_achieves"):
        lo, hi = getattr(p, name)
        if not 0 <= lo <= hi:
            raise ValueError(f"planning parameter {name} must be a range lo <= hi (got {(lo, hi)})")
    if p.steps[0] < 5:
        raise ValueError(
            "planning parameter steps must allow at least 5 steps"
            " (an order violation swaps two interior steps that are not neighbours)"
        )
    if p.capabilities[0] < 2:
        raise ValueError(
            "planning parameter capabilities must be >= 2 (one only the robot holds, one only the other robot)"
        )
    if p.top_subgoals[0] < 2:
        raise ValueError("planning parameter top_subgoals must be >= 2 (a leaf needs another leaf)")
    if p.dropped_steps[0] < 1 or p.dropped_achieves[0] < 1:
        raise ValueError(
            "planning parameters dropped_steps and dropped_achieves must be >= 1 (an unachieved leaf needs one)"
        )
    if p.locations[0] < 1 or p.objects[0] < 1:
        raise ValueError("planning parameters locations and objects must be >= 1")
    if not (0.0 <= p.requires_prob <= 1.0 and 0.0 <= p.second_requires_prob <= 1.0):
        raise ValueError("planning parameters requires_prob and second_requires_prob must be in [0, 1]")
    if not p.decorative_confidence or not all(0.0 <= c <= 1.0 for c in p.decorative_confidence):
        raise ValueError("planning parameter decorative_confidence must hold values in [0, 1]")
    if len(p.corruption_weights) != 3 or min(p.corruption_weights) < 0 or sum(p.corruption_weights) <= 0:
        raise ValueError("planning parameter corruption_weights must be 3 non-negative weights, not all 0")


# -- drawing a valid plan (in role terms) ---------------------------------------
def _draw_steps(plan: "_Plan", rng: random.Random, p: "Planning.Params") -> None:
    """The plan steps in order, with prerequisites that each point to an earlier step."""
    n = rng.randint(*p.steps)
    steps = [plan.add(rng.choice(STEP_KINDS)) for _ in range(n)]
    plan.steps = steps
    for i, s in enumerate(steps):
        plan.pos[s] = i + 1
    requires: set[tuple[int, int]] = set()
    for i in range(1, n):
        if rng.random() < p.requires_prob:
            requires.add((steps[i], steps[rng.randrange(i)]))
            if i >= 2 and rng.random() < p.second_requires_prob:
                requires.add((steps[i], steps[rng.randrange(i)]))
    plan.requires = sorted(requires)
    if _order_swaps(plan):
        return
    # Every plan should take an order violation: add a prerequisite between two
    # interior steps that are not neighbours (0-based 1 <= j <= i - 2 <= n - 4),
    # one whose swap is itself legal.
    for _ in range(10):
        i = rng.randrange(3, n - 1)
        edge = (steps[i], steps[rng.randrange(1, i - 1)])
        if edge not in requires and _order_swaps(plan, extra=edge):
            plan.requires = sorted(requires | {edge})
            return


def _draw_goals(plan: "_Plan", rng: random.Random, p: "Planning.Params") -> None:
    goal = plan.add(K["goal"])
    parents: set[int] = set()
    subgoals: list[int] = []
    for _ in range(rng.randint(*p.top_subgoals)):
        sg = plan.add(K["subgoal"])
        subgoals.append(sg)
        plan.decomposes.append((goal, sg))
    for _ in range(rng.randint(*p.extra_subgoals)):
        parent = rng.choice(subgoals)
        sg = plan.add(K["subgoal"])
        subgoals.append(sg)
        parents.add(parent)
        plan.decomposes.append((parent, sg))
    plan.leaves = [sg for sg in subgoals if sg not in parents]


def _draw_achievement(plan: "_Plan", rng: random.Random, p: "Planning.Params") -> None:
    """Plan steps achieve every leaf, one of them (`once`) by exactly one step;
    dropped steps achieve some leaves too.

    So that an unachieved leaf can almost always be swapped in, `once` gets a
    step that misses some other leaf, and the first dropped step achieves such
    a leaf and not `once`.
    """
    leaves = plan.leaves
    once = rng.choice(leaves)
    spare = [leaf for leaf in leaves if leaf != once]
    achieves: set[tuple[int, int]] = {(rng.choice(plan.steps), leaf) for leaf in spare}
    for _ in range(rng.randint(*p.extra_achieves)):
        _add_new(achieves, lambda: (rng.choice(plan.steps), rng.choice(spare)))
    done = Counter(a for a, _ in achieves)  # spare leaves each step achieves
    missing = [s for s in plan.steps if done[s] < len(spare)]
    s = rng.choice(missing or plan.steps)
    achieves.add((s, once))
    partners = [leaf for leaf in spare if (s, leaf) not in achieves]
    for i in range(rng.randint(*p.dropped_steps)):
        t = plan.add(K["dropped_step"])
        plan.dropped.append(t)
        k = min(rng.randint(*p.dropped_achieves), len(leaves))
        if i == 0 and partners:
            first = rng.choice(partners)
            others = [leaf for leaf in spare if leaf != first]
            targets = [first] + rng.sample(others, min(k - 1, len(others)))
        else:
            targets = rng.sample(leaves, k)
        achieves.update((t, leaf) for leaf in targets)
    plan.achieves = sorted(achieves)


def _draw_capabilities(plan: "_Plan", rng: random.Random, p: "Planning.Params") -> None:
    """Needed ⊆ held by the robot; one needed capability only the robot holds, one
    capability only the other robot holds (the pair a missing capability swaps)."""
    n = rng.randint(*p.capabilities)
    roles = ["robot", "other"] + [rng.choice(CAPABILITY_ROLES) for _ in range(n - 2)]
    caps = [plan.add(K["capability"]) for _ in range(n)]
    plan.caps = caps
    for c, role in zip(caps, roles):
        if role in ("robot", "shared"):
            plan.has_cap.append((plan.robot, c))
        if role in ("other", "shared"):
            plan.has_cap.append((plan.other, c))
    robot_held = [c for c, role in zip(caps, roles) if role in ("robot", "shared")]
    rest = robot_held[1:]
    needed = [robot_held[0]] + rng.sample(rest, rng.randint(0, len(rest)))
    needs: set[tuple[int, int]] = {(rng.choice(plan.steps), c) for c in needed}
    for _ in range(rng.randint(*p.extra_needs)):
        _add_new(needs, lambda: (rng.choice(plan.steps), rng.choice(needed)))
    plan.needs = sorted(needs)


def _draw_decor(plan: "_Plan", rng: random.Random, p: "Planning.Params", locations: list[int],
                objects: list[int]) -> None:
    """Where things are and what each step acts on, with perception confidences."""
    conf = p.decorative_confidence
    for agent in (plan.robot, plan.other):
        plan.decor.append((agent, rng.choice(locations), R["at"], rng.choice(conf)))
    for o in objects:
        plan.decor.append((o, rng.choice(locations), R["at"], rng.choice(conf)))
    for s in plan.steps + plan.dropped:  # a navigate step goes somewhere; the others act on an object
        if plan.kind[s] == K["step_navigate"]:
            plan.decor.append((s, rng.choice(locations), R["at"], rng.choice(conf)))
        else:
            plan.decor.append((s, rng.choice(objects), R["targets"], rng.choice(conf)))


def _add_new(edges: set[tuple[int, int]], draw: Any, tries: int = 10) -> None:
    """Add one drawn edge not yet in `edges` (none if `tries` draws all repeat one)."""
    for _ in range(tries):
        edge = draw()
        if edge not in edges:
            edges.add(edge)
            return


def _interior(plan: "_Plan", step: int) -> bool:
    """Neither first nor last: a step with a `next` edge in and out."""
    return 1 < plan.pos[step] < len(plan.steps)


class _Plan:
    """A plan under construction, in role terms (node ids before shuffling)."""

    def __init__(self) -> None:
        self.kind: list[int] = []
        self.pos: dict[int, int] = {}
        self.steps: list[int] = []  # on the plan, in drawn order
        self.dropped: list[int] = []
        self.requires: list[tuple[int, int]] = []
        self.decomposes: list[tuple[int, int]] = []
        self.leaves: list[int] = []
        self.achieves: list[tuple[int, int]] = []  # from plan and dropped steps
        self.needs: list[tuple[int, int]] = []
        self.robot = -1
        self.other = -1
        self.has_cap: list[tuple[int, int]] = []  # (robot or other robot, capability)
        self.caps: list[int] = []
        self.decor: list[tuple[int, int, int, float]] = []

    def add(self, kind: int) -> int:
        self.kind.append(kind)
        return len(self.kind) - 1

    def edges(self) -> list[tuple[int, int, int, float]]:
        """Every edge (src, dst, relation, strength), the `next` chain rebuilt from the positions."""
        order = sorted(self.steps, key=self.pos.__getitem__)
        out: list[tuple[int, int, int, float]] = [(a, b, R["next"], 1.0) for a, b in zip(order, order[1:])]
        out += [(a, b, R["requires"], 1.0) for a, b in self.requires]
        out += [(a, b, R["decomposes_to"], 1.0) for a, b in self.decomposes]
        out += [(a, b, R["achieves"], 1.0) for a, b in self.achieves]
        out += [(a, b, R["needs_capability"], 1.0) for a, b in self.needs]
        out += [(a, c, R["has_capability"], 1.0) for a, c in self.has_cap]
        return out + self.decor

    def to_graph(self, rng: random.Random, label: int, subtype: int) -> Graph:
        edges = self.edges()
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


# -- corruptions: each breaks exactly one rule and keeps every node's degrees ----
def _order_swaps(plan: _Plan, extra: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """Prerequisite edges (a requires b) whose steps can trade positions unseen by degrees.

    Both must be interior, so the rebuilt `next` chain gives every step the
    `next` degrees it had. And no `requires` edge may then run along a `next`
    edge (u requires the very next step): in a valid plan `next` runs forward
    and `requires` back, so a (src, dst) pair under both relations would mark
    the negative. With `extra`: only that edge, as if it were added.
    """
    requires = plan.requires + [extra] if extra else plan.requires
    touching: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for u, v in requires:
        touching[u].append((u, v))
        touching[v].append((u, v))
    pos = plan.pos
    out = []
    for a, b in [extra] if extra else requires:
        if not (_interior(plan, a) and _interior(plan, b)):
            continue
        # Only edges at a or b move; every other one still points back.
        moved = {a: pos[b], b: pos[a]}
        if not any(moved.get(v, pos[v]) == moved.get(u, pos[u]) + 1 for u, v in touching[a] + touching[b]):
            out.append((a, b))
    return out


def _capability_swaps(plan: _Plan) -> list[tuple[int, int]]:
    """(c, d): c needed and held only by the robot, d held only by the other robot."""
    holders: dict[int, set[int]] = defaultdict(set)
    for agent, c in plan.has_cap:
        holders[c].add(agent)
    needed = sorted({c for _, c in plan.needs})
    lose = [c for c in needed if holders[c] == {plan.robot}]
    gain = [d for d in plan.caps if holders[d] == {plan.other}]
    return [(c, d) for c in lose for d in gain]


def _leaf_swaps(plan: _Plan) -> list[tuple[int, int, int, int]]:
    """(s, leaf, t, other): s is the only plan step achieving leaf, dropped step t
    achieves another leaf, and neither t→leaf nor s→other exists yet."""
    edges = set(plan.achieves)
    on_plan: dict[int, list[int]] = defaultdict(list)
    for s, leaf in plan.achieves:
        if s in plan.pos:
            on_plan[leaf].append(s)
    dropped = [(t, leaf) for t, leaf in plan.achieves if t not in plan.pos]
    out = []
    for leaf in plan.leaves:
        if len(on_plan[leaf]) != 1:
            continue
        (s,) = on_plan[leaf]
        out += [(s, leaf, t, other) for t, other in dropped
                if other != leaf and (t, leaf) not in edges and (s, other) not in edges]
    return out


def _order_violation(plan: _Plan, swap: tuple[int, int]) -> None:
    a, b = swap  # a requires b, so pos[b] < pos[a]; both interior, so `next` degrees stay
    plan.pos[a], plan.pos[b] = plan.pos[b], plan.pos[a]


def _missing_capability(plan: _Plan, swap: tuple[int, int]) -> None:
    c, d = swap
    trade = {(plan.robot, c): (plan.robot, d), (plan.other, d): (plan.other, c)}
    plan.has_cap = [trade.get(e, e) for e in plan.has_cap]


def _unachieved_leaf(plan: _Plan, swap: tuple[int, int, int, int]) -> None:
    s, leaf, t, other = swap
    trade = {(s, leaf): (s, other), (t, other): (t, leaf)}
    plan.achieves = [trade.get(e, e) for e in plan.achieves]


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

    Names: "order_violation" (a `requires` edge points to a step that is not an
    earlier plan step), "missing_capability" (a capability a plan step needs
    has no `has_capability` edge from the robot), "unachieved_leaf" (a subgoal
    with no children and no `achieves` edge from a plan step).
    """
    kinds, pos, edges = _as_lists(g)
    on_plan = [k in STEP_KINDS for k in kinds]
    found: set[str] = set()
    held: set[int] = set()
    needed: set[int] = set()
    parents: set[int] = set()
    achieved: set[int] = set()
    for s, d, r in edges:
        if r == R["requires"] and not (on_plan[d] and pos[d] < pos[s]):
            found.add("order_violation")
        elif r == R["has_capability"] and kinds[s] == K["robot"]:
            held.add(d)
        elif r == R["needs_capability"] and on_plan[s]:
            needed.add(d)
        elif r == R["decomposes_to"]:
            parents.add(s)
        elif r == R["achieves"] and on_plan[s]:
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
    """Plan step ids in plan order, following the `next` chain (for checks).

    Dropped steps are off the chain and not listed. Empty when the chain does
    not start at exactly one plan step.
    """
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
