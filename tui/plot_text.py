"""plotext figures as plain text, without Textual: the Markdown reports of the CLI and the TUI.

Also the axes every line chart shares: plotext's own ticks fall between the
rows and columns it has, so it skips labels (a y axis reading 0.795, 0.714,
0.633, 0.470) and labels epochs 1.0, 3.2, 5.5. `set_axes` gives it ticks at
round values, no more than the chart's rows and columns can label.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Callable, Sequence

# plotext keeps one global figure: every build in this process takes turns.
PLOTEXT_LOCK = threading.Lock()

# The gap between two x labels, in columns, so that none is ever dropped.
X_LABEL_GAP = 2


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


def _nice_steps(raw: float, integer: bool) -> list[float]:
    """Round steps (1, 2, 2.5, 5 × 10^k) from about `raw` upwards."""
    exp = math.floor(math.log10(raw)) if raw > 0 else 0
    out: list[float] = []
    for k in range(exp - 1, exp + 3):
        for m in (1, 2, 2.5, 5):
            step = m * 10.0**k
            if integer and (step < 1 or step != int(step)):
                continue
            out.append(step)
    return sorted(out)


def linear_ticks(lo: float, hi: float, max_count: int, *, integer: bool = False, expand: bool = True) -> list[float]:
    """At most `max_count` ticks at multiples of one round step (whole numbers when
    `integer`). `expand`: the first and last tick lie at or beyond lo and hi (a y axis
    grows to them); otherwise every tick lies within [lo, hi] (an x axis keeps its data)."""
    max_count = max(1, max_count)
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        return [float(round(lo))] if integer else [lo]
    for step in _nice_steps((hi - lo) / max_count, integer):
        if expand:
            first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
        else:
            first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 <= max_count:
            return [_clean(i * step) for i in range(first, last + 1)]
    return [lo, hi][:max_count]


def _clean(x: float) -> float:
    # 3 * 0.1 is 0.30000000000000004: labels and comparisons want 0.3.
    return float(f"{x:.12g}")


def row_ticks(lo: float, hi: float, rows: int) -> tuple[list[float], float, float]:
    """Ticks of a linear y axis that land exactly on its rows, evenly spaced, and the
    axis limits that put them there: (ticks, bottom, top); [lo, hi] lies within them.
    A label every other row reads best; every row, or every third or fourth, when that
    lets the data fill much more of the height."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    if rows < 2:
        return [lo], lo, hi
    best: tuple[float, float, float, float] | None = None  # (fill, step, bottom, span)
    for spacing in (2, 3, 1, 4):
        span = (rows - 1) / spacing  # steps from the bottom row to the top one
        if span < 1:
            continue
        for step in _nice_steps((hi - lo) / span, integer=False):
            bottom = math.floor(lo / step + 1e-9) * step
            if bottom + step * span >= hi - 1e-9 * max(abs(hi), step):
                break
        fill = (hi - lo) / (step * span)
        if best is None or fill > best[0] * 1.25:
            best = (fill, step, bottom, span)
    assert best is not None
    _fill, step, bottom, span = best
    ticks = [_clean(bottom + i * step) for i in range(math.floor(span + 1e-9) + 1)]
    return ticks, _clean(bottom), bottom + step * span


def log_ticks(lo: float, hi: float, rows: int) -> list[float]:
    """Ticks of a log axis at 1-2-5 values (1-3, or decades, when the rows are too few to
    give each its own), the first at or below lo and the last at or above hi."""
    lo, hi = max(min(lo, hi), 1e-300), max(lo, hi, 1e-300)
    d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if d1 == d0:
        d1 += 1
    per_row = (d1 - d0) / max(1, rows - 1)  # decades per row, at most
    for mantissas, gap in (((1, 2, 5), math.log10(2)), ((1, 3), math.log10(3)), ((1,), 1.0)):
        if gap < per_row:
            continue
        values = [_clean(m * 10.0**d) for d in range(d0, d1 + 1) for m in mantissas]
        below = [v for v in values if v <= lo * (1 + 1e-9)]
        above = [v for v in values if v >= hi * (1 - 1e-9)]
        first = below[-1] if below else values[0]
        last = above[0] if above else values[-1]
        return [v for v in values if first <= v <= last]
    # More decades than rows: every n-th decade, the last one included.
    n = math.ceil(per_row)
    return [_clean(10.0**d) for d in range(d0, d1 + n, n)]


