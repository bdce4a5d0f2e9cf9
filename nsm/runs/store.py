"""The run store: a folder of run directories, `<root>/<domain>/<run-name>/`.

Everything here reads runs written by other processes (a detached trainer,
a Modal mirror, an older version of the tool), so every read tolerates
missing, half-written and corrupt files, and directories that disappear
while being read.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from nsm.atomic import DIR_MODE, FILE_MODE, atomic_write_json
from nsm.config import ConfigError, RunConfig, validate_config
from nsm.runs import events as ev
from nsm.runs.cache import CACHE, load_json_object
from nsm.runs.checkpoints import CheckpointInfo, latest_checkpoint, list_checkpoints
from nsm.runs.errors import RunExists, RunIsRunning, RunNotFound, RunStoreError
from nsm.runs.events import EventFollower, EventLogWriter, read_events
from nsm.runs.history import RunState, history_from_events
from nsm.runs import lock as run_lock
from nsm.runs.names import RunNameError, generate_run_name, is_valid_run_name, validate_run_name
from nsm.runs.process import HEARTBEAT_FRESH_S, pid_alive, this_host
from nsm.runs.stop_request import StopRequests

ENV_RUNS_DIR = "NSM_RUNS_DIR"

CONFIG_FILE = "config.json"
EVENTS_FILE = "events.jsonl"
HISTORY_FILE = "training_history.json"
RESULTS_FILE = "final_results.json"
PROCESS_FILE = "process.json"
HEARTBEAT_FILE = "heartbeat"
LOG_FILE = "train.log"
REMOTE_FILE = "remote.json"
# The failure of a run whose log could not take its `failed` event (a full disk).
FAILURE_FILE = "failed.json"
RESERVE_FILE = ".reserve"  # space the engine frees to record its own failure

RUNNING = "running"
FINISHED = ev.FINISHED
INTERRUPTED = ev.INTERRUPTED
FAILED = ev.FAILED
STALE = "stale"
CREATED = "created"
STATUSES = (RUNNING, FINISHED, INTERRUPTED, FAILED, STALE, CREATED)


def default_runs_dir(flag: str | os.PathLike[str] | None = None) -> Path:
    """The store root: the `--runs-dir` flag, else $NSM_RUNS_DIR, else ./runs.

    Made absolute now, so a detached process that changes directory still
    writes to the same place.
    """
    chosen = flag if flag not in (None, "") else os.environ.get(ENV_RUNS_DIR) or "runs"
    try:
        expanded = Path(chosen).expanduser()
    except RuntimeError:  # `~nosuchuser/runs`: Path.expanduser cannot resolve the user
        source = "--runs-dir" if flag not in (None, "") else f"${ENV_RUNS_DIR}"
        raise RunStoreError(f"{source}: cannot expand {os.fspath(chosen)!r}: no such user or home directory") from None
    return Path(os.path.abspath(expanded))


# Kernel and device trees: folders there are never a run store, and listing them
# as runs (every /proc/<pid>/ns a "run") or writing into them is a mistake.
_SYSTEM_ROOTS = ("/proc", "/sys", "/dev")


def check_store_root(root: Path, *, write: bool = False) -> None:
    """RunStoreError when `root` cannot be a run store: a file, a system folder
    (/proc, /sys, /dev), a path the OS refuses (too long), or, with `write`, a
    folder that cannot be written. A root that does not exist yet is fine."""
    text = os.fspath(root)
    for system in _SYSTEM_ROOTS:
        if text == system or text.startswith(system + os.sep):
            raise RunStoreError(f"runs dir {text} is inside {system}, a system folder, not a run store; choose another --runs-dir")
    try:
        st = os.stat(root)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise RunStoreError(f"runs dir {_short(text)} cannot be used: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise RunStoreError(f"runs dir {_short(text)} is not a directory; choose another --runs-dir")
    if write:
        probe = root if st is not None else _existing_parent(root)
        if probe is not None and not os.access(probe, os.W_OK | os.X_OK):
            raise RunStoreError(f"runs dir {_short(text)} is not writable ({probe} is read-only for this user)")


def _existing_parent(path: Path) -> Path | None:
    for parent in path.parents:
        try:
            if parent.is_dir():
                return parent
        except OSError:
            return None
    return None


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


# ------------------------------------------------------------------------ runs


@dataclass(frozen=True)
class RunSummary:
    """One row of a run listing. `problem` says what could not be read."""

    name: str
    domain: str
    path: Path
    status: str
    state: RunState
    config: dict[str, Any] | None
    problem: str | None
    created: float | None  # when config.json was written

    @property
    def ref(self) -> str:
        return f"{self.domain}/{self.name}"

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def epochs(self) -> int | None:
        if self.state.epochs is not None:
            return self.state.epochs
        value = (self.config or {}).get("epochs")
        return value if isinstance(value, int) else None

    @property
    def best_val_acc(self) -> float | None:
        return self.state.best_val_acc

    @property
    def best_val_loss(self) -> float | None:
        return self.state.best_val_loss

    @property
    def started(self) -> float | None:
        return self.state.started

    @property
    def finished(self) -> float | None:
        return self.state.finished

    @property
    def error(self) -> str | None:
        return self.state.error

    @property
    def sort_time(self) -> float:
        return self.state.started or self.created or 0.0


class Run(StopRequests):
    """One run directory. Cheap to create; every method reads the disk anew
    (through caches keyed on file size and mtime where it matters)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.name = self.path.name
        self.domain = self.path.parent.name

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def ref(self) -> str:
        return f"{self.domain}/{self.name}"

    config_path = property(lambda self: self.path / CONFIG_FILE)
    events_path = property(lambda self: self.path / EVENTS_FILE)
    history_path = property(lambda self: self.path / HISTORY_FILE)
    results_path = property(lambda self: self.path / RESULTS_FILE)
    process_path = property(lambda self: self.path / PROCESS_FILE)
    heartbeat_path = property(lambda self: self.path / HEARTBEAT_FILE)
    log_path = property(lambda self: self.path / LOG_FILE)
    remote_path = property(lambda self: self.path / REMOTE_FILE)

    def exists(self) -> bool:
        return self.path.is_dir()

    # -- config

    def config(self) -> dict[str, Any]:
        """config.json as a dict; RunStoreError if it is missing or corrupt."""
        config = load_json_object(self.config_path, "config")
        if config is None:
            if not self.exists():
                raise RunStoreError(f"run directory {self.path} does not exist (deleted?)")
            raise RunStoreError(f"run {self.ref} has no {CONFIG_FILE} (expected at {self.config_path})")
        return config

    def run_config(self) -> RunConfig:
        """The config validated as a RunConfig (for resuming)."""
        try:
            return validate_config(self.config())
        except ConfigError as exc:
            raise RunStoreError(f"{self.config_path} has invalid settings: {exc}") from None

    # -- events

    def events(self, from_seq: int = 0) -> list[dict[str, Any]]:
        """Whole events with seq >= from_seq (unreadable lines skipped)."""
        return read_events(self.events_path, from_seq)[0]

    def follower(self, from_seq: int = 0) -> EventFollower:
        return EventFollower(self.events_path, from_seq)

    def event_writer(self) -> EventLogWriter:
        if not self.exists():
            raise RunStoreError(f"run directory {self.path} does not exist (deleted?)")
        return EventLogWriter(self.events_path)

    def state(self) -> RunState:
        return _with_failure(self, CACHE.state(self.events_path)[0])

    def history(self) -> dict[str, Any]:
        """training_history.json when it is at least as new as the event log,
        else the history derived from the events."""
        saved_at, events_at = _mtime(self.history_path), _mtime(self.events_path)
        if saved_at is not None and (events_at is None or saved_at >= events_at):
            try:
                saved = load_json_object(self.history_path, "history")
            except RunStoreError:
                saved = None  # derived from the events below instead
            if saved is not None and isinstance(saved.get("epochs"), list):
                return saved
        return history_from_events(self.events())

    def results(self) -> dict[str, Any] | None:
        """final_results.json, None before the run has written it."""
        return load_json_object(self.results_path, "results")

    def remote_info(self) -> dict[str, Any] | None:
        try:
            return load_json_object(self.remote_path, "remote info")
        except RunStoreError:
            return None

    def write_history(self, history: Mapping[str, Any]) -> None:
        atomic_write_json(self.history_path, dict(history))

    def write_results(self, results: Mapping[str, Any]) -> None:
        atomic_write_json(self.results_path, dict(results))

    # -- liveness

    def process_info(self) -> dict[str, Any] | None:
        """process.json, or None when it is missing or unreadable."""
        try:
            return load_json_object(self.process_path, "process info")
        except RunStoreError:
            return None

    def write_process_info(
        self, pid: int, backend: str, command: Sequence[str] | str, log: str | None = LOG_FILE
    ) -> dict[str, Any]:
        info = {
            "pid": int(pid),
            "host": this_host(),
            "started": time.time(),
            "command": command if isinstance(command, str) else list(command),
            "backend": backend,
            "log": log,
        }
        atomic_write_json(self.process_path, info)
        return info

    def touch_heartbeat(self) -> None:
        try:
            os.utime(self.heartbeat_path)
        except FileNotFoundError:
            self.heartbeat_path.touch(mode=FILE_MODE)

    def heartbeat_age(self) -> float | None:
        """Seconds since the last heartbeat; None if there never was one."""
        mtime = _mtime(self.heartbeat_path)
        return None if mtime is None else time.time() - mtime

    failure_path = property(lambda self: self.path / FAILURE_FILE)

    def failure_record(self, state: RunState | None = None) -> dict[str, Any] | None:
        """failed.json when it describes the latest attempt (written after the log's
        last event, by an engine that could not append its `failed` event), else None."""
        try:
            record = load_json_object(self.failure_path, "failure record")
        except RunStoreError:
            return None
        if record is None:
            return None
        state = state if state is not None else CACHE.state(self.events_path)[0]
        after = record.get("after_seq")
        if not isinstance(after, int) or isinstance(after, bool) or after < state.last_seq:
            return None  # a later attempt wrote events: this failure is history
        return record

    def status(self) -> str:
        """running / finished / interrupted / failed / stale / created."""
        state, _bad, size = CACHE.state(self.events_path)
        return _status(self, state, has_events=size > 0)

    def liveness(self) -> str:
        """running / stale / created from the lock, process.json and the heartbeat
        alone, without reading the log (a viewer that folds the log itself knows
        its endings; this is what it cannot know)."""
        try:
            has_events = self.events_path.stat().st_size > 0
        except OSError:
            has_events = False
        return _status(self, RunState(), has_events=has_events, failure=False)

    def is_running(self) -> bool:
        return self.status() == RUNNING

    # -- checkpoints and files

    def checkpoints(self) -> list[CheckpointInfo]:
        return list_checkpoints(self.path, CACHE.checkpoint_events(self.events_path))

    def latest_checkpoint(self) -> CheckpointInfo | None:
        return latest_checkpoint(self.checkpoints())

    def evaluation_path(self, ckpt_file: str | os.PathLike[str]) -> Path:
        """Where the evaluation of checkpoint `ckpt_file` is saved."""
        return self.path / f"evaluation_{Path(ckpt_file).stem}.json"

    def disk_size(self) -> int:
        return _tree_size(self.path)

    def summary(self) -> RunSummary:
        return _summarize(self)


