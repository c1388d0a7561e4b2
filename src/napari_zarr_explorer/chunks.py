"""Which chunks are really stored: per-chunk state and bytes, from listings and shard indexes.

The default map costs one listing of the array's prefix (with object sizes) plus, for sharded
arrays, one small byte-range read of each shard's index: no chunk data is read, so it stays cheap
for millions of chunks. ``verify=True`` decodes every stored chunk as well (a file system check
for Zarr) and lists the keys that fail.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import numpy as np
import numpy.typing as npt

from napari_zarr_explorer import codecs as _codecs
from napari_zarr_explorer._compat import memory_store_items, object_store_lister, wrapped_store
from napari_zarr_explorer.codecs import jsonable
from napari_zarr_explorer.errors import (
    AccessDeniedError,
    ExplorerError,
    LimitError,
    MetadataError,
    RemoteError,
    not_delivered,
)

if TYPE_CHECKING:
    from napari_zarr_explorer.store.shardindex import IndexLayout


__all__ = [
    "CORRUPT",
    "MAX_CHUNKS",
    "MISSING",
    "PARTIAL",
    "PRESENT",
    "STATE_NAMES",
    "UNKNOWN",
    "CancelLike",
    "ChunkMap",
    "ProgressCallback",
    "StoredListing",
    "aggregate",
    "chunk_map",
    "list_stored",
    "parse_chunk_keys",
]

MISSING = 0
"""No object is stored for the chunk: it reads as the fill value."""
PRESENT = 1
"""The chunk is stored (and decodes, when verified)."""
CORRUPT = 2
"""The chunk is stored but cannot be decoded, or the shard index says it lies past the shard end."""
UNKNOWN = 3
"""The state could not be determined (unlistable store, unreadable shard index codecs...)."""
PARTIAL = 4
"""Only in aggregated maps: a block mixing present and missing chunks."""

STATE_NAMES = {
    MISSING: "missing",
    PRESENT: "present",
    CORRUPT: "corrupt",
    UNKNOWN: "unknown",
    PARTIAL: "partial",
}

_MAX_PROBES = 200_000
MAX_CHUNKS = 2**24
"""Most chunks one map holds (its grids take about 9 bytes per chunk); larger arrays are refused."""
_INDEX_CONCURRENCY = 32
_VERIFY_MEMORY = 256 * 1024 * 1024
"""Decoded bytes in flight at most when verifying a sharded array (one shard at a time below)."""
_BULK_DECODE = True
"""Verify sharded arrays with simple inner codecs a whole shard at a time (see ``_verify``)."""


class ProgressCallback(Protocol):
    """``progress(done, total, message)``, called from a worker thread during long work."""

    def __call__(self, done: int, total: int, message: str) -> None:  # noqa: D102
        ...


class CancelLike(Protocol):
    """Anything with ``is_set()`` (a :class:`threading.Event`)."""

    def is_set(self) -> bool:  # noqa: D102
        ...


# --------------------------------------------------------------------------------------------
# store access


def run_sync(coro: Any) -> Any:
    """Run a coroutine on zarr's event loop (where the store's sessions live)."""
    from zarr.core.sync import sync

    return sync(coro)


def _unwrap(store: Any) -> Any:
    seen = 0
    while wrapped_store(store) is not None and seen < 8 and not _is_leaf_store(store):
        store = wrapped_store(store)
        seen += 1
    return store


def _is_leaf_store(store: Any) -> bool:
    from zarr.storage import FsspecStore, LocalStore, MemoryStore

    return isinstance(store, LocalStore | FsspecStore | MemoryStore)


@dataclass(frozen=True, slots=True)
class StoredListing:
    """The keys below a prefix with their stored sizes in bytes.

    Attributes
    ----------
    keys
        Keys relative to the listed prefix.
    sizes
        Sizes in bytes, aligned with ``keys``.
    """

    keys: list[str]
    sizes: npt.NDArray[np.int64]

    @property
    def total(self) -> int:
        """Sum of the sizes."""
        return int(self.sizes.sum()) if self.sizes.size else 0

    def as_dict(self) -> dict[str, int]:
        """``{key: size}``."""
        return dict(zip(self.keys, self.sizes.tolist(), strict=True))


def _join(prefix: str, key: str) -> str:
    return f"{prefix.rstrip('/')}/{key}" if prefix else key


def _node_where(where: str, path: str) -> str:
    from napari_zarr_explorer.store.locate import node_where

    return node_where(where, path)


def list_stored(store: Any, prefix: str = "") -> StoredListing | None:
    """List the objects below *prefix* with their sizes, or None when the store cannot list.

    Local stores are walked with ``os.scandir``; fsspec stores use ``find(detail=True)``; object
    stores their listing with sizes; memory stores their buffers. Other listable stores ask
    ``getsize`` for each key. HTTP stores cannot list: None.
    """
    prefix = prefix.strip("/")
    if not getattr(store, "supports_listing", False):
        return None
    inner = _unwrap(store)
    from zarr.storage import FsspecStore, LocalStore, MemoryStore

    if isinstance(inner, LocalStore):
        return _list_local(Path(inner.root), prefix)
    if isinstance(inner, MemoryStore):
        pre = f"{prefix}/" if prefix else ""
        items = [(k[len(pre) :], len(v)) for k, v in memory_store_items(inner) if k.startswith(pre)]
        return StoredListing([k for k, _ in items], np.array([s for _, s in items], np.int64))
    try:
        if isinstance(inner, FsspecStore):
            return _list_fsspec(inner, prefix)
        if object_store_lister(inner) is not None:
            return _list_obstore(inner, prefix)
        return _list_generic(store, prefix)
    except FileNotFoundError:
        return StoredListing([], np.zeros(0, dtype=np.int64))
    except ExplorerError:
        raise
    except PermissionError as exc:
        raise AccessDeniedError(
            f"{store}: listing {prefix or 'the store'} was refused ({exc}).",
            hint="Check the credentials (storage_options or the environment).",
        ) from exc
    except Exception as exc:
        raise RemoteError(
            f"{store}: listing {prefix or 'the store'} failed: {type(exc).__name__}: {exc}",
            hint="Try again; if the store cannot list, open it through a plain HTTP URL.",
        ) from exc


def _list_local(root: Path, prefix: str) -> StoredListing:
    base = root / prefix if prefix else root
    keys: list[str] = []
    sizes: list[int] = []
    if not base.is_dir():
        return StoredListing(keys, np.zeros(0, np.int64))
    stack: list[tuple[str, str]] = [(os.fspath(base), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = f"{rel}{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{name}/"))
                elif entry.is_file(follow_symlinks=False):
                    keys.append(name)
                    sizes.append(entry.stat(follow_symlinks=False).st_size)
            except OSError:
                continue
    return StoredListing(keys, np.array(sizes, dtype=np.int64))


def _list_fsspec(store: Any, prefix: str) -> StoredListing:
    fs = store.fs
    root = str(store.path).rstrip("/")
    base = f"{root}/{prefix}" if prefix else root

    async def _find() -> Any:
        return await fs._find(base, detail=True)

    found = run_sync(_find()) if fs.async_impl else fs.find(base, detail=True)
    keys: list[str] = []
    sizes: list[int] = []
    strip = len(base) + 1
    for name, info in found.items():
        if info.get("type") == "directory":
            continue
        name = str(name).rstrip("/")
        if not name.startswith(base):
            continue
        keys.append(name[strip:])
        sizes.append(int(info.get("size") or 0))
    return StoredListing(keys, np.array(sizes, dtype=np.int64))


def _list_obstore(store: Any, prefix: str) -> StoredListing:
    pre = f"{prefix}/" if prefix else ""

    async def _collect() -> list[tuple[str, int]]:
        lister = object_store_lister(store)
        assert lister is not None
        return [(obj["path"], int(obj["size"])) async for obj in lister(pre)]

    items = run_sync(_collect())
    return StoredListing(
        [k[len(pre) :] for k, _ in items], np.array([s for _, s in items], dtype=np.int64)
    )


def _list_generic(store: Any, prefix: str) -> StoredListing:
    pre = f"{prefix}/" if prefix else ""

    async def _collect() -> tuple[list[str], list[int]]:
        keys = [k async for k in store.list_prefix(pre)]

        async def _size(key: str) -> int:
            try:
                return int(await store.getsize(key))
            except (FileNotFoundError, KeyError):
                return 0

        sizes = await _bounded_map(keys, _size, _INDEX_CONCURRENCY)
        return [k[len(pre) :] for k in keys], list(sizes)

    keys, sizes = run_sync(_collect())
    return StoredListing(keys, np.array(sizes, dtype=np.int64))


async def _bounded_map(
    items: Sequence[Any], fn: Callable[[Any], Any], concurrency: int
) -> list[Any]:
    """``[await fn(x) for x in items]`` with at most *concurrency* calls in flight.

    A few worker coroutines pull from the list, so millions of items never become millions of
    tasks at once.
    """
    results: list[Any] = [None] * len(items)
    position = 0

    async def _worker() -> None:
        nonlocal position
        while position < len(items):
            i = position
            position += 1
            results[i] = await fn(items[i])

    await asyncio.gather(*(_worker() for _ in range(max(1, min(concurrency, len(items) or 1)))))
    return results


def _probe_sizes(
    store: Any,
    keys: Sequence[str],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelLike | None = None,
    failures: dict[str, BaseException] | None = None,
) -> npt.NDArray[np.int64]:
    """Size of each key (``-1`` when absent) by asking the store for each (HEAD requests).

    ``-2`` marks a key not asked (cancelled) or whose answer was an error; the errors go to
    *failures*, by key.
    """

    async def _all() -> list[int]:
        done = 0

        async def _one(key: str) -> int:
            nonlocal done
            if cancel is not None and cancel.is_set():
                return -2
            try:
                size = int(await store.getsize(key))
            except (FileNotFoundError, KeyError):
                size = -1
            except Exception as exc:
                size = -2
                if failures is not None:
                    failures[key] = exc
            done += 1
            if progress is not None and (done % 256 == 0 or done == len(keys)):
                progress(done, len(keys), "probing chunks")
            return size

        return await _bounded_map(keys, _one, _INDEX_CONCURRENCY)

    return np.array(run_sync(_all()), dtype=np.int64)


def _refused(exc: BaseException) -> bool:
    """Tell whether *exc* is, or was caused by, a refusal (HTTP 401/403: access denied)."""
    from napari_zarr_explorer.errors import AccessDeniedError, cause_chain

    return any(isinstance(e, AccessDeniedError) for e in cause_chain(exc))


def _unanswered(
    where: str,
    path: str,
    count: int,
    total: int,
    what: str,
    key: str,
    exc: BaseException,
    errors: Iterable[BaseException] = (),
) -> str:
    """Say that the store failed to answer for *count* of *total* chunks or shards.

    Their chunks are unknown (not missing, not corrupt); *key* and *exc* are the first failure.
    """
    from napari_zarr_explorer.errors import error_message

    at = _node_where(where, key)
    message = error_message(exc)
    if at not in message:
        message = f"{at}: {message}"
    which = "their chunks show" if what == "shards" else "they show"
    # a store that refuses (HTTP 403; S3 answers so for absent keys when it may not list) did
    # answer: it would not say. Said so when every failure (*errors*, else *exc*) was one.
    refused = all(_refused(e) for e in (list(errors) or [exc]))
    did = "refused access to" if refused else "failed to answer for"
    return (
        f"{_node_where(where, path)}: the store {did} {count} of {total} {what}; "
        f"{which} as unknown. The first: {message}"
    )


# --------------------------------------------------------------------------------------------
# chunk keys


def parse_chunk_keys(
    keys: Sequence[str],
    grid: Sequence[int],
    encoding: tuple[str, str],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Turn chunk keys (relative to the array) into flat grid indices, vectorised.

    Parameters
    ----------
    keys
        Keys below the array prefix (metadata keys are ignored).
    grid
        The chunk grid shape.
    encoding
        ``(name, separator)`` from :func:`napari_zarr_explorer.codecs.chunk_key_encoding`.

    Returns
    -------
    flat, valid
        ``flat[i]`` is the C-order flat grid index of ``keys[i]`` where ``valid[i]``; other keys
        (metadata, strays, out-of-grid) have ``valid[i] == False``. For grids of more than
        2**63 cells no flat index fits in 64 bits: ``flat`` is then -1 where ``valid``.
    """
    name, sep = encoding
    ndim = len(grid)
    n = len(keys)
    valid = np.zeros(n, dtype=bool)
    flat = np.zeros(n, dtype=np.int64)
    if n == 0:
        return flat, valid
    if ndim == 0:
        target = "c" if name == "default" else "0"
        for i, key in enumerate(keys):
            if key == target:
                valid[i] = True
        return flat, valid
    lead = f"c{sep}" if name == "default" else ""
    esc = re.escape(sep)
    pattern = re.compile(rf"{re.escape(lead)}\d+(?:{esc}\d+){{{ndim - 1}}}")
    match = pattern.fullmatch
    cut = len(lead)
    positions = [i for i, k in enumerate(keys) if match(k)]
    if not positions:
        return flat, valid
    bodies = [keys[i][cut:] for i in positions]
    text = " ".join(bodies)
    if sep != " ":
        text = text.replace(sep, " ")
    numbers = np.fromstring(text, sep=" ", dtype=np.int64)  # text mode: fast and not deprecated
    idx = numbers.reshape(len(positions), ndim)
    int64_max = int(np.iinfo(np.int64).max)
    limits = np.asarray([min(int(g), int64_max) for g in grid], dtype=np.int64)
    inside = np.all(idx < limits, axis=1)
    pos = np.asarray(positions, dtype=np.int64)
    if idx.size and inside.any():
        if math.prod(int(g) for g in grid) <= int64_max:
            flat[pos[inside]] = np.ravel_multi_index(
                tuple(idx[inside].T), tuple(int(g) for g in grid)
            )
        else:  # no flat index fits in 64 bits: only the validity is known
            flat[pos[inside]] = -1
    valid[pos[inside]] = True
    return flat, valid


