"""The Textual app `nsm-tui`: one mode per screen, switched by F-keys or the palette.

`create_app` builds the app without running it (the CLI, the tests and the
snapshot tests all use it); `run_app` prepares the process for an in-process
run first (see ../shared/TUI-NOTES.md): torch imported before the event loop
starts, `gc.freeze()` after start-up, a faster refresh timer.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from textual.app import App
from textual.binding import Binding

from tui.context import AppContext

SCREEN_KEYS = (
    # (mode, key, label)
    ("dashboard", "f1", "Dashboard"),
    ("runs", "f2", "Runs"),
    ("compare", "f3", "Compare"),
    ("sweep", "f4", "Sweep"),
    ("diagnostics", "f5", "GPU"),
)


def _mode_factory(mode: str) -> Any:
    def make() -> Any:
        from tui import screens

        return screens.make_screen(mode)

    return make


class NSMApp(App[None]):
    TITLE = "nsm-tui"
    CSS_PATH = "app.tcss"
    MODES = {mode: _mode_factory(mode) for mode, _, _ in SCREEN_KEYS}
    BINDINGS = [
        *(Binding(key, f"switch_mode('{mode}')", label, priority=True) for mode, key, label in SCREEN_KEYS),
        Binding("ctrl+q", "request_quit", "Quit", priority=True),
        # ctrl+c must never end the app (and with it an in-process run) by accident.
        Binding("ctrl+c", "ctrl_c", show=False, priority=True),
    ]

    def __init__(self, context: AppContext, attach: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.context = context
        self.attach_on_start = attach

    def on_mount(self) -> None:
        self.switch_mode("dashboard")

    def action_ctrl_c(self) -> None:
        self.notify("ctrl+c does not quit: press ctrl+q (a running training run is asked first)", timeout=4)

    async def action_request_quit(self) -> None:
        handler = getattr(self.screen, "confirm_quit", None)
        if handler is None:
            dashboard = self.get_screen_for_mode("dashboard")
            handler = getattr(dashboard, "confirm_quit", None)
        if handler is not None:
            await handler()
        else:
            self.exit()

    def get_screen_for_mode(self, mode: str) -> Any:
        """The base screen of a mode, created on first use."""
        stack = self._screen_stacks.get(mode)
        if stack:
            return stack[0]
        return None


def create_app(runs_dir: str | os.PathLike[str] | None = None, attach: str | None = None, context: AppContext | None = None) -> NSMApp:
    return NSMApp(context or AppContext.create(runs_dir), attach=attach)


def run_app(runs_dir: str | os.PathLike[str] | None = None, attach: str | None = None) -> int:
    os.environ.setdefault("TEXTUAL_FPS", "120")
    app = create_app(runs_dir, attach)
    _prepare_for_in_process_runs()
    app.run()
    return app.return_code or 0


def _prepare_for_in_process_runs() -> None:
    import multiprocessing.resource_tracker

    # Creating multiprocessing primitives inside a running Textual app fails
    # (fds_to_keep); start the tracker while the terminal is still ours.
    try:
        multiprocessing.resource_tracker.ensure_running()
    except Exception:
        pass
    gc.freeze()
