"""Generating a dataset from scratch: graphs, stratified splits, stats, baselines."""

from __future__ import annotations

from nsm.baselines import compute_baselines
from nsm.data.base import SPLITS, Domain, DomainDataset, generate_graphs, params_key, stratified_split
from nsm.data.graphs import GraphSet
from nsm.data.stats import dataset_stats


def build_dataset(domain: Domain, num_graphs: int, seed: int) -> DomainDataset:
    """Generate (no cache): graphs, splits, stats and baselines."""
    graphs = generate_graphs(domain, num_graphs, seed)
    parts = stratified_split([g.y for g in graphs], seed)
    k = domain.spec.num_numeric
    sets = {s: GraphSet.from_graphs([graphs[i] for i in parts[s]], k) for s in SPLITS}
    ds = DomainDataset(
        spec=domain.spec,
        num_graphs=num_graphs,
        seed=seed,
        params=domain.params_dict(),
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        cache_key=params_key(domain, num_graphs, seed),
    )
    ds.stats = dataset_stats(ds)
    ds.baselines = compute_baselines(ds)
    return ds
