"""MODEL and POOLING in the dashboard's config panel at 80×24: a choice of model, and the
pooling ablation only where it applies (MODEL=nsm)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_fixtures import dashboard, make_app
from textual.widgets import Checkbox, Select

from nsm.config import RunConfig
from tui import local_gpu


@pytest.fixture(autouse=True)
def no_local_gpu():  # type: ignore[no-untyped-def]
    before = local_gpu.known()
    local_gpu.set_answer(local_gpu.LocalGpu(False, "no NVIDIA driver"))
    yield
    local_gpu.set_answer(before)


async def test_model_is_chosen_in_the_panel_and_pooling_shows_only_for_the_nsm(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        panel = dashboard(app).config_panel
        model = panel.query_one("#field-model", Select)
        pooling = panel.query_one("#field-pooling", Checkbox)
        assert model.value == "nsm" and pooling.value is True and pooling.display
        assert panel.config() == RunConfig()  # the panel's defaults are the config's

        pooling.value = False
        await pilot.pause()
        assert panel.valid and panel.config().pooling is False and panel.config().model == "nsm"

        model.value = "flat"
        await pilot.pause()
        # The reference has no pooling to turn off: the field goes, and the run is valid.
        assert not pooling.display and not panel.query_one("#label-pooling").display
        assert panel.valid and (panel.config().model, panel.config().pooling) == ("flat", True)

        panel.load_config(RunConfig(pooling=False).to_dict())
        await pilot.pause()
        assert model.value == "nsm" and pooling.display and pooling.value is False
        assert panel.config().pooling is False
        # The start button still fits on the 80×24 screen under the two new rows.
        start = panel.query_one("#start")
        assert start.region.bottom <= app.size.height - 1
