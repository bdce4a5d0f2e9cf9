"""Run names: what is allowed, and short fresh names stamped with the creation time.

A run name becomes a directory name, so it must be safe on every file system
and unable to escape the store (`..`, separators).
"""

from __future__ import annotations

import re
import secrets
import time

NAME_MAX_LEN = 64
ALLOWED_DESCRIPTION = (
    f"1-{NAME_MAX_LEN} characters of letters, digits, '.', '_' and '-', "
    "not starting with '.' or '-', without '..'"
)
_ALLOWED_CHARS = re.compile(r"[A-Za-z0-9._-]")


class RunNameError(ValueError):
    """A run (or domain) name that cannot be used as a directory in the store."""


def validate_run_name(name: object, *, what: str = "run name") -> str:
    """Return `name` unchanged if it is allowed; otherwise raise RunNameError saying why."""
    if not isinstance(name, str):
        raise RunNameError(f"{what} must be text, got {type(name).__name__}; allowed: {ALLOWED_DESCRIPTION}")
    problem = _problem(name)
    if problem:
        raise RunNameError(f"invalid {what} {name!r}: {problem}; allowed: {ALLOWED_DESCRIPTION}")
    return name


def is_valid_run_name(name: object) -> bool:
    return isinstance(name, str) and _problem(name) is None


def _problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character"
    if len(name) > NAME_MAX_LEN:
        return f"it is {len(name)} characters long (at most {NAME_MAX_LEN})"
    if ".." in name:
        return "it contains '..'"
    if name[0] in ".-":
        return f"it starts with {name[0]!r}"
    bad = sorted({c for c in name if not _ALLOWED_CHARS.fullmatch(c)})
    if bad:
        return "it contains " + ", ".join(repr(c) for c in bad)
    return None


def fresh_stem(now: float | None = None) -> str:
    """`MMDD-HHMM-xxxx`: short enough for an 80-column table, in local creation time;
    the random suffix keeps runs started in the same minute apart (the store retries
    the rare clash)."""
    stamp = time.strftime("%m%d-%H%M", time.localtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(2)}"


def generate_run_name(domain: str | None = None, now: float | None = None) -> str:
    """A fresh run name such as `1201-2044-6a7d`. The domain is already the run's folder
    and the first half of its ref (`planning/1201-2044-6a7d`), so the name does not repeat
    it; `domain` is accepted for callers that pass it. Older, longer names
    (`planning-20261201-204454-6a7d`) stay valid: only fresh names are shorter."""
    del domain
    return validate_run_name(fresh_stem(now))
