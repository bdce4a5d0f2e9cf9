"""Run a checkpoint's model on one sample and record what its pooling keeps.

The model's forward returns only logits and cycle losses; the pooling choices
(`perm`, the kept node positions per graph) are caught on the pooling modules
themselves without changing the model: a forward hook for PyG's SAGPooling call
(its output's 5th item is `perm`) and a wrapper around `pool`, the host-sized
path that batches with known node counts take. Each level's `perm` indexes the
level below, so composing them gives the sample's own node ids per level.

Loaded with `weights_only=True` through nsm.training.checkpoint. torch is
imported inside the functions: the TUI imports this module on its event loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nsm.data.sample_view import ModelTrace, SampleView, draw_graph, view_of


def trace_sample(checkpoint: str | os.PathLike[str], index: int = 0, seed: int | None = None,
                 domain: str | None = None) -> SampleView:  # fmt: skip
    """Sample `index` of the checkpoint's domain (its config's seed unless given), drawn
    and traced through the checkpoint's model. CheckpointError names a file that
    cannot be used; ValueError a domain that is not the checkpoint's."""
    import torch

    from nsm.config import ConfigError, validate_config
    from nsm.data import domain_spec
    from nsm.models import build_model
    from nsm.training.checkpoint import CheckpointError, load_checkpoint

    path = Path(checkpoint)
    blob = load_checkpoint(path, map_location="cpu")
    try:
        cfg = validate_config(blob["config"])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {path.name} has an invalid config ({exc})") from None
    if domain is not None and domain != cfg.domain:
        raise ValueError(f"checkpoint {path.name} is a {cfg.domain} model; it cannot read {domain} samples")
    spec = domain_spec(cfg.domain)
    model = build_model(spec, hidden=cfg.hidden, model=cfg.model, pooling=cfg.pooling)
    try:
        model.load_state_dict(blob["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path.name} does not fit the {cfg.domain} model: {str(exc)[:300]}") from None
    model.eval()
    graph, _spec = draw_graph(cfg.domain, index, cfg.seed if seed is None else seed)
    view = view_of(graph, spec, index, cfg.seed if seed is None else seed)
    from nsm.data.graphs import GraphSet

    data = GraphSet.from_graphs([graph], spec.num_numeric).get(0)
    perms = _caught_perms(model)
    with torch.no_grad():
        out = model(data)
    probs = torch.softmax(out.logits[0].float(), dim=-1).tolist()
    epoch = blob.get("epoch")
    trace = ModelTrace(
        checkpoint=path.name,
        epoch=epoch if isinstance(epoch, int) else None,
        # POOLING=off: no pooling layer to watch, every level keeps every node.
        levels=_levels(len(view.nodes), perms) if cfg.pooling else (tuple(range(len(view.nodes))),) * len(model.levels),
        probabilities=tuple(float(p) for p in probs),
        predicted=int(max(range(len(probs)), key=lambda c: probs[c])),
        model=cfg.model,
    )
    return view.with_trace(trace)


def _caught_perms(model: Any) -> list[Any]:
    """A list that fills with each pooling level's `perm` during the next forward pass."""
    caught: list[Any] = []
    pools = getattr(model, "pools", None) or []
    for pool in pools:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            caught.append(output[4])

        pool.register_forward_hook(hook)
        original = getattr(pool, "pool", None)
        if callable(original):
            def sized(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                result = _original(*args, **kwargs)
                caught.append(result[4])
                return result

            pool.pool = sized  # this instance only: the model is thrown away after the trace
    return caught


def _levels(num_nodes: int, perms: list[Any]) -> tuple[tuple[int, ...], ...]:
    """Sample node ids alive at each level: level 1 is every node; each perm picks among the level below."""
    alive = list(range(num_nodes))
    levels = [tuple(alive)]
    for perm in perms:
        alive = [alive[int(i)] for i in perm.tolist()]
        levels.append(tuple(alive))
    return tuple(levels)


__all__ = ["trace_sample"]
