"""The dashboard screen (being built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class DashboardScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("dashboard")
        yield Footer()
