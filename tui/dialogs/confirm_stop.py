"""Ask before stopping a run: stopping is cooperative and writes a checkpoint."""

from __future__ import annotations

from tui.dialogs.confirm import ConfirmDialog


class ConfirmStopDialog(ConfirmDialog):
    def __init__(self, run: str, where: str = "") -> None:
        super().__init__(
            "Stop the run?",
            f"{run} stops at the next step{where}, writes a checkpoint and ends as 'interrupted'. "
            "Resume it later with r.",
            "Stop run",
            "Keep training",
            default=False,
            danger=True,
        )
