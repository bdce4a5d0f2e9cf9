"""Ask before stopping a run: stopping is cooperative and writes a checkpoint."""

from __future__ import annotations

from tui.dialogs.base import ChoiceDialog


class ConfirmStopDialog(ChoiceDialog[bool]):
    def __init__(self, run: str, where: str = "") -> None:
        super().__init__(
            "Stop the run?",
            f"{run} stops at the next step{where}, writes a checkpoint and ends as 'interrupted'. "
            "Resume it later with r.",
            [(True, "Stop run", "y", "error", True), (False, "Keep training", "n", "primary", True)],
            cancel_value=False,
        )
