"""Following one Modal run and mirroring it into the local store.

Two sources of live events, one lossless record:
- attached: the `stream` function's generator (`remote_gen`), which spawns
  the training call and relays its events;
- detached / re-attached: the run's partition of the event queue, read here;
- the volume's events.jsonl, read to fill any gap (a dropped stream, an
  expired queue, events another follower consumed) and at the end.

When the stream drops, the follower goes on from the queue with the last seq
it wrote: the mirror drops duplicates and fills gaps, so nothing is lost or
repeated. A lease in the control dict makes sure only one follower (or relay)
consumes a run's queue partition at a time.
"""

from __future__ import annotations

import queue as queue_module
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from nsm.runs import Run
from nsm.runs import events as ev
from remote import calls
from remote import config as rc
from remote.client import ModalClient, QueueUnavailable, StreamPump, new_owner
from remote.errors import MirrorBusy, ModalError, ModalUnreachable, RemoteRunFailed, describe_exception
from remote.mirror import LocalMirror, MirrorLock
from remote.runs import remote_info, update_remote_info, volume_rel_path

# Files fetched from the volume when a run ends (checkpoints other than the
# best model are downloaded on demand: `nsm-tui runs download`).
FETCH_AT_END = ("training_history.json", "final_results.json", "evaluation_best_model.json", "best_model.pt")

FAILURE_LOG = "modal_failure.log"  # the container log's tail of a failed call

DETACHED, SUPERSEDED, LOST, UNKNOWN = "detached", "superseded", "lost", "unknown"


@dataclass
class FollowControl:
    """Requests from the user to a running follower (set from any thread)."""

    stop: threading.Event = field(default_factory=threading.Event)
    detach: threading.Event = field(default_factory=threading.Event)


@dataclass
class FollowResult:
    outcome: str  # finished / interrupted / failed / detached / superseded / lost
    error: str | None = None
    summary: dict[str, Any] | None = None
    duplicates: int = 0
    from_volume: int = 0


