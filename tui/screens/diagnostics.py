"""Environment & GPU diagnostics (F5): device, CUDA and driver, memory, numerics flags, versions,
and where this session's log file is.

`nsm.telemetry.diagnostics()` imports torch, so it runs in a thread worker and
never on the UI thread; the screen shows "gathering…" meanwhile. The report is
gathered again each time the screen is shown and on `r`. `c` hands this
process's cached CUDA blocks back to the driver: that helps an in-process run
only, a detached or Modal run's cache belongs to its own process.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from tui.screens.base import AppScreen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from nsm import telemetry
from nsm.runs import GPU, RunStoreError
from nsm.runs.process import this_host

DASH = "–"
LABEL_WIDTH = 9
HINT = "r refresh · c clear this process's CUDA cache"
OWN_CACHE_ONLY = "only this app's own cache (in-process runs); a detached run's cache belongs to its process"

Report = dict[str, Any]


# -- gathering (worker thread) -----------------------------------------------------------


def cpu_facts() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    return {"cores": os.cpu_count(), "usable_cores": usable, "machine": platform.machine()}


def gather_report() -> Report:
    """The diagnostics report plus CPU facts (imports torch: call it from a worker)."""
    report = telemetry.diagnostics(pid=os.getpid())
    report["cpu"] = cpu_facts()
    return report


@dataclass
class AttachedRun:
    """What the diagnostics screen shows about the run the app is attached to."""

    ref: str
    sample: dict[str, Any] | None = None
    error: str | None = None
    pid: int | None = None
    where: str = "unknown"  # "this process", "another process", "Modal", "unknown"


def read_attached_run(context: Any) -> AttachedRun | None:
    """The attached run's latest `gpu` sample and where it runs; None without one."""
    ref = getattr(context, "attached", None)
    store = getattr(context, "store", None)
    if not ref or store is None:
        return None
    try:
        run = store.get(ref)
        events = run.events()
        process = run.process_info() or {}
        remote = run.remote_info()
    except (RunStoreError, OSError) as exc:
        return AttachedRun(ref=str(ref), error=str(exc))
    sample = next(
        (e.get("sample") for e in reversed(events) if e.get("type") == GPU and isinstance(e.get("sample"), dict)),
        None,
    )
    pid = process.get("pid") if isinstance(process.get("pid"), int) else None
    if remote:
        where = "Modal"
    elif pid == os.getpid() and process.get("host") in (None, this_host()):
        where = "this process"
    elif pid is not None:
        where = "another process"
    else:
        where = "unknown"
    return AttachedRun(ref=run.ref, sample=sample, pid=pid, where=where)


@dataclass
class Gathered:
    report: Report
    attached: AttachedRun | None
    at: float


# -- formatting ----------------------------------------------------------------------------


def _size(mib: Any) -> str:
    if not isinstance(mib, (int, float)) or isinstance(mib, bool):
        return DASH
    if abs(mib) >= 1024:
        return f"{mib / 1024:.1f} GiB"
    return f"{mib:.0f} MiB"


