"""The 3-level NSM: a bottom-up WHY pass and a top-down WHAT pass tied by invertible blocks.

WHY (bottom-up), per level l = 1, 2, 3:
    u_l = relational layers(x_l)          typed, strength-weighted messages
    h_l = C_l(u_l)                         invertible affine coupling
    x_{l+1} = attention-pool(h_l)          keeps edge types and strengths
WHAT (top-down), per level:
    û_l = C_l^{-1}(unpool(h_{l+1}))        level 3 unpools the graph embedding
    cycle_l = MSE(û_l, u_l) on the nodes that survived pooling
Head: mean‖max readout of every level -> MLP -> 2 logits.

POOLING=off (`pooling=False`, an ablation): no pooling layers; each level reads the
one below on all of its nodes and edges (x_{l+1} = h_l), and every node counts in
the cycle loss, so a comparison shows what pooling itself contributes.

What the prototypes showed (DOMAINS.md) is built in: relation types survive
pooling, several typed layers run before the first pool, inverse relations and
a dedicated self-loop relation are added, readout uses max and every level.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_max_pool, global_mean_pool

from nsm.models.coupling import AffineCoupling
from nsm.models.pooling import SizedSAGPooling
from nsm.models.rgcn import RelationalBlock


@dataclass(frozen=True)
class ModelSpec:
    """What the model needs to know about a domain's vocabulary."""

    num_kinds: int
    num_relations: int  # forward relations + the self-loop id (DomainSpec.num_relations)
    num_numeric: int

    @classmethod
    def from_domain(cls, spec) -> "ModelSpec":  # type: ignore[no-untyped-def]
        return cls(spec.num_kinds, spec.num_relations, spec.num_numeric)


@dataclass
class ModelOutput:
    logits: Tensor  # (num_graphs, 2)
    cycle_loss: Tensor  # scalar: mean of the per-level losses
    cycle_per_level: Tensor  # (3,)


