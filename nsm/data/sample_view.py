"""One sample graph of a domain, drawn as text (the notebook's "show sample").

`sample_view(domain, index, seed)` draws sample `index` exactly as the dataset
generator does (the same per-index seeds and label, so with the run's seed it is
the dataset's graph `index` unless the generator skipped a duplicate there), and
`render_sample` lays it out in a given width: nodes grouped by kind with their
ids, edges grouped by relation with their strengths, the label and subtype, and,
when a checkpoint was traced (nsm.training.sample_trace), which nodes each pooling
level keeps and the model's prediction. Plain lines: the TUI styles them, the
CLI prints them.

This module imports no torch itself, but the nsm.data package it lives in does
(its generators build tensors): the TUI imports it inside its drawing worker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

# What the label of each domain means (class 0, class 1).
LABEL_NAMES = {
    "planning": ("invalid plan", "valid plan"),
    "causal": ("not beneficial", "beneficial"),
    "kg": ("triple does not hold", "triple holds"),
}
MAX_ATTEMPTS = 1000  # as nsm.data.base.generate_graphs


@dataclass(frozen=True)
class SampleNode:
    id: int
    kind: str
    numeric: tuple[tuple[str, float], ...] = ()  # (column name, value), only the non-zero ones


@dataclass(frozen=True)
class SampleEdge:
    src: int
    dst: int
    relation: str
    strength: float


@dataclass(frozen=True)
class ModelTrace:
    """What a trained model did with the sample."""

    checkpoint: str
    epoch: int | None
    levels: tuple[tuple[int, ...], ...]  # node ids (of the sample) alive at each level, level 1 first
    probabilities: tuple[float, ...]  # per class
    predicted: int
    model: str = "nsm"  # the checkpoint's MODEL: a flat model has no pooling levels


@dataclass(frozen=True)
class SampleView:
    domain: str
    index: int
    seed: int
    label: int
    subtype: str
    nodes: tuple[SampleNode, ...]
    edges: tuple[SampleEdge, ...]
    kinds: tuple[str, ...]  # the vocabulary's order (groups are drawn in it)
    relations: tuple[str, ...]
    trace: ModelTrace | None = field(default=None)

    def label_name(self, label: int | None = None) -> str:
        names = LABEL_NAMES.get(self.domain, ("negative", "positive"))
        value = self.label if label is None else label
        return names[value] if value in (0, 1) else str(value)

    def with_trace(self, trace: ModelTrace | None) -> "SampleView":
        import dataclasses

        return dataclasses.replace(self, trace=trace)


def draw_graph(domain: str, index: int, seed: int) -> tuple[Any, Any]:
    """(Graph, DomainSpec) of sample `index` as the generator draws it with `seed`."""
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ValueError(f"sample index must be a whole number >= 0 (got {index!r})")
    from nsm.data.base import make_domain, sample_seed

    dom = make_domain(domain)
    label = index % 2
    for attempt in range(MAX_ATTEMPTS):
        graph = dom.sample(random.Random(sample_seed(domain, seed, index, attempt)), label)
        if graph is not None:
            return graph, dom.spec
    raise RuntimeError(f"{domain}: the generator drew no sample {index} in {MAX_ATTEMPTS} tries")


def view_of(graph: Any, spec: Any, index: int, seed: int) -> SampleView:
    """A generator's Graph as plain data with names instead of ids."""
    nodes = []
    for i, kind in enumerate(graph.node_kind):
        row = graph.x_num[i] if i < len(graph.x_num) else []
        numeric = tuple((name, float(v)) for name, v in zip(spec.numeric, row) if v)
        nodes.append(SampleNode(i, spec.node_kinds[kind], numeric))
    edges = tuple(SampleEdge(int(s), int(d), spec.relation_name(int(r)), float(w)) for s, d, r, w in graph.edges)
    subtypes = spec.subtypes
    subtype = subtypes[graph.subtype] if 0 <= graph.subtype < len(subtypes) else str(graph.subtype)
    return SampleView(spec.name, index, seed, int(graph.y), subtype, tuple(nodes), edges, tuple(spec.node_kinds), tuple(spec.relations))


def sample_view(domain: str, index: int = 0, seed: int = 42) -> SampleView:
    graph, spec = draw_graph(domain, index, seed)
    return view_of(graph, spec, index, seed)


# ------------------------------------------------------------------ drawing


def _wrap(head: str, tokens: Sequence[str], width: int, indent: int = 4, gap: str = "  ") -> list[str]:
    """`head` then the tokens, `gap` apart, wrapped under an indent."""
    lines: list[str] = []
    line = head
    for token in tokens:
        sep = "" if line.endswith(" ") or not line.strip() else gap
        if len(line) + len(sep) + len(token) > width and line.strip():
            lines.append(line.rstrip())
            line = " " * indent + token
        else:
            line += sep + token
    lines.append(line.rstrip())
    return lines


