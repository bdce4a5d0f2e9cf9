"""A stand-in for exactly the parts of `modal` the client and the container use.

- Function.from_name(app, name): `train` runs the real container wiring
  (remote.worker.run_in_container) in a thread, against a temp folder that
  stands for the mounted volume; `stream` runs the real relay
  (remote.relay.relay_in_container) in the caller's iteration.
- FunctionCall.from_id(id): get(timeout) / cancel().
- Queue.from_name: partitions, get_many / put_many (blocking with timeout).
- Dict.from_name: get / put.
- Volume.from_name: `committed/` is the volume; listdir/read_file (the
  client) see only it. Every container gets its own view (a copy made when
  the container starts); its writes stay there until it commits (changed and
  deleted files are published, last writer wins), and it sees other
  containers' commits only after reload(), which fails while a file of the
  view is open (as Modal's does). `work/` is the view of calls run in the
  test's own thread (`modal_app.train.local`).
- Containers: a new one per attempt (production asks for single-use
  containers); with `reuse_containers` a finished container is kept warm and
  takes the next input with its old view. Each call runs its attempts like
  Modal: an exception spends one of `max_retries`; a container that dies
  (pre-emption, a lost worker) is retried at once without spending one;
  cancel ends it. `preempt(epoch, step, graceful=...)` is the pre-emption
  driver: graceful sends the "signal" (the worker's stop) and kills the
  container when it waits for that; otherwise the container dies at that
  step, after a background commit that caught an atomic write in progress
  when `background_commit` is set.
- App.lookup(name).get_tags(): the deployed app's tags (`deployed_tags`, by
  default this checkout's code hash); `app_module` stands in for remote/app.py
  (an ephemeral app: `app.run(detach)` refuses a second entry while running,
  its functions only work while it runs, and leaving a non-detached run stops
  its calls).
- exception: the real modal.exception module; config.config: the token.

Knobs for failures: `token`, `auth_error`, `deployed`, `hang` (names of
operations that never answer), `faults` (operation -> exceptions its next
calls raise, e.g. {"get": [ConnectionError("reset")]}: a network fault or a
timeout on any call), `drop_stream_after` (the stream raises a connection
error after that many items), `queue_missing`, `queue_limit` (items a
partition holds before put raises queue.Full, Modal's 5,000 by default).

Stricter than kind: requests, results, queue items and dict values cross by
pickling (as Modal serialises them), not by deep copies; an exception a call
ended with comes back unpickled with Modal's `__line_cache__` marker; cancel
kills the container at its next step (no cooperative checkpoint, nothing it
does afterwards reaches the queue or the volume); a call's container log is
kept for `FunctionCall.logs.tail`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import pickle
import queue as queue_module
import traceback
import shutil
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import modal.exception as modal_exception

from remote import relay, worker
from remote.codehash import CODE_TAG, code_hash


def wire(value: Any) -> Any:
    """What crosses between this machine and a container: a pickled copy (an
    object that cannot be pickled fails here as it would on Modal)."""
    return pickle.loads(pickle.dumps(value))


def remote_copy(exc: BaseException) -> BaseException:
    """The exception a call ended with, as FunctionCall.get re-raises it here."""
    if isinstance(exc, Killed) and exc.reason == "cancelled":
        return modal_exception.InputCancellation("the function call was cancelled")
    if isinstance(exc, Killed):
        return modal_exception.ExecutionError(f"the container was lost ({exc.reason}) too many times")
    try:
        copy_ = pickle.loads(pickle.dumps(exc))
    except Exception:
        copy_ = modal_exception.ExecutionError(f"could not deserialize the remote exception: {exc!r}")
    setattr(copy_, "__line_cache__", {})
    return copy_


class Killed(BaseException):
    """A container that dies: cancelled (at its next step) or pre-empted / lost (`reason`)."""

    def __init__(self, reason: str = "cancelled"):
        super().__init__(reason)
        self.reason = reason


class _Hang:
    """Blocks the caller until the test ends (like a Modal client retrying an unreachable endpoint)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self) -> None:
        self.release.wait(60)


class FakeConfig:
    def __init__(self, fake: "FakeModal"):
        self.fake = fake

    def get(self, key: str, *args: Any, **kwargs: Any) -> Any:
        if key in ("token_id", "token_secret"):
            return f"fake-{key}" if self.fake.token else None
        return None


