"""How fast does the dashboard show a long run, and how closely does it follow a live one?

Drives the real `nsm-tui attach NAME` in a pseudo-terminal (80×24, as over ssh;
the pty helpers are bench/tui.py's) and prints:

1. attach to a finished 100,000-event run (a realistic log: progress at 4/s,
   gpu samples, evals, checkpoints; ~18 MB): time from process start to the
   first FULL frame — the terminal output has shown "Epoch 100/100", the status
   word "finished" and the run's last log line ("finished (completed) after 100
   epochs") — and the process's RSS (VmRSS) at that moment.
                                                  targets <= 1.0 s, <= 200 MB
2. following a live run (process.json names this bench, so the run reads as
   running): epoch_end events are appended at ~5/s; the lag from each write to
   the output that paints its "Epoch N/M" in the progress panel, p50 / p95.
                                                  target p95 <= 0.5 s

    .venv/bin/python bench/attach.py [--events 100000] [--starts 3] [--follow 50]

Prints PASS/FAIL per target; always exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "tui"))  # the long-run log generator of the tests


def _bench_tui():
    # bench/tui.py shares its name with the `tui` package: load it under another name.
    spec = importlib.util.spec_from_file_location("bench_tui", ROOT / "bench" / "tui.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


bt = _bench_tui()
PtyApp, env_for, p95 = bt.PtyApp, bt.env_for, bt.p95

from long_runs import write_long_run

from nsm.runs import Run

FIRST_FRAME_S = 1.0
RSS_MB = 200.0
FOLLOW_P95_S = 0.5


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def quit_app(app: PtyApp) -> None:
    app.send(b"\x11")  # ctrl+q
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if os.waitpid(app.pid, os.WNOHANG)[0] != 0:
                return
        except ChildProcessError:
            return
        time.sleep(0.05)


class TimedPtyApp(PtyApp):
    """bench/tui.py's PtyApp, which notes when each chunk of output arrived."""

    def arrival(self, pattern: bytes) -> float | None:
        """When the first occurrence of `pattern` arrived (None if it never did)."""
        found = self.painted(b"()" + re.escape(pattern), numbered=False)
        return found[0][1] if found else None

    def painted(self, pattern: bytes, numbered: bool = True) -> list[tuple[int, float]]:
        """(the number in the first group, arrival time) for every match of `pattern` in the output."""
        import bisect

        with self.cond:
            output, chunks = bytes(self.output), list(self.chunks)
        ends = [end for end, _ in chunks]
        out = []
        for m in re.finditer(pattern, output):
            i = bisect.bisect_left(ends, m.end())
            if i < len(chunks):
                out.append((int(m.group(1)) if numbered else 0, chunks[i][1]))
        return out


def measure_attach(tmp: Path, events: int, starts: int) -> list[tuple[float, float | None, float]]:
    root = tmp / f"attach-{events}"
    t = time.monotonic()
    write_long_run(root, "long-run", events=events, epochs=100, outcome="finished")
    size = (root / "planning" / "long-run" / "events.jsonl").stat().st_size
    print(f"   (wrote {events:,} events, {size / 1e6:.1f} MB, in {time.monotonic() - t:.1f} s)")
    results = []
    for i in range(starts):
        app = TimedPtyApp(["attach", "long-run"], env_for(root, tmp / f"cfg-attach-{events}-{i}", None))
        try:
            # The full history is on screen: the last epoch, the terminal status and the run's
            # last log line (the status word alone shows "finished" from the first frame on).
            full = (b"Epoch 100/100", b"finished", b"after 100 epochs")
            for pattern in full:
                app.wait_for(pattern, timeout=60)
            rss = rss_mb(app.pid)
            first = app.arrival(b"planning/long-run")
            done = max(app.arrival(p) for p in full)
            results.append((done - app.started, rss, (first or done) - app.started))
            quit_app(app)
        finally:
            app.close()
    return results


