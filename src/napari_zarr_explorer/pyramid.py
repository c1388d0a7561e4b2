"""Zarr arrays as lazy dask arrays, aligned to storage, bounded, and tolerant of bad chunks.

:func:`as_dask` wraps a ``zarr.Array`` in :class:`ChunkReader` (an array-like whose
``__getitem__`` reads through zarr-python) and builds a dask array whose blocks are whole stored
chunks (whole shards for sharded arrays), coarsened to whole multiples when the block count would
exceed :data:`MAX_BLOCKS`. Reading is guarded:

- a read whose chunks would decode to more than the limit (:func:`max_chunk_bytes`, set with the
  environment variable ``NAPARI_ZARR_EXPLORER_MAX_CHUNK_BYTES``) raises
  :class:`~napari_zarr_explorer.errors.LimitError` before anything is decoded;
- a chunk that fails to decode is shown as the fill value, and an
  :class:`~napari_zarr_explorer.errors.ExplorerWarning` names its key once.
"""

from __future__ import annotations

import math
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from itertools import pairwise, product
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_zarr_explorer.errors import (
    ExplorerError,
    ExplorerWarning,
    LimitError,
    MetadataError,
    NotFoundError,
    PathEscapeError,
    RemoteError,
    UnsafeDataError,
)

if TYPE_CHECKING:
    import dask.array as da
    import zarr

__all__ = [
    "DEFAULT_MAX_CHUNK_BYTES",
    "MAX_BLOCKS",
    "ChunkReader",
    "PyramidLevels",
    "as_dask",
    "dask_chunks",
    "find_pyramid",
    "max_chunk_bytes",
    "open_pyramid",
    "resolve_levels",
]

#: Default limit of decoded bytes per read (1 GiB).
DEFAULT_MAX_CHUNK_BYTES = 1 << 30
#: Environment variable overriding the limit (bytes; suffixes K, M, G, T accepted).
LIMIT_ENV = "NAPARI_ZARR_EXPLORER_MAX_CHUNK_BYTES"
#: Largest number of dask blocks per array; beyond it blocks are coarsened.
MAX_BLOCKS = 100_000
#: Blocks are grown (in whole chunks) up to about this many bytes, to cut per-task overhead.
MIN_BLOCK_BYTES = 128 * 1024 * 1024


