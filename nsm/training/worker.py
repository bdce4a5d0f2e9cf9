"""The process a detached run lives in: `python -m nsm.training.worker start|resume RUN_DIR`.

It has its own session (no controlling terminal), so closing the terminal or
losing an ssh link does not reach it. SIGINT/SIGTERM ask for a cooperative
stop (checkpoint, "interrupted" event, exit 0); so does the run's stop-request
file, which works across hosts and shared filesystems too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nsm.training.worker")
    ap.add_argument("action", choices=("start", "resume"))
    ap.add_argument("run_dir")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from nsm.runs.lock import RunLocked, adopt_from_env
    from nsm.runs import Run
    from nsm.signals import stop_on_signals
    from nsm.training.trainer import Trainer

    run = Run(Path(args.run_dir))
    if not run.exists():
        print(f"run directory {args.run_dir} does not exist", file=sys.stderr)
        return 2
    resume_from = None
    if args.action == "resume":
        resume_from = args.checkpoint or _latest(run)
    trainer = Trainer(
        run,
        resume_from=resume_from,
        threads=args.threads,
        backend="process",
        lock=adopt_from_env(run.path),  # the launcher's lock; without one, run() takes its own
    )

    stop_on_signals(trainer.request_stop)
    try:
        outcome = trainer.run()
    except RunLocked as exc:
        print(f"run {run.name}: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"run {run.name}: {outcome}", flush=True)
    return 1 if outcome == "failed" else 0


def _latest(run) -> str | None:  # type: ignore[no-untyped-def]
    ckpt = run.latest_checkpoint()
    return str(ckpt.path) if ckpt is not None else None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
