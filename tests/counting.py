"""A store wrapper that records every read, to count the chunks a view really fetches."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

__all__ = ["CountingStore", "Read"]


@dataclass(frozen=True, slots=True)
class Read:
    """One read: the key and the byte range asked for (None: the whole object)."""

    key: str
    byte_range: ByteRequest | None


class CountingStore(WrapperStore[Any]):
    """Forward everything to *store* and log each ``get`` (and each key of a partial read)."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.reads: list[Read] = []
        self._log_lock = threading.Lock()

    def _with_store(self, store: Any) -> CountingStore:
        return CountingStore(store)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        with self._log_lock:
            self.reads.append(Read(key, byte_range))
        return await self._store.get(key, prototype, byte_range)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        key_ranges = list(key_ranges)
        with self._log_lock:
            self.reads.extend(Read(k, r) for k, r in key_ranges)
        return await self._store.get_partial_values(prototype, key_ranges)

    def clear_log(self) -> None:
        """Forget the reads logged so far."""
        with self._log_lock:
            self.reads.clear()

    def keys_read(self, prefix: str) -> list[Read]:
        """Reads of keys below *prefix* (a node path), in order."""
        with self._log_lock:
            return [r for r in self.reads if r.key.startswith(prefix.rstrip("/") + "/")]