class RunFollower:
    def __init__(
        self,
        run: Run,
        client: ModalClient | None = None,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_note: Callable[[str], None] | None = None,
        control: FollowControl | None = None,
        poll_timeout_s: float = 1.0,
        probe_every_s: float = rc.LIVENESS_PROBE_S,
        fill_every_s: float = 10.0,
        silence_s: float = 60.0,
        lease_renew_s: float = rc.LEASE_RENEW_S,
        reconnect_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.run = run
        self.client = client or ModalClient()
        self.on_event = on_event
        self.on_note = on_note
        self.control = control or FollowControl()
        self.poll_timeout_s = poll_timeout_s
        self.probe_every_s = probe_every_s
        self.fill_every_s = fill_every_s
        self.silence_s = silence_s
        self.lease_renew_s = lease_renew_s
        self.reconnect_s = rc.reconnect_s() if reconnect_s is None else reconnect_s
        self._unreachable_since: float | None = None
        self._backoff = poll_timeout_s
        self.clock = clock
        self.sleep = sleep
        self.info = remote_info(run)
        self.partition = self.info["partition"]
        self.volume_dir = volume_rel_path(self.info, run)
        self.mirror: LocalMirror | None = None
        self._owner = new_owner()
        self._lease_n = 0
        self._last_lease = -1e18
        self._last_fill = -1e18
        self._fill_interval = fill_every_s
        self._stop_sent = False
        self._queue_note = False

    # -- public ----------------------------------------------------------------
    def attach_stream(self, request: dict[str, Any]) -> FollowResult:
        """Launch through the stream function and follow it; on a dropped
        stream, go on from the queue (see `follow`)."""
        with self._mirroring():
            request = dict(request, lease_owner=self._owner)
            self._renew_lease(force=True)
            pump = self.client.stream(request)
            try:
                result = self._consume_stream(pump)
            finally:
                pump.close()
            if result is not None:
                return result
            # The stream is gone: a new owner makes a relay that may still run step aside.
            self._owner = new_owner()
            return self._follow_queue()

    def follow(self) -> FollowResult:
        """Follow a launched run (re-attach): queue + volume, from the last local seq."""
        with self._mirroring():
            return self._follow_queue()

    def catch_up(self) -> int:
        """For a run that is not running: take what is left in its queue
        partition, then the volume's log. Returns the next local seq (the
        seq a new launch of the run must start from)."""
        with self._mirroring():
            assert self.mirror is not None
            while True:
                try:
                    items = self.client.queue_get(self.partition, 0.0)
                except QueueUnavailable:
                    break
                if not items:
                    break
                for item in items:
                    self.mirror.offer(item)
            self._fill_from_volume(force=True)
            return self.mirror.next_seq

    # -- plumbing --------------------------------------------------------------
    def _mirroring(self) -> "_Mirroring":
        return _Mirroring(self)

    def _note(self, text: str) -> None:
        if self.on_note is not None:
            self.on_note(text)

    def _call_id(self) -> str | None:
        self.info = remote_info(self.run)
        return self.info.get("function_call_id")

    def _renew_lease(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last_lease < self.lease_renew_s:
            return
        self._lease_n += 1
        try:
            self.client.set_lease(self.partition, self._owner, self._lease_n)
            self._last_lease = now
        except ModalUnreachable as exc:
            self._note(f"could not renew the stream lease: {exc}")

    def _lease_taken(self) -> bool:
        try:
            lease = self.client.lease(self.partition)
        except ModalUnreachable:
            return False
        return isinstance(lease, dict) and lease.get("owner") not in (None, self._owner)

    def _handle_requests(self) -> bool:
        """Act on the user's requests; True when the follower should leave (detach)."""
        if self.control.stop.is_set() and not self._stop_sent:
            try:
                self.client.set_stop(self.partition, True)
                self._stop_sent = True
                self._note("stop requested: the run stops at its next step and saves a checkpoint")
            except ModalUnreachable as exc:
                self._note(f"could not set the stop flag yet ({exc}); retrying")
        return self.control.detach.is_set()

    def _fill_from_volume(self, force: bool = False) -> int:
        """Take what the volume's log has beyond the local copy. While a gap
        waits for the next commit, reads back off (the log can be megabytes)."""
        now = self.clock()
        if not force and now - self._last_fill < self._fill_interval:
            return 0
        self._last_fill = now
        assert self.mirror is not None
        try:
            data = self.client.read_file(f"{self.volume_dir}/events.jsonl")
        except ModalUnreachable as exc:
            self._note(f"could not read the volume's event log: {exc}")
            return 0
        n = self.mirror.fill(data)
        self._fill_interval = self.fill_every_s if n else min(self._fill_interval * 2, max(60.0, self.fill_every_s))
        if n:
            self._note(f"filled {n} event(s) from the volume's log (up to seq {self.mirror.next_seq - 1})")
        return n

    def _offer(self, item: Any) -> None:
        assert self.mirror is not None
        self.mirror.offer(item)
        if self.mirror.gap() is not None:
            self._fill_from_volume()

    # -- the attached stream ---------------------------------------------------
    def _consume_stream(self, pump: StreamPump) -> FollowResult | None:
        """Mirror the stream's items; a FollowResult when the run ended (or the
        user detached), None when the stream dropped and the queue should take over."""
        assert self.mirror is not None
        first_wait = self.client.first_item_timeout()
        timeout = first_wait
        started = False  # the relay has reported the training call: from then on the queue can take over
        while True:
            if self._handle_requests():
                return FollowResult(DETACHED)
            try:
                kind, item = pump.get(timeout=min(timeout, self.poll_timeout_s))
            except queue_module.Empty:
                timeout -= self.poll_timeout_s
                if timeout <= 0:
                    if not started:
                        raise ModalUnreachable("starting the run (no answer from the stream function)", first_wait)
                    self._note(f"no word from the stream for a while; re-attaching from seq {self.mirror.next_seq}")
                    return None
                self._renew_lease()
                continue
            timeout = self.silence_s
            self._renew_lease()
            if kind in (StreamPump.END, StreamPump.ERROR) and not started:
                detail = "it ended" if kind == StreamPump.END else describe_exception(item)
                error = self.client.translate(item, "starting the run") if isinstance(item, Exception) else None
                if isinstance(error, ModalError):
                    raise error
                raise ModalError(f"the Modal stream failed before the run started: {detail}")
            if kind == StreamPump.END:
                self._note(f"the stream ended early; re-attaching from seq {self.mirror.next_seq}")
                return None
            if kind == StreamPump.ERROR:
                if isinstance(item, ModalError) and not isinstance(item, ModalUnreachable):
                    raise item
                self._note(f"the stream dropped ({describe_exception(item)}); re-attaching from seq {self.mirror.next_seq}")
                return None
            if isinstance(item, dict) and item.get("_nsm") == "call":
                started = True
            if isinstance(item, dict) and "_nsm" in item:
                result = self._control_item(item)
                if result is not None:
                    return result
                continue
            self._offer(item)

    def _control_item(self, item: dict[str, Any]) -> FollowResult | None:
        assert self.mirror is not None
        what = item.get("_nsm")
        if what == "call":
            self.info = update_remote_info(self.run, function_call_id=item.get("function_call_id"))
            self._note(f"running on Modal (function call {item.get('function_call_id')})")
        elif what == "alive":
            self.mirror.beat()
        elif what == "result":
            return self._finish(calls.DONE if item.get("result") is not None else calls.EXPIRED, item.get("result"))
        elif what == "error":
            status = item.get("status") if item.get("status") in calls.ENDED + (calls.UNKNOWN,) else calls.ERROR
            return self._finish(status, str(item.get("error") or "remote error"))
        elif what == "lease_lost":
            # Our own relay gave up (we renewed too late): the queue is ours to read now.
            return None if "another" not in str(item.get("reason")) else FollowResult(SUPERSEDED, item.get("reason"))
        return None

    # -- the queue -------------------------------------------------------------
    def _follow_queue(self) -> FollowResult:
        assert self.mirror is not None
        call_id = self._call_id()
        self._renew_lease(force=True)
        self._fill_from_volume(force=True)
        last_probe = -1e18
        fast_until = -1e18  # after a terminal event the call ends within moments (or a retry starts)
        silent_since = self.clock()
        while True:
            if self._handle_requests():
                return FollowResult(DETACHED)
            items: list[Any] = []
            try:
                items = self.client.queue_get(self.partition, self.poll_timeout_s)
            except QueueUnavailable as exc:
                if not self._queue_note:
                    self._queue_note = True
                    self._note(f"{exc}; following the volume's log instead")
                self._fill_from_volume()
                self.sleep(self.poll_timeout_s)
            except ModalUnreachable as exc:
                gave_up = self._unreachable(exc)
                if gave_up is not None:
                    return gave_up
                continue
            else:
                self._reachable()
            for item in items:
                if isinstance(item, dict) and item.get("type") in ev.TERMINAL_TYPES:
                    fast_until = self.clock() + 60.0
                self._offer(item)
            if items:
                silent_since = self.clock()
            now = self.clock()
            if now - last_probe >= (min(1.0, self.probe_every_s) if now < fast_until else self.probe_every_s):
                last_probe = now
                if call_id is None:
                    result = self._follow_without_call(silent_since)
                    if result is not None:
                        return result
                    continue
                try:
                    status, value = self.client.poll(call_id)
                except ModalUnreachable as exc:
                    gave_up = self._unreachable(exc)
                    if gave_up is not None:
                        return gave_up
                    continue
                self._reachable()
                if status != calls.RUNNING:
                    return self._finish(status, value)
                self.mirror.beat(force=True)
                if self._lease_taken():
                    return FollowResult(SUPERSEDED, "another follower took over this run's stream")
            self._renew_lease()

    def _unreachable(self, exc: ModalUnreachable) -> FollowResult | None:
        """A transient failure while the run may go on: wait (backing off) and try
        again, for at most `reconnect_s` in a row; then the run's state is unknown
        (never `failed`: it may still be training on Modal)."""
        now = self.clock()
        if self._unreachable_since is None:
            self._unreachable_since = now
            self._note(f"reconnecting to Modal (trying for up to {self.reconnect_s:g} s): {exc}")
        waited = now - self._unreachable_since
        if waited >= self.reconnect_s:
            return FollowResult(
                UNKNOWN,
                f"Modal has not answered for {waited:.0f} s ({exc}); the run may still be going on Modal: "
                f"re-attach later with `nsm-tui attach {self.run.name}`",
            )
        self.sleep(max(0.0, min(self._backoff, self.reconnect_s - waited)))
        self._backoff = min(self._backoff * 2, 30.0)
        return None

    def _reachable(self) -> None:
        if self._unreachable_since is not None:
            self._note(f"reconnected to Modal after {self.clock() - self._unreachable_since:.0f} s")
        self._unreachable_since = None
        self._backoff = self.poll_timeout_s

    def _follow_without_call(self, silent_since: float) -> FollowResult | None:
        """No call id was recorded (the launch was cut off): the volume's log is all there is."""
        assert self.mirror is not None
        self._fill_from_volume()
        state = self.run.state()
        if state.status is not None:
            return FollowResult(state.status, state.error)
        if self.clock() - silent_since > self.silence_s * 5:
            return FollowResult(LOST, "no function call id was recorded and the volume's log has not moved")
        return None

    # -- the end ---------------------------------------------------------------
    def _finish(self, status: str, value: Any) -> FollowResult:
        """The call ended: complete the local log from the volume, fetch the
        results, and record a failure the engine could not report."""
        assert self.mirror is not None
        summary = value if status == calls.DONE and isinstance(value, dict) else None
        last_seq = summary.get("last_seq") if summary else None
        for attempt in range(3):
            self._fill_from_volume(force=True)
            if not isinstance(last_seq, int) or self.mirror.next_seq > last_seq:
                break
            self.sleep(1.0 * (attempt + 1))
        if isinstance(last_seq, int) and self.mirror.next_seq <= last_seq:
            self._note(f"the volume's log ends before seq {last_seq}; the local copy stops at {self.mirror.next_seq - 1}")
        self._fetch_files()
        state = self.run.state()
        result = FollowResult(
            state.status or "failed",
            state.error,
            summary,
            duplicates=self.mirror.duplicates,
            from_volume=self.mirror.from_volume,
        )
        if status == calls.DONE and summary is not None:
            if summary.get("error") and state.status is None:
                self._record_failure(str(summary["error"]), "launch")
                result.outcome, result.error = "failed", str(summary["error"])
            elif state.status is None:
                result.outcome = str(summary.get("outcome") or "failed")
        elif status in (calls.ERROR, calls.TIMED_OUT, calls.CANCELLED):
            text = value if isinstance(value, str) else describe_exception(value)
            self.info = remote_info(self.run)  # `nsm-tui stop --hard` may have marked it meanwhile
            cancelled = status == calls.CANCELLED or bool(self.info.get("cancelled")) or "cancel" in text.lower()
            kind = "cancelled" if cancelled else ("timeout" if status == calls.TIMED_OUT else "remote")
            if state.status is None:
                text = self._record_failure(text, kind)
                result.outcome, result.error = "failed", text
            elif state.status == "failed":
                result.error = state.error or text
        elif status == calls.EXPIRED and state.status is None:
            result.outcome, result.error = LOST, "Modal no longer keeps this call's result and the log has no end"
        elif status == calls.UNKNOWN and state.status is None:
            result.outcome = UNKNOWN
            result.error = f"Modal does not know the function call {self._call_id()} ({describe_exception(value)})"
        update_remote_info(self.run, ended=time.time(), outcome=result.outcome)
        return result

    def _record_failure(self, text: str, kind: str) -> str:
        """Write the `failed` event the engine could not; returns its message."""
        assert self.mirror is not None
        latest = self.run.latest_checkpoint()
        if kind == "cancelled":
            message, hint = "cancelled on Modal (hard stop)", f"resume from the last checkpoint: nsm-tui resume {self.run.name}"
        elif kind == "launch":
            message, hint = text, None
        else:
            what = "timed out on Modal" if kind == "timeout" else "failed"
            message = f"the Modal function {what}: {text}"
            saved = self._save_log_tail()
            where = f"its container log's tail is in {saved}" if saved else f"see the container logs: modal app logs {rc.APP_NAME}"
            message += f" ({where})"
            hint = f"{where}; resume with: nsm-tui resume {self.run.name}"
        self.mirror.append_local(
            ev.FAILED,
            error=message,
            error_type=kind,
            hint=hint,
            epoch=self.run.state().epoch,
            step=0,
            checkpoint=latest.file if latest is not None else None,
        )
        return message

    def _save_log_tail(self) -> str | None:
        """The failed call's last container log lines, into the run folder; its path, or None."""
        from nsm.atomic import atomic_write_text

        call_id = self._call_id()
        if not call_id:
            return None
        try:
            lines = self.client.log_tail(call_id)
        except ModalError as exc:
            self._note(f"could not fetch the container log: {exc}")
            return None
        if not lines:
            return None
        path = self.run.path / FAILURE_LOG
        atomic_write_text(path, "".join(line if line.endswith("\n") else line + "\n" for line in lines))
        return str(path)

    def _fetch_files(self) -> None:
        try:
            present = {e.path.rsplit("/", 1)[-1] for e in self.client.listdir(self.volume_dir)}
        except ModalUnreachable as exc:
            self._note(f"could not list the run on the volume: {exc}")
            return
        for name in FETCH_AT_END:
            if name not in present:
                continue
            try:
                self.client.download(f"{self.volume_dir}/{name}", self.run.path / name)
            except ModalUnreachable as exc:
                self._note(f"could not download {name}: {exc} (later: nsm-tui runs download {self.run.name})")


class _Mirroring:
    """Context: hold the run's mirror lock and an open LocalMirror."""

    def __init__(self, follower: RunFollower):
        self.f = follower
        self.lock = MirrorLock(follower.run)

    def __enter__(self) -> LocalMirror:
        if not self.lock.acquire():
            raise MirrorBusy(
                f"run {self.f.run.name} is already being mirrored by another nsm-tui process; "
                "it is shown from the local store as it arrives"
            )
        try:
            self.f.mirror = LocalMirror(self.f.run, on_event=self.f.on_event)
        except BaseException:
            self.lock.release()
            raise
        return self.f.mirror

    def __exit__(self, *exc: object) -> None:
        if self.f.mirror is not None:
            self.f.mirror.close()
        self.lock.release()


def raise_for(result: FollowResult, run: Run) -> None:
    """RemoteRunFailed for a run that ended in failure."""
    if result.outcome == "failed":
        raise RemoteRunFailed(run.name, result.error or "unknown error")
