"""What an attached run shows in a shell: Rich progress on a terminal, lines when piped."""

from __future__ import annotations

import sys
from typing import Any

from nsm.execution.render import render_text
from nsm.runs import Run
from tui.cli.console import fmt, is_tty, lit, plain, print_json, say


class ProgressView:
    """Rich progress (whole-run ETA, batches of the epoch) on a terminal; lines when piped."""

    def __init__(self, name: str, quiet: bool = False):
        self.name = name
        self.quiet = quiet
        self.tty = is_tty() and not quiet
        self.progress: Any = None
        self.total_steps = 0
        self.steps = 0

    def __enter__(self) -> "ProgressView":
        if self.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self.progress.start()
            self.run_task = self.progress.add_task(f"run {lit(self.name)}", total=None, info="")
            self.epoch_task = self.progress.add_task("epoch", total=None, info="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"[yellow]{lit(text)}[/]")
        elif not self.quiet:
            print(plain(text), flush=True)

    def on_event(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        if kind in ("run_started", "resumed"):
            config = e.get("config") if isinstance(e.get("config"), dict) else {}
            self.epochs = config.get("epochs") or e.get("epochs") or getattr(self, "epochs", 0)
        elif kind == "progress" and self.progress is not None:
            total = e["steps"] * getattr(self, "epochs", 0) or None
            done = (e["epoch"] - 1) * e["steps"] + e["step"]
            self.progress.update(self.run_task, total=total, completed=done, info=f"{fmt(e.get('graphs_per_s'), 0)} graphs/s")
            self.progress.update(
                self.epoch_task, description=f"epoch {e['epoch']}", total=e["steps"], completed=e["step"], info=f"loss {fmt(e.get('loss'))}"
            )
        # Every viewer prints the same lines for the same event (nsm.execution.render).
        for text in render_text(e):
            self.line(text)

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.progress is not None:
            self.progress.console.print(plain(text), highlight=False, markup=False)
        else:
            print(plain(text), flush=True)

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
        elif outcome == "interrupted":
            say(f"resume with: nsm-tui resume {lit(run.name)}")
        sys.stdout.flush()
