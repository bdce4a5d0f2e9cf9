"""The client side of the Modal backend: every call this machine makes to Modal.

Each control call runs under a deadline (a daemon thread we stop waiting
for): a Modal client pointed at an unreachable endpoint retries for minutes,
and neither the CLI nor the TUI may hang that long. Errors come out as the
classes of remote.errors, each with a message for the user.

The names used from the `modal` module are exactly: Function.from_name
(hydrate, with_options, spawn, remote_gen), FunctionCall.from_id (get,
cancel), Queue.from_name (get_many), Dict.from_name (get, put),
Volume.from_name (listdir, read_file), App.lookup (get_tags: the deployed
code hash), App.run (ephemeral apps), exception.* and config.config. Tests hand
in a fake with these names (`api=`) and a stand-in for remote/app.py
(`app_module=`).

An ephemeral app is started once per process and shared (Modal refuses a
second `app.run` of a running app), always detached: a detached run, a sweep
point or a retry never depends on this process staying up.
"""

from __future__ import annotations

import os
import queue as queue_module
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from remote import calls
from remote import config as rc
from remote import outcomes
from remote.errors import (
    DeployedCodeDiffers,
    ModalError,
    ModalNotConfigured,
    ModalNotFound,
    ModalRejected,
    ModalUnreachable,
    ModalWrongEndpoint,
)

APP_MODES = ("auto", "deployed", "ephemeral")


class QueueUnavailable(ModalError):
    """The event queue cannot be read (deleted, or never created): follow the volume's log instead."""


@dataclass
class RemoteEntry:
    """A file or folder on the volume, as plain data."""

    path: str  # relative to the volume root
    is_dir: bool
    size: int
    mtime: float


@dataclass
class Functions:
    train: Any
    stream: Any
    app: Any | None  # set for an ephemeral app: calls run inside app.run(detach=True)

    @property
    def ephemeral(self) -> bool:
        return self.app is not None


