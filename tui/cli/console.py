"""Headless output: Rich on a terminal, plain aligned text when piped, JSON on request."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence

from nsm.text import plain
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
    # Cells, titles and headers can come from a run's files: literal text, never markup.
    cells = [[plain(fmt(c)) for c in row] for row in rows]
    columns = [plain(c) for c in columns]
    title = plain(title) if title is not None else None
    if is_tty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(title) if title is not None else None, title_justify="left")
        for i, col in enumerate(columns):
            numeric = all(_numeric(r[i]) for r in rows) and rows
            table.add_column(Text(col), justify="right" if numeric else "left")
        for row in cells:
            table.add_row(*(Text(c) for c in row))
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


def lit(value: Any) -> str:
    """`value` as a literal part of a `say` message: no markup, no control characters."""
    from rich.markup import escape

    return escape(plain(value))


def say(message: str) -> None:
    """`message` is markup: a value from a run's files goes in as `lit(value)`."""
    message = plain(message)
    if is_tty():
        from rich.console import Console
        from rich.errors import MarkupError

        console = Console(highlight=False)
        try:
            console.print(message)
        except MarkupError:  # a value that was not passed through `lit`: show it as it is
            console.print(message, markup=False)
    else:
        print(_strip_markup(message))


def _strip_markup(text: str) -> str:
    from rich.errors import MarkupError
    from rich.text import Text

    try:
        return Text.from_markup(text).plain
    except MarkupError:
        return text


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) or v is None
