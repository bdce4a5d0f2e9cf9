"""Run configs as TOML files: `nsm-tui train --config run.toml`, a sweep's base
config, and the config panel's save and load.

Keys are the knob names of config.json (`epochs = 50`); the notebook's labels
(`EPOCHS = 50`) work too. A file may set only some knobs: the others keep their
defaults (or what the command line says). A saved file lists every knob with a
comment giving its help and what is allowed, so it documents itself, and it
loads back to the same config.

Every problem is a ConfigFileError whose message names the file, the key and
what is allowed, in the words of nsm.config.FIELDS (the CLI's and the TUI's).
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from pathlib import Path
from typing import Any, Mapping

import tomli_w

from nsm.atomic import atomic_write_text
from nsm.text import plain
from nsm.config import CONFIG_SCHEMA_VERSION, FIELDS, ConfigError, FieldSpec, RunConfig, validate_config

MAX_BYTES = 1 << 20  # a config is a few hundred bytes; more is the wrong file (and never /dev/zero)

_LABELS = {spec.label: name for name, spec in FIELDS.items()}


class ConfigFileError(ValueError):
    """A config file that cannot be used. `errors` maps key -> message (empty for
    problems of the whole file); the message names the file."""

    def __init__(self, path: str | os.PathLike[str], message: str, errors: Mapping[str, str] | None = None):
        self.path = os.fspath(path)
        self.errors = dict(errors or {})
        super().__init__(message)


def read_config_values(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The knobs a TOML file sets, each checked on its own (knob name -> value).

    Rules that relate two knobs are checked once the file is merged with the
    rest (`load_config_file`, or the command line's flags)."""
    where = os.fspath(path)
    data = _parse(where, _read_text(where))
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, raw in data.items():
        if key == "schema_version":
            if raw != CONFIG_SCHEMA_VERSION or isinstance(raw, bool):
                errors[key] = f"schema_version must be {CONFIG_SCHEMA_VERSION} (got {_shown(raw)})"
            continue
        name = _knob_name(key)
        if name is None:
            close = difflib.get_close_matches(key.lower(), list(FIELDS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            errors[key] = f"unknown key; {hint}known keys: {', '.join(FIELDS)}"
            continue
        if name in values:
            errors[key] = f"sets {name} a second time (as {name} and {FIELDS[name].label}); keep one"
            continue
        problem = _type_problem(FIELDS[name], raw)
        if problem is None:
            try:
                values[name] = FIELDS[name].parse(raw)
            except ValueError as exc:
                problem = str(exc)
        if problem is not None:
            errors[key] = problem
    if errors:
        raise ConfigFileError(where, _message(where, errors), errors)
    return values


def load_config_file(path: str | os.PathLike[str], base: RunConfig | None = None) -> RunConfig:
    """The file's knobs on top of `base` (default: the defaults), fully checked."""
    values = read_config_values(path)
    try:
        return validate_config(values, base=base)
    except ConfigError as exc:
        raise ConfigFileError(path, _message(os.fspath(path), exc.errors), exc.errors) from None


def config_file_text(config: RunConfig, source: str | None = None) -> str:
    """Every knob of `config` as TOML, each under a comment with its help and what is allowed."""
    lines = [
        "# nsm-tui run configuration (TOML)." + (f" Written from {_comment(source)}." if source else ""),
        "# Use it with: nsm-tui train --config FILE   (flags given on the command line override it)",
        "#          or: nsm-tui sweep --config FILE --grid lr=1e-3,1e-4",
        "# Keys are the knobs of config.json; a knob left out keeps its default.",
        tomli_w.dumps({"schema_version": CONFIG_SCHEMA_VERSION}).rstrip("\n"),
    ]
    values = config.to_dict()
    for name, spec in FIELDS.items():
        expert = "" if spec.public else " [expert]"
        lines += ["", f"# {spec.help}{expert}: {spec.allowed()} (default {_default(spec)})"]
        lines.append(tomli_w.dumps({name: values[name]}).rstrip("\n"))
    return "\n".join(lines) + "\n"


def save_config_file(path: str | os.PathLike[str], config: RunConfig, source: str | None = None) -> Path:
    """Write `config` atomically to `path` (replacing a file there); ConfigFileError when it cannot."""
    target = Path(os.path.expanduser(os.fspath(path)))
    where = os.fspath(path)
    if target.is_dir():
        raise ConfigFileError(where, f"config file {where} is a folder; give a file name, e.g. {os.path.join(where, 'run.toml')}")
    folder = target.parent
    if not folder.is_dir():
        raise ConfigFileError(where, f"cannot write config file {where}: folder {folder} does not exist")
    try:
        atomic_write_text(target, config_file_text(config, source))
    except OSError as exc:
        raise ConfigFileError(where, f"cannot write config file {where}: {exc.strerror or exc}") from None
    return target


# ------------------------------------------------------------------ reading


def _read_text(where: str) -> str:
    path = os.path.expanduser(where)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigFileError(where, f"config file {where} does not exist") from None
    except OSError as exc:
        raise ConfigFileError(where, f"cannot read config file {where}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigFileError(where, f"config file {where} is a folder, not a TOML file")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigFileError(where, f"config file {where} is not a regular file (a pipe or a device); give a TOML file")
    if st.st_size > MAX_BYTES:
        raise ConfigFileError(where, f"config file {where} is {st.st_size} bytes; a TOML run config is at most {MAX_BYTES} bytes")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigFileError(where, f"cannot read config file {where}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigFileError(
            where, f"config file {where} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save it as UTF-8 TOML"
        ) from None


def _parse(where: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        raise ConfigFileError(where, f"config file {where} is not valid TOML: {exc}") from None


def _knob_name(key: str) -> str | None:
    if key in FIELDS:
        return key
    return _LABELS.get(key)


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a quoted string"}


def _type_problem(spec: FieldSpec, raw: Any) -> str | None:
    """TOML has types: a number in quotes or a true for a rate is a mistake to point at, not to guess."""
    kind = spec.kind
    if kind is bool:
        ok = isinstance(raw, bool)
    elif kind is int:
        ok = isinstance(raw, int) and not isinstance(raw, bool)
    elif kind is float:
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool)
    else:
        ok = isinstance(raw, str)
    if ok:
        return None
    example = tomli_w.dumps({spec.name: spec.default}).strip()
    how = "without quotes" if isinstance(raw, str) else f"as {_KINDS[kind]}"
    return f"{spec.label} must be {spec.allowed()}, written {how} like {example} (got {_shown(raw)})"


def _shown(raw: Any) -> str:
    if isinstance(raw, str):
        return f"the string {raw!r}"
    if isinstance(raw, dict):
        return "a table"
    if isinstance(raw, list):
        return "an array"
    if isinstance(raw, bool):
        return str(raw).lower()
    return repr(raw) if isinstance(raw, (int, float)) else f"a {type(raw).__name__}"


def _message(where: str, errors: Mapping[str, str]) -> str:
    return f"{where}: " + "; ".join(f"key {key}: {message}" for key, message in errors.items())


def _default(spec: FieldSpec) -> str:
    return tomli_w.dumps({"v": spec.default}).strip().removeprefix("v = ")


def _comment(text: str) -> str:
    # A run ref comes from the store; a comment must stay one line.
    return " ".join(plain(text).split())
