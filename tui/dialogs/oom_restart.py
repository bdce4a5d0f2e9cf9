"""After a CUDA out-of-memory failure: restart with the smaller batch the engine suggests."""

from __future__ import annotations

from tui.dialogs.confirm import ConfirmDialog


class OomRestartDialog(ConfirmDialog):
    def __init__(self, run: str, error: str, batch_size: int, old_batch_size: int | None = None) -> None:
        was = f" (was {old_batch_size})" if old_batch_size else ""
        super().__init__(
            "Out of GPU memory",
            f"{run} failed: {error}\n\nStart a new run with the same settings and BATCH_SIZE={batch_size}{was}?",
            f"Restart with BATCH_SIZE={batch_size}",
            "Not now",
            default=False,  # it opens by itself after the failure: a stray enter must not start a run
            note="Later: press b on the dashboard.",
        )
