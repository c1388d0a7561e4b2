"""Reading regions of arrays in bulk: stored objects read whole, chunks decoded into the output.

zarr-python decodes every chunk of a read as its own coroutine, through its codec pipeline, into
a chunk-sized buffer, then copies it into the result. For the pipelines most image data use
(``bytes`` alone or followed by ``blosc`` or ``zstd``, sharded or not; Zarr v2 with a ``blosc``
or ``zstd`` compressor or none), :func:`bulk_read` does the same work with less around it:

- the stored objects under the region (chunks, or shards: the size checked, the index read
  once, then one read per run of adjacent inner chunks needed, so only their bytes) are read
  by plain file reads, in batches taken by the calling thread and up to one pool thread per
  other processor, each thread decoding what it read;
- the size a chunk declares (blosc's header, the zstd frame's content size) must equal the
  chunk's size *before* it is decoded, and it is decoded into a buffer of exactly that size
  (numcodecs' decoders with ``out``, which release the GIL): no chunk decodes past its size;
- anything unusual is read again through the plain path (``array[region]``, the guarded
  zarr-python pipeline): another codec, a zstd frame without a content size, a chunk that fails
  to decode, a shard index that fails its checksum or points past the shard's end, an object
  that cannot be read, a missing chunk whose fill value is not known. The result and the
  errors are therefore those of the plain path; a damaged chunk raises exactly what
  ``array[region]`` raises for it.

Only arrays on local folders (:class:`~napari_zarr_explorer.store._localstore.ConfinedLocalStore`,
every key confined) are read in bulk; other stores are read plainly.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from napari_zarr_explorer.errors import MetadataError
from napari_zarr_explorer.store.exact import check_declared, decode_into
from napari_zarr_explorer.store.shardindex import (
    IndexLayout,
    entry_masks,
    index_layout,
    parse_shard_index,
)

__all__ = ["bulk_plan", "bulk_read"]

_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0  # the process that made the pool
_POOL_LOCK = threading.Lock()
_SCRATCH = threading.local()


def _pool() -> ThreadPoolExecutor:
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or os.getpid() != _POOL_PID:  # a forked child has none of the threads
            _POOL = ThreadPoolExecutor(
                max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="nze-bulk-read"
            )
            _POOL_PID = os.getpid()
        return _POOL


@dataclass(frozen=True)
class BulkPlan:
    """How the chunks of one array are read in bulk (see :func:`bulk_plan`)."""

    dtype: np.dtype[Any]
    chunks: tuple[int, ...]  # the (inner) chunk shape
    shards: tuple[int, ...] | None  # the shard shape, None when not sharded
    codec: str  # "raw", "blosc" or "zstd"
    fill: np.ndarray | None  # the fill value as a 0-d array, None when not known
    index: IndexLayout | None  # the shard index, None when not sharded
    encode_key: Callable[[tuple[int, ...]], str]

    @property
    def chunk_nbytes(self) -> int:
        """Decoded bytes of one (inner) chunk."""
        return math.prod(self.chunks) * self.dtype.itemsize

    @property
    def per_shard(self) -> tuple[int, ...]:
        """Inner chunks per shard along each dimension."""
        assert self.shards is not None
        return tuple(s // c for s, c in zip(self.shards, self.chunks, strict=True))


def _name(value: Any) -> str:
    """Return an enum's value, or the string itself (zarr 3.1 uses enums, newer zarr strings)."""
    return str(getattr(value, "value", value))


def _native_bytes(codec: Any, dtype: np.dtype[Any]) -> bool:
    from zarr.codecs import BytesCodec

    if not isinstance(codec, BytesCodec):
        return False
    endian = getattr(codec, "endian", None)
    return dtype.itemsize == 1 or endian is None or _name(endian) == sys.byteorder


def _compressor_v3(codecs: Sequence[Any], dtype: np.dtype[Any]) -> str | None:
    """Return ``raw``, ``blosc`` or ``zstd`` for ``bytes`` (+ one of those), else None."""
    from zarr.codecs import BloscCodec, ZstdCodec

    if not codecs or not _native_bytes(codecs[0], dtype):
        return None
    rest = list(codecs[1:])
    if not rest:
        return "raw"
    if len(rest) == 1 and type(rest[0]) is BloscCodec:
        return "blosc"
    if len(rest) == 1 and type(rest[0]) is ZstdCodec:
        return "zstd"
    return None


