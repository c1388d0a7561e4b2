"""One unit of recompression work: a block of whole output objects, written by one task.

A task reads the source region covering its output objects (whole shards, or whole chunks when
the output is not sharded), encodes each object once, writes it once, and reads it back to
verify it. No other task writes these objects, so no object is ever written partially or by two
writers. Tasks are plain picklable dataclasses and :func:`run_task` is a module-level function,
so the same code runs on local threads and on ``dask.distributed`` worker processes.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from napari_zarr_explorer.codec_spec import CompressorSpec, parse_compressor
from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.recompress import _io
from napari_zarr_explorer.store.chunkio import ExactZstdDecoder

__all__ = ["ArrayTarget", "TaskResult", "TaskSpec", "run_task", "set_helper"]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: Offers work to an idle thread of the local scheduler: ``helper(fn)`` runs ``fn()`` on such
#: a thread and returns True, or returns False when no thread is idle (see ``_Threads.help``).
Helper = Callable[[Callable[[], None]], bool]


@dataclass(frozen=True, slots=True)
class ArrayTarget:
    """How one output array is laid out and encoded."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    fill_value: Any
    zarr_format: int
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    compressor: str
    separator: str = "/"

    @property
    def unit(self) -> tuple[int, ...]:
        """Shape of one output object: the shard shape, or the chunk shape when unsharded."""
        return self.shards if self.shards is not None else self.chunks


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A block of output objects ``units`` (per-dimension ``[start, stop)`` grid ranges)."""

    src_url: str
    src_options: str
    dst_url: str
    dst_options: str
    src_path: str
    target: ArrayTarget
    index: int
    units: tuple[tuple[int, int], ...]
    verify: bool = True
    mode: Literal["write", "check"] = "write"
    clean: bool = False
    run_id: str = ""
    #: In-memory or derived data to write instead of the array at ``src_path`` of ``src_url``.
    source: Any = None


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What a task did and found."""

    array: str
    index: int
    objects_written: int = 0
    objects_empty: int = 0
    chunks_written: int = 0
    bytes_written: int = 0
    #: Stored bytes of the source objects this task owns: chunks, or whole shards of a sharded
    #: source (None: the store could not tell their size).
    bytes_read: int | None = 0
    nbytes: int = 0
    objects_verified: int = 0
    #: Of :attr:`objects_empty`, those counted in :attr:`objects_verified` (verified without a
    #: read: nothing is stored for them): all of them when the task verified or was checked
    #: again on resume, none otherwise.
    objects_empty_verified: int = 0
    chunks_verified: int = 0
    mismatches: tuple[str, ...] = ()
    max_error: float | None = None
    checked_ok: bool = False
    rewritten: bool = False


def _pad(part: npt.NDArray[Any], shape: tuple[int, ...], fill: Any) -> npt.NDArray[Any]:
    if part.shape == shape:
        return part if part.flags.c_contiguous else part.copy(order="C")
    out = np.full(shape, fill, dtype=part.dtype)
    out[tuple(slice(0, n) for n in part.shape)] = part
    return out