class FakeModal:
    exception = modal_exception

    def __init__(self, root: Path, *, deployed: bool = True, token: bool = True):
        self.root = Path(root)
        self.work = self.root / "work"
        self.committed = self.root / "committed"
        self.work.mkdir(parents=True, exist_ok=True)
        self.committed.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.deployed = deployed
        self.auth_error = False
        self.hang: set[str] = set()
        self._hang = _Hang()
        self.drop_stream_after: int | None = None
        self.stream_error: BaseException | None = None  # remote_gen fails with this before any item
        self.queue_missing = False
        self.container_error: BaseException | None = None  # the container dies with this at once
        self.faults: dict[str, list[BaseException]] = {}
        self.queue_limit = 5000
        self.ops: list[tuple[str, Any]] = []  # launches, with their options
        self.attempted: list[str] = []  # every operation tried, in order
        self.calls: dict[str, FakeCall] = {}
        self._ids = itertools.count(1)
        self.queue = FakeQueue(self)
        self.dict = FakeDict(self)
        self.volume_lock = threading.RLock()  # publishing and refreshing views is atomic
        self.volume = FakeVolume(self)
        self.max_retries = 3  # remote.app's modal.Retries
        self.max_internal_failures = 8  # modal._functions.MAX_INTERNAL_FAILURE_COUNT
        self.reuse_containers = False
        self.warm: list[FakeContainer] = []  # finished containers keeping their (stale) views
        self.containers: list[FakeContainer] = []
        self._container_ids = itertools.count(1)
        self.preemptions: list[dict[str, Any]] = []
        self.deployed_tags: dict[str, str] = {CODE_TAG: code_hash()}
        self.App = SimpleNamespace(lookup=self._app_lookup)
        self.on_spawn: Any = None  # called in every spawn (a test holds concurrent launches together)
        self.app_module = FakeAppModule(self)
        self.config = SimpleNamespace(config=FakeConfig(self))
        self.functions = {"train": FakeFunction(self, "train"), "stream": FakeFunction(self, "stream")}
        self.Function = SimpleNamespace(from_name=self._function_from_name)
        self.FunctionCall = SimpleNamespace(from_id=self._call_from_id)
        self.Queue = SimpleNamespace(from_name=lambda name, **kw: self.queue)
        self.Dict = SimpleNamespace(from_name=lambda name, **kw: self.dict)
        self.Volume = SimpleNamespace(from_name=lambda name, **kw: self.volume)
        self.trainer_options: dict[str, Any] = {}  # handed to every Trainer the fake starts
        self.containers_running = 0
        self.max_containers_seen = 0
        self._containers_lock = threading.Lock()

    # -- failure injection ----------------------------------------------------
    def maybe_hang(self, op: str) -> None:
        self.attempted.append(op)
        if self.auth_error:
            raise modal_exception.AuthError("Token is invalid")
        if op in self.hang:
            self._hang()
        pending = self.faults.get(op)
        if pending:
            raise pending.pop(0)

    def close(self) -> None:
        self._hang.release.set()
        for call in self.calls.values():
            call.join(30)

    # -- the pre-emption driver ------------------------------------------------
    def preempt(self, epoch: int, step: int, *, graceful: bool = True, background_commit: bool = False) -> None:
        """The next container to reach (epoch, step) is pre-empted there."""
        self.preemptions.append({"at": (epoch, step), "graceful": graceful, "background_commit": background_commit})

    def _take_preemption(self, epoch: int, step: int) -> dict[str, Any] | None:
        with self._containers_lock:
            if self.preemptions and self.preemptions[0]["at"] == (epoch, step):
                return self.preemptions.pop(0)
        return None

    # -- lookups --------------------------------------------------------------
    def _app_lookup(self, name: str, **_: Any) -> Any:
        self.maybe_hang("app.lookup")
        if not self.deployed:
            raise modal_exception.NotFoundError(f"App '{name}' not found")
        return SimpleNamespace(get_tags=lambda **kw: dict(self.deployed_tags))

    def _function_from_name(self, app: str, name: str) -> "FakeFunction":
        return self.functions[name]

    def _call_from_id(self, call_id: str) -> "FakeCall":
        return self.calls[call_id]

    # -- containers -----------------------------------------------------------
    def acquire_container(self) -> "FakeContainer":
        with self._containers_lock:
            if self.reuse_containers and self.warm:
                return self.warm.pop(0)
            container = FakeContainer(self, next(self._container_ids))
            self.containers.append(container)
            return container

    def release_container(self, container: "FakeContainer") -> None:
        with self._containers_lock:
            if self.reuse_containers and container.alive:
                self.warm.append(container)

    def run_container(self, request: dict[str, Any], semaphore: threading.Semaphore | None,
                      call: "FakeCall | None" = None) -> dict[str, Any]:  # fmt: skip
        """One attempt of a call in a container; raises what the attempt raised (Killed when it died)."""
        if semaphore is not None:
            semaphore.acquire()
        with self._containers_lock:
            self.containers_running += 1
            self.max_containers_seen = max(self.max_containers_seen, self.containers_running)
        container = self.acquire_container()
        try:
            result = container.run(request, call)
        except Killed:
            container.die()
            raise
        except BaseException:
            self.release_container(container)
            raise
        finally:
            with self._containers_lock:
                self.containers_running -= 1
            if semaphore is not None:
                semaphore.release()
        self.release_container(container)
        return result

    def new_call(self, request: dict[str, Any], semaphore: threading.Semaphore | None) -> "FakeCall":
        call = FakeCall(self, f"fc-{next(self._ids)}", request, semaphore)
        self.calls[call.object_id] = call
        call.start()
        return call


