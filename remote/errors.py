"""What can go wrong between this machine and Modal, each with a message for the user."""

from __future__ import annotations

from typing import Any


class ModalError(Exception):
    """Base class: `str(exc)` is a complete, user-facing sentence."""


class ModalNotConfigured(ModalError):
    def __init__(self, detail: str | None = None):
        message = (
            "no Modal token found: run `modal setup` (or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET), "
            "then try again"
        )
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class ModalUnreachable(ModalError):
    def __init__(self, what: str, timeout: float | None = None, detail: str | None = None):
        self.what = what
        self.timeout = timeout
        if timeout is not None:
            message = f"Modal did not answer {what} within {timeout:g} s"
        else:
            message = f"could not reach Modal for {what}"
        if detail:
            message += f": {detail}"
        message += (
            "; check the network (and https://status.modal.com), or raise NSM_MODAL_CONTROL_TIMEOUT_S on a slow link"
        )
        super().__init__(message)


class ModalWrongEndpoint(ModalUnreachable):
    """The server answered, but not as Modal does (HTTP 404 read as UNIMPLEMENTED)."""

    def __init__(self, what: str, url: str, detail: str | None = None):
        self.what = what
        self.timeout = None
        self.url = url
        ModalError.__init__(
            self,
            f"the server at {url} does not answer as Modal's API does while {what}"
            + (f" ({detail})" if detail else "")
            + "; check MODAL_SERVER_URL (unset it for Modal itself) and any proxy in between",
        )


class ModalNotFound(ModalError):
    """Modal has no such object (app, function call, queue, file)."""

    def __init__(self, what: str, detail: str | None = None):
        self.what = what
        super().__init__(f"Modal has no such object while {what}" + (f": {detail}" if detail else ""))


class ModalRejected(ModalError):
    """Modal refused the request itself (invalid, conflict, too large, version): retrying will not help."""

    def __init__(self, what: str, kind: str, detail: str):
        self.what = what
        self.kind = kind
        super().__init__(f"Modal refused {what}: {detail} ({kind})")


class RemoteRunFailed(ModalError):
    """The remote function ended with an exception (after Modal's retries)."""

    def __init__(self, run: str, summary: str):
        self.run = run
        self.summary = summary
        super().__init__(f"run {run} failed on Modal: {summary}")


class RemoteRunExists(ModalError):
    pass


class NotARemoteRun(ModalError):
    pass


class MirrorBusy(ModalError):
    """Another process already mirrors this run into the local store."""


def describe_exception(exc: BaseException | Any) -> str:
    """'Type: first line of the message', short enough for a status line."""
    if not isinstance(exc, BaseException):
        return str(exc)
    text = str(exc).strip().splitlines()
    first = text[0][:300] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class DeployedCodeDiffers(ModalError):
    """The deployed app runs other nsm/remote source than this checkout."""

    def __init__(self, deployed: str | None, local: str):
        what = f"source {deployed}" if deployed else "no code tag (deployed before tags were added)"
        super().__init__(
            f"the deployed Modal app has {what}, this checkout has source {local}: redeploy with "
            "`modal deploy -m remote.app` (from the repository root), or set NSM_MODAL_APP=ephemeral "
            "to run this checkout's code in an ephemeral app"
        )
        self.deployed = deployed
        self.local = local