_META_KEYS = frozenset({".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"})


# --------------------------------------------------------------------------------------------
# shard index


def decode_shard_index(
    raw: bytes,
    chunks_per_shard: Sequence[int],
    index_codecs: Sequence[_codecs.CodecInfo],
    *,
    where: str,
) -> npt.NDArray[np.uint64]:
    """Decode a shard index into an ``(*chunks_per_shard, 2)`` array of ``(offset, nbytes)``.

    The length and checksum are checked by the store layer's shard index reader; entries are
    returned as stored (:func:`~napari_zarr_explorer.store.shardindex.entry_masks` tells
    missing and bad ones apart).

    Raises
    ------
    MetadataError
        When the checksum does not match, the size is wrong, or a codec is not supported.
    """
    layout = _index_layout(index_codecs, math.prod(chunks_per_shard), "end")
    if layout is None:
        names = ", ".join(c.name for c in index_codecs)
        raise MetadataError(
            f"{where}: shard index codecs ({names}) are not supported for index reads."
        )
    from napari_zarr_explorer.store.shardindex import decode_index

    return decode_index(raw, layout, where=where).reshape((*chunks_per_shard, 2))


def _index_layout(
    index_codecs: Sequence[_codecs.CodecInfo], n_chunks: int, location: str
) -> IndexLayout | None:
    """Return the layout of a shard index (see ``store.shardindex.index_layout``)."""
    from napari_zarr_explorer.store.shardindex import index_layout

    conf = {
        "index_codecs": [{"name": c.name, "configuration": c.configuration} for c in index_codecs],
        "index_location": location,
    }
    return index_layout(conf, n_chunks)


