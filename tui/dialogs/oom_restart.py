"""After a CUDA out-of-memory failure: restart with the smaller batch the engine suggests."""

from __future__ import annotations

from tui.dialogs.base import ChoiceDialog


class OomRestartDialog(ChoiceDialog[bool]):
    def __init__(self, run: str, error: str, batch_size: int, old_batch_size: int | None = None) -> None:
        was = f" (was {old_batch_size})" if old_batch_size else ""
        super().__init__(
            "Out of GPU memory",
            f"{run} failed: {error}\n\nStart a new run with the same settings and BATCH_SIZE={batch_size}{was}?",
            [(True, f"Restart with BATCH_SIZE={batch_size}", "y", "success", True), (False, "Not now", "n", "primary", True)],
            cancel_value=False,
            note="Later: press b on the dashboard.",
        )