def _equal(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    return _io.arrays_equal(a, b)


def _max_error(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    if a.dtype.kind not in "iufb":
        return 0.0 if _equal(a, b) else math.inf
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    if d.size == 0:
        return 0.0
    m = np.nanmax(d) if np.isnan(d).any() and not np.isnan(d).all() else d.max()
    return 0.0 if np.isnan(m) else float(m)


class _Unit:
    """One output object: the chunk pieces it is made of, with their data."""

    def __init__(
        self,
        target: ArrayTarget,
        coords: tuple[int, ...],
        data: npt.NDArray[Any],
        region_start: tuple[int, ...],
        *,
        blocked: bool = False,
    ) -> None:
        self.key = _io.chunk_key(
            target.path, coords, zarr_format=target.zarr_format, separator=target.separator
        )
        unit = target.unit
        origin = tuple(c * u for c, u in zip(coords, unit, strict=True))
        inner_grid = tuple(u // c for u, c in zip(unit, target.chunks, strict=True))
        self.pieces: list[npt.NDArray[Any] | None] = []
        self.valid: list[tuple[slice, ...] | None] = []
        fill = target.fill_value
        for icoords in itertools.product(*(range(n) for n in inner_grid)):
            io = [o + i * c for o, i, c in zip(origin, icoords, target.chunks, strict=True)]
            stops = [min(a + c, n) for a, c, n in zip(io, target.chunks, target.shape, strict=True)]
            if any(a >= b for a, b in zip(io, stops, strict=True)):
                self.pieces.append(None)
                self.valid.append(None)
                continue
            self.valid.append(tuple(slice(0, b - a) for a, b in zip(io, stops, strict=True)))
            if blocked:
                # *data* holds whole output chunks, already padded with the fill value
                g = tuple(
                    (a - r) // c for a, r, c in zip(io, region_start, target.chunks, strict=True)
                )
                piece = data[g]
                self.pieces.append(None if _io.all_fill(piece, fill) else piece)
                continue
            sel: tuple[Any, ...] = tuple(
                slice(a - r, b - r) for a, b, r in zip(io, stops, region_start, strict=True)
            )
            part = data[(*sel, Ellipsis)]  # a 0-d array (not a scalar) for 0-d data
            if _io.all_fill(part, fill):
                self.pieces.append(None)
            else:
                self.pieces.append(_pad(part, target.chunks, fill))

    @property
    def empty(self) -> bool:
        return all(p is None for p in self.pieces)


_THREAD = threading.local()


def set_helper(helper: Helper | None) -> None:
    """Let the tasks run by this thread share their chunks with idle threads (None: do not)."""
    _THREAD.helper = helper


def _chunk_map(fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """Return ``[fn(x) for x in items]``, sharing the items with an idle scheduler thread.

    While other tasks wait, a task's chunks are its own work alone; when its scheduler has an
    idle thread (the last tasks of a run), that thread takes chunks from the same list. Each
    item is computed exactly once, by one thread, and the results keep their order, so what
    is written does not depend on who computed it. The first exception raised by *fn* (on
    either thread) is raised here once all claimed items are done. One helper at most joins a
    call (two CPUs are the common case); the offer is renewed before each item this thread
    takes, at the cost of a lock, since a thread may become idle midway.
    """
    n = len(items)
    helper: Helper | None = getattr(_THREAD, "helper", None)
    if helper is None or n < 2:
        return [fn(x) for x in items]
    out: list[Any] = [None] * n
    errors: list[BaseException] = []
    counter = itertools.count()
    claiming = threading.Lock()  # each index goes to one thread, with or without a GIL
    done = threading.Condition()
    helping = 0

    def claim() -> int:
        with claiming:
            return next(counter)

    def work() -> None:
        while (i := claim()) < n and not errors:
            try:
                out[i] = fn(items[i])
            except BaseException as exc:
                errors.append(exc)

    def helped() -> None:
        nonlocal helping
        with done:
            helping += 1  # before claiming anything: the task waits for what this claims
        try:
            work()
        finally:
            with done:
                helping -= 1
                done.notify_all()

    offered = False
    while (i := claim()) < n and not errors:
        if not offered and i < n - 1:
            offered = helper(helped)
        try:
            out[i] = fn(items[i])
        except BaseException as exc:
            errors.append(exc)
    with done:
        done.wait_for(lambda: helping == 0)
    if errors:
        raise errors[0]
    return out


def _encode_piece(spec: CompressorSpec, piece: npt.NDArray[Any] | None) -> bytes | None:
    return None if piece is None else spec.encode(piece)


def _encode(
    spec: CompressorSpec, unit: _Unit, sharded: bool
) -> tuple[list[bytes] | None, list[bytes | None]]:
    """Encode the chunks of *unit*; return the parts of the object to write and the chunks."""
    encoded = _chunk_map(lambda p: _encode_piece(spec, p), unit.pieces)
    if sharded:
        return _io.shard_parts(encoded), encoded
    return (None if encoded[0] is None else [encoded[0]]), encoded


def _decode_object(
    data: bytes | None, n_pieces: int, sharded: bool, where: str
) -> list[bytes | None]:
    if data is None:
        return [None] * n_pieces
    if sharded:
        return _io.parse_shard(data, n_pieces, where=where)
    return [data]


def _exact_nbytes(spec: CompressorSpec, target: ArrayTarget) -> int | None:
    """Return the chunk size the verify fast path decodes to, or None when it does not apply.

    The fast path takes lossless zstd chunks of fixed-size items (see :func:`_exact_decoder`).
    """
    dtype = np.dtype(target.dtype)
    if spec.name != "zstd" or spec.lossy is not None or dtype.kind not in "biufcmM":
        return None
    if getattr(spec, "filters", ()) or spec.v2_filters(dtype):
        return None
    return math.prod(target.chunks) * dtype.itemsize


def _exact_decoder(nbytes: int | None) -> ExactZstdDecoder | None:
    """Return this thread's one-pass decoder of *nbytes* chunks (None: the general path)."""
    if nbytes is None:
        return None
    kept: ExactZstdDecoder | None = getattr(_THREAD, "decoder", None)
    if kept is None or kept.nbytes != nbytes:  # one per thread: its buffer is reused
        kept = _THREAD.decoder = ExactZstdDecoder(nbytes)
    return kept


def _stored_bytes(src: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Return the bytes a lossless codec stores for the chunk *src* (C order, little-endian)."""
    le = np.ascontiguousarray(src.astype(src.dtype.newbyteorder("<"), copy=False))
    flat = le.reshape(-1).view(np.uint8)
    return flat.view(np.uint64) if flat.size % 8 == 0 else flat


def verify_chunk(
    spec: CompressorSpec,
    target: ArrayTarget,
    src: npt.NDArray[Any],
    got: Any,
    valid: tuple[slice, ...],
    *,
    written: bytes | None = None,
    decoder: ExactZstdDecoder | None = None,
) -> tuple[str | None, float]:
    """Compare one stored chunk with the source data it was written from (the verify check).

    Parameters
    ----------
    spec, target
        The encoding and the output array.
    src
        The source values of the chunk, padded to the full chunk shape (native byte order).
    got
        The chunk's bytes as read back from the store.
    valid
        The part of the chunk inside the array (the rest is padding).
    written
        The bytes written for the chunk, when known (lossy codecs compare them first).
    decoder
        The exact-size zstd decoder of the fast path (lossless zstd only).

    Returns
    -------
    tuple
        ``(problem, error)``: a description of what is wrong (None when the chunk is right)
        and, for lossy codecs, the largest absolute difference from the source.
    """
    dtype = np.dtype(target.dtype)
    if spec.is_lossy:
        if written is not None and got != written:
            return "bytes read back differ from the bytes written", 0.0
        try:
            vals = spec.decode(got, dtype, target.chunks)
        except Exception as exc:
            return f"{exc}", 0.0
        if written is None and got != spec.encode(src):
            return "stored bytes differ from a fresh encoding", 0.0
        error = _max_error(src[valid], vals[valid])
        # the codec's declared error (lerc maxerror, zfpy tolerance, quantize digits...)
        tol = spec.tolerance(dtype)
        if not tol.within(src[valid], vals[valid]):
            return f"decoded values exceed the declared error ({tol.text})", error
        return None, error
    view = None
    if decoder is not None:
        try:
            view = decoder(got)
        except Exception as exc:
            return f"could not decode: {exc}", 0.0
    if view is not None:
        # One decode of what was read back, compared byte for byte with what was encoded; a
        # difference is looked at value by value (NaN payloads, padding) before it counts.
        mine = _stored_bytes(src)
        if np.array_equal(np.frombuffer(view, dtype=mine.dtype), mine):
            return None, 0.0
        vals = np.frombuffer(view, dtype=dtype.newbyteorder("<")).reshape(target.chunks)
    else:
        try:
            vals = spec.decode(got, dtype, target.chunks)
        except Exception as exc:
            return f"could not decode: {exc}", 0.0
    if not _equal(vals[valid], src[valid]):
        return "decoded values differ from the source", 0.0
    return None, 0.0


def _check_unit(
    spec: CompressorSpec,
    target: ArrayTarget,
    unit: _Unit,
    stored: bytes | None,
    written: list[bytes | None] | None,
) -> tuple[int, list[str], float]:
    """Compare a stored object with the source data; return (chunks checked, problems, error).

    *stored* is the object as read back from the store: its shard index is parsed once and
    each inner chunk decoded once.
    """
    sharded = target.shards is not None
    problems: list[str] = []
    checked = 0
    err = 0.0
    try:
        pieces = _decode_object(stored, len(unit.pieces), sharded, unit.key)
    except Exception as exc:
        detail = exc.message if isinstance(exc, ExplorerError) else f"{exc}"
        if detail.startswith(f"{unit.key}: "):
            detail = detail[len(unit.key) + 2 :]
        return 0, [f"{unit.key}: {detail}"], err
    dtype = np.dtype(target.dtype)
    exact = _exact_nbytes(spec, target)  # once per object; the decoder is per thread

    def check(i: int) -> tuple[int, str | None, float]:
        """Check inner chunk *i*: (chunks checked, problem or None, largest error)."""
        src, got = unit.pieces[i], pieces[i]
        where = unit.key if not sharded else f"{unit.key} (inner chunk {i})"
        if src is None:
            if got is None:
                return 0, None, 0.0
            # A stored chunk where the source is all fill: still correct if it decodes to fill.
            try:
                vals = spec.decode(got, dtype, target.chunks)
            except Exception as exc:
                return 0, f"{where}: {exc}", 0.0
            if not _io.all_fill(vals, target.fill_value):
                return 1, f"{where}: stored data where the source is empty", 0.0
            return 1, None, 0.0
        if got is None:
            return 0, f"{where}: missing in the output", 0.0
        valid = unit.valid[i]
        assert valid is not None
        problem, e = verify_chunk(
            spec,
            target,
            src,
            got,
            valid,
            written=None if written is None else written[i],
            decoder=_exact_decoder(exact),  # this thread's: its buffer is reused
        )
        return 1, None if problem is None else f"{where}: {problem}", e

    for c, problem, e in _chunk_map(check, range(len(unit.pieces))):
        checked += c
        if problem is not None:
            problems.append(problem)
        err = max(err, e)
    return checked, problems, err


def run_task(task: TaskSpec) -> TaskResult:
    """Run one task: read its source region, then write (or check) and verify its objects.

    Parameters
    ----------
    task
        The task description.

    Returns
    -------
    TaskResult
    """
    t = task.target
    spec = parse_compressor(t.compressor)
    sharded = t.shards is not None
    unit_shape = t.unit
    start = tuple(a * u for (a, _), u in zip(task.units, unit_shape, strict=True))
    stop = tuple(
        min(b * u, n) for (_, b), u, n in zip(task.units, unit_shape, t.shape, strict=True)
    )
    region = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
    reader: Any = (
        task.source
        if task.source is not None
        else _io.source_reader(task.src_url, task.src_options, task.src_path, task.run_id)
    )
    native = np.dtype(t.dtype).newbyteorder("=")
    found = None
    if isinstance(reader, _io.SourceReader) and reader.dtype.newbyteorder("=") == native:
        # the source's chunks decoded straight into whole output chunks: no copy per chunk
        found = reader.read_blocked(region, t.chunks)
    if found is not None:
        data, bytes_read = found
    else:
        data, bytes_read = reader.read(region)
        data = data.astype(native, copy=False)
    out = _io.writer(task.dst_url, task.dst_options, task.run_id)
    nbytes = math.prod(b - a for a, b in zip(start, stop, strict=True)) * native.itemsize
    del reader

    units = [
        _Unit(t, coords, data, start, blocked=found is not None)
        for coords in itertools.product(*(range(a, b) for a, b in task.units))
    ]
    del data  # the units hold their chunks (copies, padded): the region is no longer needed
    if task.mode == "check":
        problems: list[str] = []
        checked = 0
        err = 0.0
        stored_total = 0
        for u in units:
            stored = out.get(u.key)
            stored_total += len(stored) if stored is not None else 0
            c, p, e = _check_unit(spec, t, u, stored, None)
            if u.empty and not p and stored is not None:
                p = [f"{u.key}: stored object where the source is empty"]
            checked += c
            problems += p
            err = max(err, e)
        if not problems:
            return TaskResult(
                array=t.path,
                index=task.index,
                nbytes=nbytes,
                bytes_read=bytes_read,
                bytes_written=stored_total,
                # stored for none of them, as in the run that wrote the others (not read back)
                objects_empty=sum(u.empty for u in units),
                objects_verified=len(units),
                objects_empty_verified=sum(u.empty for u in units),
                chunks_verified=checked,
                max_error=err if spec.is_lossy else None,
                checked_ok=True,
            )
        task_write = True
    else:
        task_write = False

    written = empty = chunks_written = bytes_written = verified = chunks_verified = 0
    mismatches: list[str] = []
    err = 0.0
    for u in units:
        obj, pieces = _encode(spec, u, sharded)
        if obj is None:
            empty += 1
            if task.clean or task_write:
                out.delete(u.key)
            if task.verify:
                verified += 1
            continue
        out.set(u.key, obj)
        written += 1
        chunks_written += sum(p is not None for p in pieces)
        bytes_written += sum(len(part) for part in obj)
        del obj
        # only lossy checks compare the bytes written; the others let them go now
        compare_written = pieces if spec.is_lossy else None
        del pieces
        if task.verify:
            # What is on the store now, read back once: not the bytes still in memory.
            c, p, e = _check_unit(spec, t, u, out.get(u.key), compare_written)
            verified += 1
            chunks_verified += c
            mismatches += p
            err = max(err, e)
    return TaskResult(
        array=t.path,
        index=task.index,
        objects_written=written,
        objects_empty=empty,
        objects_empty_verified=empty if task.verify else 0,
        chunks_written=chunks_written,
        bytes_written=bytes_written,
        bytes_read=bytes_read,
        nbytes=nbytes,
        objects_verified=verified,
        chunks_verified=chunks_verified,
        mismatches=tuple(mismatches),
        max_error=err if (spec.is_lossy and task.verify) else None,
        rewritten=task_write,
    )
