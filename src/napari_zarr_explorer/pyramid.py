"""Zarr arrays as lazy arrays for napari and dask, aligned to storage, bounded, tolerant.

Two lazy faces over one :class:`ChunkReader` (an array-like whose ``__getitem__`` reads through
zarr-python):

- :func:`as_level` gives what napari displays: a :class:`LazyArray` that napari slices directly.
  Indexing it only records the selection; ``numpy.asarray`` reads exactly the stored chunks under
  it, all of them in one concurrent zarr read, and keeps them in a bounded cache of decoded chunks
  (:func:`chunk_cache`, sized by ``NAPARI_ZARR_EXPLORER_CACHE_BYTES``) so that panning only reads
  the chunks that come into view. napari's dask settings (task fusion off) play no part.
- :func:`as_dask` gives what Python users compute with (:func:`open_pyramid`): a dask array whose
  blocks are whole stored chunks (whole shards for sharded arrays), grown to about
  :data:`MIN_BLOCK_BYTES` and coarsened to whole multiples when the block count would exceed
  :data:`MAX_BLOCKS`. Computed by itself (whole, or a region taken with step-1 slices), it is
  read into one array allocated once (:mod:`napari_zarr_explorer._dasklevel`).

Both read local arrays through :func:`napari_zarr_explorer.store.bulk_read` (stored objects read
and decoded on every processor, into the result).

Reading is guarded:

- a read whose chunks would decode to more than the limit (:func:`max_chunk_bytes`, set with the
  environment variable ``NAPARI_ZARR_EXPLORER_MAX_CHUNK_BYTES``) raises
  :class:`~napari_zarr_explorer.errors.LimitError` before anything is decoded;
- a chunk that fails to decode is shown as the fill value, and an
  :class:`~napari_zarr_explorer.errors.ExplorerWarning` names its key once.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from itertools import pairwise, product
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from napari_zarr_explorer.errors import (
    ExplorerError,
    ExplorerWarning,
    LimitError,
    MetadataError,
    NotFoundError,
    PathEscapeError,
    RemoteError,
    UnsafeDataError,
    not_delivered,
)

if TYPE_CHECKING:
    import dask.array as da
    import zarr

__all__ = [
    "CACHE_ENV",
    "DEFAULT_MAX_CHUNK_BYTES",
    "MAX_BLOCKS",
    "ChunkCache",
    "ChunkReader",
    "LazyArray",
    "PyramidLevels",
    "as_dask",
    "as_level",
    "cache_bytes",
    "chunk_cache",
    "dask_chunks",
    "find_pyramid",
    "max_chunk_bytes",
    "open_pyramid",
    "resolve_levels",
    "strict_reads",
]

#: Default limit of decoded bytes per read (1 GiB).
DEFAULT_MAX_CHUNK_BYTES = 1 << 30
#: Environment variable overriding the limit (bytes; suffixes K, M, G, T accepted).
LIMIT_ENV = "NAPARI_ZARR_EXPLORER_MAX_CHUNK_BYTES"
#: Largest number of dask blocks per array; beyond it blocks are coarsened.
MAX_BLOCKS = 100_000
#: Blocks are grown (in whole chunks) up to about this many bytes, to cut per-task overhead.
MIN_BLOCK_BYTES = 128 * 1024 * 1024


_STRICT = threading.local()


@contextlib.contextmanager
def strict_reads() -> Iterator[None]:
    """Make a chunk that cannot be read an error, in this thread, inside this block.

    Shown in napari, a chunk that cannot be fetched or decoded reads as the fill value (with a
    warning), so that the rest of the image stays visible. Data that is being *saved* must never
    get fill values in place of what could not be read: the writer reads its layers inside this
    block, and such a chunk then raises, naming it.
    """
    depth = getattr(_STRICT, "depth", 0)
    _STRICT.depth = depth + 1
    try:
        yield
    finally:
        _STRICT.depth = depth


def _strict() -> bool:
    return bool(getattr(_STRICT, "depth", 0))


#: Environment variable setting the size of the cache of decoded chunks (bytes; K, M, G, T).
CACHE_ENV = "NAPARI_ZARR_EXPLORER_CACHE_BYTES"
#: Largest default size of the cache of decoded chunks (1 GiB; at most a quarter of the memory).
DEFAULT_CACHE_BYTES = 1 << 30


def _env_bytes(name: str, default: int, *, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:i?B)?", raw, flags=re.IGNORECASE)
    if m is None:
        warnings.warn(
            f"{name}={os.environ[name]!r} is not a number of bytes; using the default {default}.",
            ExplorerWarning,
            stacklevel=3,
        )
        return default
    mult = 1024 ** ("KMGT".index(m.group(2).upper()) + 1) if m.group(2) else 1
    return max(int(float(m.group(1)) * mult), minimum)


def max_chunk_bytes() -> int:
    """Return the decoded-bytes limit per read, from the environment or the default (1 GiB)."""
    return _env_bytes(LIMIT_ENV, DEFAULT_MAX_CHUNK_BYTES, minimum=1)


def cache_bytes() -> int:
    """Return the size of the cache of decoded chunks shown in napari.

    From ``NAPARI_ZARR_EXPLORER_CACHE_BYTES`` (``0`` turns the cache off), else 1 GiB or a quarter
    of the physical memory, whichever is smaller.
    """
    default = DEFAULT_CACHE_BYTES
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = 0
    if physical > 0:
        default = min(default, physical // 4)
    return _env_bytes(CACHE_ENV, default, minimum=0)


class ChunkCache:
    """Decoded chunks, least recently used first out beyond *max_bytes*; thread-safe.

    Keys are ``(reader id, chunk grid coordinates)``; values are read-only arrays.

    Parameters
    ----------
    max_bytes
        Most bytes held (``0`` keeps nothing).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(int(max_bytes), 0)
        self._data: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        with self._lock:
            return self._nbytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def get(self, key: tuple[Any, ...]) -> np.ndarray | None:
        """Return the chunk stored under *key*, or None."""
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            if value.base is not None:
                # a view into the region it was read with: a chunk read again gets its own copy,
                # so that it does not keep the rest of that region alive
                value = value.copy()
                value.flags.writeable = False
                self._data[key] = value
            return value

    def put(self, key: tuple[Any, ...], value: np.ndarray) -> None:
        """Keep *value* under *key*; it is made read-only (nobody may change it any more)."""
        if value.nbytes > self.max_bytes:
            return
        value.flags.writeable = False
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._nbytes -= old.nbytes
            self._data[key] = value
            self._nbytes += value.nbytes
            while self._nbytes > self.max_bytes and self._data:
                _, dropped = self._data.popitem(last=False)
                self._nbytes -= dropped.nbytes

    def clear(self) -> None:
        """Drop everything (and reset the hit counters)."""
        with self._lock:
            self._data.clear()
            self._nbytes = 0
            self.hits = 0
            self.misses = 0


