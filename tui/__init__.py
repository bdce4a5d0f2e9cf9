"""nsm-tui: the Textual app (tui.app) and the headless CLI (tui.cli)."""

from __future__ import annotations

# Where the package metadata is missing (a source tree on sys.path, not installed);
# tests/test_cli.py keeps it equal to pyproject.toml's version.
__version__ = "0.1.0"


def package_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8
        return __version__
    try:
        return version("nsm-tui")
    except PackageNotFoundError:
        return __version__
