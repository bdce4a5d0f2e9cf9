"""Fixtures that install the pynvml fake and keep the shared NVML session fresh."""

from __future__ import annotations

from typing import Any

import pytest

from nsm.telemetry import nvml as nvml_mod

from .fake_pynvml import MIB, FakeDevice, FakeNvml


@pytest.fixture(autouse=True)
def fresh_session():
    """Each test starts and ends without a cached NVML session."""
    nvml_mod.reset_session()
    yield
    nvml_mod.reset_session()


@pytest.fixture
def install_nvml(monkeypatch):
    """install_nvml(fake) makes the shared session use `fake` as pynvml."""

    def install(fake: Any) -> Any:
        monkeypatch.setattr(nvml_mod, "_import_pynvml", lambda: fake)
        nvml_mod.reset_session()
        return fake

    return install


@pytest.fixture
def h100(install_nvml) -> FakeNvml:
    return install_nvml(FakeNvml([FakeDevice(processes=[(4242, 10 * 1024 * MIB)])]))