_CACHE: ChunkCache | None = None
_CACHE_LOCK = threading.Lock()
_READER_IDS = itertools.count()


def chunk_cache() -> ChunkCache:
    """Return the process-wide cache of decoded chunks used by :func:`as_level` arrays."""
    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None:
            _CACHE = ChunkCache(cache_bytes())
        return _CACHE


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _plan(key: Any, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[Any, ...], bool]:
    """Split an index into a bounding region (step-1 slices) and the indexing to apply after.

    Returns ``(region, post, trivial)`` where ``post`` indexes the region read, and ``trivial``
    says it is a no-op.
    """
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is None for k in key):
        raise IndexError("new axes (None) are not supported by ChunkReader")
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis")
    if n_ell:
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        fill = len(shape) - (len(key) - 1)
        key = key[:i] + (slice(None),) * fill + key[i + 1 :]
    if len(key) > len(shape):
        raise IndexError(f"too many indices for an array of {len(shape)} dimensions")
    key = key + (slice(None),) * (len(shape) - len(key))
    region: list[slice] = []
    post: list[Any] = []
    trivial = True
    n_fancy = 0
    for dim, (k, n) in enumerate(zip(key, shape, strict=True)):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            idx = range(start, stop, step)
            if len(idx) == 0:
                region.append(slice(0, 0))
                post.append(slice(None))
                continue
            lo, hi = min(idx[0], idx[-1]), max(idx[0], idx[-1]) + 1
            region.append(slice(lo, hi))
            if step == 1:
                post.append(slice(None))
            else:
                trivial = False
                first = idx[0] - lo
                last = idx[-1] - lo
                post.append(
                    slice(first, last + 1 if step > 0 else (last - 1 if last else None), step)
                )
        elif isinstance(k, int | np.integer):
            i = int(k) + (n if k < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {int(k)} is out of bounds for axis {dim} with size {n}")
            region.append(slice(i, i + 1))
            post.append(0)
            trivial = False
        else:
            arr = np.asarray(k)
            if arr.dtype == bool:
                arr = np.flatnonzero(arr)
            if arr.dtype.kind not in "iu" or arr.ndim != 1:
                raise IndexError(f"unsupported index {k!r}")
            arr = np.where(arr < 0, arr + n, arr)
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise IndexError(f"index out of bounds for axis {dim} with size {n}")
            if arr.size == 0:
                region.append(slice(0, 0))
                post.append(slice(None))
                continue
            lo, hi = int(arr.min()), int(arr.max()) + 1
            region.append(slice(lo, hi))
            post.append(arr - lo)
            n_fancy += 1
            trivial = False
    if n_fancy > 1:
        raise IndexError("only one list/array index at a time is supported by ChunkReader")
    return tuple(region), tuple(post), trivial


class ChunkReader:
    """Array-like over a ``zarr.Array`` with a decoded-size limit and tolerant chunk reads.

    Parameters
    ----------
    array
        The zarr array (already checked by :func:`napari_zarr_explorer.store.open_array`).
    where
        Its location (URL and node path), used in messages and to warn once per chunk.
    cache
        When given, reads go through this cache of decoded chunks: a read fetches only the
        chunks it does not hold (as few rectangular zarr reads as possible) and keeps them.
    """

    def __init__(
        self, array: zarr.Array[Any], *, where: str, cache: ChunkCache | None = None
    ) -> None:
        self.array = array
        fill = array.fill_value
        if isinstance(fill, np.generic):
            fill = fill.item()
        self._set_up(
            where=where,
            cache=cache,
            shape=array.shape,
            dtype=np.dtype(array.dtype),
            chunks=array.chunks,
            shards=getattr(array, "shards", None),
            fill_value=0 if fill is None else fill,
        )

    def _set_up(
        self,
        *,
        where: str,
        cache: ChunkCache | None,
        shape: Sequence[int],
        dtype: np.dtype[Any],
        chunks: Sequence[int],
        shards: Sequence[int] | None,
        fill_value: Any,
    ) -> None:
        """Set the reader's geometry and state from its array's (subclasses with no array yet).

        *dtype* may be stored in either byte order: reads return native values.
        """
        self.where = where
        self.cache = cache if cache is None or cache.max_bytes > 0 else None
        self._id = next(_READER_IDS)
        self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        self.dtype: np.dtype[Any] = (
            dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype
        )
        self.ndim = len(self.shape)
        self.chunks: tuple[int, ...] = tuple(int(c) for c in chunks)
        self.shards: tuple[int, ...] | None = (
            tuple(int(s) for s in shards) if shards is not None else None
        )
        self.chunk_nbytes = math.prod(self.chunks) * self.dtype.itemsize
        self.fill_value: Any = fill_value
        self._bad: set[tuple[int, ...]] = set()
        #: (not delivered, stored key) of the chunks warned about: each warned about once
        self._warned: set[tuple[bool, str]] = set()
        self._lock = threading.Lock()

    #: Where the array was opened from, ``(location, path)``, when known: a reader that knows
    #: it can be pickled (to dask.distributed workers), which open the array again (checked).
    source: tuple[Any, str] | None = None

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("napari-zarr-explorer.ChunkReader", self.where, self.shape, str(self.dtype))

    def __reduce__(self) -> tuple[Any, ...]:
        if self.source is None:
            raise TypeError(
                f"{self!r} cannot be pickled: it does not know where its array was opened from"
            )
        return (_reopen_reader, (self.source, self.where, self.shape, str(self.dtype)))

    def __repr__(self) -> str:
        return f"ChunkReader({self.where!r}, shape={self.shape}, dtype={self.dtype})"

    @property
    def bad_chunks(self) -> frozenset[tuple[int, ...]]:
        """Grid coordinates of chunks that failed to decode so far.

        Chunks the store did not deliver (a server error, a dropped connection, a time-out)
        are not among them: they are asked for again by later reads.
        """
        with self._lock:
            return frozenset(self._bad)

    def chunk_key(self, coords: Sequence[int]) -> str:
        """Store key of the chunk (or, for sharded arrays, the shard) holding chunk *coords*."""
        md = self.array.metadata
        if self.shards is not None:
            per = [s // c for s, c in zip(self.shards, self.chunks, strict=True)]
            shard = tuple(c // p for c, p in zip(coords, per, strict=True))
            key = md.encode_chunk_key(shard)
            inner = tuple(c % p for c, p in zip(coords, per, strict=True))
            return f"{key} (inner chunk {inner})"
        return str(md.encode_chunk_key(tuple(coords)))

    def _chunk_ranges(self, sel: tuple[slice, ...]) -> list[range]:
        return [
            range(s.start // c, -(-s.stop // c)) if s.stop > s.start else range(0)
            for s, c in zip(sel, self.chunks, strict=True)
        ]

    def chunk_count(self, sel: tuple[slice, ...]) -> int:
        """Return how many stored chunks reading *sel* decodes (what :meth:`check_limit` counts)."""
        return math.prod(len(r) for r in self._chunk_ranges(sel))

    def check_limit(self, sel: tuple[slice, ...]) -> None:
        """Raise :class:`LimitError` if reading *sel* would decode more than the limit."""
        n = self.chunk_count(sel)
        decoded = n * self.chunk_nbytes
        limit = max_chunk_bytes()
        if decoded > limit:
            raise LimitError(
                f"{self.where}: reading {tuple((s.start, s.stop) for s in sel)} would decode "
                f"{n} chunk(s) of {self.chunks} ({_fmt_bytes(decoded)}), more than the limit "
                f"of {_fmt_bytes(limit)}.",
                hint=f"Read a smaller region, or raise the limit with the environment variable "
                f"{LIMIT_ENV} (bytes, e.g. {LIMIT_ENV}=8G).",
            )

    def __getitem__(self, key: Any) -> np.ndarray:
        region, post, trivial = _plan(key, self.shape)
        out = self.read(region)
        return out if trivial else out[post]

    def read(
        self,
        sel: tuple[slice, ...],
        *,
        out: np.ndarray | None = None,
        missed: set[tuple[int, ...]] | None = None,
    ) -> np.ndarray:
        """Read the region *sel* (one step-1 slice per dimension).

        With *out* (an array of the region's shape and of this reader's dtype, e.g. a view into
        a larger result), the region is written into it and it is returned. The grid
        coordinates of the chunks the store did not deliver (shown as the fill value) are added
        to *missed* when given.
        """
        shape = tuple(s.stop - s.start for s in sel)
        if out is not None and out.shape != shape:
            raise ValueError(f"out has the shape {out.shape}, the region {shape}")
        if 0 in shape:
            return np.empty(shape, dtype=self.dtype) if out is None else out
        self.check_limit(sel)
        if self.cache is not None and not (_strict() and self._touches_bad(sel)):
            data = self._read_cached(sel, shape, missed)
            if out is None:
                return data
            out[...] = data
            return out
        return self._read_region(sel, shape, out, missed)

    def _read_region(
        self,
        sel: tuple[slice, ...],
        shape: tuple[int, ...],
        out: np.ndarray | None = None,
        missed: set[tuple[int, ...]] | None = None,
    ) -> np.ndarray:
        """Read *sel*, damaged chunks and chunks not delivered shown as the fill value.

        The grid coordinates of the chunks not delivered are added to *missed* when given.
        """
        with self._lock:
            known_bad = bool(self._bad)
        if not known_bad or _strict() or not self._touches_bad(sel):
            try:
                return self._fetch(sel, out)
            except (LimitError, UnsafeDataError, PathEscapeError, MetadataError):
                raise
            except RemoteError as exc:
                if not isinstance(exc, NotFoundError):
                    raise
            except Exception as exc:  # retried chunk by chunk below, naming the bad chunk
                del exc
        return self._read_tolerant(sel, shape, out, missed)

    def _chunk_region(self, lo: Sequence[int], hi: Sequence[int]) -> tuple[slice, ...]:
        """Return the array region of the chunks ``lo`` (inclusive) to ``hi`` (exclusive)."""
        return tuple(
            slice(a * c, min(b * c, n))
            for a, b, c, n in zip(lo, hi, self.chunks, self.shape, strict=True)
        )

    def _read_cached(
        self,
        sel: tuple[slice, ...],
        shape: tuple[int, ...],
        missed: set[tuple[int, ...]] | None = None,
    ) -> np.ndarray:
        """Read *sel* through the chunk cache: only the chunks it does not hold are fetched.

        The chunks not delivered are added to *missed* when given (and never cached).
        """
        cache = self.cache
        assert cache is not None
        ranges = self._chunk_ranges(sel)
        count = math.prod(len(r) for r in ranges)
        if count * self.chunk_nbytes > cache.max_bytes // 2:
            # more than the cache could keep: read it plainly, keep nothing
            return self._read_region(sel, shape, None, missed)
        held: dict[tuple[int, ...], np.ndarray] = {}
        missing: list[tuple[int, ...]] = []
        for coords in product(*ranges):
            chunk = cache.get((self._id, coords))
            if chunk is None:
                missing.append(coords)
            else:
                held[coords] = chunk
        boxes = _boxes(missing)
        fetched = []
        # chunks the store did not deliver are not kept: their fill values would hide the real
        # ones from every later read, once the server has recovered
        lost: set[tuple[int, ...]] = set()
        for lo, hi in boxes:
            region = self._chunk_region(lo, hi)
            data = self._read_region(region, tuple(s.stop - s.start for s in region), None, lost)
            # The cache keeps views of the chunks into the region read, and the region may be
            # returned as it is: no copy, and no fresh memory to touch. So it is read-only.
            data.flags.writeable = False
            fetched.append((region, data))
            for coords in product(*(range(a, b) for a, b in zip(lo, hi, strict=True))):
                if coords in lost:
                    continue
                part = tuple(
                    slice(c * size - r.start, min((c + 1) * size, n) - r.start)
                    for c, size, r, n in zip(coords, self.chunks, region, self.shape, strict=True)
                )
                cache.put((self._id, coords), data[part])
        if missed is not None:
            missed |= lost
        if len(fetched) == 1 and not held and fetched[0][0] == sel:
            return fetched[0][1]  # the read was exactly the selection
        out = np.empty(shape, dtype=self.dtype)
        for coords, chunk in held.items():
            region = self._chunk_region(coords, [c + 1 for c in coords])
            _paste(out, sel, chunk, region)
        for region, data in fetched:
            _paste(out, sel, data, region)
        out.flags.writeable = False  # the same whether the chunks came from the cache or not
        return out

    def _fetch(self, sel: tuple[slice, ...], out: np.ndarray | None = None) -> np.ndarray:
        """Read *sel*; into *out* when given (locally decoded straight into it by the bulk read)."""
        if type(self.array.store).__name__ == "RemoteStore":
            # zarr reads the inner chunks of a shard one after another, and the chunks of a read
            # at most 10 at a time: on a remote store each is a round trip, so they are fetched
            # concurrently instead (bounded by the store's own limit).
            from napari_zarr_explorer.store.remote import read_region

            data = np.asarray(read_region(self.array, sel))
        else:
            # local folders: stored objects read and decoded in bulk where the codecs allow,
            # through the plain path otherwise (same result, same errors)
            from napari_zarr_explorer.store.bulk import bulk_read

            if out is not None and out.dtype == np.dtype(self.array.dtype):
                return bulk_read(self.array, sel, out=out)
            data = bulk_read(self.array, sel)
        if data.dtype != self.dtype:
            data = data.astype(self.dtype)
        if out is None:
            return data
        out[...] = data
        return out

    def _touches_bad(self, sel: tuple[slice, ...]) -> bool:
        ranges = self._chunk_ranges(sel)
        with self._lock:
            return any(
                all(c in r for c, r in zip(coords, ranges, strict=True)) for coords in self._bad
            )

    def _iter_chunks(
        self, sel: tuple[slice, ...]
    ) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...], tuple[slice, ...]]]:
        for coords in product(*self._chunk_ranges(sel)):
            src = []
            dst = []
            for c, s, size in zip(coords, sel, self.chunks, strict=True):
                lo = max(c * size, s.start)
                hi = min((c + 1) * size, s.stop)
                src.append(slice(lo, hi))
                dst.append(slice(lo - s.start, hi - s.start))
            yield coords, tuple(src), tuple(dst)

    def _read_tolerant(
        self,
        sel: tuple[slice, ...],
        shape: tuple[int, ...],
        out: np.ndarray | None = None,
        missed: set[tuple[int, ...]] | None = None,
    ) -> np.ndarray:
        """Read *sel* chunk by chunk; a chunk that fails is shown as the fill value, warned once.

        A damaged chunk is remembered as bad and not read again. A chunk the store did not
        deliver (:func:`~napari_zarr_explorer.errors.not_delivered`) is not: a later read asks
        the store again, which answers from its own memory of the failure until that expires
        (``FAILURE_TTL``), then asks the server. Its coordinates are added to *missed*.
        """
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        for coords, src, dst in self._iter_chunks(sel):
            with self._lock:
                bad = coords in self._bad
            if not bad or _strict():
                try:
                    out[dst] = self._fetch(src)
                    continue
                except (LimitError, UnsafeDataError, RemoteError) as exc:
                    if not isinstance(exc, NotFoundError):
                        raise
                except Exception as exc:
                    key = self.chunk_key(coords)
                    if _strict():  # never fill values in for what is being saved
                        detail = exc.message if isinstance(exc, ExplorerError) else exc
                        raise ExplorerError(
                            f"{self.where}: chunk {key} could not be read: {detail}",
                            hint=exc.hint if isinstance(exc, ExplorerError) else None,
                        ) from exc
                    stored = key.split(" ", 1)[0]  # the shard's key for inner chunks
                    lost = not_delivered(exc)
                    with self._lock:
                        if not lost:
                            self._bad.add(coords)
                        first = (lost, stored) not in self._warned
                        self._warned.add((lost, stored))
                    if lost and missed is not None:
                        missed.add(coords)
                    if first:  # once per stored object, not on every redraw
                        if lost:
                            said = (
                                f"could not be fetched ({type(exc).__name__}: {exc}); it is "
                                f"shown as the fill value {self.fill_value!r} until a later "
                                "read gets it"
                            )
                        else:
                            said = (
                                f"could not be decoded ({type(exc).__name__}: {exc}); it is "
                                f"shown as the fill value {self.fill_value!r}"
                            )
                        warnings.warn(
                            f"{self.where}: chunk {key} {said}.",
                            ExplorerWarning,
                            stacklevel=2,
                        )
            try:
                out[dst] = self.fill_value
            except (ValueError, TypeError):
                out[dst] = 0
        return out


def _reopen_reader(
    source: tuple[Any, str], where: str, shape: tuple[int, ...], dtype: str
) -> ChunkReader:
    """Open a pickled :class:`ChunkReader`'s array again (its metadata checked again)."""
    from napari_zarr_explorer.store import open_array

    location, path = source
    reader = ChunkReader(open_array(location, path), where=where)
    if reader.shape != tuple(shape) or str(reader.dtype) != dtype:
        raise MetadataError(
            f"{where}: the array changed since it was opened (now {reader.shape} {reader.dtype}, "
            f"was {tuple(shape)} {dtype}).",
            hint="Open it again.",
        )
    reader.source = source
    return reader


def _paste(
    out: np.ndarray, sel: tuple[slice, ...], data: np.ndarray, region: tuple[slice, ...]
) -> None:
    """Copy the part of *data* (covering *region*) that lies inside *sel* into *out*."""
    src = []
    dst = []
    for s, r in zip(sel, region, strict=True):
        lo, hi = max(s.start, r.start), min(s.stop, r.stop)
        if hi <= lo:
            return
        src.append(slice(lo - r.start, hi - r.start))
        dst.append(slice(lo - s.start, hi - s.start))
    out[tuple(dst)] = data[tuple(src)]


def _boxes(coords: Sequence[tuple[int, ...]]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Cover the chunk grid positions *coords* with few boxes ``(lo, hi)`` holding only them.

    Greedy: from the first uncovered position (C order), a box grows along the last dimension,
    then along each earlier one, as long as every position it would add is in *coords*.
    """
    todo = set(coords)
    out = []
    for start in sorted(coords):
        if start not in todo:
            continue
        lo = start
        hi = [c + 1 for c in start]
        for d in reversed(range(len(start))):
            while True:
                slab = [range(a, b) for a, b in zip(lo, hi, strict=True)]
                slab[d] = range(hi[d], hi[d] + 1)
                if all(p in todo for p in product(*slab)):
                    hi[d] += 1
                else:
                    break
        for p in product(*(range(a, b) for a, b in zip(lo, hi, strict=True))):
            todo.discard(p)
        out.append((lo, tuple(hi)))
    return out


def dask_chunks(
    shape: Sequence[int],
    base: Sequence[int],
    *,
    itemsize: int = 1,
    max_blocks: int = MAX_BLOCKS,
    min_block_bytes: int = MIN_BLOCK_BYTES,
) -> tuple[int, ...]:
    """Block shape for a dask array: whole multiples of *base*, at most *max_blocks* blocks.

    Blocks smaller than *min_block_bytes* are first grown (last dimensions first) to cut the
    per-task overhead; then blocks are coarsened until there are at most *max_blocks*.

    Parameters
    ----------
    shape
        Array shape.
    base
        The stored chunk (or shard) shape.
    itemsize
        Bytes per element.
    max_blocks
        Upper bound of the number of blocks.
    min_block_bytes
        Blocks are grown in whole multiples of *base* up to about this size.

    Returns
    -------
    tuple of int
        A block shape, each entry a multiple of *base* (or the whole dimension).
    """
    shape = [max(int(s), 0) for s in shape]
    base = [max(1, min(int(b), max(s, 1))) for b, s in zip(base, shape, strict=True)]
    block = list(base)
    full = [max(s, 1) for s in shape]

    def nblocks(blk: Sequence[int]) -> list[int]:
        return [max(1, -(-s // b)) for s, b in zip(shape, blk, strict=True)]

    grown = True
    while math.prod(block) * itemsize < min_block_bytes and grown:
        grown = False
        for d in reversed(range(len(block))):
            if block[d] < full[d] and math.prod(block) * itemsize < min_block_bytes:
                block[d] = min(block[d] * 2, -(-full[d] // base[d]) * base[d])
                grown = True
    while math.prod(nblocks(block)) > max_blocks:
        counts = nblocks(block)
        d = max(range(len(block)), key=lambda i: counts[i])
        if counts[d] <= 1:
            break
        over = math.prod(counts) / max_blocks
        factor = max(2, min(int(over), counts[d])) if over > 4 else 2
        block[d] = min(block[d] * factor, -(-full[d] // base[d]) * base[d])
    return tuple(min(b, f) for b, f in zip(block, full, strict=True))


def as_dask(
    zarr_array: zarr.Array[Any],
    *,
    where: str,
    block: str = "shard",
    max_blocks: int = MAX_BLOCKS,
    block_bytes: int = MIN_BLOCK_BYTES,
    source: tuple[Any, str] | None = None,
) -> da.Array:
    """Wrap a zarr array as a lazy dask array aligned to its stored chunks.

    Parameters
    ----------
    zarr_array
        An array opened with :func:`napari_zarr_explorer.store.open_array` (checked).
    where
        Its location (URL and node path), used in messages.
    block
        ``"shard"`` (default) makes one dask block per shard of a sharded array, ``"chunk"`` one
        per inner chunk. Unsharded arrays use one block per chunk either way.
    max_blocks
        Upper bound of the number of blocks; blocks are coarsened to whole multiples beyond it.
    block_bytes
        Blocks are grown in whole multiples of the shard (or chunk) up to about this many
        bytes (default 128 MiB).
    source
        ``(location, path)`` the array was opened from (:func:`~napari_zarr_explorer.store.
        open_array`'s arguments): with it the array can be pickled, e.g. computed on
        dask.distributed workers, which open the array again.

    Returns
    -------
    dask.array.Array
        Nothing is read until it is computed or sliced and computed. Computed by itself, as a
        whole or as a region taken with step-1 slices, it is read into one array allocated once
        (see :class:`napari_zarr_explorer._dasklevel.LevelArray`); anything derived from it
        computes block by block, as any dask array.
    """
    import dask.array as da

    reader = ChunkReader(zarr_array, where=where)
    reader.source = source
    base = reader.shards if (reader.shards is not None and block == "shard") else reader.chunks
    chunks = dask_chunks(
        reader.shape,
        base,
        itemsize=reader.dtype.itemsize,
        max_blocks=max_blocks,
        min_block_bytes=block_bytes,
    )
    from dask.base import tokenize

    name = "zarr-" + tokenize(where, reader.shape, str(reader.dtype), chunks)
    result: da.Array = da.from_array(  # type: ignore[no-untyped-call]
        reader,
        chunks=chunks,
        name=name,
        asarray=False,
        inline_array=True,
        fancy=True,
        meta=np.empty((0,) * reader.ndim, dtype=reader.dtype),
    )
    from napari_zarr_explorer._dasklevel import as_level_array

    level: da.Array = as_level_array(result, reader)
    return level


_Index = int | range


def _expand_key(key: Any, ndim: int) -> tuple[Any, ...]:
    """Return *key* with one entry per dimension (ellipsis expanded, trailing ones added)."""
    key = tuple(key) if isinstance(key, tuple) else (key,)
    if any(k is None for k in key):
        raise IndexError("new axes (None) are not supported")
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis")
    if n_ell:
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - (len(key) - 1)) + key[i + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices for an array of {ndim} dimensions")
    out: tuple[Any, ...] = key + (slice(None),) * (ndim - len(key))
    return out


def _is_int(k: Any) -> bool:
    return isinstance(k, int | np.integer) and not isinstance(k, bool)


def _as_slice(r: range) -> slice:
    """Return the slice selecting the elements of *r* (a range taken from one starting at 0)."""
    if len(r) == 0:
        return slice(0, 0)
    if r.step > 0:
        return slice(r.start, r.stop, r.step)
    return slice(r.start, r.stop if r.stop >= 0 else None, r.step)


class _Edits:
    """The in-memory edits of one :class:`LazyArray` and its views: whole stored chunks.

    Each edited chunk is a writable copy (in the reader's dtype) that replaces the stored chunk
    in every read; it lives outside the shared cache of decoded chunks and is never evicted.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.chunks: dict[tuple[int, ...], np.ndarray] = {}
        self.version = 0

    @property
    def nbytes(self) -> int:
        with self.lock:
            return sum(c.nbytes for c in self.chunks.values())


class _Blocks:
    """What dask reads the blocks of :meth:`LazyArray.to_dask` from: numpy arrays, read whole."""

    def __init__(self, lazy: LazyArray) -> None:
        self.lazy = lazy
        self.shape = lazy.shape
        self.dtype = lazy.dtype
        self.ndim = lazy.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.lazy[key])


def _lazy_to_dask(obj: Any) -> Any:
    """Replace :class:`LazyArray` objects in *obj* (also inside lists and tuples) by dask arrays."""
    if isinstance(obj, LazyArray):
        return obj.to_dask()
    if isinstance(obj, list | tuple):
        return type(obj)(_lazy_to_dask(o) for o in obj)
    return obj


class LazyArray(NDArrayOperatorsMixin):
    """A pyramid level, or a selection of one, that napari slices directly.

    Indexing with integers and slices returns another :class:`LazyArray` and reads nothing (but
    an index picking one element reads it);
    ``numpy.asarray`` reads the selection through :meth:`ChunkReader.read`: only the stored
    chunks under it, concurrently, through the cache of decoded chunks; the array it returns is
    read-only, as it may share memory with that cache (unless :attr:`writable` is set). Other
    indexes (lists, boolean masks) read at once. ``chunks`` is the stored (inner) chunk shape,
    which napari uses to align the region it asks for to whole chunks.

    Arithmetic, comparisons, numpy ufuncs and numpy functions (``data + 1``, ``np.max(data)``,
    ``np.stack([...])``) return lazy dask arrays built over the array (:meth:`to_dask`): nothing
    is read until they are computed.

    Assignment (``data[index] = value``, as napari paints labels) follows numpy's rules and
    changes an in-memory copy of the stored chunks it touches, shared by the array and its views
    and seen by every later read; nothing is ever written to the store.

    Parameters
    ----------
    reader
        The level's reader.
    index
        One entry per dimension of the level: an ``int`` (dimension dropped) or a ``range``.
    dtype
        Cast to this dtype when read (e.g. booleans shown as ``uint8``).
    edits
        The in-memory edits shared with the array this one is a view of (default: none yet).
    writable
        ``numpy.asarray`` returns writable arrays (a copy where needed); set for labels layers,
        which napari paints by changing the array it read, then assigning it back.
    """

    def __init__(
        self,
        reader: ChunkReader,
        index: tuple[_Index, ...] | None = None,
        dtype: Any = None,
        *,
        edits: _Edits | None = None,
        writable: bool = False,
    ) -> None:
        self.reader = reader
        self._index: tuple[_Index, ...] = (
            tuple(range(n) for n in reader.shape) if index is None else index
        )
        self._cast: np.dtype[Any] | None = None if dtype is None else np.dtype(dtype)
        self._edits = edits if edits is not None else _Edits()
        self.writable = writable
        kept = [
            (r, c) for r, c in zip(self._index, reader.chunks, strict=True) if isinstance(r, range)
        ]
        self.shape: tuple[int, ...] = tuple(len(r) for r, _ in kept)
        self.dtype: np.dtype[Any] = self._cast if self._cast is not None else reader.dtype
        self.ndim = len(self.shape)
        self.size = math.prod(self.shape)
        self.nbytes = self.size * self.dtype.itemsize
        aligned = all(r.step == 1 and r.start % c == 0 for r, c in kept)
        self._stored_chunks: tuple[int, ...] = tuple(c for _, c in kept)
        self.chunks: tuple[int, ...] | None = self._stored_chunks if aligned else None

    def __repr__(self) -> str:
        return f"LazyArray({self.reader.where!r}, shape={self.shape}, dtype={self.dtype})"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    @property
    def edited_nbytes(self) -> int:
        """Bytes held by the in-memory edits (whole stored chunks) of this array and its views."""
        return self._edits.nbytes

    def astype(self, dtype: Any) -> LazyArray:
        """Return the same selection, cast to *dtype* when read."""
        return self._view(self._index, dtype)

    def _view(self, index: tuple[_Index, ...], dtype: Any) -> LazyArray:
        return LazyArray(self.reader, index, dtype, edits=self._edits, writable=self.writable)

    def _split(self, key: tuple[Any, ...]) -> tuple[tuple[slice, ...], tuple[Any, ...]]:
        """Split an expanded index into slices of a bounding box and numpy's index into the box.

        Integers become length-1 slices indexed by numpy too, so that numpy's rules on where the
        indexed dimensions go apply unchanged.
        """
        basic: list[slice] = []
        rest: list[Any] = []
        for k, n in zip(key, self.shape, strict=True):
            if isinstance(k, slice):
                basic.append(k)
                rest.append(slice(None))
            elif _is_int(k):
                i = int(k) + (n if k < 0 else 0)
                if not 0 <= i < n:
                    raise IndexError(f"index {int(k)} is out of bounds for size {n}")
                basic.append(slice(i, i + 1))
                rest.append(0)
            else:
                arr = np.asarray(k)
                if arr.dtype == bool:
                    if arr.shape != (n,):
                        raise IndexError(f"boolean index of shape {arr.shape} for size {n}")
                    arr = np.flatnonzero(arr)
                if arr.size == 0:
                    arr = arr.astype(np.intp)
                if arr.dtype.kind not in "iu":
                    raise IndexError(f"unsupported index {k!r}")
                arr = np.where(arr < 0, arr + n, arr)
                if arr.size and (arr.min() < 0 or arr.max() >= n):
                    raise IndexError(f"index out of bounds for size {n}")
                lo = int(arr.min()) if arr.size else 0
                hi = int(arr.max()) + 1 if arr.size else 0
                basic.append(slice(lo, hi))
                rest.append(arr - lo)
        return tuple(basic), tuple(rest)

    def __getitem__(self, key: Any) -> Any:
        key = _expand_key(key, self.ndim)
        if all(_is_int(k) or isinstance(k, slice) for k in key):
            view = self._select(key)
            return view.read()[()] if view.ndim == 0 else view  # one element: read it
        # Lists and masks: read the bounding selection, then let numpy index it.
        basic, rest = self._split(key)
        return np.asarray(self._select(basic))[rest]

    def __setitem__(self, key: Any, value: Any) -> None:
        """Assign with numpy's rules to an in-memory copy of the touched chunks (never stored)."""
        basic, rest = self._split(_expand_key(key, self.ndim))
        box = self._select(basic)
        data = np.array(box.read())  # writable, with the earlier edits
        data[rest] = value
        touched = np.zeros(data.shape, dtype=bool)
        touched[rest] = True
        if not touched.any():
            return
        where = np.nonzero(touched) if touched.ndim else ()
        count = int(touched.sum())
        coords: list[np.ndarray] = []
        it = iter(where)
        for r in box._index:
            if isinstance(r, int):
                coords.append(np.full(count, r, dtype=np.intp))
            else:
                coords.append(np.asarray(r, dtype=np.intp)[next(it)])
        values = data[touched].astype(self.reader.dtype)
        self._edits_put(coords, values)

    def _edits_put(self, coords: list[np.ndarray], values: np.ndarray) -> None:
        reader = self.reader
        grid = np.stack([c // s for c, s in zip(coords, reader.chunks, strict=True)], axis=1)
        ids, inverse = np.unique(grid, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        edits = self._edits
        with edits.lock:
            missing = [
                tuple(int(v) for v in i)
                for i in ids
                if tuple(int(v) for v in i) not in edits.chunks
            ]
        fresh = {}
        for c in missing:  # read outside the lock: it may take a while
            region = reader._chunk_region(c, [v + 1 for v in c])
            fresh[c] = np.array(reader.read(region))  # a writable copy, outside the cache
        with edits.lock:
            for c, chunk in fresh.items():
                edits.chunks.setdefault(c, chunk)
            for n, i in enumerate(ids):
                c = tuple(int(v) for v in i)
                mine = inverse == n
                local = tuple(
                    coord[mine] - v * s
                    for coord, v, s in zip(coords, c, reader.chunks, strict=True)
                )
                edits.chunks[c][local] = values[mine]
            edits.version += 1

    def _select(self, key: tuple[Any, ...]) -> LazyArray:
        new: list[_Index] = []
        it = iter(key)
        for r in self._index:
            if isinstance(r, int):
                new.append(r)
                continue
            k = next(it)
            if isinstance(k, slice):
                new.append(r[k])
            else:
                i = int(k)
                if not -len(r) <= i < len(r):
                    raise IndexError(f"index {i} is out of bounds for size {len(r)}")
                new.append(r[i])
        return self._view(tuple(new), self._cast)

    def read(self) -> np.ndarray:
        """Read the selection (only the chunks under it) and return it as a numpy array.

        The array is read-only unless :attr:`writable` is set: it may share memory with the
        cache of decoded chunks (``numpy.array(view)`` gives a writable copy). In-memory edits
        are applied.
        """
        key = tuple(r if isinstance(r, int) else _as_slice(r) for r in self._index)
        edits = self._edits
        if not edits.chunks:
            out = np.asarray(self.reader[key])
        else:
            region, post, trivial = _plan(key, self.reader.shape)
            out = self.reader.read(region)
            copied = False
            with edits.lock:
                for coords, chunk in edits.chunks.items():
                    cregion = self.reader._chunk_region(coords, [c + 1 for c in coords])
                    if all(
                        c.start < r.stop and r.start < c.stop
                        for c, r in zip(cregion, region, strict=True)
                    ):
                        if not copied:
                            out = np.array(out)
                            copied = True
                        _paste(out, region, chunk, cregion)
            if not trivial:
                out = np.asarray(out[post])
        if self._cast is not None and out.dtype != self._cast:
            out = out.astype(self._cast)
        if self.writable and not out.flags.writeable:
            out = out.copy()
        return out

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self.read()
        if dtype is not None and out.dtype != np.dtype(dtype):
            out = out.astype(dtype)
        elif copy:
            out = out.copy()
        return out

    def to_dask(self) -> da.Array:
        """Return a lazy dask array over this array (its reads and in-memory edits).

        Blocks are whole stored chunks (grown as for :func:`as_dask`); each block is read with
        :meth:`read`: through the cache of decoded chunks, within the decoded-size limit, with
        undecodable chunks shown as the fill value, and with the in-memory edits applied (those
        made before it is computed).

        Returns
        -------
        dask.array.Array
        """
        import dask.array as da
        from dask.base import tokenize

        blocks = dask_chunks(self.shape, self._stored_chunks, itemsize=self.dtype.itemsize)
        name = "lazy-" + tokenize(self.__dask_tokenize__(), blocks)
        result: da.Array = da.from_array(  # type: ignore[no-untyped-call]
            _Blocks(self),
            chunks=blocks,
            name=name,
            asarray=True,
            fancy=False,
            inline_array=True,
            meta=np.empty((0,) * self.ndim, dtype=self.dtype),
        )
        return result

    def to_dask_array(self) -> da.Array:
        """Return :meth:`to_dask` (the name ``dask.array.asarray`` looks for)."""
        return self.to_dask()

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        index = tuple(r if isinstance(r, int) else (r.start, r.stop, r.step) for r in self._index)
        return (
            "napari-zarr-explorer.LazyArray",
            self.reader.where,
            self.reader._id,
            index,
            str(self.dtype),
            id(self._edits),
            self._edits.version,
        )

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if any(isinstance(o, LazyArray) for o in kwargs.get("out", ())):
            raise TypeError(
                "a LazyArray cannot be the output of a ufunc; assign the result with "
                "data[...] = value instead"
            )
        return getattr(ufunc, method)(*_lazy_to_dask(inputs), **kwargs)

    def __array_function__(
        self, func: Any, types: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return func(*_lazy_to_dask(args), **{k: _lazy_to_dask(v) for k, v in kwargs.items()})


def as_level(
    zarr_array: zarr.Array[Any], *, where: str, cache: ChunkCache | None = None
) -> LazyArray:
    """Wrap a zarr array as the lazy array napari displays (see :class:`LazyArray`).

    Parameters
    ----------
    zarr_array
        An array opened with :func:`napari_zarr_explorer.store.open_array` (checked).
    where
        Its location (URL and node path), used in messages.
    cache
        The cache of decoded chunks (default: the process-wide :func:`chunk_cache`).
    """
    reader = ChunkReader(
        zarr_array, where=where, cache=cache if cache is not None else chunk_cache()
    )
    return LazyArray(reader)


def find_pyramid(arrays: Sequence[tuple[str, tuple[int, ...]]]) -> list[str] | None:
    """Return the names of *arrays* ordered as a pyramid, or None if they do not form one.

    A pyramid is two or more arrays of the same rank whose shapes shrink (never grow in any
    dimension, and strictly in total size) from one level to the next.

    Parameters
    ----------
    arrays
        ``(name, shape)`` pairs.
    """
    if len(arrays) < 2:
        return None
    ranks = {len(s) for _, s in arrays}
    if len(ranks) != 1 or ranks == {0}:
        return None
    ordered = sorted(arrays, key=lambda a: (-math.prod(a[1]), a[0]))
    for (_, big), (_, small) in pairwise(ordered):
        if math.prod(small) >= math.prod(big):
            return None
        if any(s > b for s, b in zip(small, big, strict=True)):
            return None
    return [n for n, _ in ordered]


class PyramidLevels:
    """The resolved levels of an image node: their store paths and OME metadata if any."""

    def __init__(self, paths: list[str], ome: Any = None, warnings: Sequence[str] = ()) -> None:
        self.paths = paths
        self.ome = ome
        self.warnings = tuple(warnings)


def resolve_levels(store: Any, where: str, path: str = "") -> PyramidLevels:
    """Find the arrays that make up the image at *path*.

    An array is one level; an OME multiscales group gives its datasets (paths checked with
    :func:`~napari_zarr_explorer.store.safe_join`; missing ones skipped with a warning); a plain
    group whose arrays form a pyramid gives them, largest first.

    Raises
    ------
    ExplorerError
        When nothing usable is found at *path*.
    """
    from napari_zarr_explorer.ome.model import parse_ome
    from napari_zarr_explorer.store import read_node, safe_join
    from napari_zarr_explorer.store.locate import node_where

    node = read_node(store, path, where=where)
    if node is None:
        raise NotFoundError(f"{node_where(where, path)}: no Zarr array or group here.")
    if node.kind == "array":
        return PyramidLevels([path])
    ome = parse_ome(node.attributes, zarr_format=node.zarr_format)
    notes: list[str] = []
    if ome is not None and ome.multiscales:
        ms = ome.multiscales[0]
        paths: list[str] = []
        for ds in ms.datasets:
            try:
                key = safe_join(path, ds.path)
            except PathEscapeError as exc:
                notes.append(f"level {ds.path!r} refused: {exc}")
                continue
            child = read_node(store, key, where=where)
            if child is None or child.kind != "array":
                notes.append(f"level {ds.path!r} does not exist; skipped.")
                continue
            paths.append(key)
        if paths:
            return PyramidLevels(paths, ome, notes)
        notes.append("no multiscales level could be opened; the arrays are opened plainly.")
    arrays = _child_arrays(store, where, path)
    pyr = find_pyramid(arrays)
    if pyr:
        return PyramidLevels([safe_join(path, n) for n in pyr], None, notes)
    if arrays:
        return PyramidLevels([safe_join(path, arrays[0][0])], None, notes)
    raise ExplorerError(
        f"{node_where(where, path)}: no image array found.",
        hint="Open an array or an OME-Zarr image.",
    )


def _child_arrays(store: Any, where: str, path: str) -> list[tuple[str, tuple[int, ...]]]:
    """Image-like arrays directly below the group at *path*: (name, shape)."""
    from napari_zarr_explorer.store import read_node

    out = []
    for name in list_children(store, path):
        child = read_node(store, f"{path}/{name}".strip("/"), where=where)
        if child is None or child.kind != "array" or child.shape is None:
            continue
        if len(child.shape) >= 2 and _numeric(child.metadata, child.zarr_format):
            out.append((name, child.shape))
    return out


def _numeric(metadata: Any, zarr_format: int) -> bool:
    dtype = metadata.get("dtype") if zarr_format == 2 else metadata.get("data_type")
    if not isinstance(dtype, str):
        return False
    if zarr_format == 2:
        return dtype.lstrip("<>|=")[:1] in ("b", "i", "u", "f")
    return dtype == "bool" or dtype.startswith(("int", "uint", "float"))


def list_children(store: Any, path: str, *, limit: int = 10_000) -> list[str]:
    """Names of the direct children of *path* (sorted), from the listing or consolidated data."""
    from napari_zarr_explorer.store import consolidated_nodes

    prefix = path.strip("/")
    cons = None
    try:
        cons = consolidated_nodes(store, where="")
    except MetadataError:
        cons = None
    names: set[str] = set()
    if cons is not None:
        for key in cons:
            parent, _, name = key.rpartition("/")
            if parent == prefix and name:
                names.add(name)
        if names:
            return sorted(names)
    if not getattr(store, "supports_listing", False):
        return sorted(names)
    from zarr.core.sync import sync

    async def collect() -> list[str]:
        out = []
        async for item in store.list_dir(prefix):
            out.append(item)
            if len(out) >= limit:
                break
        return out

    try:
        items = sync(collect())
    except (OSError, NotImplementedError):
        return []
    return sorted(i.rstrip("/") for i in items if not i.startswith(".") and i != "zarr.json")


def open_pyramid(
    url: str,
    path: str = "",
    *,
    storage_options: dict[str, Any] | None = None,
    block_bytes: int = MIN_BLOCK_BYTES,
) -> list[da.Array]:
    """Open the image at *url* / *path* as a list of dask arrays, largest first.

    Parameters
    ----------
    url
        Local path or URL of the store.
    path
        Store-relative path of an array, an OME multiscales group, or a plain group of levels.
    storage_options
        Options for remote stores.
    block_bytes
        Size the dask blocks grow to, in whole shards (or chunks): about this many bytes
        (default 128 MiB). Smaller blocks bound the memory of block-by-block work further.

    Returns
    -------
    list of dask.array.Array
        Computing a level (or a region of it taken with step-1 slices) by itself reads it into
        one array allocated once, with no copy by dask afterwards; see :func:`as_dask`.
    """
    from napari_zarr_explorer.store import open_array, open_store, parse_location
    from napari_zarr_explorer.store.locate import node_where

    loc = parse_location(url, storage_options)
    store = open_store(loc)
    levels = resolve_levels(store, loc.shown, path)
    for note in levels.warnings:
        warnings.warn(f"{loc.shown}: {note}", ExplorerWarning, stacklevel=2)
    out = []
    for p in levels.paths:
        arr = open_array(loc, p, store=store)
        out.append(
            as_dask(
                arr,
                where=node_where(loc.shown, p),
                block_bytes=block_bytes,
                source=(loc, p),
            )
        )
    return out
