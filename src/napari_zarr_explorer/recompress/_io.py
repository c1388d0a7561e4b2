"""Low-level reading and writing of chunk objects for the recompress engine.

Everything here is synchronous and thread-safe, and runs on worker threads or on
``dask.distributed`` worker processes. Source regions are read by decoding the source's chunk
objects directly when its codecs are simple (Zarr v2, or v3 unsharded with bytes, blosc, zstd,
gzip and crc32c), otherwise through zarr-python. Output objects (whole chunks or whole shards)
are encoded here, with the same bytes zarr-python would write, and written once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from napari_zarr_explorer.errors import ExplorerError, NotAnObjectError
from napari_zarr_explorer.store import read_bytes

__all__ = [
    "SourceReader",
    "StoreWriter",
    "all_fill",
    "build_shard",
    "chunk_key",
    "grid_indices",
    "parse_shard",
    "shard_parts",
]

_MISSING = 2**64 - 1


def _sync(coro: Any) -> Any:
    from zarr.core.sync import sync

    return sync(coro)


async def _collect(agen: Any) -> list[Any]:
    return [x async for x in agen]


def list_dir(store: Any, prefix: str) -> list[str]:
    """List the immediate children of *prefix* in *store* (empty when it cannot list).

    In local stores symbolic links are left out, as in every listing of this package.
    """
    if not getattr(store, "supports_listing", False):
        return []
    try:
        names = sorted(_sync(_collect(store.list_dir(prefix))))
    except (FileNotFoundError, NotADirectoryError, OSError):
        return []
    root = getattr(store, "root", None)
    if isinstance(root, Path):
        names = [n for n in names if not os.path.islink(os.path.join(root, prefix, n))]
    return names


def grid_indices(shape: Sequence[int], unit: Sequence[int]) -> list[range]:
    """Per-dimension ranges of grid indices covering *shape* with blocks of *unit*."""
    return [range(math.ceil(s / u) if s else 0) for s, u in zip(shape, unit, strict=True)]


def chunk_key(path: str, coords: Sequence[int], *, zarr_format: int, separator: str) -> str:
    """Return the store key of the chunk (or shard) at grid *coords* of the array at *path*."""
    if zarr_format == 3:
        key = "/".join(["c", *(str(c) for c in coords)])
    else:
        key = separator.join(str(c) for c in coords) if coords else "0"
    return f"{path}/{key}" if path else key


def all_fill(block: npt.NDArray[Any], fill: Any) -> bool:
    """Return True when every element of *block* equals *fill* (NaN equals NaN)."""
    if block.dtype.kind in "fc":
        f = np.asarray(fill, dtype=block.dtype)
        if np.isnan(f).any():
            return bool(np.isnan(block).all())
    value = np.asarray(fill, dtype=block.dtype)
    if block.size > 64:
        # most chunks of real data differ from the fill value at one of their ends
        flat = block.reshape(-1) if block.flags.c_contiguous else None
        if flat is not None and not (bool(flat[0] == value) and bool(flat[-1] == value)):
            return False
    return bool((block == value).all())


def arrays_equal(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    """NaN-aware exact comparison of two arrays of the same shape."""
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


# --------------------------------------------------------------------------------------------
# shards
# --------------------------------------------------------------------------------------------


def shard_parts(chunks: Sequence[bytes | None]) -> list[bytes] | None:
    """Return the parts of a ``sharding_indexed`` object (index last, ``bytes`` + ``crc32c``).

    Parameters
    ----------
    chunks
        Encoded inner chunks in C order of the inner chunk grid; None for missing chunks.

    Returns
    -------
    list of bytes or None
        The stored chunks followed by the index and its checksum, to be written one after the
        other (:meth:`StoreWriter.set` writes them without joining them first); None when every
        inner chunk is missing (the shard is not written at all).
    """
    import crc32c

    if all(c is None for c in chunks):
        return None
    index = np.full((len(chunks), 2), _MISSING, dtype="<u8")
    sizes = np.array([-1 if c is None else len(c) for c in chunks], dtype=np.int64)
    present = sizes >= 0
    index[present, 1] = sizes[present]
    index[present, 0] = np.cumsum(sizes[present]) - sizes[present]
    idx = index.tobytes()
    crc = np.uint32(crc32c.crc32c(idx)).astype("<u4").tobytes()
    return [*(c for c in chunks if c is not None), idx + crc]


def build_shard(chunks: Sequence[bytes | None]) -> bytes | None:
    """Assemble a ``sharding_indexed`` object (index at the end, ``bytes`` + ``crc32c``).

    Parameters
    ----------
    chunks
        Encoded inner chunks in C order of the inner chunk grid; None for missing chunks.

    Returns
    -------
    bytes or None
        None when every inner chunk is missing (the shard is not written at all).
    """
    parts = shard_parts(chunks)
    return None if parts is None else b"".join(parts)


def parse_shard(data: bytes, n_chunks: int, *, where: str) -> list[Any]:
    """Split a ``sharding_indexed`` object (index at the end, crc32c) into its inner chunks.

    The index is checked and parsed once
    (:func:`napari_zarr_explorer.store.chunkio.parse_shard_index`); the chunks are views of
    *data* (None for chunks that are not stored).
    """
    from napari_zarr_explorer.store.chunkio import MISSING, parse_shard_index

    index = parse_shard_index(data, n_chunks, where=where)
    view = memoryview(data)
    return [None if off == MISSING else view[off : off + n] for off, n in index.tolist()]


# --------------------------------------------------------------------------------------------
# source reading
# --------------------------------------------------------------------------------------------


class SourceReader:
    """Read regions of a source array, decoding its chunks directly when that is safe.

    Parameters
    ----------
    array
        The source ``zarr.Array`` (opened read-only and checked).
    store
        The store it lives in.
    path
        Store path of the array.
    """

    def __init__(self, array: Any, store: Any, path: str) -> None:
        self.array = array
        self.store = store
        self.path = path
        self.shape: tuple[int, ...] = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        fill = array.fill_value
        self.fill_value = np.zeros((), dtype=self.dtype).item() if fill is None else fill
        self._decode: Any = None
        self._key: Any = None
        md = array.metadata.to_dict()
        try:
            self._setup_fast(md)
        except Exception:
            self._decode = None

    def _setup_fast(self, md: Mapping[str, Any]) -> None:
        from napari_zarr_explorer.store import fast_chunk_decoder

        found = fast_chunk_decoder(md, self.dtype)
        if found is None:
            return
        self._decode, self.chunks = found
        self._key = self.array.metadata.encode_chunk_key

    def _damaged_shard(self, region: Sequence[slice]) -> ExplorerError | None:
        """Name the source shard in *region* whose index is damaged (None when none is)."""
        from napari_zarr_explorer.store.chunkio import shard_index_problem

        md = self.array.metadata.to_dict()
        grid = md.get("chunk_grid") or {}
        try:
            shard = [int(n) for n in grid["configuration"]["chunk_shape"]]
        except (KeyError, TypeError, ValueError):
            return None
        ranges = [range(s.start // n, -(-s.stop // n)) for s, n in zip(region, shard, strict=True)]
        for coords in itertools.product(*ranges):
            key = self.array.metadata.encode_chunk_key(coords)
            key = f"{self.path}/{key}" if self.path else key
            problem = shard_index_problem(self.store, key, md)
            if problem is not None:
                detail = problem[len(key) + 2 :] if problem.startswith(f"{key}: ") else problem
                return ExplorerError(
                    f"the source shard {key} cannot be read: {detail}",
                    hint="Without its index none of the shard's chunks can be found: restore "
                    "that shard from a copy of the data if there is one. "
                    "`napari-zarr-explorer chunks --verify` lists every damaged shard and chunk.",
                )
        return None

    @property
    def fast(self) -> bool:
        """True when chunks are decoded directly rather than through zarr-python."""
        return self._decode is not None

    def read(self, region: Sequence[slice]) -> tuple[npt.NDArray[Any], int | None]:
        """Return the data of *region* (native byte order) and the stored bytes it owns.

        The stored bytes count the source's stored objects (chunks, or whole shards of a
        sharded array) whose first element lies inside *region*, so that adding them over a
        partition of the array counts each object once. When zarr-python decodes the region (an
        unusual pipeline, or shards) it does not say what it read: the objects' sizes are asked
        of the store (:meth:`owned_bytes`), None when it cannot tell them.
        """
        if self._decode is None:
            try:
                data = np.asarray(self.array[tuple(region)])
            except ExplorerError:
                raise
            except Exception as exc:
                damaged = self._damaged_shard(region)
                if damaged is None:
                    raise
                raise damaged from exc
            return _native(data), self.owned_bytes(region)
        shape = tuple(s.stop - s.start for s in region)
        out = np.empty(shape, dtype=self.dtype.newbyteorder("="))
        owned = 0
        lo = [s.start // c for s, c in zip(region, self.chunks, strict=True)]
        hi = [
            (s.stop - 1) // c + 1 if s.stop > s.start else s.start // c
            for s, c in zip(region, self.chunks, strict=True)
        ]
        for coords in itertools.product(*(range(a, b) for a, b in zip(lo, hi, strict=True))):
            origin = [i * c for i, c in zip(coords, self.chunks, strict=True)]
            src_sel = []
            dst_sel = []
            for o, c, s, n in zip(origin, self.chunks, region, self.shape, strict=True):
                a = max(o, s.start)
                b = min(o + c, s.stop, n)
                src_sel.append(slice(a - o, b - o))
                dst_sel.append(slice(a - s.start, b - s.start))
            key = self._key(coords)
            key = f"{self.path}/{key}" if self.path else key
            try:
                raw = read_bytes(self.store, key)
            except NotAnObjectError:  # a folder where a chunk belongs: missing, as zarr sees it
                raw = None
            if raw is None:
                out[tuple(dst_sel)] = self.fill_value
                continue
            if all(o >= s.start for o, s in zip(origin, region, strict=True)):
                owned += len(raw)
            chunk = self._decode_named(raw, key)
            out[tuple(dst_sel)] = chunk[tuple(src_sel)]
        return out, owned

    def owned_bytes(self, region: Sequence[slice]) -> int | None:
        """Return the stored size of the objects whose first element lies inside *region*.

        The objects are the array's stored keys: chunks, or whole shards (index included) of a
        sharded array. Their sizes come from the store (a stat of each file locally, a HEAD
        request or the size of a cached value remotely), asked concurrently; a missing object
        counts 0. None when the store cannot tell the size of one of them (a refused or failed
        request).
        """
        shards = getattr(self.array, "shards", None)
        shape = tuple(shards if shards is not None else self.array.chunks)
        ranges = [
            range(-(-s.start // n), -(-s.stop // n)) for s, n in zip(region, shape, strict=True)
        ]
        keys = []
        for coords in itertools.product(*ranges):
            key = self.array.metadata.encode_chunk_key(coords)
            keys.append(f"{self.path}/{key}" if self.path else key)
        if not keys:
            return 0

        async def sizes() -> list[Any]:
            found = (self.store.getsize(k) for k in keys)
            return list(await asyncio.gather(*found, return_exceptions=True))

        total = 0
        for size in _sync(sizes()):
            if isinstance(size, FileNotFoundError | KeyError | NotAnObjectError):
                continue  # absent (every store of this package says so as FileNotFoundError)
            if not isinstance(size, int):
                return None  # refused or failed (a RemoteError): the size is not known
            total += size
        return total

    def read_blocked(
        self, region: Sequence[slice], inner: Sequence[int]
    ) -> tuple[npt.NDArray[Any], int] | None:
        """Return *region* laid out as whole output chunks, and the stored bytes it owns.

        The result has shape ``(*grid, *inner)``: element ``[g]`` is the output chunk ``g`` of
        the region (C-contiguous, padded with the fill value past the region), so the chunks
        are encoded without another copy. *region* must start on a multiple of *inner*. None
        when the source is not decoded directly (:attr:`fast` is False).
        """
        if self._decode is None or not region:
            return None
        shape = [s.stop - s.start for s in region]
        grid = [-(-n // c) for n, c in zip(shape, inner, strict=True)]
        dtype = self.dtype.newbyteorder("=")
        if any(n % c for n, c in zip(shape, inner, strict=True)):
            out = np.full((*grid, *inner), self.fill_value, dtype=dtype)
        else:
            out = _region_buffer((*grid, *inner), dtype)
        owned = 0
        get: Any = functools.partial(read_bytes, self.store)
        if isinstance(getattr(self.store, "root", None), Path):
            from napari_zarr_explorer.store.chunkio import LocalObjectReader

            get = LocalObjectReader(self.store).read  # one check per folder for this region
        lo = [s.start // c for s, c in zip(region, self.chunks, strict=True)]
        hi = [-(-s.stop // c) for s, c in zip(region, self.chunks, strict=True)]
        for coords in itertools.product(*(range(a, b) for a, b in zip(lo, hi, strict=True))):
            origin = [i * c for i, c in zip(coords, self.chunks, strict=True)]
            # per axis: (output chunk, slice of the source chunk, slice inside the output chunk)
            parts: list[list[tuple[int, slice, slice]]] = []
            for o, c, s, n, ic in zip(origin, self.chunks, region, self.shape, inner, strict=True):
                pos, end = max(o, s.start) - s.start, min(o + c, s.stop, n) - s.start
                axis = []
                while pos < end:
                    g = pos // ic
                    stop = min((g + 1) * ic, end)
                    axis.append(
                        (
                            g,
                            slice(pos + s.start - o, stop + s.start - o),
                            slice(pos - g * ic, stop - g * ic),
                        )
                    )
                    pos = stop
                parts.append(axis)
            key = self._key(coords)
            key = f"{self.path}/{key}" if self.path else key
            raw = get(key)
            chunk: Any = None
            if raw is not None:
                if all(o >= s.start for o, s in zip(origin, region, strict=True)):
                    owned += len(raw)
                chunk = self._decode_named(raw, key)
            for combo in itertools.product(*parts):
                dst: tuple[Any, ...] = (*(g for g, _, _ in combo), *(d for _, _, d in combo))
                if chunk is None:
                    out[dst] = self.fill_value
                else:
                    out[dst] = chunk[tuple(src for _, src, _ in combo)]
        return out, owned

    def _decode_named(self, raw: bytes, key: str) -> npt.NDArray[Any]:
        try:
            chunk: npt.NDArray[Any] = self._decode(raw)
        except Exception as exc:
            detail = (exc.message if isinstance(exc, ExplorerError) else f"{exc}").rstrip()
            detail += "" if detail.endswith((".", "!", "?")) else "."
            raise ExplorerError(
                f"the source chunk {key} cannot be decoded: {detail}",
                hint="The source is damaged there; `napari-zarr-explorer chunks --verify` "
                "lists every damaged chunk.",
            ) from exc
        return chunk


_THREAD = threading.local()


def _region_buffer(shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """Return an uninitialised array for a task's region, reused by the thread's next task.

    A task reads the region of one output shard (16 MiB in the benchmark); allocating it anew
    for every task costs a page fault per 4 KiB of it. A thread runs one task at a time and
    nothing of a task outlives it, so the thread's next task of the same size takes the buffer
    over. Buffers larger than 256 MiB are not kept.
    """
    nbytes = math.prod(shape) * dtype.itemsize
    kept: npt.NDArray[Any] | None = getattr(_THREAD, "region", None)
    if kept is not None and kept.nbytes == nbytes:
        return kept.view(dtype).reshape(shape)
    buf = np.empty(nbytes, dtype=np.uint8)
    _THREAD.region = buf if nbytes <= 256 << 20 else None
    return buf.view(dtype).reshape(shape)


def _native(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a


# --------------------------------------------------------------------------------------------
# output writing
# --------------------------------------------------------------------------------------------


def _write_parts(fd: int, parts: Sequence[Any]) -> None:
    """Write *parts* to the file *fd* one after the other (vectored writes, no joined copy)."""
    limit = 512  # well below IOV_MAX
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        batch = views[:limit]
        done = os.writev(fd, batch)
        if done == 0 and any(len(v) for v in batch):
            raise OSError(f"could not write to file descriptor {fd}")
        # a short write: drop what was written and go on with the rest
        while batch and done >= len(batch[0]):
            done -= len(batch[0])
            batch.pop(0)
            views.pop(0)
        if batch and done:
            views[0] = views[0][done:]


class StoreWriter:
    """Write, read back and delete whole objects in the output store.

    Local outputs are written as files directly (parents created as needed); remote outputs go
    through the zarr store.
    """

    def __init__(self, store: Any, url: str | None = None) -> None:
        self.store = store
        root = getattr(store, "root", None)
        self.root: Path | None = root if isinstance(root, Path) else None
        self._dirs: set[Path] = set()
        self.url = url or _store_url(store)
        """The output's path or URL, as messages name it."""

    def _remote(self, doing: str, key: str, call: Any) -> Any:
        """Run *call* (a request to the remote output); say what failed, naming the key."""
        try:
            return call()
        except ExplorerError:
            raise
        except Exception as exc:
            raise output_error(doing, f"{self.url.rstrip('/')}/{key}", exc) from exc

    def set(self, key: str, data: bytes | Sequence[bytes], *, atomic: bool = False) -> None:
        """Write the object *key* in one go.

        *data* is the object's bytes, or its parts in order (written one after the other
        without being joined in memory first). With *atomic* (metadata documents), a local file
        is written beside and renamed into place, so an interruption never leaves a truncated
        document.
        """
        parts = [data] if isinstance(data, bytes | bytearray | memoryview) else list(data)
        if self.root is not None:
            path = self.root / key
            parent = path.parent
            if parent not in self._dirs:
                parent.mkdir(parents=True, exist_ok=True)
                self._dirs.add(parent)
            target = path.with_name(f".{path.name}.partial") if atomic else path
            with open(target, "wb") as fh:
                if len(parts) == 1:
                    fh.write(parts[0])
                else:
                    _write_parts(fh.fileno(), parts)
            if atomic:
                os.replace(target, path)
            return
        from zarr.core.buffer import default_buffer_prototype

        joined = parts[0] if len(parts) == 1 else b"".join(parts)
        buffer = default_buffer_prototype().buffer.from_bytes(joined)
        self._remote("Writing", key, lambda: _sync(self.store.set(key, buffer)))

    def get(self, key: str) -> bytes | None:
        """Read the object *key* back (None when absent)."""
        if self.root is not None:
            return read_bytes(self.store, key)
        result: bytes | None = self._remote("Reading", key, lambda: read_bytes(self.store, key))
        return result

    def delete(self, key: str) -> None:
        """Delete the object *key* if it exists."""
        if self.root is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.root / key)
            return

        def delete() -> None:
            with contextlib.suppress(FileNotFoundError, KeyError):
                _sync(self.store.delete(key))

        self._remote("Deleting", key, delete)


