"""The numbers a run's events carry, as (tag, value) pairs per epoch.

One mapping for every sink, so TensorBoard and W&B show the same series as the
dashboard's charts: train/* and val/* per epoch, gpu/* (the engine's peak, and
the epoch's GPU samples: the most memory used, the mean utilisation), and
test/* once at the end. The step of every series is the epoch.
"""

from __future__ import annotations

import math
from typing import Any

from nsm.runs import events as ev

TRAIN_KEYS = ("loss", "task_loss", "cycle_loss", "acc", "grad_norm", "lr", "epoch_time_s", "graphs_per_s")
VAL_KEYS = ("loss", "task_loss", "cycle_loss", "acc")
# Metrics the hparams view shows next to the config (their last values).
FINAL_METRICS = ("test/acc", "test/loss", "val/best_loss")


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _add(out: dict[str, float], tag: str, x: Any) -> None:
    value = _number(x)
    if value is not None:
        out[tag] = value


class EpochScalars:
    """Turns events into `(epoch, {tag: value})`; GPU samples are gathered per epoch."""

    def __init__(self) -> None:
        self._gpu_used: list[float] = []
        self._gpu_util: list[float] = []

    def feed(self, event: dict[str, Any]) -> tuple[int, dict[str, float]] | None:
        kind = event.get("type")
        out: dict[str, float] = {}
        if kind == ev.EPOCH_END:
            for key in TRAIN_KEYS:
                _add(out, f"train/{key}", event.get(key))
            _add(out, "gpu/peak_mem_mb", event.get("gpu_peak_mem_mb"))
            if self._gpu_used:
                out["gpu/memory_used_mib"] = max(self._gpu_used)
            if self._gpu_util:
                out["gpu/util_pct"] = sum(self._gpu_util) / len(self._gpu_util)
            self._gpu_used, self._gpu_util = [], []
        elif kind == ev.EVAL and event.get("split", "val") == "val":
            for key in VAL_KEYS:
                _add(out, f"val/{key}", event.get(key))
            _add(out, "val/best_loss", event.get("best_val_loss"))
        elif kind == ev.FINISHED:
            test = event.get("test") if isinstance(event.get("test"), dict) else {}
            _add(out, "test/acc", test.get("acc"))
            _add(out, "test/loss", test.get("loss"))
            _add(out, "val/best_loss", event.get("best_val_loss"))
            epoch = event.get("epochs_done")
            return (epoch if isinstance(epoch, int) else 0), out
        elif kind == ev.GPU:
            self._gather_gpu(event.get("sample"))
            return None
        elif kind in (ev.RUN_STARTED, ev.RESUMED):
            self._gpu_used, self._gpu_util = [], []
            return None
        else:
            return None
        epoch = event.get("epoch")
        if not out or not isinstance(epoch, int) or isinstance(epoch, bool):
            return None
        return epoch, out

    def _gather_gpu(self, sample: Any) -> None:
        device = training_device(sample)
        if device is None:
            return
        used = _number(device.get("memory_used_mib"))
        if used is None:
            used = _number(device.get("process_memory_mib"))
        util = _number(device.get("util_gpu_pct"))
        if used is not None:
            self._gpu_used.append(used)
        if util is not None:
            self._gpu_util.append(util)


def training_device(sample: Any) -> dict[str, Any] | None:
    """The device of a GPU sample the run trains on: the one torch reports (by UUID),
    else the one where the process holds memory, else the first; None without a GPU."""
    if not isinstance(sample, dict) or not sample.get("available"):
        return None
    devices = [d for d in sample.get("devices") or [] if isinstance(d, dict) and not d.get("lost")]
    if not devices:
        return None
    torch_memory = sample.get("torch_memory")
    uuid = torch_memory.get("uuid") if isinstance(torch_memory, dict) else None
    for device in devices:
        if uuid and device.get("uuid") == uuid:
            return device
    for device in devices:
        if (_number(device.get("process_memory_mib")) or 0) > 0:
            return device
    return devices[0]


def hparams_of(config: dict[str, Any]) -> dict[str, Any]:
    """The config as hyperparameters: numbers, booleans and strings as they are, the rest as text."""
    out: dict[str, Any] = {}
    for key, value in sorted(config.items()):
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        else:
            out[key] = "none" if value is None else str(value)
    return out