def max_chunk_bytes() -> int:
    """Return the decoded-bytes limit per read, from the environment or the default (1 GiB)."""
    raw = os.environ.get(LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_CHUNK_BYTES
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:i?B)?", raw, flags=re.IGNORECASE)
    if m is None:
        warnings.warn(
            f"{LIMIT_ENV}={os.environ[LIMIT_ENV]!r} is not a number of bytes; using the default "
            f"{DEFAULT_MAX_CHUNK_BYTES}.",
            ExplorerWarning,
            stacklevel=2,
        )
        return DEFAULT_MAX_CHUNK_BYTES
    mult = 1024 ** ("KMGT".index(m.group(2).upper()) + 1) if m.group(2) else 1
    value = int(float(m.group(1)) * mult)
    return max(value, 1)


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
    """

    def __init__(self, array: zarr.Array[Any], *, where: str) -> None:
        self.array = array
        self.where = where
        self.shape: tuple[int, ...] = tuple(int(s) for s in array.shape)
        stored = np.dtype(array.dtype)
        self.dtype: np.dtype[Any] = (
            stored.newbyteorder("=") if stored.byteorder not in ("=", "|") else stored
        )
        self.ndim = len(self.shape)
        self.chunks: tuple[int, ...] = tuple(int(c) for c in array.chunks)
        shards = getattr(array, "shards", None)
        self.shards: tuple[int, ...] | None = (
            tuple(int(s) for s in shards) if shards is not None else None
        )
        self.chunk_nbytes = math.prod(self.chunks) * self.dtype.itemsize
        fill = array.fill_value
        if isinstance(fill, np.generic):
            fill = fill.item()
        self.fill_value: Any = 0 if fill is None else fill
        self._bad: set[tuple[int, ...]] = set()
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("napari-zarr-explorer.ChunkReader", self.where, self.shape, str(self.dtype))

    def __repr__(self) -> str:
        return f"ChunkReader({self.where!r}, shape={self.shape}, dtype={self.dtype})"

    @property
    def bad_chunks(self) -> frozenset[tuple[int, ...]]:
        """Grid coordinates of chunks that failed to decode so far."""
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

    def check_limit(self, sel: tuple[slice, ...]) -> None:
        """Raise :class:`LimitError` if reading *sel* would decode more than the limit."""
        n = math.prod(len(r) for r in self._chunk_ranges(sel))
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

    def read(self, sel: tuple[slice, ...]) -> np.ndarray:
        """Read the region *sel* (one step-1 slice per dimension)."""
        shape = tuple(s.stop - s.start for s in sel)
        if 0 in shape:
            return np.empty(shape, dtype=self.dtype)
        self.check_limit(sel)
        with self._lock:
            known_bad = bool(self._bad)
        if not known_bad or not self._touches_bad(sel):
            try:
                return self._fetch(sel)
            except (LimitError, UnsafeDataError, PathEscapeError, MetadataError):
                raise
            except RemoteError as exc:
                if not isinstance(exc, NotFoundError):
                    raise
            except Exception as exc:  # retried chunk by chunk below, naming the bad chunk
                del exc
        return self._read_tolerant(sel, shape)

    def _fetch(self, sel: tuple[slice, ...]) -> np.ndarray:
        if self.shards is not None and type(self.array.store).__name__ == "RemoteStore":
            # zarr reads the inner chunks of a shard one after another: on a remote store each
            # is a round trip, so they are fetched concurrently instead.
            from napari_zarr_explorer.store.remote import read_region

            data = np.asarray(read_region(self.array, sel))
        else:
            data = np.asarray(self.array[sel])
        if data.dtype != self.dtype:
            data = data.astype(self.dtype)
        return data

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

    def _read_tolerant(self, sel: tuple[slice, ...], shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty(shape, dtype=self.dtype)
        for coords, src, dst in self._iter_chunks(sel):
            with self._lock:
                bad = coords in self._bad
            if not bad:
                try:
                    out[dst] = self._fetch(src)
                    continue
                except (LimitError, UnsafeDataError, RemoteError) as exc:
                    if not isinstance(exc, NotFoundError):
                        raise
                except Exception as exc:
                    key = self.chunk_key(coords)
                    stored = key.split(" ", 1)[0]  # the shard's key for inner chunks
                    with self._lock:
                        self._bad.add(coords)
                        first = stored not in self._warned
                        self._warned.add(stored)
                    if first:  # once per stored object, not on every redraw
                        warnings.warn(
                            f"{self.where}: chunk {key} could not be decoded "
                            f"({type(exc).__name__}: {exc}); it is shown as the fill value "
                            f"{self.fill_value!r}.",
                            ExplorerWarning,
                            stacklevel=2,
                        )
            try:
                out[dst] = self.fill_value
            except (ValueError, TypeError):
                out[dst] = 0
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

    Returns
    -------
    dask.array.Array
        Nothing is read until it is computed or sliced and computed.
    """
    import dask.array as da

    reader = ChunkReader(zarr_array, where=where)
    base = reader.shards if (reader.shards is not None and block == "shard") else reader.chunks
    chunks = dask_chunks(reader.shape, base, itemsize=reader.dtype.itemsize, max_blocks=max_blocks)
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
    return result


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

    node = read_node(store, path, where=where)
    if node is None:
        raise NotFoundError(f"{where}/{path}: no Zarr array or group here.".replace("//", "/"))
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
        f"{where}/{path}: no image array found.".replace("//", "/"),
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
    url: str, path: str = "", *, storage_options: dict[str, Any] | None = None
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

    Returns
    -------
    list of dask.array.Array
    """
    from napari_zarr_explorer.store import open_array, open_store, parse_location

    loc = parse_location(url, storage_options)
    store = open_store(loc)
    levels = resolve_levels(store, loc.url, path)
    for note in levels.warnings:
        warnings.warn(f"{loc.url}: {note}", ExplorerWarning, stacklevel=2)
    out = []
    for p in levels.paths:
        arr = open_array(loc, p, store=store)
        out.append(as_dask(arr, where=f"{loc.url}/{p}" if p else loc.url))
    return out
