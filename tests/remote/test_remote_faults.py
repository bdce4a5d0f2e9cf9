"""Faults as Modal produces them, against the stricter fake: transient failures
while a run goes on never mark it failed; a silent Modal ends a follower as
`unknown` within its budget; every Modal exception class becomes one of ours;
a full queue partition loses nothing."""

from __future__ import annotations

import queue
import time
from typing import Any

import modal.exception
import pytest

from nsm.runs import RunStore
from remote import calls
from remote.client import ModalClient, translate
from remote.errors import ModalError, ModalNotConfigured, ModalUnreachable, ModalWrongEndpoint
from remote.follow import UNKNOWN
from remote.launch import launch_detached
from tests.training.helpers import tiny_config

from fake_modal import FakeModal
from remote_fixtures import (  # noqa: F401  (fixtures)
    _fast_remote_timings,
    _no_modal_env,
    assert_mirrored_exactly,
    client,
    fake,
    follower,
    store,
)


def test_network_faults_while_polling_a_live_run_reconnect_instead_of_failing_it(
    fake: FakeModal, client: ModalClient, store: RunStore
) -> None:
    fake.trainer_options = {"on_step": lambda epoch, step: time.sleep(0.005)}
    run = launch_detached(client, store, [tiny_config()], gpu="A100-40GB", start_mirrors=False)[0]
    fake.faults["get"] = [
        modal.exception.ConnectionError("connection reset by peer"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out"),  # a socket's timeout, not "the call is still running"
        modal.exception.ServiceError("UNAVAILABLE"),
    ]
    notes: list[str] = []
    result = follower(run, client, notes=notes).follow()
    assert result.outcome == "finished", result
    assert fake.faults["get"] == [], "every fault was met"
    assert any(n.startswith("reconnecting to Modal") for n in notes) and any("reconnected" in n for n in notes)
    assert not any(e["type"] == "failed" for e in run.events())
    assert_mirrored_exactly(fake, run)


def test_poll_tells_a_running_call_from_a_socket_timeout() -> None:
    class Call:
        def __init__(self, exc: BaseException):
            self.exc = exc

        def get(self, timeout: float = 0) -> Any:
            raise self.exc

    assert calls.poll_call(modal, Call(TimeoutError())) == (calls.RUNNING, None)
    with pytest.raises(TimeoutError):
        calls.poll_call(modal, Call(TimeoutError("timed out")))
    with pytest.raises(modal.exception.ConnectionError):
        calls.poll_call(modal, Call(modal.exception.ConnectionError("reset")))
    assert calls.poll_call(modal, Call(modal.exception.FunctionTimeoutError("6 h")))[0] == calls.TIMED_OUT
    assert calls.poll_call(modal, Call(modal.exception.OutputExpiredError()))[0] == calls.EXPIRED
    assert calls.poll_call(modal, Call(modal.exception.InputCancellation("cancelled")))[0] == calls.CANCELLED
    assert calls.poll_call(modal, Call(modal.exception.NotFoundError("no such call")))[0] == calls.UNKNOWN
    raised = RuntimeError("CUDA out of memory")
    raised.__line_cache__ = {}  # type: ignore[attr-defined]  (what Modal attaches to a remote exception)
    assert calls.poll_call(modal, Call(raised)) == (calls.ERROR, raised)


def test_a_silent_modal_ends_the_follower_as_unknown_within_its_budget(fake: FakeModal, store: RunStore) -> None:
    quick = ModalClient(api=fake, control_timeout=0.2, app_start_timeout=0.2)
    fake.trainer_options = {"on_step": lambda epoch, step: time.sleep(0.01)}
    run = launch_detached(quick, store, [tiny_config(epochs=30)], gpu="A100-40GB", start_mirrors=False)[0]
    fake.hang = {"queue.get", "get", "dict.put", "dict.get", "volume.read_file"}
    t0 = time.monotonic()
    result = follower(run, quick, reconnect_s=0.6).follow()
    assert time.monotonic() - t0 < 6
    assert result.outcome == UNKNOWN and "Modal has not answered for" in result.error
    assert f"nsm-tui attach {run.name}" in result.error
    assert run.status() != "failed" and not any(e["type"] == "failed" for e in run.events())
    fake.hang = set()
    quick.cancel(run.remote_info()["function_call_id"])


def test_a_full_queue_partition_loses_no_event(fake: FakeModal, client: ModalClient, store: RunStore) -> None:
    fake.queue_limit = 4  # Modal's is 5,000 per partition: a detached run nobody reads fills it
    run = launch_detached(client, store, [tiny_config()], gpu="A100-40GB", start_mirrors=False)[0]
    fake.calls[run.remote_info()["function_call_id"]].join(120)
    with pytest.raises(queue.Full):
        fake.queue.put_many([{}] * 5, partition="x")
    result = follower(run, client).follow()
    assert result.outcome == "finished" and result.from_volume > 0
    assert_mirrored_exactly(fake, run)


def _modal_exception_classes() -> list[type[BaseException]]:
    return [
        c for c in vars(modal.exception).values()
        if isinstance(c, type) and issubclass(c, Exception) and c.__module__ == "modal.exception"
        and not issubclass(c, Warning) and not c.__name__.startswith("_")
    ]  # fmt: skip


@pytest.mark.parametrize("cls", _modal_exception_classes(), ids=lambda c: c.__name__)
def test_every_modal_exception_class_becomes_one_line_of_ours(cls: type[BaseException]) -> None:
    try:
        exc = cls("the server said no\nand more")
    except TypeError:
        exc = cls("the server said no\nand more", "im-123")  # type: ignore[call-arg]  (ImageBuildError)
    ours = translate(exc, "listing the volume")
    assert isinstance(ours, ModalError), cls
    assert "\n" not in str(ours) and str(ours)
    if cls.__name__ in ("AuthError", "PermissionDeniedError"):
        assert isinstance(ours, ModalNotConfigured)
    if cls.__name__ in ("ConnectionError", "ServiceError", "InternalError", "ResourceExhaustedError", "TimeoutError"):
        assert isinstance(ours, ModalUnreachable) and not isinstance(ours, ModalWrongEndpoint)
    if cls.__name__ == "UnimplementedError":
        assert isinstance(ours, ModalWrongEndpoint)
