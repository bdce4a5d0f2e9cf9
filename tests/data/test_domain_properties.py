"""Properties every domain must have (issue 2), checked on each registered domain."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
import torch

from nsm.data import DOMAIN_CLASSES, load_dataset, make_domain
from nsm.data.base import generate_graphs, params_key
from nsm.data.cache import cache_path

DOMAINS = sorted(DOMAIN_CLASSES)
pytestmark = pytest.mark.skipif(not DOMAINS, reason="no domains registered")


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dataset-cache")


@pytest.fixture(scope="session", params=DOMAINS)
def default_dataset(request: pytest.FixtureRequest, cache_root: Path):  # type: ignore[no-untyped-def]
    return load_dataset(request.param, cache_dir=cache_root)


def ks_statistic(a: torch.Tensor, b: torch.Tensor) -> float:
    values = torch.cat([a, b]).unique()
    cdf_a = (a.unsqueeze(1) <= values).float().mean(0)
    cdf_b = (b.unsqueeze(1) <= values).float().mean(0)
    return float((cdf_a - cdf_b).abs().max())


def test_default_is_2000_graphs_split_70_15_15(default_dataset) -> None:  # type: ignore[no-untyped-def]
    ds = default_dataset
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1400, 300, 300)


def test_every_split_is_balanced(default_dataset) -> None:  # type: ignore[no-untyped-def]
    for name in ("train", "val", "test"):
        frac = default_dataset.split(name).y.float().mean().item()
        assert 0.45 <= frac <= 0.55, f"{name} is {frac:.1%} positive"


def test_positive_and_negative_graphs_have_matching_sizes(default_dataset) -> None:  # type: ignore[no-untyped-def]
    gs = default_dataset.train
    pos, neg = gs.y == 1, gs.y == 0
    for what, counts in (("nodes", gs.num_nodes()), ("edges", gs.num_edges())):
        ks = ks_statistic(counts[pos].float(), counts[neg].float())
        # Critical KS value at alpha=0.01 for two samples of 700 is ~0.087.
        assert ks < 0.087, f"{what} count distributions differ by class (KS={ks:.3f})"


def test_no_graph_sits_in_two_splits(default_dataset) -> None:  # type: ignore[no-untyped-def]
    prints = {name: set(default_dataset.split(name).fingerprints()) for name in ("train", "val", "test")}
    assert len(prints["train"]) == len(default_dataset.train)  # no duplicate inside a split either
    assert not prints["train"] & prints["val"]
    assert not prints["train"] & prints["test"]
    assert not prints["val"] & prints["test"]


def test_vocabulary_and_self_loop_id_shared_by_splits(default_dataset) -> None:  # type: ignore[no-untyped-def]
    spec = default_dataset.spec
    assert spec.self_loop_id == len(spec.relations)
    assert spec.relation_name(spec.self_loop_id) == "self_loop"
    assert "self_loop" not in spec.relations
    for name in ("train", "val", "test"):
        gs = default_dataset.split(name)
        assert int(gs.edge_type.max()) < spec.num_relations
        assert int(gs.node_kind.max()) < spec.num_kinds
        assert gs.num_numeric == spec.num_numeric
        attr = gs.edge_attr
        assert float(attr.min()) >= 0.0 and float(attr.max()) <= 1.0


def test_stats_describe_the_dataset(default_dataset) -> None:  # type: ignore[no-untyped-def]
    stats = default_dataset.stats
    assert sum(s["count"] for s in stats["splits"].values()) == 2000
    assert set(stats["splits"]) == {"train", "val", "test"}
    assert stats["nodes"]["all"]["min"] >= 1
    assert sum(stats["relations"].values()) == sum(
        default_dataset.split(s).edge_type.numel() for s in ("train", "val", "test")
    )
    assert set(stats["relations"]) == {*default_dataset.spec.relations, "self_loop"}
    assert sum(stats["subtypes"].values()) == 2000


def test_baselines_stay_near_chance(default_dataset) -> None:  # type: ignore[no-untyped-def]
    b = default_dataset.baselines
    assert b["majority"]["test_acc"] <= 0.55
    assert b["structure_blind"]["test_acc"] <= 0.70
    assert b["structure_blind"]["test_acc"] == max(b["blind_logreg"]["test_acc"], b["blind_mlp"]["test_acc"])


@pytest.mark.parametrize("domain", DOMAINS)
def test_generation_is_deterministic_per_seed(domain: str) -> None:
    dom = make_domain(domain)
    a = [g.fingerprint() for g in generate_graphs(dom, 30, seed=7)]
    b = [g.fingerprint() for g in generate_graphs(dom, 30, seed=7)]
    c = [g.fingerprint() for g in generate_graphs(dom, 30, seed=8)]
    assert a == b
    assert len(set(a) & set(c)) < 3


@pytest.mark.parametrize("domain", DOMAINS)
def test_content_is_drawn_before_the_label(domain: str) -> None:
    """With the same random stream, the positive and the negative share their parts."""
    dom = make_domain(domain)
    same_content = 0
    tried = 0
    for i in range(40):
        pos = dom.sample(random.Random(i), 1)
        neg = dom.sample(random.Random(i), 0)
        if pos is None or neg is None:
            continue
        tried += 1
        parts = lambda g: (sorted(g.node_kind), sorted((r, round(w, 6)) for _, _, r, w in g.edges))  # noqa: E731
        same_content += parts(pos) == parts(neg)
    assert tried >= 20
    assert same_content / tried >= 0.9, f"only {same_content}/{tried} negatives are near-misses of their positive"


@pytest.mark.parametrize("domain", DOMAINS)
def test_cache_is_keyed_by_every_parameter_and_never_trusts_a_bad_file(
    domain: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = load_dataset(domain, num_graphs=60, seed=1, cache_dir=tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1

    again = load_dataset(domain, num_graphs=60, seed=1, cache_dir=tmp_path)
    assert again.train.fingerprints() == first.train.fingerprints()

    load_dataset(domain, num_graphs=60, seed=2, cache_dir=tmp_path)
    load_dataset(domain, num_graphs=80, seed=1, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 3

    # A changed generation parameter is a new key as well.
    dom = make_domain(domain)
    fields = list(dom.params_dict().items())
    if fields:
        name, value = next((k, v) for k, v in fields if isinstance(v, (int, float)) and not isinstance(v, bool))
        changed = make_domain(domain, **{name: value + 1 if isinstance(value, int) else value * 1.1})
        assert params_key(changed, 60, 1) != params_key(dom, 60, 1)

    path = cache_path(tmp_path, domain, params_key(dom, 60, 1))
    path.write_bytes(b"not a torch file")
    with caplog.at_level(logging.WARNING):
        repaired = load_dataset(domain, num_graphs=60, seed=1, cache_dir=tmp_path)
    assert "regenerating" in caplog.text
    assert repaired.train.fingerprints() == first.train.fingerprints()
    assert torch.load(path, weights_only=True)["key"] == params_key(dom, 60, 1)

    # Truncated, as a crash mid-copy would leave it.
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert load_dataset(domain, num_graphs=60, seed=1, cache_dir=tmp_path).train.fingerprints() == first.train.fingerprints()


@pytest.mark.parametrize("domain", DOMAINS)
def test_unknown_generation_parameter_is_named(domain: str) -> None:
    with pytest.raises(ValueError, match="bogus"):
        make_domain(domain, bogus=3)
