"""Logs that are kept: the session's log file (F5 names it) and an in-process run's warnings in the log pane."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import make_app, start_tiny_run

from nsm.models import NSMModel
from tui import session_log
from tui.session_log import KEEP_FILES, open_session_log, prune


def _logs(folder: Path) -> list[Path]:
    return sorted(folder.glob("nsm-tui-*.log"))


async def test_each_session_keeps_a_log_file(tmp_path: Path, monkeypatch) -> None:
    folder = Path(os.environ["NSM_LOG_DIR"])
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # pytest's own would warn about the thread below
    root_handlers = list(logging.getLogger().handlers)
    hook, excepthook = warnings.showwarning, threading.excepthook
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)):
        path = app.session_log.path
        assert path is not None and path.parent == folder
        assert path.name.startswith("nsm-tui-") and path.name.endswith(f"-{os.getpid()}.log")
        logging.getLogger("nsm.data.cache").info("dataset cache rebuilt")
        logging.getLogger("some.library").info("library chatter")  # below WARNING: not kept
        logging.getLogger("some.library").warning("library trouble")
        warnings.warn("a deprecated knob", DeprecationWarning)
        failing = threading.Thread(target=lambda: 1 / 0, name="helper")
        failing.start()
        failing.join()
    text = path.read_text()
    assert "nsm-tui " in text.splitlines()[0] and "started" in text.splitlines()[0]
    assert "INFO nsm.data.cache [MainThread] dataset cache rebuilt" in text
    assert "library trouble" in text and "library chatter" not in text
    assert "DeprecationWarning: a deprecated knob" in text
    assert "uncaught exception in thread helper" in text and "ZeroDivisionError" in text
    assert text.rstrip().endswith("session ended")
    # Everything process-wide is back as it was: tests (and a second app) start clean.
    assert logging.getLogger().handlers == root_handlers
    assert warnings.showwarning is hook and threading.excepthook is excepthook
    assert logging.getLogger("nsm").level == logging.NOTSET


def test_only_the_newest_logs_are_kept(tmp_path: Path) -> None:
    for i in range(KEEP_FILES + 5):
        old = tmp_path / f"nsm-tui-20240101-0000{i:02d}-100.log"
        old.write_text("old session\n")
        os.utime(old, (1_700_000_000 + i, 1_700_000_000 + i))
    (tmp_path / "notes.log").write_text("not ours")
    log = open_session_log(tmp_path)
    try:
        kept = _logs(tmp_path)
        assert len(kept) == KEEP_FILES and log.path in kept
        assert tmp_path / "nsm-tui-20240101-000000-100.log" not in kept  # the oldest went first
        assert (tmp_path / "notes.log").exists()
    finally:
        log.close()
    assert prune(tmp_path, keep=KEEP_FILES) == []


def test_a_log_folder_that_cannot_be_made_is_said_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = open_session_log(blocker / "logs")
    assert log.path is None and log.problem.startswith("not kept:") and str(blocker) in log.problem
    log.close()
    assert session_log._handlers == []  # noqa: SLF001 - nothing was installed


async def test_warnings_of_an_in_process_run_reach_the_log_pane_once_then_counted(tmp_path: Path, monkeypatch) -> None:
    warnings.simplefilter("always")  # as with PYTHONWARNINGS=always: every step warns (pytest restores the filters)
    forward = NSMModel.forward

    def warning_forward(self: NSMModel, *args: Any, **kwargs: Any) -> Any:
        if self.training:
            warnings.warn("index_add is nondeterministic here", UserWarning)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(NSMModel, "forward", warning_forward)
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(160, 48)) as pilot:
        dash = await start_tiny_run(pilot, epochs=1, batch_size=4)  # 11 steps
        await app.workers.wait_for_complete()
        await pilot.pause()
        lines = [line for line in dash.log_pane.lines_text if "index_add is nondeterministic here" in line]
        assert dash.controller.outcome == "finished"
        log_path, run = app.session_log.path, dash.controller.run
    assert len(lines) == 5, lines
    assert all("UserWarning" in line for line in lines)
    assert "seen 10 times so far" in lines[3] and "seen 11 times in all" in lines[4]
    logged = [e for e in run.events() if e["type"] == "log" and e.get("source") == "py.warnings"]
    assert [e["level"] for e in logged] == ["warning"] * 5
    assert log_path.read_text().count("UserWarning: index_add is nondeterministic here") == 3  # the shown ones


async def test_an_exception_that_ends_the_app_is_in_its_session_log(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=(80, 24)) as pilot:
            app.call_later(lambda: 1 / 0)
            await pilot.pause()
    text = app.session_log.path.read_text()
    assert "ERROR tui.session_log [MainThread] unhandled exception in the app" in text
    assert "ZeroDivisionError: division by zero" in text and text.rstrip().endswith("session ended")