def _pct(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return DASH
    return f"{value:.1f}%"


def _flag(value: Any) -> str:
    if value is None:
        return DASH
    return "on" if value else "off"


def _text(value: Any) -> str:
    return DASH if value is None or value == "" else str(value)


def format_cudnn_version(value: Any) -> str:
    """cuDNN's integer version: 8907 -> 8.9.7, 90100 -> 9.1.0."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return DASH
    if value >= 10000:
        major, rest = divmod(value, 10000)
    else:
        major, rest = divmod(value, 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


def _grid() -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=LABEL_WIDTH, style="bold", no_wrap=True)
    grid.add_column(ratio=1)
    return grid


class Packed:
    """Parts joined by " · ", wrapped only between parts ("numpy 2.4.6" never splits)."""

    def __init__(self, parts: list[str], sep: str = " · "):
        self.parts = [p for p in parts if p]
        self.sep = sep

    def lines(self, width: int) -> list[str]:
        lines: list[str] = []
        current = ""
        for part in self.parts:
            candidate = f"{current}{self.sep}{part}" if current else part
            if current and cell_len(candidate) > width:
                lines.append(current)
                current = part
            else:
                current = candidate
        if current:
            lines.append(current)
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines(options.max_width):
            yield Text(line, overflow="fold")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widest = max((cell_len(p) for p in self.parts), default=0)
        return Measurement(min(widest, options.max_width), cell_len(self.sep.join(self.parts)))


def _joined(parts: list[str]) -> Packed:
    return Packed(parts)


def _device_reading(report: Report) -> dict[str, Any] | None:
    device = report.get("device") if isinstance(report.get("device"), dict) else None
    if device is None:
        return None
    for reading in report.get("devices") or []:
        if isinstance(reading, dict) and reading.get("index") == device.get("index"):
            return {**reading, **{k: v for k, v in device.items() if v is not None}}
    return device


def device_section(report: Report) -> RenderableType:
    grid = _grid()
    versions = report.get("versions") if isinstance(report.get("versions"), dict) else {}
    device = _device_reading(report)
    lines: list[RenderableType] = []
    if not report.get("available"):
        reason = report.get("reason")
        lines.append(Text(f"GPU: n/a ({reason})" if reason else "GPU: n/a", style="bold"))
    elif device is None:
        count = report.get("device_count")
        lines.append(Text(f"GPU: none found (NVML sees {count if count is not None else 0} devices)", style="bold"))
    else:
        index = device.get("index")
        count = report.get("device_count")
        title = Text(_text(device.get("name")) if device.get("name") else f"GPU {index}")
        title.append(f" (GPU {index} of {count})" if count else f" (GPU {index})", style="dim")
        if device.get("lost"):
            title.append(" LOST", style="bold white on red")
            title.append(" stopped answering (see nvidia-smi, dmesg)", style="red")
        else:
            readings = []
            if device.get("util_gpu_pct") is not None:
                readings.append(f"util {device['util_gpu_pct']:.0f}%")
            if device.get("temperature_c") is not None:
                readings.append(f"{device['temperature_c']:.0f}°C")
            power, limit = device.get("power_w"), device.get("power_limit_w")
            if power is not None:
                readings.append(f"{power:.0f}/{limit:.0f} W" if limit else f"{power:.0f} W")
            if readings:
                title.append(" · " + " · ".join(readings))
        grid.add_row("GPU", title)
        grid.add_row(
            "Driver",
            _joined([_text(report.get("driver_version")), f"CUDA {_text(report.get('cuda_driver_version'))} (driver API)"]),
        )

    torch_cuda = report.get("torch_cuda_version")
    torch_version = versions.get("torch")
    if torch_version is None:
        cuda_line = Text("torch not installed")
    elif torch_cuda is None:
        cuda_line = Text(f"torch {torch_version} is a CPU build: training runs on the CPU")
    else:
        seen = report.get("cuda_available")
        state = "available" if seen else ("not available to torch" if seen is False else "availability unknown")
        cuda_line = Text(f"torch built for CUDA {torch_cuda} · {state}")
    grid.add_row("CUDA", cuda_line)

    cpu = report.get("cpu") if isinstance(report.get("cpu"), dict) else {}
    cores, usable = cpu.get("cores"), cpu.get("usable_cores")
    core_text = f"{_text(cores)} cores" + (f" ({usable} usable)" if usable not in (None, cores) else "")
    grid.add_row("CPU", _joined([core_text, _text(cpu.get("machine")), _text(versions.get("platform"))]))
    lines.append(grid)
    return Group(*lines)


MEMORY_ROWS = (
    # (label, size key, percent key, note)
    ("total", "total_mib", None, ""),
    ("used", "used_mib", "used_pct", "all processes (NVML)"),
    ("free", "free_mib", "free_pct", ""),
    ("allocated", "allocated_mib", "allocated_pct", "torch, this process"),
    ("reserved", "reserved_mib", "reserved_pct", "torch, this process"),
    ("peak alloc", "peak_allocated_mib", "peak_allocated_pct", "torch, this process"),
)


def memory_section(report: Report) -> RenderableType:
    grid = _grid()
    memory = report.get("memory") if isinstance(report.get("memory"), dict) else {}
    if not report.get("available") and all(memory.get(key) is None for _, key, _, _ in MEMORY_ROWS):
        grid.add_row("Memory", Text("n/a (no GPU)", style="dim"))
        return grid
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(style="dim")
    for label, key, pct_key, note in MEMORY_ROWS:
        table.add_row(label, _size(memory.get(key)), _pct(memory.get(pct_key)) if pct_key else "", note)
    device = _device_reading(report) or {}
    own = device.get("process_memory_mib")
    if isinstance(own, (int, float)) and not isinstance(own, bool):
        total = memory.get("total_mib")
        share = 100.0 * own / total if isinstance(total, (int, float)) and total else None
        table.add_row("this app", _size(own), _pct(share), "this process on the device (NVML)")
    grid.add_row("Memory", table)
    return grid


def flags_section(report: Report) -> RenderableType:
    flags = report.get("flags") if isinstance(report.get("flags"), dict) else {}
    grid = _grid()
    grid.add_row(
        "Flags",
        _joined(
            [
                f"TF32 matmul {_flag(flags.get('tf32_matmul'))}",
                f"TF32 cuDNN {_flag(flags.get('tf32_cudnn'))}",
                f"cuDNN benchmark {_flag(flags.get('cudnn_benchmark'))}",
                f"deterministic {_flag(flags.get('deterministic_algorithms'))}",
                f"fp32 matmul precision {_text(flags.get('float32_matmul_precision'))}",
                f"cuDNN {format_cudnn_version(flags.get('cudnn_version'))}",
            ]
        ),
    )
    return grid


def versions_section(report: Report) -> RenderableType:
    versions = report.get("versions") if isinstance(report.get("versions"), dict) else {}
    grid = _grid()
    grid.add_row(
        "Versions",
        _joined(
            [
                f"python {_text(versions.get('python'))}",
                f"torch {_text(versions.get('torch'))}",
                f"torch CUDA {_text(versions.get('torch_cuda'))}",
                f"PyG {_text(versions.get('torch_geometric'))}",
                f"numpy {_text(versions.get('numpy'))}",
                f"nvidia-ml-py {_text(versions.get('nvidia_ml_py'))}",
                f"driver {_text(versions.get('driver'))}",
                f"CUDA driver {_text(versions.get('cuda_driver'))}",
            ]
        ),
    )
    return grid


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def run_section(attached: AttachedRun | None, now: float) -> RenderableType:
    grid = _grid()
    if attached is None:
        grid.add_row("Run", Text("none attached", style="dim"))
        return grid
    if attached.error:
        grid.add_row("Run", Text(f"{attached.ref}: {attached.error}", style="red"))
        return grid
    where = attached.where
    if where == "another process" and attached.pid is not None:
        where = f"process {attached.pid}"
    line = Text(f"{attached.ref} ({where}): ")
    if attached.sample is None:
        line.append("no GPU readings yet", style="dim")
    else:
        line.append(telemetry.describe(attached.sample))
        sampled = attached.sample.get("time")
        if isinstance(sampled, (int, float)) and sampled > 0:
            line.append(f" · {_ago(now - sampled)}", style="dim")
    grid.add_row("Run", line)
    return grid


def log_section(session_log: Any) -> RenderableType:
    """Where this session's log file is (tui/session_log.py), or why there is none."""
    grid = _grid()
    path = getattr(session_log, "path", None)
    if path is not None:
        grid.add_row("Log", Text(_home_relative(path), overflow="fold"))
    else:
        problem = getattr(session_log, "problem", None) or "not kept"
        grid.add_row("Log", Text(problem, style="dim"))
    return grid


def _home_relative(path: Path) -> str:
    try:
        return str(Path("~") / Path(path).relative_to(Path.home()))
    except (ValueError, RuntimeError):  # outside the home folder, or no home at all
        return str(path)


def cache_note(attached: AttachedRun | None) -> str:
    """Why clearing here may not free what the user is looking at."""
    if attached is not None and attached.where == "Modal":
        return f"{attached.ref} runs on Modal: its cache lives on that machine"
    if attached is not None and attached.where == "another process":
        pid = f" (pid {attached.pid})" if attached.pid is not None else ""
        return f"{attached.ref} runs in another process{pid}: only that process can free its cache"
    return OWN_CACHE_ONLY


# -- the screen --------------------------------------------------------------------------


class DiagnosticsScreen(AppScreen):
    """Device, CUDA, memory, flags and versions; `r` refreshes, `c` clears the CUDA cache."""

    SUB_TITLE = "GPU & environment"
    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("c", "clear_cache", "Clear CUDA cache"),
    ]
    DEFAULT_CSS = """
    DiagnosticsScreen #diag-body {
        height: 1fr;
        padding: 0 1;
    }
    /* Blank lines only around the memory block: with a GPU the report must fit 80×24. */
    DiagnosticsScreen #diag-device, DiagnosticsScreen #diag-memory {
        margin-bottom: 1;
    }
    DiagnosticsScreen #diag-message {
        height: auto;
        max-height: 3;
        padding: 0 1;
        color: $text-muted;
    }
    DiagnosticsScreen #diag-message.-error {
        color: $error;
    }
    """

    def __init__(
        self,
        source: Callable[[], Report] | None = None,
        clear: Callable[[], Any] | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ):
        super().__init__(name=name, id=id, classes=classes)
        # Injectable so tests and snapshot apps can show fixed data.
        self._source = source or gather_report
        self._clear = clear or telemetry.clear_cache
        self.gathered: Gathered | None = None
        self._progress_shown = False

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="diag-body"):
            yield Static("gathering diagnostics…", id="diag-device")
            yield Static("", id="diag-memory")
            yield Static("", id="diag-flags")
            yield Static("", id="diag-versions")
            yield Static("", id="diag-run")
            yield Static(log_section(getattr(self.app, "session_log", None)), id="diag-log")
        yield Static(HINT, id="diag-message")
        yield Footer()

    def on_screen_resume(self) -> None:
        # Textual resumes a mode's screen twice on its first showing; one gather is enough.
        if not self._gathering():
            self.action_refresh()

    def _gathering(self) -> bool:
        return any(
            worker.node is self and worker.name == "diagnostics" and not worker.is_finished
            for worker in self.app.workers
        )

    # -- actions ---------------------------------------------------------------------------

    def action_refresh(self) -> None:
        if self.gathered is not None:
            self._say("gathering diagnostics…", progress=True)
        self._gather()

    def action_clear_cache(self) -> None:
        self._say("clearing the CUDA cache…", progress=True)
        self._clear_cache()

    # -- workers -----------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, exclusive=True, group="diagnostics", name="diagnostics")
    def _gather(self) -> Gathered:
        report = self._source()
        if not isinstance(report, dict):
            raise TypeError(f"diagnostics gave {type(report).__name__}, not a dict")
        attached = read_attached_run(getattr(self.app, "context", None))
        return Gathered(report=report, attached=attached, at=time.time())

    @work(thread=True, exit_on_error=False, group="clear-cache", name="clear-cache")
    def _clear_cache(self) -> str:
        result = self._clear()
        return str(getattr(result, "message", result))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.name == "diagnostics":
            if event.state == WorkerState.SUCCESS and isinstance(worker.result, Gathered):
                self.show(worker.result)
            elif event.state == WorkerState.ERROR:
                if self.gathered is None:
                    self.query_one("#diag-device", Static).update(Text("no report: r tries again", style="dim"))
                self._say(f"could not gather diagnostics: {_error_text(worker.error)}", error=True)
        elif worker.name == "clear-cache":
            if event.state == WorkerState.SUCCESS:
                attached = self.gathered.attached if self.gathered else None
                self._say(f"{worker.result} — {cache_note(attached)}")
                self._gather()  # reserved memory has changed
            elif event.state == WorkerState.ERROR:
                self._say(f"could not clear the CUDA cache: {_error_text(worker.error)}", error=True)

    # -- display ---------------------------------------------------------------------------

    def show(self, gathered: Gathered) -> None:
        self.gathered = gathered
        report = gathered.report
        self.query_one("#diag-device", Static).update(device_section(report))
        self.query_one("#diag-memory", Static).update(memory_section(report))
        self.query_one("#diag-flags", Static).update(flags_section(report))
        self.query_one("#diag-versions", Static).update(versions_section(report))
        self.query_one("#diag-run", Static).update(run_section(gathered.attached, gathered.at))
        if self._progress_shown:
            self._say(HINT)

    def _say(self, text: str, error: bool = False, progress: bool = False) -> None:
        """Show one message under the report (Text, so brackets in errors stay literal)."""
        self._progress_shown = progress
        message = self.query_one("#diag-message", Static)
        message.update(Text(text))
        message.set_class(error, "-error")


def _error_text(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    detail = str(error).strip().splitlines()
    return f"{type(error).__name__}: {detail[0]}" if detail else type(error).__name__
