"""`nsm-tui data stats` and `nsm-tui model summary`."""

from __future__ import annotations

import argparse
import warnings

from tui.cli.console import CliError, print_json, print_table, say


def cmd_data_stats(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from nsm.data import load_dataset

    ds = load_dataset(args.domain, num_graphs=args.num_graphs, seed=args.seed)
    summary = ds.summary()
    if args.json:
        print_json(summary)
        return 0
    s = summary
    print_table(
        f"{args.domain}: {s['num_graphs']} graphs, seed {s['seed']}",
        ["split", "graphs", "positive", "negative", "positive %"],
        [(k, v["count"], v["positive"], v["negative"], f"{100 * v['positive_frac']:.1f}") for k, v in s["splits"].items()],
    )
    dist_cols = ["", "min", "p25", "median", "mean", "p75", "max"]
    rows = []
    for what in ("nodes", "edges"):
        for cls in ("positive", "negative"):
            d = s[what][cls]
            rows.append((f"{what} ({cls})", d["min"], d["p25"], d["median"], d["mean"], d["p75"], d["max"]))
    print_table("graph sizes", dist_cols, rows)
    _print_ood(s.get("ood"), s["splits"].get("test") or {})
    print_table("relations", ["relation", "edges"], sorted(s["relations"].items(), key=lambda kv: -kv[1]))
    print_table("node kinds", ["kind", "nodes"], sorted(s["node_kinds"].items(), key=lambda kv: -kv[1]))
    if len(s["subtypes"]) > 1:
        print_table("sample subtypes", ["subtype", "graphs"], list(s["subtypes"].items()))
    _print_probes(s["baselines"])
    return 0


def _print_ood(ood: object, test_split: dict) -> None:
    """The out-of-distribution test splits beside test: size, balance, nodes per graph, what changed."""
    if not isinstance(ood, dict):
        return  # a dataset cached before the OOD splits existed
    test = (ood.get("test") or {}).get("nodes") or {}
    rows = [("test", test_split.get("count"), f"{100 * test_split.get('positive_frac', 0):.1f}",
             f"{test.get('min', 0):.0f}-{test.get('max', 0):.0f}", test.get("median"), test.get("mean"), "in distribution")]  # fmt: skip
    for name, v in (ood.get("splits") or {}).items():
        n = v.get("nodes") or {}
        changed = ", ".join(f"{k}={tuple(x) if isinstance(x, list) else x}" for k, x in (v.get("overrides") or {}).items())
        rows.append((name, v.get("count"), f"{100 * v.get('positive_frac', 0):.1f}", f"{n.get('min', 0):.0f}-{n.get('max', 0):.0f}",
                     n.get("median"), n.get("mean"), changed))  # fmt: skip
    for name, reason in (ood.get("skipped") or {}).items():
        rows.append((name, 0, "", "", None, None, f"skipped: {reason}"))
    print_table(
        "out-of-distribution test splits (nodes per graph)",
        ["split", "graphs", "positive %", "nodes", "median", "mean", "generated with"],
        rows,
    )


def _print_probes(b: dict) -> None:
    """Each probe's test accuracy overall and on its worst subtype; a leak flagged."""
    from nsm.baselines import LEAK_THRESHOLD, PROBE_NAMES, SHALLOW_PROBES, leaks

    rows = []
    for key, label in PROBE_NAMES.items():
        value = b.get(key)
        if not isinstance(value, dict):
            continue  # a dataset cached before this probe existed
        worst = value.get("worst_subtype") or {}
        worst_cell = f"{worst['name']} {worst['acc']:.3f}" if worst else "-"
        role = "shallow" if key in SHALLOW_PROBES else "information"
        flag = "LEAK" if key in leaks(b) else ""
        rows.append((label, f"{value['test_acc']:.3f}", worst_cell, role, flag))
    print_table("probes (test accuracy; worst subtype: balanced accuracy)", ["probe", "overall", "worst subtype", "role", ""], rows)
    leaky = leaks(b)
    if leaky:
        names = ", ".join(PROBE_NAMES[k] for k in leaky)
        say(f"[bold red]shallow probe above {LEAK_THRESHOLD:.2f}: the domain leaks[/] ({names})")
    for key, label in (("features", "structure-blind"), ("degree_features", "degree-aware"), ("wl_features", "1-WL")):
        if key in b:
            say(f"[dim]{label} features: {b[key]}[/]")


def cmd_model_summary(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from nsm.data import domain_spec
    from nsm.models import build_model, count_parameters, parameter_summary

    spec = domain_spec(args.domain)
    kind = getattr(args, "model", "nsm")
    pooling = getattr(args, "pooling", True)
    try:
        model = build_model(spec, hidden=args.hidden, model=kind, pooling=pooling)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    rows = parameter_summary(model)
    total = count_parameters(model)
    if args.json:
        print_json({"domain": args.domain, "model": kind, "pooling": pooling, "hidden": args.hidden, "total": total, "modules": rows})
        return 0
    title = ("NSM" if pooling else "NSM without pooling") if kind == "nsm" else "flat R-GCN reference"
    print_table(
        f"{title} for {args.domain} (hidden {args.hidden}): {total:,} parameters",
        ["module", "type", "parameters"],
        [(r["module"], r["type"], f"{r['params']:,}") for r in rows] + [("total", "", f"{total:,}")],
    )
    return 0
