"""Questions the sweep screen asks: stop the queue. (Quitting asks the app's QuitDialog.)"""

from __future__ import annotations

from tui.dialogs.confirm import ConfirmDialog


class ConfirmStopSweepDialog(ConfirmDialog):
    def __init__(self, sweep: str, current: str | None) -> None:
        where = f"{current} stops at its next step and writes a checkpoint; " if current else ""
        super().__init__(
            "Stop the sweep?",
            f"{where}the points not yet run stay queued. Finished points are kept. "
            f"Resume {sweep} later with r (or `nsm-tui sweep resume {sweep}`).",
            "Stop sweep",
            "Keep running",
            default=False,
            danger=True,
        )
