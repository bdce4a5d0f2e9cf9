"""The command palette's list of every action of every screen, with its key.

`ScreenActions` (a textual.command Provider, in NSMApp.COMMANDS) reads the
bindings of the five screens (and of a screen pushed over them, like the
evaluation view), so a new key is in the palette as soon as it is bound: the
palette and the footer can never disagree. Choosing one from another screen
switches to that screen first, then runs the action there the way its key
would (the screen's `action_applies` decides; what does not apply now says so).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import partial
from typing import Any, Iterable

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class ScreenAction:
    mode: str | None  # None: the screen pushed over the current mode (it has no mode of its own)
    screen: str  # the screen's name, as the palette shows it
    action: str  # the binding's action, parameters included ("chart_page(1)")
    description: str
    keys: str  # how the footer writes its key(s): "s", "^s", "x/delete"
    help: str

    @property
    def title(self) -> str:
        return f"{self.screen}: {self.description} ({self.keys})"


def screen_class(mode: str) -> type:
    from tui.screens import SCREEN_MODULES

    module_name, cls_name = SCREEN_MODULES[mode]
    return getattr(importlib.import_module(module_name), cls_name)


def bindings_of(cls: type) -> list[Binding]:
    """The bindings a screen class declares itself (not Screen's tab/shift+tab), one per key."""
    return [b for b in Binding.make_bindings(cls.__dict__.get("BINDINGS", ())) if b.description]


def actions_of(app: Any, cls: type, mode: str | None, label: str) -> list[ScreenAction]:
    """One entry per action of `cls` (its keys together), in the order they are bound."""
    grouped: dict[str, list[Binding]] = {}
    for binding in bindings_of(cls):
        grouped.setdefault(binding.action, []).append(binding)
    out = []
    for action, bindings in grouped.items():
        first = bindings[0]
        keys = "/".join(app.get_key_display(b) for b in bindings)
        where = f"key {keys} on the {label} screen"
        out.append(ScreenAction(mode, label, action, first.description, keys, f"{first.tooltip} · {where}" if first.tooltip else where))
    return out


def all_actions(app: Any) -> list[ScreenAction]:
    """Every screen's actions: the current screen's first, then the others in F-key order."""
    from tui.app import SCREEN_KEYS
    from tui.screens.base import AppScreen

    per_mode: dict[str, list[ScreenAction]] = {}
    for mode, _key, label in SCREEN_KEYS:
        try:
            cls = screen_class(mode)
        except (KeyError, ImportError, AttributeError):
            continue  # a screen being added (not registered yet): the palette must still open
        per_mode[mode] = actions_of(app, cls, mode, label)
    current = getattr(app, "current_mode", None)
    ordered: list[ScreenAction] = []
    top = app.screen
    base = app.get_screen_for_mode(current) if current else None
    if isinstance(top, AppScreen) and top is not base:
        label = getattr(top, "PALETTE_NAME", type(top).__name__.removesuffix("Screen"))
        ordered += actions_of(app, type(top), None, label)
    ordered += per_mode.get(current, [])
    for mode, items in per_mode.items():
        if mode != current:
            ordered += items
    return ordered


async def run_screen_action(app: Any, item: ScreenAction) -> None:
    """Go to the action's screen (unless it is the current one) and run the action there."""
    from tui.screens.base import AppScreen

    if item.mode is None:
        screen = app.screen
    else:
        if app.current_mode != item.mode:
            await app.switch_mode(item.mode)
        screen = app.get_screen_for_mode(item.mode)
    if isinstance(screen, AppScreen):
        ran = await screen.run_from_palette(item.action)
    else:
        ran = bool(await app.run_action(item.action, screen)) if screen is not None else False
    if not ran:
        app.notify(f"{item.screen}: {item.description} does not apply right now", severity="warning", timeout=4)


class ScreenActions(Provider):
    """Every action of every screen, runnable from anywhere."""

    def _actions(self) -> list[ScreenAction]:
        return all_actions(self.app)

    async def discover(self) -> Hits:
        for item in self._actions():
            yield DiscoveryHit(item.title, partial(run_screen_action, self.app, item), help=item.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for item in self._actions():
            score = matcher.match(item.title)
            if score > 0:
                yield Hit(score, matcher.highlight(item.title), partial(run_screen_action, self.app, item), text=item.title, help=item.help)


def titles(app: Any) -> Iterable[str]:
    """The palette titles of every screen action (tests, docs)."""
    return [item.title for item in all_actions(app)]
