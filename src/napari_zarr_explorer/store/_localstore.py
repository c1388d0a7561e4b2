"""A read-only local Zarr store that never reads outside its folder.

zarr-python's ``LocalStore`` reads ``root / key`` as it is: a symbolic link in the store leads
wherever it points, and a FIFO named like a chunk or a metadata document blocks the reader until
some other process writes to it. :class:`ConfinedLocalStore` resolves every key
(``os.path.realpath``), requires the result to stay inside the store root, and reads regular
files only; anything else counts as absent.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, Self

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.core.buffer.core import default_buffer_prototype
from zarr.core.common import AccessModeLiteral
from zarr.storage import LocalStore

from napari_zarr_explorer.store.limits import metadata_too_large

__all__ = ["ConfinedLocalStore"]

_RESOLVED_CACHE_SIZE = 1 << 16
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
# Errors that mean "there is no regular file at this key".
_ABSENT_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP})


def _read(
    target: str, size: int, prototype: BufferPrototype, byte_range: ByteRequest | None
) -> Buffer:
    """Read the regular file *target* of *size* bytes (opened non-blocking)."""
    fd = os.open(target, _OPEN_FLAGS)
    with open(fd, "rb", closefd=True) as f:
        if byte_range is None:
            return prototype.buffer.from_bytes(f.read())
        if isinstance(byte_range, RangeByteRequest):
            f.seek(byte_range.start)
            # read(n) allocates n bytes first: a range from a hostile shard index may ask for
            # terabytes, so it is cut at the end of the file
            end = min(byte_range.end, max(size, byte_range.start))
            return prototype.buffer.from_bytes(f.read(max(0, end - byte_range.start)))
        if isinstance(byte_range, OffsetByteRequest):
            f.seek(byte_range.offset)
        elif isinstance(byte_range, SuffixByteRequest):
            f.seek(max(0, size - byte_range.suffix))
        else:
            raise TypeError(f"Unexpected byte_range, got {byte_range}.")
        return prototype.buffer.from_bytes(f.read())


class ConfinedLocalStore(LocalStore):
    """Read-only ``LocalStore`` confined to the real path of its root.

    Every key is resolved with :func:`os.path.realpath`; a key whose target is outside the
    root's real path (a symbolic link leaving the store, ``..``, an absolute key), or which is
    not a regular file (a FIFO, a device, a socket, a folder, a link loop), is absent: ``get``
    returns None, ``exists`` False, ``getsize`` raises ``FileNotFoundError`` and listings leave
    it out. Links that stay inside the store are followed. Files are opened non-blocking, so a
    FIFO never waits for a writer.

    Parameters
    ----------
    root
        The store folder.
    read_only
        Must be True: this store does not write.
    """

    supports_writes: bool = False
    supports_deletes: bool = False

    def __init__(self, root: Path | str, *, read_only: bool = True) -> None:
        if not read_only:
            raise ValueError("ConfinedLocalStore is read-only.")
        super().__init__(root, read_only=True)
        self._real_root = os.path.realpath(self.root)
        self._resolved: dict[str, str | None] = {}

    def with_read_only(self, read_only: bool = True) -> Self:
        """Return a copy of this store (it is always read-only)."""
        return type(self)(self.root, read_only=read_only)

    @classmethod
    async def open(
        cls, root: Path | str, *, read_only: bool = True, mode: AccessModeLiteral | None = None
    ) -> Self:
        """Create and open the store (always read-only)."""
        store = cls(root, read_only=True)
        await store._open()
        return store

    def __repr__(self) -> str:
        return f"ConfinedLocalStore('{self}')"

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._real_root = os.path.realpath(self.root)
        self._resolved = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_resolved", None)  # a cache, rebuilt where the store is unpickled
        return state

    # ------------------------------------------------------------------ confinement

    def _inside(self, target: str) -> bool:
        base = self._real_root
        return target == base or target.startswith(base.rstrip(os.sep) + os.sep)

    def _resolve(self, key: str) -> str | None:
        """Return the real path of *key*, or None when it leaves the store.

        Resolving costs a system call per path component, and a sharded read asks for the same
        shard key once per inner chunk, so results are remembered (links in a store opened for
        reading are not expected to change while it is read; the file type is still checked on
        every read).
        """
        try:
            return self._resolved[key]
        except KeyError:
            pass
        try:
            target: str | None = os.path.realpath(os.path.join(self._real_root, key))
        except ValueError:  # an embedded NUL: no such file
            target = None
        if target is not None and not self._inside(target):
            target = None
        if len(self._resolved) >= _RESOLVED_CACHE_SIZE:
            self._resolved.clear()
        self._resolved[key] = target
        return target

    def _stat(self, key: str) -> tuple[str, os.stat_result] | None:
        """Return the real path and ``os.stat`` of *key* if it is a regular file in the store."""
        target = self._resolve(key)
        if target is None:
            return None
        try:
            st = os.stat(target)
        except OSError as exc:
            if exc.errno in _ABSENT_ERRNOS:
                return None
            raise
        return (target, st) if stat.S_ISREG(st.st_mode) else None

    def _get_confined(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None
    ) -> Buffer | None:
        # The type is checked before opening, so that no FIFO, device or socket is ever opened;
        # the open is non-blocking in case the file was replaced in between.
        found = self._stat(key)
        if found is None:
            return None
        target, st = found
        try:
            return _read(target, st.st_size, prototype, byte_range)
        except OSError as exc:
            if exc.errno in _ABSENT_ERRNOS or exc.errno == errno.ENXIO:
                return None
            raise

    # ------------------------------------------------------------------ reading

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """Read *key* (None when absent, outside the store or not a regular file)."""
        self._ensure_open_sync()
        return self._get_confined(key, prototype or default_buffer_prototype(), byte_range)

    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """Read *key* (None when absent, outside the store or not a regular file)."""
        if not self._is_open:
            await self._open()
        return await asyncio.to_thread(
            self._get_confined, key, prototype or default_buffer_prototype(), byte_range
        )

    def _get_bounded(self, key: str, limit: int) -> bytes | None:
        found = self._stat(key)
        if found is None:
            return None
        target, st = found
        if st.st_size > limit:
            raise metadata_too_large(f"{self}/{key}", st.st_size, limit)
        try:
            fd = os.open(target, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno in _ABSENT_ERRNOS or exc.errno == errno.ENXIO:
                return None
            raise
        with open(fd, "rb", closefd=True) as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the check
                return None
            # read(n) allocates n bytes up front: read what the file holds, in pieces (it may
            # have grown since the check)
            data = bytearray()
            while len(data) <= limit:
                piece = f.read(min(max(st.st_size + 1 - len(data), 1 << 16), limit + 1 - len(data)))
                if not piece:
                    break
                data += piece
        if len(data) > limit:
            raise metadata_too_large(f"{self}/{key}", None, limit)
        return bytes(data)

    async def get_bounded(self, key: str, limit: int) -> bytes | None:
        """Read *key* whole if it has at most *limit* bytes (None when absent).

        Raises
        ------
        MetadataError
            When the file is larger: its size is checked before any byte is read.
        """
        if not self._is_open:
            await self._open()
        return await asyncio.to_thread(self._get_bounded, key, limit)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """Read byte ranges of several keys (None for each absent one)."""
        if not self._is_open:
            await self._open()
        return await asyncio.gather(
            *(
                asyncio.to_thread(self._get_confined, key, prototype, byte_range)
                for key, byte_range in key_ranges
            )
        )

    async def exists(self, key: str) -> bool:
        """Return True when *key* is a regular file inside the store."""
        return await asyncio.to_thread(self._stat, key) is not None

    async def getsize(self, key: str) -> int:
        """Size in bytes of *key*; ``FileNotFoundError`` when it is absent."""
        found = await asyncio.to_thread(self._stat, key)
        if found is None:
            raise FileNotFoundError(f"{self}: no file at {key!r}")
        return int(found[1].st_size)

    # ------------------------------------------------------------------ listing

    def _child_ok(self, entry: os.DirEntry[str]) -> str | None:
        """``"file"``, ``"dir"`` or None (left out) for one folder entry."""
        try:
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not self._inside(target):
                    return None
                st = os.stat(target)
                mode = st.st_mode
            else:
                mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            return None
        if stat.S_ISREG(mode):
            return "file"
        if stat.S_ISDIR(mode):
            return "dir"
        return None

    def _walk(self, prefix: str) -> list[str]:
        """Keys of the regular files below *prefix* (linked folders are not descended)."""
        prefix = prefix.strip("/")
        start = self._resolve(prefix)
        if start is None or not os.path.isdir(start):
            return []
        keys: list[str] = []
        stack = [(start, f"{prefix}/" if prefix else "")]
        while stack:
            folder, rel = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                kind = self._child_ok(entry)
                if kind == "file":
                    keys.append(f"{rel}{entry.name}")
                elif kind == "dir" and not entry.is_symlink():
                    stack.append((entry.path, f"{rel}{entry.name}/"))
        return keys

    def _children(self, prefix: str) -> list[str]:
        base = self._resolve(prefix.strip("/"))
        if base is None:
            return []
        try:
            entries = list(os.scandir(base))
        except OSError:
            return []
        return [e.name for e in entries if self._child_ok(e) is not None]

    async def list(self) -> AsyncIterator[str]:
        """Every key of the store (regular files inside it)."""
        for key in await asyncio.to_thread(self._walk, ""):
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """Every key below *prefix*."""
        for key in await asyncio.to_thread(self._walk, prefix):
            yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """List the names of the files and folders directly below *prefix*."""
        for name in await asyncio.to_thread(self._children, prefix):
            yield name

    async def move(self, dest_root: Path | str) -> None:
        """Not supported: the store is read-only."""
        self._check_writable()
