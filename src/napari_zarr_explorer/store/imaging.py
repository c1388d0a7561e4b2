"""The codecs imaging data meets beyond the defaults, and how their decoding is bounded.

:data:`CODECS` describes each codec id (the package providing it, its role in a pipeline and
whether it is lossless) for the codec panel, ``inspect`` and the messages naming a missing
package. :func:`bounded_decode` decodes one chunk with a codec whose output size is not in a
header the generic guard knows:

- imagecodecs' image codecs (jpeg, jpeg2k, jpegxl, png, webp, zfp, lerc, ...) decode into a
  buffer of the chunk's size: an image declaring more pixels is refused by imagecodecs before
  it allocates anything;
- imagecodecs' lzw decodes into a buffer one byte larger than allowed, and more output is
  refused;
- numcodecs' zfpy: the zfp header's array shape and type are read first and checked.

Everything here is called from :func:`napari_zarr_explorer.store.guard_decoding` (Zarr v2
compressors and Zarr v3 ``numcodecs.*`` array-to-bytes codecs), so every read path is covered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "CODECS",
    "CodecEntry",
    "bounded_decode",
    "guard_v2",
    "guard_v3",
    "role_of",
    "zfp_header_nbytes",
]

Role = Literal["array->array", "array->bytes", "bytes->bytes"]


@dataclass(frozen=True, slots=True)
class CodecEntry:
    """What is known of one codec id.

    Attributes
    ----------
    provider
        The Python package that provides it (``pip install`` name).
    role
        Its place in a pipeline: ``"array->array"`` (filters), ``"array->bytes"`` (image and
        array compressors), ``"bytes->bytes"`` (byte compressors).
    lossless
        ``"yes"``, ``"no"`` or ``"option"`` (lossless only with the settings noted).
    note
        How to keep it lossless, or what its error is.
    """

    provider: str
    role: Role
    lossless: Literal["yes", "no", "option"]
    note: str = ""


_AA: Role = "array->array"
_AB: Role = "array->bytes"
_BB: Role = "bytes->bytes"

#: Codec id (Zarr v2 ``id``; Zarr v3 name without ``numcodecs.``) -> description.
CODECS: dict[str, CodecEntry] = {
    "shuffle": CodecEntry("numcodecs", _BB, "yes", "byte shuffle"),
    "delta": CodecEntry("numcodecs", _AA, "yes", "differences of neighbours"),
    "fixedscaleoffset": CodecEntry(
        "numcodecs", _AA, "no", "(x - offset) * scale rounded: error up to 0.5 / scale"
    ),
    "quantize": CodecEntry("numcodecs", _AA, "no", "keeps `digits` decimal digits"),
    "bitround": CodecEntry("numcodecs", _AA, "no", "keeps `keepbits` mantissa bits"),
    "packbits": CodecEntry("numcodecs", _AA, "yes", "booleans, 8 per byte"),
    "astype": CodecEntry("numcodecs", _AA, "option", "lossless when the type holds the values"),
    "zfpy": CodecEntry("zfpy", _AB, "option", "lossless in reversible mode (mode 5)"),
    "pcodec": CodecEntry("pcodec", _AB, "yes"),
    "imagecodecs_bitshuffle": CodecEntry("imagecodecs", _BB, "yes", "bit shuffle"),
    "imagecodecs_jpeg": CodecEntry("imagecodecs", _AB, "no", "8/12-bit JPEG; `level` = quality"),
    "imagecodecs_jpeg2k": CodecEntry("imagecodecs", _AB, "option", "lossless with reversible"),
    "imagecodecs_jpegxl": CodecEntry("imagecodecs", _AB, "option", "lossless with lossless=True"),
    "imagecodecs_jpegls": CodecEntry("imagecodecs", _AB, "option", "lossless with level 0"),
    "imagecodecs_jpegxr": CodecEntry("imagecodecs", _AB, "option", "lossless with level 1.0"),
    "imagecodecs_png": CodecEntry("imagecodecs", _AB, "yes"),
    "imagecodecs_webp": CodecEntry("imagecodecs", _AB, "option", "lossless with lossless=True"),
    "imagecodecs_avif": CodecEntry("imagecodecs", _AB, "option", "lossless at level 100"),
    "imagecodecs_qoi": CodecEntry("imagecodecs", _AB, "yes"),
    "imagecodecs_zfp": CodecEntry("imagecodecs", _AB, "option", "lossless in reversible mode"),
    "imagecodecs_lerc": CodecEntry("imagecodecs", _AB, "option", "lossless with level 0"),
    "imagecodecs_lzw": CodecEntry("imagecodecs", _BB, "yes", "TIFF LZW"),
}

# imagecodecs filters: output as large as their input, no out-of-size decoding possible.
_SIZE_PRESERVING = frozenset(
    {
        "imagecodecs_bitshuffle",
        "imagecodecs_byteshuffle",
        "imagecodecs_delta",
        "imagecodecs_xor",
        "imagecodecs_bitorder",
        "imagecodecs_floatpred",
        "imagecodecs_float24",
        "imagecodecs_eer",
        "imagecodecs_packints",
        "imagecodecs_quantize",
    }
)


def role_of(name: str) -> Role | None:
    """Return the role of the codec *name* (v2 id, or v3 name with or without ``numcodecs.``)."""
    entry = CODECS.get(name.removeprefix("numcodecs."))
    return entry.role if entry is not None else None


def zfp_header_nbytes(data: Any) -> int | None:
    """Return the bytes a zfp stream with a full header decodes to, or None without a header.

    The header (zfp's ``ZFP_HEADER_FULL``, as zfpy writes it) starts with the magic ``zfp``
    and a 52-bit field holding the scalar type, the number of dimensions and each size.
    """
    raw = bytes(memoryview(data).cast("B")[:16])
    if len(raw) < 11 or raw[:3] != b"zfp":
        return None
    bits = int.from_bytes(raw.ljust(16, b"\0"), "little")
    meta = (bits >> 32) & ((1 << 52) - 1)
    ztype = (meta & 3) + 1  # 1 int32, 2 int64, 3 float, 4 double
    meta >>= 2
    dims = (meta & 3) + 1
    meta >>= 2
    width = {1: 48, 2: 24, 3: 16, 4: 12}[dims]
    sizes = [((meta >> (width * i)) & ((1 << width) - 1)) + 1 for i in range(dims)]
    itemsize = {1: 4, 2: 8, 3: 4, 4: 8}[ztype]
    return math.prod(sizes) * itemsize


def _too_big(codec: str, size: int | None, bound: int) -> Exception:
    from napari_zarr_explorer.store import ChunkSizeError

    got = f"{size} bytes" if size is not None else "more bytes"
    return ChunkSizeError(
        f"a {codec} chunk would decode to {got}, more than the {bound} bytes its chunk shape "
        "allows; the chunk is corrupt or hostile and was not decoded."
    )


def needs_bound(codec_id: str) -> bool:
    """Return True for codecs :func:`bounded_decode` must decode (sizes not in a known header)."""
    if codec_id == "zfpy":
        return True
    return codec_id.startswith("imagecodecs_") and codec_id not in _SIZE_PRESERVING


def bounded_decode(codec: Any, data: Any, bound: int) -> Any:
    """Decode *data* with the numcodecs *codec*, refusing output beyond *bound* bytes.

    Raises
    ------
    ChunkSizeError
        When the chunk declares (or produces) more than *bound* bytes; nothing that large is
        allocated.
    """
    cid = str(getattr(codec, "codec_id", ""))
    if cid == "zfpy":
        size = zfp_header_nbytes(data)
        if size is None:
            raise _too_big("zfpy", None, bound) from None
        if size > bound:
            raise _too_big("zfpy", size, bound)
        return codec.decode(data)
    if cid == "imagecodecs_lzw":
        out = codec.decode(data, out=bytearray(bound + 1))
        if len(memoryview(out).cast("B")) > bound:
            raise _too_big("lzw", None, bound)
        return out
    try:
        result = codec.decode(data, out=bytearray(bound))
    except ValueError as exc:
        if "smaller than requested" in str(exc) or "invalid out" in str(exc):
            raise _too_big(cid.removeprefix("imagecodecs_"), None, bound) from None
        raise
    return np.asarray(result)


class _BoundedV2:
    """A numcodecs codec whose ``decode`` goes through :func:`bounded_decode`."""

    def __init__(self, inner: Any, bound: int) -> None:
        self.inner = inner
        self.bound = bound
        self.codec_id = inner.codec_id

    def encode(self, buf: Any) -> Any:
        return self.inner.encode(buf)

    def decode(self, buf: Any, out: Any = None) -> Any:
        result = bounded_decode(self.inner, buf, self.bound)
        if out is not None:
            flat = np.asarray(result).reshape(-1).view("u1")
            memoryview(out).cast("B")[: flat.nbytes] = flat.tobytes()
            return out
        return result

    def get_config(self) -> Any:
        return self.inner.get_config()


def guard_v2(compressor: Any, bound: int) -> Any | None:
    """Return *compressor* decoding with a bound, or None when the generic guard applies."""
    cid = str(getattr(compressor, "codec_id", ""))
    return _BoundedV2(compressor, bound) if needs_bound(cid) else None


def guard_v3(codec: Any) -> Any | None:
    """Return the Zarr v3 ``numcodecs.*`` array-to-bytes *codec* decoding with a bound.

    None when *codec* needs no bound (or is not such a codec).
    """
    from napari_zarr_explorer._compat import numcodecs_array_bytes_base

    if not isinstance(codec, numcodecs_array_bytes_base()):
        return None
    cid = str(codec.codec_config.get("id", ""))
    if not needs_bound(cid):
        return None
    return _v3_class()(codec)


_V3: list[type[Any]] = []


def _v3_class() -> type[Any]:
    if _V3:
        return _V3[0]
    import asyncio
    from dataclasses import dataclass as _dc

    from zarr.abc.codec import ArrayBytesCodec

    from napari_zarr_explorer._compat import ZarrInternalsChanged, numcodecs_codec_of
    from napari_zarr_explorer.store import chunk_bound

    @_dc(frozen=True)
    class _BoundedArrayBytes(ArrayBytesCodec):
        inner: Any
        is_fixed_size = False

        async def _decode_single(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
            itemsize = np.dtype(chunk_spec.dtype.to_native_dtype()).itemsize
            bound = chunk_bound(math.prod(chunk_spec.shape) * itemsize)
            data = chunk_bytes.to_bytes()
            inner = numcodecs_codec_of(self.inner)
            if inner is None:
                raise ZarrInternalsChanged("zarr's numcodecs wrapper codecs have no '_codec' now")
            out = await asyncio.to_thread(bounded_decode, inner, data, bound)
            arr = np.asarray(out).reshape(-1)
            nbytes = math.prod(chunk_spec.shape) * itemsize
            arr = arr.view("u1")[:nbytes].view(chunk_spec.dtype.to_native_dtype())
            return chunk_spec.prototype.nd_buffer.from_ndarray_like(arr.reshape(chunk_spec.shape))

        async def _encode_single(self, chunk_array: Any, chunk_spec: Any) -> Any:
            return await self.inner._encode_single(chunk_array, chunk_spec)

        def compute_encoded_size(self, input_byte_length: int, chunk_spec: Any) -> int:
            return int(self.inner.compute_encoded_size(input_byte_length, chunk_spec))

        def to_dict(self) -> Any:
            return self.inner.to_dict()

    _V3.append(_BoundedArrayBytes)
    return _BoundedArrayBytes
