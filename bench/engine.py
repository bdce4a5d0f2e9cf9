"""The training engine's cost and results, per domain at the default config.

Prints per domain: seconds per epoch and training graphs/s through the engine,
the engine's overhead as a ratio to a bare training loop on the same data and
model in the same process (target <= 1.05), and the test accuracy after a full
run (default 100 epochs) beside both baselines (target >= 0.85, structure-blind
at least 15 points lower). Throughput guide: planning >= 600 graphs/s.

It also prints the old and the new training step side by side (graphs/s per
domain): "old" is the reference step (`Trainer(step_path="reference")`: host
batches, numbers read back every step) at the thread count THREADS=0 gave
before (torch's default, every core); "new" is the device step at THREADS=0 as
it is now (default_threads(): cores - 1). "new@old" is the new step at the old
thread count, to tell the two changes apart. Target: new >= 1.5x old.

    python bench/engine.py                    # overhead + paths + full 100-epoch runs, all domains
    python bench/engine.py --epochs 0         # overhead, paths and throughput only
    python bench/engine.py --paths-only      # the old/new steps only
    python bench/engine.py --domains planning --overhead-epochs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from nsm.config import RunConfig  # noqa: E402
from nsm.data import DOMAINS_IN_ORDER, load_dataset  # noqa: E402
from nsm.models import build_model  # noqa: E402
from nsm.runs import RunStore  # noqa: E402
from nsm.training.trainer import Trainer, default_threads, epoch_order, lr_lambda  # noqa: E402

TORCH_DEFAULT_THREADS = torch.get_num_threads()  # what THREADS=0 gave before default_threads()


def bare_epochs(cfg: RunConfig, ds, epochs: int) -> list[float]:  # type: ignore[no-untyped-def]
    """The same model, optimiser, schedule and batches, without the engine around them."""
    torch.manual_seed(cfg.seed)
    model = build_model(ds.spec, hidden=cfg.hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = -(-len(ds.train) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(steps * cfg.epochs))
    times = []
    for epoch in range(1, epochs + 1):
        order = epoch_order(cfg.seed, epoch, len(ds.train))
        t0 = time.perf_counter()
        for i in range(steps):
            batch = ds.train.batch(order[i * cfg.batch_size : (i + 1) * cfg.batch_size])
            out = model(batch)
            loss = F.cross_entropy(out.logits, batch.y) + cfg.cycle_weight * out.cycle_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        times.append(time.perf_counter() - t0)
    return times


def engine_epochs(  # type: ignore[no-untyped-def]
    cfg: RunConfig, ds, epochs: int, root: str, step_path: str = "device", threads: int | None = None
) -> tuple[list[float], list[float]]:
    run = RunStore(root).create_run(cfg.replace(epochs=epochs))
    events: list[dict] = []
    t0 = time.perf_counter()
    Trainer(run, sinks=[events.append], dataset=ds, step_path=step_path, threads=threads).run()
    wall = time.perf_counter() - t0
    ends = [e for e in events if e["type"] == "epoch_end"]
    return [e["epoch_time_s"] for e in ends], [e["graphs_per_s"] for e in ends] + [wall]


PATHS = {  # column -> (step path, torch threads)
    "old": ("reference", TORCH_DEFAULT_THREADS),
    "new": ("device", default_threads()),
    "new@old": ("device", TORCH_DEFAULT_THREADS),
}


def path_rates(cfg: RunConfig, ds, epochs: int, repeats: int, root: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Median seconds per epoch of each column of PATHS, measured alternately in this process."""
    short = cfg.replace(epochs=epochs, eval_every=10_000, save_every=10_000)
    times: dict[str, list[float]] = {k: [] for k in PATHS}
    for _ in range(repeats):
        for name, (step_path, threads) in PATHS.items():
            if name == "new@old" and threads == PATHS["new"][1]:
                continue  # one core: the same measurement as "new"
            times[name] += engine_epochs(short, ds, epochs, root, step_path, threads)[0][1:]
    return {k: statistics.median(v) for k, v in times.items() if v}


def print_paths(rows: list[tuple[str, int, dict[str, float]]]) -> None:
    old_t, new_t = PATHS["old"][1], PATHS["new"][1]
    print(
        f"engine paths: CPU, torch {torch.__version__}, defaults; old = reference step at {old_t} threads, "
        f"new = device step at {new_t} (THREADS=0 now), new@old = device step at {old_t}"
    )
    print(f"{'domain':<10}{'old s/ep':>9}{'old g/s':>9}{'new s/ep':>9}{'new g/s':>9}{'new/old':>9}{'new@old g/s':>13}")
    for domain, n, t in rows:
        at_old = f"{n / t['new@old']:>13.0f}" if "new@old" in t else f"{'(= new)':>13}"
        print(
            f"{domain:<10}{t['old']:>9.2f}{n / t['old']:>9.0f}{t['new']:>9.2f}{n / t['new']:>9.0f}"
            f"{t['old'] / t['new']:>9.2f}{at_old}"
        )


