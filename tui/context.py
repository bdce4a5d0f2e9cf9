"""What every screen shares: the run store, user settings, the attached run."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from nsm.atomic import atomic_write_json
from nsm.runs import RunStore, default_runs_dir


def settings_dir() -> Path:
    env = os.environ.get("NSM_CONFIG_DIR")
    if env:
        return Path(env)
    # ~/.config/nsm-tui on Linux (XDG_CONFIG_HOME honoured), ~/Library/Application Support/nsm-tui on macOS.
    return Path(platformdirs.user_config_dir("nsm-tui", appauthor=False))


@dataclass
class Settings:
    """Small user preferences kept between sessions (the last config used, toggles)."""

    path: Path
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> "Settings":
        path = path or settings_dir() / "settings.json"
        try:
            values = json.loads(path.read_text())
            if not isinstance(values, dict):
                values = {}
        except (OSError, ValueError):
            values = {}  # missing or damaged settings are not worth an error
        return cls(path, values)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, self.values)
        except OSError:
            pass  # read-only home: the preference lasts for this session only


@dataclass
class AppContext:
    store: RunStore
    settings: Settings
    # The run the dashboard follows, as "domain/name"; screens may change it.
    attached: str | None = None

    @classmethod
    def create(cls, runs_dir: str | os.PathLike[str] | None = None, settings: Settings | None = None) -> "AppContext":
        return cls(store=RunStore(default_runs_dir(runs_dir)), settings=settings or Settings.load())
