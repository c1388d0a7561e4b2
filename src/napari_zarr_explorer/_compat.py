"""Every use of zarr-python's private attributes, in one place.

The package supports zarr-python from 3.1 (the newest release for Python 3.11) to the newest
release. A few things it needs have no public API in all of those versions: replacing an array's
codec pipeline (to bound decompression), the numcodecs codec inside zarr's wrapper codec, a
memory store's dict, the store inside a wrapper store, zarr's I/O event loop and thread. Each is
reached through one function here, and ``tests/test_compat.py`` checks each against the installed
zarr, so a zarr release that renames or removes one fails there, by name, instead of somewhere
downstream (the decompression guard, for one, refuses every array it cannot guard).

Nothing here imports zarr at module level: ``import napari_zarr_explorer`` stays cheap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

__all__ = [
    "ZarrInternalsChanged",
    "chunk_spec",
    "coalesced_get_ranges",
    "memory_store_items",
    "numcodecs_array_bytes_base",
    "numcodecs_array_bytes_codec_class",
    "numcodecs_bytes_bytes_codec_class",
    "numcodecs_codec_of",
    "object_store_lister",
    "set_codec_pipeline",
    "unknown_codec_errors",
    "v2_codec",
    "wrapped_store",
    "zarr_io_loop_and_thread",
]


class ZarrInternalsChanged(RuntimeError):
    """The installed zarr-python no longer has an internal this package relies on."""


def set_codec_pipeline(array: Any, pipeline: Any) -> None:
    """Make the ``zarr.Array`` *array* decode (and encode) through *pipeline*.

    ``AsyncArray.codec_pipeline`` is a field of a frozen dataclass, set once from the metadata;
    there is no public way to put a guarded pipeline in its place.
    """
    aa = array.async_array
    if not hasattr(aa, "codec_pipeline"):
        raise ZarrInternalsChanged("zarr's AsyncArray has no 'codec_pipeline' attribute any more")
    object.__setattr__(aa, "codec_pipeline", pipeline)


def v2_codec(filters: Any, compressor: Any) -> Any:
    """Make zarr's array-to-bytes codec for a Zarr v2 filter chain and compressor."""
    from zarr.codecs._v2 import V2Codec

    return V2Codec(filters=filters, compressor=compressor)


def numcodecs_codec_of(codec: Any) -> Any | None:
    """Return the numcodecs codec inside zarr's ``numcodecs.*`` wrapper *codec*, else None."""
    return getattr(codec, "_codec", None)


def numcodecs_array_bytes_base() -> type[Any]:
    """Return the base class of zarr's ``numcodecs.*`` array-to-bytes wrapper codecs (zfpy...)."""
    from zarr.codecs.numcodecs import _NumcodecsArrayBytesCodec

    return _NumcodecsArrayBytesCodec


def numcodecs_array_bytes_codec_class(class_name: str, codec_name: str) -> type[Any]:
    """Make a Zarr v3 codec ``numcodecs.<codec_name>`` for an array-to-bytes numcodecs codec.

    Built like zarr's own wrappers (e.g. zfpy), on their private base class.
    """
    return type(class_name, (numcodecs_array_bytes_base(),), {}, codec_name=codec_name)


def numcodecs_bytes_bytes_codec_class(class_name: str, codec_name: str) -> type[Any]:
    """Make a Zarr v3 codec ``numcodecs.<codec_name>`` for a bytes-to-bytes numcodecs codec.

    Built like zarr's own wrappers (e.g. shuffle), on their private base class.
    """
    from zarr.codecs.numcodecs import _NumcodecsBytesBytesCodec

    return type(class_name, (_NumcodecsBytesBytesCodec,), {}, codec_name=codec_name)


def unknown_codec_errors() -> tuple[type[Exception], ...]:
    """Return what ``zarr.registry.get_codec_class`` raises for a codec name it does not know.

    zarr 3.1 raises ``KeyError``; newer releases ``zarr.errors.UnknownCodecError`` (a
    ``ValueError``).
    """
    import zarr.errors

    newer = getattr(zarr.errors, "UnknownCodecError", None)
    return (KeyError,) if newer is None else (KeyError, newer)


def memory_store_items(store: Any) -> Iterator[tuple[str, Any]]:
    """Iterate over the ``(key, Buffer)`` pairs of a ``zarr.storage.MemoryStore``."""
    return iter(store._store_dict.items())


def wrapped_store(store: Any) -> Any | None:
    """Return the store inside a ``zarr.storage.WrapperStore`` (or one built like it), else None.

    zarr documents the wrapped store as "accessible via the ``._store`` attribute".
    """
    return getattr(store, "_store", None)


def object_store_lister(store: Any) -> Callable[[str], AsyncIterator[Any]] | None:
    """Return the listing with sizes of a ``zarr.storage.ObjectStore``, else None.

    Called with a prefix it yields object metadata (``path``, ``size``): one listing instead of
    a size request per key.
    """
    if type(store).__name__ != "ObjectStore":
        return None
    return getattr(store, "_list", None)


def zarr_io_loop_and_thread() -> tuple[Any, Any]:
    """Return zarr's event loop and the thread running it (None before zarr's first I/O)."""
    from zarr.core import sync as zsync

    return zsync.loop[0], zsync.iothread[0]


async def coalesced_get_ranges(
    store: Any, key: str, byte_ranges: Sequence[Any], *, prototype: Any, **options: Any
) -> AsyncIterator[Sequence[tuple[int, Any]]]:
    """Read many byte ranges of *key* through ``store.get`` (zarr's default ``get_ranges``).

    zarr releases after 3.1 read the inner chunks of a shard with ``Store.get_ranges``, and their
    ``WrapperStore`` hands that call straight to the wrapped store. A wrapper whose ``get``
    adds caching, retries or limits uses this instead, so ranged reads go through its ``get``.
    *options* with the value None are left to zarr's defaults.
    """
    from zarr.abc.store import Store

    base = getattr(Store, "get_ranges", None)
    if base is None:
        raise ZarrInternalsChanged("zarr's Store has no 'get_ranges' method")
    kwargs = {k: v for k, v in options.items() if v is not None}
    async for group in base(store, key, byte_ranges, prototype=prototype, **kwargs):
        yield group


def chunk_spec(array: Any, prototype: Any) -> Any:
    """Return the ``ArraySpec`` of one stored object (a chunk, or a shard) of *array*.

    zarr 3.1 has ``metadata.get_chunk_spec``; newer releases build the spec from the chunk grid
    instead. The spec is the same for every object of a regular grid.
    """
    aa = array.async_array
    md = aa.metadata
    getter = getattr(md, "get_chunk_spec", None)
    if getter is not None:
        return getter((0,) * len(md.shape), aa.config, prototype)
    try:
        from zarr.core.array_spec import ArraySpec
    except ImportError as exc:  # pragma: no cover - depends on zarr's layout
        raise ZarrInternalsChanged("zarr.core.array_spec.ArraySpec is gone") from exc
    shards = getattr(array, "shards", None)
    shape = tuple(int(n) for n in (shards if shards is not None else array.chunks))
    return ArraySpec(
        shape=shape,
        dtype=md.dtype,
        fill_value=md.fill_value,
        config=aa.config,
        prototype=prototype,
    )
