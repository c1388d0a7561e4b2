"""The lazy mosaic of an HCS plate, read well by well only where it is shown.

A plate of 384 wells is opened from the plate's metadata, the first well's and its fields' only:
every other well is assumed to share the first well's layout (field paths, level paths, array
metadata), so that showing the plate costs one read per well and level shown, all in flight at
once. That assumption is checked lazily, per well, when the well is first read:

- a well whose reads find no stored object at all, or fail to decode, has its own metadata read
  (well group, field, level array);
- when that metadata differs from the first well's, the well is read through its own array
  (cropped or padded to the tile, cast when the data type converts safely);
- when it cannot be read (missing, unusable), it is shown empty, with one warning per well.

A save reads the mosaic inside :func:`~napari_zarr_explorer.pyramid.strict_reads`: a well that
is not stored (the plate lists it, the store has nothing there) is saved empty, as a chunk not
stored is saved as the fill value, but a well that cannot be read (its metadata refused or
failing, its data of another shape or type) fails the save, naming the well and its URL, instead
of being written as zeros. A well shown empty before is tried again then.

:class:`PlateLevel` is one multiscale level of the mosaic of one field; napari slices it
directly (no dask graph). Levels beyond the fields' own coarsest level sample that level with a
stride, so that the coarsest mosaic level fits a GPU texture (:data:`MAX_TEXTURE`).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_zarr_explorer.errors import ExplorerError, ExplorerWarning, MetadataError, NotFoundError

__all__ = ["MAX_TEXTURE", "PlateLevel", "PlateSource", "plate_levels"]

#: Largest texture edge the coarsest mosaic level may have (OpenGL guarantees at least this
#: much on the hardware napari supports; napari-ome-zarr issue 84 is a plate beyond it).
MAX_TEXTURE = 2048
#: A well level at most this large is read whole (all channels) and kept for later slices.
WHOLE_WELL_BYTES = 8 * 2**20
#: Memory for well levels kept after reading.
CACHE_BYTES = 256 * 2**20


class _Absent(ExplorerError):
    """The store has no data for a well's field: the well is empty, nothing failed."""


def _is_absent(exc: BaseException) -> bool:
    return isinstance(exc, _Absent | NotFoundError)


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ExplorerError) else f"{type(exc).__name__}: {exc}"


@dataclass
class _Well:
    path: str  # store key of the well group
    state: str = "assumed"  # assumed | own | empty
    absent: bool = False  # empty because the store has nothing there (not because of a failure)
    checked: set[tuple[int, int]] = field(default_factory=set)  # (field, level) found alike
    arrays: dict[tuple[int, int], Any] = field(default_factory=dict)  # (field, level) -> reader
    lock: threading.Lock = field(default_factory=threading.Lock)