def _store_url(store: Any) -> str:
    """Return the URL of a zarr store (``s3://bucket/prefix`` for an fsspec store), or its text."""
    root = getattr(store, "root", None)
    if isinstance(root, Path):
        return str(root)
    fs, path = getattr(store, "fs", None), getattr(store, "path", None)
    protocol = getattr(fs, "protocol", None)
    if isinstance(protocol, tuple | list):
        protocol = protocol[0] if protocol else None
    if isinstance(protocol, str) and isinstance(path, str):
        return f"{protocol}://{path.strip('/')}"
    return str(store)


#: What to do when writing to a bucket is refused, by protocol (the docks say it their way).
_WRITE_HINTS = {
    "s3": "Writing needs credentials allowed to write there: set AWS_ACCESS_KEY_ID and "
    'AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass {"key": ..., "secret": ...} in the '
    "output's storage options.",
    "gs": "Writing needs credentials allowed to write there: set GOOGLE_APPLICATION_CREDENTIALS "
    "to a service-account key file, run `gcloud auth application-default login`, or pass "
    '{"token": ...} in the output\'s storage options.',
}


def _no_such_bucket(exc: BaseException) -> bool:
    """Tell whether *exc* says the bucket itself does not exist (S3's ``NoSuchBucket``).

    Matched on the error's code or S3's own wording, never on the word "bucket" alone, which
    a bucket's or key's name may hold.
    """
    from napari_zarr_explorer.errors import cause_chain

    for e in cause_chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code") == "NoSuchBucket":
            return True
        text = str(e).lower()
        if "nosuchbucket" in text or "bucket does not exist" in text:
            return True
    return False


