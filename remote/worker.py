"""The body of the Modal training function, as a plain function.

`train_remote` runs the unchanged engine (nsm.training.Trainer) on a run
folder under `volume_root` (the mounted volume on Modal, a temp folder in
tests). Everything Modal-specific comes in as callables: where events go,
how the stop flag is read, how the volume is committed, and the highest seq a
viewer may already hold. So a test runs the very same body locally.

Attempts: Modal retries an attempt that was pre-empted, crashed or timed out.
The new attempt finds the run folder as the volume last committed it and
resumes from its latest checkpoint, numbering events after both the log's
last seq and the highest seq already sent to viewers (`high_water`): a log
that lost its uncommitted tail gets placeholder lines for the seqs viewers
already hold, so nobody sees a seq twice with two meanings.

Volume consistency: an attempt reloads the volume before it reads the run
folder (a container's mount is a snapshot; another container's commits reach
it only through a reload), commits after every periodic and interrupt
checkpoint and at every ending (including the early ones), and removes temp
files of atomic writes first: Modal also commits in the background, and a
background commit that caught a write in progress would otherwise keep its
`.tmp` on the volume for good.

Pre-emption: Modal sends SIGINT (or SIGTERM), then kills the container some
30 s later, and retries the input at once without counting it against the
retry policy (modal/_functions.py: GENERIC_STATUS_INTERNAL_FAILURE "doesn't
count towards the retry policy"); an exception raised by the function body
does count (container_io_manager: output_items_exception -> FAILURE). So a
pre-empted attempt stops at the next step, commits its checkpoint and then
waits to be killed instead of raising.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from nsm.atomic import atomic_write_json
from nsm.config import ConfigError, validate_config
from nsm.runs import Run
from nsm.runs import events as ev
from nsm.runs.events import EventLogWriter, make_event, read_events
from nsm.runs.history import latest_state
from nsm.runs.names import RunNameError, validate_run_name

log = logging.getLogger(__name__)

LAUNCH_FILE = "remote_launch.json"
Sink = Callable[[dict[str, Any]], None]


class RunMismatch(Exception):
    """The volume already holds a different run under this name."""


class VolumeReloadFailed(RuntimeError):
    """The container could not bring its view of the volume up to date: reading
    the run folder now could resume from an older checkpoint and overwrite newer
    events, so the attempt ends (Modal's retry starts another)."""


RELOAD_TRIES = 3


# --------------------------------------------------------------------- helpers


class PolledFlag:
    """A boolean read in the background every `interval_s` (the stop flag in a
    modal.Dict), so the training loop's check costs nothing and never waits on
    the network. A failing read keeps the last known value."""

    def __init__(self, fetch: Callable[[], Any], interval_s: float):
        self._fetch = fetch
        self._interval = interval_s
        self._value = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def start(self) -> "PolledFlag":
        self._read()
        self._thread = threading.Thread(target=self._loop, name="stop-flag", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            self._value = bool(self._fetch())
        except Exception:  # a flaky read must not stop or kill the run
            self.errors += 1
            if self.errors <= 3:
                log.exception("reading the stop flag failed")

    def _loop(self) -> None:
        while not self._done.wait(self._interval):
            self._read()

    def __call__(self) -> bool:
        return self._value

    def close(self) -> None:
        self._done.set()


class EventForwarder:
    """An event sink that sends events in batches from a background thread.

    Before each batch leaves, `mark` records its last seq (the high-water mark
    a retry numbers after). A batch that cannot be sent is dropped: the log on
    the volume is the lossless record and followers fill gaps from it.
    """

    def __init__(self, send: Callable[[list[dict[str, Any]]], None], mark: Callable[[int], None] | None = None,
                 interval_s: float = 0.5, max_batch: int = 500):  # fmt: skip
        self._send = send
        self._mark = mark
        self._interval = interval_s
        self._max_batch = max_batch
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()  # one batch in flight at a time, in seq order
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="event-forwarder", daemon=True)
        self.sent = 0
        self.dropped = 0
        self._thread.start()

    def __call__(self, event: dict[str, Any]) -> None:
        self._pending.append(event)
        if event.get("type") in ev.TERMINAL_TYPES:
            self._wake.set()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        with self._lock:
            while self._pending:
                batch = []
                while self._pending and len(batch) < self._max_batch:
                    batch.append(self._pending.popleft())
                try:
                    if self._mark is not None:
                        self._mark(int(batch[-1]["seq"]))
                    self._send(batch)
                    self.sent += len(batch)
                except Exception:
                    self.dropped += len(batch)
                    if self.dropped == len(batch):
                        log.exception("forwarding events failed; the volume's log keeps them")

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)
        self.flush()


