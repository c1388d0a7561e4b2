"""One builder at a time for what tests build once and keep (environments, node modules).

``./dev test`` runs the suite on two Pythons at the same time, and both use the same caches in
the repository (``tests/.cache/``, ``.interop-cache/``): the first run to need one builds it
while holding its lock, the other waits and then finds it ready.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

__all__ = ["cache_lock"]


@contextlib.contextmanager
def cache_lock(folder: Path) -> Iterator[None]:
    """Hold the lock of the cache *folder* (a file next to it) until the block ends."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