async def _read_index(store: Any, key: str, nbytes: int, location: str) -> bytes | None:
    from zarr.abc.store import RangeByteRequest, SuffixByteRequest

    from napari_zarr_explorer.store import read_bytes_async

    request = SuffixByteRequest(nbytes) if location == "end" else RangeByteRequest(0, nbytes)
    return await read_bytes_async(store, key, request)


# --------------------------------------------------------------------------------------------
# the map


@dataclass(kw_only=True, frozen=True, slots=True)
class ChunkMap:
    """Per-chunk state and stored bytes of one array.

    Attributes
    ----------
    url, path
        The store and the array's path in it.
    zarr_format
        2 or 3.
    shape, dtype
        The array's shape and data type.
    chunk_shape
        Shape of the chunks the map describes (inner chunks when sharded).
    shard_shape
        Shape of the shards, or None when unsharded.
    key_encoding
        ``(name, separator)`` of the chunk keys.
    state
        ``uint8`` array in chunk-grid shape: :data:`MISSING`, :data:`PRESENT`, :data:`CORRUPT`,
        :data:`UNKNOWN`.
    nbytes
        ``int64`` array in chunk-grid shape: stored bytes of each chunk (0 when missing, -1 when
        unknown). For sharded arrays, from the shard index.
    shard_nbytes
        ``int64`` array in shard-grid shape (-1 when unknown, 0 when missing); None when
        unsharded.
    corrupt_keys
        Keys (relative to the array, as stored) of objects that failed.
    problems
        ``{key: message}`` for the corrupt keys.
    stray_keys
        Keys below the array that are neither metadata nor in the chunk grid (capped at 100).
    verified
        True when every stored chunk was decoded.
    listed
        True when the map comes from a listing; False when each key was probed.
    cancelled
        True when the work was cancelled: states not reached are :data:`UNKNOWN`.
    unanswered
        Number of objects the store did not deliver (a server error, a dropped connection, a
        time-out after the retries, or a refusal): chunks, or shards when a whole shard or its
        index was not delivered (a sharded array's inner chunks when decoding them failed so).
        Their chunks are :data:`UNKNOWN` and a line of *warnings* names the first. The map is
        then incomplete: ``verified`` is False and the command line exits with 3.
    warnings
        Anything noteworthy (unlistable store, unsupported index codec...).
    """

    url: str
    path: str
    zarr_format: int
    shape: tuple[int, ...]
    dtype: str
    itemsize: int = 0
    chunk_shape: tuple[int, ...]
    shard_shape: tuple[int, ...] | None = None
    key_encoding: tuple[str, str] = ("default", "/")
    state: npt.NDArray[np.uint8]
    nbytes: npt.NDArray[np.int64]
    shard_nbytes: npt.NDArray[np.int64] | None = None
    metadata_bytes: int = 0
    corrupt_keys: tuple[str, ...] = ()
    problems: Mapping[str, str] = field(default_factory=dict)
    stray_keys: tuple[str, ...] = ()
    verified: bool = False
    listed: bool = True
    cancelled: bool = False
    unanswered: int = 0
    dimension_names: tuple[str | None, ...] | None = None
    warnings: tuple[str, ...] = ()

    # -- totals ---------------------------------------------------------------------------
    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Number of chunks along each axis."""
        return tuple(self.state.shape)

    @property
    def shard_grid_shape(self) -> tuple[int, ...] | None:
        """Number of shards along each axis, or None when unsharded."""
        if self.shard_shape is None:
            return None
        return _codecs.grid_shape(self.shape, self.shard_shape)

    @property
    def chunks_total(self) -> int:
        """Number of chunks in the grid."""
        return int(self.state.size)

    def count(self, state: int) -> int:
        """Count the chunks in *state*."""
        return int(np.count_nonzero(self.state == state))

    @property
    def chunks_present(self) -> int:
        """Stored chunks that are not corrupt."""
        return self.count(PRESENT)

    @property
    def chunks_missing(self) -> int:
        """Chunks not stored (read as the fill value)."""
        return self.count(MISSING)

    @property
    def chunks_corrupt(self) -> int:
        """Chunks that could not be decoded."""
        return self.count(CORRUPT)

    @property
    def chunks_unknown(self) -> int:
        """Chunks whose state is unknown."""
        return self.count(UNKNOWN)

    @property
    def shards_total(self) -> int | None:
        """Number of shards in the grid, or None when unsharded."""
        return None if self.shard_nbytes is None else int(self.shard_nbytes.size)

    @property
    def shards_present(self) -> int | None:
        """Number of stored shards, or None when unsharded."""
        return None if self.shard_nbytes is None else int(np.count_nonzero(self.shard_nbytes > 0))

    @property
    def bytes_stored(self) -> int | None:
        """Bytes stored for the chunk (or shard) objects; None when unknown."""
        sizes = self.shard_nbytes if self.shard_nbytes is not None else self.nbytes
        if sizes.size and bool((sizes < 0).any()):
            known = sizes[sizes >= 0]
            return int(known.sum()) if known.size else None
        return int(sizes.sum())

    @property
    def logical_bytes(self) -> int:
        """Bytes of the whole array in memory."""
        return int(math.prod(self.shape) * self.itemsize)

    # -- geometry -------------------------------------------------------------------------
    def chunk_bounds(self, index: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Return ``(start, stop)`` in array coordinates of the chunk at grid *index*."""
        start = tuple(int(i) * c for i, c in zip(index, self.chunk_shape, strict=True))
        stop = tuple(
            min(s + c, n) for s, c, n in zip(start, self.chunk_shape, self.shape, strict=True)
        )
        return start, stop

    def chunk_at(self, point: Sequence[float]) -> tuple[int, ...]:
        """Grid index of the chunk containing the array coordinate *point*."""
        return tuple(
            int(min(max(int(p) // c, 0), g - 1))
            for p, c, g in zip(point, self.chunk_shape, self.grid_shape, strict=True)
        )

    def key_for(self, index: Sequence[int]) -> str:
        """Store key (relative to the array) of the object holding the chunk at grid *index*.

        For sharded arrays this is the key of the shard containing the chunk.
        """
        if self.shard_shape is not None:
            per = [s // c for s, c in zip(self.shard_shape, self.chunk_shape, strict=True)]
            index = [int(i) // p for i, p in zip(index, per, strict=True)]
        return _codecs.chunk_key(index, self.key_encoding)

    def plane(
        self, point: Sequence[int | None]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
        """Return the 2-D slice of ``state`` and ``nbytes`` through *point*.

        Parameters
        ----------
        point
            One entry per array axis: an array coordinate (pixel index) for the axes not shown,
            None for the (usually two) axes shown.

        Returns
        -------
        state, nbytes
            The maps restricted to the chunks intersecting the plane.
        """
        if len(point) != len(self.shape):
            raise ValueError(f"point has {len(point)} entries, the array has {len(self.shape)}")
        sel: list[int | slice] = []
        for p, c, g in zip(point, self.chunk_shape, self.grid_shape, strict=True):
            sel.append(slice(None) if p is None else int(min(max(int(p) // c, 0), g - 1)))
        key = tuple(sel)
        return self.state[key], self.nbytes[key]

    def projection(self) -> npt.NDArray[np.uint8]:
        """Reduce the state map to the last two grid axes (values as in :func:`aggregate`)."""
        if self.state.ndim <= 2:
            return self.state
        lead = tuple(range(self.state.ndim - 2))
        return _combine(self.state, lead)

    def aggregated(self, max_cells: int = 128) -> tuple[npt.NDArray[np.uint8], tuple[int, ...]]:
        """Downsample the 2-D projection so that no side exceeds *max_cells* blocks."""
        proj = self.projection()
        return aggregate(proj, max_cells)

    # -- renderings -----------------------------------------------------------------------
    def verified_text(self) -> str:
        """Say whether every stored chunk was decoded, and if not, why."""
        if self.verified:
            return "yes"
        if self.unanswered:
            return "no: the store did not deliver some of the data (see the warning)"
        if self.cancelled:
            return "no: cancelled"
        return "no (listing only)"

    def to_dict(self, *, include_grid: bool = False) -> dict[str, Any]:
        """JSON-safe summary; with *include_grid* also the state and nbytes grids as lists."""
        out: dict[str, Any] = {
            "url": self.url,
            "path": self.path,
            "zarr_format": self.zarr_format,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "chunk_shape": list(self.chunk_shape),
            "shard_shape": list(self.shard_shape) if self.shard_shape is not None else None,
            "grid_shape": list(self.grid_shape),
            "chunks_total": self.chunks_total,
            "chunks_present": self.chunks_present,
            "chunks_missing": self.chunks_missing,
            "chunks_corrupt": list(self.corrupt_keys),
            "chunks_corrupt_count": self.chunks_corrupt,
            "chunks_unknown": self.chunks_unknown,
            "shards_total": self.shards_total,
            "shards_present": self.shards_present,
            "bytes_stored": self.bytes_stored,
            "logical_bytes": self.logical_bytes,
            "problems": dict(self.problems),
            "stray_keys": list(self.stray_keys),
            "verified": self.verified,
            "listed": self.listed,
            "cancelled": self.cancelled,
            "unanswered": self.unanswered,
            "warnings": list(self.warnings),
        }
        if include_grid:
            out["state"] = self.state.tolist()
            out["nbytes"] = self.nbytes.tolist()
        return jsonable(out)  # type: ignore[no-any-return]

    def __str__(self) -> str:
        lines = [
            f"Chunk map of {self.url}{'/' + self.path if self.path else ''}",
            f"  shape {self.shape}  dtype {self.dtype}  chunks {self.chunk_shape}"
            + (f"  shards {self.shard_shape}" if self.shard_shape else ""),
            f"  chunks: {self.chunks_total} total, {self.chunks_present} present, "
            f"{self.chunks_missing} missing, {self.chunks_corrupt} corrupt"
            + (f", {self.chunks_unknown} unknown" if self.chunks_unknown else ""),
        ]
        if self.shard_nbytes is not None:
            lines.append(f"  shards: {self.shards_total} total, {self.shards_present} stored")
        stored = self.bytes_stored
        lines.append(
            f"  bytes stored: {_human(stored)}  logical: {_human(self.logical_bytes)}"
            + (f"  compression ratio {self.logical_bytes / stored:.2f}x" if stored else "")
        )
        lines.append(f"  verified: {self.verified_text()}")
        for key in self.corrupt_keys[:20]:
            lines.append(f"  corrupt: {key}: {self.problems.get(key, '')}")
        if len(self.corrupt_keys) > 20:
            lines.append(f"  ... and {len(self.corrupt_keys) - 20} more corrupt keys")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Return the HTML of this map for Jupyter: a table and a picture of the grid."""
        from napari_zarr_explorer._html import chunk_svg, esc, human_bytes, legend, table

        max_cells = 96
        blocks, factor = self.aggregated(max_cells)
        stored = self.bytes_stored
        rows: list[tuple[str, Any]] = [
            ("array", f"{self.url}{'/' + self.path if self.path else ''}"),
            ("shape / dtype", f"{list(self.shape)} {self.dtype}"),
            ("chunk shape", list(self.chunk_shape)),
            ("shard shape", list(self.shard_shape) if self.shard_shape else "none"),
            ("grid", list(self.grid_shape)),
            ("chunks", self.chunks_total),
            ("present", self.chunks_present),
            ("missing", self.chunks_missing),
            ("corrupt", self.chunks_corrupt),
            ("bytes stored", human_bytes(stored)),
            ("logical bytes", human_bytes(self.logical_bytes)),
            ("compression ratio", f"{self.logical_bytes / stored:.2f}x" if stored else "-"),
            ("verified", self.verified_text()),
        ]
        if self.shard_nbytes is not None:
            rows.insert(6, ("shards (stored/total)", f"{self.shards_present}/{self.shards_total}"))
        note = ""
        if self.state.ndim > 2:
            note += " (all leading axes combined)"
        if any(f > 1 for f in factor):
            note += f" (each cell: {'x'.join(str(f) for f in factor)} chunks)"
        parts = [
            "<div class='nze-chunkmap'>",
            table(["", ""], rows),
            f"<div style='font-size:11px'>chunk grid{esc(note)}</div>",
            chunk_svg(blocks),
            legend(),
        ]
        if self.corrupt_keys:
            shown = self.corrupt_keys[:20]
            parts.append(
                table(
                    ["corrupt key", "problem"],
                    [(k, self.problems.get(k, "")) for k in shown],
                )
            )
            if len(self.corrupt_keys) > len(shown):
                parts.append(f"<div>... and {len(self.corrupt_keys) - len(shown)} more</div>")
        for w in self.warnings:
            parts.append(f"<div class='nze-warn'>{esc(w)}</div>")
        parts.append("</div>")
        return "".join(parts)


def _human(n: int | None) -> str:
    from napari_zarr_explorer._html import human_bytes

    return human_bytes(n)


def _combine(state: npt.NDArray[np.uint8], axes: tuple[int, ...]) -> npt.NDArray[np.uint8]:
    if not axes:
        return state
    any_corrupt = np.any(state == CORRUPT, axis=axes)
    any_unknown = np.any(state == UNKNOWN, axis=axes)
    all_present = np.all(state == PRESENT, axis=axes)
    all_missing = np.all(state == MISSING, axis=axes)
    out = np.full(any_corrupt.shape, PARTIAL, dtype=np.uint8)
    out[all_present] = PRESENT
    out[all_missing] = MISSING
    out[any_unknown & ~all_present & ~all_missing] = UNKNOWN
    out[any_corrupt] = CORRUPT
    return out


def aggregate(
    state: npt.NDArray[np.uint8], max_cells: int = 128
) -> tuple[npt.NDArray[np.uint8], tuple[int, ...]]:
    """Downsample a state grid by blocks so that no side exceeds *max_cells*.

    A block is :data:`CORRUPT` when any chunk in it is, :data:`PRESENT` / :data:`MISSING` when
    all are, :data:`UNKNOWN` when some are unknown, else :data:`PARTIAL`.

    Returns
    -------
    blocks, factor
        The aggregated grid and the block size along each axis.
    """
    factor = tuple(max(1, -(-s // max_cells)) for s in state.shape)
    if all(f == 1 for f in factor):
        return state, factor
    padded_shape = tuple(-(-s // f) * f for s, f in zip(state.shape, factor, strict=True))
    pad = [(0, p - s) for p, s in zip(padded_shape, state.shape, strict=True)]
    # Pad with a value that never changes the outcome: replicate the edge.
    padded = np.pad(state, pad, mode="edge") if any(p for _, p in pad) else state
    split: list[int] = []
    for p, f in zip(padded_shape, factor, strict=True):
        split.extend([p // f, f])
    blocks = padded.reshape(split)
    axes = tuple(range(1, 2 * state.ndim, 2))
    return _combine(blocks, axes), factor


# --------------------------------------------------------------------------------------------
# building a map


def _resolve_level(
    store: Any, path: str, level: int | None, where: str
) -> tuple[str, Mapping[str, Any], int]:
    """Follow an OME multiscale group to the array of *level* (0 by default)."""
    from napari_zarr_explorer.errors import PathEscapeError
    from napari_zarr_explorer.store import read_node

    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise PathEscapeError(
            f"{where}: the array path {path!r} leaves the store.",
            hint="Give a path inside the store (see `napari-zarr-explorer inspect`).",
        )
    path = "/".join(parts)
    located = _node_where(where, path)
    node = read_node(store, path, where=where)
    if node is None:
        raise MetadataError(
            f"{located}: no Zarr array or group here (no zarr.json, .zarray or .zgroup).",
            hint="Check the path; `napari-zarr-explorer inspect` lists the arrays.",
        )
    if node.kind == "array":
        return path, node.metadata, node.zarr_format
    datasets = _multiscale_paths(node.attributes)
    if not datasets:
        raise ExplorerError(
            f"{located} is a group, not an array, and has no OME multiscales.",
            hint="Give the path of an array (see `napari-zarr-explorer inspect`).",
        )
    lvl = 0 if level is None else int(level)
    if not 0 <= lvl < len(datasets):
        raise ExplorerError(
            f"{located}: level {lvl} does not exist (levels 0..{len(datasets) - 1})."
        )
    from napari_zarr_explorer.errors import PathEscapeError
    from napari_zarr_explorer.store import safe_join

    try:
        sub = safe_join(path, datasets[lvl])
    except PathEscapeError as exc:
        doc = ".zattrs" if node.zarr_format == 2 else "zarr.json"
        raise PathEscapeError(
            f"{_node_where(where, _join(path, doc))}: multiscales level {lvl}: {exc}",
            hint="Fix the dataset path in the metadata, or give the array with --array.",
        ) from None
    child = read_node(store, sub, where=where)
    if child is None or child.kind != "array":
        raise MetadataError(f"{_node_where(where, sub)}: multiscale level {lvl} is not an array.")
    return sub, child.metadata, child.zarr_format


def _multiscale_paths(attributes: Mapping[str, Any]) -> list[str]:
    ome = attributes.get("ome") if isinstance(attributes.get("ome"), Mapping) else attributes
    assert isinstance(ome, Mapping)
    ms = ome.get("multiscales")
    if not isinstance(ms, list) or not ms or not isinstance(ms[0], Mapping):
        return []
    out = []
    for ds in ms[0].get("datasets", []) or []:
        if isinstance(ds, Mapping) and isinstance(ds.get("path"), str):
            out.append(ds["path"])
    return out


def _other_encoding_warning(
    stray: Sequence[str], grid: Sequence[int], encoding: tuple[str, str], where: str, path: str
) -> str | None:
    """Say so when objects the metadata does not name look like chunks keyed another way."""
    name, sep = encoding
    if not stray:
        return None
    other_sep = "." if sep == "/" else "/"
    other_name = "v2" if name == "default" else "default"
    for alt in ((name, other_sep), (other_name, sep), (other_name, other_sep)):
        _, valid = parse_chunk_keys(stray, grid, alt)
        count = int(valid.sum())
        if count:
            located = _node_where(where, path)
            return (
                f"{located}: {count} stored object(s) look like chunks keyed with the "
                f"{alt[0]!r} encoding and separator {alt[1]!r}, but the metadata says "
                f"{name!r} with {sep!r}: they are not read, and those chunks read as the fill "
                "value. Fix the metadata (dimension_separator or chunk_key_encoding)."
            )
    return None


def _metadata_where(where: str, path: str, zarr_format: int) -> str:
    """Name the metadata document of the array at *path*, for messages."""
    name = ".zarray" if zarr_format == 2 else "zarr.json"
    return _node_where(where, _join(path, name))


def _is_shape(value: Any, *, positive: bool, rank: int | None = None) -> TypeGuard[list[int]]:
    return (
        isinstance(value, list)
        and (rank is None or len(value) == rank)
        and all(
            isinstance(v, int) and not isinstance(v, bool) and (v > 0 if positive else v >= 0)
            for v in value
        )
    )


def _check_geometry(
    metadata: Mapping[str, Any],
    codecs: Sequence[_codecs.CodecInfo],
    zarr_format: int,
    where: str,
) -> None:
    """Refuse shapes, chunk shapes and inner shard shapes that describe no usable grid."""
    hint = "The array metadata is corrupt; fix it or restore it from a copy."
    shape = metadata.get("shape")
    if not _is_shape(shape, positive=False):
        raise MetadataError(
            f"{where}: 'shape' must be a list of non-negative integers, found {shape!r}.",
            hint=hint,
        )
    if zarr_format == 3:
        grid = metadata.get("chunk_grid")
        cfg = grid.get("configuration") if isinstance(grid, Mapping) else None
        chunks = cfg.get("chunk_shape") if isinstance(cfg, Mapping) else None
    else:
        chunks = metadata.get("chunks")
    if not _is_shape(chunks, positive=True, rank=len(shape)):
        raise MetadataError(
            f"{where}: the chunk shape {chunks!r} must be a list of positive integers, one per "
            f"axis of the shape {shape!r}.",
            hint=hint,
        )
    for codec in codecs:
        if codec.name != "sharding_indexed":
            continue
        inner = codec.configuration.get("chunk_shape")
        if not _is_shape(inner, positive=True, rank=len(shape)) or any(
            c % i for c, i in zip(chunks, inner, strict=True)
        ):
            raise MetadataError(
                f"{where}: the inner chunk shape {inner!r} of the sharding codec must be a list "
                f"of positive integers dividing the shard shape {chunks!r}.",
                hint=hint,
            )


def _dtype_info(metadata: Mapping[str, Any], zarr_format: int) -> tuple[str, int]:
    raw = metadata.get("dtype") if zarr_format == 2 else metadata.get("data_type")
    try:
        if zarr_format == 2:
            dt = np.dtype(raw if isinstance(raw, str) else [tuple(f) for f in raw or []])
            return dt.str if dt.fields is None else str(dt), dt.itemsize
        if isinstance(raw, str):
            from zarr.core.dtype import parse_dtype

            zdt = parse_dtype(raw, zarr_format=3)
            dt = zdt.to_native_dtype()
            return raw, int(dt.itemsize)
    except Exception:  # an unknown dtype must not stop the map
        return str(raw), 0
    return str(raw), 0


def chunk_map(
    url: Any,
    path: str = "",
    *,
    level: int | None = None,
    verify: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelLike | None = None,
    concurrency: int = 8,
) -> ChunkMap:
    """Map which chunks of an array are stored, missing or corrupt.

    Parameters
    ----------
    url
        Path or URL of the store (or a :class:`~napari_zarr_explorer.store.Location`, or an
        open zarr store).
    path
        Path of the array in the store, or of an OME multiscale image group (then *level*
        chooses the resolution level, 0 by default).
    level
        Multiscale level when *path* is an image group.
    verify
        Decode every stored chunk and list the keys that fail.
    storage_options
        Options for remote stores.
    progress
        ``progress(done, total, message)`` called as the work advances.
    cancel
        An object with ``is_set()``; when set, the work stops and the map says ``cancelled``.
    concurrency
        Number of chunks decoded at once when verifying (bounds the memory used).

    Returns
    -------
    ChunkMap
    """
    from napari_zarr_explorer.store import open_url

    store, where = open_url(url, storage_options)
    path = path.strip("/")
    path, metadata, zarr_format = _resolve_level(store, path, level, where)
    codecs = _codecs.codec_pipeline(metadata, zarr_format=zarr_format)
    _check_geometry(metadata, codecs, zarr_format, _metadata_where(where, path, zarr_format))
    shape = tuple(int(s) for s in metadata.get("shape", ()))
    outer = _codecs.outer_chunk_shape(metadata, zarr_format=zarr_format)
    sharding = _codecs.sharding_info(codecs)
    inner = sharding.chunk_shape if sharding is not None else outer
    encoding = _codecs.chunk_key_encoding(metadata, zarr_format=zarr_format)
    dtype, itemsize = _dtype_info(metadata, zarr_format)
    dims = metadata.get("dimension_names") if zarr_format == 3 else None
    warnings: list[str] = []
    unanswered: list[int] = []  # objects the store failed to deliver, counted by each step
    problems: dict[str, str] = {}

    outer_grid = _codecs.grid_shape(shape, outer)
    inner_grid = _codecs.grid_shape(shape, inner)
    n_inner = math.prod(inner_grid)
    if n_inner > MAX_CHUNKS:
        raise LimitError(
            f"{_metadata_where(where, path, zarr_format)}: the array {list(shape)} has "
            f"{n_inner} chunks "
            f"(grid {list(inner_grid)}), more than the {MAX_CHUNKS} a chunk map holds.",
            hint="`napari-zarr-explorer inspect` shows its totals; map a smaller multiscale "
            "level (--level) instead.",
        )
    n_outer = math.prod(outer_grid)
    listed = True
    listing = list_stored(store, path)
    metadata_bytes = 0
    stray: list[str] = []
    outer_sizes = np.zeros(n_outer, dtype=np.int64)
    cancelled = False
    if listing is not None:
        flat, valid = parse_chunk_keys(listing.keys, outer_grid, encoding)
        outer_sizes[flat[valid]] = listing.sizes[valid]
        # An object of 0 bytes still exists: mark it present with size 0 via a separate mask.
        present_outer = np.zeros(n_outer, dtype=bool)
        present_outer[flat[valid]] = True
        for key, ok, size in zip(listing.keys, valid.tolist(), listing.sizes.tolist(), strict=True):
            if ok:
                continue
            if key.rsplit("/", 1)[-1] in _META_KEYS:
                metadata_bytes += int(size)
            elif len(stray) < 100:
                stray.append(key)
        warning = _other_encoding_warning(stray, outer_grid, encoding, where, path)
        if warning:
            warnings.append(warning)
    else:
        listed = False
        if n_outer > _MAX_PROBES:
            warnings.append(
                f"{where}: the store cannot list its keys and the array has {n_outer} "
                f"stored objects to probe (more than {_MAX_PROBES}); chunk states are unknown."
            )
            state = np.full(inner_grid, UNKNOWN, dtype=np.uint8)
            nbytes = np.full(inner_grid, -1, dtype=np.int64)
            return ChunkMap(
                url=where,
                path=path,
                zarr_format=zarr_format,
                shape=shape,
                dtype=dtype,
                itemsize=itemsize,
                chunk_shape=inner,
                shard_shape=outer if sharding else None,
                key_encoding=encoding,
                state=state,
                nbytes=nbytes,
                shard_nbytes=np.full(outer_grid, -1, np.int64) if sharding else None,
                listed=False,
                dimension_names=tuple(dims) if isinstance(dims, list) else None,
                warnings=tuple(warnings),
            )
        keys = [_join(path, _codecs.chunk_key(idx, encoding)) for idx in np.ndindex(*outer_grid)]
        failures: dict[str, BaseException] = {}
        sizes = _probe_sizes(store, keys, progress=progress, cancel=cancel, failures=failures)
        present_outer = sizes >= 0
        outer_sizes = np.where(sizes >= 0, sizes, 0)
        if bool((sizes == -2).any()):
            cancelled = bool(cancel is not None and cancel.is_set())
            outer_sizes[sizes == -2] = -1
        if failures:
            unanswered.append(len(failures))
            first = next(k for k in keys if k in failures)
            what = "shards" if sharding else "chunks"
            warnings.append(
                _unanswered(
                    where,
                    path,
                    len(failures),
                    n_outer,
                    what,
                    first,
                    failures[first],
                    failures.values(),
                )
            )

    outer_state = np.where(present_outer, PRESENT, MISSING).astype(np.uint8)
    if listing is None:
        outer_state[outer_sizes < 0] = UNKNOWN

    if sharding is None:
        state = outer_state.reshape(outer_grid)
        nbytes = outer_sizes.reshape(outer_grid)
        shard_nbytes = None
    else:
        state, nbytes, cancelled_idx = _shard_occupancy(
            store,
            path,
            where,
            shape=shape,
            shard_shape=outer,
            sharding=sharding,
            encoding=encoding,
            outer_grid=outer_grid,
            inner_grid=inner_grid,
            outer_state=outer_state,
            outer_sizes=outer_sizes,
            problems=problems,
            warnings=warnings,
            progress=progress,
            cancel=cancel,
            failed=unanswered,
        )
        cancelled = cancelled or cancelled_idx
        shard_nbytes = outer_sizes.reshape(outer_grid)

    verified = False
    if verify and not cancelled:
        cancelled = _verify(
            store,
            path,
            where,
            metadata=metadata,
            zarr_format=zarr_format,
            state=state,
            inner=inner,
            shape=shape,
            itemsize=itemsize,
            encoding=encoding,
            shard_shape=outer if sharding is not None else None,
            shard_nbytes=shard_nbytes,
            problems=problems,
            progress=progress,
            cancel=cancel,
            concurrency=concurrency,
            warnings=warnings,
            failed=unanswered,
        )
        # every stored chunk decoded: not when some were never delivered
        verified = not cancelled and not unanswered

    corrupt_keys = tuple(sorted(problems))
    return ChunkMap(
        url=where,
        path=path,
        zarr_format=zarr_format,
        shape=shape,
        dtype=dtype,
        itemsize=itemsize,
        chunk_shape=inner,
        shard_shape=outer if sharding is not None else None,
        key_encoding=encoding,
        state=state,
        nbytes=nbytes,
        shard_nbytes=shard_nbytes,
        metadata_bytes=metadata_bytes,
        corrupt_keys=corrupt_keys,
        problems=problems,
        stray_keys=tuple(stray),
        verified=verified,
        listed=listed,
        cancelled=cancelled,
        unanswered=sum(unanswered),
        dimension_names=tuple(dims) if isinstance(dims, list) else None,
        warnings=tuple(warnings),
    )


def _shard_occupancy(
    store: Any,
    path: str,
    where: str,
    *,
    shape: tuple[int, ...],
    shard_shape: tuple[int, ...],
    sharding: _codecs.ShardingInfo,
    encoding: tuple[str, str],
    outer_grid: tuple[int, ...],
    inner_grid: tuple[int, ...],
    outer_state: npt.NDArray[np.uint8],
    outer_sizes: npt.NDArray[np.int64],
    problems: dict[str, str],
    warnings: list[str],
    progress: ProgressCallback | None,
    cancel: CancelLike | None,
    failed: list[int] | None = None,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], bool]:
    """Inner-chunk states and sizes from the shard indexes (byte-range reads of the index only).

    The number of shards the store failed to deliver is appended to *failed*.
    """
    per = sharding.chunks_per_shard(shard_shape)
    full = tuple(g * p for g, p in zip(outer_grid, per, strict=True))
    state = np.zeros(full, dtype=np.uint8)
    nbytes = np.zeros(full, dtype=np.int64)
    index_nbytes = sharding.index_nbytes(shard_shape)
    from napari_zarr_explorer.store.shardindex import decode_index, entry_masks

    layout = _index_layout(sharding.index_codecs, math.prod(per), sharding.index_location)
    supported = layout is not None
    if not supported:
        names = ", ".join(c.name for c in sharding.index_codecs)
        warnings.append(
            f"{_node_where(where, path)}: shard index codecs ({names}) are not read here; "
            "inner chunk states are unknown."
        )
    todo = [int(i) for i in np.flatnonzero(outer_state == PRESENT)]
    total = len(todo)
    cancelled = False

    def _block(flat_index: int) -> tuple[slice, ...]:
        sidx = np.unravel_index(flat_index, outer_grid)
        return tuple(slice(int(s) * p, (int(s) + 1) * p) for s, p in zip(sidx, per, strict=True))

    for flat_index in np.flatnonzero(outer_state == UNKNOWN).tolist():
        blk = _block(int(flat_index))
        state[blk] = UNKNOWN
        nbytes[blk] = -1

    async def _all() -> list[tuple[int, bytes | BaseException | None]]:
        nonlocal cancelled
        done = 0

        async def _one(flat_index: int) -> tuple[int, bytes | BaseException | None]:
            nonlocal done, cancelled
            if cancel is not None and cancel.is_set():
                cancelled = True
                return flat_index, asyncio.CancelledError()
            key = _join(path, _codecs.chunk_key(_unravel(flat_index, outer_grid), encoding))
            try:
                raw: bytes | BaseException | None = await _read_index(
                    store, key, index_nbytes, sharding.index_location
                )
            except Exception as exc:
                raw = exc
            done += 1
            if progress is not None and (done % 64 == 0 or done == total):
                progress(done, total, "reading shard indexes")
            return flat_index, raw

        return await _bounded_map(todo, _one, _INDEX_CONCURRENCY)

    results = run_sync(_all()) if (todo and supported) else []
    unanswered: dict[int, BaseException] = {}
    if not supported:
        for flat_index in todo:
            blk = _block(flat_index)
            state[blk] = UNKNOWN
            nbytes[blk] = -1
    for flat_index, raw in results:
        blk = _block(flat_index)
        rel_key = _codecs.chunk_key(_unravel(flat_index, outer_grid), encoding)
        if isinstance(raw, asyncio.CancelledError):
            state[blk] = UNKNOWN
            nbytes[blk] = -1
            continue
        shard_size = int(outer_sizes[flat_index])
        if isinstance(raw, BaseException) and not_delivered(raw):
            state[blk] = UNKNOWN
            nbytes[blk] = -1
            unanswered[flat_index] = raw
            continue
        try:
            if isinstance(raw, BaseException):
                raise MetadataError(
                    f"{_node_where(where, _join(path, rel_key))}: shard index unreadable: {raw}"
                )
            if raw is None:
                raise MetadataError(
                    f"{_node_where(where, _join(path, rel_key))}: shard vanished while reading"
                )
            assert layout is not None
            # length and checksum; a short read (truncated shard) fails the length check
            index = decode_index(
                raw, layout, where=_node_where(where, _join(path, rel_key))
            ).reshape((*per, 2))
        except MetadataError as exc:
            state[blk] = CORRUPT
            nbytes[blk] = -1
            problems[rel_key] = exc.message
            continue
        # single entries that are half missing or outside the shard's data are corrupt
        empty, beyond = entry_masks(index, layout, shard_size if shard_size >= 0 else None)
        sub_state = np.where(empty, MISSING, PRESENT).astype(np.uint8)
        sub_bytes = np.where(empty, 0, index[..., 1]).astype(np.int64)
        if bool(beyond.any()):
            sub_state[beyond] = CORRUPT
            size = f" ({shard_size} bytes)" if shard_size >= 0 else ""
            problems[rel_key] = (
                f"{_node_where(where, _join(path, rel_key))}: {int(beyond.sum())} inner "
                f"chunk(s) lie past the end of the shard{size}, in its index or are half "
                "missing; it is damaged or truncated."
            )
        state[blk] = sub_state
        nbytes[blk] = sub_bytes
    if unanswered:
        if failed is not None:
            failed.append(len(unanswered))
        first = min(unanswered)
        key = _join(path, _codecs.chunk_key(_unravel(first, outer_grid), encoding))
        warnings.append(
            _unanswered(
                where,
                path,
                len(unanswered),
                total,
                "shards",
                key,
                unanswered[first],
                unanswered.values(),
            )
        )
    crop = tuple(slice(0, g) for g in inner_grid)
    return state[crop].copy(), nbytes[crop].copy(), cancelled


def _unravel(flat_index: int, grid: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(flat_index), tuple(grid)))


def _open_for_decode(
    store: Any, path: str, metadata: Mapping[str, Any], zarr_format: int, where: str
) -> Any:
    """Build the array at *path* from the checked *metadata*, decoding through the guard."""
    from napari_zarr_explorer.store import array_from_metadata

    located = _node_where(where, path)
    from napari_zarr_explorer.store import check_array_metadata

    check_array_metadata(metadata, where=located, zarr_format=zarr_format)
    _check_geometry(
        metadata,
        _codecs.codec_pipeline(metadata, zarr_format=zarr_format),
        zarr_format,
        _metadata_where(where, path, zarr_format),
    )
    return array_from_metadata(
        store, path, metadata, zarr_format=2 if zarr_format == 2 else 3, where=where
    )


def _verify(
    store: Any,
    path: str,
    where: str,
    *,
    metadata: Mapping[str, Any],
    zarr_format: int,
    state: npt.NDArray[np.uint8],
    inner: tuple[int, ...],
    shape: tuple[int, ...],
    itemsize: int,
    encoding: tuple[str, str],
    shard_shape: tuple[int, ...] | None,
    shard_nbytes: npt.NDArray[np.int64] | None = None,
    problems: dict[str, str],
    progress: ProgressCallback | None,
    cancel: CancelLike | None,
    concurrency: int,
    warnings: list[str] | None = None,
    failed: list[int] | None = None,
) -> bool:
    """Decode every present chunk; mark failures CORRUPT in *state*. Returns True if cancelled.

    The number of chunks the store failed to deliver is appended to *failed*.

    A chunk the store did not deliver (a server error, a dropped connection) is UNKNOWN instead,
    and one line of *warnings* says how many, naming the first.

    Unsharded chunks are decoded one by one. Sharded arrays are decoded a shard at a time (one
    read of the shard), and only a shard that fails is decoded again chunk by chunk to name the
    inner chunks at fault. When the inner codecs are ``bytes`` (+ ``zstd``), a shard is read
    whole once, its index parsed with numpy (checksum checked once) and its present inner chunks
    decoded in one call (:func:`~napari_zarr_explorer.store.bulk_chunk_checker`, each bounded
    by the chunk's size); any failure sends the shard down the chunk-by-chunk path above, so the
    keys reported are the same. At most *concurrency* chunks (or as many shards as fit in
    :data:`_VERIFY_MEMORY` bytes) are in flight, which bounds the memory used.
    """
    try:
        arr = _open_for_decode(store, path, metadata, zarr_format, where)
    except ExplorerError:
        raise
    except Exception as exc:
        raise ExplorerError(
            f"{_node_where(where, path)}: cannot open the array to decode its chunks: {exc}",
            hint="The listing-based map (without --verify) still works.",
        ) from exc
    async_arr = arr.async_array
    per: tuple[int, ...] | None = None
    if shard_shape is not None:
        per = tuple(s // c for s, c in zip(shard_shape, inner, strict=True))
    present = state == PRESENT
    total = int(np.count_nonzero(present))
    cancelled = False
    done = 0

    def _region(index: Sequence[int], size: Sequence[int]) -> tuple[slice, ...]:
        return tuple(
            slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(index, size, shape, strict=True)
        )

    def _report(step: int = 1) -> None:
        if progress is not None and (done % 16 < step or done == total):
            progress(done, total, "decoding chunks")

    unanswered: dict[tuple[int, ...], tuple[str, BaseException]] = {}

    async def _check_chunk(idx: tuple[int, ...]) -> None:
        try:
            await async_arr.getitem(_region(idx, inner))
        except Exception as exc:
            outer_idx = idx if per is None else tuple(i // p for i, p in zip(idx, per, strict=True))
            key = _codecs.chunk_key(outer_idx, encoding)
            if not_delivered(exc):
                state[idx] = UNKNOWN
                unanswered[idx] = (key, exc)
                return
            state[idx] = CORRUPT
            detail = f"{type(exc).__name__}: {exc}".strip()
            msg = _node_where(where, _join(path, key))
            if per is not None:
                msg += f" (inner chunk {list(idx)})"
            msg += f": cannot be decoded ({detail[:300]})"
            problems.setdefault(key, msg)

    async def _one_chunk(idx: tuple[int, ...]) -> None:
        nonlocal done, cancelled
        if cancel is not None and cancel.is_set():
            cancelled = True
            return
        await _check_chunk(idx)
        done += 1
        _report()

    bulk = None
    sharding = _codecs.sharding_info(_codecs.codec_pipeline(metadata, zarr_format=zarr_format))
    layout = None
    if sharding is not None and per is not None:
        layout = _index_layout(sharding.index_codecs, math.prod(per), sharding.index_location)
    if (
        _BULK_DECODE
        and sharding is not None
        and shard_shape is not None
        and itemsize > 0
        and layout is not None
    ):
        from napari_zarr_explorer.store import bulk_chunk_checker

        bulk = bulk_chunk_checker(sharding.codecs, math.prod(inner) * itemsize)
    # most stored bytes of a shard read whole: twice its decoded size, its index and 1 MiB
    bulk_limit = 0
    if sharding is not None and shard_shape is not None:
        bulk_limit = (
            2 * math.prod(shard_shape) * max(1, itemsize)
            + sharding.index_nbytes(shard_shape)
            + (1 << 20)
        )

    async def _bulk_shard(shard_idx: tuple[int, ...], mask: npt.NDArray[np.bool_]) -> bool:
        """Read the shard once and decode its present inner chunks at once; True if all decode."""
        from napari_zarr_explorer.store import read_bytes_async
        from napari_zarr_explorer.store.shardindex import entry_masks, parse_whole_shard

        assert bulk is not None and layout is not None and per is not None
        key = _join(path, _codecs.chunk_key(shard_idx, encoding))
        listed = -1 if shard_nbytes is None else int(shard_nbytes[shard_idx])
        if not 0 <= listed <= bulk_limit:
            return False  # unknown or implausibly large: the plain path reads it by ranges
        try:
            data = await read_bytes_async(store, key)
            if data is None:
                return False
            # any fault of the index (length, checksum, bad entries): chunk by chunk instead
            index = parse_whole_shard(data, layout, where=_node_where(where, key)).reshape(
                (*per, 2)
            )
            index = index[tuple(slice(0, n) for n in mask.shape)]
            segments = index[mask]
            if bool(entry_masks(segments, layout, None)[0].any()):
                return False  # the shard changed since its index was read
            await asyncio.to_thread(bulk, data, segments)
        except Exception:
            return False
        return True

    async def _one_shard(item: tuple[tuple[int, ...], npt.NDArray[np.bool_]]) -> None:
        nonlocal done, cancelled
        shard_idx, mask = item
        if cancel is not None and cancel.is_set():
            cancelled = True
            return
        assert shard_shape is not None and per is not None
        if bulk is not None:
            ok = await _bulk_shard(shard_idx, mask)
        else:
            try:
                await async_arr.getitem(_region(shard_idx, shard_shape))
                ok = True
            except Exception:
                ok = False
        if not ok:  # decode chunk by chunk to find the inner chunks at fault
            base = np.array([i * p for i, p in zip(shard_idx, per, strict=True)])
            for local in np.argwhere(mask):
                await _check_chunk(tuple(int(i) for i in base + local))
        n = int(np.count_nonzero(mask))
        done += n
        _report(n)

    async def _all() -> None:
        if per is None or shard_shape is None:
            todo = [tuple(int(i) for i in idx) for idx in np.argwhere(present)]
            await _bounded_map(todo, _one_chunk, concurrency)
            return
        items: list[tuple[tuple[int, ...], npt.NDArray[np.bool_]]] = []
        for shard_idx in np.ndindex(*_codecs.grid_shape(state.shape, per)):
            blk = tuple(slice(i * p, (i + 1) * p) for i, p in zip(shard_idx, per, strict=True))
            mask = present[blk]
            if bool(mask.any()):
                items.append((tuple(int(i) for i in shard_idx), mask.copy()))
        shard_bytes = max(1, math.prod(shard_shape) * max(1, itemsize))
        slots = max(1, min(concurrency, _VERIFY_MEMORY // shard_bytes))
        await _bounded_map(items, _one_shard, slots)

    if progress is not None:
        progress(0, total, "decoding chunks")
    run_sync(_all())
    if unanswered and failed is not None:
        failed.append(len(unanswered))
    if unanswered and warnings is not None:
        first_key, first_error = unanswered[min(unanswered)]
        warnings.append(
            _unanswered(
                where,
                path,
                len(unanswered),
                total,
                "chunks",
                _join(path, first_key),
                first_error,
                (e for _, e in unanswered.values()),
            )
        )
    return cancelled
