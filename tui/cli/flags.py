"""Argument-parsing pieces shared by `nsm-tui` and its sub-command modules.

Knob flags are generated from nsm.config.FIELDS, so a bad value gets the same
message as in the TUI's config panel: one line naming the flag and what is allowed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, NoReturn, Sequence

from nsm.config import FIELDS

class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def knob_type(name: str) -> Callable[[str], Any]:
    spec = FIELDS[name]

    def parse(raw: str) -> Any:
        try:
            return spec.parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = spec.label  # argparse names the type in some messages
    return parse


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_knob_flags(p: argparse.ArgumentParser, names: Sequence[str]) -> None:
    for name in names:
        spec = FIELDS[name]
        if spec.kind is bool:
            p.add_argument(_flag(name), dest=name, action=argparse.BooleanOptionalAction, default=None, help=spec.help)
            continue
        metavar = "{" + ",".join(spec.choices) + "}" if spec.choices else spec.label
        text = f"{spec.help} ({spec.allowed()}; default {spec.default})"
        p.add_argument(
            _flag(name),
            dest=name,
            type=knob_type(name),
            default=None,
            metavar=metavar,
            # Expert knobs work but stay out of --help.
            help=text if spec.public else argparse.SUPPRESS,
        )


def add_runs_dir(p: argparse.ArgumentParser, top: bool = False) -> None:
    # Sub-commands use SUPPRESS so that they do not overwrite a value given before the command.
    p.add_argument(
        "--runs-dir",
        default=None if top else argparse.SUPPRESS,
        help="run store root (default: $NSM_RUNS_DIR or ./runs)",
    )


TRAIN_KNOBS = [n for n in FIELDS if n not in ("domain", "backend", "gpu")]