def output_error(doing: str, where: str, exc: BaseException) -> ExplorerError:
    """Return the error for a request to a remote output that failed: what, where, why.

    *doing* is ``"Writing"``, ``"Reading"`` or ``"Deleting"``, *where* the object's URL.
    """
    from napari_zarr_explorer.errors import AccessDeniedError, NotFoundError, RemoteError
    from napari_zarr_explorer.store.remote import _classify

    kind, detail = _classify(exc)
    protocol = where.partition("://")[0] if "://" in where else ""
    if isinstance(exc, FileNotFoundError) and _no_such_bucket(exc):
        bucket = where.partition("://")[2].partition("/")[0]
        return NotFoundError(
            f"{doing} {where} failed: the bucket {bucket!r} does not exist.",
            hint="Check the bucket's name in the output URL, or create the bucket first.",
        )
    if kind == "denied":
        return AccessDeniedError(
            f"{doing} {where} was refused ({detail}).",
            hint=_WRITE_HINTS.get("gs" if protocol == "gcs" else protocol),
        )
    if kind in ("transient", "timeout", "connection", "refused", "dns"):
        return RemoteError(
            f"{doing} {where} failed ({detail}).",
            hint="Check the connection to the server, and try again.",
        )
    return RemoteError(f"{doing} {where} failed: {detail}.")