def measure_follow(tmp: Path, n: int, rate: float) -> list[float]:
    """epoch_end events written on a fixed schedule (never waiting for the screen, which would
    line every write up just after a repaint); each one's lag is the time until the first
    painted "Epoch K/M" with K >= its epoch (a repaint may show two new epochs at once)."""
    root = tmp / "follow"
    history = 5
    epochs = history + n + 10
    run: Run = write_long_run(root, "live-run", events=5_000, epochs=epochs, outcome=None, epochs_done=history)
    run.write_process_info(os.getpid(), "process", "bench/attach.py writer", log=None)
    app = TimedPtyApp(["attach", "live-run"], env_for(root, tmp / "cfg-follow", None))
    written: list[tuple[int, float]] = []
    try:
        app.wait_for(f"Epoch {history}/{epochs}".encode(), timeout=60)
        app.wait_for(b"running", timeout=30)
        time.sleep(1.0)  # let the first frame's throttled chart repaints settle
        with run.event_writer() as writer:
            next_at = time.monotonic()
            for e in range(history + 1, history + n + 1):
                next_at += 1.0 / rate * random.uniform(0.8, 1.2)
                time.sleep(max(0.0, next_at - time.monotonic()))
                writer.emit(
                    "epoch_end", epoch=e, loss=0.3, task_loss=0.28, cycle_loss=0.02, acc=0.8, grad_norm=1.0,
                    lr=1e-3, epoch_time_s=0.2, graphs_per_s=400.0, gpu_peak_mem_mb=None, elapsed_s=0.2 * e,
                    eta_s=0.2 * (epochs - e),
                )  # fmt: skip
                written.append((e, time.monotonic()))
        app.wait_for(f"Epoch {history + n}/{epochs}".encode(), timeout=10)
        quit_app(app)  # the dialog asks (the run "runs"); the pty is killed below anyway
    finally:
        app.close()
    painted = app.painted(rb"Epoch (\d+)/" + str(epochs).encode())
    lags = []
    for e, t in written:
        shown = [seen for k, seen in painted if k >= e and seen >= t]
        if shown:
            lags.append(min(shown) - t)
    skipped = len({e for e, _ in written} - {k for k, _ in painted})
    print(f"   ({len(painted)} repaints of the epoch seen; {skipped} of {len(written)} epochs never shown on their own)")
    return lags


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--follow", type=int, default=50, help="epoch_end events to time while following")
    ap.add_argument("--rate", type=float, default=5.0, help="events per second while following")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nsm-bench-attach-"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {cores} cores; pty 80x24; store {tmp}")
    try:
        print(f"1. attach to a finished {args.events:,}-event run")
        results = measure_attach(tmp, args.events, args.starts)
        for i, (s, rss, first) in enumerate(results, 1):
            print(f"   start {i}: first frame {first:.2f} s, first full frame {s:.2f} s, RSS {rss or float('nan'):.0f} MB")
        frame = statistics.median(s for s, _, _ in results)
        rss = max((r for _, r, _ in results if r is not None), default=float("nan"))
        print(
            f"attach {args.events // 1000}k events: first full frame {frame:.2f} s (median of {len(results)}), "
            f"RSS {rss:.0f} MB (max)  (targets {FIRST_FRAME_S:g} s, {RSS_MB:.0f} MB)  "
            f"frame {verdict(frame <= FIRST_FRAME_S)}, RSS {verdict(rss <= RSS_MB)}"
        )
        base = measure_attach(tmp, 1_000, args.starts)
        print(
            f"   for comparison, the same 100 epochs in 1,000 events: first full frame "
            f"{statistics.median(s for s, _, _ in base):.2f} s (median), RSS {max(r or 0 for _, r, _ in base):.0f} MB "
            "(start-up and first paint; one slice of history)"
        )
        print(f"2. follow a live run: {args.follow} epoch_end events at ~{args.rate:g}/s")
        lags = measure_follow(tmp, args.follow, args.rate)
        print(
            f"follow: write -> paint lag p50 {1000 * statistics.median(lags):.0f} ms, p95 {1000 * p95(lags):.0f} ms, "
            f"max {1000 * max(lags):.0f} ms over {len(lags)} events  (target p95 {1000 * FOLLOW_P95_S:.0f} ms)  "
            f"{verdict(p95(lags) <= FOLLOW_P95_S)}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