def augment_edges(
    edge_index: Tensor, edge_type: Tensor, edge_weight: Tensor, num_nodes: int, num_relations: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Add an inverse of every edge (ids shifted by num_relations) and a self-loop per node.

    The data's own self-loop id (num_relations - 1) is reused for the added loops,
    so relation ids are: forward 0..R-2, self-loop R-1, inverse R..2R-2.
    """
    self_id = num_relations - 1
    loops = torch.arange(num_nodes, device=edge_index.device)
    ei = torch.cat([edge_index, edge_index.flip(0), torch.stack([loops, loops])], dim=1)
    et = torch.cat([edge_type, edge_type + num_relations, torch.full_like(loops, self_id)])
    ew = torch.cat([edge_weight, edge_weight, torch.ones(num_nodes, dtype=edge_weight.dtype, device=edge_weight.device)])
    return ei, et, ew


class Level(nn.Module):
    def __init__(self, hidden: int, num_relations: int, layers: int, num_bases: int, aggr: str):
        super().__init__()
        self.blocks = nn.ModuleList(RelationalBlock(hidden, num_relations, num_bases, aggr) for _ in range(layers))
        self.coupling = AffineCoupling(hidden)

    def forward(self, x: Tensor, ei: Tensor, et: Tensor, ew: Tensor) -> tuple[Tensor, Tensor]:
        for block in self.blocks:
            x = block(x, ei, et, ew)
        return x, self.coupling(x)


class NSMModel(nn.Module):
    def __init__(
        self,
        spec: ModelSpec,
        hidden: int = 96,
        layers: tuple[int, int, int] = (3, 2, 1),
        num_bases: int = 4,
        pool_ratio: float = 0.5,
        aggr: str = "sum",
        dropout: float = 0.0,
        pooling: bool = True,
    ):
        super().__init__()
        self.spec = spec
        self.hidden = hidden
        self.pooling = pooling
        # relations after augment_edges: forward + self-loop, then the inverses of the forward ones
        total_rel = 2 * spec.num_relations - 1
        self.kind_embedding = nn.Embedding(spec.num_kinds, hidden)
        self.numeric = nn.Linear(spec.num_numeric, hidden) if spec.num_numeric else None
        self.levels = nn.ModuleList(Level(hidden, total_rel, n, num_bases, aggr) for n in layers)
        # Without pooling no pooling layers at all (no parameters, no state-dict keys).
        pools = len(layers) - 1 if pooling else 0
        self.pools = nn.ModuleList(SizedSAGPooling(hidden, ratio=pool_ratio) for _ in range(pools))
        self.top_down = nn.Linear(2 * hidden, hidden)  # graph embedding -> level-3 node space
        self.head = nn.Sequential(
            nn.Linear(2 * hidden * len(layers), hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 2),
        )

    def embed(self, node_kind: Tensor, x_num: Tensor) -> Tensor:
        x = self.kind_embedding(node_kind)
        if self.numeric is not None:
            x = x + self.numeric(x_num)
        return x

    def forward(self, data) -> ModelOutput:  # type: ignore[no-untyped-def]
        num_graphs = int(data.num_graphs)
        batch = data.batch
        # Host-known node counts per graph (GraphSet.batch) let pooling run without
        # reading sizes back from the device; without them, PyG's own pooling.
        sizes = getattr(data, "graph_sizes", None)
        x = self.embed(data.node_kind, data.x_num)
        ei, et, ew = augment_edges(
            data.edge_index, data.edge_type, data.edge_attr, x.size(0), self.spec.num_relations
        )
        pre: list[Tensor] = []  # u_l
        post: list[Tensor] = []  # h_l
        perms: list[Tensor | None] = []  # None: the level kept every node (POOLING=off)
        batches: list[Tensor] = []
        readouts: list[Tensor] = []
        for i, level in enumerate(self.levels):
            u, h = level(x, ei, et, ew)
            pre.append(u)
            post.append(h)
            batches.append(batch)
            readouts.append(torch.cat([global_mean_pool(h, batch, num_graphs), global_max_pool(h, batch, num_graphs)], -1))
            if i < len(self.levels) - 1 and not self.pooling:
                x = h  # the next level sees every node, on the same edges
                perms.append(None)
            elif i < len(self.pools):
                attr = torch.stack([et.to(h.dtype), ew.to(h.dtype)], dim=1)
                if sizes is not None:
                    x, ei, attr, batch, perm, sizes = self.pools[i].pool(h, ei, attr, batch, sizes)
                else:
                    x, ei, attr, batch, perm, _ = self.pools[i](h, ei, attr, batch)
                et, ew = attr[:, 0].round().long(), attr[:, 1]
                perms.append(perm)
        logits = self.head(torch.cat(readouts, dim=-1))
        cycle = self._what_pass(pre, post, perms, batches, readouts[-1])
        return ModelOutput(logits=logits, cycle_loss=cycle.mean(), cycle_per_level=cycle)

    def _what_pass(
        self, pre: list[Tensor], post: list[Tensor], perms: list[Tensor | None], batches: list[Tensor], top: Tensor
    ) -> Tensor:
        losses = []
        top_level = len(self.levels) - 1
        # Top level: rebuild every node from the graph embedding alone.
        unpooled = self.top_down(top).index_select(0, batches[top_level])
        recon = self.levels[top_level].coupling.inverse(unpooled)
        losses.append(torch.mean((recon - pre[top_level]) ** 2))
        # Lower levels: rebuild each surviving node from its own representation one level up.
        for lvl in range(top_level - 1, -1, -1):
            perm = perms[lvl]
            recon = self.levels[lvl].coupling.inverse(post[lvl + 1])
            kept = pre[lvl] if perm is None else pre[lvl].index_select(0, perm)
            losses.append(torch.mean((recon - kept) ** 2))
        return torch.stack(losses[::-1])


class FlatRGCN(nn.Module):
    """The reference: the same relational layers, no hierarchy, no pooling, no cycle loss."""

    def __init__(self, spec: ModelSpec, hidden: int = 96, layers: int = 4, num_bases: int = 4, aggr: str = "sum"):
        super().__init__()
        self.spec = spec
        total_rel = 2 * spec.num_relations - 1
        self.kind_embedding = nn.Embedding(spec.num_kinds, hidden)
        self.numeric = nn.Linear(spec.num_numeric, hidden) if spec.num_numeric else None
        self.blocks = nn.ModuleList(RelationalBlock(hidden, total_rel, num_bases, aggr) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 2))

    def forward(self, data) -> ModelOutput:  # type: ignore[no-untyped-def]
        x = self.kind_embedding(data.node_kind)
        if self.numeric is not None:
            x = x + self.numeric(data.x_num)
        ei, et, ew = augment_edges(data.edge_index, data.edge_type, data.edge_attr, x.size(0), self.spec.num_relations)
        for block in self.blocks:
            x = block(x, ei, et, ew)
        g = int(data.num_graphs)
        logits = self.head(torch.cat([global_mean_pool(x, data.batch, g), global_max_pool(x, data.batch, g)], -1))
        zero = logits.new_zeros(())
        return ModelOutput(logits=logits, cycle_loss=zero, cycle_per_level=logits.new_zeros(3))
