"""Quitting while something trains: one dialog that names all of it.

What trains inside this app (the dashboard's in-process run, in-app sweeps)
cannot be left running: it stops with a checkpoint before the app closes. A
run the dashboard follows in its own process (detached, Modal) may be left
running or stopped.
"""

from __future__ import annotations

from typing import Sequence

from tui.dialogs.base import ChoiceDialog

LEAVE, STOP, CANCEL = "leave", "stop", "cancel"


class QuitDialog(ChoiceDialog[str]):
    """`in_app`: lines naming what trains in this process ("planning/run-x trains inside this app");
    `detached`: the run the dashboard follows in its own process, if any."""

    def __init__(self, in_app: Sequence[str] = (), detached: str | None = None) -> None:
        self.in_app = list(in_app)
        self.detached = detached
        if self.in_app:
            lines = [f"• {line}" for line in self.in_app]
            if detached:
                lines.append(f"• {detached} trains in its own process and keeps running")
            body = "\n".join(lines)
            note = (
                "What trains inside this app cannot be left running: quitting stops it at the next step "
                "with a checkpoint (resume it later), then the app closes. Use the detached-process "
                "backend (or a detached sweep queue) for training that outlives the app."
            )
            leave_ok = False
            stop_label = "Stop and quit"
        else:
            body = f"{detached} is training in its own process. Leave it running and quit, or stop it (with a checkpoint)?"
            note = ""
            leave_ok = True
            stop_label = "Stop it and quit"
        super().__init__(
            "Quit nsm-tui?",
            body,
            [
                (LEAVE, "Leave it running", "l", "success", leave_ok),
                (STOP, stop_label, "s", "error", True),
                (CANCEL, "Cancel", "c", "primary", True),
            ],
            cancel_value=CANCEL,
            note=note,
            default=CANCEL,  # enter out of habit neither stops a run nor leaves one behind
        )
