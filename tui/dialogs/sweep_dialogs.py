"""Questions the sweep screen asks: stop the queue, quit while it runs in this app."""

from __future__ import annotations

from tui.dialogs.base import ChoiceDialog


class ConfirmStopSweepDialog(ChoiceDialog[bool]):
    def __init__(self, sweep: str, current: str | None) -> None:
        where = f"{current} stops at its next step and writes a checkpoint; " if current else ""
        super().__init__(
            "Stop the sweep?",
            f"{where}the points not yet run stay queued. Finished points are kept. "
            f"Resume {sweep} later with r (or `nsm-tui sweep resume {sweep}`).",
            [(True, "Stop sweep", "y", "error", True), (False, "Keep running", "n", "primary", True)],
            cancel_value=False,
        )


class QuitWithSweepDialog(ChoiceDialog[bool]):
    def __init__(self, sweep: str) -> None:
        super().__init__(
            "A sweep is running in this app",
            f"Quitting stops {sweep}: its current point writes a checkpoint first, then the app closes. "
            "Finished points are kept; resume it later (F4, r) or with `nsm-tui sweep resume`.",
            [(True, "Stop and quit", "y", "error", True), (False, "Stay", "n", "primary", True)],
            cancel_value=False,
            note="A sweep started as a detached queue keeps running when the app closes.",
        )