class PlateSource:
    """Where the wells of a plate are and how to read them (shared by all mosaic levels).

    Parameters
    ----------
    ctx
        The opening context (``napari_zarr_explorer.layers._Ctx``: location, store, warnings).
    plate_path
        Store key of the plate group.
    grid
        ``grid[r][c]`` is the well's relative path, or None where the plate has no well.
    template_well
        Relative path of the well whose layout the others are assumed to share.
    level_paths
        Relative paths of the field levels (``"0"``, ``"1"``...).
    templates
        The template well's first field's level arrays (zarr arrays, checked), level by level.
    """

    def __init__(
        self,
        ctx: Any,
        plate_path: str,
        grid: list[list[str | None]],
        template_well: str,
        level_paths: Sequence[str],
        templates: Sequence[Any],
    ) -> None:
        from napari_zarr_explorer.store import safe_join

        self.ctx = ctx
        self.plate_path = plate_path
        self.grid = grid
        self.template_well = template_well
        self.level_paths = list(level_paths)
        self.templates = list(templates)
        self.wells: dict[str, _Well] = {}
        for row in grid:
            for rel in row:
                if rel is not None:
                    self.wells[rel] = _Well(safe_join(plate_path, rel))
        self._cache: OrderedDict[tuple[str, str, int], np.ndarray] = OrderedDict()
        self._cache_nbytes = 0
        self._lock = threading.Lock()

    # -- arrays ---------------------------------------------------------------------------
    def _assumed(self, well: _Well, fld: str, level: int) -> Any:
        """Build the template's array at this well's path (no request)."""
        from napari_zarr_explorer.store import safe_join
        from napari_zarr_explorer.store.batch import array_like

        key = safe_join(safe_join(well.path, fld), self.level_paths[level])
        return array_like(self.templates[level], self.ctx.store, key)

    def _own(self, well: _Well, fld_index: int, level: int) -> Any:
        """Open the well's own array for this field and level (None when it has none)."""
        from napari_zarr_explorer.ome.model import parse_ome
        from napari_zarr_explorer.pyramid import ChunkReader
        from napari_zarr_explorer.store import open_array, read_node, safe_join

        loc, store = self.ctx.loc, self.ctx.store
        wnode = read_node(store, well.path, where=loc.url)
        if wnode is None:
            raise _Absent("the well does not exist")
        wome = parse_ome(wnode.attributes, zarr_format=wnode.zarr_format)
        if wome is None or wome.well is None:
            raise MetadataError("its metadata describes no well")
        if len(wome.well.images) <= fld_index:
            raise _Absent(f"the well lists no field {fld_index}")
        fkey = safe_join(well.path, wome.well.images[fld_index].path)
        key = safe_join(fkey, self.level_paths[level])
        fnode = read_node(store, fkey, where=loc.url)
        fome = parse_ome(fnode.attributes, zarr_format=fnode.zarr_format) if fnode else None
        if fome is not None and fome.multiscales:
            datasets = fome.multiscales[0].datasets
            if level < len(datasets):
                key = safe_join(fkey, datasets[level].path)
        arr = open_array(loc, key, store=store)
        reader = ChunkReader(arr, where=self.ctx.where(key))
        reader.key = key  # type: ignore[attr-defined]
        return reader

    def _differs(self, reader: Any, level: int) -> bool:
        tmpl = self.templates[level]
        mine = reader.array.metadata.to_dict()
        theirs = tmpl.metadata.to_dict()
        for doc in (mine, theirs):
            doc.pop("attributes", None)
        return bool(mine != theirs)

    def warn_empty(self, well: _Well, reason: str) -> None:
        """Say (once per well: the caller changes its state) that *well* is shown empty."""
        warnings.warn(
            f"{self.ctx.where(self.plate_path)}: well {well.path!r} is shown empty: {reason}",
            ExplorerWarning,
            stacklevel=4,
        )

    def unreadable(self, well: _Well, reason: str, cause: BaseException | None = None) -> Exception:
        """Return the error a save meets for a well that cannot be read (never saved as zeros)."""
        hint = cause.hint if isinstance(cause, ExplorerError) else None
        return ExplorerError(
            f"{self.ctx.where(well.path)}: well {well.path!r} could not be read: {reason}",
            hint=hint,
        )

    def _empty(self, well: _Well, exc: BaseException) -> None:
        """Show *well* empty because of *exc*, with one warning.

        A save (strict reads) raises instead, naming the well, unless the store has nothing
        there (a well not stored is empty, as a chunk not stored is the fill value).
        """
        from napari_zarr_explorer.pyramid import _strict

        if _strict() and not _is_absent(exc):
            raise self.unreadable(well, _reason(exc), exc) from exc
        well.state = "empty"
        well.absent = _is_absent(exc)
        self.warn_empty(well, _reason(exc))

    # -- reading --------------------------------------------------------------------------
    def cached(self, well: str, fld: str, level: int) -> np.ndarray | None:
        """Return a whole well level read before (None when not kept)."""
        with self._lock:
            hit = self._cache.get((well, fld, level))
            if hit is not None:
                self._cache.move_to_end((well, fld, level))
            return hit

    def keep(self, well: str, fld: str, level: int, data: np.ndarray) -> None:
        """Keep a whole well level (least recently used ones dropped beyond CACHE_BYTES)."""
        with self._lock:
            k = (well, fld, level)
            if k in self._cache:
                return
            self._cache[k] = data
            self._cache_nbytes += data.nbytes
            while self._cache_nbytes > CACHE_BYTES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_nbytes -= old.nbytes

    def read_wells(
        self,
        fld: str,
        fld_index: int,
        level: int,
        requests: list[tuple[str, tuple[slice, ...]]],
        missed: set[str] | None = None,
    ) -> list[np.ndarray]:
        """Read ``(well, region of the field level)`` pairs, all at once; fill value if empty.

        The wells (store keys) where a chunk the store did not deliver is shown as the fill value
        are added to *missed* when given (such a read is not to be kept: a later one asks
        again).

        Inside :func:`~napari_zarr_explorer.pyramid.strict_reads` (a save), a well shown empty
        because it could not be read is read again through its own metadata, and raises if it
        still cannot be.
        """
        from napari_zarr_explorer.pyramid import _strict

        tmpl = self.templates[level]
        out: list[np.ndarray | None] = [None] * len(requests)
        todo: list[int] = []
        for i, (rel, sel) in enumerate(requests):
            well = self.wells[rel]
            if well.state == "empty" and _strict() and not well.absent:
                out[i] = self._read_own(well, fld_index, level, sel, missed)
            elif well.state == "empty":
                out[i] = np.zeros(_shape(sel), dtype=tmpl.dtype)
            elif well.state == "own":
                out[i] = self._read_own(well, fld_index, level, sel, missed)
            else:
                todo.append(i)

        batch = self._batch(fld, level, [requests[i] for i in todo]) if todo else []
        results = [(todo[j], data, found) for j, (data, found) in enumerate(batch)]
        for i, data, found in results:
            rel, sel = requests[i]
            well = self.wells[rel]
            if data is not None and (found or (fld_index, level) in well.checked):
                out[i] = data
                continue
            # nothing stored where the first well's layout says, or it did not decode
            out[i] = self._check_and_read(well, fld, fld_index, level, sel, data, missed)
        return [o if o is not None else np.zeros(0) for o in out]

    def _batch(
        self, fld: str, level: int, requests: list[tuple[str, tuple[slice, ...]]]
    ) -> list[tuple[np.ndarray | None, bool]]:
        """Read regions of wells assumed to have the template's layout, in one batch.

        The stored chunks under every region are fetched at once (concurrently on remote
        stores) and decoded in one call of the template's guarded codec pipeline, then placed.
        Returns ``(data, found)`` per request: ``data`` None when a chunk failed to decode,
        ``found`` False when no chunk of the region is stored.
        """
        from itertools import product

        from napari_zarr_explorer.store import safe_join
        from napari_zarr_explorer.store.batch import read_chunks_like

        tmpl = self.templates[level]
        md = tmpl.metadata
        chunks = tuple(int(c) for c in tmpl.chunks)
        shards = getattr(tmpl, "shards", None)
        outer = tuple(int(c) for c in shards) if shards is not None else chunks
        shape = tuple(int(n) for n in tmpl.shape)
        jobs: list[tuple[int, tuple[int, ...], str]] = []
        for i, (rel, sel) in enumerate(requests):
            base = safe_join(safe_join(self.wells[rel].path, fld), self.level_paths[level])
            ranges = [range(s.start // n, -(-s.stop // n)) for s, n in zip(sel, outer, strict=True)]
            for coords in product(*ranges):
                jobs.append((i, coords, f"{base}/{md.encode_chunk_key(coords)}"))
        stored, decoded = read_chunks_like(
            tmpl, self.ctx.store, [k for _, _, k in jobs], [c for _, c, _ in jobs]
        )
        outs: list[np.ndarray] = [
            np.full(_shape(sel), _fill(md), dtype=self.dtype_of(level)) for _, sel in requests
        ]
        found = [False] * len(requests)
        failed = [False] * len(requests)
        for (i, coords, _), is_stored, block in zip(jobs, stored, decoded, strict=True):
            if not is_stored:
                continue
            found[i] = True
            if block is None:
                failed[i] = True
                continue
            sel = requests[i][1]
            src, dst = [], []
            for c, s, n, size in zip(coords, sel, outer, shape, strict=True):
                lo, hi = max(c * n, s.start), min((c + 1) * n, s.stop, size)
                src.append(slice(lo - c * n, hi - c * n))
                dst.append(slice(lo - s.start, hi - s.start))
            outs[i][tuple(dst)] = block[tuple(src)]
        return [(None if failed[i] else outs[i], found[i]) for i in range(len(requests))]

    def dtype_of(self, level: int) -> np.dtype[Any]:
        """Return the template's data type at *level*, in native byte order."""
        stored: np.dtype[Any] = np.dtype(self.templates[level].dtype)
        return stored.newbyteorder("=") if stored.byteorder not in ("=", "|") else stored

    def _check_and_read(
        self,
        well: _Well,
        fld: str,
        fld_index: int,
        level: int,
        sel: tuple[slice, ...],
        data: np.ndarray | None,
        missed: set[str] | None = None,
    ) -> np.ndarray:
        from napari_zarr_explorer.pyramid import _strict
        from napari_zarr_explorer.store import safe_join

        tmpl = self.templates[level]
        with well.lock:
            if well.state == "assumed":
                try:
                    reader = self._own(well, fld_index, level)
                except Exception as exc:
                    self._empty(well, exc)
                    return np.zeros(_shape(sel), dtype=tmpl.dtype)
                assumed = safe_join(safe_join(well.path, fld), self.level_paths[level])
                if data is None or reader.key != assumed or self._differs(reader, level):
                    well.state = "own"
                    well.arrays[(fld_index, level)] = reader
                else:
                    well.checked.add((fld_index, level))  # same layout: really empty there
                    return data
        # a well another reader (napari, drawing) found unreadable meanwhile: shown empty, but
        # a strict read (a save) asks again, as read_wells does
        if well.state == "empty" and not (_strict() and not well.absent):
            return np.zeros(_shape(sel), dtype=tmpl.dtype)
        return self._read_own(well, fld_index, level, sel, missed)

    def _read_own(
        self,
        well: _Well,
        fld_index: int,
        level: int,
        sel: tuple[slice, ...],
        missed: set[str] | None = None,
    ) -> np.ndarray:
        tmpl = self.templates[level]
        out = np.zeros(_shape(sel), dtype=tmpl.dtype)
        reader = well.arrays.get((fld_index, level))
        if reader is None:
            with well.lock:
                reader = well.arrays.get((fld_index, level))
                if reader is None:
                    try:
                        reader = self._own(well, fld_index, level)
                    except Exception as exc:
                        self._empty(well, exc)
                        return out
                    well.arrays[(fld_index, level)] = reader
        if reader.ndim != len(sel) or not np.can_cast(reader.dtype, tmpl.dtype, "same_kind"):
            from napari_zarr_explorer.pyramid import _strict

            if _strict():  # saved, such a well is never zeros
                raise self.unreadable(
                    well,
                    f"its data ({reader.shape}, {reader.dtype}) does not fit the first well's "
                    f"({tmpl.shape}, {tmpl.dtype}), which the plate's mosaic has",
                )
            with well.lock:
                if well.state != "empty":
                    well.state = "empty"
                    self.warn_empty(
                        well,
                        f"its data ({reader.shape}, {reader.dtype}) cannot be shown with the "
                        f"first well's ({tmpl.shape}, {tmpl.dtype})",
                    )
            return out
        inner = tuple(
            slice(min(s.start, n), min(s.stop, n)) for s, n in zip(sel, reader.shape, strict=True)
        )
        if all(s.stop > s.start for s in inner):
            lost: set[tuple[int, ...]] = set()
            part = reader.read(inner, missed=lost)
            out[tuple(slice(0, s.stop - s.start) for s in inner)] = part
            if lost and missed is not None:
                missed.add(well.path)
        return out


def _fill(md: Any) -> Any:
    fill = md.fill_value
    if isinstance(fill, np.generic):
        fill = fill.item()
    return 0 if fill is None else fill


def _shape(sel: Sequence[slice]) -> tuple[int, ...]:
    return tuple(max(0, s.stop - s.start) for s in sel)


class PlateLevel:
    """One multiscale level of the mosaic of one field of a plate; napari slices it directly.

    The mosaic has the field's leading dimensions (channels, z...) and the wells side by side
    in y and x, ``stride`` sampling the field level ``level`` (1 for the field's own levels).
    """

    def __init__(self, source: PlateSource, fld: str, fld_index: int, level: int, stride: int):
        self.source = source
        self.fld = fld
        self.fld_index = fld_index
        self.level = level
        self.stride = stride
        tmpl = source.templates[level]
        self.field_shape = tuple(int(s) for s in tmpl.shape)
        stored = np.dtype(tmpl.dtype)
        self.dtype: np.dtype[Any] = (
            stored.newbyteorder("=") if stored.byteorder not in ("=", "|") else stored
        )
        self.tile = tuple(-(-s // stride) for s in self.field_shape[-2:])
        nrows, ncols = len(source.grid), len(source.grid[0]) if source.grid else 0
        self.shape: tuple[int, ...] = (
            *self.field_shape[:-2],
            nrows * self.tile[0],
            ncols * self.tile[1],
        )
        self.ndim = len(self.shape)
        self.size = math.prod(self.shape)

    def __repr__(self) -> str:
        return (
            f"PlateLevel({self.source.ctx.where(self.source.plate_path)!r}, field={self.fld!r}, "
            f"level={self.level}, stride={self.stride}, shape={self.shape})"
        )

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.read(tuple(slice(None) for _ in self.shape))
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype: Any) -> np.ndarray:
        """Read the whole level and convert it (napari does so for boolean data)."""
        return np.asarray(self).astype(dtype)

    def __getitem__(self, key: Any) -> Any:
        fixed = _one_leading_index(key, self.ndim)
        if fixed is not None:  # napari splitting channels: stays lazy
            return _Fixed(self, *fixed)
        return self.read(key)

    def read(self, key: Any) -> np.ndarray:
        """Read ``self[key]`` now."""
        from napari_zarr_explorer.pyramid import _plan

        region, post, trivial = _plan(key, self.shape)
        out = self._read(region)
        return out if trivial else out[post]

    def _read(self, region: tuple[slice, ...]) -> np.ndarray:
        lead, (ys, xs) = region[:-2], region[-2:]
        out = np.zeros(_shape(region), dtype=self.dtype)
        if 0 in out.shape:
            return out
        th, tw = self.tile
        s = self.stride
        fh, fw = self.field_shape[-2:]
        whole = (
            math.prod(self.field_shape) * self.dtype.itemsize <= WHOLE_WELL_BYTES
        )  # small well levels are read whole, all channels, and kept
        wanted: list[tuple[str, tuple[slice, ...], tuple[slice, ...], tuple[slice, ...]]] = []
        for r in range(ys.start // th, -(-ys.stop // th)):
            for c in range(xs.start // tw, -(-xs.stop // tw)):
                rel = self.source.grid[r][c]
                if rel is None:
                    continue
                y0, y1 = max(ys.start, r * th), min(ys.stop, (r + 1) * th)
                x0, x1 = max(xs.start, c * tw), min(xs.stop, (c + 1) * tw)
                dst = (
                    *(slice(None) for _ in lead),
                    slice(y0 - ys.start, y1 - ys.start),
                    slice(x0 - xs.start, x1 - xs.start),
                )
                ty, tx = slice(y0 - r * th, y1 - r * th), slice(x0 - c * tw, x1 - c * tw)
                if whole:
                    src = tuple(slice(0, n) for n in self.field_shape)
                    pick = (
                        *lead,
                        slice(ty.start * s, ty.stop * s, s),
                        slice(tx.start * s, tx.stop * s, s),
                    )
                else:
                    src = (
                        *lead,
                        slice(ty.start * s, min(fh, (ty.stop - 1) * s + 1)),
                        slice(tx.start * s, min(fw, (tx.stop - 1) * s + 1)),
                    )
                    pick = (
                        *(slice(None) for _ in lead),
                        slice(None, None, s),
                        slice(None, None, s),
                    )
                wanted.append((rel, src, pick, dst))
        from napari_zarr_explorer.pyramid import _strict

        strict = _strict()
        need = []
        got: dict[int, np.ndarray] = {}
        for i, (rel, _src, _, _) in enumerate(wanted):
            # a well read through its own arrays may have been kept with the fill value where a
            # chunk could not be read (as napari shows it): a save reads it again, strictly
            own = self.source.wells[rel].state == "own"
            hit = (
                self.source.cached(rel, self.fld, self.level)
                if whole and not (strict and own)
                else None
            )
            if hit is not None:
                got[i] = hit
            else:
                need.append(i)
        if need:
            # a well where a chunk was not delivered is not kept: its fill values would hide
            # the real pixels from every later read, once the server has recovered
            missed: set[str] = set()
            datas = self.source.read_wells(
                self.fld,
                self.fld_index,
                self.level,
                [(wanted[i][0], wanted[i][1]) for i in need],
                missed,
            )
            for i, data in zip(need, datas, strict=True):
                got[i] = data
                well = self.source.wells[wanted[i][0]]
                if whole and well.state != "empty" and well.path not in missed:
                    self.source.keep(wanted[i][0], self.fld, self.level, data)
        for i, (_, _, pick, dst) in enumerate(wanted):
            out[dst] = got[i][pick]
        return out


def _one_leading_index(key: Any, ndim: int) -> tuple[int, int] | None:
    """``(axis, index)`` when *key* picks one index of a leading axis and keeps all the rest."""
    key = key if isinstance(key, tuple) else (key,)
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - len(key) + 1) + key[i + 1 :]
    ints = [(i, k) for i, k in enumerate(key) if isinstance(k, (int, np.integer)) and i < ndim - 2]
    whole = slice(None)
    rest = all(
        isinstance(k, slice) and k == whole for i, k in enumerate(key) if i not in dict(ints)
    )
    if len(ints) == 1 and rest and len(key) <= ndim:
        return ints[0][0], int(ints[0][1])
    return None


class _Fixed:
    """A plate level with one leading axis fixed (one channel): read only when sliced."""

    def __init__(self, base: Any, axis: int, index: int) -> None:
        n = base.shape[axis]
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of bounds for axis {axis} with size {n}")
        self.base = base
        self.axis = axis
        self.index = index % n
        self.shape: tuple[int, ...] = base.shape[:axis] + base.shape[axis + 1 :]
        self.dtype = base.dtype
        self.ndim = len(self.shape)
        self.size = math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> Any:
        key = key if isinstance(key, tuple) else (key,)
        if Ellipsis in key:
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        return self.base.read((*key[: self.axis], self.index, *key[self.axis :]))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self[tuple(slice(None) for _ in self.shape)])
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype: Any) -> np.ndarray:
        """Read the whole view and convert it."""
        return np.asarray(self).astype(dtype)


def plate_levels(source: PlateSource, fld: str, fld_index: int) -> list[PlateLevel]:
    """Return the mosaic levels of one field: its own levels, then strided ones until it fits.

    The coarsest level returned has no edge longer than :data:`MAX_TEXTURE`.
    """
    levels = [PlateLevel(source, fld, fld_index, i, 1) for i in range(len(source.templates))]
    stride = 1
    while max(levels[-1].shape[-2:]) > MAX_TEXTURE and min(levels[-1].tile) > 1:
        stride *= 2
        levels.append(PlateLevel(source, fld, fld_index, len(source.templates) - 1, stride))
    return levels
