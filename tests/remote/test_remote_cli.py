"""`nsm-tui train --backend modal`, stop, resume, attach and the volume's runs,
against the fake Modal; and the two failures that need no fake at all (no
token; an unreachable endpoint) against the real `modal` package."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nsm.runs import Run, RunStore
from remote.client import ModalClient
from tests.training.helpers import tiny_config
from tui import cli
from tui.cli import modal_backend
from tui.modal_runs import MirrorThread

from fake_modal import FakeModal
from remote_fixtures import (  # noqa: F401  (fixtures)
    FAST,
    _fast_remote_timings,
    _no_modal_env,
    assert_mirrored_exactly,
    client,
    fake,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--num-graphs", "60", "--batch-size", "8", "--hidden", "16", "--threads", "1", "--eval-every", "1",
        "--save-every", "2", "--device", "cpu", "--seed", "3", "--patience", "0"]  # fmt: skip


@pytest.fixture
def mirrors(monkeypatch: pytest.MonkeyPatch, client: ModalClient) -> list[MirrorThread]:
    """Mirror processes become mirror threads (a child process cannot see the fake Modal)."""
    started: list[MirrorThread] = []

    def start(run: Run) -> int:
        started.append(MirrorThread(run, modal=client, **FAST).start())
        return 4242

    monkeypatch.setattr(modal_backend, "start_mirror_process", start)
    monkeypatch.setattr("remote.launch.start_mirror_process", start)
    yield started
    for m in started:
        m.stop()


@pytest.fixture
def use_fake(monkeypatch: pytest.MonkeyPatch, client: ModalClient) -> ModalClient:
    monkeypatch.setattr(modal_backend, "make_client", lambda: client)
    return client


def train(runs: Path, *extra: str) -> list[str]:
    return ["train", "--backend", "modal", "--runs-dir", str(runs), *TINY, *extra]


def wait_all(mirrors: list[MirrorThread]) -> None:
    for m in mirrors:
        assert m.done.wait(120), f"mirror of {m.run.ref} did not finish"
        assert m.error is None, m.error


def test_train_attached_streams_and_prints_the_results(
    fake: FakeModal, use_fake: ModalClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(train(tmp_path / "runs", "--domain", "planning", "--epochs", "3", "--gpu", "h100", "--name", "m1", "--json"))
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["outcome"] == "finished" and out["gpu"] == "H100"
    run = RunStore(tmp_path / "runs").get("m1")
    assert run.status() == "finished" and out["results"]["epochs_done"] == 3
    assert_mirrored_exactly(fake, run)


def test_all_domains_detached_start_in_parallel_and_mirror_locally(
    fake: FakeModal, use_fake: ModalClient, mirrors: list[MirrorThread], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    code = cli.main(train(tmp_path / "runs", "--domain", "all", "--epochs", "2", "--detach"))
    text = capsys.readouterr().out
    assert code == 0
    assert text.count("nsm-tui attach ") == 3 and text.count("nsm-tui stop ") == 3
    assert "A100-40GB at about $2.10 per GPU-hour, $6.30/h for 3 at once" in text
    wait_all(mirrors)
    runs = RunStore(tmp_path / "runs").list_runs()
    assert sorted(r.domain for r in runs) == ["causal", "kg", "planning"]
    assert all(r.status == "finished" for r in runs)
    for r in runs:
        assert_mirrored_exactly(fake, Run(r.path))


def test_all_domains_attached_follow_all_three(
    fake: FakeModal, use_fake: ModalClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(train(tmp_path / "runs", "--domain", "all", "--epochs", "2", "--json"))
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert sorted(r["domain"] for r in rows) == ["causal", "kg", "planning"]
    assert all(r["outcome"] == "finished" and r["results"]["epochs_done"] == 2 for r in rows)


def test_stop_then_resume_on_modal_continues_the_same_log(
    fake: FakeModal, use_fake: ModalClient, mirrors: list[MirrorThread], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    gate_open = {"epoch": 0}

    def slow(epoch: int, step: int) -> None:
        gate_open["epoch"] = epoch
        time.sleep(0.01)

    fake.trainer_options = {"on_step": slow}
    runs = tmp_path / "runs"
    assert cli.main(train(runs, "--domain", "planning", "--epochs", "12", "--name", "long", "--detach")) == 0
    run = RunStore(runs).get("long")
    deadline = time.monotonic() + 60
    while gate_open["epoch"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # the fake container trains in another thread: wait until it is in epoch 2
    assert cli.main(["stop", "long", "--runs-dir", str(runs), "--wait", "60"]) == 0
    out = capsys.readouterr().out
    assert "asked long to stop" in out and "run long: interrupted" in out
    wait_all(mirrors)
    stopped = run.events()[-1]
    assert stopped["type"] == "interrupted"

    fake.trainer_options = {}
    args = argparse.Namespace(checkpoint=None, detach=False, json=True, runs_dir=str(runs))
    assert modal_backend.resume_remote(run, args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "finished"
    events = run.events()
    assert [e["seq"] for e in events] == list(range(len(events)))
    resumed = next(e for e in events if e["type"] == "resumed")
    assert resumed["checkpoint"] == stopped["checkpoint"]
    assert run.history()["epochs"] == list(range(1, 13))
    assert_mirrored_exactly(fake, run)


def test_volume_listing_and_download_make_a_run_evaluable_here(
    fake: FakeModal, use_fake: ModalClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert cli.main(train(runs, "--domain", "planning", "--epochs", "2", "--name", "far", "--json")) == 0
    capsys.readouterr()
    # As seen from another machine: the run is only on the volume.
    import shutil

    shutil.rmtree(runs / "planning" / "far")
    ns = argparse.Namespace(runs_dir=str(runs), domain=None, json=True)
    assert modal_backend.cmd_remote_list(ns) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["run"] == "far" and row["finished"] and not row["local"]
    assert "best_model.pt" in row["checkpoints"] and "checkpoint_epoch_2.pt" in row["checkpoints"]
    assert row["volume_path"] == "/checkpoints/planning/far"

    bad = argparse.Namespace(runs_dir=str(runs), run="far", checkpoint=["checkpoint_epoch_9.pt"], all=False, json=True)
    with pytest.raises(Exception, match="checkpoint_epoch_9.pt is not on the volume.*it has: best_model.pt"):
        modal_backend.cmd_download(bad)
    good = argparse.Namespace(runs_dir=str(runs), run="far", checkpoint=None, all=False, json=True)
    assert modal_backend.cmd_download(good) == 0
    fetched = json.loads(capsys.readouterr().out)["fetched"]
    assert "best_model.pt" in fetched and "final_results.json" in fetched
    run = RunStore(runs).get("far")
    assert run.status() == "finished" and run.remote_info()["volume_path"] == "/checkpoints/planning/far"
    assert_mirrored_exactly(fake, run)
    # A checkpoint fetched on demand is evaluated here like a local one.
    one = argparse.Namespace(runs_dir=str(runs), run="far", checkpoint=["checkpoint_epoch_2.pt"], all=False, json=True)
    assert modal_backend.cmd_download(one) == 0
    capsys.readouterr()
    assert cli.main(["eval", "far", "--checkpoint", "checkpoint_epoch_2.pt", "--runs-dir", str(runs), "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["checkpoint"] == "checkpoint_epoch_2.pt" and 0.0 <= evaluation["acc"] <= 1.0
    assert not evaluation.get("reused")


def test_headless_attach_reattaches_from_the_last_local_seq(
    fake: FakeModal, use_fake: ModalClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    from remote.launch import launch_detached

    run = launch_detached(use_fake, RunStore(runs), [tiny_config(epochs=3)], gpu="A100-40GB", start_mirrors=False)[0]
    args = argparse.Namespace(runs_dir=str(runs), run=run.name, json=True)
    assert modal_backend.cmd_attach_remote(args) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "finished"
    assert_mirrored_exactly(fake, run)


# ------------------------------------------------------------------- failures


def test_no_token_fails_at_once_with_the_fix_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeModal(tmp_path / "modal", token=False)
    monkeypatch.setattr(modal_backend, "make_client", lambda: ModalClient(api=fake))
    t0 = time.monotonic()
    code = cli.main(train(tmp_path / "runs", "--domain", "all"))
    assert time.monotonic() - t0 < 1.0
    err = capsys.readouterr().err
    assert code == 2
    assert "no Modal token found: run `modal setup` (or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET)" in err
    assert fake.attempted == [] and RunStore(tmp_path / "runs").list_runs() == []


def test_unreachable_service_times_out_quickly_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeModal(tmp_path / "modal")
    fake.hang = {"hydrate"}
    monkeypatch.setattr(modal_backend, "make_client", lambda: ModalClient(api=fake, control_timeout=0.3))
    t0 = time.monotonic()
    code = cli.main(train(tmp_path / "runs", "--domain", "planning"))
    elapsed = time.monotonic() - t0
    fake.close()
    err = capsys.readouterr().err
    assert code == 1 and elapsed < 3.0
    assert "Modal did not answer looking up the deployed app nsm-tui within 0.3 s" in err
    assert RunStore(tmp_path / "runs").list_runs() == []


def test_stream_that_fails_before_the_run_started_leaves_nothing_behind(
    fake: FakeModal, use_fake: ModalClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import modal.exception

    fake.stream_error = modal.exception.ConnectionError("connection reset while starting the stream")
    code = cli.main(train(tmp_path / "runs", "--domain", "planning"))
    assert code == 1
    assert "could not reach Modal for starting the run: connection reset while starting the stream" in capsys.readouterr().err
    assert RunStore(tmp_path / "runs").list_runs() == []
    assert fake.calls == {}, "nothing was spawned"


def test_bad_gpu_names_the_allowed_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(train(tmp_path / "runs", "--domain", "kg", "--gpu", "V100")) == 2
    assert "--gpu: GPU must be one of T4, L4, A10G, L40S, A100-40GB, A100-80GB, H100, H200, B200" in capsys.readouterr().err


def _real_modal_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env.update(HOME=str(tmp_path), MODAL_CONFIG_PATH=str(tmp_path / "no-modal.toml"), NSM_RUNS_DIR=str(tmp_path / "runs"))
    env.update(extra)
    return env


def test_real_modal_without_a_token_says_how_to_set_it_up(tmp_path: Path) -> None:
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", "train", "--backend", "modal", "--domain", "planning"],
        cwd=ROOT, capture_output=True, text=True, env=_real_modal_env(tmp_path), timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out
    assert "run `modal setup`" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("config.json"))


def test_real_modal_client_against_a_dead_endpoint_gives_up_at_the_deadline(tmp_path: Path) -> None:
    """The real Modal client retries an unreachable server for minutes; ours stops at
    NSM_MODAL_CONTROL_TIMEOUT_S. The credentials are placeholders (not a token) and the
    server a closed port on this machine: nothing leaves it."""
    env = _real_modal_env(
        tmp_path,
        MODAL_TOKEN_ID="ak-placeholder-not-a-token",
        MODAL_TOKEN_SECRET="as-placeholder-not-a-token",
        MODAL_SERVER_URL="http://127.0.0.1:9",
        NSM_MODAL_CONTROL_TIMEOUT_S="2",
    )
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", "train", "--backend", "modal", "--domain", "planning"],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    assert out.returncode == 1, out
    assert "Modal did not answer" in out.stderr or "could not reach Modal" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert elapsed < 60, elapsed


def test_sweep_on_modal_runs_the_grid_in_parallel_with_a_cap(
    fake: FakeModal, use_fake: ModalClient, mirrors: list[MirrorThread], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    runs_dir = tmp_path / "runs"
    args = ["sweep", "--backend", "modal", "--runs-dir", str(runs_dir), *TINY, "--domain", "kg", "--epochs", "2",
            "--grid", "lr=1e-3,1e-4", "--grid", "cycle_weight=0.01,0.05", "--max-parallel", "2", "--name", "grid",
            "--detach"]  # fmt: skip
    assert cli.main(args) == 0
    capsys.readouterr()
    spawns = [op for kind, op in fake.ops if kind == "spawn"]
    assert len(spawns) == 4 and all(op["max_containers"] == 2 for op in spawns)
    wait_all(mirrors)
    runs = RunStore(runs_dir).list_runs()
    assert sorted(r.name for r in runs) == ["grid-01", "grid-02", "grid-03", "grid-04"]
    assert all(r.status == "finished" for r in runs)
    lrs = sorted({(r.config["lr"], r.config["cycle_weight"]) for r in runs})
    assert lrs == [(1e-4, 0.01), (1e-4, 0.05), (1e-3, 0.01), (1e-3, 0.05)]


@pytest.mark.parametrize("name", ["NotFoundError", "InvalidError", "ConnectionError", "RemoteError", "ExecutionError"])
def test_a_modal_exception_no_command_translated_is_one_line_not_a_traceback(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import modal.exception

    exc_type = getattr(modal.exception, name)

    def fail(*_a: object, **_k: object) -> int:
        raise exc_type("the server said no\nwith a second line")

    monkeypatch.setattr(modal_backend, "cmd_remote_list", fail)
    code = cli.main(["runs", "list", "--remote"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("nsm-tui: error: Modal: the server said no with a second line") and f"({name})" in err
