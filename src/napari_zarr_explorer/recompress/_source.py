"""Sources of data for the engine other than a Zarr store.

In-memory and lazy arrays, and pyramid levels made from the level written before them.

The engine reads every task's region through ``source.read(region)``, which returns the data
(in native byte order) and the stored bytes of the source objects it owns (0 here; None from a
reader that cannot tell them). A source with a larger ``stage``
is read only after every array of a smaller stage is written and verified, so a pyramid level
can be computed from the level above it as stored in the output, one region at a time: the
memory a task uses is bounded by its region, never by the whole array.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["ArraySource", "DownsampledSource", "InMemorySource", "downsample"]


@runtime_checkable
class ArraySource(Protocol):
    """Data of one output array, read one region at a time."""

    stage: int

    def read(self, region: Sequence[slice]) -> tuple[npt.NDArray[Any], int | None]:
        """Return the data of *region* and the stored bytes it owns (None: not counted)."""
        ...  # pragma: no cover


def _native(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)


@dataclass(frozen=True, eq=False)
class InMemorySource:
    """An array in memory or a lazy array (dask, zarr, anything sliceable with ``shape``).

    Dask arrays are computed region by region with the synchronous scheduler (the engine
    already runs tasks in parallel), so only the chunks under a region are ever loaded. Data
    opened by this package's reader is read strictly: a chunk that cannot be read is an error,
    never the fill value napari shows for it (unless *strict* is False: an estimate samples
    what napari shows).
    """

    data: Any
    stage: int = 0
    strict: bool = True

    def read(self, region: Sequence[slice]) -> tuple[npt.NDArray[Any], int]:
        """Return the data of *region*."""
        from napari_zarr_explorer.pyramid import strict_reads

        with strict_reads() if self.strict else contextlib.nullcontext():
            part = self.data[tuple(region)]
            if hasattr(part, "compute"):
                part = part.compute(scheduler="synchronous")
            return _native(np.asarray(part)), 0


def downsample(
    block: npt.NDArray[Any], factors: Sequence[int], method: Literal["mean", "nearest"]
) -> npt.NDArray[Any]:
    """Reduce *block* by integer *factors* per axis.

    ``"mean"`` averages each ``factors`` box (boxes cut by the array's end average what they
    hold), rounding back to integers for integer data; ``"nearest"`` keeps the first element
    of each box (for labels, whose values must not be mixed).
    """
    if method == "nearest":
        return np.ascontiguousarray(block[tuple(slice(None, None, f) for f in factors)])
    out_shape = tuple(math.ceil(n / f) for n, f in zip(block.shape, factors, strict=True))
    # Sum the boxes one offset at a time into an accumulator of the output's shape: no
    # temporary as large as the input in the accumulator's type.
    small_int = block.dtype.kind in "iub" and block.dtype.itemsize <= 2
    acc = np.float32 if small_int else (np.complex128 if block.dtype.kind == "c" else np.float64)
    sums = np.zeros(out_shape, dtype=acc)
    for offset in itertools.product(*(range(f) for f in factors)):
        part = block[tuple(slice(o, None, f) for o, f in zip(offset, factors, strict=True))]
        if part.size:
            target = sums[tuple(slice(0, n) for n in part.shape)]
            np.add(target, part, out=target, casting="unsafe")
    # divide in place, one axis at a time (boxes cut by the array's end hold fewer values)
    for ax, (n, f) in enumerate(zip(block.shape, factors, strict=True)):
        if f == 1:
            continue
        c = np.full(out_shape[ax], float(f), dtype=sums.real.dtype)
        if n % f:
            c[-1] = n % f
        view = [1] * len(out_shape)
        view[ax] = out_shape[ax]
        sums /= c.reshape(view)
    mean = sums
    if block.dtype.kind in "iu":
        info = np.iinfo(block.dtype)
        np.rint(mean, out=mean)
        np.clip(mean, info.min, info.max, out=mean)
        return mean.astype(block.dtype)
    if block.dtype.kind == "b":
        out: npt.NDArray[Any] = mean >= 0.5
        return out
    result: npt.NDArray[Any] = mean.astype(block.dtype)
    return result


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=32)
def _output_array(url: str, options_json: str, path: str, run_id: str) -> Any:
    from napari_zarr_explorer.recompress import _io
    from napari_zarr_explorer.store import open_array, parse_location

    store = _io.writer(url, options_json, run_id).store
    # Read back through the store layer like any other data: checked metadata, guarded decoding.
    return open_array(parse_location(url, json.loads(options_json)), path, store=store)


@dataclass(frozen=True)
class DownsampledSource:
    """A pyramid level computed from the level above it, as already written in the output.

    Attributes
    ----------
    dst_url, dst_options
        The output store (``dst_options`` as sorted JSON).
    path
        Store path of the level above.
    factors
        Downsampling factor per axis (1 where the axis is kept).
    method
        ``"mean"`` for images, ``"nearest"`` for labels.
    shape
        Shape of the level above.
    stage
        One more than the stage of the level above.
    run_id
        The engine run (keys the cache of opened arrays).
    """

    dst_url: str
    dst_options: str
    path: str
    factors: tuple[int, ...]
    method: Literal["mean", "nearest"]
    shape: tuple[int, ...]
    stage: int
    run_id: str = ""

    def read(self, region: Sequence[slice]) -> tuple[npt.NDArray[Any], int]:
        """Read the matching region of the level above and reduce it."""
        with _LOCK:
            arr = _output_array(self.dst_url, self.dst_options, self.path, self.run_id)
        region = tuple(region)
        # One index of the leading kept axis at a time (planes of a stack): the memory used
        # is a few planes of the level above, whatever the size of the task.
        kept = [
            i
            for i, (f, s) in enumerate(zip(self.factors, region, strict=True))
            if f == 1 and s.stop - s.start > 1
        ]
        if not kept:
            return self._reduce(arr, region), 0
        ax = kept[-1]
        out_shape = tuple(
            math.ceil((min(s.stop * f, n) - s.start * f) / f)
            for s, f, n in zip(region, self.factors, self.shape, strict=True)
        )
        out: npt.NDArray[Any] | None = None
        for j, i in enumerate(range(region[ax].start, region[ax].stop)):
            sub = list(region)
            sub[ax] = slice(i, i + 1)
            part = self._reduce(arr, sub)
            if out is None:
                out = np.empty(out_shape, dtype=part.dtype)
            sel = [slice(None)] * len(out_shape)
            sel[ax] = slice(j, j + 1)
            out[tuple(sel)] = part
        assert out is not None
        return out, 0

    def _reduce(self, arr: Any, region: Sequence[slice]) -> npt.NDArray[Any]:
        upper = tuple(
            slice(s.start * f, min(s.stop * f, n))
            for s, f, n in zip(region, self.factors, self.shape, strict=True)
        )
        block = np.asarray(arr[upper])
        return _native(downsample(block, self.factors, self.method))


def options_json(options: dict[str, Any] | None) -> str:
    """Storage options as the engine keys them (sorted JSON)."""
    return json.dumps(options or {}, sort_keys=True)
