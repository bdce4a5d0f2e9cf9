"""TOML run configs on the command line: `--config FILE` of `train` and `sweep`,
and `nsm-tui config save FILE [--from RUN]` / `nsm-tui config show FILE`.

Precedence, lowest first: the defaults, the file, the flags typed on the command line.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from nsm.config import FIELDS, ConfigError, RunConfig, validate_config
from nsm.config_file import ConfigFileError, load_config_file, read_config_values, save_config_file
from tui.cli.console import CliError, lit, print_json, print_kv, say

CONFIG_HELP = "a TOML run config (every knob, e.g. from `nsm-tui config save`); flags given here override it"


def add_config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, metavar="FILE", help=CONFIG_HELP)


def file_values(args: argparse.Namespace) -> dict[str, Any]:
    """The knobs `--config FILE` sets ({} without --config); CliError naming the file and key."""
    path = getattr(args, "config", None)
    if not path:
        return {}
    try:
        return read_config_values(path)
    except ConfigFileError as exc:
        raise CliError(f"--config: {exc}") from None


def source_of(args: argparse.Namespace, knob: str, from_file: dict[str, Any]) -> str:
    """Where a knob's value came from, for an error message: its flag, or the file and key."""
    if getattr(args, knob, None) is not None or not getattr(args, "config", None):
        return "--" + knob.replace("_", "-")
    # From the file, or a default that clashes with what the file sets (BATCH_SIZE vs its NUM_GRAPHS).
    return f"--config {args.config}: key {knob}" if knob in from_file else f"--config {args.config}"


def add_config_parser(sub: Any) -> None:
    from tui.cli.flags import TRAIN_KNOBS, add_knob_flags, add_runs_dir

    p = sub.add_parser("config", help="write a TOML run config to edit (from the defaults or a run), or check one")
    actions = p.add_subparsers(dest="config_command", metavar="ACTION", parser_class=type(p), required=True)
    q = actions.add_parser(
        "save",
        help="write every knob, with its help and allowed values, to a TOML file for --config",
        description="Write a TOML run config: the defaults, or the config of --from RUN, changed by any knob flags given.",
    )
    q.add_argument("file", metavar="FILE")
    q.add_argument("--from", dest="from_run", default=None, metavar="RUN", help="start from this run's config.json")
    q.add_argument("--domain", type=_domain, default=None, metavar="{" + ",".join(FIELDS["domain"].choices or ()) + "}")
    add_knob_flags(q, TRAIN_KNOBS)
    q.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_runs_dir(q)
    q = actions.add_parser("show", help="check a TOML run config and print the config it gives")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--json", action="store_true")


def _domain(raw: str) -> str:
    try:
        return FIELDS["domain"].parse(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_config(args: argparse.Namespace) -> int:
    if args.config_command == "show":
        try:
            config = load_config_file(args.file)
        except ConfigFileError as exc:
            raise CliError(str(exc)) from None
        values = config.to_dict()
        if args.json:
            print_json(values)
        else:
            print_kv(f"config from {args.file}", [(k, v) for k, v in values.items() if k != "schema_version"])
        return 0
    return _save(args)


def _save(args: argparse.Namespace) -> int:
    target = os.path.expanduser(args.file)
    if os.path.lexists(target) and not os.path.isdir(target) and not args.force:
        raise CliError(f"{args.file} exists; add --force to replace it")
    values: dict[str, Any] = {}
    source = None
    if args.from_run:
        from tui.cli.common import get_run, open_store

        run = get_run(open_store(args), args.from_run)
        try:
            values = run.config()
        except Exception as exc:  # RunStoreError or a damaged file: one line either way
            raise CliError(f"--from {args.from_run}: {exc}") from None
        source = f"run {run.ref}"
    flags = {n: getattr(args, n) for n in FIELDS if getattr(args, n, None) is not None}
    try:
        base = validate_config({k: v for k, v in values.items() if k in FIELDS})
    except ConfigError as exc:
        raise CliError(f"--from {args.from_run}: its config.json is not valid: {exc}") from None
    try:
        config = validate_config(flags, base=base)
    except ConfigError as exc:
        knob, message = next(iter(exc.errors.items()))
        raise CliError(f"--{knob.replace('_', '-')}: {message}") from None
    try:
        path = save_config_file(args.file, config, source)
    except ConfigFileError as exc:
        raise CliError(str(exc)) from None
    say(f"wrote {lit(path)}; use it with: nsm-tui train --config {lit(args.file)}")
    return 0


def merged_config(values: dict[str, Any], args: argparse.Namespace, from_file: dict[str, Any]) -> RunConfig:
    """`values` (file < flags already merged) as a RunConfig; CliError naming where the bad knob came from."""
    try:
        return validate_config(values)
    except ConfigError as exc:
        knob, message = next(iter(exc.errors.items()))
        raise CliError(f"{source_of(args, knob, from_file)}: {message}") from None


__all__ = ["add_config_flag", "add_config_parser", "cmd_config", "file_values", "merged_config", "source_of"]
