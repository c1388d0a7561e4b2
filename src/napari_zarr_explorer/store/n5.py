"""Read N5 containers as if they were Zarr v3 hierarchies.

N5 (the format of BigDataViewer, Fiji, n5-viewer, z5py and many light-sheet and EM pipelines)
stores each node's metadata in ``attributes.json`` and each block as a big-endian header
(mode, number of dimensions, block dimensions) followed by the compressed elements in
column-major order. :class:`N5Store` is a read-only store wrapped around any zarr store (our
confined local store, HTTP, S3, GCS) that presents such a container as Zarr v3:

- ``P/zarr.json`` is made from ``P/attributes.json``: a dataset becomes an array whose shape and
  chunk shape are N5's ``dimensions`` and ``blockSize`` reversed (N5 lists the fastest axis first;
  numpy, z5py and zarr-python 2's N5 store list it last), with the single array-to-bytes codec
  ``n5`` that carries N5's ``compression``; a group becomes a group. A group whose children
  ``s0``, ``s1``... are datasets (the n5-viewer and BigDataViewer conventions:
  ``downsamplingFactors``, ``scales``, ``pixelResolution``, ``resolution``) also gets OME-NGFF
  0.5 ``multiscales`` built from those attributes, so every part of this package shows it as a
  pyramid at its physical scale. N5's own attributes stay as they are.
- The chunk ``P/c/i/j/k`` is the N5 block ``P/k/j/i``; listings are translated back.

The ``n5`` codec (:class:`N5BlockCodec`) checks each block header against the dataset (mode,
number of dimensions, every block dimension at most the dataset's ``blockSize``) before anything
is decompressed, and decompresses with a bound of exactly the bytes the header declares
(raw, gzip/zlib, bzip2, xz, lz4, blosc, zstd), so a hostile block can neither allocate nor
inflate beyond one block.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from zarr.abc.codec import ArrayBytesCodec
from zarr.abc.store import Store

from napari_zarr_explorer.errors import CodecError, ExplorerError, MetadataError
from napari_zarr_explorer.store.locate import in_n5_container

if TYPE_CHECKING:
    from zarr.abc.store import ByteRequest
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, BufferPrototype, NDBuffer

    from napari_zarr_explorer.store.locate import Location

__all__ = [
    "CODEC_NAME",
    "DATA_TYPES",
    "N5BlockCodec",
    "N5BlockError",
    "N5Store",
    "codec_class",
    "decode_block",
    "is_n5",
    "maybe_wrap",
    "n5_to_zarr",
]

#: Name of the array-to-bytes codec in the Zarr v3 metadata made for N5 datasets.
CODEC_NAME = "n5"

ATTRIBUTES = "attributes.json"
_ZARR_JSON = "zarr.json"
_V2_DOCS = frozenset({".zarray", ".zgroup", ".zattrs", ".zmetadata"})
_DATASET_KEYS = ("dimensions", "blockSize", "dataType", "compression", "compressionType")

#: N5 ``dataType`` -> numpy dtype (big-endian, as stored).
DATA_TYPES: dict[str, str] = {
    "uint8": ">u1",
    "uint16": ">u2",
    "uint32": ">u4",
    "uint64": ">u8",
    "int8": ">i1",
    "int16": ">i2",
    "int32": ">i4",
    "int64": ">i8",
    "float32": ">f4",
    "float64": ">f8",
}

#: N5 compression ``type`` -> the numcodecs compressor decoding its block bodies.
COMPRESSIONS = ("raw", "gzip", "bzip2", "xz", "lz4", "blosc", "zstd")

_MAX_LEVELS = 64
_CACHE_SIZE = 4096
_UNITS = {
    "um": "micrometer",
    "µm": "micrometer",
    "μm": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "nm": "nanometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "pm": "picometer",
    "s": "second",
    "ms": "millisecond",
}


class N5BlockError(CodecError):
    """An N5 block is malformed, or declares a size its dataset does not allow.

    Readers treat it like any chunk that fails to decode (shown as the fill value, with a
    warning naming the key).
    """


# --------------------------------------------------------------------------------------------
# Metadata: attributes.json -> zarr.json
# --------------------------------------------------------------------------------------------


def _is_dataset(attrs: Mapping[str, Any]) -> bool:
    return "dimensions" in attrs and "dataType" in attrs and "blockSize" in attrs


def _ints(value: Any, *, positive: bool) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and (v > 0 if positive else v >= 0)
        for v in value
    )


def _compression(attrs: Mapping[str, Any], where: str) -> dict[str, Any]:
    comp = attrs.get("compression")
    if comp is None:  # N5 before 1.0: "compressionType": "gzip"
        legacy = attrs.get("compressionType", "raw")
        comp = {"type": legacy}
    if not isinstance(comp, dict) or not isinstance(comp.get("type"), str):
        raise MetadataError(
            f"{where}: 'compression' must be an object with a string 'type', found {comp!r}."
        )
    kind = comp["type"]
    if kind not in COMPRESSIONS:
        hint = (
            "N5 JPEG blocks (n5-jpeg) are lossy images without a documented layout; "
            "convert the dataset with n5-utils or Fiji first."
            if kind == "jpeg"
            else "Supported N5 compressions: " + ", ".join(COMPRESSIONS) + "."
        )
        raise CodecError(f"{where}: the N5 compression {kind!r} cannot be decoded here.", hint=hint)
    return dict(comp)


def n5_to_zarr(attrs: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """Return the Zarr v3 ``zarr.json`` document for one N5 ``attributes.json``.

    Parameters
    ----------
    attrs
        The parsed ``attributes.json`` (an empty mapping for an implicit group).
    where
        The file it came from, used in messages.

    Returns
    -------
    dict
        A Zarr v3 array document for a dataset (shape and chunk shape reversed, the ``n5``
        codec, fill value 0, N5's other attributes as attributes), else a group document.

    Raises
    ------
    MetadataError
        When a dataset's ``dimensions``, ``blockSize`` or ``dataType`` are malformed.
    CodecError
        When the compression is not one N5 defines or that can be decoded here.
    """
    if not _is_dataset(attrs):
        return {"zarr_format": 3, "node_type": "group", "attributes": dict(attrs)}
    dims, block, dtype = attrs["dimensions"], attrs["blockSize"], attrs["dataType"]
    if not _ints(dims, positive=False) or not dims:
        raise MetadataError(
            f"{where}: 'dimensions' must be a non-empty list of non-negative integers, "
            f"found {dims!r}."
        )
    if not _ints(block, positive=True) or len(block) != len(dims):
        raise MetadataError(
            f"{where}: 'blockSize' must be a list of positive integers, one per dimension of "
            f"{dims!r}, found {block!r}."
        )
    if len(dims) > 32 or math.prod(block) > 2**40:
        raise MetadataError(f"{where}: the blockSize {block!r} is absurdly large.")
    if dtype not in DATA_TYPES:
        raise MetadataError(
            f"{where}: the N5 dataType {dtype!r} cannot be read here.",
            hint="Readable N5 data types: " + ", ".join(DATA_TYPES) + ".",
        )
    comp = _compression(attrs, where)
    extra = {k: v for k, v in attrs.items() if k not in _DATASET_KEYS}
    doc: dict[str, Any] = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(reversed(dims)),
        "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(reversed(block))}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": CODEC_NAME, "configuration": {"compression": comp}}],
        "attributes": extra,
    }
    names = _axis_names(attrs.get("axes"), len(dims))
    if names is not None:
        doc["dimension_names"] = names
    return doc


def _axis_names(axes: Any, ndim: int) -> list[str] | None:
    if isinstance(axes, list) and len(axes) == ndim and all(isinstance(a, str) for a in axes):
        return [a.lower() for a in reversed(axes)]
    return None


def _floats(value: Any, ndim: int) -> list[float] | None:
    if (
        isinstance(value, list)
        and len(value) == ndim
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and all(math.isfinite(v) and v > 0 for v in value)
    ):
        return [float(v) for v in value]
    return None


def _unit(value: Any) -> str | None:
    if isinstance(value, list) and value and all(v == value[0] for v in value):
        value = value[0]
    if not isinstance(value, str) or not value:
        return None
    return _UNITS.get(value, _UNITS.get(value.lower(), value))


def _resolution(group: Mapping[str, Any], level0: Mapping[str, Any], ndim: int) -> Any:
    """Pixel size (N5 axis order) and unit from n5-viewer / BigDataViewer attributes."""
    for attrs in (group, level0):
        pr = attrs.get("pixelResolution")
        if isinstance(pr, dict):
            res = _floats(pr.get("dimensions"), ndim)
            if res is not None:
                return res, _unit(pr.get("unit"))
        res = _floats(pr, ndim) if isinstance(pr, list) else None
        if res is None:
            res = _floats(attrs.get("resolution"), ndim)
        if res is not None:
            return res, _unit(attrs.get("units", attrs.get("unit")))
    return [1.0] * ndim, None


def multiscales(
    group: Mapping[str, Any], levels: Sequence[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any] | None:
    """OME-NGFF 0.5 ``ome`` attributes for an N5 multiscale group, or None.

    Parameters
    ----------
    group
        The group's ``attributes.json``.
    levels
        ``(name, attributes)`` of its datasets ``s0``, ``s1``... in order.

    Returns
    -------
    dict or None
        ``{"version": "0.5", "multiscales": [...]}`` with one dataset per level, scale from the
        pixel resolution times the downsampling factors, and the half-pixel translation of
        BigDataViewer's mipmaps; None when the levels do not form a pyramid.
    """
    if not levels:
        return None
    dims0 = levels[0][1].get("dimensions")
    ndim = len(dims0) if isinstance(dims0, list) else 0
    if ndim == 0:
        return None
    scales = group.get("scales", group.get("downsamplingFactors"))
    res, unit = _resolution(group, levels[0][1], ndim)
    datasets: list[dict[str, Any]] = []
    for i, (path, attrs) in enumerate(levels):
        dims = attrs.get("dimensions")
        if not isinstance(dims, list) or not _ints(dims, positive=False) or len(dims) != ndim:
            return None
        factors = _floats(attrs.get("downsamplingFactors"), ndim)
        if factors is None and isinstance(scales, list) and i < len(scales):
            factors = _floats(scales[i], ndim)
        if factors is None:
            assert isinstance(dims0, list)
            factors = [
                max(1.0, float(round(a / b))) if b else 1.0
                for a, b in zip(dims0, dims, strict=True)
            ]
        scale = [r * f for r, f in zip(res, factors, strict=True)]
        shift = [r * (f - 1) / 2 for r, f in zip(res, factors, strict=True)]
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": scale[::-1]}]
        if any(shift):
            transforms.append({"type": "translation", "translation": shift[::-1]})
        datasets.append({"path": path, "coordinateTransformations": transforms})
    names = _axis_names(group.get("axes", levels[0][1].get("axes")), ndim)
    if names is None:
        defaults = {4: ["c", "z", "y", "x"], 5: ["t", "c", "z", "y", "x"]}
        names = (
            ["z", "y", "x"][-ndim:]
            if ndim <= 3
            else defaults.get(ndim, [f"dim_{i}" for i in range(ndim)])
        )
    axes: list[dict[str, Any]] = []
    for n in names:
        axis: dict[str, Any] = {"name": n}
        if n in ("x", "y", "z"):
            axis["type"] = "space"
            if unit:
                axis["unit"] = unit
        elif n == "t":
            axis["type"] = "time"
        elif n == "c":
            axis["type"] = "channel"
        axes.append(axis)
    entry: dict[str, Any] = {"axes": axes, "datasets": datasets}
    title = group.get("name")
    if isinstance(title, str):
        entry["name"] = title
    return {"version": "0.5", "multiscales": [entry]}


# --------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------


def _lz4_blocks(body: bytes, bound: int) -> bytes:
    """Decode an N5 lz4 body of *bound* bytes.

    n5-java writes lz4-java's ``LZ4BlockOutputStream`` framing (``LZ4Block`` magic, each
    block with its sizes); z5py writes one bare LZ4 block, whose decoded size is the header's.
    """
    import numcodecs

    if not body.startswith(b"LZ4Block"):
        return bytes(numcodecs.LZ4().decode(struct.pack("<I", bound) + body))
    out = bytearray()
    pos = 0
    n = len(body)
    lz4 = numcodecs.LZ4()
    while pos < n:
        if body[pos : pos + 8] != b"LZ4Block" or pos + 21 > n:
            raise N5BlockError("an lz4 block body lacks the LZ4Block framing")
        token = body[pos + 8]
        clen, dlen = struct.unpack_from("<ii", body, pos + 9)
        pos += 21
        if clen < 0 or dlen < 0 or pos + clen > n:
            raise N5BlockError("an lz4 block body is truncated")
        if dlen == 0:  # end mark
            break
        if len(out) + dlen > bound:
            raise N5BlockError(
                f"an lz4 block body declares more than the {bound} bytes its header allows"
            )
        payload = body[pos : pos + clen]
        pos += clen
        if token & 0xF0 == 0x10:  # stored uncompressed
            out += payload[:dlen]
        else:
            out += bytes(lz4.decode(struct.pack("<I", dlen) + payload))
    return bytes(out)


def _decompress(comp: Mapping[str, Any], body: bytes, nbytes: int) -> bytes:
    import numcodecs

    from napari_zarr_explorer.store.decode import guarded_v2_compressor

    kind = comp.get("type")
    if kind == "raw":
        return body
    if kind == "lz4":
        return _lz4_blocks(body, nbytes)
    codec: Any
    if kind == "gzip":
        codec = numcodecs.GZip()  # the guard reads gzip and zlib (useZlib) alike
    elif kind == "bzip2":
        codec = numcodecs.BZ2()
    elif kind == "xz":
        codec = numcodecs.LZMA()
    elif kind == "blosc":
        codec = numcodecs.Blosc()
    elif kind == "zstd":
        codec = numcodecs.Zstd()
    else:
        raise N5BlockError(f"the N5 compression {kind!r} cannot be decoded here")
    return bytes(guarded_v2_compressor(codec, nbytes).decode(body))


def decode_block(
    raw: bytes,
    *,
    dtype: str | np.dtype[Any],
    block_shape: Sequence[int],
    compression: Mapping[str, Any],
) -> npt.NDArray[Any]:
    """Decode one N5 block into an array of the dataset's block shape (C order, native).

    Parameters
    ----------
    raw
        The stored block: header and body.
    dtype
        The N5 data type (``"uint16"``...) or the numpy dtype of the array.
    block_shape
        The dataset's block shape in numpy order (N5's ``blockSize`` reversed).
    compression
        N5's ``compression`` object.

    Returns
    -------
    numpy.ndarray
        The block, zero-padded where the stored block is smaller (edge blocks).

    Raises
    ------
    N5BlockError
        When the header is malformed, declares another number of dimensions, a dimension larger
        than the dataset's block size, or a mode other than default, or when the body does not
        decode to exactly the declared number of elements.
    """
    ndim = len(block_shape)
    if len(raw) < 4:
        raise N5BlockError("the N5 block is shorter than its header")
    mode, nd = struct.unpack_from(">HH", raw, 0)
    if nd != ndim:
        raise N5BlockError(f"the N5 block header declares {nd} dimensions, the dataset has {ndim}")
    head = 4 + 4 * nd
    if mode == 1:
        head += 4
    if len(raw) < head:
        raise N5BlockError("the N5 block is shorter than its header")
    dims_n5 = struct.unpack_from(f">{nd}I", raw, 4)
    dims = tuple(reversed(dims_n5))
    if any(d > b for d, b in zip(dims, block_shape, strict=True)):
        raise N5BlockError(
            f"the N5 block header declares the block size {list(dims_n5)}, larger than the "
            f"dataset's blockSize {list(reversed(block_shape))}; the block is corrupt or "
            "hostile and was not decompressed"
        )
    count = math.prod(dims)
    if mode == 1:
        (declared,) = struct.unpack_from(">I", raw, 4 + 4 * nd)
        if declared != count:
            raise N5BlockError(
                f"the N5 block is a varlength block of {declared} elements, not the "
                f"{count} of its {list(dims_n5)} shape; only array blocks are read"
            )
    elif mode != 0:
        raise N5BlockError(f"the N5 block mode {mode} (object block) is not array data")
    dt = np.dtype(DATA_TYPES[dtype]) if isinstance(dtype, str) else np.dtype(dtype)
    dt = dt.newbyteorder(">") if dt.itemsize > 1 else dt
    nbytes = count * dt.itemsize
    try:
        body = _decompress(compression, bytes(raw[head:]), nbytes)
    except N5BlockError:
        raise
    except ExplorerError as exc:  # the size guard: a decompression bomb
        raise N5BlockError(exc.message) from None
    except Exception as exc:
        kind = compression.get("type")
        raise N5BlockError(f"the {kind} body of the N5 block cannot be decoded: {exc}") from None
    if len(body) < nbytes or (len(body) != nbytes and compression.get("type") != "raw"):
        raise N5BlockError(
            f"the N5 block holds {len(body)} bytes of data, its header declares "
            f"{nbytes} ({list(dims_n5)} x {dt.itemsize})"
        )
    data = np.frombuffer(body, dtype=dt, count=count).reshape(dims).astype(dt.newbyteorder("="))
    if dims == tuple(block_shape):
        return data
    out = np.zeros(tuple(block_shape), dtype=data.dtype)
    out[tuple(slice(0, d) for d in dims)] = data
    return out


@dataclass(frozen=True)
class N5BlockCodec(ArrayBytesCodec):
    """Zarr v3 array-to-bytes codec for N5 blocks (read only).

    Its configuration is N5's ``compression`` object. Each block is decoded by
    :func:`decode_block`, header checked first.
    """

    compression: Mapping[str, Any]
    is_fixed_size = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> N5BlockCodec:
        """Build the codec from its ``{"name": "n5", "configuration": {...}}`` document."""
        cfg = data.get("configuration") or {}
        comp = cfg.get("compression") if isinstance(cfg, dict) else None
        if not isinstance(comp, dict):
            raise MetadataError("the n5 codec needs a 'compression' object")
        return cls(compression=dict(comp))

    def to_dict(self) -> dict[str, Any]:
        """Return the codec's JSON document."""
        return {"name": CODEC_NAME, "configuration": {"compression": dict(self.compression)}}

    def __hash__(self) -> int:
        return hash(json.dumps(dict(self.compression), sort_keys=True, default=str))

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        dtype = np.dtype(chunk_spec.dtype.to_native_dtype())
        raw = chunk_bytes.to_bytes()
        arr = await asyncio.to_thread(
            decode_block,
            raw,
            dtype=dtype,
            block_shape=tuple(chunk_spec.shape),
            compression=self.compression,
        )
        return chunk_spec.prototype.nd_buffer.from_numpy_array(arr)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer:
        raise CodecError(
            "N5 containers are opened read-only; write the data as Zarr "
            "(napari-zarr-explorer recompress SRC.n5 DST.zarr)."
        )

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        """Not known before encoding (N5 is read only here)."""
        raise NotImplementedError