class FakeContainer:
    """One container: its own view of the volume, a stop to call on pre-emption."""

    def __init__(self, fake: FakeModal, number: int):
        self.fake = fake
        self.number = number
        self.view = VolumeView(fake, fake.root / "containers" / str(number))
        self.alive = True
        self.dead = False  # killed: from now on nothing it does reaches the queue, the dict or the volume
        self.inputs = 0
        self._signal_stop: Any = None
        self._preempted = False

    def run(self, request: dict[str, Any], call: "FakeCall | None") -> dict[str, Any]:
        self.inputs += 1
        self._signal_stop, self._preempted = None, False
        if self.fake.container_error is not None:
            raise self.fake.container_error
        options = dict(self.fake.trainer_options)
        options["on_step"] = self._step_hook(call, options.get("on_step"))
        return worker.run_in_container(
            request, _ContainerApi(self), self.view, str(self.view.path), trainer_options=options, threads=1,
            on_signal=self._on_signal, wait_for_kill=self._wait_for_kill,
        )  # fmt: skip

    def _on_signal(self, stop: Any) -> None:
        self._signal_stop = stop

    def _wait_for_kill(self, grace_s: float) -> None:
        if self._preempted:
            self.kill()
            raise Killed("preempted")  # Modal's kill at the end of the grace period

    def kill(self) -> None:
        self.dead = self.view.dead = True

    def _step_hook(self, call: "FakeCall | None", on_step: Any) -> Any:
        def step(epoch: int, s: int) -> None:
            if call is not None and call.cancelled:
                self.kill()
                raise Killed("cancelled")
            plan = self.fake._take_preemption(epoch, s)
            if plan is not None:
                self._preempted = True
                if plan["graceful"] and self._signal_stop is not None:
                    self._signal_stop("container received SIGINT (pre-emption or shutdown)")
                else:
                    if plan["background_commit"]:
                        self.view.caught_in_a_write()
                    self.kill()
                    raise Killed("preempted")
            if on_step is not None:
                on_step(epoch, s)

        return step

    def die(self) -> None:
        """Killed: its uncommitted writes are gone with it."""
        self.kill()
        self.alive = False


class _Dead:
    """A handle a killed container still holds: its calls go nowhere."""

    def __init__(self, container: FakeContainer, target: Any):
        self._container = container
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in ("put", "put_many") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._container.dead:
                return None
            return attr(*args, **kwargs)

        return call


class _ContainerApi:
    """`modal` as one container sees it."""

    def __init__(self, container: FakeContainer):
        fake = container.fake
        self.exception = modal_exception
        self.Queue = SimpleNamespace(from_name=lambda name, **kw: _Dead(container, fake.queue))
        self.Dict = SimpleNamespace(from_name=lambda name, **kw: _Dead(container, fake.dict))


