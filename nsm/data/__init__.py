"""Reasoning domains: generators of graphs whose label needs the structure."""

from __future__ import annotations

from nsm.data.base import DOMAIN_CLASSES, SPLITS, Domain, DomainDataset, DomainSpec, make_domain, register
from nsm.data.cache import default_cache_dir, load_dataset
from nsm.data.graphs import Graph, GraphSet

# Display order everywhere (tables, comparisons, `--domain all`).
DOMAINS_IN_ORDER = ("causal", "planning", "kg")


def domain_spec(name: str) -> DomainSpec:
    return make_domain(name).spec


def _load_builtin() -> None:
    # Imported for their @register side effect; each module is one domain.
    from nsm.data import causal, kg, planning  # noqa: F401


_load_builtin()

__all__ = [
    "DOMAIN_CLASSES",
    "DOMAINS_IN_ORDER",
    "SPLITS",
    "Domain",
    "DomainDataset",
    "DomainSpec",
    "Graph",
    "GraphSet",
    "default_cache_dir",
    "domain_spec",
    "load_dataset",
    "make_domain",
    "register",
]
