"""Generating a dataset from scratch: graphs, stratified splits, OOD splits, stats, baselines."""

from __future__ import annotations

from nsm.baselines import compute_baselines
from nsm.data.base import SPLITS, Domain, DomainDataset, generate_graphs, params_key, stratified_split
from nsm.data.graphs import GraphSet
from nsm.data.ood import build_ood, ood_count, resolve_ood
from nsm.data.stats import dataset_stats


def build_dataset(domain: Domain, num_graphs: int, seed: int) -> DomainDataset:
    """Generate (no cache): graphs, splits, OOD splits, stats and baselines."""
    graphs = generate_graphs(domain, num_graphs, seed)
    parts = stratified_split([g.y for g in graphs], seed)
    k = domain.spec.num_numeric
    sets = {s: GraphSet.from_graphs([graphs[i] for i in parts[s]], k) for s in SPLITS}
    ood, skipped = build_ood(domain, ood_count(len(parts["test"])), seed, exclude=graphs)
    ds = DomainDataset(
        spec=domain.spec,
        num_graphs=num_graphs,
        seed=seed,
        params=domain.params_dict(),
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        cache_key=params_key(domain, num_graphs, seed),
        ood=ood,
    )
    overrides = {k: v for k, v in resolve_ood(domain).items() if isinstance(v, dict)}
    ds.stats = dataset_stats(ds, ood_params=overrides, ood_skipped=skipped)
    ds.baselines = compute_baselines(ds)
    return ds