class FakeFunction:
    def __init__(self, fake: FakeModal, name: str, options: dict[str, Any] | None = None,
                 semaphore: threading.Semaphore | None = None, app: "FakeApp | None" = None):  # fmt: skip
        self.fake = fake
        self.app = app
        self.name = name
        self.options = options or {}
        self.semaphore = semaphore

    def hydrate(self) -> "FakeFunction":
        self.fake.maybe_hang("hydrate")
        if not self.fake.deployed:
            raise modal_exception.NotFoundError(f"Lookup failed for Function '{self.name}' from the 'nsm-tui' app")
        return self

    def with_options(self, **options: Any) -> "FakeFunction":
        cap = options.get("max_containers")
        sem = threading.Semaphore(cap) if cap else None
        return FakeFunction(self.fake, self.name, {**self.options, **options}, sem, self.app)

    def spawn(self, request: dict[str, Any]) -> "FakeCall":
        self.fake.maybe_hang("spawn")
        if self.app is not None:
            self.app.check_running(self.name)
        if self.fake.on_spawn is not None:
            self.fake.on_spawn()
        self.fake.ops.append(("spawn", {"run": request["run"], **self.options}))
        call = self.fake.new_call(wire(request), self.semaphore)
        if self.app is not None:
            self.app.calls.append(call)
        return call

    def remote_gen(self, request: dict[str, Any]) -> Iterator[Any]:
        self.fake.maybe_hang("remote_gen")
        if self.app is not None:
            self.app.check_running(self.name)
        self.fake.ops.append(("remote_gen", {"run": request["run"], **self.options}))
        if self.fake.stream_error is not None:
            raise self.fake.stream_error
        train = self.fake.app_module.train if self.app is not None else self.fake.functions["train"]
        items = relay.relay_in_container(wire(request), self.fake, train)
        for n, item in enumerate(items):
            if self.fake.drop_stream_after is not None and n >= self.fake.drop_stream_after:
                raise modal_exception.ConnectionError("stream reset by peer")
            yield wire(item)


class FakeCall:
    def __init__(self, fake: FakeModal, object_id: str, request: dict[str, Any], semaphore: threading.Semaphore | None):
        self.fake = fake
        self.object_id = object_id
        self.request = request
        self._semaphore = semaphore
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self.cancelled = False
        self.attempts = 0
        self.retries_used = 0  # attempts that ended with an exception (Modal's retry policy)
        self.internal_failures = 0  # containers that died (pre-empted, lost): retried for free
        self.log_lines: list[str] = [f"container for {object_id} started\n"]
        self.logs = SimpleNamespace(tail=self._tail)
        self._thread = threading.Thread(target=self._run, name=f"fake-container-{object_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self.attempts += 1
                try:
                    self._result = wire(self.fake.run_container(self.request, self._semaphore, call=self))
                    return
                except Killed as exc:
                    self.log_lines.append(f"container killed ({exc.reason})\n")
                    if exc.reason == "cancelled" or self.cancelled:
                        self._error = remote_copy(Killed("cancelled"))
                        return
                    self.internal_failures += 1
                    if self.internal_failures >= self.fake.max_internal_failures:
                        self._error = remote_copy(exc)
                        return
                except BaseException as exc:
                    self.log_lines.extend(traceback.format_exception(exc))
                    if self.cancelled or self.retries_used >= self.fake.max_retries:
                        self._error = remote_copy(exc)
                        return
                    self.retries_used += 1
        finally:
            self._done.set()

    def _tail(self, entries: int = 100, **_: Any) -> Iterator[Any]:
        self.fake.maybe_hang("logs.tail")
        for line in self.log_lines[-entries:]:
            yield SimpleNamespace(message=line, source="stderr")

    def get(self, timeout: float | None = None) -> Any:
        self.fake.maybe_hang("get")
        if not self._done.wait(timeout):
            raise TimeoutError()
        if self.cancelled:
            raise modal_exception.InputCancellation("the function call was cancelled")
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self, terminate_containers: bool = False) -> None:
        self.fake.maybe_hang("cancel")
        self.cancelled = True
        # The container is killed: nothing it does from now on reaches the queue or the volume.
        from remote import config as rc

        partition = rc.partition_key(self.request["config"]["domain"], self.request["run"], self.request["launch_id"])
        self.fake.queue.dead.add(partition)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class FakeQueue:
    def __init__(self, fake: FakeModal):
        self.fake = fake
        self.parts: dict[str, deque[Any]] = defaultdict(deque)
        self.cond = threading.Condition()
        self.put_count = 0
        self.dead: set[str] = set()  # partitions of killed containers

    def _check(self, op: str) -> None:
        self.fake.maybe_hang(op)
        if self.fake.queue_missing:
            raise modal_exception.NotFoundError("Queue 'nsm-tui-events' not found")

    def put_many(self, vs: list[Any], block: bool = True, timeout: float | None = None, *,
                 partition: str | None = None, partition_ttl: int = 86400) -> None:  # fmt: skip
        self._check("queue.put")
        if (partition or "") in self.dead:
            return
        with self.cond:
            if len(self.parts[partition or ""]) + len(vs) > self.fake.queue_limit:
                raise queue_module.Full(f"partition {partition} holds {self.fake.queue_limit} items")
            self.parts[partition or ""].extend(wire(list(vs)))
            self.put_count += len(vs)
            self.cond.notify_all()

    def get_many(self, n_values: int, block: bool = True, timeout: float | None = None, *,
                 partition: str | None = None) -> list[Any]:  # fmt: skip
        self._check("queue.get")
        key = partition or ""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while block and not self.parts[key]:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise queue_module.Empty()
                self.cond.wait(left)
            out = []
            while self.parts[key] and len(out) < n_values:
                out.append(self.parts[key].popleft())
            return out

    def expire(self, partition: str) -> None:
        """What Modal does to a partition left alone for its TTL."""
        with self.cond:
            self.parts.pop(partition, None)