def call_with_deadline(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    """fn() in a daemon thread; ModalUnreachable if it has not returned after `timeout` s."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"modal: {what}", daemon=True).start()
    if not done.wait(timeout):
        _quiet_shutdown()
        raise ModalUnreachable(what, timeout)
    if "error" in box:
        raise box["error"]
    return box["value"]


_quiet = threading.Lock()
_quiet_registered = False


def _quiet_shutdown() -> None:
    """A call we stopped waiting for is still inside Modal's event loop; when the
    interpreter exits, Modal closes its client under it and asyncio prints the
    abandoned task's traceback (dozens of lines after our one-line message).
    From the first abandoned call on, stderr is closed at exit, before Modal's
    own exit handlers run (atexit is last in, first out)."""
    global _quiet_registered
    with _quiet:
        if _quiet_registered:
            return
        _quiet_registered = True
    import atexit

    def silence() -> None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except (OSError, ValueError):
            pass

    atexit.register(silence)


class StreamPump:
    """Iterates a (blocking) stream in a daemon thread; the consumer takes
    items with a timeout, so a stalled stream never blocks it."""

    ITEM, END, ERROR = "item", "end", "error"

    def __init__(self, source: Callable[[], Iterable[Any]], name: str = "modal stream"):
        self._q: queue_module.Queue[tuple[str, Any]] = queue_module.Queue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _run(self, source: Callable[[], Iterable[Any]]) -> None:
        try:
            for item in source():
                if self._closed.is_set():
                    return
                self._q.put((self.ITEM, item))
            self._q.put((self.END, None))
        except BaseException as exc:
            self._q.put((self.ERROR, exc))

    def get(self, timeout: float) -> tuple[str, Any]:
        """(kind, value); raises queue.Empty after `timeout` s without an item."""
        return self._q.get(timeout=timeout)

    def close(self) -> None:
        self._closed.set()


class AppSession:
    """One running ephemeral app shared by every launch of this process: the
    first user enters `app.run(detach=True)`, the last one leaves it (the app
    then keeps running for its calls: detached)."""

    def __init__(self, app: Any):
        self.app = app
        self.users = 0
        self._ctx: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> "AppSession":
        with self._lock:
            if self.users == 0:
                ctx = self.app.run(detach=True)
                ctx.__enter__()
                self._ctx = ctx
            self.users += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.users -= 1
            if self.users == 0 and self._ctx is not None:
                ctx, self._ctx = self._ctx, None
                ctx.__exit__(None, None, None)


_sessions: dict[int, AppSession] = {}
_sessions_lock = threading.Lock()


def app_session(app: Any) -> AppSession:
    with _sessions_lock:
        session = _sessions.get(id(app))
        if session is None or session.app is not app:
            session = _sessions[id(app)] = AppSession(app)
        return session


class ModalClient:
    def __init__(
        self,
        api: Any | None = None,
        *,
        app_module: Any | None = None,
        control_timeout: float | None = None,
        app_start_timeout: float | None = None,
        app_mode: str | None = None,
    ):
        self._api = api
        self._app_module = app_module
        self.control_timeout = control_timeout if control_timeout is not None else rc.control_timeout_s()
        self.app_start_timeout = app_start_timeout if app_start_timeout is not None else rc.app_start_timeout_s()
        mode = (app_mode or os.environ.get("NSM_MODAL_APP") or "auto").strip().lower()
        self.app_mode = mode if mode in APP_MODES else "auto"
        self._functions: Functions | None = None
        self._queue: Any = None
        self._dict: Any = None
        self._volume: Any = None
        self._lock = threading.Lock()
        self.note: Callable[[str], None] | None = None  # tells the user about slow paths (an image build)

    # -- plumbing ------------------------------------------------------------
    @property
    def modal(self) -> Any:
        if self._api is None:
            import modal  # ~0.5 s; only when the Modal backend is used

            self._api = modal
        return self._api

    def check_token(self) -> None:
        """ModalNotConfigured at once when no token is configured (no network call)."""
        try:
            cfg = self.modal.config.config
            token_id, token_secret = cfg.get("token_id"), cfg.get("token_secret")
        except Exception:
            token_id = os.environ.get("MODAL_TOKEN_ID")
            token_secret = os.environ.get("MODAL_TOKEN_SECRET")
        if not token_id or not token_secret:
            raise ModalNotConfigured()

    def guard(self, fn: Callable[[], Any], what: str, timeout: float | None = None) -> Any:
        """Run one control call under a deadline and turn Modal's errors into ours."""
        try:
            return call_with_deadline(fn, self.control_timeout if timeout is None else timeout, what)
        except ModalError:
            raise
        except Exception as exc:
            raise self.translate(exc, what) from exc

    def translate(self, exc: BaseException, what: str) -> BaseException:
        """One of remote.errors for every exception of Modal (and of the network
        under it), by remote.outcomes.classify; any other exception is ours (a bug) and
        is returned as it is."""
        return translate(exc, what)

    # -- functions -----------------------------------------------------------
    def functions(self) -> Functions:
        """The app's functions: the deployed app if there is one, else an
        ephemeral app from remote/app.py (NSM_MODAL_APP=auto|deployed|ephemeral)."""
        with self._lock:
            if self._functions is not None:
                return self._functions
        self.check_token()
        found: Functions | None = None
        if self.app_mode in ("auto", "deployed"):
            found = self._deployed()
            if found is None and self.app_mode == "deployed":
                raise ModalError(
                    f"the Modal app {rc.APP_NAME} is not deployed: run `modal deploy -m remote.app` "
                    "(or unset NSM_MODAL_APP to use an ephemeral app)"
                )
        if found is None:
            if self.note is not None:
                self.note(
                    f"the Modal app {rc.APP_NAME} is not deployed: running it as an ephemeral app (its first image "
                    "build takes a few minutes); deploy it once with `modal deploy -m remote.app` for fast starts"
                )
            found = self._ephemeral()
        with self._lock:
            self._functions = found
        return found

    def _deployed(self) -> Functions | None:
        api = self.modal
        train = api.Function.from_name(rc.APP_NAME, rc.TRAIN_FUNCTION)
        stream = api.Function.from_name(rc.APP_NAME, rc.STREAM_FUNCTION)
        try:
            self.guard(train.hydrate, f"looking up the deployed app {rc.APP_NAME}")
        except ModalNotFound:
            return None
        self.check_deployed_code()
        return Functions(train=train, stream=stream, app=None)

    def deployed_code(self) -> str | None:
        """The source hash the deployed app was deployed with (its `nsm_code` tag), None without one."""
        from remote.codehash import CODE_TAG

        def op() -> str | None:
            tags = self.modal.App.lookup(rc.APP_NAME).get_tags()
            value = (tags or {}).get(CODE_TAG)
            return str(value) if value else None

        return self.guard(op, f"reading the code version of the deployed app {rc.APP_NAME}")

    def check_deployed_code(self) -> None:
        """DeployedCodeDiffers when the deployed app would run other code than this checkout."""
        from remote.codehash import code_hash

        deployed, local = self.deployed_code(), code_hash()
        if deployed != local:
            raise DeployedCodeDiffers(deployed, local)

    def _ephemeral(self) -> Functions:
        modal_app = self._app_module
        if modal_app is None:
            from remote import app as modal_app  # builds the app definition (no network)

        return Functions(train=modal_app.train, stream=modal_app.stream, app=modal_app.app)

    def _start_timeout(self, fns: Functions) -> float:
        # An ephemeral app builds its image on first use: minutes, not seconds.
        return self.app_start_timeout if fns.ephemeral else self.control_timeout

    # -- launching -----------------------------------------------------------
    def spawn(self, requests: list[dict[str, Any]], gpu: str, max_parallel: int | None = None) -> list[str]:
        """Spawn one training call per request (in parallel on Modal; with
        `max_parallel`, at most that many containers at once: the rest wait in
        Modal's queue). Returns the function call ids, in order."""
        fns = self.functions()
        options: dict[str, Any] = {"gpu": gpu}
        if max_parallel:
            options["max_containers"] = int(max_parallel)

        def op() -> list[str]:
            fn = fns.train.with_options(**options)
            if fns.ephemeral:
                with app_session(fns.app):
                    return [fn.spawn(r).object_id for r in requests]
            return [fn.spawn(r).object_id for r in requests]

        what = "starting " + (f"{len(requests)} runs" if len(requests) > 1 else f"run {requests[0]['run']}")
        try:
            return self.guard(op, what, timeout=self._start_timeout(fns) + self.control_timeout * len(requests))
        except ModalUnreachable as exc:
            # The spawn may still go through after we stopped waiting: say where to look.
            raise ModalUnreachable(
                what, exc.timeout, detail=f"it may have started anyway: check `modal app list` (app {rc.APP_NAME})"
            ) from exc

    def stream(self, request: dict[str, Any]) -> StreamPump:
        """Start an attached run: the stream function's items (see remote.relay.relay) through a pump."""
        fns = self.functions()

        def source() -> Iterator[Any]:
            if fns.ephemeral:
                with app_session(fns.app):
                    yield from fns.stream.remote_gen(request)
            else:
                yield from fns.stream.remote_gen(request)

        return StreamPump(source, name=f"modal stream {request.get('run')}")

    def first_item_timeout(self) -> float:
        fns = self.functions()
        # The relay container's cold start, or an ephemeral app's image build.
        return self._start_timeout(fns) + 120.0

    # -- calls ---------------------------------------------------------------
    def call(self, call_id: str) -> Any:
        return self.modal.FunctionCall.from_id(call_id)

    def poll(self, call_id: str) -> tuple[str, Any]:
        """(status, value) of remote.calls.poll_call; a transient failure raises
        ModalUnreachable (the run's state is unknown, not failed)."""
        return self.guard(
            lambda: calls.poll_call(self.modal, self.call(call_id)), "asking whether the run is still going"
        )

    def cancel(self, call_id: str) -> None:
        self.guard(lambda: self.call(call_id).cancel(terminate_containers=True), "cancelling the function call")

    def log_tail(self, call_id: str, entries: int = 200) -> list[str]:
        """The last log lines of a function call's containers (stdout, stderr, system)."""

        def op() -> list[str]:
            return [str(getattr(e, "message", e)) for e in self.call(call_id).logs.tail(entries=entries)]

        return self.guard(op, "fetching the container log", self.control_timeout * 2)

    # -- queue / dict --------------------------------------------------------
    def _queue_handle(self) -> Any:
        if self._queue is None:
            self._queue = self.modal.Queue.from_name(rc.QUEUE_NAME, create_if_missing=True)
        return self._queue

    def _dict_handle(self) -> Any:
        if self._dict is None:
            self._dict = self.modal.Dict.from_name(rc.DICT_NAME, create_if_missing=True)
        return self._dict

    def queue_get(self, partition: str, timeout: float) -> list[Any]:
        try:
            return self.guard(
                lambda: calls.queue_get(self._queue_handle(), partition, timeout),
                "reading the run's events",
                self.control_timeout + timeout,
            )
        except ModalNotFound as exc:
            raise QueueUnavailable(f"the event queue {rc.QUEUE_NAME} is gone ({exc})") from exc

    def set_stop(self, partition: str, value: bool = True) -> None:
        d = self._dict_handle()
        stop = {"requested": time.time(), "host": _host()} if value else False
        self.guard(lambda: d.put(rc.stop_key(partition), stop), "setting the stop flag")

    def stop_flag(self, partition: str) -> Any:
        d = self._dict_handle()
        return self.guard(lambda: d.get(rc.stop_key(partition), False), "reading the stop flag")

    def set_lease(self, partition: str, owner: str, n: int) -> None:
        d = self._dict_handle()
        lease = {"owner": owner, "n": n, "host": _host()}
        self.guard(lambda: d.put(rc.lease_key(partition), lease), "renewing the stream lease")

    def lease(self, partition: str) -> Any:
        d = self._dict_handle()
        return self.guard(lambda: d.get(rc.lease_key(partition)), "reading the stream lease")

    # -- volume --------------------------------------------------------------
    def _volume_handle(self) -> Any:
        if self._volume is None:
            self._volume = self.modal.Volume.from_name(rc.VOLUME_NAME, create_if_missing=True)
        return self._volume

    def listdir(self, path: str, recursive: bool = False) -> list[RemoteEntry]:
        """Entries under `path` (relative to the volume root); [] when it does not exist."""
        vol = self._volume_handle()
        ns = self.modal.exception

        def op() -> list[RemoteEntry]:
            try:
                entries = vol.listdir(path, recursive=recursive)
            except (FileNotFoundError, ns.NotFoundError):
                return []
            return [_entry(e) for e in entries]

        return self.guard(op, f"listing {path or '/'} on the volume {rc.VOLUME_NAME}", self.control_timeout * 2)

    def read_file(self, path: str, timeout: float | None = None) -> bytes | None:
        """A whole file of the volume; None when it does not exist."""
        vol = self._volume_handle()
        ns = self.modal.exception

        def op() -> bytes | None:
            try:
                return b"".join(vol.read_file(path))
            except (FileNotFoundError, ns.NotFoundError):
                return None

        return self.guard(op, f"reading {path} from the volume {rc.VOLUME_NAME}", timeout or self.control_timeout * 3)

    def download(self, path: str, dest: str | os.PathLike[str], timeout: float | None = None) -> int | None:
        """Copy a volume file to `dest` atomically; its size, or None when it does not exist."""
        from nsm.atomic import atomic_write_bytes

        data = self.read_file(path, timeout=timeout or max(120.0, self.control_timeout * 6))
        if data is None:
            return None
        atomic_write_bytes(dest, data)
        return len(data)


def translate(exc: BaseException, what: str) -> BaseException:
    if isinstance(exc, ModalError):
        return exc
    kind = outcomes.classify(exc)
    detail = _first_line(exc)
    if kind == outcomes.AUTH:
        return ModalNotConfigured(detail)
    if kind == outcomes.TRANSIENT:
        return ModalUnreachable(what, detail=f"{detail} ({type(exc).__name__})")
    if kind == outcomes.ENDPOINT:
        return ModalWrongEndpoint(what, outcomes.server_url(), detail)
    if not _from_modal(exc):
        return exc  # our own bug: keep its traceback
    if kind == outcomes.NOT_FOUND:
        return ModalNotFound(what, detail)
    return ModalRejected(what, type(exc).__name__, detail)


def _from_modal(exc: BaseException) -> bool:
    module = type(exc).__module__.split(".")[0]
    return module in ("modal", "grpclib", "synchronicity", "modal_proto", "h2") or outcomes.raised_in_transport(exc)


def new_owner() -> str:
    return f"{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _host() -> str:
    import socket

    return socket.gethostname()


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


def _entry(e: Any) -> RemoteEntry:
    kind = getattr(e, "type", None)
    is_dir = getattr(kind, "name", str(kind)).upper().endswith("DIRECTORY") or kind == 2
    return RemoteEntry(
        path=str(getattr(e, "path", "")).lstrip("/"),
        is_dir=bool(is_dir),
        size=int(getattr(e, "size", 0) or 0),
        mtime=float(getattr(e, "mtime", 0) or 0),
    )
