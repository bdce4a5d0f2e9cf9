"""Fixtures shared by the training tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def keep_torch_threads():  # type: ignore[no-untyped-def]
    # torch.set_num_threads is process-global: a trainer here must not change other tests' count.
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
