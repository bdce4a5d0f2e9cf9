"""Questions the sweep screen asks: stop the queue. (Quitting asks the app's QuitDialog.)"""

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
