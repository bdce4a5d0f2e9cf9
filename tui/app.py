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
from typing import TYPE_CHECKING, Any, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from nsm.text import plain
from tui.commands import ScreenActions
from tui.context import AppContext
from tui.messages import AttachRun, ResumeRun
from tui.session import RUN, Session, Work
from tui.session_log import SessionLog, log_app_exception, open_session_log

if TYPE_CHECKING:
    from tui.screens.dashboard import DashboardScreen

SCREEN_KEYS = (
    # (mode, key, label)
    ("dashboard", "f1", "Dashboard"),
    ("runs", "f2", "Runs"),
    ("compare", "f3", "Compare"),
    ("sweep", "f4", "Sweep"),
    ("diagnostics", "f5", "GPU"),
    ("overview", "f6", "Live"),
)
QUIT_REASON = "the app is quitting"
HANGUP_REASON = "the terminal closed (SIGHUP)"
DETACHED_QUIT_REASON = "stopped when the app quit"


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
    # Textual's own commands (quit, theme, keys...) and every action of every screen.
    COMMANDS = App.COMMANDS | {ScreenActions}
    BINDINGS = [
        # One footer entry stands for the screen keys (an 80-column footer has no
        # room for six); each key still works, and the palette lists every screen.
        *(
            Binding(
                key,
                f"switch_mode('{mode}')",
                "screens" if i == 0 else label,
                priority=True,
                show=i == 0,
                key_display=f"F1-F{len(SCREEN_KEYS)}" if i == 0 else None,
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
        # Everything this process trains (the dashboard's in-process run, in-app sweeps):
        # quit and SIGHUP ask it, never the screens.
        self.session = Session()
        self._quitting = False
        self.session_log: SessionLog | None = None  # open from load to unmount (F5 shows its path)

    def on_load(self) -> None:
        self.session_log = open_session_log()

    def on_unmount(self) -> None:
        if self.session_log is not None:
            self.session_log.close()

    def _handle_exception(self, error: Exception) -> None:
        log_app_exception(error)  # Textual prints it once the terminal is back; the log keeps it
        super()._handle_exception(error)

    def on_mount(self) -> None:
        self.switch_mode("dashboard")
        # Summarise the store's logs in the background once the first frame is up, so
        # the first F2 finds them read (200 runs: ~0.2 s of reading saved there).
        self.set_timer(1.0, self._prefetch_runs)

    def _prefetch_runs(self) -> None:
        from tui.screens.runs import prefetch_runs

        prefetch_runs(self.context.store)

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None, markup: bool = True) -> None:
        """Toasts show literal text: messages carry run names, errors and paths from a run's
        files, which must neither be read as markup nor reach the terminal as escape codes."""
        super().notify(plain(message), title=plain(title), severity=severity, timeout=timeout, markup=False)

    def action_ctrl_c(self) -> None:
        self.notify("ctrl+c does not quit: press ctrl+q (a running training run is asked first)", timeout=4)

    # ============================================================ the dashboard
    def dashboard(self) -> DashboardScreen | None:
        """The dashboard screen, once created (it is, at mount)."""
        from tui.screens.dashboard import DashboardScreen

        screen = self.get_screen_for_mode("dashboard")
        return screen if isinstance(screen, DashboardScreen) else None

    def _followed_elsewhere(self) -> Any:
        """The dashboard's controller when it follows a run training in its own process
        (detached, Modal): that run may outlive the app. None otherwise."""
        from nsm.execution import IN_PROCESS

        dashboard = self.dashboard()
        if dashboard is None or not dashboard.is_mounted:
            return None
        try:
            controller = dashboard.controller
        except Exception:  # not composed yet
            return None
        if controller.active and controller.run is not None and controller.mode != IN_PROCESS:
            return controller
        return None

    async def _show_dashboard(self) -> DashboardScreen | None:
        await self.switch_mode("dashboard")
        return self.dashboard()

    async def on_attach_run(self, message: AttachRun) -> None:
        message.stop()
        self.context.attached = message.ref
        dashboard = await self._show_dashboard()
        if dashboard is not None:
            dashboard.attach_ref(message.ref)

    async def on_resume_run(self, message: ResumeRun) -> None:
        message.stop()
        dashboard = await self._show_dashboard()
        if dashboard is not None:  # it owns in-process runs (and says why a resume is refused)
            dashboard.resume_ref(message.ref, message.checkpoint)

    # ==================================================================== quit
    async def action_request_quit(self) -> None:
        """ctrl+q and the palette's Quit: ask about everything that trains, then exit."""
        if self._quitting:
            self.notify("stopping what trains here; the app closes once its checkpoints are written", timeout=4)
            return
        items = self.session.training()
        followed = self._followed_elsewhere()
        if not items and followed is None:
            self.exit()
            return
        from tui.dialogs.quit_choice import LEAVE, STOP, QuitDialog

        lines = [quit_line(w) for w in items]
        detached = followed.run.ref if followed is not None else None

        def chosen(choice: str | None) -> None:
            if choice == STOP and items:
                self.stop_session_and_exit(QUIT_REASON)
            elif choice == STOP and followed is not None:
                self._stop_followed_and_exit(followed)
            elif choice == LEAVE and not items:
                self.exit()

        self.push_screen(QuitDialog(lines, detached), chosen)

    def stop_session_and_exit(self, reason: str) -> None:
        """Stop everything the session holds (each with a checkpoint); exit once all of it ended."""
        done = self.session.stop_all(reason)
        if done is None:
            self.exit()
            return
        self._quitting = True
        self.notify("stopping what trains here; the app closes once its checkpoints are written", timeout=6)
        self._exit_when_set(done)

    @work(group="quit", exclusive=True, exit_on_error=False)
    async def _stop_followed_and_exit(self, controller: Any) -> None:
        """Stop the run the dashboard follows in its own process, then exit (it checkpoints by itself)."""
        import asyncio

        from nsm.runs import RunStoreError

        from nsm.execution import backend_for

        run = controller.run
        backend = backend_for(run) if run is not None else None
        if run is not None and backend is not None and backend.slow:
            # Modal: a network call with a deadline of seconds, off the loop, finished before exit.
            from remote.errors import ModalError

            try:
                await asyncio.to_thread(backend.stop, run, reason=DETACHED_QUIT_REASON)
            except (ModalError, RunStoreError, OSError) as exc:
                self.notify(f"could not ask {run.ref} to stop on Modal: {exc}", severity="error")
                return
        else:
            controller.stop(DETACHED_QUIT_REASON)
        self.exit()

    @work(group="quit", exclusive=True, exit_on_error=False)
    async def _exit_when_set(self, done: Any) -> None:
        import asyncio

        while not await asyncio.to_thread(done.wait, 1.0):
            pass  # a bounded wait, so that the executor thread never outlives a closed loop by long
        self.exit()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Quit":
                # The palette's quit goes through the same questions as ctrl+q.
                yield SystemCommand("Quit", "Quit nsm-tui (asks first while something trains)", self.action_request_quit)
            else:
                yield command
        for mode, key, label in SCREEN_KEYS:
            yield SystemCommand(f"Screen: {label}", f"switch to the {label} screen ({key.upper()})", lambda m=mode: self.switch_mode(m))
        # Each screen's own actions come from tui/commands.py (ScreenActions), for every screen at once.

    def on_terminal_hangup(self) -> None:
        """SIGHUP, on the event loop: exit now, or once what trains here has stopped."""
        if self.session.busy():
            self.stop_session_and_exit(HANGUP_REASON)
        else:
            self.exit()

    def stop_run_for_hangup(self) -> Any:
        """SIGHUP, in the signal handler: ask what trains here to stop (thread-safe) and
        return an Event set once all of it has ended, or None when nothing trains here."""
        return self.session.stop_all(HANGUP_REASON)

    def get_screen_for_mode(self, mode: str) -> Any:
        """The base screen of a mode, created on first use."""
        stack = self._screen_stacks.get(mode)
        if stack:
            return stack[0]
        return None


def quit_line(work: Work) -> str:
    """How the quit dialog names one item of the session."""
    if work.kind == RUN:
        return f"{work.label} trains inside this app"
    return f"{work.label} runs inside this app (its current point stops with a checkpoint; finished points are kept)"


def create_app(runs_dir: str | os.PathLike[str] | None = None, attach: str | None = None, context: AppContext | None = None) -> NSMApp:
    return NSMApp(context or AppContext.create(runs_dir), attach=attach)


def run_app(runs_dir: str | os.PathLike[str] | None = None, attach: str | None = None) -> int:
    os.environ.setdefault("TEXTUAL_FPS", "240")
    app = create_app(runs_dir, attach)
    _prepare_for_in_process_runs()
    _handle_hangup(app)
    # A terminal can also vanish without SIGHUP (see tui/terminal.py): Textual's input
    # thread would then spin on EOF forever; the watchdog takes the SIGHUP path instead.
    from tui.terminal import watch_terminal

    stop_watching = watch_terminal(lambda: _hang_up(app))
    try:
        app.run()
    finally:
        stop_watching.set()
    return app.return_code or 0


def _handle_hangup(app: NSMApp) -> None:
    import signal

    if not hasattr(signal, "SIGHUP"):
        return

    def on_hangup(signum: int, frame: Any) -> None:
        _hang_up(app)

    signal.signal(signal.SIGHUP, on_hangup)


def _hang_up(app: NSMApp) -> None:
    """The terminal is gone (SIGHUP, or the terminal watchdog): stop like a dropped ssh link.

    Runs in the signal handler or the watchdog thread, so only thread-safe steps here.
    """
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
    try:
        loop.call_soon_threadsafe(app.on_terminal_hangup)
    except RuntimeError:
        pass  # the loop has closed: the app is exiting anyway, and _exit_watchdog backs that up


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
