"""Reading the bytes of store objects: the one place outside the stores that does.

Metadata documents are read by :mod:`.meta` (with a size limit); chunks, shards and their
indexes by :func:`read_bytes` / :func:`read_bytes_async` here, or through arrays opened by
:mod:`.open`. Every key is confined first: local objects reached through a symbolic link that
leaves the store, and anything but regular files, count as absent; remote keys are checked by
the remote store before any request.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["read_bytes", "read_bytes_async", "read_limited", "read_many_bytes"]


_NODE_ARRAY = re.compile(rb'"node_type"\s*:\s*"array"')

#: From this many objects on, :func:`read_many_bytes` reads in threads, this many at once.
_THREADED_READS = 32
_READ_THREADS = 8


def _sync(coro: Any) -> Any:
    from zarr.core.sync import sync

    return sync(coro)


def _inside(root: Path, key: str, base: str | None = None) -> bool:
    """Return True when *key* below *root*, symbolic links resolved, stays inside *root*.

    *base* is ``os.path.realpath(root)`` when the caller already has it.
    """
    base = os.path.realpath(root) if base is None else base
    target = os.path.realpath(os.path.join(base, key))
    return target == base or target.startswith(base.rstrip(os.sep) + os.sep)


def read_bytes(store: Any, key: str, *, _base: str | None = None) -> bytes | None:
    """Read one whole object from a zarr store (None when absent); local stores directly.

    A local object reached through a symbolic link that leaves the store counts as absent:
    nothing outside the opened store is read. So do devices, FIFOs and sockets. Remote stores
    have no folders: a key naming a group there names no object and reads as absent.

    Raises
    ------
    NotAnObjectError
        When *key* names a folder of a local store (a group, an array, a folder of chunks).
    """
    root = getattr(store, "root", None)
    if isinstance(root, Path):
        if not _inside(root, key, _base):
            return None
        try:  # non-blocking open: a FIFO would otherwise wait for a writer forever
            fd = os.open(root / key, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # folders, devices, FIFOs, sockets
            os.close(fd)
            if stat.S_ISDIR(mode):
                raise _not_an_object(root, key)
            return None
        with open(fd, "rb") as fh:
            return fh.read()
    result: bytes | None = _sync(read_bytes_async(store, key))
    return result


def _not_an_object(root: Path, key: str) -> Exception:
    """Return the error for *key*, a folder of the local store at *root*."""
    from napari_zarr_explorer.errors import NotAnObjectError

    folder = root / key
    if (folder / ".zarray").is_file() or _NODE_ARRAY.search(_head(root, folder / "zarr.json")):
        kind = "an array"
    elif (folder / ".zgroup").is_file() or (folder / "zarr.json").is_file():
        kind = "a group"
    else:
        kind = "a folder"
    name = key.strip("/")
    if kind == "a folder":
        hint = "Read one of the files inside it instead."
    else:
        doc = f"{name}/zarr.json" if name else "zarr.json"
        hint = f"Open it as {kind}, or read an object inside it (e.g. '{doc}')."
    return NotAnObjectError(
        f"{key!r} in {root} is {kind}, not an object: there are no bytes to read at that key.",
        hint=hint,
    )


def _head(root: Path, path: Path) -> bytes:
    """Return the first bytes of the metadata document *path* (enough for its node type).

    Empty unless *path* is a regular file inside *root*.
    """
    if not _inside(root, os.path.relpath(path, root)) or not path.is_file():
        return b""
    try:
        with open(path, "rb") as fh:
            return fh.read(4096)
    except OSError:
        return b""


def read_many_bytes(store: Any, keys: Sequence[str]) -> list[bytes | None]:
    """Read whole objects of a local store one after another (:func:`read_bytes` each).

    The store's own folder is resolved once for all of them; every key is still confined.
    """
    root = getattr(store, "root", None)
    base = os.path.realpath(root) if isinstance(root, Path) else None
    if len(keys) < _THREADED_READS:
        return [read_bytes(store, k, _base=base) for k in keys]
    # many small files: a few threads overlap the system calls (file reads release the GIL)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        return list(pool.map(lambda k: read_bytes(store, k, _base=base), keys))


async def read_bytes_async(store: Any, key: str, byte_range: Any = None) -> bytes | None:
    """Read *key* (or the ``zarr.abc.store.ByteRequest`` *byte_range* of it); None if absent."""
    from zarr.core.buffer import default_buffer_prototype

    try:
        buf = await store.get(key, prototype=default_buffer_prototype(), byte_range=byte_range)
    except (FileNotFoundError, KeyError):
        return None
    return None if buf is None else bytes(buf.to_bytes())


def read_limited(store: Any, key: str, limit: int) -> bytes | None:
    """Read *key* whole if it has at most *limit* bytes (None when absent).

    The size is checked before reading where the store can tell it, and the read stops after
    *limit* bytes otherwise.

    Raises
    ------
    MetadataError
        When the object is larger than *limit* bytes.
    """
    from napari_zarr_explorer.store.limits import metadata_too_large
    from napari_zarr_explorer.store.meta import _bounded_get

    try:
        data: bytes | None = _sync(_bounded_get(store, key, limit))
    except (FileNotFoundError, KeyError):
        return None
    if data is not None and len(data) > limit:
        raise metadata_too_large(key, len(data), limit)
    return data
