"""`nsm-tui top`: the live overview (F6) in the terminal: every run that trains now.

Once by default (for scripts and `watch`); `--watch S` reprints every S seconds
until ctrl+c. `--json` prints the rows as data.
"""

from __future__ import annotations

import argparse
import time

from nsm.runs import live_overview as lo
from tui.cli.common import open_store
from tui.cli.console import CliError, lit, print_json, print_table, say


def add_top_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from tui.cli.flags import add_runs_dir

    p = sub.add_parser("top", help="every run that trains now: local, detached, Modal, sweep points")
    p.add_argument("--watch", type=float, default=None, metavar="S", help="print again every S seconds (ctrl+c ends)")
    p.add_argument("--json", action="store_true")
    add_runs_dir(p)


def cmd_top(args: argparse.Namespace) -> int:
    store = open_store(args)
    watch = args.watch
    if watch is not None and not (0.2 <= watch <= 3600):
        raise CliError(f"--watch must be between 0.2 and 3600 seconds (got {watch:g})")
    collector = lo.LiveCollector(store)
    while True:
        now = time.time()
        rows = collector.collect(now=now)
        if args.json:
            print_json([r.to_dict(now) for r in rows])
        elif not rows:
            say(f"nothing trains now in {store.root}")
        else:
            print_table(f"{len(rows)} training in {store.root}", list(lo.COLUMNS), lo.table_rows(rows, now))
            for row in rows:
                if row.note:
                    say(f"[dim]{lit(row.ref)}: {lit(row.note)}[/]")
        if watch is None:
            return 0
        time.sleep(watch)
