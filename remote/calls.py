"""Small adapters over the Modal objects, shared by the container and the client.

`api` is the `modal` module (or a test's fake with the same names).
"""

from __future__ import annotations

import queue as queue_module
from typing import Any

RUNNING, DONE, EXPIRED, ERROR, TIMED_OUT, CANCELLED, UNKNOWN = (
    "running", "done", "expired", "error", "timed_out", "cancelled", "unknown"
)
ENDED = (DONE, EXPIRED, ERROR, TIMED_OUT, CANCELLED)
BATCH = 500


def poll_call(api: Any, call: Any) -> tuple[str, Any]:
    """Whether a FunctionCall has ended, without waiting: (running, None);
    (done, its return value); (expired, None) when Modal no longer keeps the
    result; (timed_out, exc) after the function's timeout (and retries);
    (cancelled, exc); (error, the exception the function ended with);
    (unknown, exc) when Modal does not know the call. A transient failure
    (network, Modal's service) is raised: it says nothing about the run."""
    from remote import outcomes

    exc_ns = api.exception
    try:
        return DONE, call.get(timeout=0)
    except BaseException as exc:
        # FunctionCall.get raises a bare builtin TimeoutError() while the call runs; a
        # socket's timeout is the same class with a message ("timed out"): transient.
        if type(exc) is TimeoutError and not exc.args and exc.__cause__ is None:
            return RUNNING, None
        if isinstance(exc, exc_ns.OutputExpiredError):
            return EXPIRED, None
        if isinstance(exc, exc_ns.FunctionTimeoutError):
            return TIMED_OUT, exc
        if type(exc).__name__ == "InputCancellation" or _says_cancelled(exc):
            return CANCELLED, exc
        if outcomes.is_remote_exception(exc):
            return ERROR, exc
        kind = outcomes.classify(exc)
        if kind in (outcomes.TRANSIENT, outcomes.ENDPOINT, outcomes.AUTH):
            raise
        if kind == outcomes.NOT_FOUND:
            return UNKNOWN, exc
        if isinstance(exc, Exception):
            return ERROR, exc  # the function raised (Modal re-raises its exception here)
        raise


def _says_cancelled(exc: BaseException) -> bool:
    # Modal reports a cancelled call's get() as a RemoteError whose message says so.
    return type(exc).__name__ == "RemoteError" and "cancel" in str(exc).lower()


def queue_get(queue: Any, partition: str, timeout: float) -> list[Any]:
    """Up to BATCH items of a partition: waits up to `timeout` for the first
    (not at all with timeout 0); [] when none came."""
    if timeout <= 0:
        return list(queue.get_many(BATCH, block=False, partition=partition) or [])
    try:
        return list(queue.get_many(BATCH, block=True, timeout=timeout, partition=partition) or [])
    except queue_module.Empty:
        return []
