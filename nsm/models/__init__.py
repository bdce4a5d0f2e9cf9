"""Models: the 3-level NSM and the flat relational reference."""

from __future__ import annotations

from typing import Any

from torch import nn

from nsm.config import MODELS
from nsm.models.coupling import AffineCoupling
from nsm.models.nsm import FlatRGCN, ModelOutput, ModelSpec, NSMModel, augment_edges
from nsm.models.rgcn import StrengthRGCNConv


def build_model(domain_spec: Any, hidden: int = 96, model: str = "nsm", pooling: bool = True, **kwargs: Any) -> nn.Module:
    """The MODEL knob's model for a domain's vocabulary (nsm.data.DomainSpec):
    "nsm" the 3-level hierarchy, "flat" the relational reference. `pooling` is the
    POOLING knob (False: the NSM's levels keep every node; MODEL=nsm only)."""
    spec = ModelSpec.from_domain(domain_spec)
    if model == "nsm":
        return NSMModel(spec, hidden=hidden, pooling=pooling, **kwargs)
    if model == "flat":
        if not pooling:
            raise ValueError("POOLING=off applies to MODEL=nsm only (MODEL=flat has no pooling to turn off)")
        return FlatRGCN(spec, hidden=hidden, **kwargs)
    raise ValueError(f"MODEL must be one of {', '.join(MODELS)} (got {model!r})")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_summary(model: nn.Module) -> list[dict[str, Any]]:
    """Per top-level module (and per level) parameter counts, for `nsm-tui model summary`."""
    rows = []
    for name, module in model.named_children():
        if isinstance(module, nn.ModuleList):
            for i, sub in enumerate(module):
                rows.append({"module": f"{name}.{i}", "type": type(sub).__name__, "params": count_parameters(sub)})
        else:
            rows.append({"module": name, "type": type(module).__name__, "params": count_parameters(module)})
    return rows


__all__ = [
    "AffineCoupling",
    "FlatRGCN",
    "ModelOutput",
    "ModelSpec",
    "NSMModel",
    "StrengthRGCNConv",
    "augment_edges",
    "build_model",
    "count_parameters",
    "parameter_summary",
]
