"""Terminal-safe text: what a run's files say is shown as literal characters.

A run's files (config values, log messages, errors, paths) can hold anything,
including terminal escape sequences (a title change, a cleared screen) and
control characters. `plain` turns such a string into one a terminal only
prints: escape sequences are dropped, other control characters become '?'
(newlines and tabs stay). Rich markup is a separate matter, left to the
viewers (`rich.markup.escape`, or `Text(...)` objects that never parse it).
"""

from __future__ import annotations

import re
from typing import Any

# ESC-introduced sequences: CSI (ESC [ ... final), OSC / DCS / SOS / PM / APC
# (ESC ] P X ^ _ ... up to BEL or ST, or to the end of the string), and
# two-character escapes (ESC + one character). Then the 8-bit forms: CSI (0x9b)
# and the string controls (0x90, 0x98, 0x9d, 0x9e, 0x9f) up to ST (0x9c) / BEL.
_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x7e]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
)
# What is left: C0 controls but tab and newline, DEL, C1 controls.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]|[\x80-\x9f]")
_C1 = re.compile(r"[\x80-\x9f]")


def plain(value: Any) -> str:
    """`value` as text a terminal shows literally: no escape sequences, no control characters."""
    s = value if isinstance(value, str) else str(value)
    if not _CONTROLS.search(s):
        return s  # the common case: nothing to do
    s = _SEQUENCES.sub("", s)
    s = _C1.sub("", s)
    return _CONTROLS.sub("?", s)


def is_plain(value: str) -> bool:
    """True when `plain` would leave `value` as it is."""
    return not _CONTROLS.search(value)