def bulk_plan(array: Any) -> BulkPlan | None:
    """Return how *array*'s chunks are read in bulk, or None when they are read plainly.

    Parameters
    ----------
    array
        A ``zarr.Array`` opened by :func:`~napari_zarr_explorer.store.open_array`.

    Returns
    -------
    BulkPlan or None
        None for stores other than local folders, data types other than native-order numbers,
        and codec pipelines other than ``bytes`` (+ ``blosc`` or ``zstd``), sharded with a
        ``bytes`` (+ ``crc32c``) index, or Zarr v2 with no filters, C order and a ``blosc`` or
        ``zstd`` compressor or none.
    """
    from napari_zarr_explorer.store._localstore import ConfinedLocalStore

    try:
        if not isinstance(array.store, ConfinedLocalStore):
            return None
        dtype = np.dtype(array.dtype)
        if dtype.kind not in "biufc" or not dtype.isnative or dtype.hasobject:
            return None
        md = array.metadata
        fill_raw = md.fill_value
        fill: np.ndarray | None
        try:
            fill = np.asarray(0 if fill_raw is None else fill_raw).astype(dtype)
            if fill.shape != ():
                fill = None
        except (TypeError, ValueError):
            fill = None
        chunks = tuple(int(c) for c in array.chunks)
        if int(getattr(md, "zarr_format", 0)) == 2:
            if md.filters or md.order != "C":
                return None
            comp = md.compressor
            cid = None if comp is None else getattr(comp, "codec_id", "?")
            if cid not in (None, "blosc", "zstd"):
                return None
            return BulkPlan(
                dtype=dtype,
                chunks=chunks,
                shards=None,
                codec="raw" if cid is None else str(cid),
                fill=fill,
                index=None,
                encode_key=md.encode_chunk_key,
            )
        from zarr.codecs import ShardingCodec

        codecs = list(md.codecs)
        if len(codecs) == 1 and type(codecs[0]) is ShardingCodec:
            sc = codecs[0]
            inner = _compressor_v3(list(sc.codecs), dtype)
            if inner is None:
                return None
            shards = tuple(int(s) for s in array.shards)
            if tuple(int(c) for c in sc.chunk_shape) != chunks:
                return None
            if any(s % c for s, c in zip(shards, chunks, strict=True)):
                return None
            layout = index_layout(
                {"index_codecs": list(sc.index_codecs), "index_location": sc.index_location},
                math.prod(s // c for s, c in zip(shards, chunks, strict=True)),
            )
            if layout is None:
                return None
            return BulkPlan(
                dtype=dtype,
                chunks=chunks,
                shards=shards,
                codec=inner,
                fill=fill,
                index=layout,
                encode_key=md.encode_chunk_key,
            )
        codec = _compressor_v3(codecs, dtype)
        if codec is None:
            return None
        return BulkPlan(
            dtype=dtype,
            chunks=chunks,
            shards=None,
            codec=codec,
            fill=fill,
            index=None,
            encode_key=md.encode_chunk_key,
        )
    except Exception:  # an unusual array or zarr layout: read it plainly
        return None


# --------------------------------------------------------------------------------------------
# decoding one chunk into a buffer of exactly its size
# --------------------------------------------------------------------------------------------


def _scratch(plan: BulkPlan) -> np.ndarray:
    """Return this thread's chunk-sized buffer (reused from chunk to chunk)."""
    buf: np.ndarray | None = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.nbytes != plan.chunk_nbytes:
        buf = np.empty(plan.chunk_nbytes, dtype=np.uint8)
        _SCRATCH.buf = buf
    return buf


def _decode(plan: BulkPlan, data: memoryview) -> np.ndarray | None:
    """Decode one chunk into this thread's buffer; None when it must be read plainly.

    The size rules are those of :mod:`~napari_zarr_explorer.store.exact`: the size the chunk
    declares is checked first and must be the chunk's size, and the decoder writes into a
    buffer of exactly that size and cannot go past it.
    """
    try:
        if plan.codec == "raw":
            check_declared("raw", data, plan.chunk_nbytes)
            return np.frombuffer(data, dtype=plan.dtype).reshape(plan.chunks)
        out = _scratch(plan)
        # another declared size, no zstd content size...: the guarded path decides
        decode_into(plan.codec, data, out)
    except Exception:  # the plain path reads it again and raises its own error
        return None
    return out.view(plan.dtype).reshape(plan.chunks)


# --------------------------------------------------------------------------------------------
# the work of one stored object (a chunk, or a shard)
# --------------------------------------------------------------------------------------------

_Region = tuple[slice, ...]


def _overlap(
    lo: Sequence[int], size: Sequence[int], shape: Sequence[int], sel: _Region
) -> tuple[_Region, _Region] | None:
    """(source inside the block at *lo*, destination inside the output) of block ∩ *sel*."""
    src = []
    dst = []
    for a, n, full, s in zip(lo, size, shape, sel, strict=True):
        start = max(a, s.start)
        stop = min(a + n, full, s.stop)
        if stop <= start:
            return None
        src.append(slice(start - a, stop - a))
        dst.append(slice(start - s.start, stop - s.start))
    return tuple(src), tuple(dst)


def _absolute(dst: _Region, sel: _Region) -> _Region:
    return tuple(slice(d.start + s.start, d.stop + s.start) for d, s in zip(dst, sel, strict=True))


class _Job:
    """Reads and decodes the stored objects it is given, writing into *out*.

    Parts it does not decode are added to the list each method is given (array regions, read
    afterwards through the plain path).
    """

    def __init__(self, array: Any, plan: BulkPlan, sel: _Region, out: np.ndarray) -> None:
        self.array = array
        self.plan = plan
        self.sel = sel
        self.out = out
        self.shape = tuple(int(s) for s in array.shape)
        self.store = array.store
        self.prefix = array.store_path.path

    def key(self, coords: tuple[int, ...]) -> str:
        k = self.plan.encode_key(coords)
        return f"{self.prefix}/{k}" if self.prefix else k

    def get(self, key: str, byte_range: Any = None) -> bytes | None:
        buf = self.store.get_sync(key, byte_range=byte_range)
        return None if buf is None else bytes(buf.to_bytes())

    def fill(self, dst: _Region, plain: list[_Region]) -> None:
        if self.plan.fill is None:
            plain.append(_absolute(dst, self.sel))
        else:
            self.out[dst] = self.plan.fill

    def put(self, coords: tuple[int, ...], data: memoryview, plain: list[_Region]) -> None:
        plan = self.plan
        lo = [c * n for c, n in zip(coords, plan.chunks, strict=True)]
        part = _overlap(lo, plan.chunks, self.shape, self.sel)
        if part is None:
            return
        src, dst = part
        chunk = _decode(plan, data)
        if chunk is None:
            plain.append(_absolute(dst, self.sel))
        else:
            self.out[dst] = chunk[src]

    def chunk(self, coords: tuple[int, ...], plain: list[_Region]) -> None:
        plan = self.plan
        lo = [c * n for c, n in zip(coords, plan.chunks, strict=True)]
        part = _overlap(lo, plan.chunks, self.shape, self.sel)
        if part is None:
            return
        data = self.get(self.key(coords))
        if data is None:
            self.fill(part[1], plain)
        else:
            self.put(coords, memoryview(data), plain)

    def shard(self, scoords: tuple[int, ...], plain: list[_Region]) -> None:
        from zarr.abc.store import RangeByteRequest, SuffixByteRequest

        plan = self.plan
        assert plan.shards is not None
        lo = [c * n for c, n in zip(scoords, plan.shards, strict=True)]
        whole = _overlap(lo, plan.shards, self.shape, self.sel)
        if whole is None:
            return
        layout = plan.index
        assert layout is not None
        per = plan.per_shard
        index_nbytes = layout.nbytes
        key = self.key(scoords)
        found = self.store._stat(key)  # confined; None: absent or not a regular file
        if found is None:
            self.fill(whole[1], plain)
            return
        shard_nbytes = int(found[1].st_size)
        if index_nbytes > shard_nbytes:  # too short to hold its index: the plain path says so
            plain.append(_absolute(whole[1], self.sel))
            return
        raw_index = self.get(
            key,
            SuffixByteRequest(index_nbytes) if layout.at_end else RangeByteRequest(0, index_nbytes),
        )
        if raw_index is None:
            self.fill(whole[1], plain)
            return
        try:  # length, checksum, and every entry inside the shard's data
            flat = parse_shard_index(raw_index, layout, shard_nbytes=shard_nbytes, where=key)
        except MetadataError:  # the plain path reads this part and reports what it finds
            plain.append(_absolute(whole[1], self.sel))
            return
        index = flat.reshape(*per, 2)
        # the inner chunks under the selection
        ranges = []
        for s, a, c, p in zip(self.sel, lo, plan.chunks, per, strict=True):
            first = max(s.start - a, 0) // c
            last = min(-(-(s.stop - a) // c), p)
            ranges.append(range(first, last))
        wanted = list(product(*ranges))
        rows = np.array([index[w] for w in wanted], dtype=np.uint64).reshape(-1, 2)
        present = ~entry_masks(rows, layout, None)[0]
        # the inner chunks needed, read as runs of adjacent ones: only their bytes are read
        pieces: dict[int, memoryview] = {}
        if present.any():
            ids = np.flatnonzero(present)
            offs = rows[ids, 0]
            ends = offs + rows[ids, 1]  # inside the shard: checked with the index
            runs: list[tuple[int, int, list[int]]] = []
            for j in np.argsort(offs, kind="stable").tolist():
                o, e = int(offs[j]), int(ends[j])
                if runs and o <= runs[-1][1]:
                    a, b, members = runs[-1]
                    members.append(j)
                    runs[-1] = (a, max(b, e), members)
                else:
                    runs.append((o, e, [j]))
            for a, b, members in runs:
                got = self.get(key, RangeByteRequest(a, b))
                if got is None or len(got) != b - a:
                    # removed in between, or chunks past the end of the shard: the plain path
                    # reads this part of the shard (zarr's result depends on how it reads it)
                    plain.append(_absolute(whole[1], self.sel))
                    return
                view = memoryview(got)
                for j in members:
                    o = int(offs[j]) - a
                    pieces[int(ids[j])] = view[o : o + int(rows[ids[j], 1])]
        for n, inner in enumerate(wanted):
            coords = tuple(s * p + i for s, p, i in zip(scoords, per, inner, strict=True))
            data = pieces.get(n)
            if data is None:  # absent
                clo = [c * m for c, m in zip(coords, plan.chunks, strict=True)]
                part = _overlap(clo, plan.chunks, self.shape, self.sel)
                if part is not None:
                    self.fill(part[1], plain)
                continue
            self.put(coords, data, plain)


def _objects(plan: BulkPlan, sel: _Region) -> Iterator[tuple[int, ...]]:
    """Grid coordinates of the stored objects (chunks or shards) under *sel*."""
    block = plan.shards if plan.shards is not None else plan.chunks
    return product(*(range(s.start // b, -(-s.stop // b)) for s, b in zip(sel, block, strict=True)))


def _plain(array: Any, region: _Region) -> np.ndarray:
    return np.asarray(array[region])


def _check_out(out: np.ndarray, shape: tuple[int, ...], sel: tuple[Any, ...]) -> None:
    """Raise ValueError when *out* cannot take the region *sel* of an array of *shape*."""
    if not out.flags.writeable:
        raise ValueError(
            "out is read-only: the region is written into it. Pass a writeable array (e.g. "
            "a copy), or no out to get a new array."
        )
    try:  # the region's shape, from a view of one element: nothing allocated, nothing read
        want = np.broadcast_to(np.empty((), dtype=bool), shape)[sel].shape
    except (IndexError, TypeError, ValueError):
        return  # not a selection numpy takes: the read says what is wrong with it
    if out.shape != want:
        raise ValueError(f"out has the shape {out.shape}, the region {want}")


def _into(out: np.ndarray | None, data: np.ndarray) -> np.ndarray:
    if out is None:
        return data
    out[...] = data
    return out


def bulk_read(
    array: Any, selection: Sequence[slice], *, out: np.ndarray | None = None
) -> np.ndarray:
    """Read the region *selection* of *array*, in bulk where its codecs allow (see module doc).

    Parameters
    ----------
    array
        A ``zarr.Array`` opened by :func:`~napari_zarr_explorer.store.open_array` (checked
        metadata, guarded codec pipeline).
    selection
        One slice per dimension, with step 1 (start and stop may be omitted).
    out
        Where to write the region (a writeable array of its shape, e.g. a view into a larger
        result); chunks are then decoded straight into it (values of another data type are
        cast as by assignment). It is returned. On an error its contents are undefined.

    Raises
    ------
    ValueError
        When *out* is read-only or not of the region's shape: before anything is read.

    Returns
    -------
    numpy.ndarray
        The region, equal to ``array[selection]`` (and raising what it raises for a damaged
        chunk: such chunks are read through it).

    Notes
    -----
    The region is allocated whole: callers bound its size (``ChunkReader`` checks the
    decoded-size limit before reading). Safe to call from several threads at once.
    """
    sel = tuple(selection)
    shape = tuple(int(s) for s in array.shape)
    if out is not None:
        _check_out(out, shape, sel)
    if len(sel) != len(shape) or not all(isinstance(s, slice) for s in sel):
        return _into(out, _plain(array, sel))
    norm = []
    for s, n in zip(sel, shape, strict=True):
        start, stop, step = s.indices(n)
        if step != 1:
            return _into(out, _plain(array, sel))
        norm.append(slice(start, max(start, stop)))
    region = tuple(norm)
    plan = bulk_plan(array)
    out_shape = tuple(s.stop - s.start for s in region)
    if plan is None:
        return _into(out, _plain(array, region))
    if out is not None and out.dtype != plan.dtype:
        return _into(out, bulk_read(array, region))
    if out is None:
        out = np.empty(out_shape, dtype=plan.dtype)
    if 0 in out_shape:
        return out
    job = _Job(array, plan, region, out)
    objects = list(_objects(plan, region))
    work = job.shard if plan.shards is not None else job.chunk
    plain: list[_Region] = []

    block = plan.shards if plan.shards is not None else plan.chunks

    def run(batch: list[tuple[int, ...]]) -> list[_Region]:
        mine: list[_Region] = []
        for obj in batch:
            try:
                work(obj, mine)
            except Exception:  # e.g. an unreadable file: the plain path reads it, and raises
                lo = [c * b for c, b in zip(obj, block, strict=True)]
                part = _overlap(lo, block, shape, region)
                if part is not None:
                    mine.append(_absolute(part[1], region))
        return mine

    threads = max(1, os.cpu_count() or 1)
    # a few batches per thread: few tasks for many small chunks, balanced for few large ones
    size = max(1, len(objects) // (threads * 4))
    batches = iter([objects[i : i + size] for i in range(0, len(objects), size)])
    nbatches = -(-len(objects) // size)
    lock = threading.Lock()

    def drain() -> list[_Region]:
        mine: list[_Region] = []
        while True:
            with lock:
                batch = next(batches, None)
            if batch is None:
                return mine
            mine.extend(run(batch))

    # this thread and up to one pool thread per other processor take batches until none is left
    helpers: list[Future[list[_Region]]] = [
        _pool().submit(drain) for _ in range(min(threads - 1, nbatches - 1))
    ]
    plain.extend(drain())
    for f in helpers:
        plain.extend(f.result())
    plain.sort(key=lambda r: tuple(s.start for s in r))  # the first error is the same each time
    for part in plain:  # anything unusual: the plain path, its result and its errors
        dst = tuple(
            slice(p.start - s.start, p.stop - s.start) for p, s in zip(part, region, strict=True)
        )
        out[dst] = _plain(array, part)
    return out
