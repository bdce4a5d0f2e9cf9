"""Evaluation of a model on a split: the numbers a user reads after training.

Accuracy and losses, a confusion matrix, per-class precision/recall/F1/support,
a histogram of prediction confidence (split into right and wrong predictions,
so an over-confident model shows), and accuracy per sample subtype.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from nsm.data.graphs import GraphSet

CLASS_NAMES = ("negative", "positive")
CONFIDENCE_BINS = 10  # over [0.5, 1.0]: the max softmax probability of a binary classifier


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    gs: GraphSet,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Logits-derived outputs for every graph of `gs`, in order."""
    was_training = model.training
    model.eval()
    probs, task, cycle = [], [], []
    total = len(gs)
    try:
        for start in range(0, total, batch_size):
            ids = torch.arange(start, min(start + batch_size, total))
            batch = gs.batch(ids).to(device)
            out = model(batch)
            # Kept on the device until the end: one read back per split, not three per batch.
            probs.append(F.softmax(out.logits.float(), dim=-1))
            task.append(F.cross_entropy(out.logits.float(), batch.y, reduction="none"))
            cycle.append(out.cycle_loss.float().expand(len(ids)))
            if progress is not None:
                progress(min(start + batch_size, total), total)
    finally:
        model.train(was_training)
    return {
        "probs": torch.cat(probs).cpu() if probs else torch.zeros(0, 2),
        "task_loss": torch.cat(task).cpu() if task else torch.zeros(0),
        "cycle_loss": torch.cat(cycle).cpu() if cycle else torch.zeros(0),
    }


def classification_report(y: torch.Tensor, pred: torch.Tensor) -> dict[str, Any]:
    confusion = torch.zeros(2, 2, dtype=torch.long)
    confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    per_class = {}
    for c, name in enumerate(CLASS_NAMES):
        tp = int(confusion[c, c])
        fp = int(confusion[:, c].sum()) - tp
        fn = int(confusion[c, :].sum()) - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": int(confusion[c, :].sum()),
        }
    return {
        # rows: true class, columns: predicted class
        "confusion": confusion.tolist(),
        "per_class": per_class,
        "macro_f1": round(sum(v["f1"] for v in per_class.values()) / len(per_class), 4),
    }


def confidence_histogram(probs: torch.Tensor, correct: torch.Tensor) -> dict[str, Any]:
    conf = probs.max(dim=-1).values if probs.numel() else torch.zeros(0)
    edges = torch.linspace(0.5, 1.0, CONFIDENCE_BINS + 1)
    idx = torch.clamp(torch.bucketize(conf, edges[1:-1], right=True), 0, CONFIDENCE_BINS - 1)
    right = torch.bincount(idx[correct], minlength=CONFIDENCE_BINS)
    wrong = torch.bincount(idx[~correct], minlength=CONFIDENCE_BINS)
    return {
        "edges": [round(float(e), 3) for e in edges],
        "correct": right.tolist(),
        "wrong": wrong.tolist(),
        "mean_confidence": round(float(conf.mean()), 4) if conf.numel() else None,
    }


