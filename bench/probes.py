"""Every probe of every domain, overall and per subtype, at the default dataset.

The instrument for the generator fixes of issue 14: no shallow probe (majority,
structure-blind, degree-aware) may score above 0.60 overall or on any subtype.
Per-subtype numbers are balanced accuracies of the overall probe on that
subtype's graphs against the other class (see nsm.baselines). Builds the
baselines afresh (not from the dataset cache) and times them.

    python bench/probes.py [--domains planning causal kg] [--num-graphs 2000] [--seed 42]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

# nsm.data first: nsm.baselines imported alone would re-enter itself through nsm.data.build.
from nsm.data import DOMAINS_IN_ORDER, load_dataset  # noqa: E402
from nsm.baselines import LEAK_THRESHOLD, PROBE_NAMES, SHALLOW_PROBES, compute_baselines, leaks  # noqa: E402


def print_probe_table(b: dict, subtypes: tuple[str, ...]) -> None:
    """One row per probe: test accuracy overall and (balanced) per subtype."""
    print(f"{'probe':38s} {'overall':>7s}  " + "  ".join(f"{s[:18]:>18s}" for s in subtypes))
    for key, label in PROBE_NAMES.items():
        per = b[key].get("per_subtype", {})
        cells = "  ".join(f"{per[s]:18.3f}" if s in per else f"{'-':>18s}" for s in subtypes)
        tag = "" if key in SHALLOW_PROBES else "  (information)"
        print(f"{label:38s} {b[key]['test_acc']:7.3f}  {cells}{tag}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", nargs="+", default=list(DOMAINS_IN_ORDER), choices=list(DOMAINS_IN_ORDER))
    ap.add_argument("--num-graphs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    failed = False
    for domain in args.domains:
        ds = load_dataset(domain, num_graphs=args.num_graphs, seed=args.seed)
        t0 = time.perf_counter()
        b = compute_baselines(ds)
        took = time.perf_counter() - t0
        print(f"\n== {domain} ({ds.num_graphs} graphs, seed {ds.seed}; all probes fit in {took:.2f}s)")
        print_probe_table(b, ds.spec.subtypes)
        leaky = leaks(b)
        if leaky:
            failed = True
            print(f"shallow probe above {LEAK_THRESHOLD:.2f}: the domain leaks ({', '.join(leaky)})")
        else:
            print(f"no shallow probe above {LEAK_THRESHOLD:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
