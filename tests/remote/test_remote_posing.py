"""Every `--backend modal` command against a local server posing as Modal
(MODAL_SERVER_URL): one that answers HTTP 404, one that never answers, one that
resets every connection. The real `modal` client runs in a child process; each
command must end in one line on stderr with exit code 1, within its deadline,
leave nothing behind (no new run, no sweep, no mirror, remote.json as it was),
and the process must exit without a traceback at shutdown. No token is used:
the credentials are placeholders and the server is on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posing_server import PosingServer

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("posing_driver.py")
CONTROL_S = 0.5  # NSM_MODAL_CONTROL_TIMEOUT_S: each call's deadline
RECONNECT_S = 1.0  # NSM_MODAL_RECONNECT_S: how long a follower keeps reconnecting


@pytest.mark.parametrize("mode", ["404", "hang", "reset"])
def test_every_modal_command_fails_in_one_line_in_bounded_time_and_leaves_nothing(mode: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    with PosingServer(mode) as server:
        env.update(
            HOME=str(tmp_path),
            MODAL_CONFIG_PATH=str(tmp_path / "no-modal.toml"),
            MODAL_TOKEN_ID="ak-placeholder-not-a-token",
            MODAL_TOKEN_SECRET="as-placeholder-not-a-token",
            MODAL_SERVER_URL=server.url,
            NSM_MODAL_CONTROL_TIMEOUT_S=str(CONTROL_S),
            NSM_MODAL_RECONNECT_S=str(RECONNECT_S),
        )
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, str(DRIVER), str(runs)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=150
        )
        elapsed = time.monotonic() - t0
        assert server.connections > 0, "the commands talked to the posing server"
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr == "", f"printed at shutdown:\n{out.stderr[-2000:]}"
    report = json.loads(out.stdout)
    posed_before = report.pop("posed remote.json")
    assert len(report) == 8
    for command, r in report.items():
        assert r["code"] == 1, (command, r)
        lines = r["stderr"].splitlines()
        assert len(lines) == 1 and lines[0].startswith("nsm-tui: error: "), (command, r["stderr"])
        assert "Traceback" not in r["stderr"]
        # A control call waits CONTROL_S (a few of them in a row at most); a follower RECONNECT_S more.
        assert r["seconds"] < 12 * CONTROL_S + RECONNECT_S + 3, (command, r["seconds"])
    if mode == "404":
        assert all("does not answer as Modal's API does" in r["stderr"] for r in report.values())
        assert all(server.url in r["stderr"] for r in report.values())
    else:
        assert all("Modal did not answer" in r["stderr"] or "could not reach Modal" in r["stderr"]
                   or "Modal has not answered" in r["stderr"] for r in report.values())  # fmt: skip
    assert "run posed: unknown" in report["attach --headless"]["stderr"]
    # Nothing left behind: only the run that was there, as it was, with no mirror started for it.
    run_dirs = sorted(str(p.relative_to(runs)) for p in runs.glob("*/*") if p.is_dir())
    assert run_dirs == ["planning/posed"], run_dirs
    assert not (runs / ".sweeps").exists() or not any((runs / ".sweeps").iterdir())
    posed = runs / "planning" / "posed"
    assert json.loads((posed / "remote.json").read_text()) == posed_before
    assert not (posed / "mirror.log").exists(), "no mirror process was started"
    assert elapsed < 140
