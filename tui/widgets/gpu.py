"""GPU gauges for the dashboard: memory bar, utilisation sparkline, temperature, power.

`GpuPanel.update_sample(sample)` takes the dict carried by `gpu` events
(nsm.telemetry's sample: time, available, reason, devices, torch_memory). Such a
dict may come from another version of the engine or from Modal, so every field
may be null, missing or of the wrong type: a reading that cannot be used is shown
as "–", and nothing here raises.

The panel draws itself in one `render()` (three rows; one row when there is no
GPU) so that it costs one small repaint per sample and fits any column width.
Before the first sample it says what this machine has: "GPU: n/a (no NVIDIA
driver)" in F5's words (tui/local_gpu.py), unless the run trains elsewhere
(`remote`: Modal), where only the run's own samples can tell.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from rich.text import Text
from textual import work
from textual.widget import Widget

from tui import local_gpu

DASH = "–"
HISTORY_LEN = 120
SPARK_BARS = "▁▂▃▄▅▆▇█"


# -- reading a sample defensively -------------------------------------------------------


def _num(value: Any) -> float | None:
    """A finite number, or None for anything else (bools, strings, NaN, null)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _devices(sample: Any) -> list[dict[str, Any]]:
    devices = sample.get("devices") if isinstance(sample, dict) else None
    if not isinstance(devices, list):
        return []
    return [d for d in devices if isinstance(d, dict)]


def pick_device(sample: Any) -> dict[str, Any] | None:
    """The device the training run uses.

    The one torch's allocator reports (matched by UUID), else the one where the
    run's process holds memory, else the first.
    """
    devices = _devices(sample)
    if not devices:
        return None
    torch_memory = sample.get("torch_memory") if isinstance(sample, dict) else None
    uuid = torch_memory.get("uuid") if isinstance(torch_memory, dict) else None
    if uuid:
        for device in devices:
            if device.get("uuid") == uuid:
                return device
    for device in devices:
        if (_num(device.get("process_memory_mib")) or 0) > 0:
            return device
    return devices[0]


def gpu_unavailable_text(sample: Any) -> str | None:
    """ "GPU: n/a (reason)" when the sample says there is no GPU to read, else None.

    None also for "no sample yet": not knowing is not the same as having none.
    """
    if not isinstance(sample, dict):
        return None
    if not sample.get("available"):
        reason = sample.get("reason")
        return f"GPU: n/a ({reason})" if isinstance(reason, str) and reason.strip() else "GPU: n/a"
    if not _devices(sample):
        return "GPU: n/a (no GPU found)"
    return None


def gpu_memory_point(sample: Any) -> float | None:
    """MiB of memory in use on the training device, for the dashboard's GPU-memory chart.

    NVML's whole-device figure; where the board does not report it, this
    process's share or torch's reserved memory stand in. None without a reading.
    """
    if gpu_unavailable_text(sample) is not None or not isinstance(sample, dict):
        return None
    device = pick_device(sample)
    if device is None or device.get("lost"):
        return None
    for value in (device.get("memory_used_mib"), device.get("process_memory_mib")):
        number = _num(value)
        if number is not None:
            return number
    torch_memory = sample.get("torch_memory")
    if isinstance(torch_memory, dict):
        return _num(torch_memory.get("reserved_mib"))
    return None


# -- formatting ------------------------------------------------------------------------


def format_mib(mib: float | None, unit_of: float | None = None) -> str:
    """ "12.0 GiB" / "512 MiB"; `unit_of` picks the unit (so used/total share one)."""
    if mib is None:
        return DASH
    scale = unit_of if unit_of is not None else mib
    if scale >= 1024:
        return f"{mib / 1024:.1f} GiB"
    return f"{mib:.0f} MiB"


def _memory_text(used: float | None, total: float | None) -> str:
    if total is None:
        return f"{format_mib(used)}/{DASH}"
    unit = "GiB" if total >= 1024 else "MiB"
    divisor = 1024 if unit == "GiB" else 1
    digits = 1 if unit == "GiB" else 0
    used_text = DASH if used is None else f"{used / divisor:.{digits}f}"
    return f"{used_text}/{total / divisor:.{digits}f} {unit}"


