"""plotext figures as plain text, without Textual: the Markdown reports of the CLI and the TUI."""

from __future__ import annotations

import threading
from typing import Any, Callable

# plotext keeps one global figure: every build in this process takes turns.
PLOTEXT_LOCK = threading.Lock()


def render_to_text(draw: Callable[[Any], None], width: int, height: int) -> str:
    """Build any plotext figure to plain text (for Markdown reports): `draw(plt)` draws it."""
    import plotext as plt
    from rich.text import Text

    with PLOTEXT_LOCK:
        plt.clf()
        plt.theme("clear")
        plt.plotsize(width, height)
        draw(plt)
        return Text.from_ansi(plt.build()).plain
