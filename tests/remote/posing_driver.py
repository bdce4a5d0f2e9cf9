"""Runs every `--backend modal` command in this process against MODAL_SERVER_URL
(a PosingServer) and prints, as JSON, what each one did: exit code, stderr,
seconds. Used by test_remote_posing.py in a child process, so the real `modal`
client, its event loop and the interpreter's shutdown are the real ones.

    python tests/remote/posing_driver.py RUNS_DIR
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TINY = ["--num-graphs", "60", "--batch-size", "8", "--hidden", "16", "--epochs", "2", "--device", "cpu"]

COMMANDS = {
    "train": ["train", "--backend", "modal", "--domain", "planning", "--name", "t-attached", *TINY],
    "train --detach": ["train", "--backend", "modal", "--domain", "all", "--detach", *TINY],
    "sweep": ["sweep", "--backend", "modal", "--domain", "kg", "--grid", "lr=1e-3,3e-4", "--name", "sw", *TINY],
    "resume": ["resume", "posed"],
    "stop": ["stop", "posed"],
    "attach --headless": ["attach", "posed", "--headless"],
    "runs list --remote": ["runs", "list", "--remote"],
    "runs download": ["runs", "download", "posed"],
}


def make_posed_run(runs_dir: Path) -> dict:
    """A Modal run that trained somewhere before: what resume, stop, attach and download act on."""
    from nsm.config import RunConfig
    from nsm.runs import RunStore
    from remote.runs import create_local_run, update_remote_info

    config = RunConfig().replace(domain="planning", epochs=2, num_graphs=60, batch_size=8, hidden=16, device="cpu")
    run = create_local_run(RunStore(runs_dir), config, "posed", "A100-40GB", "detached")
    update_remote_info(run, function_call_id="fc-posed0000000000000000")
    return run.remote_info()


def main() -> int:
    runs_dir = Path(sys.argv[1])
    posed = make_posed_run(runs_dir)
    from tui import cli

    report: dict = {"posed remote.json": posed}
    for label, argv in COMMANDS.items():
        err, out = io.StringIO(), io.StringIO()
        real_err, real_out = sys.stderr, sys.stdout
        sys.stderr, sys.stdout = err, out
        t0 = time.monotonic()
        try:
            code = cli.main([*argv, "--runs-dir", str(runs_dir)])
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            code = f"raised {type(exc).__name__}: {exc}"
        finally:
            sys.stderr, sys.stdout = real_err, real_out
        report[label] = {"code": code, "stderr": err.getvalue(), "seconds": time.monotonic() - t0}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
