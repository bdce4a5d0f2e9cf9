"""The sample graph drawn as text: every node and edge, relation names, strengths, label, subtype."""

from __future__ import annotations

import pytest

from nsm.data import DOMAINS_IN_ORDER, make_domain
from nsm.data.sample_view import draw_graph, render_sample, sample_view


@pytest.mark.parametrize("domain", DOMAINS_IN_ORDER)
def test_the_drawing_holds_every_node_and_edge_with_its_relation_and_strength(domain: str) -> None:
    graph, spec = draw_graph(domain, 1, seed=7)
    view = sample_view(domain, 1, seed=7)
    lines = render_sample(view, width=78)
    text = "\n".join(lines)
    assert all(len(line) <= 78 for line in lines)
    assert f"label {graph.y} = " in lines[0] + lines[1] and spec.subtypes[graph.subtype] in text
    # Every node under its kind's line, by id.
    for kind_id in set(graph.node_kind):
        kind = spec.node_kinds[kind_id]
        ids = {str(i) for i, k in enumerate(graph.node_kind) if k == kind_id}
        block = _block(lines, f"  {kind} ")
        shown = {tok.split("(")[0] for tok in block.split(":", 1)[1].split()}
        assert ids <= shown, (kind, ids - shown)
    # Every edge under its relation's line, with its strength.
    assert len(view.edges) == len(graph.edges)
    for s, d, r, w in graph.edges:
        block = _block(lines, f"  {spec.relation_name(r)} ")
        assert f"{s}→{d} {w:.2f}" in block, (spec.relation_name(r), s, d, w)
    assert f"{len(graph.node_kind)} nodes, {len(graph.edges)} edges" in text


def test_the_sample_is_the_generators_graph_of_that_index() -> None:
    from nsm.data.base import generate_graphs

    graphs = generate_graphs(make_domain("causal"), 4, seed=3)
    for i in range(4):
        graph, _spec = draw_graph("causal", i, seed=3)
        assert graph.fingerprint() == graphs[i].fingerprint()
        assert graph.y == i % 2


def test_a_bad_index_is_refused_with_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="whole number >= 0"):
        draw_graph("planning", -1, seed=1)
    with pytest.raises(ValueError, match="domain must be one of"):
        draw_graph("chess", 0, seed=1)


def _block(lines: list[str], head: str) -> str:
    """The line that starts with `head` and its indented continuation lines."""
    start = next(i for i, line in enumerate(lines) if line.startswith(head))
    out = [lines[start]]
    indent = len(lines[start]) - len(lines[start].split(":", 1)[1].lstrip())
    for line in lines[start + 1 :]:
        if not line.startswith(" " * indent) or not line.strip():
            break
        out.append(line)
    return " ".join(out)
