"""The detached mirror of a Modal run: `python -m remote.mirror_process RUN_DIR`.

It follows the remote run (stream, queue, then the volume's log) and appends every
event to the local run's events.jsonl until the run ends.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nsm.runs import Run
from remote.errors import ModalError
from remote.follow import RunFollower


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m remote.mirror_process", description="mirror a Modal run into the local store")
    ap.add_argument("run_dir")
    args = ap.parse_args(argv)
    run = Run(Path(args.run_dir))
    if not run.exists():
        print(f"run directory {args.run_dir} does not exist", file=sys.stderr)
        return 2

    def note(text: str) -> None:
        print(time.strftime("%Y-%m-%d %H:%M:%S"), text, flush=True)

    try:
        result = RunFollower(run, on_note=note).follow()
    except ModalError as exc:
        note(f"error: {exc}")
        return 1
    note(f"run {run.name}: {result.outcome}" + (f" ({result.error})" if result.error else ""))
    # unknown (Modal did not answer within NSM_MODAL_RECONNECT_S) and lost are not a clean end either.
    return 0 if result.outcome in ("finished", "interrupted", "superseded") else 1


if __name__ == "__main__":
    sys.exit(main())
