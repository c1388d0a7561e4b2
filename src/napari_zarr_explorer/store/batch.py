"""Arrays laid out like a checked template, and their chunks read and decoded in one batch.

A plate's wells usually share one layout. Rather than reading every well's metadata, the reader
opens each well's arrays from the first well's checked metadata (:func:`array_like`) and reads
the chunks under a view of many wells at once (:func:`read_chunks_like`), through the
template's guarded codec pipeline: no chunk decodes beyond its declared size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FoundStore", "array_like", "read_chunks_like"]


class FoundStore:
    """A pass-through view of a store that notes whether any object was found."""

    def __init__(self, store: Any) -> None:
        from zarr.abc.store import Store

        if not isinstance(store, Store):
            raise TypeError(f"not a zarr store: {store!r}")
        self._store = store
        self.found = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:  # noqa: D102
        buf = await self._store.get(key, prototype, byte_range)
        if buf is not None:
            self.found = True
        return buf

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> Any:  # noqa: D102
        out = await self._store.get_partial_values(prototype, key_ranges)
        if any(b is not None for b in out):
            self.found = True
        return out


def array_like(template: Any, store: Any, key: str) -> tuple[Any, FoundStore]:
    """Open the array at *key* assuming it has *template*'s checked metadata (no request).

    Parameters
    ----------
    template
        A zarr array opened by :func:`~napari_zarr_explorer.store.open_array` (checked
        metadata, guarded codec pipeline).
    store
        The store *key* is in.
    key
        Store-relative path of the array, already confined (:func:`safe_join`).

    Returns
    -------
    tuple
        The array, and the :class:`FoundStore` it reads through: ``found`` tells afterwards
        whether any object existed where the template's layout put it.
    """
    import zarr
    from zarr.core.array import AsyncArray
    from zarr.storage import StorePath

    from napari_zarr_explorer._compat import set_codec_pipeline

    seen = FoundStore(store)
    aa = AsyncArray(metadata=template.metadata, store_path=StorePath(seen, key))  # type: ignore[arg-type]
    array = zarr.Array(aa)
    # the template's guarded codec pipeline (decompressed sizes checked), shared
    set_codec_pipeline(array, template.async_array.codec_pipeline)
    return array, seen


def read_chunks_like(
    template: Any,
    store: Any,
    keys: Sequence[str],
    coords: Sequence[Sequence[int]] | None = None,
) -> tuple[list[bool], list[np.ndarray | None]]:
    """Fetch the stored objects at *keys* and decode them in one call of *template*'s pipeline.

    Every key must name a stored object laid out like one of *template*'s stored objects (a
    chunk, or a shard when sharded). Objects are fetched concurrently (plain file reads on
    local folders) and decoded in one batch; when the batch fails, each object is decoded
    alone so that one damaged chunk only loses itself.

    With the grid position of each object (*coords*), arrays with a simple pipeline are
    decoded directly (:func:`~napari_zarr_explorer.store.shards.object_decoder`): a shard's
    index once, its inner chunks by the guarded decoder, only the part inside the array.

    Returns
    -------
    tuple
        ``found`` per key (an object is stored there) and the decoded array per key (None when
        absent or when it did not decode).
    """
    if coords is not None:
        from napari_zarr_explorer.store.shards import object_decoder

        direct = object_decoder(template)
        if direct is not None:
            return _read_direct(direct, store, keys, coords)
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    from napari_zarr_explorer._compat import chunk_spec
    from napari_zarr_explorer.store.read import read_many_bytes

    aa = template.async_array
    proto = default_buffer_prototype()
    spec = chunk_spec(template, proto)
    pipeline = aa.codec_pipeline
    local = None
    if isinstance(getattr(store, "root", None), Path):
        # a local folder: plain file reads in this thread beat one thread hop per chunk
        local = read_many_bytes(store, keys)

    async def run() -> tuple[list[Any], list[Any]]:
        if local is not None:
            raw = [None if b is None else proto.buffer.from_bytes(b) for b in local]
        else:
            raw = list(await asyncio.gather(*(store.get(k, proto) for k in keys)))
        present = [(b, spec) for b in raw if b is not None]
        try:
            decoded = list(await pipeline.decode(present)) if present else []
        except Exception:  # one bad chunk: decode one by one to find the one(s) that fail

            async def alone(item: Any) -> Any:
                try:
                    return next(iter(await pipeline.decode([item])))
                except Exception:
                    return None

            decoded = list(await asyncio.gather(*(alone(x) for x in present)))
        return raw, decoded

    raw, decoded = sync(run())
    found = [b is not None for b in raw]
    it = iter(decoded)
    arrays: list[np.ndarray | None] = []
    for b in raw:
        nd = next(it) if b is not None else None
        arrays.append(None if nd is None else nd.as_numpy_array())
    return found, arrays


def _read_direct(
    decode: Any, store: Any, keys: Sequence[str], coords: Sequence[Sequence[int]]
) -> tuple[list[bool], list[np.ndarray | None]]:
    from napari_zarr_explorer.store.read import read_bytes_async, read_many_bytes

    if isinstance(getattr(store, "root", None), Path):
        raw = read_many_bytes(store, keys)
    else:
        from zarr.core.sync import sync

        async def fetch() -> list[bytes | None]:
            return list(await asyncio.gather(*(read_bytes_async(store, k) for k in keys)))

        raw = sync(fetch())
    arrays: list[np.ndarray | None] = []
    for data, pos in zip(raw, coords, strict=True):
        if data is None:
            arrays.append(None)
            continue
        try:
            arrays.append(decode(data, pos))
        except Exception:  # this object only: shown as not decodable, like zarr's path
            arrays.append(None)
    return [b is not None for b in raw], arrays
