"""Where nsm-tui keeps things by default: an NSM_* variable first, else the platform's user folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nsm.data.cache import default_cache_dir
from nsm.runs import default_runs_dir
from tui.context import settings_dir
from tui.session_log import log_dir


def test_the_nsm_variables_come_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NSM_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NSM_LOG_DIR", str(tmp_path / "logs"))
    assert (default_cache_dir(), settings_dir(), log_dir()) == (tmp_path / "cache", tmp_path / "config", tmp_path / "logs")


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG folders are Linux's (macOS uses ~/Library/...)")
def test_otherwise_the_xdg_folders_of_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NSM_CACHE_DIR", "NSM_CONFIG_DIR", "NSM_LOG_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, folder in (("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    assert default_cache_dir() == tmp_path / "cache" / "nsm-tui" / "datasets"
    assert settings_dir() == tmp_path / "config" / "nsm-tui"
    assert log_dir() == tmp_path / "state" / "nsm-tui" / "log"


def test_runs_stay_next_to_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NSM_RUNS_DIR")
    assert default_runs_dir() == Path.cwd() / "runs"
