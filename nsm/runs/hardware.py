"""The GPU a run actually trained on, for `runs show`, exports and reports.

config.json keeps its `gpu` knob for every run (the schema, resume's config
comparison), but that knob is only the GPU *asked of Modal*: a local run on the CPU
never had one. So: a Modal run names the GPU it asked for (remote.json's, else the
config's); a local run names the CUDA device its `run_started` environment reports;
any other run had no GPU (None).
"""

from __future__ import annotations

from typing import Any, Mapping

MODAL_BACKEND = "modal"


def gpu_used(run: Any, config: Mapping[str, Any] | None = None, events: list[dict[str, Any]] | None = None) -> str | None:
    """"A100-40GB (Modal)", "NVIDIA A100-SXM4-40GB (cuda:0)", or None for a run without a GPU."""
    if config is None:
        try:
            config = run.config()
        except Exception:  # noqa: BLE001 - an unreadable config: ask the log alone
            config = {}
    if config.get("backend") == MODAL_BACKEND:
        remote = run.remote_info() or {}
        gpu = remote.get("gpu") or config.get("gpu")
        return f"{gpu} (Modal)" if isinstance(gpu, str) and gpu else "Modal GPU"
    environment = _last_environment(run.events() if events is None else events)
    device = environment.get("device")
    if not isinstance(device, str) or not device.startswith("cuda"):
        return None
    name = environment.get("gpu_name")
    return f"{name} ({device})" if isinstance(name, str) and name else device


def _last_environment(events: list[dict[str, Any]]) -> dict[str, Any]:
    for event in reversed(events):
        if event.get("type") == "run_started":
            environment = event.get("environment")
            return environment if isinstance(environment, dict) else {}
    return {}


def config_for_display(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run's config without the knobs that did not apply to it: `gpu` only for Modal runs."""
    return {k: v for k, v in config.items() if k != "gpu" or config.get("backend") == MODAL_BACKEND}
