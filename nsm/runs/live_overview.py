"""Every run that trains now, one row each: the data of the live overview (F6, `nsm-tui top`).

Torch-free and cheap enough to poll every second or two over hundreds of runs:
a run's state comes from the run-state cache (an unchanged log costs one stat, a
grown one is read from where the last read stopped), and only the few runs that
still train get their log's tail read, for the newest progress and GPU sample.

A run trains now when its latest attempt has no ending and something says it is
alive: its lock is held, its process lives on this host, or its heartbeat is
fresh. A Modal run is kept while its latest attempt has no ending and Modal has
not reported the call over, since it may train on Modal with nobody mirroring it;
its row says whether its mirror runs, reconnects or has gone quiet.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from nsm.execution.render import fmt_duration, number
from nsm.runs import events as ev
from nsm.runs import lock as run_lock
from nsm.runs.cache import CACHE
from nsm.runs.errors import RunStoreError
from nsm.runs.names import is_valid_run_name
from nsm.runs.process import pid_alive, this_host
from nsm.runs.store import HEARTBEAT_FILE, PROCESS_FILE, REMOTE_FILE, Run, RunStore

try:  # flock is POSIX; elsewhere a Modal run's mirror cannot be probed
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# Backends, as the overview names them.
IN_APP, LOCAL, MODAL, OTHER_HOST = "in-app", "local", "modal", "remote"
# States.
RUNNING = "running"
STARTING = "starting"  # alive, no progress yet (loading data, building the model)
STALE_HEARTBEAT = "no heartbeat"  # alive, but the engine has not touched its heartbeat lately
RECONNECTING = "reconnecting"  # a Modal run whose mirror waits for Modal to answer again
NO_MIRROR = "no mirror"  # a Modal run that nobody mirrors here: attach restarts the mirror
STATES = (RUNNING, STARTING, STALE_HEARTBEAT, RECONNECTING, NO_MIRROR)

# The engine touches its heartbeat every 5 s and a Modal mirror every 5 s while the
# call lives: three missed beats and more is worth a word.
HEARTBEAT_QUIET_S = 20.0
# A mirror asks Modal whether the call still runs every 10 s and beats when it does.
MODAL_HEARTBEAT_QUIET_S = 45.0
# A Modal run whose last sign of life is older than this is not shown (its call
# cannot still be running: Modal's own timeout is shorter).
MODAL_FORGET_S = 24 * 3600.0
MIRROR_LOCK_FILE = ".mirror.lock"  # remote.mirror's lock (nsm never imports remote)
MIRROR_LOG_FILE = "mirror.log"
SWEEPS_DIR = ".sweeps"
_TAIL_BYTES = 32 * 1024


@dataclass(frozen=True)
class LiveRow:
    """One run that trains now."""

    ref: str
    path: Path
    backend: str  # IN_APP / LOCAL / MODAL / OTHER_HOST
    state: str  # one of STATES
    epoch: int | None  # the epoch in progress (1-based), else the last completed one
    epochs: int | None
    step: int | None
    steps: int | None
    graphs_per_s: float | None
    eta_s: float | None  # the engine's whole-run estimate, at `progress_t`
    progress_t: float | None  # when that estimate was made
    gpu: dict[str, Any] | None  # the newest `gpu` sample (fields may be None)
    last_event_t: float | None
    heartbeat_age_s: float | None
    pid: int | None = None
    host: str | None = None
    sweep: str | None = None  # "lr-grid, point 3 of 4" for a sweep point
    note: str | None = None  # what the state means (the mirror's last word, say)

    @property
    def name(self) -> str:
        return self.ref.split("/", 1)[1]

    @property
    def domain(self) -> str:
        return self.ref.split("/", 1)[0]

    def eta_at(self, now: float) -> float | None:
        """The whole-run ETA as of `now`: the engine's estimate, less the time since it was made."""
        if self.eta_s is None:
            return None
        if self.progress_t is None:
            return self.eta_s
        return max(0.0, self.eta_s - max(0.0, now - self.progress_t))

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {
            "run": self.name, "domain": self.domain, "backend": self.backend, "state": self.state,
            "epoch": self.epoch, "epochs": self.epochs, "step": self.step, "steps": self.steps,
            "graphs_per_s": self.graphs_per_s, "eta_s": self.eta_at(now), "gpu": self.gpu,
            "last_event_t": self.last_event_t, "heartbeat_age_s": self.heartbeat_age_s,
            "pid": self.pid, "host": self.host, "sweep": self.sweep, "note": self.note, "path": str(self.path),
        }  # fmt: skip


