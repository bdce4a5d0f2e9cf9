"""The Textual app `nsm-tui`: one mode per screen, switched by F-keys or the palette.

`create_app` builds the app without running it (the CLI, the tests and the
snapshot tests all use it); `run_app` prepares the process for an in-process
run first (see ../shared/TUI-NOTES.md): `gc.freeze()` after start-up, a faster
refresh timer, and SIGHUP handling (the ssh link drops: a detached run goes on,
an in-process one stops with a checkpoint). torch is not imported at start-up
(it takes seconds; the first frame must not wait): the dashboard imports it in a
worker thread once the in-process backend is chosen, then freezes the GC again.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

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
    # Absolute: Textual resolves a relative CSS_PATH next to the module of a subclass.
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    MODES = {mode: _mode_factory(mode) for mode, _, _ in SCREEN_KEYS}
    BINDINGS = [
        # One footer entry stands for the five screen keys (an 80-column footer has no
        # room for five); each key still works, and the palette lists every screen.
        *(
            Binding(
                key,
                f"switch_mode('{mode}')",
                "screens" if i == 0 else label,
                priority=True,
                show=i == 0,
                key_display="F1-F5" if i == 0 else None,
                tooltip=", ".join(f"{k.upper()} {lbl}" for _m, k, lbl in SCREEN_KEYS),
            )
            for i, (mode, key, label) in enumerate(SCREEN_KEYS)
        ),
        Binding("ctrl+q", "request_quit", "Quit", priority=True),
        # Textual's own palette key, without its word: 80 columns of footer are precious.
        Binding("ctrl+p", "command_palette", "", show=False, priority=True, tooltip="Open the command palette"),
        # ctrl+c must never end the app (and with it an in-process run) by accident.
        Binding("ctrl+c", "ctrl_c", show=False, priority=True),
    ]

    def __init__(self, context: AppContext, attach: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.context = context
        self.attach_on_start = attach

    def on_mount(self) -> None:
        self.switch_mode("dashboard")
        # Summarise the store's logs in the background once the first frame is up, so
        # the first F2 finds them read (200 runs: ~0.2 s of reading saved there).
        self.set_timer(1.0, self._prefetch_runs)

    def _prefetch_runs(self) -> None:
        from tui.screens.runs import prefetch_runs

        prefetch_runs(self.context.store)

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

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Quit":
                # The palette's quit goes through the same questions as ctrl+q.
                yield SystemCommand("Quit", "Quit nsm-tui (asks first when a run is attached)", self.action_request_quit)
            else:
                yield command
        for mode, key, label in SCREEN_KEYS:
            yield SystemCommand(f"Screen: {label}", f"switch to the {label} screen ({key.upper()})", lambda m=mode: self.switch_mode(m))
        provider = getattr(screen, "palette_commands", None)
        if provider is not None:
            for title, help_text, callback in provider():
                yield SystemCommand(title, help_text, callback)

    def on_terminal_hangup(self) -> None:
        """SIGHUP, on the event loop: exit now, or once the in-process run has stopped."""
        dashboard = self.get_screen_for_mode("dashboard")
        handler = getattr(dashboard, "on_terminal_hangup", None)
        if handler is not None:
            handler()
        else:
            self.exit()

    def stop_run_for_hangup(self) -> Any:
        """SIGHUP, in the signal handler: ask an in-process run to stop (thread-safe) and
        return an Event set when its thread is done, or None when nothing trains here."""
        dashboard = self.get_screen_for_mode("dashboard")
        stop = getattr(dashboard, "stop_run_for_hangup", None)
        return stop() if stop is not None else None

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
    _handle_hangup(app)
    app.run()
    return app.return_code or 0


def _handle_hangup(app: NSMApp) -> None:
    import signal

    if not hasattr(signal, "SIGHUP"):
        return

    def on_hangup(signum: int, frame: Any) -> None:
        loop = app._loop  # noqa: SLF001 - the running loop; None before start-up
        if loop is None:
            os._exit(129)
        try:
            run_done = app.stop_run_for_hangup()
        except Exception:
            run_done = None
        _exit_watchdog(app, run_done)
        # The graceful path runs on the event loop; the watchdog covers a loop that
        # can no longer run (its writes to the vanished terminal block).
        loop.call_soon_threadsafe(app.on_terminal_hangup)

    signal.signal(signal.SIGHUP, on_hangup)


HANGUP_RUN_GRACE_S = 300.0  # longest wait for an in-process run to reach a step boundary and checkpoint
HANGUP_EXIT_GRACE_S = 3.0  # then this long for Textual's own shutdown


def _exit_watchdog(app: NSMApp, run_done: Any) -> None:
    import threading
    import time

    def watch() -> None:
        if run_done is not None:
            run_done.wait(HANGUP_RUN_GRACE_S)
        time.sleep(HANGUP_EXIT_GRACE_S)
        # Still here: restoring a terminal that is gone has hung. Nothing is left to save.
        os._exit(129)

    threading.Thread(target=watch, name="hangup-watchdog", daemon=True).start()


def _prepare_for_in_process_runs() -> None:
    import multiprocessing.resource_tracker

    # Creating multiprocessing primitives inside a running Textual app fails
    # (fds_to_keep); start the tracker while the terminal is still ours.
    try:
        multiprocessing.resource_tracker.ensure_running()
    except Exception:
        pass
    gc.freeze()
