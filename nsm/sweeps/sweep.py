"""A sweep on disk: `<root>/.sweeps/<name>/` beside the runs it queues.

    sweep.json       the points (config, run ref, state), rewritten atomically
    runner.json      who runs the queue now (pid, host, token); absent when idle
    stop_requested   asks the runner to stop after a checkpoint of each running point
    runner.log       output of a detached runner

The folder starts with '.', which the run store treats as "not a run", so
listings never mistake a sweep for a domain. Each point is an ordinary run
(`<root>/<domain>/<sweep>-<NN>`), created with the sweep, so the runs browser
and comparisons see every point; sweep.json only adds the queue around them.
A sweep over several seeds (`seeds` in sweep.json) has one point per grid point
and seed, the repeats of a grid point next to each other and named after it
and the seed (`<sweep>-<NN>-s<SEED>`); the queue treats them as any other point.

Only one process writes sweep.json at a time: the creator once, then the
runner holding runner.json.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from nsm.atomic import atomic_write_json
from nsm.config import FIELDS, ConfigError, RunConfig, validate_config
from nsm.runs import Run, RunStore, RunStoreError
from nsm.runs.cache import load_json_object
from nsm.runs.names import NAME_MAX_LEN, RunNameError, validate_run_name
from nsm.runs.process import pid_alive, this_host
from nsm.runs.stop_request import StopRequests
from nsm.sweeps.grid import Axis

SWEEPS_DIR = ".sweeps"
SWEEP_FILE = "sweep.json"
RUNNER_FILE = "runner.json"
LOG_FILE = "runner.log"
FORMAT = "nsm-sweep"
VERSION = 1

PENDING, RUNNING, DONE, FAILED, STOPPED = "pending", "running", "done", "failed", "stopped"
POINT_STATES = (PENDING, RUNNING, DONE, FAILED, STOPPED)

# Room for "-NN-<domain>" after the sweep name in a point's run name.
SWEEP_NAME_MAX_LEN = NAME_MAX_LEN - 16
DEFAULT_METRIC = "best_val_loss"  # ranking never selects on the test set


class SweepError(RunStoreError):
    """A sweep that cannot be created, found, read or run; the message says why."""


class SweepNotFound(SweepError):
    pass


class SweepExists(SweepError):
    pass


class SweepBusy(SweepError):
    """Another runner holds the sweep."""


@dataclass
class Point:
    index: int  # 0-based; shown 1-based
    run: str  # "domain/name"
    values: dict[str, Any]  # the knobs that vary across the sweep
    config: dict[str, Any]
    state: str = PENDING  # as last recorded by a runner
    started: float | None = None
    ended: float | None = None
    outcome: str | None = None  # the trainer's last outcome
    error: str | None = None
    attempts: int = 0

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def domain(self) -> str:
        return self.run.split("/", 1)[0]

    @property
    def run_name(self) -> str:
        return self.run.split("/", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "run": self.run,
            "values": self.values,
            "config": self.config,
            "state": self.state,
            "started": self.started,
            "ended": self.ended,
            "outcome": self.outcome,
            "error": self.error,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Point":
        state = d.get("state") if d.get("state") in POINT_STATES else PENDING
        return cls(
            index=int(d["index"]),
            run=str(d["run"]),
            values=dict(d.get("values") or {}),
            config=dict(d["config"]),
            state=state,
            started=_num(d.get("started")),
            ended=_num(d.get("ended")),
            outcome=d.get("outcome") if isinstance(d.get("outcome"), str) else None,
            error=d.get("error") if isinstance(d.get("error"), str) else None,
            attempts=int(d.get("attempts") or 0),
        )


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _seeds(x: Any) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) and x >= 1 else 1


@dataclass
class SweepData:
    name: str
    label: str
    created: float
    metric: str
    knobs: list[str]
    axes: list[dict[str, Any]]
    points: list[Point] = field(default_factory=list)
    seeds: int = 1  # runs per grid point, SEED, SEED+1, ...

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "label": self.label,
            "created": self.created,
            "metric": self.metric,
            "knobs": self.knobs,
            "axes": self.axes,
            "seeds": self.seeds,
            "points": [p.to_dict() for p in self.points],
        }


def sweeps_root(store: RunStore) -> Path:
    return store.root / SWEEPS_DIR


class Sweep(StopRequests):
    """One sweep folder. Cheap to create; every read goes to the disk."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.name = self.path.name
        # <root>/.sweeps/<name>: the run store is two levels up.
        self.store = RunStore(self.path.parent.parent)

    def __repr__(self) -> str:
        return f"Sweep({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sweep) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    file = property(lambda self: self.path / SWEEP_FILE)
    runner_path = property(lambda self: self.path / RUNNER_FILE)
    log_path = property(lambda self: self.path / LOG_FILE)

    def exists(self) -> bool:
        return self.file.is_file()

    # -- the sweep file

    def load(self) -> SweepData:
        try:
            raw = load_json_object(self.file, "sweep file")
        except RunStoreError as exc:
            raise SweepError(str(exc)) from None
        if raw is None:
            raise SweepNotFound(f"sweep {self.name} has no {SWEEP_FILE} (expected at {self.file}; deleted?)")
        if raw.get("format") != FORMAT or not isinstance(raw.get("points"), list):
            raise SweepError(f"{self.file} is not a sweep file (no {FORMAT!r} format or no points)")
        try:
            points = [Point.from_dict(p) for p in raw["points"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise SweepError(f"{self.file} has a damaged point ({type(exc).__name__}: {exc})") from None
        metric = raw.get("metric") if isinstance(raw.get("metric"), str) else DEFAULT_METRIC
        return SweepData(
            name=str(raw.get("name") or self.name),
            label=str(raw.get("label") or "sweep"),
            created=_num(raw.get("created")) or 0.0,
            metric=metric,
            knobs=[k for k in raw.get("knobs") or [] if k in FIELDS],
            axes=[a for a in raw.get("axes") or [] if isinstance(a, dict)],
            points=points,
            seeds=_seeds(raw.get("seeds")),
        )

    def save(self, data: SweepData) -> None:
        atomic_write_json(self.file, data.to_dict())

    def update_point(self, index: int, **changes: Any) -> Point:
        """Record what happened to a point (the runner's job: it is the only writer)."""
        data = self.load()
        point = data.points[index]
        for key, value in changes.items():
            if not hasattr(point, key):
                raise AttributeError(key)
            setattr(point, key, value)
        self.save(data)
        return point

    def run_of(self, point: Point) -> Run:
        return Run(self.store.root / point.domain / point.run_name)

    # -- who runs the queue

    def runner_info(self) -> dict[str, Any] | None:
        try:
            return load_json_object(self.runner_path, "runner info")
        except RunStoreError:
            # Half-written by a runner starting right now: a runner, if it is recent.
            try:
                age = time.time() - self.runner_path.stat().st_mtime
            except OSError:
                return None
            return {"pid": None, "host": this_host(), "unreadable": True, "age": age}

    def runner_alive(self) -> bool:
        return runner_is_alive(self.runner_info())

    def acquire_runner(self, *, mode: str, token: str | None = None) -> str:
        """Take the queue for this process (or, with the token of a launcher's
        claim, take over that claim). SweepBusy if another live runner holds it."""
        info = self.runner_info()
        if info is not None and token is not None and info.get("token") == token:
            self._write_runner(token, mode)
            return token
        if info is not None and runner_is_alive(info):
            raise SweepBusy(self._busy_message(info))
        if info is not None:
            self._remove_runner_file()  # left by a runner that died
        token = secrets.token_hex(8)
        self._claim(token, mode, os.getpid())
        return token

    def claim_for_launch(self) -> str:
        """Claim the queue before a detached runner exists (so two quick starts
        cannot both launch one); the runner takes the claim over with the token."""
        return self.acquire_runner(mode="launching")

    def hand_over(self, token: str, pid: int, mode: str = "detached") -> None:
        """The launcher names the runner's pid in its claim."""
        self._write_runner(token, mode, pid)

    def release_runner(self, token: str) -> None:
        info = self.runner_info()
        if info is not None and info.get("token") == token:
            self._remove_runner_file()

    def _claim(self, token: str, mode: str, pid: int) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(self._runner_record(token, mode, pid), indent=2).encode()
        try:
            fd = os.open(self.runner_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            info = self.runner_info() or {}
            raise SweepBusy(self._busy_message(info)) from None
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_runner(self, token: str, mode: str, pid: int | None = None) -> None:
        atomic_write_json(self.runner_path, self._runner_record(token, mode, pid or os.getpid()))

    @staticmethod
    def _runner_record(token: str, mode: str, pid: int) -> dict[str, Any]:
        return {"pid": pid, "host": this_host(), "started": time.time(), "mode": mode, "token": token}

    def _remove_runner_file(self) -> None:
        try:
            self.runner_path.unlink()
        except FileNotFoundError:
            pass

    def _busy_message(self, info: Mapping[str, Any]) -> str:
        who = f"pid {info.get('pid')} on {info.get('host')}" if info.get("pid") else "another process"
        return f"sweep {self.name} is already running ({who}); stop it with `nsm-tui sweep stop {self.name}`"


_UNREADABLE_GRACE_S = 10.0


def runner_is_alive(info: Mapping[str, Any] | None) -> bool:
    if info is None:
        return False
    if info.get("unreadable"):
        return float(info.get("age") or 0.0) < _UNREADABLE_GRACE_S
    if info.get("host") != this_host():
        return True  # cannot tell from here; a stop request reaches it through the folder
    started = info.get("started")
    return pid_alive(info.get("pid"), started if isinstance(started, (int, float)) else None)


# ------------------------------------------------------------------ creation


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "sweep"


def generate_sweep_name(label: str = "sweep", now: float | None = None) -> str:
    """`sweep-1201-2044-6a7d`: its points' runs (`…-01`) stay short in 80-column tables."""
    from nsm.runs.names import fresh_stem

    stem = fresh_stem(now)
    return f"{_slug(label)[: SWEEP_NAME_MAX_LEN - len(stem) - 1]}-{stem}"


def validate_sweep_name(name: str) -> str:
    try:
        validate_run_name(name, what="sweep name")
    except RunNameError as exc:
        raise SweepError(str(exc)) from None
    if len(name) > SWEEP_NAME_MAX_LEN:
        raise SweepError(
            f"invalid sweep name {name!r}: it is {len(name)} characters long (at most {SWEEP_NAME_MAX_LEN}, "
            "leaving room for the point numbers in its runs' names)"
        )
    return name


def varying_knobs(configs: Sequence[RunConfig], ignore: Sequence[str] = ()) -> list[str]:
    """Knobs whose value differs between points, in the config's order."""
    dicts = [c.to_dict() for c in configs]
    return [k for k in FIELDS if k not in ignore and len({json.dumps(d[k]) for d in dicts}) > 1]


def point_run_names(sweep_name: str, configs: Sequence[RunConfig], seeds: int = 1) -> list[str]:
    """NAME-NN (and -DOMAIN when the sweep has several); over several seeds NN is the
    grid point and -sSEED follows it: NAME-01-s42, NAME-01-s43, NAME-02-s42, ..."""
    width = max(2, len(str(len(configs) // seeds)))
    several_domains = len({c.domain for c in configs}) > 1
    return [
        f"{sweep_name}-{i // seeds + 1:0{width}d}" + (f"-s{c.seed}" if seeds > 1 else "") + (f"-{c.domain}" if several_domains else "")
        for i, c in enumerate(configs)
    ]


def create_sweep(
    store: RunStore,
    configs: Sequence[RunConfig],
    *,
    name: str | None = None,
    label: str = "sweep",
    axes: Sequence[Axis] = (),
    metric: str = DEFAULT_METRIC,
    seeds: int = 1,
) -> Sweep:
    """Write the sweep folder and one run per point (all pending). With `seeds` > 1 the
    configs are each grid point's repeats over its seeds, one after another
    (nsm.sweeps.grid.repeat_over_seeds)."""
    if not configs:
        raise SweepError("a sweep needs at least one config")
    if seeds < 1 or len(configs) % seeds:
        raise SweepError(f"{len(configs)} configs are not whole grid points of {seeds} seeds each")
    name = validate_sweep_name(name) if name is not None else generate_sweep_name(label)
    sweep = Sweep(sweeps_root(store) / name)
    if sweep.path.exists():
        raise SweepExists(f"a sweep named {name!r} already exists ({sweep.path}); choose another name")
    run_names = point_run_names(name, configs, seeds)
    too_long = max(run_names, key=len)
    if len(too_long) > NAME_MAX_LEN:
        raise SweepError(
            f"its runs' names would be up to {len(too_long)} characters long ({too_long}; at most {NAME_MAX_LEN}): "
            "choose a shorter sweep name"
        )
    taken = {ref.split("/", 1)[1]: ref for ref in store.refs()}
    clash = [taken[n] for n in run_names if n in taken]
    if clash:
        raise SweepExists(f"runs named like this sweep's points already exist ({', '.join(clash[:3])}); choose another sweep name")
    # Over several seeds SEED tells a point's repeats apart, not the points: no knob column.
    ignore = ("seed",) if seeds > 1 else ()
    knobs = [a.knob for a in axes if len(a.values) > 1] or varying_knobs(configs, ignore) or [a.knob for a in axes]
    points = [
        Point(
            index=i,
            run=f"{cfg.domain}/{run_name}",
            values={k: cfg.to_dict()[k] for k in knobs},
            config=cfg.to_dict(),
        )
        for i, (cfg, run_name) in enumerate(zip(configs, run_names))
    ]
    data = SweepData(
        name=name,
        label=label,
        created=time.time(),
        metric=metric,
        knobs=knobs,
        axes=[{"knob": a.knob, "values": list(a.values)} for a in axes],
        points=points,
        seeds=seeds,
    )
    sweeps_root(store).mkdir(parents=True, exist_ok=True)
    try:
        sweep.path.mkdir()
    except FileExistsError:
        raise SweepExists(f"a sweep named {name!r} already exists ({sweep.path}); choose another name") from None
    created: list[Run] = []
    try:
        sweep.save(data)
        for cfg, run_name in zip(configs, run_names):
            created.append(store.create_run(cfg, name=run_name))
    except BaseException:
        for run in created:
            shutil.rmtree(run.path, ignore_errors=True)
        shutil.rmtree(sweep.path, ignore_errors=True)
        raise
    return sweep


def point_config(point: Point) -> RunConfig:
    try:
        return validate_config(point.config)
    except ConfigError as exc:
        raise SweepError(f"point {point.number} has an invalid config in {SWEEP_FILE}: {exc}") from None


# ------------------------------------------------------------------- lookup


def list_sweeps(store: RunStore) -> list[Sweep]:
    """Every sweep of the store, newest first (by folder creation)."""
    root = sweeps_root(store)
    try:
        entries = [e for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return []
    found = []
    for entry in entries:
        sweep = Sweep(entry.path)
        try:
            raw = load_json_object(sweep.file, "sweep file")
        except RunStoreError:
            raw = {}  # listed, so that opening it can say what is wrong
        if raw is None:
            continue  # a folder without a sweep file: half created or deleted
        found.append((_num(raw.get("created")) or 0.0, entry.name, sweep))
    found.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [s for _, _, s in found]


def get_sweep(store: RunStore, name: str) -> Sweep:
    text = name.strip()
    try:
        validate_run_name(text, what="sweep name")
    except RunNameError as exc:
        raise SweepNotFound(f"no sweep {text!r}: {exc}") from None
    sweep = Sweep(sweeps_root(store) / text)
    if not sweep.exists():
        names = [s.name for s in list_sweeps(store)]
        if not names:
            raise SweepNotFound(f"no sweep {text!r}: the store {store.root} has no sweeps")
        import difflib

        close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"sweeps: {', '.join(names[:8])}"
        raise SweepNotFound(f"no sweep {text!r} in {store.root}; {hint}")
    return sweep
