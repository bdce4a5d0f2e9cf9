"""The dataset disk cache: one file per full set of generation parameters.

Key = hash of (domain, generator version, vocabulary, num_graphs, seed, every
generation parameter, the OOD split definitions). A file that fails to load, or whose stored key or
shapes disagree, is regenerated rather than trusted.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import platformdirs
import torch

from nsm.atomic import atomic_open
from nsm.data.base import SPLITS, DomainDataset, make_domain, params_key
from nsm.data.build import build_dataset
from nsm.data.graphs import GraphSet

log = logging.getLogger(__name__)
# 2: baselines gained the degree-aware and 1-WL probes and per-subtype scores.
# 3: the out-of-distribution test splits (nsm.data.ood), stored under "ood".
CACHE_FORMAT = 3


def default_cache_dir() -> Path:
    env = os.environ.get("NSM_CACHE_DIR")
    if env:
        return Path(env)
    # ~/.cache/nsm-tui on Linux (XDG_CACHE_HOME honoured), ~/Library/Caches/nsm-tui on macOS.
    return Path(platformdirs.user_cache_dir("nsm-tui", appauthor=False)) / "datasets"


def cache_path(cache_dir: Path, domain: str, key: str) -> Path:
    return cache_dir / f"{domain}-{key[:20]}.pt"


def load_dataset(
    domain: str,
    num_graphs: int = 2000,
    seed: int = 42,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    **params: Any,
) -> DomainDataset:
    """The dataset for these parameters, from the cache when a valid entry exists."""
    dom = make_domain(domain, **params)
    key = params_key(dom, num_graphs, seed)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_path(folder, domain, key)
    if use_cache and path.exists():
        try:
            return _read(path, key, dom)
        except Exception as exc:  # any damage: regenerate, never trust
            log.warning("dataset cache %s is unusable (%s); regenerating", path, exc)
    ds = build_dataset(dom, num_graphs, seed)
    if use_cache:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _write(path, ds)
        except OSError as exc:
            log.warning("could not write dataset cache %s: %s", path, exc)
    return ds


def _write(path: Path, ds: DomainDataset) -> None:
    blob = {
        "format": CACHE_FORMAT,
        "key": ds.cache_key,
        "meta": json.dumps(
            {
                "num_graphs": ds.num_graphs,
                "seed": ds.seed,
                "params": ds.params,
                "stats": ds.stats,
                "baselines": ds.baselines,
                "ood": list(ds.ood),  # the order of the OOD splits
            }
        ),
        **{s: ds.split(s).to_state() for s in SPLITS},
        "ood": {name: gs.to_state() for name, gs in ds.ood.items()},
    }
    with atomic_open(path, "wb") as fh:
        torch.save(blob, fh)


def _read(path: Path, key: str, dom: Any) -> DomainDataset:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != CACHE_FORMAT:
        raise ValueError("unknown cache format")
    if blob.get("key") != key:
        raise ValueError("cache key mismatch")
    meta = json.loads(blob["meta"])
    sets = {s: GraphSet.from_state(blob[s]) for s in SPLITS}
    total = sum(len(g) for g in sets.values())
    if total != meta["num_graphs"]:
        raise ValueError(f"cache holds {total} graphs, expected {meta['num_graphs']}")
    stored = blob.get("ood")
    if not isinstance(stored, dict) or sorted(stored) != sorted(meta.get("ood") or []):
        raise ValueError("OOD splits missing or not as listed")
    ood = {name: GraphSet.from_state(stored[name]) for name in meta["ood"]}
    for gs in (*sets.values(), *ood.values()):
        if gs.node_kind.numel() and int(gs.node_kind.max()) >= dom.spec.num_kinds:
            raise ValueError("node kind out of vocabulary")
        if gs.edge_type.numel() and int(gs.edge_type.max()) >= dom.spec.num_relations:
            raise ValueError("relation out of vocabulary")
    return DomainDataset(
        spec=dom.spec,
        num_graphs=meta["num_graphs"],
        seed=meta["seed"],
        params=meta["params"],
        stats=meta["stats"],
        baselines=meta["baselines"],
        cache_key=key,
        ood=ood,
        **sets,
    )
