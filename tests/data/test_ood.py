"""Out-of-distribution test splits (nsm.data.ood): in every domain, as large as test,
balanced, larger than anything in training, never a graph of train/val/test, cached."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import torch

from nsm.data import DOMAIN_CLASSES, load_dataset, make_domain
from nsm.data import ood as ood_mod
from nsm.data.base import params_key
from nsm.data.ood import OOD_VARIANTS, ood_names

DOMAINS = sorted(DOMAIN_CLASSES)
N = 100  # small: every test module builds small datasets, OOD generation must stay cheap


@functools.lru_cache(maxsize=None)
def built(domain: str):  # type: ignore[no-untyped-def]
    return load_dataset(domain, num_graphs=N, seed=11, use_cache=False)


@pytest.fixture(params=DOMAINS)
def dataset(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return built(request.param)


def test_every_domain_defines_ood_splits() -> None:
    assert set(OOD_VARIANTS) == set(DOMAINS)
    assert ood_names("planning") == ("ood_steps_11_20", "ood_steps_21_40")
    assert ood_names("causal") == ("ood_large",) and ood_names("kg") == ("ood_large",)


def test_ood_splits_are_as_large_as_test_and_balanced(dataset) -> None:  # type: ignore[no-untyped-def]
    assert list(dataset.ood) == list(ood_names(dataset.spec.name))
    for name, gs in dataset.ood.items():
        assert len(gs) == len(dataset.test), name
        assert abs(int(gs.y.sum()) - len(gs) / 2) <= 0.5, name
        assert int(gs.node_kind.max()) < dataset.spec.num_kinds and int(gs.edge_type.max()) < dataset.spec.num_relations
        assert dataset.split(name) is gs
    stats = dataset.stats["ood"]
    assert set(stats["splits"]) == set(dataset.ood) and stats["skipped"] == {}
    assert set(dataset.stats["splits"]) == {"train", "val", "test"}  # train/val/test still sum to num_graphs


def test_ood_splits_share_no_graph_with_train_val_or_test(dataset) -> None:  # type: ignore[no-untyped-def]
    seen = {fp for s in ("train", "val", "test") for fp in dataset.split(s).fingerprints()}
    for name, gs in dataset.ood.items():
        prints = gs.fingerprints()
        assert len(set(prints)) == len(prints), f"{name} repeats a graph"
        assert not seen & set(prints), f"{name} shares a graph with train/val/test or another OOD split"
        seen |= set(prints)


def _steps_per_graph(ds, gs) -> list[int]:  # type: ignore[no-untyped-def]
    steps = torch.tensor([k.startswith("step") for k in ds.spec.node_kinds])
    per_node = steps[gs.node_kind].long()
    graph = torch.arange(len(gs)).repeat_interleave(gs.num_nodes())
    return torch.zeros(len(gs), dtype=torch.long).index_add_(0, graph, per_node).tolist()


def test_planning_ood_plans_are_longer_than_any_training_plan() -> None:
    ds = built("planning")
    assert max(_steps_per_graph(ds, ds.train)) <= 10
    for name, (lo, hi) in (("ood_steps_11_20", (11, 20)), ("ood_steps_21_40", (21, 40))):
        counts = _steps_per_graph(ds, ds.ood[name])
        assert lo <= min(counts) and max(counts) <= hi, (name, min(counts), max(counts))
        assert max(counts) - min(counts) >= (hi - lo) // 2  # the range is used, not one length


@pytest.mark.parametrize("domain", ["causal", "kg"])
def test_causal_and_kg_ood_graphs_are_larger(domain: str) -> None:
    ds = built(domain)
    test_mean = ds.test.num_nodes().float().mean()
    ood = ds.ood["ood_large"]
    assert ood.num_nodes().float().mean() > 1.25 * test_mean
    assert ood.num_nodes().float().median() > ds.train.num_nodes().float().quantile(0.75)


def test_an_unknown_split_lists_the_allowed_ones(dataset) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="ood_") as info:
        dataset.split("nope")
    assert "train, val, test" in str(info.value)


def test_user_params_that_overlap_an_ood_range_skip_that_split_only(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="nsm.data.ood"):
        ds = load_dataset("planning", num_graphs=40, seed=2, use_cache=False, steps=(5, 15))
    assert list(ds.ood) == ["ood_steps_21_40"]
    skipped = ds.stats["ood"]["skipped"]
    assert list(skipped) == ["ood_steps_11_20"] and "15 steps" in skipped["ood_steps_11_20"]
    assert "ood_steps_11_20 skipped" in caplog.text


def test_an_override_that_cannot_be_generated_is_skipped_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OOD_VARIANTS, "causal", {"ood_bad": lambda p: {"min_mediators": 9, "max_mediators": 2}, **OOD_VARIANTS["causal"]})
    ds = load_dataset("causal", num_graphs=40, seed=2, use_cache=False)
    assert list(ds.ood) == ["ood_large"]
    assert "ood_bad" in ds.stats["ood"]["skipped"]


def test_the_cache_stores_the_ood_splits_and_is_keyed_by_their_definitions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset("kg", num_graphs=40, seed=3, cache_dir=tmp_path)
    again = load_dataset("kg", num_graphs=40, seed=3, cache_dir=tmp_path)
    assert list(again.ood) == list(first.ood)
    assert again.ood["ood_large"].fingerprints() == first.ood["ood_large"].fingerprints()
    assert again.stats["ood"] == first.stats["ood"]
    dom = make_domain("kg")
    key = params_key(dom, 40, 3)
    monkeypatch.setattr(ood_mod, "OOD_VERSION", ood_mod.OOD_VERSION + 1)
    assert params_key(dom, 40, 3) != key
    monkeypatch.undo()
    monkeypatch.setitem(OOD_VARIANTS, "kg", {"ood_large": lambda p: {"min_persons": 8, "max_persons": 9}})
    assert params_key(dom, 40, 3) != key
