"""A store wrapper that records every read, to count the chunks a view really fetches.

Two logs, because zarr releases read shards differently:

- ``reads``: what the reader asked the store for, one entry per object or byte range: each
  ``get``, each key of ``get_partial_values``, and each range of ``get_ranges`` (zarr after 3.1
  asks for all the inner chunks of a shard it needs in one ``get_ranges`` call; zarr 3.1 calls
  ``get`` once per inner chunk). The same view gives the same ``reads`` on every zarr release.
- ``fetches``: what was then read from the wrapped store. The same as ``reads``, except that
  ``get_ranges`` may merge nearby ranges of one key into one fetch (zarr's coalescing).

The synchronous counterparts (``get_sync``, ``get_ranges_sync``), which newer zarr uses when a
store and every codec can work without the event loop, are logged the same way.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

from napari_zarr_explorer._compat import coalesced_get_ranges

__all__ = ["CountingStore", "Read"]


@dataclass(frozen=True, slots=True)
class Read:
    """One read: the key and the byte range asked for (None: the whole object)."""

    key: str
    byte_range: ByteRequest | None


class _Fetcher:
    """Reads from the wrapped store and logs each fetch (what ``get_ranges`` merges into)."""

    def __init__(self, owner: CountingStore) -> None:
        self._owner = owner

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        self._owner._log(self._owner.fetches, [Read(key, byte_range)])
        return await self._owner._store.get(key, prototype, byte_range)

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        self._owner._log(self._owner.fetches, [Read(key, byte_range)])
        return self._owner._store.get_sync(key, prototype=prototype, byte_range=byte_range)


class CountingStore(WrapperStore[Any]):
    """Forward everything to *store* and log each read (see the module's docstring)."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.reads: list[Read] = []
        self.fetches: list[Read] = []
        self._log_lock = threading.Lock()
        self._fetcher = _Fetcher(self)

    def _with_store(self, store: Any) -> CountingStore:
        return CountingStore(store)

    def _log(self, log: list[Read], entries: Iterable[Read]) -> None:
        with self._log_lock:
            log.extend(entries)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        self._log(self.reads, [Read(key, byte_range)])
        return await self._fetcher.get(key, prototype, byte_range)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        key_ranges = list(key_ranges)
        entries = [Read(k, r) for k, r in key_ranges]
        self._log(self.reads, entries)
        self._log(self.fetches, entries)
        return await self._store.get_partial_values(prototype, key_ranges)

    async def get_ranges(
        self,
        key: str,
        byte_ranges: Sequence[ByteRequest | None],
        *,
        prototype: BufferPrototype,
        max_concurrency: int | None = None,
        max_gap_bytes: int | None = None,
        max_coalesced_bytes: int | None = None,
    ) -> AsyncIterator[Sequence[tuple[int, Buffer | None]]]:
        # zarr's own coalescing over the wrapped store's get, as the wrapped (local or remote)
        # stores of this package do it, with each merged fetch logged
        self._log(self.reads, [Read(key, r) for r in byte_ranges])
        async for group in coalesced_get_ranges(
            self._fetcher,
            key,
            byte_ranges,
            prototype=prototype,
            max_concurrency=max_concurrency,
            max_gap_bytes=max_gap_bytes,
            max_coalesced_bytes=max_coalesced_bytes,
        ):
            yield group

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        self._log(self.reads, [Read(key, byte_range)])
        return self._fetcher.get_sync(key, prototype=prototype, byte_range=byte_range)

    def get_ranges_sync(
        self,
        key: str,
        byte_ranges: Sequence[ByteRequest | None],
        *,
        prototype: BufferPrototype,
        **options: Any,
    ) -> Sequence[tuple[int, Buffer | None]]:
        self._log(self.reads, [Read(key, r) for r in byte_ranges])
        base: Any = Store.get_ranges_sync  # zarr after 3.1 only, which alone calls this
        return base(self._fetcher, key, byte_ranges, prototype=prototype, **options)

    def clear_log(self) -> None:
        """Forget the reads logged so far."""
        with self._log_lock:
            self.reads.clear()
            self.fetches.clear()

    def keys_read(self, prefix: str) -> list[Read]:
        """Reads of keys below *prefix* (a node path), in order."""
        with self._log_lock:
            return [r for r in self.reads if r.key.startswith(prefix.rstrip("/") + "/")]