_CODEC_LOCK = threading.Lock()
_REGISTERED: list[bool] = []


def codec_class() -> type[N5BlockCodec]:
    """Return the ``n5`` codec class, registered with zarr-python on first use."""
    with _CODEC_LOCK:
        if not _REGISTERED:
            from zarr.registry import register_codec

            register_codec(CODEC_NAME, N5BlockCodec)
            _REGISTERED.append(True)
    return N5BlockCodec


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


def _chunk_to_n5(key: str) -> str | None:
    """``P/c/i/j/k`` -> ``P/k/j/i`` (None when *key* is not a chunk key)."""
    parts = key.split("/")
    for pos in range(len(parts) - 1, -1, -1):
        if parts[pos] == "c":
            idx = parts[pos + 1 :]
            if idx and all(p.isdigit() for p in idx):
                return "/".join([*parts[:pos], *reversed(idx)])
            return None
        if not parts[pos].isdigit():
            return None
    return None


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def _slice(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest

    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[-byte_range.suffix :] if byte_range.suffix else b""
    raise TypeError(f"unknown byte range {byte_range!r}")


class N5Store(Store):
    """A read-only view of an N5 container as a Zarr v3 hierarchy.

    Parameters
    ----------
    inner
        The store holding the N5 container (local, HTTP, S3, GCS): every byte is read through
        it, so its confinement, limits and retries apply.
    where
        Where the container is, for messages.
    """

    def __init__(self, inner: Store, where: str = "") -> None:
        super().__init__(read_only=True)
        codec_class()
        self._n5_inner = inner
        self.where = where or str(inner)
        self._cache: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._lock = threading.Lock()

    # -- pickling (dask workers) and identity
    def __getstate__(self) -> dict[str, Any]:
        return {"inner": self._n5_inner, "where": self.where}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["inner"], state["where"])  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, N5Store) and other._n5_inner == self._n5_inner

    def __hash__(self) -> int:
        return id(self)

    def __str__(self) -> str:
        return self.where

    def __repr__(self) -> str:
        return f"N5Store({self.where!r})"

    @property
    def inner(self) -> Store:
        """The wrapped store."""
        return self._n5_inner

    # -- capabilities
    @property
    def supports_writes(self) -> bool:
        """False: N5 containers are read only."""
        return False

    @property
    def supports_deletes(self) -> bool:
        """False: N5 containers are read only."""
        return False

    @property
    def supports_listing(self) -> bool:
        """Whether the wrapped store can list."""
        return bool(self._n5_inner.supports_listing)

    async def set(self, key: str, value: Buffer) -> None:
        """Refuse: N5 containers are read only."""
        raise PermissionError("N5 containers are opened read-only")

    async def delete(self, key: str) -> None:
        """Refuse: N5 containers are read only."""
        raise PermissionError("N5 containers are opened read-only")

    async def set_partial_values(self, key_start_values: Iterable[Any]) -> None:
        """Refuse: N5 containers are read only."""
        raise PermissionError("N5 containers are opened read-only")

    # -- metadata
    async def _attributes(self, path: str) -> dict[str, Any] | None:
        """Return the parsed ``attributes.json`` of *path* (None when absent); cached, bounded."""
        path = path.strip("/")
        with self._lock:
            if path in self._cache:
                self._cache.move_to_end(path)
                return self._cache[path]
        # the store layer's bounded read: size checked before the body, limit from the env
        from napari_zarr_explorer.store.meta import _read_json_async

        doc = await _read_json_async(
            self._n5_inner, _join(path, ATTRIBUTES), where=self.where.rstrip("/")
        )
        with self._lock:
            self._cache[path] = doc
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return doc

    async def _implicit_group(self, path: str) -> bool:
        """N5 groups need no attributes.json: a folder with children is a group."""
        if not path or not self._n5_inner.supports_listing:
            return not path
        try:
            async for _ in self._n5_inner.list_dir(path.strip("/") + "/"):
                return True
        except (FileNotFoundError, NotADirectoryError, OSError):
            return False
        return False

    async def _levels(self, path: str) -> list[tuple[str, dict[str, Any]]]:
        levels: list[tuple[str, dict[str, Any]]] = []
        for i in range(_MAX_LEVELS):
            attrs = await self._attributes(_join(path, f"s{i}"))
            if attrs is None or not _is_dataset(attrs):
                break
            levels.append((f"s{i}", attrs))
        return levels

    async def _document(self, path: str) -> dict[str, Any] | None:
        attrs = await self._attributes(path)
        where = f"{self.where.rstrip('/')}/{_join(path, ATTRIBUTES)}"
        if attrs is None:
            if not await self._implicit_group(path):
                return None
            attrs = {}
        doc = n5_to_zarr(attrs, where=where)
        if doc["node_type"] == "group" and "ome" not in attrs and "multiscales" not in attrs:
            ome = multiscales(attrs, await self._levels(path))
            if ome is not None:
                doc["attributes"] = {**attrs, "ome": ome}
        return doc

    async def _metadata_bytes(self, path: str) -> bytes | None:
        doc = await self._document(path)
        return None if doc is None else json.dumps(doc).encode()

    # -- reading
    def _translate(self, key: str) -> tuple[str, str | None]:
        """Return ``("meta", path)``, ``("chunk", n5key)``, ``("none", None)`` or raw."""
        parts = key.rsplit("/", 1)
        name = parts[-1]
        if name == _ZARR_JSON:
            return "meta", parts[0] if len(parts) == 2 else ""
        if name in _V2_DOCS:
            return "none", None
        n5key = _chunk_to_n5(key)
        if n5key is not None:
            return "chunk", n5key
        return "raw", key

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        """Read *key*: ``zarr.json`` made from ``attributes.json``, chunks from N5 blocks."""
        kind, target = self._translate(key)
        if kind == "meta":
            assert target is not None
            data = await self._metadata_bytes(target)
            return None if data is None else prototype.buffer.from_bytes(_slice(data, byte_range))
        if kind == "none" or target is None:
            return None
        return await self._n5_inner.get(target, prototype, byte_range)

    async def get_bounded(self, key: str, limit: int) -> bytes | None:
        """Read *key* whole if it has at most *limit* bytes (None when absent)."""
        from napari_zarr_explorer.store.limits import metadata_too_large

        kind, target = self._translate(key)
        if kind == "meta":
            assert target is not None
            data = await self._metadata_bytes(target)
            if data is not None and len(data) > limit:
                raise metadata_too_large(f"{self.where.rstrip('/')}/{key}", len(data), limit)
            return data
        if kind == "none" or target is None:
            return None
        bounded = getattr(self._n5_inner, "get_bounded", None)
        if bounded is not None:
            result: bytes | None = await bounded(target, limit)
            return result
        from zarr.core.buffer import default_buffer_prototype

        buf = await self._n5_inner.get(target, prototype=default_buffer_prototype())
        raw = None if buf is None else bytes(buf.to_bytes())
        if raw is not None and len(raw) > limit:
            raise metadata_too_large(f"{self.where.rstrip('/')}/{key}", len(raw), limit)
        return raw

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        """Read several keys (translated like :meth:`get`)."""
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        """Whether the translated key exists."""
        kind, target = self._translate(key)
        if kind == "meta":
            assert target is not None
            return await self._document(target) is not None
        if kind == "none" or target is None:
            return False
        return bool(await self._n5_inner.exists(target))

    async def getsize(self, key: str) -> int:
        """Size of the translated object (of the made ``zarr.json`` for metadata)."""
        kind, target = self._translate(key)
        if kind == "meta":
            assert target is not None
            data = await self._metadata_bytes(target)
            if data is None:
                raise FileNotFoundError(key)
            return len(data)
        if kind == "none" or target is None:
            raise FileNotFoundError(key)
        return int(await self._n5_inner.getsize(target))

    # -- listing
    async def _ndim_of(self, path: str) -> int | None:
        attrs = await self._attributes(path)
        if attrs is not None and _is_dataset(attrs) and isinstance(attrs["dimensions"], list):
            return len(attrs["dimensions"])
        return None

    async def _to_zarr_keys(self, raw_keys: list[str]) -> list[str]:
        folders = sorted(
            {k[: -len(ATTRIBUTES)].rstrip("/") for k in raw_keys if k.split("/")[-1] == ATTRIBUTES},
            key=len,
            reverse=True,
        )
        ndims = {f: await self._ndim_of(f) for f in folders}
        out: list[str] = []
        for key in raw_keys:
            parts = key.split("/")
            if parts[-1] == ATTRIBUTES:
                out.append(_join(*parts[:-1], _ZARR_JSON))
                continue
            for folder in folders:
                nd = ndims[folder]
                if nd is None or not (folder == "" or key.startswith(folder + "/")):
                    continue
                rest = key[len(folder) + 1 :].split("/") if folder else parts
                if len(rest) == nd and all(p.isdigit() for p in rest):
                    out.append(_join(folder, "c", *reversed(rest)))
                    break
            else:
                out.append(key)
        return out

    async def _collect(self, agen: AsyncIterator[str]) -> list[str]:
        return [k async for k in agen]

    async def list(self) -> AsyncIterator[str]:
        """Every key, as Zarr v3 keys."""
        for k in await self._to_zarr_keys(await self._collect(self._n5_inner.list())):
            yield k

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """Keys below *prefix*, as Zarr v3 keys."""
        # N5 chunk keys are the reverse of ours: list the node's whole subtree and translate.
        node = prefix.rstrip("/")
        parts = node.split("/") if node else []
        if "c" in parts:
            node = "/".join(parts[: parts.index("c")])
        raw_prefix = f"{node}/" if node else ""
        raw = await self._collect(self._n5_inner.list_prefix(raw_prefix))
        for k in await self._to_zarr_keys(raw):
            if k.startswith(prefix):
                yield k

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """Children of *prefix*, as Zarr v3 names."""
        node = prefix.rstrip("/")
        names = await self._collect(self._n5_inner.list_dir(f"{node}/" if node else ""))
        if await self._ndim_of(node) is not None:
            yield _ZARR_JSON
            if any(n.isdigit() for n in names):
                yield "c"
            return
        if names or not node:  # N5 groups need no attributes.json
            yield _ZARR_JSON
        for n in names:
            if n != ATTRIBUTES:
                yield n


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------

_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata")


def is_n5(path: str | Path) -> bool:
    """Return True when the local folder *path* is an N5 container or a node inside one."""
    p = Path(path)
    try:
        return (p / ATTRIBUTES).is_file() and not any((p / m).exists() for m in _ZARR_MARKERS)
    except OSError:
        return False


def maybe_wrap(store: Store, location: Location) -> Store:
    """Wrap *store* in :class:`N5Store` when *location* is an N5 container.

    Local folders are N5 when they hold ``attributes.json`` and no Zarr metadata; remote
    locations when a path segment ends with ``.n5`` (nothing is requested to decide).
    """
    if isinstance(store, N5Store):
        return store
    n5 = is_n5(location.url) if location.is_local else in_n5_container(location.url)
    return N5Store(store, where=location.url) if n5 else store
