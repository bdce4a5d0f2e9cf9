"""A stand-in for exactly the parts of `modal` the client and the container use.

- Function.from_name(app, name): `train` runs the real container wiring
  (remote.worker.run_in_container) in a thread, against a temp folder that
  stands for the mounted volume; `stream` runs the real relay
  (remote.relay.relay_in_container) in the caller's iteration.
- FunctionCall.from_id(id): get(timeout) / cancel().
- Queue.from_name: partitions, get_many / put_many (blocking with timeout).
- Dict.from_name: get / put.
- Volume.from_name: the container writes to `work/`; commit() copies it to
  `committed/`, which is all that listdir/read_file (the client's view) see,
  like a real volume whose uncommitted writes stay in the container.
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

import itertools
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


def wire(value: Any) -> Any:
    """What crosses between this machine and a container: a pickled copy (an
    object that cannot be pickled fails here as it would on Modal)."""
    return pickle.loads(pickle.dumps(value))


def remote_copy(exc: BaseException) -> BaseException:
    """The exception a call ended with, as FunctionCall.get re-raises it here."""
    if isinstance(exc, Killed):
        return modal_exception.InputCancellation("the function call was cancelled")
    try:
        copy_ = pickle.loads(pickle.dumps(exc))
    except Exception:
        copy_ = modal_exception.ExecutionError(f"could not deserialize the remote exception: {exc!r}")
    setattr(copy_, "__line_cache__", {})
    return copy_


class Killed(BaseException):
    """A cancelled container, dying at its next step."""


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
        self.volume = FakeVolume(self)
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

    # -- lookups --------------------------------------------------------------
    def _function_from_name(self, app: str, name: str) -> "FakeFunction":
        return self.functions[name]

    def _call_from_id(self, call_id: str) -> "FakeCall":
        return self.calls[call_id]

    # -- a container ----------------------------------------------------------
    def run_container(self, request: dict[str, Any], semaphore: threading.Semaphore | None,
                      volume: Any = None) -> dict[str, Any]:  # fmt: skip
        if semaphore is not None:
            semaphore.acquire()
        with self._containers_lock:
            self.containers_running += 1
            self.max_containers_seen = max(self.max_containers_seen, self.containers_running)
        options = dict(self.trainer_options)
        if isinstance(volume, FakeCall):
            options["on_step"] = volume.killable(options.get("on_step"))
        try:
            if self.container_error is not None:
                raise self.container_error
            return worker.run_in_container(
                request, self, volume or self.volume, str(self.work), trainer_options=options, threads=1,
            )
        finally:
            with self._containers_lock:
                self.containers_running -= 1
            if semaphore is not None:
                semaphore.release()

    def new_call(self, request: dict[str, Any], semaphore: threading.Semaphore | None) -> "FakeCall":
        call = FakeCall(self, f"fc-{next(self._ids)}", request, semaphore)
        self.calls[call.object_id] = call
        call.start()
        return call


class FakeFunction:
    def __init__(self, fake: FakeModal, name: str, options: dict[str, Any] | None = None,
                 semaphore: threading.Semaphore | None = None):  # fmt: skip
        self.fake = fake
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
        return FakeFunction(self.fake, self.name, {**self.options, **options}, sem)

    def spawn(self, request: dict[str, Any]) -> "FakeCall":
        self.fake.maybe_hang("spawn")
        self.fake.ops.append(("spawn", {"run": request["run"], **self.options}))
        return self.fake.new_call(wire(request), self.semaphore)

    def remote_gen(self, request: dict[str, Any]) -> Iterator[Any]:
        self.fake.maybe_hang("remote_gen")
        self.fake.ops.append(("remote_gen", {"run": request["run"], **self.options}))
        if self.fake.stream_error is not None:
            raise self.fake.stream_error
        items = relay.relay_in_container(wire(request), self.fake, self.fake.functions["train"])
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
        self.log_lines: list[str] = [f"container for {object_id} started\n"]
        self.logs = SimpleNamespace(tail=self._tail)
        self._thread = threading.Thread(target=self._run, name=f"fake-container-{object_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def commit(self) -> None:
        # This call's container commits the shared volume, until it is cancelled (killed).
        if not self.cancelled:
            self.fake.volume.commit()

    def killable(self, on_step: Any) -> Any:
        """The container's step hook: a cancelled container dies mid-step, with no checkpoint."""

        def step(epoch: int, s: int) -> None:
            if self.cancelled:
                raise Killed()
            if on_step is not None:
                on_step(epoch, s)

        return step

    def _run(self) -> None:
        try:
            self._result = wire(self.fake.run_container(self.request, self._semaphore, volume=self))
        except BaseException as exc:
            self.log_lines.extend(traceback.format_exception(exc))
            self._error = remote_copy(exc)
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
        # (The fake thread is stopped through the stop flag; its last words go nowhere.)
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


class FakeVolume:
    def __init__(self, fake: FakeModal):
        self.fake = fake
        self.commits = 0
        self.lock = threading.Lock()
        self.frozen = False  # a "killed" container: its commits never happen

    def commit(self) -> None:
        if self.frozen:
            return
        with self.lock:
            shutil.copytree(self.fake.work, self.fake.committed, dirs_exist_ok=True)
            self.commits += 1

    def reload(self) -> None:
        pass

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
    def restore_work_from_committed(self) -> None:
        """A killed container's uncommitted writes are gone; the next attempt sees the last commit."""
        with self.lock:
            shutil.rmtree(self.fake.work)
            shutil.copytree(self.fake.committed, self.fake.work)