def _pct_text(value: float | None) -> str:
    return f"{DASH}%" if value is None else f"{value:.0f}%"


def _power_text(power: float | None, limit: float | None) -> str:
    power_text = DASH if power is None else f"{power:.0f}"
    if limit is None:
        return f"{power_text} W"
    return f"{power_text}/{limit:.0f} W"


def _level_style(pct: float | None) -> str:
    if pct is None:
        return "dim"
    if pct >= 90:
        return "red"
    if pct >= 75:
        return "yellow"
    return "green"


def memory_bar(pct: float | None, width: int) -> Text:
    """A bar of `width` cells filled to `pct` percent (empty and dim when unknown)."""
    width = max(0, width)
    if pct is None:
        return Text("░" * width, style="dim")
    filled = round(width * min(max(pct, 0.0), 100.0) / 100.0)
    bar = Text("█" * filled, style=_level_style(pct))
    bar.append("░" * (width - filled), style="dim")
    return bar


def sparkline(values: Any, width: int, top: float = 100.0) -> Text:
    """The last `width` values on a fixed 0..top scale, newest on the right.

    A fixed scale (unlike textual's Sparkline, which stretches min..max) keeps
    87% → 88% from looking like a jump from empty to full.
    """
    width = max(0, width)
    recent = list(values)[-width:] if width else []
    text = Text(" " * (width - len(recent)))
    for value in recent:
        if value is None:
            text.append(" ")
            continue
        level = min(max(value / top, 0.0), 1.0)
        text.append(SPARK_BARS[min(int(level * len(SPARK_BARS)), len(SPARK_BARS) - 1)], style="cyan")
    return text


# -- the widget ------------------------------------------------------------------------


