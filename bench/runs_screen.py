"""How long does the runs screen take to open on a store of 200 runs?

Writes 200 prepared runs (100 epochs each, with progress, gpu, eval and
checkpoint events shaped like the engine's; most finished, some interrupted,
failed or stale) into a temp store, then drives the real app headless at
80x24 and measures from the F2 key press to the runs table populated with
every run:

  cold        first open in a fresh app, every cache empty: the screen reads
              and summarises all 200 logs while Textual builds the screen
  prefetched  first open in a fresh app after `prefetch_runs` (a background
              read the app can start at launch) has finished
  re-open     F1 then F2 again: the screen exists, the listing is re-read
              through the per-file caches (one stat per unchanged file)

Each scenario also reports the CPU time of the whole process (every thread)
during the open: on a busy machine wall time grows, CPU time much less.
Target: <= 1.0 s wall.

    python bench/runs_screen.py [--runs 200] [--epochs 100] [--repeat 3] [--store DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "tui"))
sys.path.insert(0, str(ROOT))  # before bench/ itself, which may hold modules named like packages

from analysis_fixtures import write_large_store  # noqa: E402


async def measure(store_root: Path, expected: int, size: tuple[int, int], prefetch: bool) -> dict[str, tuple[float, float]]:
    """{scenario: (wall s, cpu s)} for one fresh app."""
    import nsm.runs.cache as cache_mod
    from tui.app import create_app
    from tui.screens import runs as runs_mod

    cache_mod.CACHE.__init__()  # empty the process-wide caches: nothing read before
    runs_mod._SIZE_CACHE.clear()

    listed = asyncio.Event()

    def hook(message: object) -> None:
        if isinstance(message, runs_mod.RunsScreen.RunsListed) and message.total >= expected:
            listed.set()

    async def open_screen(pilot: object) -> tuple[float, float]:
        listed.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        await pilot.press("f2")  # type: ignore[attr-defined]
        await listed.wait()
        return time.perf_counter() - t0, time.process_time() - c0

    out: dict[str, tuple[float, float]] = {}
    app = create_app(store_root)
    async with app.run_test(size=size, message_hook=hook) as pilot:
        await pilot.pause()
        if prefetch:
            await asyncio.to_thread(runs_mod.prefetch_runs(app.context.store).join)
        out["prefetched" if prefetch else "cold"] = await open_screen(pilot)
        table = app.screen.query_one("#runs-table")
        assert table.row_count == expected, f"table shows {table.row_count} of {expected} runs"
        await pilot.press("f1")
        await pilot.pause()
        out["re-open"] = await open_screen(pilot)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", default=None, help="reuse (or create) this store instead of a temp one")
    parser.add_argument("--size", default="80x24", help="terminal size WxH (default 80x24)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory(prefix="nsm-bench-runs-") as tmp:
        os.environ.setdefault("NSM_CONFIG_DIR", str(Path(tmp) / "config"))
        root = Path(args.store) if args.store else Path(tmp) / "runs"
        if not root.exists() or not any(root.iterdir()):
            t0 = time.perf_counter()
            write_large_store(root, runs=args.runs, epochs=args.epochs)
            print(f"wrote {args.runs} runs x {args.epochs} epochs into {root} in {time.perf_counter() - t0:.1f} s")
        size_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
        print(f"store: {size_mb:.1f} MB of run files; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        results: dict[str, list[tuple[float, float]]] = {}
        for i in range(args.repeat):
            for prefetch in (False, True):
                for name, value in asyncio.run(measure(root, args.runs, (width, height), prefetch)).items():
                    results.setdefault(name, []).append(value)
        print(f"runs screen, {args.runs} runs, {width}x{height}, {args.repeat} tries (F2 press -> table populated):")
        for name in ("cold", "prefetched", "re-open"):
            walls = [w for w, _ in results[name]]
            cpus = [c for _, c in results[name]]
            print(
                f"  {name:10s} wall median {statistics.median(walls) * 1000:5.0f} ms (max {max(walls) * 1000:5.0f})"
                f"   cpu median {statistics.median(cpus) * 1000:5.0f} ms"
            )
        worst = max(w for w, _ in results["cold"])
        print(f"target <= 1000 ms: cold worst {worst * 1000:.0f} ms -> {'ok' if worst <= 1.0 else 'OVER'}")
        return 0 if worst <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