def full_run(cfg: RunConfig, ds, root: str) -> dict:  # type: ignore[no-untyped-def]
    run = RunStore(root).create_run(cfg)
    t0 = time.perf_counter()
    outcome = Trainer(run, dataset=ds).run()
    wall = time.perf_counter() - t0
    results = run.results() or {}
    return {"outcome": outcome, "wall": wall, **results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="+", default=list(DOMAINS_IN_ORDER))
    ap.add_argument("--overhead-epochs", type=int, default=3, help="epochs per overhead measurement (the first is warm-up)")
    ap.add_argument("--repeats", type=int, default=5, help="alternating bare/engine measurements")
    ap.add_argument("--epochs", type=int, default=100, help="epochs of the full run (0 skips it)")
    ap.add_argument("--paths-only", action="store_true", help="only the old/new step comparison (no overhead, no full run)")
    ap.add_argument("--paths-epochs", type=int, default=3, help="epochs per old/new measurement (the first is warm-up)")
    ap.add_argument("--paths-repeats", type=int, default=2, help="alternating old/new measurements")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="nsm-bench-")
    rows = []
    path_rows = []
    for domain in args.domains:
        cfg = RunConfig(domain=domain, device="cpu")
        ds = load_dataset(domain, num_graphs=cfg.num_graphs, seed=cfg.seed)
        if args.paths_repeats:
            rates = path_rates(cfg, ds, args.paths_epochs, args.paths_repeats, root)
            path_rows.append((domain, len(ds.train), rates))
            print(f"  {domain}: old {len(ds.train) / rates['old']:.0f} graphs/s, new {len(ds.train) / rates['new']:.0f}", file=sys.stderr)
        if args.paths_only:
            continue
        torch.set_num_threads(default_threads())  # the bare loop at the engine's thread count
        bare, engine = [], []
        # Both sides train the same short run (same LR schedule, no evaluation, no checkpoint).
        short = cfg.replace(epochs=args.overhead_epochs, eval_every=10_000, save_every=10_000)
        for _ in range(args.repeats):
            # Each measurement builds a fresh model; its first epoch pays one-off
            # allocations on both sides, so only the later epochs are compared.
            bare += bare_epochs(short, ds, args.overhead_epochs)[1:]
            e_times, _ = engine_epochs(short, ds, args.overhead_epochs, root)
            engine += e_times[1:]
        s_bare, s_engine = statistics.median(bare), statistics.median(engine)
        row = {
            "domain": domain,
            "s_epoch": s_engine,
            "graphs_s": len(ds.train) / s_engine,
            "bare_s_epoch": s_bare,
            "overhead": s_engine / s_bare,
        }
        print(
            f"  {domain}: engine {s_engine:.2f} s/epoch ({row['graphs_s']:.0f} graphs/s), bare {s_bare:.2f} s/epoch, "
            f"ratio {row['overhead']:.3f}",
            file=sys.stderr,
        )
        if args.epochs:
            res = full_run(cfg.replace(epochs=args.epochs), ds, root)
            row.update(
                test_acc=res.get("test", {}).get("acc"),
                majority=ds.baselines["majority"]["test_acc"],
                blind=ds.baselines["structure_blind"]["test_acc"],
                epochs_done=res.get("epochs_done"),
                wall=res["wall"],
            )
            print(f"  {domain}: {res['outcome']} after {res.get('epochs_done')} epochs, test acc {row['test_acc']}", file=sys.stderr)
        rows.append(row)
    if path_rows:
        print_paths(path_rows)
    if not rows:
        return
    print(f"engine bench: CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, defaults (batch 64, hidden 96, 2000 graphs)")
    header = f"{'domain':<10}{'s/epoch':>9}{'graphs/s':>10}{'bare s/ep':>11}{'overhead':>10}"
    if args.epochs:
        header += f"{'epochs':>8}{'test acc':>10}{'majority':>10}{'blind':>8}{'wall s':>9}"
    print(header)
    for r in rows:
        line = f"{r['domain']:<10}{r['s_epoch']:>9.2f}{r['graphs_s']:>10.0f}{r['bare_s_epoch']:>11.2f}{r['overhead']:>10.3f}"
        if args.epochs:
            acc = r["test_acc"]
            line += f"{r['epochs_done'] or 0:>8}{(acc if acc is not None else float('nan')):>10.3f}{r['majority']:>10.3f}{r['blind']:>8.3f}{r['wall']:>9.0f}"
        print(line)


if __name__ == "__main__":
    main()
