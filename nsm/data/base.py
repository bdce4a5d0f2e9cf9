"""What every domain shares: its vocabulary, balanced generation, splits.

A domain is a `Domain` subclass that knows how to draw one sample with a
requested label. Labels alternate by index (exactly half positive) and each
sample's *content* is drawn before its arrangement is chosen, so count
features carry no signal (see DOMAINS.md). Splits are stratified by label.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nsm.data.graphs import Graph, GraphSet

SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DomainSpec:
    """The vocabulary of a domain, shared by every split of every dataset."""

    name: str
    node_kinds: tuple[str, ...]
    relations: tuple[str, ...]  # forward relations, ids 0..R-1
    numeric: tuple[str, ...] = ()  # names of the numeric node columns
    subtypes: tuple[str, ...] = ("default",)  # sample kinds, e.g. the corruption applied

    @property
    def self_loop_id(self) -> int:
        """The dedicated relation id of a node's edge to itself (after the R relations)."""
        return len(self.relations)

    @property
    def num_relations(self) -> int:
        """Relation ids in the vocabulary, including the self-loop id."""
        return len(self.relations) + 1

    @property
    def num_kinds(self) -> int:
        return len(self.node_kinds)

    @property
    def num_numeric(self) -> int:
        return len(self.numeric)

    def relation_name(self, rel: int) -> str:
        return "self_loop" if rel == self.self_loop_id else self.relations[rel]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "node_kinds": list(self.node_kinds),
            "relations": list(self.relations),
            "self_loop_id": self.self_loop_id,
            "numeric": list(self.numeric),
            "subtypes": list(self.subtypes),
        }


class Domain:
    """Base class of a domain generator.

    Subclasses set `spec`, `version` (bump it whenever generation changes, so
    caches regenerate), a `Params` dataclass of generation parameters, and
    implement `sample`.
    """

    spec: ClassVar[DomainSpec]
    version: ClassVar[int] = 1

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: "Domain.Params | None" = None):
        self.params = params if params is not None else self.Params()

    def sample(self, rng: random.Random, label: int) -> Graph | None:
        """Draw one sample whose label is `label` (0 or 1), or None to retry.

        The content (node kinds, edge types, strengths) must be drawn without
        looking at `label`; only the arrangement may depend on it.
        """
        raise NotImplementedError

    def params_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params)


DOMAIN_CLASSES: dict[str, type[Domain]] = {}


def register(cls: type[Domain]) -> type[Domain]:
    """Class decorator: make a domain available by its spec name."""
    DOMAIN_CLASSES[cls.spec.name] = cls
    return cls


@dataclass
class DomainDataset:
    """A generated dataset: three splits, the out-of-distribution test splits
    (nsm.data.ood, in their order), the vocabulary, stats and baselines."""

    spec: DomainSpec
    num_graphs: int
    seed: int
    params: dict[str, Any]
    train: GraphSet
    val: GraphSet
    test: GraphSet
    stats: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    cache_key: str = ""
    ood: dict[str, GraphSet] = field(default_factory=dict)

    @property
    def split_names(self) -> tuple[str, ...]:
        """Every split this dataset holds: train, val, test, then its OOD splits."""
        return (*SPLITS, *self.ood)

    def split(self, name: str) -> GraphSet:
        if name in SPLITS:
            return getattr(self, name)
        if name in self.ood:
            return self.ood[name]
        raise ValueError(f"split must be one of {', '.join(self.split_names)} (got {name!r})")

    def summary(self) -> dict[str, Any]:
        """Stats and baselines as plain JSON data (what run_started carries)."""
        return {**self.stats, "baselines": self.baselines, "vocabulary": self.spec.to_dict()}


def sample_seed(domain: str, seed: int, index: int, attempt: int) -> int:
    digest = hashlib.blake2b(f"{domain}:{seed}:{index}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def generate_graphs(
    domain: Domain, num_graphs: int, seed: int, *, namespace: str | None = None, exclude: set[str] | None = None
) -> list[Graph]:
    """Exactly half positives (labels alternate), no two identical graphs.

    `namespace` (default: the domain's name) seeds the draws, so another
    namespace draws another stream; a graph whose fingerprint is in `exclude`
    (graphs of other splits) is never returned."""
    graphs: list[Graph] = []
    seen: set[str] = set(exclude or ())
    name = domain.spec.name
    stream = namespace or name
    for i in range(num_graphs):
        label = i % 2
        for attempt in range(1000):
            g = domain.sample(random.Random(sample_seed(stream, seed, i, attempt)), label)
            if g is None:
                continue
            if g.y != label:
                raise AssertionError(f"{name} generator returned y={g.y} when asked for {label}")
            fp = g.fingerprint()
            if fp in seen:
                continue
            seen.add(fp)
            graphs.append(g)
            break
        else:
            raise RuntimeError(f"{name}: could not draw a distinct sample with label {label} in 1000 tries")
    return graphs


def stratified_split(labels: list[int], seed: int) -> dict[str, list[int]]:
    """70/15/15 split of indices, the same label balance in each split."""
    gen = random.Random(sample_seed("split", seed, 0, 0))
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        gen.shuffle(idx)
        n = len(idx)
        n_train = round(n * SPLIT_FRACTIONS[0])
        n_val = round(n * SPLIT_FRACTIONS[1])
        out["train"] += idx[:n_train]
        out["val"] += idx[n_train : n_train + n_val]
        out["test"] += idx[n_train + n_val :]
    for s in SPLITS:
        gen.shuffle(out[s])
    return out


def params_key(domain: Domain, num_graphs: int, seed: int) -> str:
    from nsm.data.ood import ood_signature  # it builds on this module

    blob = json.dumps(
        {
            "domain": domain.spec.name,
            "version": domain.version,
            "num_graphs": num_graphs,
            "seed": seed,
            "params": domain.params_dict(),
            "vocabulary": domain.spec.to_dict(),
            "ood": ood_signature(domain),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _check_params(domain_cls: type[Domain], params: dict[str, Any]) -> Domain.Params:
    names = {f.name for f in dataclasses.fields(domain_cls.Params)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ValueError(
            f"unknown {domain_cls.spec.name} generation parameter(s) {unknown}; known: {sorted(names)}"
        )
    return domain_cls.Params(**params)


def make_domain(name: str, **params: Any) -> Domain:
    import nsm.data  # noqa: F401  (registers the built-in domains)

    if name not in DOMAIN_CLASSES:
        raise ValueError(f"domain must be one of {', '.join(DOMAIN_CLASSES)} (got {name!r})")
    cls = DOMAIN_CLASSES[name]
    return cls(_check_params(cls, params))

