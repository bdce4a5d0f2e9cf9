"""Headless output: Rich on a terminal, plain aligned text when piped, JSON on request."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence

from tui.formatting import fmt


class CliError(Exception):
    """A user mistake or an unusable input: one line on stderr, exit code 2."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def is_tty() -> bool:
    return sys.stdout.isatty()


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[fmt(c) for c in row] for row in rows]
    if is_tty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for i, col in enumerate(columns):
            numeric = all(_numeric(r[i]) for r in rows) and rows
            table.add_column(col, justify="right" if numeric else "left")
        for row in cells:
            table.add_row(*row)
        Console().print(table)
        return
    if title:
        print(title)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def print_kv(title: str | None, items: Sequence[tuple[str, Any]]) -> None:
    print_table(title, ["field", "value"], [(k, v) for k, v in items])


def say(message: str) -> None:
    if is_tty():
        from rich.console import Console

        Console(highlight=False).print(message)
    else:
        print(_strip_markup(message))


def _strip_markup(text: str) -> str:
    from rich.text import Text

    return Text.from_markup(text).plain


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) or v is None