class GpuPanel(Widget):
    """Compact GPU gauges; feed it every `gpu` event's sample with `update_sample`."""

    DEFAULT_CSS = """
    GpuPanel {
        height: auto;
        min-height: 1;
    }
    """

    def __init__(self, *, history_len: int = HISTORY_LEN, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.history_len = history_len
        self.sample: dict[str, Any] | None = None
        self._device_key: Any = None
        self._last_time: Any = None
        self.util_history: deque[float | None] = deque(maxlen=history_len)
        self._names: dict[Any, str] = {}  # a lost device no longer says its name
        self.remote = False  # the run trains on another machine (Modal): this one's GPU says nothing

    def on_mount(self) -> None:
        if local_gpu.known() is None:
            self._probe_local_gpu()

    @work(thread=True, exit_on_error=False, group="local-gpu")
    def _probe_local_gpu(self) -> None:
        local_gpu.probe()
        self.app.call_from_thread(self.refresh)

    def set_remote(self, remote: bool) -> None:
        if remote != self.remote:
            self.remote = remote
            self.refresh()

    # -- data --------------------------------------------------------------------------

    def update_sample(self, sample: dict[str, Any] | None) -> None:
        """Show `sample` (None: no reading yet). Never raises on a malformed sample."""
        self.sample = sample if isinstance(sample, dict) else None
        try:
            self._record_history()
        except Exception:  # noqa: BLE001 - a strange sample must not take the dashboard down
            pass
        self.refresh(layout=True)

    def _record_history(self) -> None:
        if gpu_unavailable_text(self.sample) is not None:
            return
        device = pick_device(self.sample)
        if device is None:
            return
        # NVML's index, not the UUID: a lost device can no longer tell its UUID.
        key = device.get("index", device.get("uuid"))
        if isinstance(device.get("name"), str):
            self._names[key] = device["name"]
        if key != self._device_key:
            # Another device is now the training one: its history starts afresh.
            self._device_key = key
            self.util_history.clear()
            self._last_time = None
        sample_time = self.sample.get("time") if self.sample else None
        if sample_time is not None and sample_time == self._last_time:
            return  # the same sample fed twice (a repaint, a re-attach) is not new history
        self._last_time = sample_time
        if device.get("lost"):
            return
        self.util_history.append(_num(device.get("util_gpu_pct")))

    @property
    def device(self) -> dict[str, Any] | None:
        """The device the panel shows."""
        if gpu_unavailable_text(self.sample) is not None:
            return None
        return pick_device(self.sample)

    # -- drawing -----------------------------------------------------------------------

    def render(self) -> Text:
        width = self.size.width or 80
        try:
            return self._draw(width)
        except Exception:  # noqa: BLE001 - last line of defence; _draw already tolerates junk
            return Text("GPU: readings unreadable", style="dim", no_wrap=True, overflow="ellipsis")

    def _draw(self, width: int) -> Text:
        if self.sample is None:
            here = None if self.remote else local_gpu.known()
            if here is not None and not here.available:
                text = f"GPU: n/a ({here.reason})" if here.reason else "GPU: n/a"
                return Text(text, style="dim", no_wrap=True, overflow="ellipsis")
            return Text("GPU: no readings yet", style="dim", no_wrap=True, overflow="ellipsis")
        unavailable = gpu_unavailable_text(self.sample)
        if unavailable is not None:
            return Text(unavailable, style="dim", no_wrap=True, overflow="ellipsis")
        device = pick_device(self.sample) or {}
        lines = [
            self._title_line(device, width),
            self._memory_line(device, width),
            self._util_line(device, width),
        ]
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        return Text("\n", no_wrap=True).join(lines)

    def _title_line(self, device: dict[str, Any], width: int) -> Text:
        index = device.get("index")
        label = f"GPU {index}" if isinstance(index, int) else "GPU"
        name = device.get("name") if isinstance(device.get("name"), str) else None
        if name is None and device.get("lost"):
            name = self._names.get(device.get("index", device.get("uuid")))
        others = len(_devices(self.sample)) - 1
        if device.get("lost"):
            line = Text(f"{label} ", style="bold")
            line.append("LOST", style="bold white on red")
            line.append(f" {name + ' ' if name else ''}stopped answering (see nvidia-smi, dmesg)", style="red")
            line.truncate(width, overflow="ellipsis")
            return line

        right = f"{_temp_text(device)} · {_power_text(_num(device.get('power_w')), _num(device.get('power_limit_w')))}"
        if others > 0:
            right += f" · +{others} GPU" + ("s" if others > 1 else "")
        left = Text(label, style="bold")
        if name:
            left.append(f" {name}")
        room = width - len(right) - 1
        if room < len(label):
            # Too narrow for both: the readings matter more than the board's name.
            line = Text(right, no_wrap=True)
            line.truncate(width, overflow="ellipsis")
            return line
        left.truncate(room, overflow="ellipsis")
        line = left
        line.append(" " * (width - len(left) - len(right)))
        line.append(right)
        return line

    def _memory_line(self, device: dict[str, Any], width: int) -> Text:
        used, total = _num(device.get("memory_used_mib")), _num(device.get("memory_total_mib"))
        pct = 100.0 * used / total if used is not None and total else None
        suffix = f" {_pct_text(pct):>4} {_memory_text(used, total)}"
        line = Text("mem  ", style="bold")
        line.append_text(memory_bar(pct, width - len(line) - len(suffix)))
        line.append(suffix)
        return line

    def _util_line(self, device: dict[str, Any], width: int) -> Text:
        util = None if device.get("lost") else _num(device.get("util_gpu_pct"))
        suffix = f" {_pct_text(util):>4}"
        line = Text("util ", style="bold")
        line.append_text(sparkline(self.util_history, width - len(line) - len(suffix)))
        line.append(suffix)
        return line


def _temp_text(device: dict[str, Any]) -> str:
    temp = _num(device.get("temperature_c"))
    return f"{DASH}°C" if temp is None else f"{temp:.0f}°C"


__all__ = [
    "HISTORY_LEN",
    "GpuPanel",
    "format_mib",
    "gpu_memory_point",
    "gpu_unavailable_text",
    "memory_bar",
    "pick_device",
    "sparkline",
]
