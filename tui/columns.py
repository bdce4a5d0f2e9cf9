"""Tables that fit the width they are given: columns dropped by priority, labels shortened,
never a cut number or run name.

One rule for the CLI's tables (`runs list`, `sweep show`: the terminal's width) and the
TUI's DataTables (F2, F4: the widget's width, laid out again on resize):

1. every column at its natural width (its longest cell or its label, whichever is wider);
2. too wide: the labels of the least important columns are shortened first (a label is
   never wider than it has to be, so "best val loss" becomes "val loss" before anything
   disappears);
3. still too wide: the least important columns are dropped, one at a time (ties: the
   rightmost first), until the rest fit; a column marked `keep` (the run name) is never
   dropped;
4. the full labels come back if the room freed by 3 holds them all (all or none, so that
   a table never mixes "val acc" with "best val loss").

Cells are never cut: a column shown is shown in full. If the kept columns alone are wider
than the room (a 64-character run name in a narrow terminal), the table is wider than the
room: a DataTable scrolls sideways, and the CLI's rich table folds the name onto a second
line rather than ending it with "…".

Pure Python: the headless CLI uses it without Textual.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Sequence

DEFAULT_WIDTH = 80


@dataclass(frozen=True)
class Column:
    label: str
    priority: int = 50  # higher is kept longer
    short: str | None = None  # a narrower label for tight rooms
    numeric: bool = False  # right-aligned
    keep: bool = False  # never dropped (the run name, the row's number)


@dataclass(frozen=True)
class Fitted:
    """The columns shown (indices into the given columns, in their order) and their labels."""

    indices: tuple[int, ...]
    labels: tuple[str, ...]
    widths: tuple[int, ...]  # content widths, without padding
    width: int  # the whole table, with padding and edges

    def pick(self, cells: Sequence[object]) -> list[object]:
        """The cells of one row that are shown."""
        return [cells[i] for i in self.indices]


@dataclass(frozen=True)
class Frame:
    """What a kind of table adds around its cells: per column and once."""

    per_column: int
    fixed: int = 0


# Plain aligned text (`print_table` when piped): two spaces between columns.
PLAIN = Frame(per_column=2, fixed=-2)
# rich.Table's default box: "│ " + cell + " " per column and one closing "│".
RICH_BOX = Frame(per_column=3, fixed=1)
# Textual's DataTable: one cell of padding each side; the vertical scrollbar's 2 columns.
DATA_TABLE = Frame(per_column=2, fixed=2)


def fit_columns(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    frame: Frame = PLAIN,
) -> Fitted:
    """The columns that fit in `width` (see the module's rule); `rows` are the cells as text."""
    n = len(columns)
    content = [max((_text_width(r[i]) for r in rows), default=0) for i in range(n)]
    long_labels = [c.label for c in columns]
    short_labels = [c.short if c.short else c.label for c in columns]
    labels = list(long_labels)
    shown = list(range(n))

    def total() -> int:
        if not shown:
            return 0
        return sum(max(content[i], _text_width(labels[i])) for i in shown) + frame.per_column * len(shown) + frame.fixed

    # Least important first; equal priorities: the rightmost first.
    order = sorted(range(n), key=lambda i: (columns[i].priority, -i))
    for i in order:
        if total() <= width:
            break
        labels[i] = short_labels[i]
    for i in order:
        if total() <= width:
            break
        if not columns[i].keep and i in shown:
            shown.remove(i)
    shortened = list(labels)
    labels = list(long_labels)  # all the full labels back where the room allows: never a mix
    if total() > width:
        labels = shortened
    return Fitted(
        indices=tuple(shown),
        labels=tuple(labels[i] for i in shown),
        widths=tuple(max(content[i], _text_width(labels[i])) for i in shown),
        width=total(),
    )


# Sweep tables name their knobs by the config's labels; these stand in where room is short.
SHORT_KNOB_LABELS = {
    "batch_size": "BATCH",
    "cycle_weight": "CYC_W",
    "eval_every": "EVAL",
    "save_every": "SAVE",
    "num_graphs": "GRAPHS",
    "patience": "PAT",
    "num_workers": "WORKERS",
    "keep_last": "KEEP",
    "tensorboard": "TB",
}


def knob_column(knob: str, label: str, priority: int) -> Column:
    """A sweep's varying knob: what tells its points apart, so kept long."""
    return Column(label, priority=priority, short=SHORT_KNOB_LABELS.get(knob))


def terminal_width() -> int:
    """The CLI's width: the terminal's (or $COLUMNS), 80 when stdout is not a terminal."""
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns or DEFAULT_WIDTH


def _text_width(value: object) -> int:
    from rich.cells import cell_len

    return cell_len(str(value))
