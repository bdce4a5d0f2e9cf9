"""The runs browser downloads a Modal run's checkpoints (D) from the (fake) volume; without
a token it says what the CLI says (one line, naming `modal setup`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nsm.runs import RunStore
from remote.client import ModalClient
from tests.training.helpers import tiny_config
from tui.app import create_app
from tui.context import AppContext, Settings
from tui.screens.runs import RunsScreen

from fake_modal import FakeModal
from remote_fixtures import _fast_remote_timings, _no_modal_env, client, fake, store  # noqa: F401  (fixtures)

CHECKPOINTS = ("best_model.pt", "checkpoint_epoch_2.pt", "checkpoint_epoch_4.pt")


def modal_run(store: RunStore, fake: FakeModal, name: str = "far") -> Any:
    run = store.create_run(tiny_config(backend="modal"), name=name)
    (run.path / "remote.json").write_text(json.dumps({"function_call_id": None, "volume_path": f"/checkpoints/planning/{name}", "ended": 1.0}))
    folder = fake.committed / "planning" / name
    folder.mkdir(parents=True)
    for i, file in enumerate(CHECKPOINTS):
        (folder / file).write_bytes(bytes([i]) * (100 + i))
    (run.path / "best_model.pt").write_bytes(b"\0" * 100)  # already here: not fetched again
    return run


async def settle(app: Any, pilot: Any) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def open_runs(app: Any, pilot: Any) -> RunsScreen:
    await pilot.press("f2")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    return screen


def messages(app: Any) -> list[str]:
    return [f"{n.title} {n.message}" for n in app._notifications]


async def test_d_downloads_the_missing_checkpoints_and_the_list_refreshes(
    fake: FakeModal, client: ModalClient, store: RunStore, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr("tui.modal_runs.shared_client", lambda: client)
    run = modal_run(store, fake)
    app = create_app(context=AppContext(store=store, settings=Settings.load(tmp_path / "settings.json")))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(app, pilot)
        await pilot.press("D")
        await settle(app, pilot)
        assert (run.path / "checkpoint_epoch_4.pt").read_bytes() == bytes([2]) * 102
        assert (run.path / "checkpoint_epoch_2.pt").exists()
        assert any("downloaded checkpoint_epoch_2.pt, checkpoint_epoch_4.pt" in m for m in messages(app))
        assert any("(2 of 2)" in m for m in messages(app))
        assert {c.file for c in screen.checkpoints} == set(CHECKPOINTS)
        await pilot.press("D")
        await settle(app, pilot)
        assert any("already here" in m for m in messages(app))


async def test_without_a_token_the_message_is_the_clis(fake: FakeModal, store: RunStore, tmp_path: Path, monkeypatch: Any) -> None:
    from remote.errors import ModalNotConfigured

    fake.token = False
    fake.auth_error = True  # the volume's calls answer as Modal does for a missing or revoked token
    offline = ModalClient(api=fake, control_timeout=5.0, app_start_timeout=5.0, app_mode="auto")
    monkeypatch.setattr("tui.modal_runs.shared_client", lambda: offline)
    modal_run(store, fake)
    app = create_app(context=AppContext(store=store, settings=Settings.load(tmp_path / "settings.json")))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_runs(app, pilot)
        await pilot.press("D")
        await settle(app, pilot)
    try:
        offline.listdir("planning/far")
    except ModalNotConfigured as exc:
        cli_message = str(exc).strip().splitlines()[0]
    else:
        raise AssertionError("the fake without a token should refuse")
    assert any(cli_message in m for m in messages(app)), messages(app)


async def test_d_on_a_local_run_says_there_is_nothing_to_download(store: RunStore, tmp_path: Path) -> None:
    store.create_run(tiny_config(), name="here")
    app = create_app(context=AppContext(store=store, settings=Settings.load(tmp_path / "settings.json")))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_runs(app, pilot)
        await pilot.press("D")
        await settle(app, pilot)
    assert any("is a local run" in m for m in messages(app))
