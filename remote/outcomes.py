"""What an exception from a call to Modal means: the one place that decides.

Every outcome of a Modal call falls in one of these kinds:

- TRANSIENT: the network or Modal's service hiccuped (connection reset, a
  socket timeout, a gRPC status Modal itself retries, rate limits, a client
  closed under us). The call may succeed if tried again; the state of a run
  is *unknown*, never `failed`.
- ENDPOINT: the server answered, but not as Modal does (HTTP 404 read as
  gRPC UNIMPLEMENTED: MODAL_SERVER_URL points at something else, or a proxy
  is in the way). Retried like TRANSIENT by loops that wait, reported as a
  wrong endpoint by commands.
- AUTH: no token, a bad token, or a token without permission (a set-up
  problem: exit code 2).
- NOT_FOUND: the object (app, call, queue, file) does not exist.
- REJECTED: Modal refused the request as such (invalid, conflict, too
  large, version): retrying the same request will not help.
- REMOTE: the function itself ended with an exception (after Modal's retries).

This module imports no `modal` at import time: it names classes by module
and name, so it also classifies exceptions coming through a test's fake
(which raises the real modal.exception classes).
"""

from __future__ import annotations

import os

TRANSIENT, ENDPOINT, AUTH, NOT_FOUND, REJECTED, REMOTE = "transient", "endpoint", "auth", "not_found", "rejected", "remote"

# modal.exception classes by name (1.6.x), and what they mean.
_MODAL_KINDS = {
    "AuthError": AUTH,
    "PermissionDeniedError": AUTH,
    "NotFoundError": NOT_FOUND,
    "UnimplementedError": ENDPOINT,
    "ConnectionError": TRANSIENT,
    "ServiceError": TRANSIENT,  # CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, UNAVAILABLE
    "InternalError": TRANSIENT,
    "ResourceExhaustedError": TRANSIENT,  # rate limits
    "ClientClosed": TRANSIENT,
    "RetryTimeoutError": TRANSIENT,
    "TimeoutError": TRANSIENT,  # a control call's own timeout (not FunctionTimeoutError: see calls.poll_call)
    "InvalidError": REJECTED,
    "ConflictError": REJECTED,
    "AlreadyExistsError": REJECTED,
    "RequestSizeError": REJECTED,
    "SerializationError": REJECTED,
    "VersionError": REJECTED,
    "DataLossError": REJECTED,
    "DeserializationError": REJECTED,
    "WorkspaceManagementError": REJECTED,
    "ExecutionError": REMOTE,
    "RemoteError": REMOTE,
    "InternalFailure": REMOTE,
    "FunctionTimeoutError": REMOTE,
    "OutputExpiredError": REMOTE,
    "ImageBuildError": REMOTE,
}

# grpclib statuses by name: those Modal's own client retries are transient.
_GRPC_TRANSIENT = {"DEADLINE_EXCEEDED", "UNAVAILABLE", "CANCELLED", "INTERNAL", "UNKNOWN", "RESOURCE_EXHAUSTED", "ABORTED"}
_GRPC_KINDS = {"UNIMPLEMENTED": ENDPOINT, "UNAUTHENTICATED": AUTH, "PERMISSION_DENIED": AUTH, "NOT_FOUND": NOT_FOUND}


def _modal_name(exc: BaseException) -> str | None:
    """The name of the first modal.exception class in exc's MRO (subclasses of ours count too)."""
    for cls in type(exc).__mro__:
        module = cls.__module__ or ""
        if module == "modal.exception" or module.startswith("modal._utils.grpc_utils"):
            if cls.__name__ in _MODAL_KINDS:
                return cls.__name__
    return None


def is_remote_exception(exc: BaseException) -> bool:
    """An exception raised inside the function and re-raised here by FunctionCall.get:
    Modal attaches the remote traceback's line cache to it."""
    return hasattr(exc, "__line_cache__")


def classify(exc: BaseException) -> str:
    """The kind of a Modal call's exception (module docstring). Exceptions this
    module does not know are REMOTE when they came from the function, else
    REJECTED (a bug or a request Modal will not take): never silently transient."""
    if is_remote_exception(exc):
        return REMOTE
    name = _modal_name(exc)
    if name is not None:
        return _MODAL_KINDS[name]
    module = type(exc).__module__.split(".")[0]
    if module == "grpclib":
        status = getattr(getattr(exc, "status", None), "name", None)
        if status in _GRPC_KINDS:
            return _GRPC_KINDS[status]
        # StreamTerminatedError, ProtocolError, or a status Modal retries.
        return TRANSIENT if status is None or status in _GRPC_TRANSIENT else REJECTED
    if module in ("h2", "hpack", "aiohttp"):
        return TRANSIENT
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return NOT_FOUND
    if raised_in_transport(exc):
        # e.g. grpclib's AttributeError on a connection reset under it (a known grpclib bug
        # Modal's own retry loop also catches): the transport failed, not the request.
        return TRANSIENT
    if isinstance(exc, PermissionError):
        return REJECTED
    if isinstance(exc, (ConnectionError, TimeoutError, OSError, EOFError)):
        return TRANSIENT  # builtin network errors, socket timeouts, asyncio timeouts
    return REJECTED


_TRANSPORT_DIRS = ("/grpclib/", "/h2/", "/hpack/", "/aiohttp/")


def raised_in_transport(exc: BaseException) -> bool:
    """The exception's innermost frame is in the gRPC/HTTP transport under Modal's client."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename.replace("\\", "/")
    return any(d in filename for d in _TRANSPORT_DIRS)


def is_transient(exc: BaseException) -> bool:
    return classify(exc) in (TRANSIENT, ENDPOINT)


def server_url() -> str:
    return os.environ.get("MODAL_SERVER_URL") or "https://api.modal.com"
