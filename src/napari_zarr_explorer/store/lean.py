"""Arrays of ``http(s)://`` stores read without zarr-python: the first image's reads.

Importing zarr-python (fsspec, numcodecs and their entry points, about 140 dataclasses) takes
0.15-0.4 s on a loaded machine, longer than the round trips of a remote image's first pixels.
For arrays whose layout is common and plain, :class:`LeanArray` reads regions with the lean
HTTP client (:mod:`._http`) and decodes them with bounded decoders that need no zarr import
(``zstandard``, :mod:`zlib`, numcodecs' blosc extension), while everything unusual is left to
zarr-python:

- :func:`lean_array` accepts only Zarr v2 and v3 arrays in C order with a regular chunk grid,
  a plain numeric or boolean data type, a ``bytes`` codec (little- or big-endian) followed by at
  most one of ``zstd``, ``gzip``, ``blosc`` (v2: no filters, a ``zstd``, ``gzip``, ``zlib`` or
  ``blosc`` compressor or none), optionally inside one level of ``sharding_indexed`` with the
  standard index codecs; every key of the metadata must be one it knows. Anything else: None;
  the caller opens the array with zarr-python.
- :meth:`LeanArray.read` raises on anything unusual it meets in the data (a chunk whose declared
  size is not the chunk's size, a zstd frame without a content size or followed by more data, a
  damaged shard index, an error from the server, a missing chunk whose fill value it does not
  parse...). The caller then reads the same region through zarr-python, which gives the result
  and the error messages of the ordinary path. No chunk is decoded beyond its declared size;
  responses are bounded; every key is confined to the store by the client
  (:func:`~napari_zarr_explorer.store.keys.check_key`).

The requests are those the ordinary path (:func:`napari_zarr_explorer.store.remote.read_region`)
makes: one per chunk; for sharded arrays one per shard read whole, else the shard's index once
and one per inner chunk needed, all concurrently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from napari_zarr_explorer.store.exact import ExactSizeError, decode_exact
from napari_zarr_explorer.store.shardindex import (
    IndexLayout,
    decode_index,
    entry_masks,
    index_layout,
    parse_whole_shard,
)

__all__ = ["LeanArray", "LeanUnsupported", "lean_array"]

#: Largest shard index read here (a million inner chunks per shard).
_MAX_INDEX_BYTES = 16 * 2**20 + 4
#: Slack allowed over a chunk's decoded size for its stored (compressed) size.
_STORED_SLACK = 1 << 16

_V3_KEYS = frozenset(
    {
        "zarr_format",
        "node_type",
        "shape",
        "data_type",
        "chunk_grid",
        "chunk_key_encoding",
        "fill_value",
        "codecs",
        "attributes",
        "dimension_names",
        "storage_transformers",
    }
)
_V2_KEYS = frozenset(
    {
        "zarr_format",
        "shape",
        "chunks",
        "dtype",
        "compressor",
        "fill_value",
        "order",
        "filters",
        "dimension_separator",
    }
)
_V3_TYPES = frozenset(
    {
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
    }
)
_BLOSC_KEYS = frozenset({"cname", "clevel", "shuffle", "typesize", "blocksize"})
_BLOSC_CNAMES = frozenset({"lz4", "lz4hc", "blosclz", "zstd", "snappy", "zlib"})
_BLOSC_SHUFFLES = frozenset({"noshuffle", "shuffle", "bitshuffle"})


class LeanUnsupported(Exception):
    """The lean reader cannot read this region exactly; zarr-python reads it instead."""


def _plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ints(value: Any, *, positive: bool) -> tuple[int, ...] | None:
    if not isinstance(value, list) or not all(_plain_int(v) for v in value):
        return None
    if any(v < (1 if positive else 0) for v in value):
        return None
    return tuple(value)


def _fill(value: Any, dtype: np.dtype[Any]) -> tuple[bool, Any]:
    """Parse a fill value of the metadata: ``(known, value)`` (a plain Python number)."""
    if dtype.kind == "b":
        return (True, value) if isinstance(value, bool) else (False, None)
    if dtype.kind in "iu":
        if not _plain_int(value):
            return False, None
        info = np.iinfo(dtype)
        return (True, value) if info.min <= value <= info.max else (False, None)
    if isinstance(value, bool):
        return False, None
    if _plain_int(value) or isinstance(value, float):
        return True, float(value)
    special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
    if isinstance(value, str) and value in special:
        return True, special[value]
    return False, None


@dataclass(frozen=True)
class _Codec:
    """The one compressor of a chunk (``None``: raw bytes)."""

    name: str | None


def _v3_compressor(codecs: Any, dtype: np.dtype[Any]) -> tuple[str, _Codec] | None:
    """``(byte order, compressor)`` of a v3 chunk pipeline, None when not read here."""
    if not isinstance(codecs, list) or not 1 <= len(codecs) <= 2:
        return None
    items: list[tuple[Any, dict[str, Any]]] = []
    for c in codecs:
        if isinstance(c, str):
            items.append((c, {}))
        elif (
            isinstance(c, dict)
            and isinstance(c.get("name"), str)
            and set(c)
            <= {
                "name",
                "configuration",
            }
        ):
            conf = c.get("configuration") or {}
            if not isinstance(conf, dict):
                return None
            items.append((c["name"], conf))
        else:
            return None
    (first, conf0), *rest = items
    if first != "bytes" or set(conf0) - {"endian"}:
        return None
    endian = conf0.get("endian", "little")
    if endian not in ("little", "big") or ("endian" not in conf0 and dtype.itemsize > 1):
        return None
    order = "<" if endian == "little" else ">"
    if not rest:
        return order, _Codec(None)
    name, conf = rest[0]
    # the configurations zarr-python accepts (it refuses the array otherwise)
    if name == "zstd":
        level = conf.get("level", 0)
        ok = set(conf) <= {"level", "checksum"} and _plain_int(level) and level <= 22
        ok = ok and isinstance(conf.get("checksum", False), bool)
    elif name == "gzip":
        level = conf.get("level", 5)
        ok = set(conf) <= {"level"} and _plain_int(level) and 0 <= level <= 9
    elif name == "blosc":
        ok = (
            set(conf) <= _BLOSC_KEYS
            and conf.get("cname", "zstd") in _BLOSC_CNAMES
            and conf.get("shuffle", "noshuffle") in _BLOSC_SHUFFLES
            and all(_plain_int(conf.get(k, 1)) for k in ("clevel", "typesize", "blocksize"))
            and conf.get("typesize", 1) > 0
            and 0 <= conf.get("clevel", 5) <= 9
            and conf.get("blocksize", 0) >= 0
        )
    else:
        return None
    return (order, _Codec(name)) if ok else None


def _v2_compressor(comp: Any) -> _Codec | None:
    if comp is None:
        return _Codec(None)
    if not isinstance(comp, dict):
        return None
    # the arguments numcodecs' codecs take (zarr-python refuses the array otherwise)
    cid = comp.get("id")
    args = {k: v for k, v in comp.items() if k != "id"}
    if cid == "zstd":
        ok = set(args) <= {"level", "checksum"} and _plain_int(args.get("level", 0))
        ok = ok and isinstance(args.get("checksum", False), bool)
    elif cid in ("gzip", "zlib"):
        ok = set(args) <= {"level"} and _plain_int(args.get("level", 1))
    elif cid == "blosc":
        ok = set(args) <= {"cname", "clevel", "shuffle", "blocksize", "typesize"}
        ok = ok and args.get("cname", "lz4") in _BLOSC_CNAMES
        ok = ok and all(_plain_int(args.get(k, 0)) for k in ("clevel", "shuffle", "blocksize"))
    else:
        return None
    return _Codec(str(cid)) if ok else None


def lean_array(metadata: Mapping[str, Any], zarr_format: int, path: str) -> LeanArray | None:
    """Return a :class:`LeanArray` for the array *metadata* at *path*, None when not read here.

    Parameters
    ----------
    metadata
        The array's ``zarr.json`` (v3) or ``.zarray`` (v2) document, as read.
    zarr_format
        2 or 3.
    path
        The array's store-relative path (already confined).
    """
    try:
        return _lean_array(metadata, zarr_format, path)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
        return None


def _lean_array(metadata: Mapping[str, Any], zarr_format: int, path: str) -> LeanArray | None:
    shape: tuple[int, ...] | None
    shards: tuple[int, ...] | None = None
    layout: IndexLayout | None = None
    if zarr_format == 3:
        if set(metadata) - _V3_KEYS or metadata.get("node_type") != "array":
            return None
        if metadata.get("storage_transformers"):
            return None
        name = metadata.get("data_type")
        if name not in _V3_TYPES:
            return None
        dtype = np.dtype(str(name))
        shape = _ints(metadata.get("shape"), positive=False)
        grid = metadata.get("chunk_grid")
        if not isinstance(grid, dict) or grid.get("name") != "regular":
            return None
        conf = grid.get("configuration")
        if set(grid) - {"name", "configuration"} or not isinstance(conf, dict):
            return None
        if set(conf) - {"chunk_shape"}:
            return None
        outer = _ints(conf.get("chunk_shape"), positive=True)
        enc = metadata.get("chunk_key_encoding") or {"name": "default"}
        if not isinstance(enc, dict) or enc.get("name") not in ("default", "v2"):
            return None
        enc_conf = enc.get("configuration") or {}
        if set(enc) - {"name", "configuration"} or set(enc_conf) - {"separator"}:
            return None
        default_sep = "/" if enc["name"] == "default" else "."
        sep = enc_conf.get("separator", default_sep) if isinstance(enc_conf, dict) else None
        if sep not in ("/", "."):
            return None
        prefix = "c" if enc["name"] == "default" else ""
        codecs = metadata.get("codecs")
        if not isinstance(codecs, list) or not codecs:
            return None
        first = codecs[0]
        if isinstance(first, dict) and first.get("name") == "sharding_indexed":
            if len(codecs) != 1 or set(first) - {"name", "configuration"}:
                return None
            sconf = first.get("configuration")
            if not isinstance(sconf, dict) or set(sconf) - {
                "chunk_shape",
                "codecs",
                "index_codecs",
                "index_location",
            }:
                return None
            inner = _ints(sconf.get("chunk_shape"), positive=True)
            if inner is None or outer is None or len(inner) != len(outer):
                return None
            if any(o % i for o, i in zip(outer, inner, strict=True)):
                return None
            pipeline = _v3_compressor(sconf.get("codecs"), dtype)
            per = math.prod(o // i for o, i in zip(outer, inner, strict=True))
            layout = index_layout(sconf, per)
            if layout is None or layout.nbytes > _MAX_INDEX_BYTES:
                return None
            shards, chunks = outer, inner
        else:
            pipeline = _v3_compressor(codecs, dtype)
            chunks = outer  # type: ignore[assignment]
        if pipeline is None or chunks is None:
            return None
        order, codec = pipeline
        stored = dtype.newbyteorder("<" if order == "<" else ">") if dtype.itemsize > 1 else dtype
        fill = _fill(metadata.get("fill_value"), dtype)
        if not fill[0]:
            return None  # none, or one zarr-python may read otherwise or refuse
        dims = metadata.get("dimension_names")
        if dims is not None and not (
            isinstance(dims, list)
            and len(dims) == len(metadata.get("shape") or ())
            and all(d is None or isinstance(d, str) for d in dims)
        ):
            return None
    elif zarr_format == 2:
        if set(metadata) - _V2_KEYS or metadata.get("zarr_format", 2) != 2:
            return None
        if metadata.get("order", "C") != "C" or metadata.get("filters") not in (None, []):
            return None
        dt = metadata.get("dtype")
        if not isinstance(dt, str) or len(dt) < 3 or dt[0] not in "<>|" or dt[1] not in "biuf":
            return None
        stored = np.dtype(dt)
        if stored.kind not in "biuf" or stored.str != dt:
            return None
        dtype = stored.newbyteorder("=") if stored.byteorder not in ("=", "|") else stored
        shape = _ints(metadata.get("shape"), positive=False)
        chunks = _ints(metadata.get("chunks"), positive=True)  # type: ignore[assignment]
        v2codec = _v2_compressor(metadata.get("compressor"))
        sep = metadata.get("dimension_separator", ".")
        if v2codec is None or chunks is None or sep not in (".", "/"):
            return None
        codec = v2codec
        prefix = ""
        fv = metadata.get("fill_value")
        # a v2 array without a fill value: missing chunks are left to zarr-python
        fill = (False, None) if fv is None else _fill(fv, dtype)
        if fv is not None and not fill[0]:
            return None
    else:
        return None
    if shape is None or len(shape) != len(chunks) or not shape:
        return None
    if math.prod(shards or chunks) > 2**62:  # meta's limit: refused by the ordinary path
        return None
    if shards is not None and len(shards) != len(shape):
        return None
    return LeanArray(
        path=path,
        shape=shape,
        dtype=dtype,  # native: the v3 data type names one, a v2 one is made native above
        stored=stored,
        chunks=chunks,
        shards=shards,
        layout=layout,
        codec=codec.name,
        fill_known=fill[0],
        fill_value=fill[1],
        separator=str(sep),
        prefix=prefix,
    )


@dataclass(frozen=True)
class LeanArray:
    """A plain array of an ``http(s)://`` store, read without zarr-python (see the module).

    Attributes
    ----------
    path
        Store-relative path of the array.
    shape, chunks
        The array's shape and its (inner) chunk shape.
    shards
        The shard shape of a sharded array, else None.
    dtype
        The native data type of the values (what reads return).
    stored
        The data type as stored (its byte order).
    codec
        ``zstd``, ``gzip``, ``zlib``, ``blosc`` or None (raw bytes).
    fill_known, fill_value
        Whether the fill value is known here, and what it is.
    """

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    stored: np.dtype[Any]
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    layout: IndexLayout | None
    codec: str | None
    fill_known: bool
    fill_value: Any
    separator: str
    prefix: str

    @property
    def chunk_nbytes(self) -> int:
        """Decoded bytes of one (inner) chunk."""
        return math.prod(self.chunks) * self.dtype.itemsize

    def key(self, coords: Sequence[int]) -> str:
        """Return the store key of the stored object (chunk or shard) at grid *coords*."""
        parts = [self.prefix] if self.prefix else []
        parts.extend(str(int(c)) for c in coords)
        name = self.separator.join(parts) if parts else "0"
        return f"{self.path}/{name}" if self.path else name

    # -- decoding ----------------------------------------------------------------------------
    def decode(self, data: bytes | memoryview) -> np.ndarray:
        """Decode one stored chunk into an array of the chunk's shape (stored byte order).

        Raises
        ------
        LeanUnsupported
            When the chunk does not declare exactly the chunk's size, or does not decode to it.
        """
        try:  # the size rules of the one exact-size decoder
            raw = decode_exact(self.codec or "raw", data, self.chunk_nbytes)
        except ExactSizeError as exc:
            raise LeanUnsupported(str(exc)) from None
        except ImportError:  # pragma: no cover - zstandard is an optional package
            raise LeanUnsupported("zstandard is not installed") from None
        return np.frombuffer(raw, dtype=self.stored).reshape(self.chunks)

    # -- reading -----------------------------------------------------------------------------
    def read(self, client: Any, sel: Sequence[slice], record: _Record | None = None) -> np.ndarray:
        """Read the region *sel* (step-1 slices with explicit bounds) through *client*.

        Parameters
        ----------
        client
            The store's :class:`~napari_zarr_explorer.store._http.HTTPClient`.
        sel
            One slice per dimension.
        record
            Called with ``(key, byte_range, data)`` for each shard index read and, when the read
            fails, for everything it fetched (data None: the object does not exist); the byte
            range as :meth:`~napari_zarr_explorer.store.remote.RemoteStore.seed_cache` takes
            it, so that zarr-python's reads find them and ask for none of them again.

        Returns
        -------
        numpy.ndarray
            The region, in the native data type.

        Raises
        ------
        Exception
            Anything unusual (:class:`LeanUnsupported`, an error of the server or of a
            decoder): the caller reads the region through zarr-python instead.
        """
        sel = tuple(slice(int(s.start), int(s.stop)) for s in sel)
        if len(sel) != len(self.shape):
            raise LeanUnsupported("selection of another rank")
        out = np.empty(tuple(s.stop - s.start for s in sel), dtype=self.dtype)
        if out.size == 0:
            return out
        requests = _Requests(client)
        try:
            if self.shards is None:
                self._read_chunks(requests, sel, out)
            else:
                self._read_shards(requests, sel, out, record)
        except Exception:
            if record is not None:  # zarr-python reads the region next: from what came
                requests.hand_on(record)
            raise
        return out

    def _stored_limit(self) -> int:
        return self.chunk_nbytes + self.chunk_nbytes // 8 + _STORED_SLACK

    def _paste(
        self, out: np.ndarray, sel: tuple[slice, ...], coords: Sequence[int], chunk: np.ndarray
    ) -> None:
        src = []
        dst = []
        for c, s, size in zip(coords, sel, self.chunks, strict=True):
            lo = max(c * size, s.start)
            hi = min((c + 1) * size, s.stop)
            src.append(slice(lo - c * size, hi - c * size))
            dst.append(slice(lo - s.start, hi - s.start))
        out[tuple(dst)] = chunk[tuple(src)]

    def _fill_box(
        self, out: np.ndarray, sel: tuple[slice, ...], lo: Sequence[int], size: Sequence[int]
    ) -> None:
        if not self.fill_known:
            raise LeanUnsupported("a missing chunk whose fill value is not read here")
        dst = []
        for a, n, s in zip(lo, size, sel, strict=True):
            dst.append(slice(max(a, s.start) - s.start, min(a + n, s.stop) - s.start))
        out[tuple(dst)] = self.fill_value

    def _grid(self, sel: tuple[slice, ...], block: Sequence[int]) -> list[range]:
        return [range(s.start // b, -(-s.stop // b)) for s, b in zip(sel, block, strict=True)]

    def _read_chunks(self, requests: _Requests, sel: tuple[slice, ...], out: np.ndarray) -> None:
        limit = self._stored_limit()
        coords = list(product(*self._grid(sel, self.chunks)))
        futures = [(c, requests.submit(self.key(c), None, limit)) for c in coords]
        for c, fut in futures:
            data = fut.result()
            if data is None:
                lo = [i * n for i, n in zip(c, self.chunks, strict=True)]
                self._fill_box(out, sel, lo, self.chunks)
            else:
                self._paste(out, sel, c, self.decode(data))

    def _read_shards(
        self, requests: _Requests, sel: tuple[slice, ...], out: np.ndarray, record: _Record | None
    ) -> None:
        shards = self.shards
        layout = self.layout
        assert shards is not None and layout is not None
        per = tuple(s // c for s, c in zip(shards, self.chunks, strict=True))
        limit = layout.nbytes + layout.n_chunks * self._stored_limit()
        whole: list[tuple[tuple[int, ...], Future[Any]]] = []
        partial: list[tuple[tuple[int, ...], list[tuple[int, ...]], Future[Any]]] = []
        # the shard index's byte range, as requested and as handed to zarr-python's store
        rng: tuple[str, int, int]
        rng = ("suffix", layout.nbytes, 0) if layout.at_end else ("range", 0, layout.nbytes)
        where: tuple[Any, ...] = rng[:2] if layout.at_end else rng
        for sc in product(*self._grid(sel, shards)):
            lo = [c * n for c, n in zip(sc, shards, strict=True)]
            part = [
                slice(max(a, s.start), min(a + n, s.stop))
                for a, n, s in zip(lo, shards, sel, strict=True)
            ]
            if all(
                p.start == a and (p.stop - p.start == n or p.stop == size)
                for p, a, n, size in zip(part, lo, shards, self.shape, strict=True)
            ):
                whole.append((sc, requests.submit(self.key(sc), None, limit)))
                continue
            inner = [
                tuple(s * p + i for s, p, i in zip(sc, per, local, strict=True))
                for local in product(
                    *(
                        range((q.start - a) // c, -(-(q.stop - a) // c))
                        for q, a, c in zip(part, lo, self.chunks, strict=True)
                    )
                )
            ]
            partial.append((sc, inner, requests.submit(self.key(sc), rng, None)))
        pieces: list[tuple[tuple[int, ...], Future[Any]]] = []
        for sc, inner, fut in partial:
            block = fut.result()
            if block is None:
                lo = [c * n for c, n in zip(sc, shards, strict=True)]
                self._fill_box(out, sel, lo, shards)
                continue
            index = decode_index(block, layout, where=self.key(sc))
            missing, bad = entry_masks(index, layout, None)
            if bool(bad.any()):
                raise LeanUnsupported("a damaged shard index")
            if record is not None:
                record(self.key(sc), where, bytes(block))
            grid_index = index.reshape(*per, 2)
            miss = missing.reshape(per)
            for c in inner:
                local = tuple(i % p for i, p in zip(c, per, strict=True))
                if miss[local]:
                    lo = [i * n for i, n in zip(c, self.chunks, strict=True)]
                    self._fill_box(out, sel, lo, self.chunks)
                    continue
                off, size = (int(v) for v in grid_index[local])
                if size > self._stored_limit():
                    raise LeanUnsupported("an inner chunk larger than its bound")
                piece = ("range", off, off + size)
                pieces.append((c, requests.submit(self.key(sc), piece, None)))
        for sc, fut in whole:
            data = fut.result()
            lo = [c * n for c, n in zip(sc, shards, strict=True)]
            if data is None:
                self._fill_box(out, sel, lo, shards)
                continue
            index = parse_whole_shard(data, layout, where=self.key(sc))
            if record is not None:
                record(self.key(sc), where, bytes(layout.cut(data)))
            missing = entry_masks(index, layout, None)[0].reshape(per)
            grid_index = index.reshape(*per, 2)
            mv = memoryview(data)
            for local in product(*(range(p) for p in per)):
                c = tuple(s * p + i for s, p, i in zip(sc, per, local, strict=True))
                clo = [i * n for i, n in zip(c, self.chunks, strict=True)]
                if any(a >= n for a, n in zip(clo, self.shape, strict=True)):
                    continue  # past the array's edge (a partial shard)
                if missing[local]:
                    self._fill_box(out, sel, clo, self.chunks)
                    continue
                off, size = (int(v) for v in grid_index[local])
                self._paste(out, sel, c, self.decode(mv[off : off + size]))
        for c, fut in pieces:
            self._paste(out, sel, c, self.decode(fut.result()))


_Record = Callable[[str, tuple[Any, ...] | None, bytes | None], None]


class _Requests:
    """The requests of one lean read, so that what they fetched can be handed on."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent: list[tuple[str, tuple[str, int, int] | None, Future[Any]]] = []

    def submit(
        self, key: str, byte_range: tuple[str, int, int] | None, limit: int | None
    ) -> Future[Any]:
        """Request *key* (or a byte range of it) in the client's threads."""
        fut = _submit(self.client, key, byte_range, limit)
        self.sent.append((key, byte_range, fut))
        return fut

    def hand_on(self, record: _Record) -> None:
        """Pass every answer received (waiting for those in flight) to *record*."""
        wait([fut for _, _, fut in self.sent])
        for key, byte_range, fut in self.sent:
            if fut.cancelled() or fut.exception() is not None:
                continue  # asked again by zarr-python, with its retries and messages
            if byte_range is None:
                seeded: tuple[Any, ...] | None = None
            elif byte_range[0] == "suffix":
                seeded = ("suffix", byte_range[1])
            else:
                seeded = byte_range
            record(key, seeded, fut.result())


def _submit(
    client: Any, key: str, byte_range: tuple[str, int, int] | None, limit: int | None
) -> Future[Any]:
    if byte_range is not None:  # a server ignoring the range may not send more than it
        kind, a, b = byte_range
        limit = a if kind == "suffix" else b - a

    def get() -> bytes | None:
        data: bytes | None = client.get(key, byte_range, limit)
        if byte_range is not None and data is not None:
            kind, a, b = byte_range
            if len(data) != (a if kind == "suffix" else b - a):
                raise LeanUnsupported(f"{key}: a short answer to a range request")
        return data

    fut: Future[Any] = client.executor.submit(get)
    return fut