# --------------------------------------------------------------------------------------------
# per-process caches (threads share them; distributed workers build their own)
# --------------------------------------------------------------------------------------------

_CACHE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=64)
def _cached_source(url: str, options_json: str, path: str, run_id: str) -> SourceReader:
    from napari_zarr_explorer.store import open_array, parse_location

    loc = parse_location(url, json.loads(options_json) or None)
    store = _cached_source_store(url, options_json, run_id)
    arr = open_array(loc, path, store=store)
    return SourceReader(arr, store, path)


@functools.lru_cache(maxsize=16)
def _cached_source_store(url: str, options_json: str, run_id: str) -> Any:
    from napari_zarr_explorer.store import open_store, parse_location

    return open_store(parse_location(url, json.loads(options_json) or None))


@functools.lru_cache(maxsize=16)
def _cached_writer(url: str, options_json: str, run_id: str) -> StoreWriter:
    return StoreWriter(open_output_store(url, json.loads(options_json) or None))


def source_reader(url: str, options_json: str, path: str, run_id: str = "") -> SourceReader:
    """Return a reader for the source array *path* at *url*, cached per process and run."""
    with _CACHE_LOCK:
        return _cached_source(url, options_json, path, run_id)


def writer(url: str, options_json: str, run_id: str = "") -> StoreWriter:
    """Return a writer for the output store at *url*, cached per process and run."""
    with _CACHE_LOCK:
        return _cached_writer(url, options_json, run_id)


