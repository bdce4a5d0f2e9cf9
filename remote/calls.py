"""Small adapters over the Modal objects, shared by the container and the client.

`api` is the `modal` module (or a test's fake with the same names).
"""

from __future__ import annotations

import queue as queue_module
from typing import Any

RUNNING, DONE, EXPIRED, ERROR = "running", "done", "expired", "error"
BATCH = 500


def poll_call(api: Any, call: Any) -> tuple[str, Any]:
    """Whether a FunctionCall has ended, without waiting: (running, None),
    (done, its return value), (expired, None) when Modal no longer keeps the
    result, or (error, the exception it ended with)."""
    exc_ns = api.exception
    try:
        return DONE, call.get(timeout=0)
    except exc_ns.OutputExpiredError:
        return EXPIRED, None
    except exc_ns.FunctionTimeoutError as exc:
        return ERROR, exc
    except TimeoutError:
        return RUNNING, None
    except exc_ns.TimeoutError:
        return RUNNING, None
    except Exception as exc:
        return ERROR, exc
    except BaseException as exc:  # InputCancellation is a BaseException
        if type(exc).__name__ == "InputCancellation":
            return ERROR, exc
        raise


def queue_get(queue: Any, partition: str, timeout: float) -> list[Any]:
    """Up to BATCH items of a partition: waits up to `timeout` for the first
    (not at all with timeout 0); [] when none came."""
    if timeout <= 0:
        return list(queue.get_many(BATCH, block=False, partition=partition) or [])
    try:
        return list(queue.get_many(BATCH, block=True, timeout=timeout, partition=partition) or [])
    except queue_module.Empty:
        return []