class Committer:
    """Commits the volume after periodic and interrupt checkpoints (so a retry
    can resume from them) and when asked; a failed commit is logged, not fatal."""

    def __init__(self, commit: Callable[[], None] | None):
        self._commit = commit
        self.commits = 0
        self.failures = 0

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == ev.CHECKPOINT and event.get("kind") in ("periodic", "interrupt"):
            self()

    def __call__(self) -> None:
        if self._commit is None:
            return
        try:
            self._commit()
            self.commits += 1
        except Exception:
            self.failures += 1
            log.exception("committing the volume failed; the next commit will carry these files")


# ------------------------------------------------------------------ the body


def run_dir_for(volume_root: str | os.PathLike[str], domain: str, name: str) -> Path:
    validate_run_name(domain, what="domain")
    validate_run_name(name)
    return Path(volume_root) / domain / name


def train_remote(
    request: dict[str, Any],
    volume_root: str | os.PathLike[str],
    *,
    event_sink: Sink | None = None,
    stop_flag: Callable[[], bool] | None = None,
    commit: Callable[[], None] | None = None,
    reload: Callable[[], None] | None = None,
    high_water: Callable[[], int | None] | None = None,
    threads: int | None = None,
    on_trainer: Callable[[Any], None] | None = None,
    trainer_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train (or continue) one run in `volume_root/<domain>/<run>/`.

    `request`: {"config": dict, "run": name, "launch_id": str, "resume": None |
    "latest" | checkpoint file, "min_next_seq": int}. Returns a summary dict:
    outcome (finished / interrupted / failed), run, domain, last_seq, attempt,
    error (None or a one-line summary). Never raises for a training failure
    (a retry would fail the same way); exceptions that escape are
    infrastructure trouble, which Modal's retries are for.
    """
    committer = Committer(commit)
    try:
        config = validate_config(request["config"])
        name = validate_run_name(str(request["run"]))
        run_path = run_dir_for(volume_root, config.domain, name)
    except (KeyError, ConfigError, RunNameError) as exc:
        return _summary("failed", request, error=f"bad launch request: {exc}")
    if reload is not None:
        _reload(reload)
    run = Run(run_path)
    try:
        attempt, retry = _claim(run, config.to_dict(), request)
    except RunMismatch as exc:
        return _summary("failed", request, error=str(exc))
    try:
        return _train_claimed(
            run, config, request, attempt, retry, committer, event_sink, stop_flag, high_water, threads,
            on_trainer, trainer_options,
        )  # fmt: skip
    finally:
        # Every ending, early ones included (the launch marker changed): no temp file goes with it.
        remove_temp_files(run.path)
        committer()


def _train_claimed(run: Run, config: Any, request: dict[str, Any], attempt: int, retry: bool, committer: "Committer",
                   event_sink: Sink | None, stop_flag: Callable[[], bool] | None,
                   high_water: Callable[[], int | None] | None, threads: int | None,
                   on_trainer: Callable[[Any], None] | None,
                   trainer_options: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    # Nothing else writes this folder while this attempt holds the launch: any temp file is a dead write's.
    remove_temp_files(run.path)
    events = run.events()
    state = latest_state(events)
    stopping = bool(stop_flag and _safe(stop_flag))
    if retry and state.status == ev.FINISHED:
        return _summary(ev.FINISHED, request, run=run, attempt=attempt)
    if retry and stopping and state.status in (ev.INTERRUPTED, ev.FAILED):
        return _summary(state.status, request, run=run, attempt=attempt)

    try:
        resume_from = _resume_point(run, request, retry, has_events=bool(events))
    except FileNotFoundError as exc:
        return _summary("failed", request, run=run, attempt=attempt, error=str(exc))
    floor = int(request.get("min_next_seq") or 0)
    if high_water is not None:
        hw = _safe(high_water)
        if isinstance(hw, int):
            floor = max(floor, hw + 1)
    with EventLogWriter(run.events_path) as writer:
        _pad_to(writer, floor)
        note = _attempt_note(attempt, resume_from, retry)
        first = writer.emit(ev.LOG, level="info", message=note)
    if event_sink is not None:
        event_sink(first)

    from nsm.training.trainer import Trainer  # torch: only inside the worker

    sinks: list[Sink] = [committer.on_event]
    if event_sink is not None:
        sinks.insert(0, event_sink)
    trainer = Trainer(
        run,
        config,
        resume_from=resume_from,
        sinks=sinks,
        stop_checks=[stop_flag] if stop_flag is not None else [],
        threads=threads,
        backend="modal",
        **(trainer_options or {}),
    )
    if on_trainer is not None:
        on_trainer(trainer)
    outcome = trainer.run()
    error = None
    if outcome == ev.FAILED:
        error = run.state().error
    return _summary(outcome, request, run=run, attempt=attempt, error=error)


def _reload(reload: Callable[[], None]) -> None:
    last: BaseException | None = None
    for attempt in range(RELOAD_TRIES):
        try:
            reload()
            return
        except Exception as exc:  # open files, a transient error: try again shortly
            last = exc
            time.sleep(0.5 * (attempt + 1))
    raise VolumeReloadFailed(f"could not reload the volume before reading the run folder: {last}") from last


def remove_temp_files(folder: Path) -> list[str]:
    """Remove `.<name>.*.tmp` files (nsm.atomic's temp files) from a run folder; their names."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(entry.name)
            except OSError:
                log.warning("could not remove %s", entry.path)
    return removed


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        log.exception("a control read failed")
        return None


def _claim(run: Run, config: dict[str, Any], request: dict[str, Any]) -> tuple[int, bool]:
    """Create the run folder, or recognise it as ours. Returns (attempt number, is a retry)."""
    launch_id = str(request.get("launch_id") or "")
    marker_path = run.path / LAUNCH_FILE
    marker = _read_json(marker_path)
    if run.path.exists() and (run.path / "config.json").exists():
        same_launch = marker is not None and marker.get("launch_id") == launch_id
        if not same_launch and not request.get("resume"):
            raise RunMismatch(
                f"a run named {run.name!r} already exists on the volume ({run.domain}/{run.name}) from another "
                "launch; choose another run name (or resume that run)"
            )
        attempts = int(marker.get("attempts", 0)) + 1 if same_launch and marker else 1
        retry = bool(same_launch and marker and marker.get("attempts", 0) >= 1)
        saved = _read_json(run.path / "config.json") or {}
        ignore = ("device", "backend", "num_workers", "threads", "gpu", "schema_version")
        if {k: v for k, v in saved.items() if k not in ignore} != {k: v for k, v in config.items() if k not in ignore}:
            raise RunMismatch(f"run {run.domain}/{run.name} on the volume has a different config; refusing to mix them")
    else:
        run.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run.path / "config.json", config)
        attempts, retry = 1, False
    atomic_write_json(
        marker_path,
        {"launch_id": launch_id, "attempts": attempts, "host": socket.gethostname(), "started": time.time()},
    )
    return attempts, retry


def _read_json(path: Path) -> dict[str, Any] | None:
    import json

    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _resume_point(run: Run, request: dict[str, Any], retry: bool, has_events: bool) -> str | None:
    wanted = request.get("resume")
    if not retry and wanted and wanted != "latest":
        path = run.path / str(wanted)
        if not path.exists():
            names = ", ".join(c.file for c in run.checkpoints()) or "none"
            raise FileNotFoundError(f"checkpoint {wanted} is not on the volume (run {run.ref} has: {names})")
        return str(path)
    if not has_events:
        return None
    latest = run.latest_checkpoint()
    return str(latest.path) if latest is not None else None


def _pad_to(writer: EventLogWriter, floor: int) -> None:
    """Placeholders for seqs a viewer already holds but this log lost (an
    attempt killed before its last commit), so the next seqs mean one thing."""
    lost = range(writer.next_seq, floor)
    for seq in lost:
        writer.append(
            make_event(
                seq,
                ev.LOG,
                level="warning",
                message=f"placeholder for event {seq}: the attempt that sent it was stopped before the volume "
                "saved it (a viewer that received it live keeps the original)",
            )
        )


def _attempt_note(attempt: int, resume_from: str | None, retry: bool) -> str:
    where = f"{socket.gethostname()}"
    gpu = os.environ.get("MODAL_GPU") or ""  # informative only
    what = f"attempt {attempt} on Modal ({where}{', ' + gpu if gpu else ''})"
    if resume_from:
        return f"{what}: resuming from {Path(resume_from).name}" + (" after a retry" if retry else "")
    return f"{what}: starting" + (" again (no checkpoint was saved before the retry)" if retry else "")


def _summary(outcome: str, request: dict[str, Any], run: Run | None = None, attempt: int = 0,
             error: str | None = None) -> dict[str, Any]:  # fmt: skip
    last_seq = -1
    if run is not None:
        events, _ = read_events(run.events_path)
        last_seq = events[-1]["seq"] if events else -1
    return {
        "outcome": outcome,
        "run": request.get("run"),
        "domain": (request.get("config") or {}).get("domain"),
        "last_seq": last_seq,
        "attempt": attempt,
        "error": error,
    }


# ------------------------------------------------------- inside a container


def install_preemption_handler(request_stop: Callable[[str], None]) -> None:
    """Modal signals a container before pre-empting it: stop at the next step
    with a checkpoint (and a commit), so the retry loses almost nothing."""

    def on_signal(signum: int, _frame: object) -> None:
        request_stop(f"container received {signal.Signals(signum).name} (pre-emption or shutdown)")

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, on_signal)
        except ValueError:
            pass  # not the main thread: Modal's own handling applies


