"""The real app on the evaluation screen of a finished planning run's best_model.pt,
showing a saved evaluation, for the 80×24 snapshot.

Built, never run, here, and without torch: the run is hand-written
(tests/tui/analysis_fixtures.py write_run, a stand-in checkpoint file) and the saved
evaluation (evaluation_best_model.json) is prepared by hand with a fixed
`evaluated_at`, newer than the checkpoint, so the screen reuses it instead of
evaluating. Times are shown in UTC and the store lives at a fixed path of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis_fixtures import analysis_app, set_mtime, write_run  # noqa: E402

from nsm.runs import Run, RunStore  # noqa: E402
from tui import local_gpu  # noqa: E402
from tui.app import NSMApp  # noqa: E402

# The same machine everywhere: no NVIDIA driver.
local_gpu.set_answer(local_gpu.LocalGpu(False, "no NVIDIA driver"))

ROOT = Path("/tmp/nsm-tui-snapshot-evaluation")
STARTED = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
EVALUATED_AT = STARTED + 3600  # 2023-11-14 23:13 UTC

SAVED_EVALUATION = {
    "checkpoint": "best_model.pt",
    "epoch": 8,
    "step": 0,
    "split": "test",
    "count": 300,
    "acc": 0.8467,
    "loss": 0.3712,
    "task_loss": 0.3521,
    "cycle_loss": 0.1907,
    "confusion": [[128, 22], [24, 126]],
    "per_class": {
        "negative": {"precision": 0.8421, "recall": 0.8533, "f1": 0.8477, "support": 150},
        "positive": {"precision": 0.8514, "recall": 0.84, "f1": 0.8456, "support": 150},
    },
    "macro_f1": 0.8467,
    "confidence": {
        "edges": [0.5 + i * 0.05 for i in range(11)],
        "correct": [6, 9, 14, 18, 22, 27, 31, 36, 40, 51],
        "wrong": [9, 8, 7, 6, 5, 4, 3, 2, 1, 1],
    },
    "per_subtype": {
        "valid": {"acc": 0.9133, "count": 150},
        "order_violation": {"acc": 0.82, "count": 50},
        "missing_capability": {"acc": 0.76, "count": 50},
        "unachieved_leaf": {"acc": 0.58, "count": 50},
    },
    # The out-of-distribution splits, as the engine saves them beside test (abridged).
    "ood": {
        "ood_steps_11_20": {
            "count": 300, "acc": 0.7433, "loss": 0.5481, "task_loss": 0.5302, "cycle_loss": 0.179,
            "per_subtype": {"valid": {"acc": 0.86, "count": 150}, "order_violation": {"acc": 0.64, "count": 50},
                            "missing_capability": {"acc": 0.7, "count": 50}, "unachieved_leaf": {"acc": 0.5, "count": 50}},
        },
        "ood_steps_21_40": {
            "count": 300, "acc": 0.6167, "loss": 0.7902, "task_loss": 0.7711, "cycle_loss": 0.191,
            "per_subtype": {"valid": {"acc": 0.8, "count": 150}, "order_violation": {"acc": 0.42, "count": 50},
                            "missing_capability": {"acc": 0.5, "count": 50}, "unachieved_leaf": {"acc": 0.38, "count": 50}},
        },
    },  # fmt: skip
    "baselines": {"majority": {"test_acc": 0.5}, "structure_blind": {"test_acc": 0.5633}},
    "eval_time_s": 1.234,
    "evaluated_at": EVALUATED_AT,
}


def write_saved_evaluation(run: Run) -> None:
    checkpoint = run.path / "best_model.pt"
    set_mtime(checkpoint, STARTED + 60)
    path = run.evaluation_path("best_model.pt")
    path.write_text(json.dumps(SAVED_EVALUATION, indent=2))
    set_mtime(path, EVALUATED_AT)


def build_evaluation_app() -> NSMApp:
    os.environ["TZ"] = "UTC"
    time.tzset()
    shutil.rmtree(ROOT, ignore_errors=True)
    store = RunStore(ROOT / "runs")
    run = write_run(store, "plan-eval", domain="planning", epochs=10, seed=4, loss_scale=0.7, best_acc=0.87, started=STARTED)
    write_saved_evaluation(run)
    return analysis_app(store.root, settings_dir=ROOT / "settings")


def evaluation_run(app: NSMApp) -> Run:
    return app.context.store.get("plan-eval")  # type: ignore[attr-defined]


app = build_evaluation_app()