@dataclass
class _Tail:
    stamp: tuple[int, int]
    progress: dict[str, Any] | None
    gpu: dict[str, Any] | None


@dataclass
class LiveCollector:
    """Collects the live rows of one store; keeps what it read between polls (tails, sweeps)."""

    store: RunStore
    _tails: dict[str, _Tail] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def collect(self, in_app: Iterable[str] = (), now: float | None = None) -> list[LiveRow]:
        """The runs that train now, newest activity first. `in_app`: refs that train in
        the calling process (the app's session), named so whatever their lock says."""
        now = time.time() if now is None else now
        mine = set(in_app)
        sweeps = sweep_points(self.store.root)
        rows = []
        seen: set[str] = set()
        for path in _run_dirs(self.store.root):
            run = Run(path)
            seen.add(str(run.events_path))
            try:
                row = self._row(run, mine, sweeps.get(run.ref), now)
            except (OSError, RunStoreError):
                continue  # deleted or unreadable while we looked: not a run that trains
            if row is not None:
                rows.append(row)
        with self._lock:
            self._tails = {k: v for k, v in self._tails.items() if k in seen}
        rows.sort(key=lambda r: (-(r.last_event_t or 0.0), r.ref))
        return rows

    def _row(self, run: Run, mine: set[str], sweep: str | None, now: float) -> LiveRow | None:
        state, _bad, size = CACHE.state(run.events_path)
        holder = run_lock.holder(run.path)
        remote = _json(run.path / REMOTE_FILE)
        info = _json(run.path / PROCESS_FILE)
        beat = _age(run.path / HEARTBEAT_FILE, now)
        ended = state.status is not None and holder is None
        if ended:
            return None
        pid = holder.pid if holder is not None else _int(info.get("pid")) if info else None
        host = holder.host if holder is not None else (info or {}).get("host")
        note = None
        if run.ref in mine or (holder is not None and holder.pid == os.getpid() and holder.host == this_host()):
            backend, live = IN_APP, True
        elif remote is not None:
            backend = MODAL
            if remote.get("ended") and state.status is None and size == 0:
                return None
            mirrored = _mirror_alive(run.path)
            last_sign = max(x for x in (state.last_event_t, now - beat if beat is not None else None, 0.0) if x is not None)
            if not mirrored and now - last_sign > MODAL_FORGET_S:
                return None
            live = True
            if not mirrored:
                note = "nobody mirrors this run here: attach (enter) starts a mirror"
                return self._make(run, state, NO_MIRROR, MODAL, beat, now, pid, host, sweep, note)
            word = _mirror_word(run.path)
            if word is not None:
                return self._make(run, state, RECONNECTING, MODAL, beat, now, pid, host, sweep, word)
        elif holder is not None:
            backend, live = (LOCAL if host in (None, this_host()) else OTHER_HOST), True
        elif info is not None and info.get("host") == this_host():
            started = info.get("started")
            live = pid_alive(info.get("pid"), started if isinstance(started, (int, float)) else None)
            backend = LOCAL
        else:
            live = beat is not None and beat < 60.0
            backend = OTHER_HOST
        if not live:
            return None
        return self._make(run, state, None, backend, beat, now, pid, host, sweep, note)

    def _make(self, run: Run, state: Any, forced: str | None, backend: str, beat: float | None, now: float,
              pid: int | None, host: str | None, sweep: str | None, note: str | None) -> LiveRow:  # fmt: skip
        progress, gpu = self._tail(run)
        epochs = state.epochs
        if epochs is None:
            config = _json(run.config_path) or {}
            epochs = _int(config.get("epochs"))
        epoch: int | None = state.epoch or None
        step = steps = None
        rate = eta = progress_t = None
        if progress is not None and _int(progress.get("epoch")) is not None:
            if progress.get("type") == ev.PROGRESS:
                epoch = _int(progress.get("epoch"))
                step, steps = _int(progress.get("step")), _int(progress.get("steps"))
            else:
                epoch = max(epoch or 0, _int(progress.get("epoch")) or 0) or None
            rate, eta = number(progress.get("graphs_per_s")), number(progress.get("eta_s"))
            progress_t = number(progress.get("t"))
        if forced is not None:
            chosen = forced
        elif beat is not None and backend != IN_APP and beat > (MODAL_HEARTBEAT_QUIET_S if backend == MODAL else HEARTBEAT_QUIET_S):
            chosen = STALE_HEARTBEAT
            note = note or f"no heartbeat for {beat:.0f} s: the trainer may hang (or a slow step)"
        elif progress is None and not state.epoch:
            chosen = STARTING
        else:
            chosen = RUNNING
        return LiveRow(
            ref=run.ref, path=run.path, backend=backend, state=chosen, epoch=epoch, epochs=epochs,
            step=step, steps=steps, graphs_per_s=rate, eta_s=eta, progress_t=progress_t, gpu=gpu,
            last_event_t=state.last_event_t, heartbeat_age_s=beat, pid=pid, host=host, sweep=sweep, note=note,
        )  # fmt: skip

    def _tail(self, run: Run) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The newest progress (or epoch_end) event and gpu sample, from the log's last bytes,
        read again only when the log changed."""
        key = str(run.events_path)
        try:
            st = run.events_path.stat()
        except OSError:
            return None, None
        stamp = (st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._tails.get(key)
        if hit is not None and hit.stamp == stamp:
            return hit.progress, hit.gpu
        progress, gpu = read_tail(run.events_path)
        with self._lock:
            self._tails[key] = _Tail(stamp, progress, gpu)
        return progress, gpu


def read_tail(path: Path, size: int = _TAIL_BYTES) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(newest progress or epoch_end event, newest gpu sample) among the log's last `size` bytes."""
    try:
        fd = ev.open_regular(path)
    except (OSError, RunStoreError):
        return None, None
    try:
        end = os.fstat(fd).st_size
        os.lseek(fd, max(0, end - size), os.SEEK_SET)
        data = os.read(fd, size)
    except OSError:
        return None, None
    finally:
        os.close(fd)
    progress = gpu = None
    for line in reversed(data.split(b"\n")):
        if progress is not None and gpu is not None:
            break
        wants_progress = progress is None and (b'"progress"' in line or b'"epoch_end"' in line)
        wants_gpu = gpu is None and b'"gpu"' in line
        if not (wants_progress or wants_gpu):
            continue
        event = ev.decode_line(line)  # None for the cut first line of the tail, or a torn last one
        if event is None:
            continue
        kind = event.get("type")
        if progress is None and kind in (ev.PROGRESS, ev.EPOCH_END):
            progress = event
        elif gpu is None and kind == ev.GPU and isinstance(event.get("sample"), dict):
            gpu = event["sample"]
    return progress, gpu


