"""The training engine: Trainer, checkpoints, evaluation, detached launches."""

from __future__ import annotations

from typing import Any


def bench_epochs(domain: str, epochs: int, device: str, **overrides: Any) -> dict[str, Any]:
    """Train `epochs` epochs of `domain` at the default config through the real engine
    (in a throw-away run store) and return the per-epoch times and rates."""
    import tempfile

    from nsm.config import RunConfig
    from nsm.runs import RunStore
    from nsm.training.trainer import Trainer

    # torch device strings ("cuda:0") name the same knob value as "cuda".
    cfg = RunConfig(domain=domain, device=str(device).split(":")[0]).replace(
        epochs=epochs, eval_every=10_000, save_every=10_000, **overrides
    )
    with tempfile.TemporaryDirectory(prefix="nsm-bench-") as root:
        run = RunStore(root).create_run(cfg)
        events: list[dict[str, Any]] = []
        outcome = Trainer(run, sinks=[events.append]).run()
    if outcome != "finished":
        failed = [e for e in events if e["type"] == "failed"]
        raise RuntimeError(failed[-1]["error"] if failed else outcome)
    ends = [e for e in events if e["type"] == "epoch_end"]
    return {
        "epoch_times": [e["epoch_time_s"] for e in ends],
        "graphs_per_s": [e["graphs_per_s"] for e in ends],
        "gpu_peak_mem_mb": [e["gpu_peak_mem_mb"] for e in ends],
    }
