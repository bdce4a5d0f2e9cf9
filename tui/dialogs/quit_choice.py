"""Quitting while a run is attached: leave it running, stop it, or stay."""

from __future__ import annotations

from tui.dialogs.base import ChoiceDialog

LEAVE, STOP, CANCEL = "leave", "stop", "cancel"


class QuitDialog(ChoiceDialog[str]):
    def __init__(self, run: str, in_process: bool) -> None:
        if in_process:
            body = f"{run} trains inside this app."
            note = (
                "An in-process run cannot be left running: quitting stops it at the next step "
                "with a checkpoint (resume it later). Use the detached-process backend for runs "
                "that outlive the app."
            )
        else:
            body = f"{run} is training in its own process. Leave it running and quit, or stop it (with a checkpoint)?"
            note = ""
        super().__init__(
            "Quit nsm-tui?",
            body,
            [
                (LEAVE, "Leave it running", "l", "success", not in_process),
                (STOP, "Stop it and quit", "s", "error", True),
                (CANCEL, "Cancel", "c", "primary", True),
            ],
            cancel_value=CANCEL,
            note=note,
        )