def evaluate(
    model: torch.nn.Module,
    gs: GraphSet,
    *,
    device: torch.device | str = "cpu",
    cycle_weight: float = 0.0,
    subtypes: tuple[str, ...] = (),
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    out = predict(model, gs, device, progress=progress)
    y = gs.y
    pred = out["probs"].argmax(-1)
    correct = pred == y
    task = float(out["task_loss"].mean()) if len(y) else float("nan")
    cycle = float(out["cycle_loss"].mean()) if len(y) else float("nan")
    result: dict[str, Any] = {
        "count": len(y),
        "acc": round(float(correct.float().mean()), 4) if len(y) else None,
        "loss": task + cycle_weight * cycle,
        "task_loss": task,
        "cycle_loss": cycle,
        **classification_report(y, pred),
        "confidence": confidence_histogram(out["probs"], correct),
    }
    if subtypes:
        result["per_subtype"] = {
            name: {
                "acc": round(float(correct[gs.subtype == k].float().mean()), 4),
                "count": int((gs.subtype == k).sum()),
            }
            for k, name in enumerate(subtypes)
            if bool((gs.subtype == k).any())
        }
    return result


def loss_metrics(model: torch.nn.Module, gs: GraphSet, device: torch.device | str, cycle_weight: float) -> dict[str, float]:
    """The validation numbers logged every EVAL_EVERY epochs (losses and accuracy only).
    `gs` may live on the device (GraphSet.to): the outputs come back to the host."""
    out = predict(model, gs, device)
    pred = out["probs"].argmax(-1)
    task = float(out["task_loss"].mean())
    cycle = float(out["cycle_loss"].mean())
    return {
        "loss": task + cycle_weight * cycle,
        "task_loss": task,
        "cycle_loss": cycle,
        "acc": float((pred == gs.y.cpu()).float().mean()),
    }


def _owner_of(folder: Any) -> str | None:
    """`domain/name` of the run directory `folder`, or None when it is not one."""
    from nsm.runs.store import CONFIG_FILE

    return f"{folder.parent.name}/{folder.name}" if (folder / CONFIG_FILE).is_file() else None


def _check_owner(run: Any, path: Any, file: str) -> None:
    """Only a checkpoint in the run's own directory is that run's (CheckpointError otherwise, saying whose it is)."""
    from nsm.training.checkpoint import CheckpointError

    try:
        folder, own = path.resolve().parent, run.path.resolve()
    except (OSError, RuntimeError):
        folder, own = path.parent, run.path
    if folder == own:
        return
    owner = _owner_of(folder)
    whose = f"belongs to run {owner}" if owner else f"is not in any run directory ({folder})"
    hint = f"; evaluate it with: nsm-tui eval {owner} --checkpoint {path.name}" if owner else ""
    raise CheckpointError(f"checkpoint {file} is foreign: it {whose}, not to run {run.ref}{hint}")


def _check_belongs(run: Any, name: str, cfg: Any, vocabulary: Any) -> None:
    """CheckpointError when the checkpoint was trained for another domain, vocabulary
    or dataset than the run's own config says (a file copied in from another run)."""
    from nsm.data import domain_spec
    from nsm.runs.errors import RunStoreError
    from nsm.training.checkpoint import CheckpointError

    try:
        own = run.config()
    except RunStoreError:
        own = {}
    domain = own.get("domain") if isinstance(own.get("domain"), str) else run.domain
    if cfg.domain != domain:
        raise CheckpointError(
            f"checkpoint {name} belongs to domain {cfg.domain} (a {cfg.domain} model), not to run {run.ref} (domain {domain})"
        )
    if isinstance(vocabulary, dict):
        try:
            expected = domain_spec(domain).to_dict()
        except (KeyError, ValueError):
            expected = None
        if expected is not None:
            keys = ("name", "node_kinds", "relations")
            if any(vocabulary.get(k) != expected.get(k) for k in keys):
                raise CheckpointError(
                    f"checkpoint {name} was trained on vocabulary {vocabulary.get('name')!r} "
                    f"({len(vocabulary.get('node_kinds') or [])} node kinds, {len(vocabulary.get('relations') or [])} relations), "
                    f"not on run {run.ref}'s vocabulary {expected.get('name')!r} "
                    f"({len(expected['node_kinds'])} node kinds, {len(expected['relations'])} relations)"
                )
    differ = [k for k in ("hidden", "num_graphs", "seed") if k in own and own[k] != getattr(cfg, k)]
    if differ:
        what = ", ".join(f"{k} {getattr(cfg, k)!r} vs {own[k]!r}" for k in differ)
        raise CheckpointError(f"checkpoint {name} does not belong to run {run.ref}: its config differs ({what})")


def evaluate_checkpoint(
    run: Any,
    checkpoint: str | None = None,
    *,
    split: str = "test",
    device: str = "cpu",
    reuse: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate one checkpoint of a run (default: best_model.pt) and save the result.

    `split` is test (the default), val, train or one of the dataset's OOD splits
    (nsm.data.ood; ValueError names the allowed ones). On test the result also
    holds `ood`: the same evaluation on every OOD split, by name. Only test
    evaluations are saved; a saved one newer than its checkpoint is reused (one
    saved before the OOD splits existed has no `ood`: evaluate again to add it).
    The model is rebuilt from the checkpoint's own config and the dataset from
    its generation parameters (cached), so this works on runs made anywhere.
    """
    import os
    import time
    from pathlib import Path

    from nsm.atomic import atomic_write_json
    from nsm.config import ConfigError, validate_config
    from nsm.data import load_dataset
    from nsm.models import build_model
    from nsm.runs.checkpoints import BEST_FILE
    from nsm.training.checkpoint import CheckpointError, load_checkpoint

    file = checkpoint or BEST_FILE
    path = Path(file)
    if not path.is_absolute():
        path = run.path / file
    if not path.exists():
        from nsm.runs.retention import removal_note

        available = ", ".join(c.file for c in run.checkpoints()) or "none"
        removed = removal_note(run.path, file) if path.parent == run.path else None
        if removed:
            raise CheckpointError(f"checkpoint {removed}; evaluate one that is left: {available}")
        raise CheckpointError(f"checkpoint {file} does not exist in run {run.name} (available: {available})")
    _check_owner(run, path, file)
    out_path = run.evaluation_path(path.name) if path.parent == run.path else None
    if reuse and out_path is not None and out_path.exists():
        try:
            if os.path.getmtime(out_path) >= os.path.getmtime(path):
                import json

                saved = json.loads(out_path.read_text())
                if saved.get("split") == "test" and "confusion" in saved:
                    if split == "test":
                        saved["reused"] = True
                        return saved
                    ood = saved.get("ood")
                    if isinstance(ood, dict) and isinstance(ood.get(split), dict) and "confusion" in ood[split]:
                        keep = ("checkpoint", "epoch", "step", "baselines", "evaluated_at")
                        return {**{k: saved.get(k) for k in keep}, "split": split, **ood[split], "reused": True}
        except (OSError, ValueError, AttributeError):
            pass  # unreadable: evaluate again
    blob = load_checkpoint(path, map_location=device)
    try:
        cfg = validate_config(blob["config"])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {path.name} has an invalid config ({exc})") from None
    _check_belongs(run, path.name, cfg, blob.get("vocabulary"))
    ds = load_dataset(cfg.domain, num_graphs=cfg.num_graphs, seed=cfg.seed)
    gs = ds.split(split)  # ValueError: not a split of this dataset (the message lists them)
    model = build_model(ds.spec, hidden=cfg.hidden, model=cfg.model, pooling=cfg.pooling)
    try:
        model.load_state_dict(blob["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path.name} does not fit the {cfg.domain} model: {str(exc)[:300]}") from None
    model.to(device)
    t0 = time.time()
    result = evaluate(model, gs, device=device, cycle_weight=cfg.cycle_weight, subtypes=ds.spec.subtypes, progress=progress)
    ood = {}
    if split == "test":
        ood = {
            name: evaluate(model, other, device=device, cycle_weight=cfg.cycle_weight, subtypes=ds.spec.subtypes)
            for name, other in ds.ood.items()
        }
    result = {
        "checkpoint": path.name,
        "epoch": blob.get("epoch"),
        "step": blob.get("step"),
        "split": split,
        **result,
        **({"ood": ood} if split == "test" else {}),
        "baselines": ds.baselines,
        "eval_time_s": round(time.time() - t0, 3),
        "evaluated_at": time.time(),
    }
    if out_path is not None and split == "test":
        try:
            atomic_write_json(out_path, result)
        except OSError:
            pass  # the numbers are still shown; only the reuse is lost
    result["reused"] = False
    return result