class AttemptInterrupted(RuntimeError):
    """Raised when a pre-empted attempt saved its checkpoint but the container
    was not killed within the grace period: the retry policy then starts the
    next attempt (which resumes from it), at the cost of one retry."""


def wait_to_be_killed(grace_s: float) -> None:
    """After a pre-emption signal: the checkpoint is committed; Modal kills the
    container within its grace period, which retries the input for free."""
    threading.Event().wait(grace_s)


def run_in_container(
    request: dict[str, Any],
    api: Any,
    volume: Any,
    mount: str,
    *,
    on_signal: Callable[[Callable[[str], None]], None] = install_preemption_handler,
    wait_for_kill: Callable[[float], None] = wait_to_be_killed,
    **options: Any,
) -> dict[str, Any]:
    """Wire the body to the real Modal objects (`api` is the `modal` module);
    `options` go to train_remote (threads, trainer_options). `on_signal`
    registers the pre-emption stop (signal handlers on Modal); `wait_for_kill`
    is what a pre-empted attempt does once its checkpoint is committed."""
    from remote import config as rc

    os.environ.setdefault("NSM_CACHE_DIR", rc.DATASET_CACHE)
    partition = rc.partition_key(request["config"]["domain"], request["run"], request.get("launch_id"))
    queue = api.Queue.from_name(rc.QUEUE_NAME, create_if_missing=True)
    control = api.Dict.from_name(rc.DICT_NAME, create_if_missing=True)

    def send(batch: list[dict[str, Any]]) -> None:
        queue.put_many(batch, block=False, partition=partition, partition_ttl=rc.PARTITION_TTL_S)

    forwarder = EventForwarder(
        send, mark=lambda seq: control.put(rc.high_water_key(partition), seq), interval_s=rc.FORWARD_INTERVAL_S
    )
    flag = PolledFlag(lambda: control.get(rc.stop_key(partition), False), rc.STOP_POLL_S).start()
    preempted = threading.Event()

    def on_trainer(trainer: Any) -> None:
        def stop(reason: str) -> None:
            preempted.set()
            trainer.request_stop(reason)

        on_signal(stop)

    try:
        summary = train_remote(
            request,
            mount,
            event_sink=forwarder,
            stop_flag=flag,
            commit=volume.commit,
            reload=volume.reload,
            high_water=lambda: control.get(rc.high_water_key(partition)),
            on_trainer=on_trainer,
            **options,
        )
    finally:
        flag.close()
        forwarder.close()
    if summary["outcome"] == ev.INTERRUPTED and preempted.is_set() and not flag():
        # Returning would end the call as interrupted; raising would spend a retry. Being killed does neither.
        log.warning("pre-empted: checkpoint committed; waiting for Modal to stop this container and retry the run")
        wait_for_kill(rc.PREEMPTION_GRACE_S)
        raise AttemptInterrupted(
            f"run {request['run']} was pre-empted and its container was not stopped within "
            f"{rc.PREEMPTION_GRACE_S:.0f} s; its checkpoint is committed and a retry resumes it"
        )
    return summary
