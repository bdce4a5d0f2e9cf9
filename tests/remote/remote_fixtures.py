"""Fixtures and helpers for the Modal backend tests: a fake Modal over temp folders,
a client, a store; import them into a test module to use them.

Nothing here reaches Modal or uses a token: `FakeModal` stands in for the
`modal` module (see fake_modal.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from nsm.runs import Run, RunStore
from remote.client import ModalClient
from remote.follow import RunFollower

from fake_modal import FakeModal  # noqa: I001  (a sibling module: tests/remote is on sys.path)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeModal]:
    f = FakeModal(tmp_path / "modal")
    yield f
    f.close()


@pytest.fixture
def client(fake: FakeModal) -> ModalClient:
    return ModalClient(api=fake, control_timeout=5.0, app_start_timeout=5.0, app_mode="auto")


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.fixture(autouse=True)
def _no_modal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real token must never reach a test.
    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "NSM_MODAL_APP"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fast_remote_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Production polls every few seconds; the fake answers at once, so the tests poll fast.
    from remote import config as rc

    monkeypatch.setattr(rc, "LIVENESS_PROBE_S", 0.3)
    monkeypatch.setattr(rc, "FORWARD_INTERVAL_S", 0.05)
    monkeypatch.setattr(rc, "STOP_POLL_S", 0.05)


FAST = dict(poll_timeout_s=0.1, probe_every_s=0.3, fill_every_s=0.1, lease_renew_s=0.5)


def follower(run: Run, client: ModalClient, **kwargs: Any) -> RunFollower:
    notes = kwargs.pop("notes", None)
    return RunFollower(run, client, on_note=None if notes is None else notes.append, **FAST, **kwargs)


def volume_events(fake: FakeModal, run: Run) -> list[dict[str, Any]]:
    path = fake.committed / run.domain / run.name / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_mirrored_exactly(fake: FakeModal, run: Run) -> None:
    """The local log is the volume's log: same events, seqs 0..n without gaps or repeats."""
    local = run.events()
    assert [e["seq"] for e in local] == list(range(len(local)))
    assert local == volume_events(fake, run)