def _status(run: Run, state: RunState, has_events: bool, failure: bool = True) -> str:
    # A held lock means a trainer owns the run now, even before its first event
    # (a resume still loading its data reads as running, not as the old ending).
    if run_lock.holder(run.path) is not None:
        return RUNNING
    if state.status is not None:
        return state.status
    if failure and run.failure_record(state) is not None:
        return FAILED
    info = run.process_info()
    if info is not None and info.get("host") == this_host():
        started = info.get("started")
        return RUNNING if pid_alive(info.get("pid"), started if isinstance(started, (int, float)) else None) else STALE
    age = run.heartbeat_age()
    if age is not None and age < HEARTBEAT_FRESH_S:
        return RUNNING
    if not has_events and info is None and age is None:
        return CREATED
    return STALE


def _with_failure(run: Run, state: RunState) -> RunState:
    """The state with failed.json folded in, when the log could not take the `failed` event."""
    if state.status is not None:
        return state
    record = run.failure_record(state)
    if record is None:
        return state
    t = record.get("t")
    return dataclasses.replace(
        state, status=FAILED, error=str(record.get("error") or "failed"), finished=t if isinstance(t, (int, float)) else None
    )


def _summarize(run: Run) -> RunSummary:
    problems: list[str] = []
    try:
        config = CACHE.json_object(run.config_path, "config")
        if config is None:
            problems.append(f"{CONFIG_FILE} is missing")
    except RunStoreError as exc:
        config = None
        problems.append(str(exc))
    try:
        state, bad, size = CACHE.state(run.events_path)
    except RunStoreError as exc:  # a FIFO or a directory in place of the log
        state, bad, size = RunState(), 0, 0
        problems.append(str(exc))
    if bad:
        problems.append(f"{bad} unreadable line(s) in {EVENTS_FILE}")
    state = _with_failure(run, state)
    return RunSummary(
        name=run.name,
        domain=run.domain,
        path=run.path,
        status=_status(run, state, has_events=size > 0),
        state=state,
        config=config,
        problem="; ".join(problems) or None,
        created=_mtime(run.config_path) or _mtime(run.path),
    )