def node_token(node: SampleNode) -> str:
    if not node.numeric:
        return str(node.id)
    values = ",".join(f"{name[:3]} {value:g}" for name, value in node.numeric)
    return f"{node.id}({values})"


def kind_groups(view: SampleView, ids: Sequence[int] | None = None) -> list[tuple[str, list[SampleNode]]]:
    """(kind, nodes) in the vocabulary's order, only the kinds present (among `ids`)."""
    wanted = set(ids) if ids is not None else None
    by_kind: dict[str, list[SampleNode]] = {}
    for node in view.nodes:
        if wanted is None or node.id in wanted:
            by_kind.setdefault(node.kind, []).append(node)
    order = {k: i for i, k in enumerate(view.kinds)}
    return sorted(by_kind.items(), key=lambda kv: order.get(kv[0], len(order)))


def relation_groups(view: SampleView) -> list[tuple[str, list[SampleEdge]]]:
    by_rel: dict[str, list[SampleEdge]] = {}
    for edge in sorted(view.edges, key=lambda e: (e.src, e.dst)):
        by_rel.setdefault(edge.relation, []).append(edge)
    order = {r: i for i, r in enumerate(view.relations)}
    return sorted(by_rel.items(), key=lambda kv: order.get(kv[0], len(order)))


def title_line(view: SampleView) -> str:
    return (
        f"{view.domain} sample {view.index} (seed {view.seed}): label {view.label} = {view.label_name()}"
        f" · subtype {view.subtype}"
    )


def render_sample(view: SampleView, width: int = 78) -> list[str]:
    """The drawing, as plain lines no wider than `width` (where a single token allows).
    Section headers are the lines that start without a space."""
    width = max(30, width)
    lines = _wrap("", title_line(view).split(" "), width, 2, gap=" ")
    lines.append(f"{len(view.nodes)} nodes, {len(view.edges)} edges")
    lines.append("")
    lines.append("Nodes by kind (id, numeric columns in brackets)")
    kind_w = min(16, max((len(k) for k, _ in kind_groups(view)), default=4) + 1)
    for kind, nodes in kind_groups(view):
        head = f"  {kind:<{kind_w}}{len(nodes):>2}: "
        lines += _wrap(head, [node_token(n) for n in nodes], width, len(head))
    lines.append("")
    lines.append("Edges by relation (source→target strength)")
    rel_w = min(18, max((len(r) for r, _ in relation_groups(view)), default=4) + 1)
    for relation, edges in relation_groups(view):
        head = f"  {relation:<{rel_w}}{len(edges):>2}: "
        lines += _wrap(head, [f"{e.src}→{e.dst} {e.strength:.2f}" for e in edges], width, len(head))
    if view.trace is not None:
        lines.append("")
        lines += render_trace(view, view.trace, width)
    return lines


def render_trace(view: SampleView, trace: ModelTrace, width: int) -> list[str]:
    t = trace
    p = t.probabilities[t.predicted] if 0 <= t.predicted < len(t.probabilities) else float("nan")
    verdict = "correct" if t.predicted == view.label else "wrong"
    at = f", epoch {t.epoch}" if t.epoch is not None else ""
    lines = [f"Model ({t.checkpoint}{at})"]
    lines += _wrap(
        "  prediction: ",
        f"class {t.predicted} = {view.label_name(t.predicted)}, p={p:.3f} ({verdict}; label {view.label})".split(" "),
        width,
        4,
        gap=" ",
    )
    probs = "  ".join(f"p({view.label_name(c)})={q:.3f}" for c, q in enumerate(t.probabilities))
    lines += _wrap("  ", probs.split("  "), width, 4)
    if t.model == "flat":
        lines.append("Pooling: none (MODEL=flat: one level, every node reaches the readout)")
        return lines
    lines.append("Pooling: the nodes each level keeps (sample ids)")
    previous = len(view.nodes)
    for level, ids in enumerate(t.levels, start=1):
        what = "all" if level == 1 else f"{len(ids)} of {previous}"
        lines.append(f"  level {level}: {what} nodes")
        for kind, nodes in kind_groups(view, ids):
            head = f"    {kind}: "
            lines += _wrap(head, [str(n.id) for n in nodes], width, len(head))
        previous = len(ids)
    return lines


__all__ = [
    "LABEL_NAMES",
    "ModelTrace",
    "SampleEdge",
    "SampleNode",
    "SampleView",
    "draw_graph",
    "kind_groups",
    "relation_groups",
    "render_sample",
    "sample_view",
    "title_line",
    "view_of",
]
