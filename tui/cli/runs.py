"""`nsm-tui runs list|show|delete`, `eval` and `export`: the run store from a shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nsm.runs import RunStoreError
from nsm.runs.hardware import config_for_display, gpu_used
from tui.cli.common import get_run, open_store, size_text as _size, when_text as _when
from tui.cli.console import CliError, fmt, lit, plain, print_json, print_kv, print_table, say
from tui.columns import Column


# What an 80-column terminal keeps: the run and how it did on validation first; the
# start time and the test score (which a run is never chosen by) go first; the domain
# stays, as fresh run names (`1201-2044-6a7d`) no longer repeat it.
RUNS_LIST_COLUMNS = [
    Column("domain", priority=87),
    Column("run", keep=True),
    Column("status", priority=90),
    Column("epochs", priority=60, short="ep"),
    Column("best val acc", priority=80, short="val acc", numeric=True),
    Column("best val loss", priority=85, short="val loss", numeric=True),
    Column("test acc", priority=40, short="test", numeric=True),
    Column("started", priority=30),
]


def runs_list_columns(splits: list[str]) -> list[Column]:
    """RUNS_LIST_COLUMNS, with one column per OOD split after test acc ("OOD 11-20",
    short "11-20"): read, never chosen by, the first to go at 80 columns."""
    from nsm.runs.compare import ood_label

    at = next(i for i, c in enumerate(RUNS_LIST_COLUMNS) if c.label == "test acc") + 1
    ood = [Column(ood_label(s), priority=10, short=ood_label(s, short=True), numeric=True) for s in splits]
    return [*RUNS_LIST_COLUMNS[:at], *ood, *RUNS_LIST_COLUMNS[at:]]


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    from tui.cli.records import chosen_format, run_columns, run_rows, summary_ood_acc, write_records

    fmt = chosen_format(args)
    runs = store.list_runs(args.domain)
    if fmt != "table":
        write_records(run_columns(runs), run_rows(runs), fmt)
        return 0
    if not runs:
        say(f"no runs in {lit(store.root)}" + (f" for domain {lit(args.domain)}" if args.domain else ""))
        return 0
    listed = sorted(runs, key=lambda r: (r.domain, -r.sort_time))
    ood = {r.ref: summary_ood_acc(r) for r in listed}
    splits: list[str] = []  # first seen (in the listed order) first
    for accs in ood.values():
        splits += [name for name in accs if name not in splits]
    rows = [
        (
            r.domain,
            r.name,
            r.status + (" !" if r.problem else ""),
            f"{r.epoch}/{r.epochs if r.epochs is not None else '?'}",
            r.best_val_acc,
            r.best_val_loss,
            r.state.test_acc,
            *(ood[r.ref].get(s) for s in splits),
            _when(r.started),
        )
        for r in listed
    ]
    print_table(f"runs in {store.root}", runs_list_columns(splits), rows)
    problems = [r for r in runs if r.problem]
    for r in problems:
        print(plain(f"  ! {r.ref}: {r.problem}"), file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = open_store(args)
    run = get_run(store, args.run)
    state = run.state()
    try:
        config = run.config()
    except RunStoreError as exc:
        config = {"error": str(exc)}
    checkpoints = run.checkpoints()
    results = run.results()
    if args.json:
        print_json(
            {
                "run": run.name,
                "domain": run.domain,
                "path": str(run.path),
                "status": run.status(),
                "state": state.__dict__,
                "config": config,
                "gpu": gpu_used(run, config),
                "checkpoints": [
                    {"file": c.file, "epoch": c.epoch, "step": c.step, "kind": c.kind, "size": c.size, "mtime": c.mtime, "metrics": c.metrics}
                    for c in checkpoints
                ],
                "results": results,
            }
        )
        return 0
    print_kv(
        f"run {run.ref}",
        [
            ("path", str(run.path)),
            ("status", run.status()),
            ("epochs", f"{state.epoch}/{state.epochs if state.epochs is not None else '?'}"),
            ("best epoch", state.best_epoch),
            ("best val loss", state.best_val_loss),
            ("best val acc", state.best_val_acc),
            ("test acc", state.test_acc),
            ("started", _when(state.started)),
            ("ended", _when(state.finished)),
            ("error", state.error),
            ("disk", _size(run.disk_size())),
            ("GPU", gpu_used(run, config) or "none (CPU)"),
            ("torch threads", state.threads),  # of the latest attempt: another count gives other numbers
        ],
    )
    print_kv("config", sorted((k, v) for k, v in config_for_display(config).items()))
    if checkpoints:
        print_table(
            "checkpoints",
            ["file", "kind", "epoch", "step", "val loss", "val acc", "size", "written"],
            [
                (c.file, c.kind, c.epoch, c.step, c.metrics.get("val_loss"), c.metrics.get("val_acc"), _size(c.size), _when(c.mtime))
                for c in checkpoints
            ],
        )
    if results:
        _print_eval(results["test"], results.get("baselines", {}), title="test (best model)")
        _print_ood({**results["test"], "ood": results.get("ood")})
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    store = open_store(args)
    run = get_run(store, args.run)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError(f"refusing to delete {run.ref} without confirmation: add --yes")
        answer = input(plain(f"delete {run.ref} ({run.path})? [y/N] ")).strip().lower()
        if answer not in ("y", "yes"):
            say("kept")
            return 1
    try:
        store.delete(run.ref, force=args.force)
    except RunStoreError as exc:
        raise CliError(str(exc)) from None
    say(f"deleted {lit(run.ref)}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from nsm.training.checkpoint import CheckpointError
    from nsm.training.evaluation import evaluate_checkpoint

    store = open_store(args)
    run = get_run(store, args.run)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CliError("--device: cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    split = getattr(args, "split", None) or "test"
    try:
        result = evaluate_checkpoint(run, args.checkpoint, split=split, device=args.device)
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:  # a split the dataset does not have: the message lists those it has
        raise CliError(f"--split: {exc}") from None
    if args.json:
        print_json({"run": run.name, **result})
        return 0
    title = f"{run.ref} · {result['checkpoint']} (epoch {result.get('epoch')}) on {split}"
    # The baselines were scored on the test split: beside another split they would mislead.
    _print_eval(result, result.get("baselines", {}) if split == "test" else {}, title=title)
    if split == "test":
        _print_ood(result)
    if result.get("reused"):
        say("[dim](saved evaluation reused: the checkpoint has not changed)[/]")
    return 0


def _print_eval(test: dict[str, Any], baselines: dict[str, Any], title: str) -> None:
    rows = [("model", test.get("acc"), test.get("loss"), test.get("macro_f1"))]
    for key, label in (("majority", "majority class"), ("structure_blind", "structure-blind")):
        if key in baselines:
            rows.append((label, baselines[key].get("test_acc"), None, None))
    print_table(title, ["", "accuracy", "loss", "macro F1"], rows)
    confusion = test.get("confusion")
    if confusion:
        print_table(
            "confusion (rows: true, columns: predicted)",
            ["", "pred negative", "pred positive"],
            [("true negative", *confusion[0]), ("true positive", *confusion[1])],
        )
    per_class = test.get("per_class") or {}
    if per_class:
        print_table(
            "per class",
            ["class", "precision", "recall", "f1", "support"],
            [(name, v["precision"], v["recall"], v["f1"], v["support"]) for name, v in per_class.items()],
        )
    conf = test.get("confidence")
    if conf:
        edges = conf["edges"]
        print_table(
            "prediction confidence",
            ["bin", "correct", "wrong"],
            [(f"{edges[i]:.2f}-{edges[i + 1]:.2f}", c, w) for i, (c, w) in enumerate(zip(conf["correct"], conf["wrong"]))],
        )
    per_subtype = test.get("per_subtype") or {}
    if per_subtype:
        print_table("per subtype", ["subtype", "accuracy", "count"], [(k, v["acc"], v["count"]) for k, v in per_subtype.items()])


def _print_ood(result: dict[str, Any]) -> None:
    """Test and each out-of-distribution split side by side (nothing for a run made before them)."""
    from nsm.runs.compare import ood_rows

    rows = ood_rows(result)
    if not rows:
        say("[dim]out-of-distribution splits: none in this evaluation (evaluate again to add them)[/]")
        return
    print_table(
        "test beside the out-of-distribution splits",
        ["split", "graphs", "accuracy", "loss", "worst subtype"],
        [(r["split"], r["count"], r["acc"], r["loss"], r["worst"] or "-") for r in rows],
    )


def cmd_export(args: argparse.Namespace) -> int:
    store = open_store(args)
    run = get_run(store, args.run)
    out_dir = Path(args.out) if args.out else run.path
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--out: cannot create {out_dir}: {exc.strerror}") from None
    try:
        if args.format == "md":
            from tui.reports import write_report

            paths = [write_report(run, out_dir)]
        else:
            from nsm.runs.export import export_run

            paths = export_run(run, args.format, out_dir)
    except OSError as exc:
        raise CliError(f"could not write the export to {out_dir}: {exc.strerror or exc}") from None
    except RunStoreError as exc:
        raise CliError(str(exc)) from None
    for p in paths:
        say(f"wrote {lit(p)}")
    return 0


__all__ = ["cmd_delete", "cmd_eval", "cmd_export", "cmd_list", "cmd_show", "fmt"]
