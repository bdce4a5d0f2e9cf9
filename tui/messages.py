"""Messages the screens send the app: typed requests instead of look-ups of each other's methods.

A screen posts to the app (`self.app.post_message(AttachRun(ref))`); the app
switches to the screen that owns the job and hands it over (see NSMApp).
"""

from __future__ import annotations

from textual.message import Message


class AttachRun(Message):
    """Show the dashboard, following run `ref` ("domain/name" or a name)."""

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref


class ResumeRun(Message):
    """Resume run `ref` in this app (the dashboard owns in-process runs).

    `checkpoint` is the file chosen by the user, or None for the latest one.
    """

    def __init__(self, ref: str, checkpoint: str | None = None) -> None:
        super().__init__()
        self.ref = ref
        self.checkpoint = checkpoint