def tick_labels(ticks: Sequence[float], *, integer: bool = False, log: bool = False) -> list[str]:
    """Labels with the same number of decimals, enough to tell the ticks apart
    (a log axis's 1-2-5 values each as short as it goes)."""
    if integer:
        return [str(int(round(t))) for t in ticks]
    if log:
        return [f"{t:g}" for t in ticks]
    finite = [abs(t) for t in ticks if t != 0]
    if finite and (max(finite) >= 1e5 or max(finite) < 1e-3):
        return [f"{t:.2g}" for t in ticks]
    for decimals in range(0, 7):
        labels = [f"{t:.{decimals}f}" for t in ticks]
        if len(set(labels)) == len(labels) and all(abs(float(s) - t) <= 1e-9 * max(1.0, abs(t)) for s, t in zip(labels, ticks)):
            return labels
    return [f"{t:.3g}" for t in ticks]


def plot_rows(height: int, title: bool) -> int:
    """Rows of the plot area: the figure less its two borders, the x labels and the title."""
    return max(1, height - 3 - (1 if title else 0))


def set_axes(
    plt: Any,
    xs: Sequence[float],
    ys: Sequence[float],
    width: int,
    height: int,
    *,
    title: bool = True,
    integer_x: bool = False,
    log_y: bool = False,
) -> tuple[list[float], list[float]]:
    """Ticks and limits for both axes of a line chart from all the points it plots;
    returns the (x, y) ticks. Every tick gets its own row or columns, so none is skipped."""
    if not xs or not ys:
        return [], []
    rows = plot_rows(height, title)
    y_lo, y_hi = min(ys), max(ys)
    if log_y:
        y_ticks = log_ticks(y_lo, y_hi, rows)
        y_labels = tick_labels(y_ticks, log=True)
        plt.yticks(y_ticks, y_labels)
        plt.ylim(math.log10(y_ticks[0]), math.log10(y_ticks[-1]))  # plotext takes log limits as exponents
    else:
        y_ticks, bottom, top = row_ticks(y_lo, y_hi, rows)
        y_labels = tick_labels(y_ticks)
        plt.yticks(y_ticks, y_labels)
        plt.ylim(bottom, top)
    x_lo, x_hi = min(xs), max(xs)
    plot_width = max(4, width - max(len(s) for s in y_labels) - 2)
    widest = len(str(int(round(max(abs(x_lo), abs(x_hi)))))) + (1 if x_lo < 0 else 0)
    if not integer_x:
        widest += 3  # room for a couple of decimals
    x_ticks = linear_ticks(x_lo, x_hi, max(1, plot_width // (widest + X_LABEL_GAP)), integer=integer_x, expand=False)
    x_labels = tick_labels(x_ticks, integer=integer_x)
    # Labels wider than guessed: fewer ticks until they fit.
    while len(x_ticks) > 1 and sum(len(s) + X_LABEL_GAP for s in x_labels) > plot_width:
        x_ticks = linear_ticks(x_lo, x_hi, len(x_ticks) - 1, integer=integer_x, expand=False)
        x_labels = tick_labels(x_ticks, integer=integer_x)
    if x_hi == x_lo:
        plt.xlim(x_lo - 1, x_hi + 1)
    else:
        plt.xlim(x_lo, x_hi)
    plt.xticks(x_ticks, x_labels)
    return x_ticks, y_ticks
