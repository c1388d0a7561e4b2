"""Whole objects read for rewrites: local chunk files, shard indexes, exact-size zstd decodes.

Used by recompression to read its source (many chunk files of one folder, the folder's
confinement checked once), to verify what it wrote (one read of each written shard, its index
parsed once, one pass of decoding) and to name a source shard whose index is damaged. Every
decode here is bounded by the chunk's declared size: a frame is decoded only when its header
declares exactly the bytes of one chunk, into a buffer of that size allocated by the decoder,
never by the frame.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from napari_zarr_explorer.errors import MetadataError
from napari_zarr_explorer.store.exact import ExactSizeError, decode_into
from napari_zarr_explorer.store.read import read_bytes
from napari_zarr_explorer.store.shardindex import (
    MISSING,
    IndexLayout,
    count_chunks,
    index_layout,
    parse_whole_shard,
)

__all__ = [
    "MISSING",
    "ExactZstdDecoder",
    "LocalObjectReader",
    "parse_shard_index",
    "shard_index_problem",
]


def parse_shard_index(
    data: bytes | memoryview,
    n_chunks: int,
    *,
    where: str,
    checksum: bool = True,
    at_end: bool = True,
) -> npt.NDArray[np.uint64]:
    """Check and parse the index of a ``sharding_indexed`` object read whole.

    The checks are those of :func:`napari_zarr_explorer.store.shardindex.parse_shard_index`.

    Parameters
    ----------
    data
        The whole shard.
    n_chunks
        Inner chunks per shard (the product of the inner chunk grid).
    where
        The shard's key, named in errors.
    checksum
        The index codecs end with ``crc32c`` (4 bytes after the index).
    at_end
        The index is at the end of the shard (``index_location`` "end"), else at the start.

    Returns
    -------
    numpy.ndarray
        ``uint64`` array of shape ``(n_chunks, 2)``: offset and size of each inner chunk in C
        order of the inner grid, both :data:`MISSING` for a chunk that is not stored.

    Raises
    ------
    MetadataError
        Naming *where*: the shard is too short for its index, the checksum does not match, or
        a row points outside the shard (or is half missing).
    """
    layout = IndexLayout(n_chunks=n_chunks, checksum=checksum, at_end=at_end)
    return parse_whole_shard(data, layout, where=where)


class ExactZstdDecoder:
    """Decode zstd frames that declare exactly *nbytes* of content into one reused buffer.

    Parameters
    ----------
    nbytes
        Decoded size of one chunk. The buffer of that size is allocated once here; a frame
        never decides what is allocated.

    Notes
    -----
    Calling the decoder with a frame returns a read-only view of the buffer holding the decoded
    bytes (valid until the next call), or None when the frame's header does not declare exactly
    *nbytes* (no content size, another size, not a zstd frame): the caller then decodes it
    through the general guarded path, which names the problem. A frame that declares the right
    size but is damaged inside raises zstd's error. Decoding releases the GIL.
    """

    def __init__(self, nbytes: int) -> None:
        self.nbytes = int(nbytes)
        self._buf = np.empty(self.nbytes, dtype=np.uint8)
        self._view = memoryview(self._buf.data).toreadonly()

    def __call__(self, frame: Any) -> memoryview | None:
        """Decode *frame*; None when it does not declare exactly :attr:`nbytes` of content."""
        if self.nbytes == 0:
            return None
        try:
            # the size rules of the one exact-size decoder: the declared size checked to be
            # exactly the buffer's, then decoded into it (numcodecs, which releases the GIL)
            decode_into("zstd", frame, self._buf)
        except ExactSizeError:
            return None
        return self._view


class LocalObjectReader:
    """Read whole objects of one local store, checking each folder's confinement once.

    The rules are those of :func:`napari_zarr_explorer.store.read_bytes`: an object reached
    through a symbolic link that leaves the store, or anything but a regular file, counts as
    absent. The folder of a key is resolved once per reader (keep a reader for one batch of
    reads, e.g. one task), and the object itself is opened without following a symbolic link:
    a key that is a link is handed to :func:`read_bytes`, which resolves it.

    Parameters
    ----------
    store
        A local zarr store (its ``root`` is a :class:`pathlib.Path`).
    """

    def __init__(self, store: Any) -> None:
        root = getattr(store, "root", None)
        if not isinstance(root, Path):
            raise TypeError("LocalObjectReader needs a local store")
        self.store = store
        self._base = os.path.realpath(root)
        self._prefix = self._base.rstrip(os.sep) + os.sep
        self._folders: dict[str, bool] = {}

    def _inside(self, folder: str) -> bool:
        ok = self._folders.get(folder)
        if ok is None:
            real = os.path.realpath(os.path.join(self._base, folder)) if folder else self._base
            ok = real == self._base or real.startswith(self._prefix)
            self._folders[folder] = ok
        return ok

    def read(self, key: str) -> bytes | None:
        """Return the object *key* (None when absent, outside the store or not a file)."""
        folder, _, name = key.rpartition("/")
        if name in ("", ".", "..") or not self._inside(folder):
            return read_bytes(self.store, key) if name in ("", ".", "..") else None
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(os.path.join(self._base, key), flags)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # the object is a symbolic link: resolve it fully
                return read_bytes(self.store, key)
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # folders, devices, FIFOs, sockets
                return None
            # One read of one byte more than the file's size: getting exactly its size means
            # the end was reached; otherwise (it changed, or a short read) read on to the end.
            data = os.read(fd, st.st_size + 1)
            return data if len(data) == st.st_size else data + _rest(fd)
        finally:
            os.close(fd)


def _rest(fd: int) -> bytes:
    """Read *fd* on to its end."""
    parts = []
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return b"".join(parts)


def _sharding(codecs: Sequence[Any]) -> Mapping[str, Any] | None:
    if len(codecs) != 1:
        return None
    first = codecs[0]
    if not isinstance(first, Mapping) or first.get("name") != "sharding_indexed":
        return None
    conf = first.get("configuration")
    return conf if isinstance(conf, Mapping) else None


def shard_index_problem(store: Any, key: str, metadata: Mapping[str, Any]) -> str | None:
    """Read the shard *key* of a sharded array and describe what is wrong with its index.

    Parameters
    ----------
    store
        The array's store.
    key
        Store key of one shard.
    metadata
        The array's checked metadata (``zarr.Array.metadata.to_dict()``).

    Returns
    -------
    str or None
        A sentence naming *key* when its index cannot be used (too short, checksum, offsets
        outside the shard); None when the shard is absent, its index is sound, or the index
        codecs are not ``bytes`` (+ ``crc32c``) and cannot be checked here.
    """
    conf = _sharding(list(metadata.get("codecs") or []))
    grid = metadata.get("chunk_grid")
    if conf is None or not isinstance(grid, Mapping):
        return None
    try:
        shard_shape = [int(n) for n in grid["configuration"]["chunk_shape"]]
        inner = [int(n) for n in conf["chunk_shape"]]
        layout = index_layout(conf, count_chunks(shard_shape, inner))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if layout is None:
        return None
    data = read_bytes(store, key)
    if data is None:
        return None
    try:
        parse_whole_shard(data, layout, where=key)
    except MetadataError as exc:
        return exc.message
    return None
