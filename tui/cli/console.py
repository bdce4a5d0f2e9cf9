"""Headless output: Rich on a terminal, plain aligned text when piped, JSON on request."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence

from nsm.text import plain
from tui.columns import PLAIN, RICH_BOX, Column, fit_columns, terminal_width
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


def print_table(title: str | None, columns: Sequence[Any], rows: Sequence[Sequence[Any]], width: int | None = None) -> None:
    """`columns` are labels, or `tui.columns.Column`s: then the table fits `width` (default: the
    terminal's, 80 when piped) by dropping the least important columns, never cutting a cell."""
    # Cells, titles and headers can come from a run's files: literal text, never markup.
    cells = [[plain(fmt(c)) for c in row] for row in rows]
    title = plain(title) if title is not None else None
    fitted = None
    if any(isinstance(c, Column) for c in columns):
        specs = [c if isinstance(c, Column) else Column(str(c)) for c in columns]
        fitted = fit_columns(specs, cells, width or terminal_width(), RICH_BOX if is_tty() else PLAIN)
        labels = [plain(label) for label in fitted.labels]
        cells = [fitted.pick(row) for row in cells]
        rows = [fitted.pick(row) for row in rows]
    else:
        labels = [plain(c) for c in columns]
    if is_tty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(title) if title is not None else None, title_justify="left")
        for i, col in enumerate(labels):
            numeric = all(_numeric(r[i]) for r in rows) and rows
            # Fitted: a cell too wide for the terminal folds onto a second line, never ends in "…".
            table.add_column(Text(col), justify="right" if numeric else "left", overflow="fold" if fitted else "ellipsis")
        for row in cells:
            table.add_row(*(Text(c) for c in row))
        Console().print(table)
        return
    if title:
        # Fitted: a long title wraps at spaces (a path in it stays whole).
        print(_wrap(title, width or terminal_width()) if fitted else title)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(labels)]
    print("  ".join(c.ljust(w) for c, w in zip(labels, widths)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)) or text


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