def make_output_folder(path: Path) -> None:
    """Create the output folder *path* (and its parents), or say plainly why it cannot be.

    Raises
    ------
    ExplorerError
        When a parent of *path* is a file, or the operating system refuses the folder
        (permissions, a read-only or special file system): the message names the path and the
        reason, and nothing is created.
    """
    try:
        for parent in (path, *path.parents):
            if parent.exists() or parent.is_symlink():
                if not parent.is_dir() and parent != path:
                    raise ExplorerError(
                        f"Cannot write to {path}: {parent} is a file, not a folder.",
                        hint="Choose an output folder elsewhere.",
                    )
                break
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a name too long, a read-only file system, no permission...
        from napari_zarr_explorer.errors import os_error_text

        reason = exc.strerror or os_error_text(exc)  # the path is named once, first
        raise ExplorerError(
            f"Cannot create the output folder {path}: {reason}.",
            hint="Choose an output folder you can write to.",
        ) from None


def open_output_store(url: str, storage_options: Mapping[str, Any] | None = None) -> Any:
    """Open the output store for writing: a local directory or a remote fsspec URL."""
    from napari_zarr_explorer.store import parse_location

    loc = parse_location(url, dict(storage_options or {}))
    if loc.is_local:
        from zarr.storage import LocalStore

        make_output_folder(loc.path)
        return LocalStore(loc.path, read_only=False)
    from zarr.storage import FsspecStore

    if loc.protocol in ("http", "https"):
        raise ExplorerError(
            f"{loc.url}: cannot write to an http(s) URL.",
            hint="Write to a local path, s3:// or gs:// instead.",
        )
    return FsspecStore.from_url(
        loc.url, storage_options=dict(storage_options or {}), read_only=False
    )