def _tree_size(path: Path) -> int:
    total = 0
    try:
        entries = list(os.scandir(path))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += _tree_size(Path(entry.path))
            else:
                total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


# ----------------------------------------------------------------------- store


class RunStore:
    """All runs under one root folder. Run names are unique across domains."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = default_runs_dir(root)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    def _run_dirs(self, domain: str | None = None) -> Iterator[Path]:
        """Directories that look like runs; hidden entries (a delete in
        progress, temp files) and odd names are not runs."""
        try:
            domains = [e for e in os.scandir(self.root) if is_valid_run_name(e.name)]
        except OSError:
            return
        for d in sorted(domains, key=lambda e: e.name):
            if domain is not None and d.name != domain:
                continue
            try:
                if not d.is_dir():
                    continue
                runs = [e for e in os.scandir(d.path) if is_valid_run_name(e.name) and e.is_dir()]
            except OSError:
                continue
            for r in sorted(runs, key=lambda e: e.name):
                yield Path(r.path)

    def refs(self, domain: str | None = None) -> list[str]:
        return [f"{p.parent.name}/{p.name}" for p in self._run_dirs(domain)]

    def create_run(self, config: RunConfig | Mapping[str, Any], name: str | None = None) -> Run:
        """Make the run directory and write its config.json."""
        if not isinstance(config, RunConfig):
            config = validate_config(config)
        domain = validate_run_name(config.domain, what="domain")
        if name is None:
            for _ in range(100):
                candidate = generate_run_name(domain)
                if not self._name_taken(candidate):
                    name = candidate
                    break
            else:
                raise RunStoreError("could not find a free run name; pass one explicitly")
        else:
            validate_run_name(name)
            taken = self._name_taken(name)
            if taken:
                raise RunExists(
                    f"a run named {name!r} already exists ({taken}); run names are unique across the "
                    "store: choose another name or delete that run"
                )
        domain_dir = self.root / domain
        path = domain_dir / name
        try:
            domain_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:
            raise RunExists(f"a run named {name!r} already exists ({domain}/{name})") from None
        except OSError as exc:
            raise RunStoreError(f"cannot create run directory {_short(str(path))}: {exc.strerror or exc}") from None
        try:
            atomic_write_json(path / CONFIG_FILE, config.to_dict())
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise RunStoreError(f"cannot write {_short(str(path / CONFIG_FILE))}: {exc.strerror or exc}") from None
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return Run(path)

    def _name_taken(self, name: str) -> str | None:
        try:
            # Hidden folders (.sweeps, a delete in progress) hold no runs.
            domains = [e for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith(".")]
        except OSError:
            return None
        for d in domains:
            if os.path.lexists(os.path.join(d.path, name)):
                return f"{d.name}/{name}"
        return None

    def list_runs(self, domain: str | None = None) -> list[RunSummary]:
        """Every run (of one domain), newest first. Never raises for a
        broken or vanishing run: it is listed with a `problem`, or left out
        if it is gone."""
        summaries = []
        seen: set[str] = set()
        for path in self._run_dirs(domain):
            seen.add(str(path))
            run = Run(path)
            try:
                summary = _summarize(run)
            except (OSError, RunStoreError) as exc:
                if not path.exists():
                    continue  # deleted while we read it
                summary = RunSummary(run.name, run.domain, path, STALE, RunState(), None, f"unreadable: {exc}", None)
            if not path.exists():
                continue
            summaries.append(summary)
        if domain is None:
            CACHE.forget_except(self.root, seen)
        summaries.sort(key=lambda s: (s.sort_time, s.name), reverse=True)
        return summaries

    def get(self, ref: str | os.PathLike[str]) -> Run:
        """A run by `name` or `domain/name`."""
        text = os.fspath(ref).strip()
        if text.count("/") > 1:
            raise RunNotFound(f"no run {text!r}: name a run as NAME or DOMAIN/NAME, not by its path")
        try:
            found = self._lookup(text)
        except RunNameError as exc:
            raise RunNotFound(f"no run {text!r}: {exc}") from None
        if found is None:
            raise RunNotFound(self._not_found_message(text))
        return found

    def _lookup(self, text: str) -> Run | None:
        if text.count("/") == 1:
            domain, name = text.split("/")
            path = self.root / validate_run_name(domain, what="domain") / validate_run_name(name)
            return Run(path) if path.is_dir() else None
        name = validate_run_name(text)
        matches = [p for p in self._run_dirs() if p.name == name]
        if len(matches) > 1:
            refs = ", ".join(f"{p.parent.name}/{p.name}" for p in matches)
            raise RunStoreError(f"run name {name!r} is in several domains ({refs}); use domain/name")
        return Run(matches[0]) if matches else None

    def _not_found_message(self, ref: str) -> str:
        name = ref.rsplit("/", 1)[-1]
        refs = self.refs()
        if not refs:
            return f"no run {ref!r}: the store {self.root} has no runs"
        names = {r.split("/", 1)[1]: r for r in refs}
        close = difflib.get_close_matches(name, list(names), n=5, cutoff=0.5)
        close += [n for n in names if name and name in n and n not in close][: 5 - len(close)]
        if close:
            return f"no run {ref!r} in {self.root}; did you mean {', '.join(names[n] for n in close)}?"
        return f"no run {ref!r} in {self.root} ({len(refs)} runs; list them with `nsm-tui runs`)"

    def delete(self, ref: str | os.PathLike[str], force: bool = False) -> Path:
        """Remove a run directory; refuses a running run unless `force`."""
        run = self.get(ref)
        holder = run_lock.holder(run.path)
        if not force and (holder is not None or run.status() == RUNNING):
            if holder is not None:
                who = f" ({holder.describe()})"
            else:
                info = run.process_info() or {}
                who = f" (pid {info['pid']} on {info.get('host')})" if "pid" in info else ""
            raise RunIsRunning(f"run {run.ref} is running{who}; stop it first, or delete with force")
        # Rename first so listings never see a half-deleted run.
        doomed = run.path.with_name(f".deleting-{run.name}-{os.getpid()}-{time.monotonic_ns()}")
        try:
            os.rename(run.path, doomed)
        except FileNotFoundError:
            raise RunNotFound(f"run {run.ref} was already deleted") from None
        shutil.rmtree(doomed, ignore_errors=True)
        return run.path
