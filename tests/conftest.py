"""Fixtures for the whole test suite."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Dataset caches of the suite live in one temp folder per session, never in ~/.cache.
    if "NSM_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["NSM_CACHE_DIR"] = tempfile.mkdtemp(prefix="nsm-test-cache-")


@pytest.fixture(autouse=True)
def _isolated_runs_dir(tmp_path_factory, monkeypatch):
    """No test writes into ./runs: the default store root points at a temp folder."""
    monkeypatch.setenv("NSM_RUNS_DIR", str(tmp_path_factory.mktemp("default-runs")))
    # The app's session logs (tui/session_log.py) never go to the user's log folder.
    monkeypatch.setenv("NSM_LOG_DIR", str(tmp_path_factory.mktemp("session-logs")))
