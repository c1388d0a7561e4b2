"""The guarded decoder: no chunk may decompress to more than its declared size.

Compressors with a size in their header (zstd, blosc, lz4) are checked before decoding; stream
compressors (gzip, zlib, bz2, lzma) are decoded with a bounded output. A chunk that would exceed
its bound raises :class:`ChunkSizeError` before the oversized output is produced.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from napari_zarr_explorer._compat import numcodecs_codec_of, set_codec_pipeline, v2_codec
from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.store.exact import (
    ExactSizeError,
    blosc_header,
    check_zstd_segments,
    zstd_frame,
)

__all__ = [
    "ChunkSizeError",
    "bulk_chunk_checker",
    "check_header_size",
    "chunk_bound",
    "decode_bounded",
    "fast_chunk_decoder",
    "guard_decoding",
    "guarded_v2_compressor",
    "v2_expansion",
]


class ChunkSizeError(ExplorerError, ValueError):
    """A stored chunk would decompress to more bytes than its declared shape holds.

    Readers treat it like any chunk that fails to decode (shown as the fill value, with a
    warning naming the key); it is raised before the oversized output is produced.
    """


_STREAM_CODECS = frozenset({"gzip", "zlib", "bz2", "lzma"})
_HEADER_CODECS = frozenset({"zstd", "blosc", "lz4"})
_SLACK = 1 << 20


def _too_big(codec: str, size: int | None, bound: int) -> ChunkSizeError:
    got = f"{size} bytes" if size is not None else "more bytes"
    return ChunkSizeError(
        f"a {codec} chunk would decompress to {got}, more than the {bound} bytes its chunk "
        "shape allows; the chunk is corrupt or hostile and was not decompressed."
    )


def _zstd_check(data: bytes | memoryview, bound: int) -> None:
    """Check the decompressed size of zstd frames from their headers, without decoding."""
    mv = memoryview(data).cast("B")
    pos = 0
    total = 0
    while pos + 4 <= len(mv):
        frame = zstd_frame(mv, pos)
        if frame is None:
            return  # not zstd, or cut short: let the codec report it
        if frame.content_size is not None:
            if total + frame.content_size > bound:
                raise _too_big("zstd", total + frame.content_size, bound)
        elif total + frame.decoded > bound:
            raise _too_big("zstd", None, bound)
        if not frame.complete:
            return
        pos = frame.end
        total += frame.content_size if frame.content_size is not None else frame.decoded


def _precheck(codec: str, data: Any, bound: int) -> None:
    mv = memoryview(data).cast("B")
    if codec == "zstd":
        _zstd_check(mv, bound)
    elif codec == "blosc":
        header = blosc_header(mv)
        if header is not None and header.nbytes > bound:
            raise _too_big("blosc", header.nbytes, bound)
    elif codec == "lz4" and len(mv) >= 4:
        nbytes = int.from_bytes(mv[0:4], "little")
        if nbytes > bound:
            raise _too_big("lz4", nbytes, bound)


def check_header_size(codec: str, data: Any, bound: int) -> None:
    """Refuse *data* whose header (zstd, blosc, lz4) declares more than *bound* bytes of output.

    Raises
    ------
    ChunkSizeError
        When the declared size is larger than *bound*; nothing is decompressed.
    """
    _precheck(codec, data, bound)


def _bounded_stream(codec: str, data: Any, bound: int) -> bytes:
    """Decompress gzip/zlib/bz2/lzma data, refusing output beyond *bound* bytes."""
    import bz2
    import lzma
    import zlib

    raw = bytes(memoryview(data).cast("B"))
    out = bytearray()
    while raw:
        if codec in ("gzip", "zlib"):
            d: Any = zlib.decompressobj(zlib.MAX_WBITS | 32)
        elif codec == "bz2":
            d = bz2.BZ2Decompressor()
        else:
            d = lzma.LZMADecompressor()
        out += d.decompress(raw, bound + 1 - len(out))
        tail = bool(getattr(d, "unconsumed_tail", b""))
        if len(out) > bound or (tail and len(out) >= bound):
            raise _too_big(codec, None, bound)
        if codec in ("gzip", "zlib"):
            if not d.eof:
                raise ValueError(f"truncated {codec} data")
            raw = d.unused_data if codec == "gzip" else b""
        else:
            if not d.eof:
                if getattr(d, "needs_input", False):
                    raise ValueError(f"truncated {codec} data")
                raise _too_big(codec, None, bound)
            raw = d.unused_data
    return bytes(out)


def chunk_bound(nbytes: int, expansion: float = 1.0) -> int:
    """Most bytes a chunk of *nbytes* decoded bytes may decompress to before it is refused.

    *expansion* allows for filters whose output is larger than the array's bytes (``astype``).
    """
    return int(nbytes * max(expansion, 1.0)) + nbytes // 8 + _SLACK


def guarded_v2_compressor(compressor: Any, bound: int) -> Any:
    """Wrap a numcodecs *compressor* so that decoding refuses output beyond *bound* bytes."""
    import numcodecs.abc

    cid = getattr(compressor, "codec_id", None)
    from napari_zarr_explorer.store.imaging import guard_v2

    bounded = guard_v2(compressor, bound)  # imagecodecs and zfpy: sizes not in a known header
    if bounded is not None:
        return bounded
    if cid not in _STREAM_CODECS | _HEADER_CODECS:
        return compressor
    if cid == "lzma" and getattr(compressor, "format", 1) not in (0, 1, 2):
        return compressor  # raw LZMA streams need their filters: decode as configured

    class _Guarded(numcodecs.abc.Codec):  # type: ignore[misc]
        codec_id = cid

        def encode(self, buf: Any) -> Any:
            return compressor.encode(buf)

        def decode(self, buf: Any, out: Any = None) -> Any:
            if cid in _STREAM_CODECS:
                result = _bounded_stream(str(cid), buf, bound)
                if out is not None:
                    memoryview(out).cast("B")[: len(result)] = result
                    return out
                return result
            _precheck(str(cid), buf, bound)
            return compressor.decode(buf, out)

        def get_config(self) -> Any:
            return compressor.get_config()

    return _Guarded()


def _guard_v3_codecs(codecs: Any) -> list[Any]:
    from dataclasses import dataclass as _dc

    import numpy as _np
    from zarr.abc.codec import BytesBytesCodec
    from zarr.codecs import BloscCodec, GzipCodec, ShardingCodec, ZstdCodec

    @_dc(frozen=True)
    class _Guarded(BytesBytesCodec):
        inner: Any
        kind: str
        is_fixed_size = False

        async def _decode_single(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
            import asyncio

            itemsize = _np.dtype(chunk_spec.dtype.to_native_dtype()).itemsize
            bound = chunk_bound(math.prod(chunk_spec.shape) * itemsize)
            data = chunk_bytes.as_numpy_array()
            if self.kind in _STREAM_CODECS:
                out = await asyncio.to_thread(_bounded_stream, self.kind, data, bound)
                return chunk_spec.prototype.buffer.from_bytes(out)
            if self.kind == "imagecodecs_lzw":  # imagecodecs' bytes codecs with no size header
                from napari_zarr_explorer.store.imaging import bounded_decode

                inner = numcodecs_codec_of(self.inner)
                out = await asyncio.to_thread(bounded_decode, inner, data, bound)
                return chunk_spec.prototype.buffer.from_bytes(bytes(out))
            _precheck(self.kind, data, bound)
            return await self.inner._decode_single(chunk_bytes, chunk_spec)

        async def _encode_single(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
            return await self.inner._encode_single(chunk_bytes, chunk_spec)

        def compute_encoded_size(self, input_byte_length: int, chunk_spec: Any) -> int:
            return int(self.inner.compute_encoded_size(input_byte_length, chunk_spec))

        def to_dict(self) -> Any:
            return self.inner.to_dict()

    from napari_zarr_explorer.codec_spec import numcodecs_twin
    from napari_zarr_explorer.store.imaging import guard_v3

    out: list[Any] = []
    for codec in codecs:
        # imagecodecs_* codecs, whichever implementation zarr chose: decoded by our wrapper
        codec = numcodecs_twin(codec) or codec
        bounded = guard_v3(codec)  # numcodecs.* array->bytes codecs (zfpy, imagecodecs)
        if bounded is not None:
            out.append(bounded)
        elif isinstance(codec, ShardingCodec):
            out.append(
                ShardingCodec(
                    chunk_shape=codec.chunk_shape,
                    codecs=_guard_v3_codecs(codec.codecs),
                    index_codecs=codec.index_codecs,
                    index_location=codec.index_location,
                )
            )
        elif isinstance(codec, ZstdCodec):
            out.append(_Guarded(codec, "zstd"))
        elif isinstance(codec, BloscCodec):
            out.append(_Guarded(codec, "blosc"))
        elif isinstance(codec, GzipCodec):
            out.append(_Guarded(codec, "gzip"))
        elif isinstance(codec, BytesBytesCodec) and numcodecs_codec_of(codec) is not None:
            cid = getattr(numcodecs_codec_of(codec), "codec_id", "")
            # lzw: imagecodecs' bytes codec with no size header, decoded with a bound
            if (
                cid in _HEADER_CODECS
                or (cid in _STREAM_CODECS and cid != "lzma")
                or cid == "imagecodecs_lzw"
            ):
                out.append(_Guarded(codec, cid))
            else:
                out.append(codec)
        else:
            out.append(codec)
    return out


def v2_expansion(filters: Any) -> float:
    """How much larger than the array's bytes the compressor's output may be (astype filters)."""
    factor = 1.0
    for f in filters or ():
        try:
            cfg = f.get_config()
            dt, ast = cfg.get("dtype"), cfg.get("astype")
            if dt and ast:
                import numpy as _np

                factor *= max(1.0, _np.dtype(ast).itemsize / _np.dtype(dt).itemsize)
        except Exception:  # an unusual filter: keep the generous default
            factor *= 2
    return factor


def guard_decoding(array: Any) -> Any:
    """Make every chunk of *array* refuse to decompress beyond its declared size.

    Replaces the array's codec pipeline with one whose compressors check the decompressed size
    before (zstd, blosc, lz4: from their headers) or while (gzip, zlib, bz2, lzma: bounded
    streaming) decompressing. A chunk that would exceed it raises :class:`ChunkSizeError`.

    Raises
    ------
    ExplorerError
        When the guard cannot be installed (an unknown zarr-python layout): the array is
        refused rather than decoded without the guard.
    """
    try:
        import numpy as _np
        from zarr.core.metadata import ArrayV2Metadata, ArrayV3Metadata
        from zarr.registry import get_pipeline_class

        md = array.metadata
        if isinstance(md, ArrayV2Metadata):
            nbytes = math.prod(md.chunks) * _np.dtype(md.dtype.to_native_dtype()).itemsize
            bound = chunk_bound(nbytes, v2_expansion(md.filters))
            comp = md.compressor
            if comp is not None:
                comp = guarded_v2_compressor(comp, bound)
            codec = v2_codec(md.filters, comp)
            pipeline = get_pipeline_class().from_codecs([codec])
        elif isinstance(md, ArrayV3Metadata):
            pipeline = get_pipeline_class().from_codecs(_guard_v3_codecs(md.codecs))
        else:
            raise TypeError(f"unknown array metadata {type(md).__name__}")
        set_codec_pipeline(array, pipeline)
    except Exception as exc:
        raise ExplorerError(
            f"the decompression guard cannot be installed on this array ({type(exc).__name__}: "
            f"{exc}); it is refused rather than decoded without a size limit.",
            hint="This zarr-python version is not supported; install the version named in the "
            "package requirements.",
        ) from None
    return array


# --------------------------------------------------------------------------------------------
# Direct chunk decoders (no zarr-python pipeline) for simple, common pipelines
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _V2Decode:
    dtype: np.dtype[Any]
    chunks: tuple[int, ...]
    order: str
    compressor: Any
    filters: tuple[Any, ...]

    def __call__(self, data: bytes) -> npt.NDArray[Any]:
        buf: Any = data
        if self.compressor is not None:
            buf = self.compressor.decode(buf)
        for f in reversed(self.filters):
            buf = f.decode(buf)
        arr = np.frombuffer(np.ascontiguousarray(buf).view(np.uint8).data, dtype=self.dtype)
        return arr.reshape(self.chunks, order=self.order)  # type: ignore[call-overload,no-any-return]


@dataclass(frozen=True)
class _V3Decode:
    dtype: np.dtype[Any]
    chunks: tuple[int, ...]
    steps: tuple[Any, ...]  # bytes->bytes decoders in decode order (callables)

    def __call__(self, data: bytes) -> npt.NDArray[Any]:
        buf: Any = data
        for step in self.steps:
            buf = step(buf)
        arr = np.frombuffer(np.ascontiguousarray(buf).view(np.uint8).data, dtype=self.dtype)
        return arr.reshape(self.chunks)


def _crc_strip(data: Any) -> bytes:
    import crc32c

    b = bytes(data)
    if crc32c.crc32c(b[:-4]) != int(np.frombuffer(b[-4:], dtype="<u4")[0]):
        raise ExplorerError("A source chunk failed its crc32c checksum.")
    return b[:-4]


def _bounded(codec: Any, bound: int) -> Any:
    """Return *codec* refusing to decompress beyond *bound* bytes (decompression bombs)."""
    return guarded_v2_compressor(codec, bound)


def _v3_steps(
    codecs: Sequence[Any], dtype: np.dtype[Any], bound: int
) -> tuple[np.dtype[Any], tuple[Any, ...]] | None:
    """Decode steps for a simple v3 pipeline, or None when zarr-python must decode it.

    Decompressors refuse output beyond *bound* bytes.
    """
    import numcodecs

    if not codecs:
        return None
    first = codecs[0]
    name0 = first if isinstance(first, str) else first.get("name")
    if name0 != "bytes":
        return None
    conf0 = {} if isinstance(first, str) else (first.get("configuration") or {})
    endian = conf0.get("endian", "little")
    dt = dtype.newbyteorder("<" if endian == "little" else ">") if dtype.itemsize > 1 else dtype
    steps: list[Any] = []
    for c in codecs[1:]:
        name = c if isinstance(c, str) else c.get("name")
        if name == "zstd":
            steps.append(_bounded(numcodecs.Zstd(), bound).decode)
        elif name == "gzip":
            steps.append(_bounded(numcodecs.GZip(), bound).decode)
        elif name == "blosc":
            steps.append(_bounded(numcodecs.Blosc(), bound).decode)
        elif name == "crc32c":
            steps.append(_crc_strip)
        else:
            return None
    return dt, tuple(reversed(steps))


def fast_chunk_decoder(
    md: Mapping[str, Any], dtype: np.dtype[Any]
) -> tuple[Callable[[bytes], npt.NDArray[Any]], tuple[int, ...]] | None:
    """Return a direct decoder for the chunks of an array with a simple pipeline, or None.

    Parameters
    ----------
    md
        The array's checked metadata (``zarr.Array.metadata.to_dict()``).
    dtype
        The array's data type.

    Returns
    -------
    tuple or None
        ``(decode, chunk_shape)``: ``decode(stored_bytes)`` returns one chunk as an array; its
        compressor refuses to decompress beyond the chunk's size. None when zarr-python must
        decode (an unusual pipeline).
    """
    import numcodecs

    try:
        if md.get("zarr_format") == 2:
            if md.get("order", "C") not in ("C", "F"):
                return None
            comp = md.get("compressor")
            filters = tuple(numcodecs.get_codec(dict(f)) for f in (md.get("filters") or []))
            nbytes = math.prod(md["chunks"]) * np.dtype(md["dtype"]).itemsize
            bound = chunk_bound(nbytes, v2_expansion(filters))
            decode: Callable[[bytes], npt.NDArray[Any]] = _V2Decode(
                dtype=np.dtype(md["dtype"]),
                chunks=tuple(md["chunks"]),
                order=str(md.get("order", "C")),
                compressor=None
                if comp is None
                else _bounded(numcodecs.get_codec(dict(comp)), bound),
                filters=filters,
            )
            return decode, tuple(md["chunks"])
        grid = md.get("chunk_grid") or {}
        if not isinstance(grid, Mapping) or grid.get("name") != "regular":
            return None
        chunks = tuple(grid["configuration"]["chunk_shape"])
        bound = chunk_bound(math.prod(chunks) * np.dtype(dtype).itemsize)
        steps = _v3_steps(list(md.get("codecs") or []), np.dtype(dtype), bound)
        if steps is None:
            return None
        return _V3Decode(dtype=steps[0], chunks=chunks, steps=steps[1]), chunks
    except Exception:  # an unusual pipeline: zarr-python decodes it, through the guard
        return None


def decode_bounded(codec: Any, data: Any, nbytes: int, expansion: float = 1.0) -> Any:
    """Decode *data* with the numcodecs *codec*, refusing output beyond a chunk of *nbytes*.

    This is the one bounded decode of stand-alone buffers (recompression's verification and
    the estimate's round trips): compressors whose output size is in their header are checked
    before decoding, stream compressors are decoded with a bounded output, and any other codec's
    output is checked after decoding.

    Raises
    ------
    ChunkSizeError
        When the output would be (or is) larger than :func:`chunk_bound` allows.
    """
    bound = chunk_bound(nbytes, expansion)
    out = guarded_v2_compressor(codec, bound).decode(data)
    size = getattr(out, "nbytes", None)
    if size is None:
        size = len(memoryview(out).cast("B"))
    if size > bound:
        raise _too_big(str(getattr(codec, "codec_id", type(codec).__name__)), int(size), bound)
    return out


# --------------------------------------------------------------------------------------------
# Bulk decoding of the inner chunks of one shard (verification)
# --------------------------------------------------------------------------------------------


def _bulk_zstd(chunk_nbytes: int) -> Callable[[bytes, npt.NDArray[np.uint64]], None]:
    import zstandard

    def check(data: bytes, segments: npt.NDArray[np.uint64]) -> None:
        n = int(segments.shape[0])
        if n == 0:
            return
        # the size rules of the one exact-size decoder: each frame declares the chunk's size
        # (or none) and ends where its chunk ends; the batch decoder ignores what follows a frame
        check_zstd_segments(data, segments, chunk_nbytes)
        frames = zstandard.BufferWithSegments(
            data, np.ascontiguousarray(segments, dtype=np.uint64).tobytes()
        )
        # Each frame decodes into a buffer of exactly chunk_nbytes: the sizes given here, not
        # the sizes the frame headers declare, decide what is allocated, and a frame whose
        # output differs from them fails the whole batch.
        sizes = np.full(n, chunk_nbytes, dtype=np.uint64).tobytes()
        # zstd's own threads (the GIL is held otherwise); not worth starting for a few chunks
        threads = min(4, os.cpu_count() or 1) if n >= 256 else 0
        zstandard.ZstdDecompressor().multi_decompress_to_buffer(
            frames, decompressed_sizes=sizes, threads=threads
        )

    return check


def _bulk_raw(chunk_nbytes: int) -> Callable[[bytes, npt.NDArray[np.uint64]], None]:
    def check(data: bytes, segments: npt.NDArray[np.uint64]) -> None:
        del data
        if segments.size and bool((segments[:, 1] != np.uint64(chunk_nbytes)).any()):
            # the rule of check_declared("raw", ...), for all rows at once
            raise ExactSizeError("an uncompressed chunk does not have its declared size")

    return check


def bulk_chunk_checker(
    codecs: Sequence[Any], chunk_nbytes: int
) -> Callable[[bytes, npt.NDArray[np.uint64]], None] | None:
    """Return a checker that decodes many inner chunks of one shard at once, or None.

    Parameters
    ----------
    codecs
        The inner codecs of a ``sharding_indexed`` codec, as objects with ``name`` and
        ``configuration`` (:class:`napari_zarr_explorer.codecs.CodecInfo`).
    chunk_nbytes
        Decoded bytes of one inner chunk (inner chunks always have the full chunk shape).

    Returns
    -------
    callable or None
        ``check(shard_bytes, segments)`` decodes every ``(offset, nbytes)`` row of *segments*
        (a ``uint64`` array of shape ``(n, 2)``) from *shard_bytes* in one call and raises when
        any of them does not decode to exactly *chunk_nbytes* bytes, without saying which: the
        caller then decodes that shard chunk by chunk through the guarded path to name the keys
        at fault. No output larger than *chunk_nbytes* per chunk is ever allocated. None when
        the pipeline is not one decoded in bulk here (only ``bytes`` optionally followed by
        ``zstd``), or when the ``zstandard`` package is not installed.
    """
    names = [str(getattr(c, "name", c)) for c in codecs]
    if not names or names[0] != "bytes":
        return None
    if names == ["bytes"]:
        return _bulk_raw(chunk_nbytes)
    if names == ["bytes", "zstd"]:
        try:
            import zstandard  # noqa: F401
        except ImportError:
            return None
        return _bulk_zstd(chunk_nbytes)
    return None