class FakeDict:
    def __init__(self, fake: FakeModal):
        self.fake = fake
        self.data: dict[Any, Any] = {}
        self.lock = threading.Lock()

    def get(self, key: Any, default: Any = None) -> Any:
        self.fake.maybe_hang("dict.get")
        with self.lock:
            return wire(self.data.get(key, default))

    def put(self, key: Any, value: Any, *, skip_if_exists: bool = False) -> bool:
        self.fake.maybe_hang("dict.put")
        with self.lock:
            self.data[key] = wire(value)
        return True


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _files(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): _digest(p) for p in root.rglob("*") if p.is_file()}


class VolumeView:
    """One container's view of the volume: a copy of the committed state as of
    its start or last reload, plus its own writes until it commits them."""

    def __init__(self, fake: FakeModal, path: Path):
        self.fake = fake
        self.path = path
        self.dead = False
        self.commits = 0
        self.reloads = 0
        self.base: dict[str, str] = {}  # file -> digest, as last taken from / given to the volume
        path.mkdir(parents=True, exist_ok=True)
        self._pull()

    def _changes(self) -> tuple[dict[str, str], set[str]]:
        now = _files(self.path)
        changed = {f: d for f, d in now.items() if self.base.get(f) != d}
        deleted = set(self.base) - set(now)
        return changed, deleted

    def commit(self) -> None:
        """Publish this view's changes (last writer wins per file)."""
        if self.dead:
            return
        with self.fake.volume_lock:
            changed, deleted = self._changes()
            for f in changed:
                dest = self.fake.committed / f
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.path / f, dest)
                self.base[f] = changed[f]
            for f in deleted:
                (self.fake.committed / f).unlink(missing_ok=True)
                self.base.pop(f, None)
            self.commits += 1
            self.fake.volume.commits += 1

    def reload(self) -> None:
        """Take in other containers' commits; this view's own uncommitted changes stay."""
        with self.fake.volume_lock:
            open_files = self._open_files()
            if open_files:
                raise RuntimeError(f"there are open files preventing the operation: {open_files[0]}")
            self.reloads += 1
            self._pull()

    def _pull(self) -> None:
        with self.fake.volume_lock:
            changed, _deleted = self._changes()
            committed = _files(self.fake.committed)
            for f, d in committed.items():
                if f in changed:
                    continue
                dest = self.path / f
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.fake.committed / f, dest)
                self.base[f] = d
            for f in set(self.base) - set(committed):
                if f not in changed:
                    (self.path / f).unlink(missing_ok=True)
                    self.base.pop(f, None)

    def _open_files(self) -> list[str]:
        found = []
        prefix = str(self.path.resolve()) + os.sep
        with contextlib.suppress(OSError):
            for fd in os.listdir("/proc/self/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/self/fd/{fd}")
                    if target.startswith(prefix):
                        found.append(target)
        return found

    def caught_in_a_write(self) -> str:
        """A background commit (Modal makes them on its own) that caught an atomic write in
        progress: the run folder's temp file reaches the volume with everything else."""
        runs = sorted(p.parent for p in self.path.rglob("events.jsonl"))
        folder = runs[-1] if runs else self.path
        tmp = folder / ".checkpoint_epoch_9.pt.abcd1234.tmp"
        tmp.write_bytes(b"half a checkpoint")
        self.commit()
        return tmp.name


