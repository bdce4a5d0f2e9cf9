"""The attached stream: a generator on Modal that spawns the training call
and relays its events from the run's queue partition as they arrive.

`relay` is a plain generator over injected callables (tests run it with a
fake queue and call); `relay_in_container` wires it to the Modal objects.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from nsm.runs import events as ev
from remote.errors import describe_exception


def relay_in_container(request: dict[str, Any], api: Any, train_function: Any) -> Iterable[dict[str, Any]]:
    """The attached stream's body on Modal: see `relay`."""
    from remote import calls
    from remote import config as rc

    partition = rc.partition_key(request["config"]["domain"], request["run"], request.get("launch_id"))
    queue = api.Queue.from_name(rc.QUEUE_NAME, create_if_missing=True)
    control = api.Dict.from_name(rc.DICT_NAME, create_if_missing=True)
    options: dict[str, Any] = {"gpu": request.get("gpu") or rc.DEFAULT_GPU}
    fn = train_function.with_options(**options)
    yield from relay(
        request,
        spawn=fn.spawn,
        queue_get=lambda p, timeout: calls.queue_get(queue, p, timeout),
        poll_call=lambda call: calls.poll_call(api, call),
        lease_owner=lambda: control.get(rc.lease_key(partition)),
        partition=partition,
        probe_every_s=rc.LIVENESS_PROBE_S,
        lease_ttl_s=rc.LEASE_TTL_S,
    )


def relay(
    request: dict[str, Any],
    *,
    spawn: Callable[[dict[str, Any]], Any],
    queue_get: Callable[[str, float], list[Any]],
    poll_call: Callable[[Any], tuple[str, Any]],
    lease_owner: Callable[[], Any],
    partition: str,
    probe_every_s: float = 10.0,
    lease_ttl_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> Iterable[dict[str, Any]]:
    """The attached stream: spawn the training call, then hand its events on
    as they arrive, until the call ends or the follower that asked for this
    stream stops renewing its lease (it went away, or another took over).

    Items: event dicts (they have a "seq"), and control items with "_nsm":
    call (function_call_id), alive, result (the summary), error (summary),
    lease_lost.
    """
    call = spawn(request)
    yield {"_nsm": "call", "function_call_id": getattr(call, "object_id", None)}
    owner = request.get("lease_owner")
    last_lease = lease_owner()
    lease_seen = clock()
    last_probe = clock()
    fast_until = -1.0  # after a terminal event the call ends within moments (or a retry starts)
    while True:
        for item in queue_get(partition, 1.0):
            if isinstance(item, dict) and item.get("type") in ev.TERMINAL_TYPES:
                fast_until = clock() + 60.0
            yield item
        now = clock()
        if now - last_probe >= (1.0 if now < fast_until else probe_every_s):
            last_probe = now
            try:
                status, value = poll_call(call)
            except Exception as exc:  # a transient failure says nothing about the run: ask again later
                from remote.outcomes import is_transient

                if not is_transient(exc):
                    raise
                continue
            if status != "running":
                yield from queue_get(partition, 0.0)
                yield _final_item(status, value)
                return
            yield {"_nsm": "alive"}
            lease = lease_owner()
            if owner is not None:
                if isinstance(lease, dict) and lease.get("owner") not in (None, owner):
                    yield {"_nsm": "lease_lost", "reason": "another follower took over"}
                    return
                if lease != last_lease:
                    last_lease, lease_seen = lease, now
                elif now - lease_seen > lease_ttl_s:
                    yield {"_nsm": "lease_lost", "reason": "the follower stopped renewing its lease"}
                    return


def _final_item(status: str, value: Any) -> dict[str, Any]:
    if status == "done":
        return {"_nsm": "result", "result": value}
    if status == "expired":
        return {"_nsm": "result", "result": None}
    return {"_nsm": "error", "status": status, "error": describe_exception(value), "error_type": type(value).__name__}