def sweep_points(root: Path) -> dict[str, str]:
    """ref -> "SWEEP, point N of M" for every point of every sweep of the store (sweep.json
    is parsed again only when it changed)."""
    out: dict[str, str] = {}
    try:
        entries = [e for e in os.scandir(root / SWEEPS_DIR) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return out
    for entry in entries:
        try:
            raw = CACHE.json_object(Path(entry.path) / "sweep.json", "sweep file")
        except RunStoreError:
            continue
        points = raw.get("points") if isinstance(raw, dict) else None
        if not isinstance(points, list):
            continue
        for i, point in enumerate(points):
            if isinstance(point, dict) and isinstance(point.get("run"), str):
                out[point["run"]] = f"{entry.name}, point {i + 1} of {len(points)}"
    return out


def _run_dirs(root: Path) -> Iterable[Path]:
    try:
        domains = [e for e in os.scandir(root) if is_valid_run_name(e.name) and e.is_dir()]
    except OSError:
        return
    for d in sorted(domains, key=lambda e: e.name):
        try:
            runs = [e for e in os.scandir(d.path) if is_valid_run_name(e.name) and e.is_dir()]
        except OSError:
            continue
        for r in sorted(runs, key=lambda e: e.name):
            yield Path(r.path)


def _mirror_alive(run_path: Path) -> bool:
    """Whether some process holds the run's mirror lock (a shared probe fails against its exclusive lock)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(run_path / MIRROR_LOCK_FILE, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _mirror_word(run_path: Path) -> str | None:
    """The mirror's note while it is reconnecting to Modal (its log's last line says so), else None."""
    try:
        with open(run_path / MIRROR_LOG_FILE, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 2048))
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return None
    if lines and "reconnecting" in lines[-1]:
        return lines[-1].strip()
    return None


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return CACHE.json_object(path, path.name)
    except RunStoreError:
        return None


def _age(path: Path, now: float) -> float | None:
    try:
        return max(0.0, now - path.stat().st_mtime)
    except OSError:
        return None


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None




# ----------------------------------------------------------------- text cells


duration_text = fmt_duration  # '42s', '12m05s', '3h20m', '-': as every other viewer writes it


def epoch_text(row: LiveRow) -> str:
    if row.epoch is None:
        return f"-/{row.epochs}" if row.epochs else "-"
    return f"{row.epoch}/{row.epochs}" if row.epochs else str(row.epoch)


def rate_text(row: LiveRow) -> str:
    return "-" if row.graphs_per_s is None else f"{row.graphs_per_s:.0f}"


def gpu_text(row: LiveRow) -> str:
    """'87% 12.1G' (utilisation and memory used of the run's first GPU, from its newest
    sample; nsm.telemetry's format), 'n/a' without one (a CPU run, no driver)."""
    sample = row.gpu or {}
    devices = sample.get("devices") if isinstance(sample.get("devices"), list) else []
    device = devices[0] if devices and isinstance(devices[0], dict) else {}
    util, mem = number(device.get("util_gpu_pct")), number(device.get("memory_used_mib"))
    parts = []
    if util is not None:
        parts.append(f"{util:.0f}%")
    if mem is not None:
        parts.append(f"{mem / 1024:.1f}G")
    return " ".join(parts) or "n/a"


def table_rows(rows: Iterable[LiveRow], now: float) -> list[list[str]]:
    """The overview's cells as text: run, backend, state, epoch, graphs/s, ETA, GPU."""
    return [
        [r.ref, r.backend, r.state, epoch_text(r), rate_text(r), duration_text(r.eta_at(now)), gpu_text(r)] for r in rows
    ]


COLUMNS = ("run", "backend", "state", "epoch", "g/s", "ETA", "GPU")  # g/s: graphs per second (80 columns)


def describe(row: LiveRow, now: float) -> str:
    """One line of detail about a row: where it trains and what its state means."""
    parts = [row.ref]
    if row.pid:
        parts.append(f"pid {row.pid}" + (f" on {row.host}" if row.host and row.host != this_host() else ""))
    if row.step is not None and row.steps:
        parts.append(f"step {row.step}/{row.steps}")
    if row.last_event_t is not None:
        parts.append(f"last event {duration_text(max(0.0, now - row.last_event_t))} ago")
    if row.sweep:
        parts.append(f"sweep {row.sweep}")
    text = " · ".join(parts)
    return f"{text}\n{row.note}" if row.note else text


__all__ = [
    "COLUMNS",
    "IN_APP",
    "LOCAL",
    "MODAL",
    "NO_MIRROR",
    "OTHER_HOST",
    "RECONNECTING",
    "RUNNING",
    "STALE_HEARTBEAT",
    "STARTING",
    "STATES",
    "LiveCollector",
    "LiveRow",
    "describe",
    "duration_text",
    "read_tail",
    "sweep_points",
    "table_rows",
]
