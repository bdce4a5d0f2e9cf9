"""Which code a deployed app runs: a hash of the source the image carries.

The image adds the `nsm` and `remote` packages' `.py` files (Modal's
`add_local_python_source` default), so the hash covers exactly those: paths and
contents, in a fixed order. The image's pins live in remote/config.py, so a
changed pin changes the hash too. remote/app.py puts it on the app as a tag at
deploy time; before a launch the client compares it with this checkout's.
Plain Python (no `modal`), so the CLI computes it without the network.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from remote import config as rc

CODE_TAG = "nsm_code"  # the app tag holding the hash (Modal: 63 chars of [A-Za-z0-9._-])
HASH_CHARS = 16
REPO_ROOT = Path(__file__).resolve().parent.parent


def source_files(root: Path = REPO_ROOT) -> list[Path]:
    """The files the image ships, relative to `root`, sorted."""
    found: list[Path] = []
    for package in rc.LOCAL_PACKAGES:
        base = root / package
        found.extend(p.relative_to(root) for p in base.rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(found, key=lambda p: p.as_posix())


def compute_code_hash(root: Path = REPO_ROOT) -> str:
    digest = hashlib.sha256()
    for rel in source_files(root):
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update((root / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:HASH_CHARS]


@lru_cache(maxsize=1)
def code_hash() -> str:
    """This checkout's hash (computed once per process: a launch checks it, edits afterwards do not count)."""
    return compute_code_hash()
