"""`nsm-tui data stats` and `nsm-tui model summary`."""

from __future__ import annotations

import argparse
import warnings

from tui.cli.console import print_json, print_table, say


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
    print_table("relations", ["relation", "edges"], sorted(s["relations"].items(), key=lambda kv: -kv[1]))
    print_table("node kinds", ["kind", "nodes"], sorted(s["node_kinds"].items(), key=lambda kv: -kv[1]))
    if len(s["subtypes"]) > 1:
        print_table("sample subtypes", ["subtype", "graphs"], list(s["subtypes"].items()))
    b = s["baselines"]
    print_table(
        "baselines (test accuracy)",
        ["baseline", "test acc"],
        [
            ("majority class", b["majority"]["test_acc"]),
            ("structure-blind logistic regression", b["blind_logreg"]["test_acc"]),
            ("structure-blind MLP", b["blind_mlp"]["test_acc"]),
        ],
    )
    say(f"[dim]structure-blind features: {b['features']}[/]")
    return 0


def cmd_model_summary(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from nsm.data import domain_spec
    from nsm.models import build_model, count_parameters, parameter_summary

    spec = domain_spec(args.domain)
    model = build_model(spec, hidden=args.hidden)
    rows = parameter_summary(model)
    total = count_parameters(model)
    if args.json:
        print_json({"domain": args.domain, "hidden": args.hidden, "total": total, "modules": rows})
        return 0
    print_table(
        f"NSM for {args.domain} (hidden {args.hidden}): {total:,} parameters",
        ["module", "type", "parameters"],
        [(r["module"], r["type"], f"{r['params']:,}") for r in rows] + [("total", "", f"{total:,}")],
    )
    return 0
