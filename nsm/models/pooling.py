"""SAGPooling that takes the per-graph node counts from the host.

PyG's top-k selection counts the nodes of each graph on the device
(`scatter(..., reduce='sum')` sizes its output with `index.max()`) and keeps
the top ones through a boolean mask; on a GPU both read back to the host in
every step. The counts of a batch are known on the host (GraphSet.batch gives
`graph_sizes`), and so are the kept counts, ceil(ratio * n), so the same nodes
can be picked with index arithmetic of known sizes. The result is bit-identical
to SAGPooling's: the same two sorts, the same positions in the same order.
Parameters and state-dict keys are SAGPooling's (checkpoints load either way).
Only the edge filter still reads back (how many edges survive depends on the
scores).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import SAGPooling
from torch_geometric.nn.pool.connect.filter_edges import filter_adj


class SizedSAGPooling(SAGPooling):
    def kept_sizes(self, sizes: list[int], dtype: torch.dtype) -> list[int]:
        """Nodes kept per graph, computed exactly as PyG's topk does (in the score dtype)."""
        n = torch.tensor(sizes, dtype=torch.long)
        return (float(self.ratio) * n.to(dtype)).ceil().to(torch.long).tolist()

    def pool(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, sizes: list[int]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, list[int]]:
        """(x, edge_index, edge_attr, batch, perm, kept sizes) of the pooled graphs."""
        dev = x.device
        attn = self.gnn(x, edge_index)
        weight = self.select.weight
        score = (attn * weight).sum(dim=-1)
        score = self.select.act(score / weight.norm(p=2, dim=-1))
        kept = self.kept_sizes(sizes, score.dtype)
        total_kept = sum(kept)
        g = len(sizes)
        counts = torch.tensor(sizes, dtype=torch.long).to(dev, non_blocking=True)
        k = torch.tensor(kept, dtype=torch.long).to(dev, non_blocking=True)

        sorted_score, x_perm = torch.sort(score.view(-1), descending=True)
        _, batch_perm = torch.sort(batch[x_perm], descending=False, stable=True)
        # After the two sorts graph j's nodes sit at ptr[j].., best first: keep its first k[j].
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]])
        kptr = torch.cat([k.new_zeros(1), k.cumsum(0)[:-1]])
        graph_of_kept = torch.arange(g, device=dev).repeat_interleave(k, output_size=total_kept)
        positions = torch.arange(total_kept, device=dev) + (ptr - kptr)[graph_of_kept]
        perm = x_perm[batch_perm[positions]]

        score = score[perm]
        x = x[perm] * score.view(-1, 1)
        x = self.multiplier * x if self.multiplier != 1 else x
        cluster = torch.arange(total_kept, device=dev)
        edge_index, edge_attr = filter_adj(edge_index, edge_attr, perm, cluster, num_nodes=attn.size(0))
        return x, edge_index, edge_attr, batch[perm], perm, kept
