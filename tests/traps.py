"""Payloads that prove code was executed from data.

:func:`pickle_trap` returns bytes that, when unpickled, create a sentinel file. Tests put them
where a reader could unpickle them (a ``pickle`` compressor, an object codec) and then check that
the sentinel does not exist. :func:`prove_pickle_trap` unpickles the payload in a separate
process first, so a test cannot pass because the trap was malformed.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

__all__ = ["pickle_trap", "prove_pickle_trap"]


class _CreateFile:
    """Unpickles to ``open(path, "a")``: the file appears as soon as the bytes are loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "a"))


def pickle_trap(sentinel: str | os.PathLike[str]) -> bytes:
    """Return a pickle that creates *sentinel* when loaded (the class above is not needed)."""
    return pickle.dumps(_CreateFile(os.fspath(sentinel)), protocol=pickle.HIGHEST_PROTOCOL)


def prove_pickle_trap(payload: bytes, sentinel: str | os.PathLike[str]) -> None:
    """Unpickle *payload* in a fresh process; assert it created *sentinel*; remove it again."""
    sentinel = Path(sentinel)
    assert not sentinel.exists(), sentinel
    subprocess.run(
        [sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
        input=payload,
        check=True,
        timeout=60,
    )
    assert sentinel.exists(), "the pickle trap does not work: it would prove nothing"
    sentinel.unlink()
