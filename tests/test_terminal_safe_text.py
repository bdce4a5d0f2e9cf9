"""Terminal-safe text: what a run's files say is shown literally, in the CLI and the TUI.

A run written directly whose config values, log messages, failure error and
hint and checkpoint metrics hold Rich markup (`[link=…]`, a stray `[/x]`),
terminal escape sequences (a title change, a cleared screen, an 8-bit CSI)
and NUL bytes: every viewer prints the brackets as they are and passes no
escape or control byte on to the terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nsm.runs.events import encode_event, make_event
from nsm.text import plain
from tests.tui.dashboard_fixtures import T0, run_events, screen_text, tiny_config

MARKUP = "[link=http://x]click[/link] [/x] [bold red]"
ESCAPES = "\x1b]0;pwned\x07 \x1b[2J \x9b31m nul\x00end"
EVIL = f"{MARKUP} {ESCAPES}"
BAD_BYTES = ("\x1b", "\x9b", "\x00", "\x07")
NAME = "evil-run"
ROOT = Path(__file__).resolve().parents[1]


def write_evil_run(root: Path, name: str = NAME) -> Path:
    config = tiny_config(epochs=4, eval_every=1, save_every=2, patience=0, backend="process")
    path = root / config.domain / name
    path.mkdir(parents=True)
    values = config.to_dict()
    (path / "config.json").write_text(json.dumps({**values, "note": EVIL, "data_dir": f"/tmp/{EVIL}"}))
    events = run_events(name=name, config=config, epochs_done=2, outcome=None)
    events[0][1]["config"] = {**values, "note": EVIL}
    events[0][1]["environment"] = {"device": f"cpu {EVIL}", "threads": 1}
    events += [
        ("log", {"level": "warning", "message": f"warning: {EVIL}"}),
        ("log", {"level": "info", "message": f"info: {EVIL}"}),
        ("checkpoint", {"epoch": 2, "step": 0, "file": "checkpoint_epoch_2.pt", "kind": "periodic", "size": 10,
                        "metrics": {"val_loss": EVIL, "val_acc": MARKUP}}),  # fmt: skip
        ("failed", {"error": f"error: {EVIL}", "error_type": "exception", "hint": f"hint: {EVIL}", "epoch": 2, "step": 1,
                    "checkpoint": None, "traceback": f"Traceback\n{EVIL}"}),  # fmt: skip
    ]
    data = b"".join(encode_event(make_event(i, kind, t=T0 + i * 0.5, **payload)) for i, (kind, payload) in enumerate(events))
    (path / "events.jsonl").write_bytes(data)
    (path / "checkpoint_epoch_2.pt").write_bytes(b"not a real checkpoint")
    return path


def assert_safe(text: str) -> None:
    for bad in BAD_BYTES:
        assert bad not in text, f"{bad!r} reached the output: {text!r}"


# ------------------------------------------------------------------ the helper


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("a\x1b]0;pwned\x07b", "ab"),
        ("a\x1b]0;pwned\x1b\\b", "ab"),
        ("x\x1b[2Jy", "xy"),
        ("p\x9b31mq", "pq"),
        ("n\x00ul", "n?ul"),
        ("r\rx\x7f", "r?x?"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("trailing \x1b", "trailing "),
        ("[/x] [bold red] é 中", "[/x] [bold red] é 中"),
    ],
)
def test_plain(raw: str, expected: str) -> None:
    assert plain(raw) == expected


def test_render_lines_are_plain() -> None:
    from nsm.execution.render import render

    lines = render({"type": "failed", "error": EVIL, "hint": EVIL}) + render({"type": "log", "message": EVIL})
    assert len(lines) == 3
    for line in lines:
        assert_safe(line.text)
        assert MARKUP in line.text


# ------------------------------------------------------------------ the CLI, piped


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NSM_RUNS_DIR": str(root), "COLUMNS": "400", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


@pytest.fixture
def evil_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_evil_run(root)
    return root


def test_runs_show_piped(evil_root: Path) -> None:
    r = cli(evil_root, "runs", "show", NAME)
    assert r.returncode == 0, r.stderr
    assert_safe(r.stdout + r.stderr)
    assert MARKUP in r.stdout  # the config's note, the failure, the checkpoint metrics
    assert f"error: {MARKUP}" in r.stdout


def test_runs_list_piped(evil_root: Path) -> None:
    r = cli(evil_root, "runs", "list")
    assert r.returncode == 0, r.stderr
    assert_safe(r.stdout + r.stderr)
    assert NAME in r.stdout


def test_attach_headless_piped(evil_root: Path) -> None:
    r = cli(evil_root, "attach", NAME, "--headless")
    assert r.returncode == 1, r.stderr  # the run failed: attach says so with its exit code
    assert_safe(r.stdout + r.stderr)
    assert f"warning: {MARKUP}" in r.stdout
    assert f"failed: error: {MARKUP}" in r.stdout
    assert f"hint: hint: {MARKUP}" in r.stdout


def test_export_md_piped(evil_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out [/x]"
    r = cli(evil_root, "export", NAME, "--format", "md", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert_safe(r.stdout + r.stderr)
    assert "out [/x]" in r.stdout


def test_json_output_escapes_control_characters(evil_root: Path) -> None:
    r = cli(evil_root, "runs", "show", NAME, "--json")
    assert r.returncode == 0, r.stderr
    assert_safe(r.stdout)
    assert json.loads(r.stdout)["config"]["note"] == EVIL  # the data itself is kept


# ------------------------------------------------------------------ the CLI on a terminal (Rich)


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch, evil_root: Path) -> Path:
    import tui.cli.console as console
    import tui.cli.progress as progress

    monkeypatch.setattr(console, "is_tty", lambda: True)
    monkeypatch.setattr(progress, "is_tty", lambda: True)
    monkeypatch.setenv("NSM_RUNS_DIR", str(evil_root))
    monkeypatch.setenv("COLUMNS", "1000")
    return evil_root


@pytest.mark.parametrize("args, code", [(["runs", "show", NAME], 0), (["runs", "list"], 0), (["attach", NAME, "--headless"], 1)])
def test_cli_rich_path(tty: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int) -> None:
    from tui.cli import main

    assert main(args) == code
    out, err = capsys.readouterr()
    assert_safe(out + err)
    if args[0] != "runs" or args[1] == "show":
        assert MARKUP in out


def test_say_with_literal_parts(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import tui.cli.console as console

    for on_tty in (True, False):
        monkeypatch.setattr(console, "is_tty", lambda on_tty=on_tty: on_tty)
        console.say(f"[bold]run[/] {console.lit(EVIL)}")
        console.say(f"unescaped {EVIL}")  # a caller that forgot `lit`: shown as it is, no crash
        out = capsys.readouterr().out
        assert_safe(out)
        assert f"run {MARKUP}" in out
        assert "[/x]" in out.split("unescaped", 1)[1]


# ------------------------------------------------------------------ the TUI


async def test_dashboard_attached_to_an_evil_run(evil_root: Path) -> None:
    from textual.widgets import Static

    from tests.tui.dashboard_fixtures import make_app

    app = make_app(evil_root, attach=NAME)
    async with app.run_test(size=(160, 40)) as pilot:
        for _ in range(10):
            await pilot.pause(0.05)
        text = screen_text(app)
        assert "[/x]" in text
        assert_safe(text)
        for widget in app.screen.query(Static):
            content = widget.render()
            assert_safe(str(getattr(content, "plain", content)))
        log = app.screen.log_pane.lines_text
        assert any(MARKUP in line for line in log), log
        for line in log:
            assert_safe(line)
        # A toast with run text is literal too (and does not crash on a stray closing tag).
        app.notify(f"toast {EVIL}")
        await pilot.pause(0.1)
        assert_safe(screen_text(app))
    assert app.return_code in (None, 0)


async def test_runs_screen_with_an_evil_run(evil_root: Path) -> None:
    from tests.tui.dashboard_fixtures import make_app

    app = make_app(evil_root)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("f2")
        for _ in range(20):
            await pilot.pause(0.05)
            if NAME in screen_text(app):
                break
        text = screen_text(app)
        assert NAME in text
        assert_safe(text)
