"""The NSM model: exact inverse of the coupling, shapes, and degenerate graphs."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from nsm.models import AffineCoupling, FlatRGCN, ModelSpec, NSMModel, StrengthRGCNConv, count_parameters
from nsm.models.nsm import augment_edges

SPEC = ModelSpec(num_kinds=6, num_relations=5, num_numeric=1)


def graph_batch(sizes: list[int], edges_per_node: int = 2, seed: int = 0) -> Data:
    gen = torch.Generator().manual_seed(seed)
    kinds, xs, eis, ets, eas, batch = [], [], [], [], [], []
    offset = 0
    for g, n in enumerate(sizes):
        e = n * edges_per_node
        kinds.append(torch.randint(0, SPEC.num_kinds, (n,), generator=gen))
        xs.append(torch.randint(0, 10, (n, 1), generator=gen).float())
        eis.append(torch.randint(0, n, (2, e), generator=gen) + offset)
        ets.append(torch.randint(0, SPEC.num_relations - 1, (e,), generator=gen))
        eas.append(torch.rand(e, generator=gen))
        batch.append(torch.full((n,), g))
        offset += n
    data = Data(
        node_kind=torch.cat(kinds),
        x_num=torch.cat(xs),
        edge_index=torch.cat(eis, 1),
        edge_type=torch.cat(ets),
        edge_attr=torch.cat(eas),
        batch=torch.cat(batch),
        y=torch.randint(0, 2, (len(sizes),), generator=gen),
    )
    data.num_graphs = len(sizes)
    return data


def test_coupling_inverse_is_exact_after_training_steps() -> None:
    torch.manual_seed(0)
    block = AffineCoupling(32)
    # Move away from the identity initialisation so the test means something.
    with torch.no_grad():
        for p in block.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(2000, 32)  # LayerNorm-scale features, as the model feeds it
    y = block(x)
    assert not torch.allclose(y, x, atol=1e-3)
    assert torch.allclose(block.inverse(y), x, atol=1e-5)
    assert torch.allclose(block(block.inverse(x)), x, atol=1e-5)


def test_coupling_refuses_odd_width() -> None:
    with pytest.raises(ValueError, match="even"):
        AffineCoupling(7)


def test_conv_scales_messages_by_edge_strength() -> None:
    torch.manual_seed(0)
    conv = StrengthRGCNConv(4, 4, num_relations=2, num_bases=2, aggr="sum")
    x = torch.randn(2, 4)
    ei = torch.tensor([[0], [1]])
    et = torch.tensor([0])
    base = conv(x, ei, et, torch.tensor([0.0]))[1]
    half = conv(x, ei, et, torch.tensor([0.5]))[1]
    full = conv(x, ei, et, torch.tensor([1.0]))[1]
    # Message linear in strength: the 0.5 output sits halfway between 0 and 1.
    assert torch.allclose(half - base, (full - base) / 2, atol=1e-6)
    assert not torch.allclose(full, base)


def test_conv_distinguishes_relations() -> None:
    torch.manual_seed(0)
    conv = StrengthRGCNConv(4, 4, num_relations=3, num_bases=2)
    x = torch.randn(2, 4)
    ei = torch.tensor([[0], [1]])
    w = torch.tensor([1.0])
    assert not torch.allclose(conv(x, ei, torch.tensor([0]), w), conv(x, ei, torch.tensor([1]), w))


def test_augment_adds_inverse_and_self_loops() -> None:
    ei = torch.tensor([[0, 1], [1, 2]])
    et = torch.tensor([0, 3])
    ew = torch.tensor([0.5, 1.0])
    aei, aet, aew = augment_edges(ei, et, ew, num_nodes=3, num_relations=5)
    assert aei.shape == (2, 2 + 2 + 3)
    assert aet.tolist() == [0, 3, 5, 8, 4, 4, 4]
    assert aei[:, 2:4].tolist() == [[1, 2], [0, 1]]
    assert aew.tolist() == [0.5, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("sizes", [[12], [12, 7, 30, 3]])
def test_model_output_shapes(sizes: list[int]) -> None:
    torch.manual_seed(0)
    model = NSMModel(SPEC, hidden=32)
    out = model(graph_batch(sizes))
    assert out.logits.shape == (len(sizes), 2)
    assert out.cycle_per_level.shape == (3,)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.cycle_loss)
    assert out.cycle_loss.item() > 0  # a real reconstruction, not trivially zero


def test_graph_without_edges_and_single_node_graph() -> None:
    torch.manual_seed(0)
    model = NSMModel(SPEC, hidden=32)
    data = graph_batch([1, 5], edges_per_node=0)
    out = model(data)
    assert out.logits.shape == (2, 2)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.cycle_loss)


def test_graph_pooling_to_a_single_node_still_trains() -> None:
    torch.manual_seed(0)
    model = NSMModel(SPEC, hidden=32)
    data = graph_batch([2])  # 2 nodes -> 1 -> 1
    out = model(data)
    loss = torch.nn.functional.cross_entropy(out.logits, data.y) + out.cycle_loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_batched_prediction_equals_one_at_a_time() -> None:
    torch.manual_seed(0)
    model = NSMModel(SPEC, hidden=32).eval()
    sizes = [9, 14, 5]
    together = model(graph_batch(sizes, seed=3)).logits
    full = graph_batch(sizes, seed=3)
    singles = []
    offset = 0
    for g, n in enumerate(sizes):
        mask = full.batch == g
        emask = mask[full.edge_index[0]]
        d = Data(
            node_kind=full.node_kind[mask],
            x_num=full.x_num[mask],
            edge_index=full.edge_index[:, emask] - offset,
            edge_type=full.edge_type[emask],
            edge_attr=full.edge_attr[emask],
            batch=torch.zeros(n, dtype=torch.long),
        )
        d.num_graphs = 1
        singles.append(model(d).logits)
        offset += n
    assert torch.allclose(together, torch.cat(singles), atol=1e-4)


def test_default_size_within_budget_for_every_domain() -> None:
    from nsm.data import DOMAIN_CLASSES
    from nsm.models import build_model

    if not DOMAIN_CLASSES:
        pytest.skip("no domains registered")
    for name, cls in DOMAIN_CLASSES.items():
        n = count_parameters(build_model(cls.spec))
        assert 200_000 <= n <= 500_000, f"{name}: {n} parameters"


def test_flat_reference_shapes() -> None:
    out = FlatRGCN(SPEC, hidden=32)(graph_batch([4, 6]))
    assert out.logits.shape == (2, 2) and out.cycle_loss.item() == 0


def test_pooling_off_keeps_every_node_at_every_level_and_drops_only_the_pooling_layers() -> None:
    torch.manual_seed(0)
    pooled = NSMModel(SPEC, hidden=32)
    torch.manual_seed(0)
    explicit = NSMModel(SPEC, hidden=32, pooling=True)
    # The default is the pooling model, key for key and number for number.
    assert list(pooled.state_dict()) == list(explicit.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(pooled.state_dict().values(), explicit.state_dict().values()))

    flat_levels = NSMModel(SPEC, hidden=32, pooling=False)
    keys = set(pooled.state_dict())
    assert {k for k in keys if k.startswith("pools.")} and keys - set(flat_levels.state_dict()) == {
        k for k in keys if k.startswith("pools.")
    }  # the pooling layers' weights are all that goes
    assert set(flat_levels.state_dict()) < keys
    pool_params = sum(p.numel() for p in pooled.pools.parameters())
    assert count_parameters(flat_levels) == count_parameters(pooled) - pool_params > 0

    data = graph_batch([12, 7])
    seen: list[int] = []
    for level in flat_levels.levels:
        level.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].size(0)))
    out = flat_levels(data)
    assert seen == [19, 19, 19]  # no level drops a node
    assert out.logits.shape == (2, 2) and out.cycle_per_level.shape == (3,)
    assert torch.isfinite(out.cycle_loss) and out.cycle_loss.item() > 0
    out.cycle_loss.backward()


def test_build_model_refuses_pooling_off_for_the_flat_reference() -> None:
    from nsm.models import build_model

    class Vocabulary:
        num_kinds, num_relations, num_numeric = SPEC.num_kinds, SPEC.num_relations, SPEC.num_numeric

    assert not build_model(Vocabulary, hidden=32, pooling=False).pools
    with pytest.raises(ValueError, match="POOLING=off applies to MODEL=nsm only"):
        build_model(Vocabulary, hidden=32, model="flat", pooling=False)
