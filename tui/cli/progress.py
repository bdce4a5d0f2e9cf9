"""What an attached run shows in a shell: Rich progress on a terminal, lines when piped.

Every line carries the same clock as the dashboard's log: the time since the run
started ("+1m05s"), said once at the top. The bars show the engine's own whole-run
ETA and speed, rounded (graphs/s as a whole number, durations as 1m05s). At ctrl+c
the bars are taken down once, from a helper thread (a signal handler must not wait
on Rich's locks), and what follows are plain lines: the stop, its checkpoint, the end.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from nsm.execution.render import CLOCK_NOTE, elapsed_stamp, fmt_duration, fmt_num, integer, number, render_text
from nsm.runs import Run
from nsm.runs.compare import ood_label
from tui.cli.console import is_tty, lit, plain, print_json, say


def rate_text(graphs_per_s: Any) -> str:
    """Training speed as a whole number of graphs a second ("- graphs/s" when unknown)."""
    v = number(graphs_per_s)
    return f"{v:,.0f} graphs/s" if v is not None else "- graphs/s"


def dataset_line(config: dict[str, Any]) -> str | None:
    """What the engine does before its first event: make (or read) the run's dataset.
    None when the config does not say which."""
    domain, graphs = config.get("domain"), integer(config.get("num_graphs"))
    if not isinstance(domain, str) or graphs is None:
        return None
    cached = _dataset_cached(domain, graphs, integer(config.get("seed")))
    if cached is None:
        return f"preparing the {domain} dataset: {graphs:,} graphs…"
    return f"reading the {domain} dataset from the cache: {graphs:,} graphs…" if cached else f"generating the {domain} dataset: {graphs:,} graphs…"


def _dataset_cached(domain: str, graphs: int, seed: int | None) -> bool | None:
    # The same key load_dataset uses; any doubt (no torch here, another version) says neither.
    try:
        from nsm.data.base import make_domain, params_key
        from nsm.data.cache import cache_path, default_cache_dir

        if seed is None:
            return None
        return cache_path(default_cache_dir(), domain, params_key(make_domain(domain), graphs, seed)).exists()
    except Exception:
        return None


class ProgressView:
    """Rich progress (whole-run ETA, batches of the epoch) on a terminal; lines when piped."""

    def __init__(self, name: str, quiet: bool = False, *, stream: Any = None, tty: bool | None = None):
        self.name = name
        self.quiet = quiet
        self.stream = stream  # None: sys.stdout at the time of writing (tests hand a buffer)
        self.tty = (is_tty() if tty is None else tty) and not quiet
        self.progress: Any = None
        self.console: Any = None
        self.epochs = 0
        self.t0: float | None = None  # when the run first started: every line's clock
        self._clock_said = False
        self._preparing = False
        # The bars and the lines printed around them. Re-entrant: a signal handler runs
        # on the main thread, maybe while that thread holds it.
        self._bars = threading.RLock()
        self._stopped_bars = False
        self._stopper: threading.Thread | None = None

    # ------------------------------------------------------------ lifetime
    def __enter__(self) -> "ProgressView":
        if self.tty:
            from rich.console import Console

            if self.stream is not None:  # a test's buffer, drawn as a terminal would be
                self.console = Console(file=self.stream, force_terminal=True, width=80, highlight=False)
            else:
                self.console = Console(highlight=False)
            # Three columns short of the edge: the "^C" a terminal echoes at ctrl+c then ends
            # a bar's line instead of wrapping it, and taking the bars down erases all of them.
            self.console.width = max(20, self.console.width - 3)
        return self

    def _bars_up(self) -> bool:
        """The bars, from the first progress event on (none while the dataset is made,
        none again once a stop took them down). Call with `_bars` held."""
        if self.progress is not None:
            return True
        if self.console is None or self._stopped_bars:
            return False
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.table import Column

        # transient: the bars leave the screen when they end; the lines above them stay.
        self.progress = Progress(
            TextColumn("{task.description}", table_column=Column(max_width=20, no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=None),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}", table_column=Column(no_wrap=True, overflow="ellipsis")),
            console=self.console,
            transient=True,
            expand=True,
        )
        self.progress.start()
        self.run_task = self.progress.add_task(f"run {lit(self.name)}", total=None, info="")
        self.epoch_task = self.progress.add_task("epoch", total=None, info="")
        return True

    def __exit__(self, *exc: object) -> None:
        if self._stopper is not None:
            self._stopper.join(timeout=10)  # its line comes before whatever follows the view
        self._take_down_bars()

    def _take_down_bars(self) -> None:
        with self._bars:
            if self.progress is not None:
                self.progress.stop()
                self.progress = None
            self._stopped_bars = True

    # -------------------------------------------------------------- writing
    def _write(self, text: str, style: str = "") -> None:
        if self.quiet:
            return
        if self.console is not None:
            # While the bars are up, Rich prints above them; after, it is a plain console.
            target = self.progress.console if self.progress is not None else self.console
            target.print(plain(text), style=style or None, highlight=False, markup=False)
        else:
            print(plain(text), file=self.stream or sys.stdout, flush=True)

    def note(self, text: str) -> None:
        with self._bars:
            self._write(text, "yellow")

    def stopping(self, text: str) -> None:
        """ctrl+c asked the run to stop: called from a signal handler. The bars come
        down once and `text` follows; a thread does it, so the handler never waits."""
        def finish() -> None:
            self._take_down_bars()
            with self._bars:
                self._write(text, "yellow")

        if self.progress is None:
            finish()
            return
        self._stopper = threading.Thread(target=finish, name="progress-stop", daemon=True)
        self._stopper.start()

    def preparing(self, config: dict[str, Any]) -> None:
        """Before the engine's first event (a run starting, or resuming, loads its data)."""
        text = dataset_line(config)
        if text is not None:
            self._preparing = True
            self.line(text)

    # --------------------------------------------------------------- events
    def on_event(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        t = number(e.get("t"))
        if kind in ("run_started", "resumed"):
            config = e.get("config") if isinstance(e.get("config"), dict) else {}
            self.epochs = integer(config.get("epochs")) or integer(e.get("epochs")) or self.epochs
            if self.t0 is None and t is not None and kind == "run_started":
                self.t0 = t
            if self._preparing:
                self._preparing = False
                data = e.get("dataset") if isinstance(e.get("dataset"), dict) else {}
                took = number(data.get("data_time_s"))
                self.line("dataset ready" + (f" in {_seconds(took)}" if took is not None else ""))
        elif kind == "progress":
            self._show_progress(e)
        # Every viewer prints the same lines for the same event (nsm.execution.render).
        for text in render_text(e):
            self.line(self._stamp(t) + text)

    def _show_progress(self, e: dict[str, Any]) -> None:
        steps, epoch, step = integer(e.get("steps")), integer(e.get("epoch")), integer(e.get("step"))
        if not steps or epoch is None or step is None:
            return
        total = steps * self.epochs or None
        done = (epoch - 1) * steps + step
        eta = number(e.get("eta_s"))
        info = f"{rate_text(e.get('graphs_per_s'))} · {fmt_duration(e.get('elapsed_s'))} · ETA {fmt_duration(eta) if eta is not None else '-'}"
        with self._bars:
            if not self._bars_up():
                return  # piped, or after a stop: lines only
            self.progress.update(self.run_task, total=total, completed=done, info=info)
            self.progress.update(self.epoch_task, description=f"epoch {epoch}", total=steps, completed=step, info=f"loss {fmt_num(e.get('loss'))}")

    def _stamp(self, t: float | None) -> str:
        if self.t0 is None or t is None:
            return ""
        if not self._clock_said:
            self._clock_said = True
            self.line(f"({CLOCK_NOTE})")
        return elapsed_stamp(t, self.t0) + " "

    def start_clock(self, t0: float | None) -> None:
        """The run's first start, for a viewer that joins after it (a resume, an attach)."""
        if t0 is not None:
            self.t0 = t0

    def line(self, text: str) -> None:
        with self._bars:
            self._write(text)

    # -------------------------------------------------------------- the end
    def summary(self, run: Run, outcome: str, json_out: bool) -> None:
        results = run.results() if outcome == "finished" else None
        if json_out:
            print_json({"run": run.name, "outcome": outcome, "results": results, "path": str(run.path)})
            return
        if results:
            test = results["test"]
            b = results["baselines"]
            say(
                f"[bold]{lit(run.name)}[/] finished: test accuracy [bold]{test['acc']:.3f}[/] "
                f"(majority {b['majority']['test_acc']:.3f}, structure-blind {b['structure_blind']['test_acc']:.3f}), "
                f"best epoch {results['best_epoch']}"
            )
            ood = {name: r for name, r in (results.get("ood") or {}).items() if isinstance(r, dict) and r.get("acc") is not None}
            if ood:
                say("out of distribution: " + ", ".join(f"{lit(ood_label(name))} [bold]{r['acc']:.3f}[/]" for name, r in ood.items()))
        elif outcome == "interrupted":
            say(f"resume with: nsm-tui resume {lit(run.name)}")
        sys.stdout.flush()


def _seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 60 else fmt_duration(s)