class FakeVolume:
    """The client's handle on the volume (listdir / read_file of the committed state); its
    commit / reload act on `work/`, the view of calls run in the test's thread."""

    def __init__(self, fake: FakeModal):
        self.fake = fake
        self.commits = 0
        self.lock = fake.volume_lock
        self.view = VolumeView(fake, fake.work)

    def commit(self) -> None:
        self.view.commit()

    def reload(self) -> None:
        self.view.reload()

    def listdir(self, path: str, *, recursive: bool = False) -> list[Any]:
        self.fake.maybe_hang("volume.listdir")
        base = self.fake.committed / path.strip("/")
        if not base.exists():
            raise modal_exception.NotFoundError(f"No such file or directory: {path}")
        paths = sorted(base.rglob("*") if recursive else base.iterdir()) if base.is_dir() else [base]
        out = []
        for p in paths:
            st = p.stat()
            out.append(
                SimpleNamespace(
                    path=str(p.relative_to(self.fake.committed)),
                    type=SimpleNamespace(name="DIRECTORY" if p.is_dir() else "FILE"),
                    mtime=int(st.st_mtime),
                    size=0 if p.is_dir() else st.st_size,
                )
            )
        return out

    def read_file(self, path: str) -> Iterator[bytes]:
        self.fake.maybe_hang("volume.read_file")
        p = self.fake.committed / path.strip("/")
        if not p.is_file():
            raise FileNotFoundError(path)
        data = p.read_bytes()
        for i in range(0, len(data), 1 << 16):
            yield data[i : i + (1 << 16)]

    # -- for tests ------------------------------------------------------------
    def temp_files(self) -> list[str]:
        """Temp files of atomic writes on the volume (there must never be any once a run ended)."""
        return sorted(p.relative_to(self.fake.committed).as_posix() for p in self.fake.committed.rglob("*.tmp"))


class FakeApp:
    """An ephemeral app (remote/app.py's `app`, not deployed): `run(detach)` as Modal's."""

    def __init__(self, fake: FakeModal):
        self.fake = fake
        self.running = False
        self.runs = 0
        self.detached: bool | None = None
        self.calls: list[FakeCall] = []

    def check_running(self, name: str) -> None:
        if not self.running:
            raise modal_exception.ExecutionError(
                f"Function {name} has not been hydrated with the metadata it needs to run on Modal, because the "
                "App it is defined on is not running"
            )

    @contextlib.contextmanager
    def run(self, *, detach: bool = False, **_: Any) -> Iterator["FakeApp"]:
        if self.running:
            raise modal_exception.InvalidError("App is already running and can't be started again.")
        self.fake.maybe_hang("app.run")
        self.running, self.detached = True, detach
        self.runs += 1
        try:
            yield self
        finally:
            self.running = False
            if not detach:  # an ephemeral app stops when its client leaves: its calls die
                for call in self.calls:
                    if not call._done.is_set():
                        call.cancelled = True


class FakeAppModule:
    """What the client takes from remote/app.py for an ephemeral app."""

    def __init__(self, fake: FakeModal):
        self.app = FakeApp(fake)
        self.train = FakeFunction(fake, "train", app=self.app)
        self.stream = FakeFunction(fake, "stream", app=self.app)
