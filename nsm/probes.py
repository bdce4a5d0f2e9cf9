"""Features for the shallow probes that judge a domain: degrees and 1-WL colours.

The count features of `nsm.baselines.blind_features` never see how parts are
connected, so a corruption that changes only *who* is connected (an isolated
capability gaining an edge, a duplicated edge) slips past them. These two
feature sets close that gap:

- degree-aware (still "blind" to the rule): per node kind, histograms of each
  node's in/out degree per relation and of its total degree, isolated nodes per
  kind, and duplicate edges (same source, target and relation) per relation;
- relational 1-WL: colour refinement, hashed into a fixed number of buckets.
  It sees local structure, so it is reported as information, not as a cap.

Both are vectorised over a whole `GraphSet`: the default 2000-graph dataset
costs tens of milliseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch


if TYPE_CHECKING:  # nsm.data builds datasets with these probes: a runtime import would be circular
    from nsm.data.base import DomainSpec
    from nsm.data.graphs import GraphSet

REL_DEGREE_BINS = 4  # in/out degree per relation: 0, 1, 2, 3+
TOTAL_DEGREE_BINS = 8  # total degree: 1..7, 8+ (0 is the isolated-node count)
WL_ROUNDS = 3
WL_BUCKETS = 512


def _global_edges(gs: GraphSet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    edge_graph = torch.arange(len(gs)).repeat_interleave(gs.num_edges())
    shift = gs.node_ptr[:-1][edge_graph]
    return gs.edge_index[0] + shift, gs.edge_index[1] + shift, edge_graph


def degree_features(gs: GraphSet, spec: "DomainSpec") -> torch.Tensor:
    """Per graph: degree histograms per node kind, isolated nodes per kind, duplicate edges per relation."""
    g, n, r, k = len(gs), len(gs.node_kind), spec.num_relations, spec.num_kinds
    node_graph = torch.arange(g).repeat_interleave(gs.num_nodes())
    src, dst, edge_graph = _global_edges(gs)
    et = gs.edge_type
    ones = torch.ones(len(et))
    deg = torch.zeros(n, 2 * r)  # columns: out-degree per relation, then in-degree per relation
    deg.index_put_((src, et), ones, accumulate=True)
    deg.index_put_((dst, et + r), ones, accumulate=True)
    kind = gs.node_kind

    rel_bin = deg.clamp(max=REL_DEGREE_BINS - 1).long()  # n x 2r
    col = torch.arange(2 * r).expand(n, -1)
    rel_idx = (kind[:, None] * 2 * r + col) * REL_DEGREE_BINS + rel_bin
    rel_hist = torch.zeros(g, k * 2 * r * REL_DEGREE_BINS)
    rel_hist.index_put_((node_graph[:, None].expand(-1, 2 * r).reshape(-1), rel_idx.reshape(-1)), torch.ones(n * 2 * r), accumulate=True)

    total = deg.sum(1).long()
    isolated = torch.zeros(g, k)
    iso = total == 0
    isolated.index_put_((node_graph[iso], kind[iso]), torch.ones(int(iso.sum())), accumulate=True)
    busy = ~iso
    tot_bin = total[busy].clamp(max=TOTAL_DEGREE_BINS) - 1
    tot_hist = torch.zeros(g, k * TOTAL_DEGREE_BINS)
    tot_hist.index_put_((node_graph[busy], kind[busy] * TOTAL_DEGREE_BINS + tot_bin), torch.ones(int(busy.sum())), accumulate=True)

    dup = torch.zeros(g, r + 1)  # per relation, then "same pair, any relation"
    if len(et):
        key = (src * n + dst) * r + et
        uniq, counts = torch.unique(key, return_counts=True)
        extra = (counts - 1).float()
        dup.index_put_((edge_graph[_first_index(key, uniq)], uniq % r), extra, accumulate=True)
        pair = src * n + dst
        puniq, pcounts = torch.unique(pair, return_counts=True)
        dup[:, r].index_put_((edge_graph[_first_index(pair, puniq)],), (pcounts - 1).float(), accumulate=True)
    return torch.cat([rel_hist, isolated, tot_hist, dup], dim=1)


def _first_index(values: torch.Tensor, uniq: torch.Tensor) -> torch.Tensor:
    """For each sorted unique value, the position of one occurrence in `values`."""
    pos = torch.searchsorted(uniq, values)
    first = torch.empty(len(uniq), dtype=torch.long)
    first[pos] = torch.arange(len(values))
    return first


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash, elementwise (wrapping arithmetic)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def wl_features(gs: GraphSet, spec: "DomainSpec", rounds: int = WL_ROUNDS, buckets: int = WL_BUCKETS) -> torch.Tensor:
    """Histogram of relational 1-WL colours of rounds 0..`rounds`, hashed into `buckets`.

    A node's first colour is its kind and numeric columns (what the model sees);
    each round hashes (own colour, multiset of (relation, direction, strength,
    neighbour colour)). The multiset hash is a wrapping sum of per-message
    hashes, so it does not depend on edge order.
    """
    g, n = len(gs), len(gs.node_kind)
    node_graph = torch.arange(g).repeat_interleave(gs.num_nodes()).numpy()
    src_t, dst_t, _ = _global_edges(gs)
    src, dst = src_t.numpy(), dst_t.numpy()
    colour = _mix(gs.node_kind.numpy().astype(np.uint64) + np.uint64(1))
    if gs.num_numeric:
        # Rounded so float noise cannot split one value into two colours.
        vals = np.round(gs.x_num.numpy().astype(np.float64), 3)
        for j in range(vals.shape[1]):
            colour = _mix(colour ^ _mix(vals[:, j].view(np.uint64) + np.uint64(j)))
    # Strength in thousandths (the causal strengths are exact quarters) joins the relation id.
    strength = np.round(gs.edge_attr.numpy().astype(np.float64) * 1000).astype(np.int64).astype(np.uint64)
    rel = gs.edge_type.numpy().astype(np.uint64)
    tag_fwd = _mix(rel * np.uint64(2) + strength * np.uint64(1 << 20) + np.uint64(7))
    tag_bwd = _mix(rel * np.uint64(2) + np.uint64(1) + strength * np.uint64(1 << 20) + np.uint64(7))
    hist = np.zeros((g, buckets), dtype=np.float32)
    for t in range(rounds + 1):
        bucket = (_mix(colour ^ np.uint64(0x9E3779B97F4A7C15 * (t + 1) % (1 << 64))) % np.uint64(buckets)).astype(np.int64)
        np.add.at(hist, (node_graph, bucket), 1.0)
        if t == rounds:
            break
        agg = np.zeros(n, dtype=np.uint64)
        np.add.at(agg, dst, _mix(colour[src] ^ tag_fwd))
        np.add.at(agg, src, _mix(colour[dst] ^ tag_bwd))
        colour = _mix(colour ^ _mix(agg + np.uint64(t)))
    return torch.from_numpy(hist)
