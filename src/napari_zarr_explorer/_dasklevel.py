"""The dask arrays :func:`~napari_zarr_explorer.open_pyramid` returns.

A :class:`LevelArray` is an ordinary dask array (the same graph of storage-aligned blocks, each
read by the :class:`~napari_zarr_explorer.pyramid.ChunkReader` of the level), except when it is
computed or persisted *by itself*, as a whole (``level.compute()``, ``numpy.asarray(level)``,
``dask.compute(level)``, and the same for a region ``level[a:b, c:d]`` taken with step-1
slices). dask would then read every block into an array of its own and, in the task it adds to
finalize a compute, allocate a second array of the full size and copy every block into it (it
copies even a single block). Here that finalizing task allocates the result once and reads the
blocks straight into it (one bounded read per slab of blocks) and nothing else runs; a persist
reads the same way, its blocks views of that array. The finalizing task is named afresh by dask
for every compute, so no cache of task results can hand the same array to two callers.

Everything else is dask's: an array derived from a level (``level + 1``, ``level[::2]``,
``level.rechunk(...)``, ``map_blocks``, ...) is a plain dask array whose graph reads block by
block, and a compute that mixes a level with other collections optimizes as dask does. Where the
graph is optimized elsewhere (a distributed scheduler, which receives the level pickled as a
plain dask array), the blocks are read one task each and joined by dask.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np
from dask.array.core import Array
from dask.array.core import finalize as _dask_finalize

if TYPE_CHECKING:
    from napari_zarr_explorer.pyramid import ChunkReader

__all__ = ["LevelArray", "as_level_array"]

_Region = tuple[slice, ...]


def _flatten(nested: Any) -> list[Any]:
    """Return the leaves of nested lists (dask's keys and results), in order."""
    if not isinstance(nested, list):
        return [nested]
    return [leaf for item in nested for leaf in _flatten(item)]


class LevelArray(Array):
    """A dask array over a level (or a step-1 region of one) of a Zarr array.

    Computing or persisting it by itself fills one preallocated array (see the module
    documentation); everything else behaves as :class:`dask.array.Array`, which it is.
    """

    _nze_reader: ChunkReader
    _nze_origin: _Region

    def __dask_optimize__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        graph = self._whole_graph(dsk, keys)
        if graph is None:
            return Array.__dask_optimize__(dsk, keys, **kwargs)
        return graph

    def __getitem__(self, index: Any) -> Any:
        sub = super().__getitem__(index)  # type: ignore[no-untyped-call]
        if sub is self or type(sub) is not Array:
            return sub
        region = _step1_region(index, tuple(int(s) for s in self.shape))
        if region is None or tuple(int(s) for s in sub.shape) != tuple(
            r.stop - r.start for r in region
        ):
            return sub
        return _wrap(sub, self._nze_reader, _absolute(self._nze_origin, region))

    def to_delayed(self, optimize_graph: bool = True) -> Any:
        """Return the blocks as delayed objects, each read by itself (see dask's method)."""
        plain = _plain(self)
        return plain.to_delayed(optimize_graph=optimize_graph)

    def _whole_graph(self, dsk: Any, keys: Any) -> dict[Any, Any] | None:
        """Return the graph filling one array, when *keys* ask for exactly this array's blocks.

        That is: the blocks themselves (``persist``: one task reads the array, each block is a
        view of it), or the one task dask's ``compute`` adds to join them into a fresh array
        (that task reads the array instead, and nothing else runs). None otherwise.
        """
        try:
            from dask._task_spec import Task, TaskRef
            from dask.highlevelgraph import HighLevelGraph
        except ImportError:  # pragma: no cover - another dask: its own graph
            return None
        mine = self.__dask_keys__()
        chunks = tuple(tuple(int(c) for c in cs) for cs in self.chunks)
        args = (self._nze_reader, self._nze_origin, chunks)
        if keys == mine or keys == [mine]:
            # a key of its own each time: a cache of task results (napari's) never serves it
            whole = (f"nze-whole-{self.name}-{uuid.uuid4().hex}",)
            graph: dict[Any, Any] = {whole: Task(whole, _read_whole, *args)}
            for index, local in _blocks(chunks):
                key = (self.name, *index)
                graph[key] = Task(key, _part, TaskRef(whole), local)
            return graph
        if not isinstance(dsk, HighLevelGraph):
            return None
        own = set(self.dask.layers)
        if not own <= set(dsk.layers):
            return None
        wanted = _flatten(keys)
        blocks = set(_flatten(mine))
        found = []
        for name, layer in dsk.layers.items():
            if name in own:
                continue
            for fkey, task in dict(layer).items():
                if (
                    fkey not in wanted
                    or not isinstance(task, Task)
                    or task.func is not _dask_finalize
                    or set(task.dependencies) != blocks
                ):
                    return None
                found.append(fkey)
        if len(found) != 1 or wanted != found:  # one result, of exactly these blocks
            return None
        # dask names that task afresh for every compute: its result is the caller's alone
        return {found[0]: Task(found[0], _read_whole, *args)}


def _blocks(
    chunks: Sequence[Sequence[int]],
) -> list[tuple[tuple[int, ...], _Region]]:
    """(block index, block region) of every block of a chunk structure, in C order."""
    starts = [np.concatenate(([0], np.cumsum(cs, dtype=np.int64))).tolist() for cs in chunks]
    return [
        (
            tuple(index),
            tuple(slice(s[i], s[i + 1]) for s, i in zip(starts, index, strict=True)),
        )
        for index in product(*(range(len(cs)) for cs in chunks))
    ]


def _reads(
    reader: ChunkReader, origin: _Region, chunks: tuple[tuple[int, ...], ...]
) -> list[_Region]:
    """Return the regions (inside *origin*) read by one :meth:`ChunkReader.read` each.

    Whole slabs of blocks along the first dimension, as many at a time as the decoded-size limit
    allows (fewer, larger bulk reads keep every processor busy to the end); a slab that alone
    exceeds the limit is read block by block, as the blocks would be.
    """
    from napari_zarr_explorer.pyramid import max_chunk_bytes

    if not chunks:
        return [()]
    limit = max_chunk_bytes()
    rest = tuple(slice(0, int(sum(cs))) for cs in chunks[1:])
    out: list[_Region] = []
    start = 0
    group: tuple[int, int] | None = None
    for n in chunks[0]:
        slab = (start, start + n)
        start += n
        if group is not None:
            merged = (slice(group[0], slab[1]), *rest)
            if _decoded(reader, origin, merged) <= limit:
                group = (group[0], slab[1])
                continue
        if group is not None:
            out.append((slice(*group), *rest))
        group = slab
        if _decoded(reader, origin, (slice(*slab), *rest)) > limit:
            sub = ((n,), *chunks[1:])
            out.extend((slice(slab[0], slab[1]), *local[1:]) for _, local in _blocks(sub))
            group = None
    if group is not None:
        out.append((slice(*group), *rest))
    return out


def _absolute(origin: _Region, local: _Region) -> _Region:
    return tuple(
        slice(o.start + s.start, o.start + s.stop) for o, s in zip(origin, local, strict=True)
    )


def _decoded(reader: ChunkReader, origin: _Region, local: _Region) -> int:
    """Bytes :meth:`ChunkReader.check_limit` counts for reading *local* (inside *origin*)."""
    return reader.chunk_count(_absolute(origin, local)) * reader.chunk_nbytes


def _read_whole(reader: ChunkReader, origin: _Region, chunks: tuple[tuple[int, ...], ...]) -> Any:
    """Allocate the region *origin* of *reader* once and read it into it.

    Each read is one :meth:`ChunkReader.read` (the decoded-size limit, the bulk read and its
    errors, undecodable chunks shown as the fill value), as when blocks are computed one by one.
    """
    shape = tuple(int(sum(cs)) for cs in chunks)
    out = np.empty(shape, dtype=reader.dtype)
    if 0 not in shape:
        for local in _reads(reader, origin, chunks):
            reader.read(_absolute(origin, local), out=_part(out, local))
    return out


def _part(whole: np.ndarray, local: _Region) -> np.ndarray:
    """Return the view of *whole* at *local* (a 0-d view of a 0-d array, not its scalar)."""
    return whole[local] if local else whole[...]


def _step1_region(index: Any, shape: tuple[int, ...]) -> _Region | None:
    """Return the region an index of step-1 slices selects (same rank), else None."""
    key = index if isinstance(index, tuple) else (index,)
    if sum(1 for k in key if k is Ellipsis) == 1:
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1 :]
    if len(key) > len(shape) or not all(isinstance(k, slice) for k in key):
        return None
    key = key + (slice(None),) * (len(shape) - len(key))
    region = []
    for k, n in zip(key, shape, strict=True):
        if k.step not in (None, 1):
            return None
        for v in (k.start, k.stop):
            if v is not None and not isinstance(v, int | np.integer):
                return None
        start, stop, _ = k.indices(n)
        region.append(slice(start, max(start, stop)))
    return tuple(region)


def _plain(array: Any) -> Any:
    """Return *array* as a plain dask array (same graph, name and blocks)."""
    return Array(array.dask, array.name, array.chunks, meta=array._meta)  # type: ignore[no-untyped-call]


def _wrap(array: Any, reader: ChunkReader, origin: _Region) -> LevelArray:
    level = LevelArray(array.dask, array.name, array.chunks, meta=array._meta)  # type: ignore[no-untyped-call]
    level._nze_reader = reader
    level._nze_origin = origin
    return level


def as_level_array(array: Any, reader: ChunkReader) -> Any:
    """Return *array* (a dask array over all of *reader*) as a :class:`LevelArray`.

    Any other kind of dask array (e.g. dask's array expressions) is returned unchanged.
    """
    if type(array) is not Array:
        return array
    return _wrap(array, reader, tuple(slice(0, int(s)) for s in array.shape))
