"""The sample graph (the notebook's "show sample"): one sample of a domain drawn as text —
nodes by kind, edges by relation with strengths, label and subtype — and, opened on a
run's checkpoint, which nodes each pooling level keeps and the model's prediction.

Pushed over the dashboard (`g`, for the config panel's domain) or the runs browser
(`g`, for the run's checkpoint). Drawing imports the generators (and torch), tracing
loads the checkpoint: both in a thread worker, the screen says "drawing…" meanwhile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from nsm.config import DOMAINS
from nsm.text import plain


class SampleGraphScreen(Screen[None]):
    DEFAULT_CSS = """
    SampleGraphScreen #sample-title {
        height: 1;
        padding: 0 1;
        background: $boost;
        text-style: bold;
    }
    SampleGraphScreen #sample-scroll {
        height: 1fr;
    }
    SampleGraphScreen #sample-body {
        padding: 0 1;
        width: 100%;
    }
    """

    BINDINGS = [
        Binding("n,right", "next", "Next"),
        Binding("p,left", "previous", "Prev"),
        Binding("c", "cycle_domain", "Domain"),
        Binding("escape,q", "close", "Close"),
    ]
    AUTO_FOCUS = "#sample-scroll"

    class Drawn(Message):
        """The body shows sample `index` (`error` when it could not be drawn)."""

        def __init__(self, index: int, error: str | None) -> None:
            super().__init__()
            self.index = index
            self.error = error

    def __init__(self, domain: str, *, index: int = 0, seed: int = 42, checkpoint: Path | None = None, run_ref: str | None = None) -> None:
        super().__init__()
        if domain not in DOMAINS:
            raise ValueError(f"domain must be one of {', '.join(DOMAINS)} (got {domain!r})")
        self.domain = domain
        self.index = max(0, index)
        self.seed = seed
        self.checkpoint = checkpoint  # a run's checkpoint: its domain and seed are the run's
        self.run_ref = run_ref
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="sample-title")
        with VerticalScroll(id="sample-scroll"):
            yield Static("drawing…", id="sample-body")
        yield Footer()

    def on_mount(self) -> None:
        self.draw()

    def _title(self) -> str:
        where = f"{self.run_ref} · {self.checkpoint.name}" if self.checkpoint and self.run_ref else self.domain
        return plain(f"Sample graph — {where} — sample {self.index}  (n/p: next/prev, c: domain, esc: close)")

    # ------------------------------------------------------------ drawing

    def draw(self) -> None:
        self.query_one("#sample-title", Static).update(self._title())
        self.query_one("#sample-body", Static).update(Text(f"drawing sample {self.index}…", style="dim"))
        width = max(40, self.size.width - 4) if self.size.width else 76
        self._draw(self.domain, self.index, self.seed, self.checkpoint, width)

    @work(thread=True, exclusive=True, group="sample-draw", exit_on_error=False)
    def _draw(self, domain: str, index: int, seed: int, checkpoint: Path | None, width: int) -> None:
        error = None
        lines: list[str] = []
        try:
            from nsm.data.sample_view import render_sample, sample_view

            if checkpoint is not None:
                from nsm.training.sample_trace import trace_sample

                view = trace_sample(checkpoint, index)
            else:
                view = sample_view(domain, index, seed)
            lines = render_sample(view, width)
        except Exception as exc:  # noqa: BLE001 - a bad checkpoint, a generator failure: one line
            error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        try:
            self.app.call_from_thread(self._drawn, index, lines, error)
        except RuntimeError:
            pass  # the app is shutting down

    def _drawn(self, index: int, lines: list[str], error: str | None) -> None:
        if index != self.index:
            return  # an older draw finishing after the user moved on
        body = self.query_one("#sample-body", Static)
        if error is not None:
            body.update(Text(f"cannot draw sample {index}: {error}", style="bold red"))
        else:
            self.lines = lines
            body.update(styled(lines))
        self.post_message(self.Drawn(index, error))

    # ------------------------------------------------------------ actions

    def action_next(self) -> None:
        self.index += 1
        self.draw()

    def action_previous(self) -> None:
        if self.index == 0:
            self.notify("sample 0 is the first one", severity="warning")
            return
        self.index -= 1
        self.draw()

    def action_cycle_domain(self) -> None:
        if self.checkpoint is not None:
            self.notify(f"the checkpoint is a {self.domain} model: it reads {self.domain} samples only", severity="warning")
            return
        self.domain = DOMAINS[(DOMAINS.index(self.domain) + 1) % len(DOMAINS)]
        self.draw()

    def action_close(self) -> None:
        self.dismiss(None)


def styled(lines: list[str]) -> Text:
    """Section headers (lines that start without a space) bold; the title line highlighted."""
    text = Text()
    for i, line in enumerate(lines):
        if i:
            text.append("\n")
        if i == 0:
            text.append(line, style="bold cyan")
        elif line and not line.startswith(" "):
            text.append(line, style="bold")
        else:
            text.append(line)
    return text


def open_sample_graph(app: Any, domain: Any, seed: Any = None, run: Any = None, checkpoint: str | None = None) -> None:
    """Push the sample graph: traced through `run`'s checkpoint (the one named, else its
    best, else its latest) when it has one, else drawn for `domain` with `seed`."""
    chosen: Path | None = None
    if run is not None:
        try:
            checkpoints = run.checkpoints()
        except Exception:  # noqa: BLE001 - a run deleted meanwhile: draw without it
            checkpoints = []
        if checkpoint is not None:
            chosen = next((c.path for c in checkpoints if c.file == checkpoint), None)
        else:
            best = next((c for c in checkpoints if c.kind == "best"), None)
            latest = run.latest_checkpoint() if best is None and checkpoints else None
            pick = best or latest
            chosen = pick.path if pick is not None else None
        if chosen is not None:
            domain = run.domain
    domain = str(domain or "").strip()
    if domain not in DOMAINS:
        app.notify(f"sample graph: choose a domain first ({', '.join(DOMAINS)}; got {domain!r})", severity="warning")
        return
    try:
        seed_value = int(seed) if seed not in (None, "") else 42
    except (TypeError, ValueError):
        app.notify(f"sample graph: SEED must be a whole number (got {seed!r}); drawing with seed 42", severity="warning")
        seed_value = 42
    app.push_screen(SampleGraphScreen(domain, seed=seed_value, checkpoint=chosen, run_ref=run.ref if chosen is not None else None))
