"""Are the domains honest, and does the hierarchy earn its keep? (issue 14)

Per domain it prints:
  1. every probe stored with the dataset, overall and per subtype (target: no
     shallow probe above 0.60 anywhere; 1-WL is information only);
  2. NSM, the flat relational reference and the NSM with cycle weight 0, each
     trained from several seeds, on the in-distribution test split and every
     out-of-distribution split: mean +- 95% CI (Student's t) over the seeds;
  3. NSM - flat per split, paired by seed, against the target NSM >= flat - 0.02.

The dataset is generated with --num-graphs (default 6700, so test and every
OOD split hold >= 1000 graphs), but each model trains on only the first
--train-graphs training graphs and selects its epoch on the first 300
validation graphs: the default run's amounts (NUM_GRAPHS=2000), larger
held-out sets. Selection looks at validation only; test and OOD are read once
at the end (nothing is tuned on them). A plain loop (AdamW + one-cycle), not
the run engine, so a full table fits in tens of minutes on a CPU.

    python bench/learnability.py [--domains causal planning kg] [--seeds 3] [--epochs 20]
                                 [--variants nsm flat nsm_cw0] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from nsm.baselines import LEAK_THRESHOLD, leaks  # noqa: E402
from nsm.data import DOMAINS_IN_ORDER, load_dataset  # noqa: E402
from nsm.models import build_model, count_parameters  # noqa: E402
from nsm.runs.aggregate import estimate  # noqa: E402
from probes import print_probe_table  # noqa: E402  (bench/ is on sys.path when run as a script)

VARIANTS = {
    # name: (MODEL, cycle weight, model keyword arguments)
    "nsm": ("nsm", 0.01, {}),
    "flat": ("flat", 0.0, {}),
    "nsm_cw0": ("nsm", 0.0, {}),  # the cycle-loss ablation
    "nsm_nopool": ("nsm", 0.01, {"pooling": False}),  # POOLING=off
    # The same six typed layers, four before the first pool instead of three: evidence
    # spreads over a longer plan before pooling drops nodes (item 7's candidate).
    "nsm_411": ("nsm", 0.01, {"layers": (4, 1, 1)}),
}
DEFAULT_VARIANTS = ("nsm", "flat", "nsm_cw0")
VAL_GRAPHS = 300
TARGET_GAP = 0.02


@torch.no_grad()
def predictions(model: torch.nn.Module, gs, count: int | None = None, batch_size: int = 256) -> torch.Tensor:  # type: ignore[no-untyped-def]
    model.eval()
    n = len(gs) if count is None else min(count, len(gs))
    out = [model(gs.batch(torch.arange(i, min(i + batch_size, n)))).logits.argmax(1) for i in range(0, n, batch_size)]
    model.train()
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred == y[: len(pred)]).float().mean())


def per_subtype(pred: torch.Tensor, gs, names: tuple[str, ...]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    out = {}
    for k, name in enumerate(names):
        mask = gs.subtype == k
        if bool(mask.any()):
            out[name] = float((pred[mask] == gs.y[mask]).float().mean())
    return out


def train_one(ds, variant: str, seed: int, args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    model_name, cycle_weight, kwargs = VARIANTS[variant]
    torch.manual_seed(seed)
    model = build_model(ds.spec, hidden=args.hidden, model=model_name, **kwargs)
    n_train = min(args.train_graphs, len(ds.train))
    steps_per_epoch = math.ceil(n_train / args.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    best = (-1.0, -1, None)
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(n_train, generator=gen)
        for i in range(0, n_train, args.batch_size):
            b = ds.train.batch(perm[i : i + args.batch_size])
            out = model(b)
            loss = F.cross_entropy(out.logits, b.y) + cycle_weight * out.cycle_loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        if epoch % 2 == 0 or epoch == args.epochs:
            val = accuracy(predictions(model, ds.val, VAL_GRAPHS), ds.val.y)
            if val >= best[0]:  # ties go to the later epoch: it has trained longer at a lower lr
                best = (val, epoch, {k: v.clone() for k, v in model.state_dict().items()})
    train_s = time.perf_counter() - t0
    model.load_state_dict(best[2])
    pred = predictions(model, ds.test)
    result = {
        "variant": variant,
        "seed": seed,
        "params": count_parameters(model),
        "best_epoch": best[1],
        "val_acc": best[0],
        "train_s": train_s,
        "splits": {"test": accuracy(pred, ds.test.y)},
        "test_per_subtype": per_subtype(pred, ds.test, ds.spec.subtypes),
    }
    for name, gs in ds.ood.items():
        result["splits"][name] = accuracy(predictions(model, gs), gs.y)
    return result


def fmt_ci(values: list[float]) -> str:
    est = estimate(values)
    return "-" if est is None else est.text()


def report_domain(ds, rows: list[dict], args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    splits = ["test", *ds.ood]
    sizes = {"test": len(ds.test), **{k: len(v) for k, v in ds.ood.items()}}
    print(f"\nmodels: {len(args.seeds_list)} seeds {args.seeds_list}, {args.epochs} epochs on {args.train_graphs} graphs; mean ± 95% CI")
    print(f"{'variant':<9}{'params':>8}  " + "  ".join(f"{s + ' (' + str(sizes[s]) + ')':>22}" for s in splits) + f"  {'s/run':>6}")
    by_variant: dict[str, list[dict]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], []).append(r)
    summary: dict = {}
    for variant, rs in by_variant.items():
        cells = "  ".join(f"{fmt_ci([r['splits'][s] for r in rs]):>22}" for s in splits)
        secs = sum(r["train_s"] for r in rs) / len(rs)
        print(f"{variant:<9}{rs[0]['params']:>8}  {cells}  {secs:>6.0f}")
        summary[variant] = {s: [r["splits"][s] for r in rs] for s in splits}
        subs = ds.spec.subtypes
        if len(subs) > 1:
            per = "  ".join(f"{name} {fmt_ci([r['test_per_subtype'].get(name, float('nan')) for r in rs])}" for name in subs)
            print(f"{'':<9}test per subtype: {per}")
    verdicts: dict = {}
    flat = {r["seed"]: r for r in by_variant.get("flat", [])}
    for variant in by_variant:
        if variant == "flat" or not flat:
            continue
        mine = {r["seed"]: r for r in by_variant[variant]}
        seeds = sorted(set(mine) & set(flat))
        line = []
        verdicts[variant] = {}
        for s in splits:
            diffs = [mine[k]["splits"][s] - flat[k]["splits"][s] for k in seeds]
            est = estimate(diffs)
            ok = est is not None and est.mean >= -TARGET_GAP
            verdicts[variant][s] = {"mean": est.mean if est else None, "ci95": est.ci95 if est else None, "meets_target": ok}
            line.append(f"{s} {fmt_ci(diffs)} {'ok' if ok else 'MISS'}")
        print(f"{variant} - flat (paired by seed; target >= -{TARGET_GAP}): " + ", ".join(line))
    for other in by_variant:
        if other in ("nsm", "flat") or "nsm" not in by_variant:
            continue
        nsm = {r["seed"]: r for r in by_variant["nsm"]}
        alt = {r["seed"]: r for r in by_variant[other]}
        seeds = sorted(set(nsm) & set(alt))
        diffs = {s: [alt[k]["splits"][s] - nsm[k]["splits"][s] for k in seeds] for s in splits}
        print(f"{other} - NSM, paired by seed: " + ", ".join(f"{s} {fmt_ci(d)}" for s, d in diffs.items()))
    return {"accuracy": summary, "minus_flat": verdicts, "sizes": sizes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", nargs="+", default=list(DOMAINS_IN_ORDER), choices=list(DOMAINS_IN_ORDER))
    ap.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, default=3, help="model seeds per variant (data seed fixed)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--num-graphs", type=int, default=6700, help="dataset size: test and OOD get 15%% each")
    ap.add_argument("--train-graphs", type=int, default=1400, help="training graphs actually used")
    ap.add_argument("--data-seed", type=int, default=42)
    ap.add_argument("--out", help="also write every number as JSON here")
    args = ap.parse_args()
    args.seeds_list = list(range(args.seeds))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    everything: dict = {}
    exit_code = 0
    for domain in args.domains:
        t0 = time.perf_counter()
        ds = load_dataset(domain, num_graphs=args.num_graphs, seed=args.data_seed)
        print(f"\n== {domain}: {len(ds.train)}/{len(ds.val)}/{len(ds.test)} graphs, OOD {', '.join(f'{k} {len(v)}' for k, v in ds.ood.items()) or 'none'} (loaded in {time.perf_counter() - t0:.1f}s)")
        print_probe_table(ds.baselines, ds.spec.subtypes)
        leaky = leaks(ds.baselines)
        print(f"shallow probes above {LEAK_THRESHOLD:.2f}: {', '.join(leaky) if leaky else 'none'}")
        if leaky:
            exit_code = 1
        rows = []
        for variant in args.variants:
            for seed in args.seeds_list:
                r = train_one(ds, variant, seed, args)
                print(f"  {domain} {variant} seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["splits"].items()) + f" ({r['train_s']:.0f}s)", file=sys.stderr)
                rows.append(r)
        everything[domain] = {"probes": ds.baselines, "runs": rows, **report_domain(ds, rows, args)}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(everything, fh, indent=1)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
