"""Can the default NSM learn each domain? A plain training loop (not the engine).

Prints, per domain: model test accuracy, majority baseline, structure-blind
baseline, wall time, seconds per epoch (and per-subtype test accuracy).
Targets (issue 2): model >= 0.85, majority <= 0.55, structure-blind <= 0.70 and
at least 15 points below the model.

    python bench/learnability.py [--domains planning causal kg] [--epochs 40] [--flat]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from nsm.data import DOMAINS_IN_ORDER, load_dataset  # noqa: E402
from nsm.models import FlatRGCN, ModelSpec, build_model, count_parameters  # noqa: E402


def evaluate(model, gs, batch_size=256):  # type: ignore[no-untyped-def]
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(gs), batch_size):
            ids = torch.arange(i, min(i + batch_size, len(gs)))
            preds.append(model(gs.batch(ids)).logits.argmax(1))
    model.train()
    pred = torch.cat(preds)
    return pred


def run(domain: str, epochs: int, batch_size: int, lr: float, cycle_weight: float, flat: bool, seed: int, num_graphs: int, hidden: int) -> dict:
    t0 = time.time()
    ds = load_dataset(domain, num_graphs=num_graphs, seed=seed)
    t_data = time.time() - t0
    torch.manual_seed(seed)
    if flat:
        model = FlatRGCN(ModelSpec.from_domain(ds.spec), hidden=hidden)
    else:
        model = build_model(ds.spec, hidden=hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * ((len(ds.train) + batch_size - 1) // batch_size)
    )
    gen = torch.Generator().manual_seed(seed)
    t1 = time.time()
    best_val, best_state = -1.0, None
    for epoch in range(epochs):
        perm = torch.randperm(len(ds.train), generator=gen)
        for i in range(0, len(perm), batch_size):
            b = ds.train.batch(perm[i : i + batch_size])
            out = model(b)
            loss = F.cross_entropy(out.logits, b.y) + cycle_weight * out.cycle_loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        if (epoch + 1) % 5 == 0 or epoch == epochs - 1:
            val_acc = float((evaluate(model, ds.val) == ds.val.y).float().mean())
            if val_acc >= best_val:
                best_val = val_acc
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            print(f"  {domain} epoch {epoch + 1}: loss {loss.item():.3f} val acc {val_acc:.3f}", file=sys.stderr)
    train_time = time.time() - t1
    if best_state is not None:
        model.load_state_dict(best_state)
    pred = evaluate(model, ds.test)
    acc = float((pred == ds.test.y).float().mean())
    per_subtype = {}
    for k, name in enumerate(ds.spec.subtypes):
        mask = ds.test.subtype == k
        if mask.any():
            per_subtype[name] = round(float((pred[mask] == ds.test.y[mask]).float().mean()), 3)
    return {
        "domain": domain,
        "params": count_parameters(model),
        "test_acc": acc,
        "majority": ds.baselines["majority"]["test_acc"],
        "blind": ds.baselines["structure_blind"]["test_acc"],
        "wall_s": time.time() - t0,
        "data_s": t_data,
        "s_per_epoch": train_time / epochs,
        "graphs_per_s": epochs * len(ds.train) / train_time,
        "per_subtype": per_subtype,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--domains", nargs="+", default=list(DOMAINS_IN_ORDER))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--cycle-weight", type=float, default=0.01)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--num-graphs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--flat", action="store_true", help="the flat relational reference instead of the NSM")
    args = ap.parse_args()
    rows = [
        run(d, args.epochs, args.batch_size, args.lr, args.cycle_weight, args.flat, args.seed, args.num_graphs, args.hidden)
        for d in args.domains
    ]
    print(f"model: {'flat R-GCN' if args.flat else 'NSM 3-level'}, {args.epochs} epochs, batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    print(f"{'domain':<10}{'params':>9}{'test acc':>10}{'majority':>10}{'blind':>8}{'gap':>7}{'wall s':>9}{'s/epoch':>9}{'graphs/s':>10}  verdict")
    for r in rows:
        gap = r["test_acc"] - r["blind"]
        ok = r["test_acc"] >= 0.85 and r["majority"] <= 0.55 and r["blind"] <= 0.70 and gap >= 0.15
        print(
            f"{r['domain']:<10}{r['params']:>9}{r['test_acc']:>10.3f}{r['majority']:>10.3f}{r['blind']:>8.3f}"
            f"{gap:>7.3f}{r['wall_s']:>9.1f}{r['s_per_epoch']:>9.2f}{r['graphs_per_s']:>10.0f}  {'PASS' if ok else 'FAIL'}"
        )
        if r["per_subtype"]:
            print(f"{'':<10}per subtype: " + ", ".join(f"{k} {v:.3f}" for k, v in r["per_subtype"].items()))


if __name__ == "__main__":
    main()
