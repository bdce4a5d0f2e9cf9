"""The config panel's TOML save (ctrl+s) and load (ctrl+o), driven with Pilot."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_fixtures import dashboard, make_app, tiny_config
from textual.widgets import Input, Static

from nsm.config_file import ConfigFileError, load_config_file, save_config_file
from tui.dialogs.config_file_dialog import ConfigFileDialog


async def _open_dialog(pilot, key: str) -> ConfigFileDialog:  # type: ignore[no-untyped-def]
    await pilot.press(key)
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, ConfigFileDialog), f"{key} did not open the config file dialog"
    return dialog


async def _submit(pilot, dialog: ConfigFileDialog, path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog.query_one("#config-file-path", Input).value = str(path)
    await pilot.press("enter")
    await pilot.pause()


async def test_save_writes_the_form_and_load_fills_it_back_and_typed_letters_stay_letters(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    path = tmp_path / "run.toml"
    async with app.run_test(size=(160, 48)) as pilot:
        panel = dashboard(app).config_panel
        panel.load_config(tiny_config(epochs=7, lr=2.5e-4, hidden=32, backend="process"))  # process: no engine warm-up
        await pilot.pause()
        expected = panel.config()
        dialog = await _open_dialog(pilot, "ctrl+s")
        field = dialog.query_one("#config-file-path", Input)
        field.value = ""
        await pilot.press(*"sxrcal")  # the dashboard's keys: here they are letters of a path
        assert field.value == "sxrcal" and app.screen is dialog and dashboard(app).controller.run is None
        await _submit(pilot, dialog, path)
        assert not isinstance(app.screen, ConfigFileDialog)
        assert load_config_file(path) == expected  # hidden knobs (hidden, threads) included

        save_config_file(path, expected.replace(epochs=42, lr=1e-4, hidden=64))
        panel.query_one("#field-epochs", Input).focus()  # ctrl+o works while typing in a field
        await _submit(pilot, await _open_dialog(pilot, "ctrl+o"), path)
        assert not isinstance(app.screen, ConfigFileDialog)
        assert panel.query_one("#field-epochs", Input).value == "42"
        assert panel.config() == expected.replace(epochs=42, lr=1e-4, hidden=64)


async def test_a_bad_file_shows_the_clis_message_and_changes_nothing(tmp_path: Path) -> None:
    files = {"wrong-type.toml": 'epochs = "ten"\n', "syntax.toml": "lr = \n", "missing.toml": None}
    for name, content in files.items():
        if content is not None:
            (tmp_path / name).write_text(content)
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        panel = dashboard(app).config_panel
        before = panel.raw_values()
        for name in files:
            with pytest.raises(ConfigFileError) as info:
                load_config_file(tmp_path / name)
            dialog = await _open_dialog(pilot, "ctrl+o")
            await _submit(pilot, dialog, tmp_path / name)
            assert app.screen is dialog, "a bad file keeps the dialog open to fix the path"
            problem = dialog.query_one("#config-file-problem", Static)
            assert problem.display and str(problem.content) == str(info.value)
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, ConfigFileDialog)
            assert panel.raw_values() == before
