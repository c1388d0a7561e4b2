"""Compressor choices written as short strings: ``"zstd:5"``, ``"blosc-lz4"``, ``"zfp:rate=8"``.

A :class:`CompressorSpec` is what the estimate and recompress commands (and the Recompress dock)
take as the user's choice of encoding. It turns into the Zarr v3 codec chain
(:meth:`CompressorSpec.v3_codecs`), the Zarr v2 compressor and filters
(:meth:`CompressorSpec.v2_compressor`, :meth:`CompressorSpec.v2_filters`), and can encode and
decode a chunk by itself (:meth:`CompressorSpec.encode`, :meth:`CompressorSpec.decode`) so an
estimate needs no store.

Grammar
-------
``SPEC := PART ("+" PART)*`` and ``PART := NAME [":" ARGS]`` where ``ARGS`` is a level
(``zstd:5``) or ``key=value`` pairs separated by commas (``blosc-zstd:level=5,shuffle=bit``).

Lossless compressors: ``zstd``, ``blosc-zstd``, ``blosc-lz4``, ``blosc-lz4hc``, ``blosc-blosclz``,
``blosc-zlib``, ``gzip``, ``none``.

Lossy codecs (their error is reported by :meth:`CompressorSpec.error`):

- ``zfp:rate=R`` / ``zfp:precision=P`` / ``zfp:reversible`` (float32/64, int32/64; needs
  imagecodecs), used instead of the lossless compressor;
- ``bitround:keepbits=N`` (floats: keeps N mantissa bits) and ``quantize:digits=N`` (floats:
  keeps N decimal digits), both followed by a lossless compressor, ``zstd:3`` unless another one
  is given (``bitround:7+blosc-zstd:5``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from napari_zarr_explorer.errors import CodecError

__all__ = [
    "COMPRESSOR_NAMES",
    "FILTER_NAMES",
    "IMAGE_NAMES",
    "LOSSY_NAMES",
    "SHUFFLES",
    "CompressorSpec",
    "ErrorStats",
    "Tolerance",
    "parse_compressor",
    "register_zarr_codecs",
]

Shuffle = Literal["none", "byte", "bit"]
#: The value of one codec option: a number, a flag, or a type name (fixedscaleoffset's astype).
Option = float | int | bool | str
SHUFFLES: tuple[Shuffle, ...] = ("none", "byte", "bit")

_BLOSC_CNAMES = ("zstd", "lz4", "lz4hc", "blosclz", "zlib")
COMPRESSOR_NAMES: tuple[str, ...] = (
    "zstd",
    *(f"blosc-{c}" for c in _BLOSC_CNAMES),
    "gzip",
    "lzw",
    "none",
)
#: Codecs whose decoded values may differ from the original: one of them at most per spec.
LOSSY_NAMES: tuple[str, ...] = ("zfp", "zfpy", "bitround", "quantize", "fixedscaleoffset")
#: imagecodecs image codecs written as the array->bytes codec (lossless by default except jpeg).
IMAGE_NAMES: tuple[str, ...] = ("png", "jpeg2k", "jpegxl", "lerc", "jpeg", "webp")
#: Lossless filters written before the compressor: ``delta`` (array->array, integers), and the
#: byte shuffles ``shuffle`` (numcodecs) and ``bitshuffle`` (imagecodecs), bytes->bytes.
FILTER_NAMES: tuple[str, ...] = ("delta", "shuffle", "bitshuffle")
_IMAGE_DTYPES: dict[str, tuple[str, ...]] = {
    "png": ("u1", "u2"),
    "jpeg2k": ("u1", "u2", "i1", "i2"),
    "jpegxl": ("u1", "u2", "f4"),
    "lerc": ("i1", "u1", "i2", "u2", "i4", "u4", "f4", "f8"),
    "jpeg": ("u1",),
    "webp": ("u1",),
}
#: The largest side, in pixels, of an image each image codec encodes with every imagecodecs
#: (measured by encoding: libpng's default limit, libjpeg's, libwebp's as imagecodecs checks it:
#: webp 16383 with imagecodecs 2026.11 and later, see :func:`_webp_max_side`).
#: The others (jpeg2k, jpegxl, lerc) encode any side memory allows.
_IMAGE_MAX_SIDE: dict[str, int] = {"png": 1_000_000, "jpeg": 65535, "webp": 16382}
#: libwebp's largest side (``WEBP_MAX_DIMENSION``).
_WEBP_MAX_DIMENSION = 16383
_ANY_SHAPE = "or a codec for any chunk shape (zstd:5, blosc-zstd:5)"
#: The image codecs that encode more than one image per chunk exactly: how many dimensions
#: larger than 1 they take (jpegxl: one more when it holds 2 to 4 samples last). Measured by
#: encoding and decoding with imagecodecs (see :func:`_check_image_chunks`).
_IMAGE_VOLUME_DIMS: dict[str, int] = {"jpegxl": 3, "lerc": 4}
# name -> (option, value range, default) of the one option each image codec takes
_IMAGE_OPTIONS: dict[str, tuple[str, float, float]] = {
    "jpeg2k": ("psnr", 1, 200),  # lossy at this PSNR in dB (absent: reversible)
    "jpegxl": ("distance", 0, 25),  # butteraugli distance (absent or 0: lossless)
    "lerc": ("maxerror", 0, 1e300),  # largest absolute error (absent or 0: lossless)
    "jpeg": ("quality", 1, 100),
    "webp": ("quality", 0, 100),  # lossy at this quality (absent: lossless)
}
#: fixedscaleoffset may store its values as these types (``astype``).
_FSO_TYPES = ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8")

_LEVELS: dict[str, tuple[int, int, int]] = {
    # name: (min, max, default)
    "zstd": (-131072, 22, 3),
    "gzip": (0, 9, 6),
    "blosc": (0, 9, 5),
}
_SHUFFLE_ALIASES: dict[str, Shuffle] = {
    "none": "none",
    "noshuffle": "none",
    "0": "none",
    "byte": "byte",
    "shuffle": "byte",
    "1": "byte",
    "bit": "bit",
    "bitshuffle": "bit",
    "2": "bit",
}
_ZFP_MODES = ("rate", "precision", "reversible")


@dataclass(frozen=True, slots=True)
class ErrorStats:
    """How far decoded values are from the original ones after a lossy round trip.

    Attributes
    ----------
    max_abs
        Largest absolute difference (0 for lossless codecs).
    rms
        Root mean square difference.
    psnr
        Peak signal-to-noise ratio in dB over the data range (``inf`` when exact).
    """

    max_abs: float
    rms: float
    psnr: float

    def to_dict(self) -> dict[str, float | None]:
        """Return a JSON-safe mapping (``None`` stands for infinity)."""
        return {
            k: (None if math.isinf(v) or math.isnan(v) else v)
            for k, v in (("max_abs", self.max_abs), ("rms", self.rms), ("psnr", self.psnr))
        }


@dataclass(frozen=True, slots=True)
class Tolerance:
    """The error a lossy encoding declares: what verification compares the values within.

    A decoded value ``b`` of an original ``a`` is within the tolerance when
    ``|a - b| <= absolute + relative * |a|`` (NaN matching NaN, infinities unchanged).

    Attributes
    ----------
    absolute
        Largest absolute error declared (0 when only a relative bound applies).
    relative
        Largest error relative to the value.
    text
        How the bound is written in reports, e.g. ``"0.01 absolute"``.
    bounded
        False for codecs that declare no error bound (jpeg quality, zfp rate...): then only
        the stored bytes are verified, and the largest error is measured and reported.
    """

    absolute: float = 0.0
    relative: float = 0.0
    text: str = "exact"
    bounded: bool = True

    @property
    def exact(self) -> bool:
        """True for lossless encodings (values compared for equality)."""
        return self.bounded and self.absolute == 0 and self.relative == 0

    @property
    def verification(self) -> str:
        """What verification promises, as reports say it."""
        if self.exact:
            return "exact"
        if not self.bounded:
            return f"stored bytes only ({self.text} declares no error bound)"
        return f"within tolerance {self.text}"

    def within(self, original: npt.NDArray[Any], decoded: npt.NDArray[Any]) -> bool:
        """Return True when every decoded value is within the tolerance of the original."""
        if not self.bounded:
            return True
        a = np.asarray(original)
        b = np.asarray(decoded)
        if a.shape != b.shape:
            return False
        if self.exact or a.dtype.kind not in "iuf":
            return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        af = a.astype(np.float64)
        bf = b.astype(np.float64)
        nan_a, nan_b = np.isnan(af), np.isnan(bf)
        if not np.array_equal(nan_a, nan_b):
            return False
        ok = ~nan_a
        inf_a = np.isinf(af) & ok
        if not np.array_equal(af[inf_a], bf[inf_a]) or np.isinf(bf[ok & ~inf_a]).any():
            return False
        fin = ok & ~inf_a
        bound = self.absolute + self.relative * np.abs(af[fin])
        return bool(np.all(np.abs(af[fin] - bf[fin]) <= bound))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe mapping."""
        return {
            "absolute": self.absolute,
            "relative": self.relative,
            "text": self.text,
            "bounded": self.bounded,
            "verification": self.verification,
        }


@dataclass(frozen=True, slots=True)
class CompressorSpec:
    """One encoding choice, parsed from a string by :func:`parse_compressor`.

    Attributes
    ----------
    name
        Lossless compressor: one of :data:`COMPRESSOR_NAMES`.
    level
        Compression level (``None`` for ``none``).
    shuffle
        Blosc shuffle (``"none"``, ``"byte"``, ``"bit"``) or ``None`` for automatic: byte shuffle
        for items wider than one byte, bit shuffle for one-byte items. Only blosc shuffles.
    lossy
        ``None``, ``"zfp"``, ``"bitround"`` or ``"quantize"``.
    lossy_options
        Options of the lossy codec as sorted ``(key, value)`` pairs.
    """

    name: str = "zstd"
    level: int | None = 3
    shuffle: Shuffle | None = None
    lossy: str | None = None
    lossy_options: tuple[tuple[str, Option], ...] = field(default=())
    #: Lossless filters of :data:`FILTER_NAMES`, in canonical order (delta, then a shuffle).
    filters: tuple[str, ...] = field(default=())

    # ------------------------------------------------------------------ description
    @property
    def is_blosc(self) -> bool:
        """True for the ``blosc-*`` compressors."""
        return self.name.startswith("blosc-")

    @property
    def is_lossy(self) -> bool:
        """True when decoded values may differ from the original ones."""
        opts = dict(self.lossy_options)
        if self.lossy in ("zfp", "zfpy"):
            return not bool(opts.get("reversible", False)) and bool(opts)
        if self.lossy in IMAGE_NAMES:
            return self.lossy == "jpeg" or any(
                float(v) > 0 for _, v in self.lossy_options if not isinstance(v, str)
            )
        return self.lossy is not None

    @property
    def is_serializer(self) -> bool:
        """True for one array->bytes codec without a byte compressor (zfp, png...)."""
        return self.lossy in ("zfp", "zfpy") or self.lossy in IMAGE_NAMES

    @property
    def _filter_lossy(self) -> bool:
        return self.lossy in ("bitround", "quantize", "fixedscaleoffset")

    @property
    def label(self) -> str:
        """Canonical short text, parseable again by :func:`parse_compressor`."""
        parts: list[str] = []
        lossy_part = ""
        if self.lossy is not None:
            opts = ",".join(k if v is True else f"{k}={_fmt(v)}" for k, v in self.lossy_options)
            lossy_part = f"{self.lossy}:{opts}" if opts else self.lossy
        if self._filter_lossy:
            parts.append(lossy_part)
        if "delta" in self.filters:
            parts.append("delta")
        if self.is_serializer:
            parts.append(lossy_part)
        parts += [f for f in self.filters if f != "delta"]
        if not self.is_serializer or self.name != "none":
            main = self.name
            if self.is_blosc and self.shuffle is not None:
                main += f":level={self.level},shuffle={self.shuffle}"
            elif self.level is not None:
                main += f":{self.level}"
            parts.append(main)
        return "+".join(parts)

    def __str__(self) -> str:
        return self.label

    def shuffle_for(self, dtype: npt.DTypeLike) -> Shuffle:
        """Return the shuffle actually used for items of *dtype*."""
        if not self.is_blosc:
            return "none"
        if self.shuffle is not None:
            return self.shuffle
        if {"shuffle", "bitshuffle"} & set(self.filters):  # the bytes are shuffled already
            return "none"
        return "byte" if np.dtype(dtype).itemsize > 1 else "bit"

    def encoded_dtype(self, dtype: npt.DTypeLike) -> np.dtype[Any]:
        """Return the type of the values after the lossy filter (fixedscaleoffset's ``astype``)."""
        dt = np.dtype(dtype)
        if self.lossy == "fixedscaleoffset":
            astype = dict(self.lossy_options).get("astype")
            if astype is not None:
                return np.dtype(str(astype)).newbyteorder("=")
        return dt

    def check_dtype(
        self,
        dtype: npt.DTypeLike,
        *,
        chunks: tuple[int, ...] | None = None,
        zarr_format: int | None = None,
        where: str = "",
    ) -> None:
        """Raise :class:`CodecError` when this spec cannot encode items of *dtype*.

        Parameters
        ----------
        dtype
            The array's data type.
        chunks
            The chunk shape, when known: png, jpeg and jpeg2k need 2-D images (webp: RGB or
            RGBA), jpegxl takes (z, y, x) volumes too and lerc up to 4 dimensions.
        zarr_format
            The output format, when known: the separate ``bitshuffle`` codec is Zarr v2 only.
        where
            What the data is (an array's location, ``"Level '0'"``): the message starts with it.
        """
        at = f"{where}: " if where else ""
        dt = np.dtype(dtype)
        if zarr_format == 3 and "bitshuffle" in self.filters:
            raise CodecError(
                f"{at}bitshuffle (imagecodecs) is written to Zarr v2 only: in Zarr v3 zarr hands "
                "it plain bytes, and it then shuffles single bytes, not the values.",
                hint="For Zarr v3 use blosc's bit shuffle, e.g. blosc-zstd:level=5,shuffle=bit.",
            )
        if chunks is not None and self.lossy in IMAGE_NAMES:
            _check_image_chunks(self.lossy, tuple(int(c) for c in chunks), where=where)
        if self.lossy in ("bitround", "quantize", "fixedscaleoffset") and dt.kind != "f":
            raise CodecError(
                f"{at}{self.lossy} works on floating-point data only, not {dt}.",
                hint="Choose a lossless compressor for integer data (e.g. zstd:5).",
            )
        if self.lossy in IMAGE_NAMES and dt.str[1:] not in _IMAGE_DTYPES[self.lossy]:
            raise CodecError(
                f"{at}{self.lossy} encodes {', '.join(_IMAGE_DTYPES[self.lossy])} data only, "
                f"not {dt}.",
                hint="Choose a lossless compressor (e.g. zstd:5) for this array.",
            )
        if self.lossy in ("zfp", "zfpy") and dt.str[1:] not in ("f4", "f8", "i4", "i8"):
            raise CodecError(
                f"{at}{self.lossy} encodes float32, float64, int32 and int64 only, not {dt}.",
                hint="Choose a lossless compressor (e.g. zstd:5) for this array.",
            )
        enc = self.encoded_dtype(dt)
        if "delta" in self.filters and enc.kind not in "iu":
            raise CodecError(
                f"{at}delta is offered for integer data only (float differences are not exact), "
                f"not {enc}.",
                hint="Use shuffle+zstd, or fixedscaleoffset:...,astype=i4+delta+zstd for floats.",
            )
        if enc.kind not in "biufc" and self.filters:
            raise CodecError(f"{at}{'+'.join(self.filters)} needs numeric data, not {enc}.")

    def tolerance(self, dtype: npt.DTypeLike | None = None) -> Tolerance:
        """Return the error this encoding declares for items of *dtype*.

        Lossless encodings are exact. Lossy ones declare: ``lerc:maxerror=E`` and
        ``zfpy:tolerance=T`` an absolute error E or T, ``quantize:N`` 10^-N,
        ``fixedscaleoffset:scale=S`` 0.5/S (plus a rounding error of the float type),
        ``bitround:N`` a relative error of 2^-N. The others (jpeg quality, jpeg2k PSNR, jpegxl
        distance, webp quality, zfp/zfpy rate or precision) declare no bound.
        """
        if not self.is_lossy:
            return Tolerance()
        opts = dict(self.lossy_options)
        dt = np.dtype(dtype) if dtype is not None else np.dtype("f8")
        eps = float(np.finfo(dt).eps) if dt.kind == "f" else 0.0
        if self.lossy == "lerc":
            e = float(opts["maxerror"])
            return Tolerance(e, 4 * eps, f"{_fmt(e)} absolute")
        if self.lossy == "zfpy" and "tolerance" in opts:
            e = float(opts["tolerance"])
            return Tolerance(e, 4 * eps, f"{_fmt(e)} absolute")
        if self.lossy == "quantize":
            e = 10.0 ** -int(opts["digits"])
            return Tolerance(e, 4 * eps, f"{e:g} absolute")
        if self.lossy == "fixedscaleoffset":
            e = 0.5 / float(opts["scale"])
            # decoding adds the offset back in the array's float type: its rounding too
            slack = 8 * eps * abs(float(opts.get("offset", 0)))
            return Tolerance(e + slack, 8 * eps, f"{e:g} absolute")
        if self.lossy == "bitround":
            e = 2.0 ** -int(opts["keepbits"])
            return Tolerance(0.0, e, f"{e:g} relative")
        return Tolerance(0.0, 0.0, self.label, bounded=False)

    # ------------------------------------------------------------------ zarr v3
    def v3_parts(self, dtype: npt.DTypeLike) -> tuple[list[Any], Any, list[Any]]:
        """Return ``(filters, serializer, compressors)`` for ``zarr.create_array``.

        Parameters
        ----------
        dtype
            The array's data type (sets blosc's type size and automatic shuffle).
        """
        import warnings

        from zarr import codecs as zc

        self.check_dtype(dtype, zarr_format=3)
        dt = np.dtype(dtype)
        enc = self.encoded_dtype(dt)
        filters: list[Any] = []
        serializer: Any = zc.BytesCodec(endian="little") if enc.itemsize > 1 else zc.BytesCodec()
        compressors: list[Any] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr: numcodecs codecs are not in the v3 spec
            from zarr.codecs import numcodecs as zn

            opts = dict(self.lossy_options)
            if self.lossy == "bitround":
                filters.append(zn.BitRound(keepbits=int(opts["keepbits"])))
            elif self.lossy == "quantize":
                filters.append(zn.Quantize(digits=int(opts["digits"]), dtype=dt.str))
            elif self.lossy == "fixedscaleoffset":
                filters.append(zn.FixedScaleOffset(**self._fso_config(dt)))
            if "delta" in self.filters:
                filters.append(zn.Delta(dtype=enc.newbyteorder("<").str))
            if self.lossy == "zfp":
                serializer = _zfp_v3_class()(**self._zfp_config())
            elif self.lossy == "zfpy":
                serializer = zn.ZFPY(**self._zfpy_config())
            elif self.lossy in IMAGE_NAMES:
                config = self._image_config()
                config.pop("id")
                serializer = _image_v3_class(self.lossy)(**config)
            if "shuffle" in self.filters:
                compressors.append(zn.Shuffle(elementsize=enc.itemsize))
            if "bitshuffle" in self.filters:
                compressors.append(_bytes_v3_class("bitshuffle")(itemsize=enc.itemsize))
            if self.name == "lzw":
                compressors.append(_bytes_v3_class("lzw")())
        if self.name == "zstd":
            compressors.append(zc.ZstdCodec(level=int(self.level or 0)))
        elif self.name == "gzip":
            compressors.append(zc.GzipCodec(level=int(self.level or 0)))
        elif self.is_blosc:
            compressors.append(
                zc.BloscCodec(
                    cname=self.name.removeprefix("blosc-"),  # type: ignore[arg-type]
                    clevel=int(self.level or 0),
                    shuffle={"none": "noshuffle", "byte": "shuffle", "bit": "bitshuffle"}[
                        self.shuffle_for(enc)
                    ],  # type: ignore[arg-type]
                    typesize=enc.itemsize,
                )
            )
        return filters, serializer, compressors

    def v3_codecs(self, dtype: npt.DTypeLike) -> list[Any]:
        """Return the whole Zarr v3 codec chain (zarr codec objects), filters first.

        This is what goes into ``zarr.json`` ``"codecs"`` of an unsharded array, or into the
        ``"codecs"`` of a ``sharding_indexed`` codec.
        """
        filters, serializer, compressors = self.v3_parts(dtype)
        return [*filters, serializer, *compressors]

    def v3_json(self, dtype: npt.DTypeLike) -> list[dict[str, Any]]:
        """Return :meth:`v3_codecs` as JSON-ready dictionaries."""
        return [dict(c.to_dict()) for c in self.v3_codecs(dtype)]

    # ------------------------------------------------------------------ zarr v2
    def v2_compressor(self, dtype: npt.DTypeLike | None = None) -> Any:
        """Return the numcodecs compressor for a Zarr v2 ``.zarray`` (``None`` for ``none``)."""
        import numcodecs

        if self.lossy == "zfp":
            return _zfp_numcodec(self._zfp_config())
        if self.lossy == "zfpy":
            return _zfpy_numcodec(self._zfpy_config())
        if self.lossy in IMAGE_NAMES:
            return _image_numcodec(self._image_config())
        if self.name == "zstd":
            return numcodecs.Zstd(level=int(self.level or 0))
        if self.name == "gzip":
            return numcodecs.GZip(level=int(self.level or 0))
        if self.name == "lzw":
            return _image_numcodec({"id": "imagecodecs_lzw"})
        if self.is_blosc:
            enc = self.encoded_dtype(dtype) if dtype is not None else None
            shuffle = self.shuffle_for(enc if enc is not None else "u2")
            if dtype is None and self.shuffle is None:
                shuffle_code = numcodecs.Blosc.AUTOSHUFFLE
            else:
                shuffle_code = {"none": 0, "byte": 1, "bit": 2}[shuffle]
            return numcodecs.Blosc(
                cname=self.name.removeprefix("blosc-"),
                clevel=int(self.level or 0),
                shuffle=shuffle_code,
            )
        return None

    def v2_filters(self, dtype: npt.DTypeLike) -> list[Any] | None:
        """Return the numcodecs filters for a Zarr v2 ``.zarray`` (``None`` when there are none)."""
        import numcodecs

        self.check_dtype(dtype)
        dt = np.dtype(dtype)
        enc = self.encoded_dtype(dt)
        opts = dict(self.lossy_options)
        out: list[Any] = []
        if self.lossy == "bitround":
            out.append(numcodecs.BitRound(keepbits=int(opts["keepbits"])))
        elif self.lossy == "quantize":
            out.append(numcodecs.Quantize(digits=int(opts["digits"]), dtype=dt.str))
        elif self.lossy == "fixedscaleoffset":
            out.append(numcodecs.FixedScaleOffset(**self._fso_config(dt)))
        if "delta" in self.filters:
            out.append(numcodecs.Delta(dtype=enc.newbyteorder("<").str))
        if "shuffle" in self.filters:
            out.append(numcodecs.Shuffle(elementsize=enc.itemsize))
        if "bitshuffle" in self.filters:
            out.append(_image_numcodec({"id": "imagecodecs_bitshuffle", "itemsize": enc.itemsize}))
        return out or None

    def _array_filters(self, dtype: npt.DTypeLike) -> list[Any]:
        """Return the array->array filters of :meth:`v2_filters` (not the byte shuffles)."""
        return [
            f
            for f in self.v2_filters(dtype) or []
            if f.codec_id not in ("shuffle", "imagecodecs_bitshuffle")
        ]

    def _byte_filters(self, dtype: npt.DTypeLike) -> list[Any]:
        """Return the bytes->bytes filters of :meth:`v2_filters` (byte and bit shuffle)."""
        return [
            f
            for f in self.v2_filters(dtype) or []
            if f.codec_id in ("shuffle", "imagecodecs_bitshuffle")
        ]

    # ------------------------------------------------------------------ standalone
    def encode(self, data: npt.ArrayLike) -> bytes:
        """Encode one chunk the way a Zarr v3 array with this spec stores it.

        Parameters
        ----------
        data
            The chunk (any shape; encoded in C order, little-endian).

        Returns
        -------
        bytes
        """
        arr = np.ascontiguousarray(data)
        self.check_dtype(arr.dtype)
        dtype = arr.dtype
        for f in self._array_filters(dtype):
            arr = np.ascontiguousarray(f.encode(arr))
        if self.lossy == "zfp":
            return bytes(_zfp_numcodec(self._zfp_config()).encode(arr))
        if self.lossy == "zfpy":
            return bytes(_zfpy_numcodec(self._zfpy_config()).encode(arr))
        if self.lossy in IMAGE_NAMES:
            return bytes(_image_numcodec(self._image_config()).encode(arr))
        le = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
        raw: Any = memoryview(le.reshape(-1).view(np.uint8).data)
        byte_filters = self._byte_filters(dtype)
        for f in byte_filters:
            raw = memoryview(np.ascontiguousarray(f.encode(raw)).reshape(-1).view(np.uint8).data)
        if self.name == "zstd":
            return _zstd_compress(raw, int(self.level or 0))
        comp = self.v2_compressor(dtype)
        if comp is None:
            return bytes(raw)
        if self.is_blosc and not byte_filters:
            return bytes(comp.encode(le))
        return bytes(comp.encode(raw))

    def decode(
        self,
        data: bytes,
        dtype: npt.DTypeLike | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> npt.NDArray[Any]:
        """Decode bytes produced by :meth:`encode`.

        Parameters
        ----------
        data
            Encoded chunk.
        dtype, shape
            Data type and shape of the chunk. Without a *dtype* the decoded bytes come back as
            a flat ``uint8`` array (lossless compressors only).

        Returns
        -------
        numpy.ndarray
        """
        from napari_zarr_explorer.store import decode_bounded

        # Output is bounded by the chunk's size (or by the read limit when it is not given).
        if dtype is not None and shape is not None:
            nbytes = math.prod(shape) * max(
                np.dtype(dtype).itemsize, self.encoded_dtype(dtype).itemsize
            )
        else:
            from napari_zarr_explorer.pyramid import max_chunk_bytes

            nbytes = max_chunk_bytes()
        if dtype is None:
            if self.filters or self.lossy is not None:
                raise CodecError(f"{self.label}: decoding needs the chunk's data type.")
            out = np.frombuffer(self._decode_bytes(data, None, nbytes), dtype=np.uint8)
            return out.copy()
        dt = np.dtype(dtype)
        enc = self.encoded_dtype(dt)
        if self.lossy == "zfp":
            out = np.asarray(decode_bounded(_zfp_numcodec(self._zfp_config()), data, nbytes))
        elif self.lossy == "zfpy":
            out = np.asarray(decode_bounded(_zfpy_numcodec(self._zfpy_config()), data, nbytes))
        elif self.lossy in IMAGE_NAMES:
            out = np.asarray(decode_bounded(_image_numcodec(self._image_config()), data, nbytes))
        else:
            raw = self._decode_bytes(data, dt, nbytes)
            out = np.frombuffer(raw, dtype=np.uint8)
            out = out.view(enc.newbyteorder("<")).astype(enc, copy=False)
        for f in reversed(self._array_filters(dt)):
            # delta gives back the stored type, the lossy filter the array's own type
            want = enc if f.codec_id == "delta" else dt
            res = np.asarray(decode_bounded(f, out, nbytes, expansion=8.0))
            out = res.reshape(-1).view(want) if res.dtype.itemsize != want.itemsize else res
            out = out.astype(want, copy=False)
        out = out.astype(dt, copy=False)
        if shape is not None:
            out = out.reshape(shape)
        return out

    def _decode_bytes(self, data: bytes, dtype: np.dtype[Any] | None, nbytes: int) -> Any:
        """Undo the compressor and the byte shuffles: the little-endian bytes of the values."""
        from napari_zarr_explorer.store import decode_bounded

        comp = self.v2_compressor(dtype)
        if self.name == "zstd":
            raw = _zstd_decompress(data, nbytes)
        else:
            raw = data if comp is None else decode_bounded(comp, data, nbytes)
        if dtype is not None:
            for f in reversed(self._byte_filters(dtype)):
                raw = decode_bounded(f, raw, nbytes, expansion=2.0)
        return raw

    def error(self, data: npt.ArrayLike) -> ErrorStats:
        """Encode and decode *data* and measure how far the result is from it (NaN-aware)."""
        arr = np.asarray(data)
        back = self.decode(self.encode(arr), arr.dtype, arr.shape)
        if arr.dtype.kind not in "iufb":
            same = bool(np.array_equal(arr, back))
            return ErrorStats(0.0 if same else math.inf, 0.0 if same else math.inf, math.inf)
        a = arr.astype(np.float64)
        b = back.astype(np.float64)
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if not np.array_equal(nan_a, nan_b):
            return ErrorStats(math.inf, math.inf, 0.0)
        ok = ~nan_a
        if not ok.any():
            return ErrorStats(0.0, 0.0, math.inf)
        d = np.abs(a[ok] - b[ok])
        max_abs = float(d.max()) if d.size else 0.0
        rms = float(np.sqrt(np.mean(d**2))) if d.size else 0.0
        finite = a[ok][np.isfinite(a[ok])]
        peak = float(np.max(finite) - np.min(finite)) if finite.size else 0.0
        psnr = math.inf if rms == 0 else (20 * math.log10(peak / rms) if peak > 0 else 0.0)
        return ErrorStats(max_abs, rms, psnr)

    # ------------------------------------------------------------------ helpers
    def _image_config(self) -> dict[str, Any]:
        """Return the imagecodecs numcodecs configuration of an image codec."""
        name = str(self.lossy)
        opts = dict(self.lossy_options)
        config: dict[str, Any] = {"id": f"imagecodecs_{name}"}
        if name == "jpeg2k":
            psnr = opts.get("psnr")
            config.update(
                {"reversible": True, "level": 0}
                if not psnr
                else {"reversible": False, "level": int(psnr)}
            )
        elif name == "jpegxl":
            distance = float(opts.get("distance", 0))
            config.update(
                {"lossless": True} if distance == 0 else {"lossless": False, "distance": distance}
            )
        elif name == "lerc":
            config["level"] = float(opts.get("maxerror", 0.0))
        elif name == "jpeg":
            config["level"] = int(opts.get("quality", 90))
        elif name == "webp":
            quality = opts.get("quality")
            config.update(
                {"lossless": True}
                if quality is None
                else {"lossless": False, "level": float(quality)}
            )
        return config

    def _fso_config(self, dtype: np.dtype[Any]) -> dict[str, Any]:
        """Return the numcodecs ``FixedScaleOffset`` configuration for items of *dtype*."""
        opts = dict(self.lossy_options)
        scale = float(opts["scale"])
        offset = float(opts.get("offset", 0))
        return {
            "offset": int(offset) if offset.is_integer() else offset,
            "scale": int(scale) if scale.is_integer() else scale,
            "dtype": dtype.newbyteorder("<").str,
            "astype": self.encoded_dtype(dtype).newbyteorder("<").str,
        }

    def _zfpy_config(self) -> dict[str, Any]:
        """Return the numcodecs ``ZFPY`` configuration (all of them -1: reversible)."""
        opts = dict(self.lossy_options)
        config: dict[str, Any] = {"mode": 4, "tolerance": -1, "rate": -1, "precision": -1}
        if "tolerance" in opts:
            config.update(mode=4, tolerance=float(opts["tolerance"]))
        elif "rate" in opts:
            config.update(mode=2, rate=float(opts["rate"]))
        elif "precision" in opts:
            config.update(mode=3, precision=int(opts["precision"]))
        return config

    def _zfp_config(self) -> dict[str, Any]:
        opts = dict(self.lossy_options)
        if opts.get("reversible"):
            return {"mode": "reversible"}
        for mode in ("rate", "precision"):
            if mode in opts:
                return {"mode": mode, "level": int(opts[mode])}
        raise CodecError("zfp needs one of rate=N, precision=N or reversible.")  # pragma: no cover


_TLS = threading.local()


def _zstd_decompress(data: Any, nbytes: int) -> Any:
    """Decompress one zstd frame of at most about *nbytes* (``zstandard`` when installed).

    The frame header's content size is checked against the bound before anything is
    decompressed (:func:`napari_zarr_explorer.store.decode_bounded` for frames without one).
    """
    import numcodecs

    from napari_zarr_explorer.store import chunk_bound, decode_bounded
    from napari_zarr_explorer.store.decode import check_header_size

    check_header_size("zstd", data, chunk_bound(nbytes))
    dec: Any = getattr(_TLS, "zstd_dec", None)
    if dec is None:
        try:
            import zstandard

            dec = zstandard.ZstdDecompressor().decompress
        except ImportError:
            dec = False
        _TLS.zstd_dec = dec
    if dec is not False:
        with contextlib.suppress(Exception):  # frames without a content size: numcodecs copes
            return dec(data)
    return decode_bounded(numcodecs.Zstd(), data, nbytes)


def _zstd_compress(raw: Any, level: int) -> bytes:
    """Compress one zstd frame, with the ``zstandard`` package when installed (faster)."""
    cache: dict[int, Any] | None = getattr(_TLS, "zstd", None)
    if cache is None:
        cache = _TLS.zstd = {}
    comp = cache.get(level)
    if comp is None:
        try:
            import zstandard

            comp = zstandard.ZstdCompressor(level=level).compress
        except ImportError:
            import numcodecs

            comp = numcodecs.Zstd(level=level).encode
        cache[level] = comp
    return bytes(comp(raw))


def _fmt(v: Option) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _zfp_numcodec(config: dict[str, Any]) -> Any:
    try:
        import imagecodecs
        from imagecodecs.numcodecs import Zfp
    except ImportError as exc:  # pragma: no cover - imagecodecs is in the [all] extra
        raise CodecError(
            "The zfp codec needs the imagecodecs package.",
            hint="Install it with 'pip install imagecodecs'.",
        ) from exc
    if not imagecodecs.ZFP.available:  # pragma: no cover
        raise CodecError("This imagecodecs build has no zfp.", hint="Reinstall imagecodecs.")
    import numcodecs

    try:
        numcodecs.get_codec({"id": Zfp.codec_id})
    except (ValueError, KeyError, TypeError):
        numcodecs.register_codec(Zfp)
    return Zfp(**config)


def _image_numcodec(config: dict[str, Any]) -> Any:
    try:
        from imagecodecs.numcodecs import register_codecs
    except ImportError as exc:  # pragma: no cover - imagecodecs is in the [all] extra
        raise CodecError(
            f"The {config['id'].removeprefix('imagecodecs_')} codec needs the imagecodecs package.",
            hint="Install it with 'pip install imagecodecs'.",
        ) from exc
    import numcodecs

    register_codecs(verbose=False)
    codec = numcodecs.get_codec(dict(config))
    # Zarr v2 metadata holds get_config(): the options set here, not every option this
    # imagecodecs knows (2026.11 lists options, webp "delay", jpeg2k "extrasample"..., that the
    # codecs of imagecodecs 2026.3 refuse, so the array would not open with it).
    # a partial of dict, not a lambda: the codec still pickles (dask.distributed, processes)
    codec.get_config = functools.partial(dict, dict(config))
    return codec


def _zfpy_numcodec(config: dict[str, Any]) -> Any:
    try:
        from numcodecs.zfpy import ZFPY
    except ImportError as exc:
        raise CodecError(
            "The zfpy codec needs the zfpy package.",
            hint='Install it with: pip install "zfpy!=1.0.1.post0"',
        ) from exc
    return ZFPY(**config)


#: Zarr v3 classes made here, by the name they are registered under.
_V3_CLASSES: dict[str, Any] = {}
#: What zarr 3.1's numcodecs wrapper warns on every codec it makes (gone in later zarr).
_NUMCODECS_V3_WARNING = "Numcodecs codecs are not in the Zarr version 3 specification"


def _numcodec_class(codec_id: str) -> Any:
    """Return the numcodecs class of an imagecodecs codec id (registering imagecodecs first)."""
    if codec_id == "imagecodecs_zfp":
        _zfp_numcodec({"mode": "reversible"})  # registers it with numcodecs
    else:
        _image_numcodec({"id": codec_id})
    from numcodecs.registry import codec_registry

    return codec_registry[codec_id]


def imagecodecs_v3_class(codec_id: str, *, legacy: bool = False) -> Any:
    """Return (creating and registering once) a Zarr v3 codec for an imagecodecs codec.

    Parameters
    ----------
    codec_id
        ``"imagecodecs_png"``, ``"imagecodecs_lzw"``...
    legacy
        False: the class named ``imagecodecs_NAME``, as imagecodecs' own Zarr 3 codecs
        (``imagecodecs.zarr``, the ``imagecodecs-zarr`` entry points) name it, with the same
        configuration; this is what is written. True: the class named
        ``numcodecs.imagecodecs_NAME`` (numcodecs' configuration in zarr's numcodecs wrapper),
        which this package wrote before; it is registered to read such data.

    Both decode through the numcodecs codec of the installed imagecodecs (every imagecodecs
    format describes its own size), so they need no ``imagecodecs.zarr`` and are bounded by
    the store layer's guard like every ``numcodecs.*`` wrapper.
    """
    key = f"numcodecs.{codec_id}" if legacy else codec_id
    if key in _V3_CLASSES:
        return _V3_CLASSES[key]
    numcodec = _numcodec_class(codec_id)
    import inspect
    import warnings

    import zarr.registry

    from napari_zarr_explorer._compat import (
        numcodecs_array_bytes_codec_class,
        numcodecs_bytes_bytes_codec_class,
    )
    from napari_zarr_explorer.store.imaging import role_of

    role = role_of(codec_id) or "array->bytes"
    make = (
        numcodecs_bytes_bytes_codec_class
        if role == "bytes->bytes"
        else numcodecs_array_bytes_codec_class
    )
    title = "Imagecodecs" + codec_id.removeprefix("imagecodecs_").capitalize()
    base = make(title, codec_id)
    if legacy:
        cls = base
    else:
        accepted = set(inspect.signature(numcodec.__init__).parameters) - {"self"}

        def from_dict(klass: Any, data: dict[str, Any]) -> Any:
            cfg = data.get("configuration") or {}
            if not isinstance(cfg, dict):
                raise CodecError(f"{codec_id}: the configuration must be a JSON object.")
            # options this imagecodecs does not know only matter when encoding
            kwargs = {k: v for k, v in cfg.items() if k in accepted}
            with warnings.catch_warnings():
                # zarr 3.1's wrapper warns that other implementations may not read numcodecs
                # codecs; this name is imagecodecs' own Zarr 3 codec, which they do read
                warnings.filterwarnings("ignore", message=_NUMCODECS_V3_WARNING)
                return klass(**kwargs)

        def to_dict(self: Any) -> dict[str, Any]:
            cfg = {k: v for k, v in self.codec_config.items() if k != "id"}
            return {"name": codec_id, "configuration": cfg} if cfg else {"name": codec_id}

        cls = type(
            title + "V3",
            (base,),
            {"from_dict": classmethod(from_dict), "to_dict": to_dict},
        )
    zarr.registry.register_codec(key, cls)
    _V3_CLASSES[key] = cls
    return cls


def _zfp_v3_class() -> Any:
    """Return the Zarr v3 codec ``imagecodecs_zfp`` (written by :meth:`CompressorSpec.v3_parts`)."""
    return imagecodecs_v3_class("imagecodecs_zfp")


def _bytes_v3_class(name: str) -> Any:
    """Return the Zarr v3 bytes codec ``imagecodecs_NAME`` (lzw)."""
    return imagecodecs_v3_class(f"imagecodecs_{name}")


def _image_v3_class(name: str) -> Any:
    """Return the Zarr v3 codec ``imagecodecs_NAME`` of an image codec (png, jpeg2k...)."""
    return imagecodecs_v3_class(f"imagecodecs_{name}")


_REGISTERED: list[bool] = []
_REGISTER_LOCK = threading.Lock()


def numcodecs_twin(codec: Any) -> Any | None:
    """Return our ``numcodecs.imagecodecs_NAME`` wrapper for another implementation's codec.

    For a Zarr v3 codec named ``imagecodecs_NAME`` that is not ours (the ``imagecodecs-zarr``
    entry points), so that the store layer can decode its chunks with a bound; None for any
    other codec.
    """
    try:
        doc = codec.to_dict()
    except Exception:
        return None
    name = doc.get("name") if isinstance(doc, dict) else None
    if not isinstance(name, str) or not name.startswith("imagecodecs_"):
        return None
    import inspect
    import warnings

    from zarr.abc.codec import ArrayBytesCodec, BytesBytesCodec

    from napari_zarr_explorer.store.imaging import role_of

    # only where our wrapper plays the same part (imagecodecs' Zarr 3 bitshuffle is a serializer)
    role = role_of(name)
    if not (
        (role == "array->bytes" and isinstance(codec, ArrayBytesCodec))
        or (role == "bytes->bytes" and isinstance(codec, BytesBytesCodec))
    ):
        return None

    try:
        numcodec = _numcodec_class(name)
        cls = imagecodecs_v3_class(name, legacy=True)
    except (CodecError, ImportError, KeyError, ValueError):
        return None
    accepted = set(inspect.signature(numcodec.__init__).parameters) - {"self"}
    cfg = doc.get("configuration") or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: numcodecs codecs are not in the v3 spec
        return cls(**{k: v for k, v in dict(cfg).items() if k in accepted})


def register_zarr_codecs() -> None:
    """Register with zarr the imagecodecs codecs this package reads and writes in Zarr v3.

    Each under ``imagecodecs_NAME`` (unless another implementation, such as the
    ``imagecodecs-zarr`` entry points, already provides that name) and under
    ``numcodecs.imagecodecs_NAME`` (what this package wrote before).
    """
    with _REGISTER_LOCK:
        if not _REGISTERED:
            _register_zarr_codecs()
            _REGISTERED.append(True)


def _register_zarr_codecs() -> None:
    from napari_zarr_explorer._compat import unknown_codec_errors
    from napari_zarr_explorer.store.imaging import CODECS

    names = [
        c for c, e in CODECS.items() if c.startswith("imagecodecs_") and e.role != "array->array"
    ]
    for codec_id in [*names, "imagecodecs_bitshuffle"]:
        with contextlib.suppress(CodecError, ImportError, KeyError, ValueError):
            imagecodecs_v3_class(codec_id, legacy=True)
    import zarr.registry

    for codec_id in names:
        if codec_id == "imagecodecs_bitshuffle":  # imagecodecs' Zarr 3 bitshuffle is a serializer
            continue
        if codec_id not in _V3_CLASSES:
            try:
                zarr.registry.get_codec_class(codec_id)
            except unknown_codec_errors():
                pass
            else:  # provided elsewhere: the store layer's guard bounds it all the same
                continue
        with contextlib.suppress(CodecError, ImportError, KeyError, ValueError):
            imagecodecs_v3_class(codec_id)


def _parse_value(text: str, *, where: str) -> float | int | bool:
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        raise CodecError(f"{where}: {t!r} is not a number.") from None


def _split_args(args: str, *, where: str) -> tuple[str | None, dict[str, str]]:
    """Return the positional argument (a level) and the key=value pairs of ``ARGS``."""
    positional: str | None = None
    pairs: dict[str, str] = {}
    for item in (a.strip() for a in args.split(",")):
        if not item:
            continue
        if "=" in item:
            k, v = item.split("=", 1)
            pairs[k.strip().lower()] = v.strip()
        elif positional is None and not pairs:
            positional = item
        else:
            # bare flag such as "reversible" or a shuffle name
            pairs[item.lower()] = "true"
    return positional, pairs


def _chunks_like(chunks: tuple[int, ...], keep: int) -> str:
    """Chunks like *chunks* that keep only their last *keep* dimensions larger than 1.

    Those keep their place and size (at most 4096); every other dimension becomes 1. Counting
    only the dimensions larger than 1, as imagecodecs does, keeps the image whole when size-1
    dimensions follow it: (2, 3, 64, 64, 3, 1) keeping 4 gives 1,3,64,64,3,1.
    """
    kept = set([i for i, c in enumerate(chunks) if c > 1][-keep:]) if keep > 0 else set()
    return ",".join(str(min(c, 4096)) if i in kept else "1" for i, c in enumerate(chunks))


@functools.cache
def _webp_max_side() -> int:
    """Return the largest side of a webp image the installed imagecodecs encodes.

    libwebp encodes 16383 pixels a side; imagecodecs before 2026.11 refuses 16383 and encodes
    16382. Measured once, by encoding a 2 x 16383 RGB image through the codec chunks are written
    with (about 10 ms), and only for a chunk wider than 16382: what imagecodecs 2026.11 writes
    at 16383 decodes exactly with 2026.3, so it is allowed wherever it encodes.
    """
    try:
        image = np.zeros((2, _WEBP_MAX_DIMENSION, 3), np.uint8)
        _image_numcodec({"id": "imagecodecs_webp", "lossless": True}).encode(image)
    except Exception:  # refused (ValueError), or no imagecodecs: what every version encodes
        return _IMAGE_MAX_SIDE["webp"]
    return _WEBP_MAX_DIMENSION


def _check_image_chunks(name: str, chunks: tuple[int, ...], *, where: str = "") -> None:
    """Raise :class:`CodecError` when the image codec *name* cannot encode *chunks* exactly.

    imagecodecs drops the size-1 dimensions of a chunk, wherever they are (after the samples
    too), and encodes what is left. What each codec then gives back exactly, with the chunk's
    shape (measured by encoding and decoding with imagecodecs 2026.3, 2026.10 and 2026.11):

    - png, jpeg, jpeg2k: one 2-D image (y, x), optionally followed by 2 to 4 samples, each side
      within :data:`_IMAGE_MAX_SIDE`. jpeg2k takes a third dimension as colour samples (up to
      4095 of them): imagecodecs before 2026.11 stores a (z, y, x) chunk whose first dimension
      is 4 or less and last more than 4 planar, which decodes transposed with every version;
      2026.11 stores it as a z-by-y image with x samples, exact but larger than its planes. It
      encodes no volume, so volumes are refused like for png;
    - webp: one RGB or RGBA image, the 3 or 4 samples last, within 16382 pixels a side (16383
      when the installed imagecodecs encodes it: 2026.11 and later, :func:`_webp_max_side`);
    - jpegxl: up to 3 dimensions larger than 1 (an image, or a stack of frames (z, y, x)), or 4
      when the last holds 2 to 4 samples (z, y, x, samples);
    - lerc: up to 4 dimensions larger than 1, any sizes.

    ``tests/test_recompress_codec_spec.py`` encodes both sides of every rule.
    """
    at = f"{where}: " if where else ""
    img = [c for c in chunks if c > 1]  # what imagecodecs keeps of the chunk
    if name in _IMAGE_VOLUME_DIMS:
        most = _IMAGE_VOLUME_DIMS[name]
        samples = name == "jpegxl" and len(img) == most + 1 and img[-1] <= 4
        if len(img) <= most or samples:
            return
        keep = most + 1 if name == "jpegxl" and img[-1] <= 4 else most
        what = (
            "images and (z, y, x) volumes (with up to 4 samples last)"
            if name == "jpegxl"
            else "chunks with up to 4 dimensions larger than 1"
        )
        lerc = ", choose lerc (up to 4 dimensions)" if name == "jpegxl" and len(img) <= 4 else ""
        raise CodecError(
            f"{at}{name} encodes {what}: chunks {chunks} have {len(img)} dimensions larger than 1.",
            hint=f"Give chunks like {_chunks_like(chunks, keep)}{lerc}, {_ANY_SHAPE}.",
        )
    rgb = name == "webp"
    # the samples are the last dimension larger than 1: size-1 dimensions may follow them
    has_samples = len(img) == 3 and img[-1] <= 4
    # chunks like the given ones, one plane each (and the samples last)
    samples_last = rgb or has_samples or (bool(img) and img[-1] <= 4)
    like_text = _chunks_like(chunks, 3 if samples_last else 2)
    if rgb and (not img or img[-1] not in (3, 4) or len(img) > 3):
        like = (  # one image of these samples, or an example when they are not there
            f"{like_text} (one image per chunk)"
            if img and img[-1] in (3, 4)
            else "1,256,256,3 for (..., y, x, rgb) data"
        )
        raise CodecError(
            f"{at}webp encodes RGB or RGBA images: chunks {chunks} must end with the samples (3 or "
            "4) after two dimensions larger than 1 (size-1 dimensions aside).",
            hint=f"Give chunks like {like}, {_ANY_SHAPE}.",
        )
    if rgb and len(img) < 3:
        raise CodecError(
            f"{at}webp encodes images of at least 2 x 2 pixels: chunks {chunks} hold a single "
            "row or column.",
            hint=f"Give chunks like 1,256,256,3, {_ANY_SHAPE}.",
        )
    if not rgb and len(img) > 2 + has_samples:
        raise CodecError(
            f"{at}{name} encodes 2-D images (with up to 4 samples last): chunks {chunks} have "
            f"{len(img)} dimensions larger than 1.",
            hint=f"Give chunks like {like_text} (one plane per chunk), choose jpegxl or lerc, "
            f"which encode (z, y, x) chunks, {_ANY_SHAPE}.",
        )
    limit = _IMAGE_MAX_SIDE.get(name)
    plane = img[:2]
    if limit is not None and name == "webp" and any(c > limit for c in plane):
        limit = _webp_max_side()
    if limit is not None and any(c > limit for c in plane):
        upgrade = (
            ", install imagecodecs 2026.11 or later (which encodes 16383)"
            if name == "webp" and max(plane) <= _WEBP_MAX_DIMENSION
            else ""
        )
        raise CodecError(
            f"{at}{name} encodes images up to {limit} pixels a side: chunks {chunks} are "
            f"{max(plane)} pixels across.",
            hint=f"Give smaller chunks (e.g. {like_text}){upgrade}, or choose jpeg2k, jpegxl or "
            f"lerc, {_ANY_SHAPE}.",
        )


def parse_compressor(
    text: str | CompressorSpec | None,
    *,
    shuffle: str | None = None,
) -> CompressorSpec:
    """Parse a compressor string into a :class:`CompressorSpec`.

    Parameters
    ----------
    text
        For example ``"zstd:5"``, ``"blosc-zstd:5"``, ``"blosc-lz4"``, ``"blosc-lz4hc:9"``,
        ``"gzip:6"``, ``"none"``, ``"zfp:rate=8"``, ``"bitround:7+zstd:3"``. ``None`` means
        ``"zstd:3"``. A :class:`CompressorSpec` is returned as is (with *shuffle* applied).
    shuffle
        ``"none"``, ``"byte"`` or ``"bit"``; overrides a shuffle given in *text*. Only the
        blosc compressors shuffle: any other compressor with ``"byte"``/``"bit"`` is an error.

    Returns
    -------
    CompressorSpec

    Raises
    ------
    CodecError
        Naming the unknown compressor, bad level or option, and listing the valid ones.
    """
    from dataclasses import replace

    if isinstance(text, CompressorSpec):
        spec = text
    else:
        spec = _parse_text("zstd:3" if text is None else str(text))
    if shuffle is not None:
        key = str(shuffle).strip().lower()
        if key not in _SHUFFLE_ALIASES:
            raise CodecError(f"Unknown shuffle {shuffle!r}.", hint="Use one of: none, byte, bit.")
        spec = replace(spec, shuffle=_SHUFFLE_ALIASES[key])
    if spec.shuffle not in (None, "none") and not spec.is_blosc:
        raise CodecError(
            f"Shuffle {spec.shuffle!r} needs a blosc compressor, not {spec.name!r}.",
            hint="Use blosc-zstd or blosc-lz4 to shuffle, or --shuffle none.",
        )
    if not spec.is_blosc and spec.shuffle == "none":
        spec = replace(spec, shuffle=None)
    return spec


def _parse_text(text: str) -> CompressorSpec:
    where = f"compressor {text!r}"
    name = "zstd"
    level: int | None = _LEVELS["zstd"][2]
    shuffle: Shuffle | None = None
    lossy: str | None = None
    lossy_opts: dict[str, Option] = {}
    filters: set[str] = set()
    main_given = False
    parts = [p.strip() for p in text.strip().lower().split("+")]
    if not parts or any(not p for p in parts):
        raise CodecError(f"Empty {where}.", hint=_valid_hint())
    for part in parts:
        pname, _, args = part.partition(":")
        pname = pname.strip()
        if pname in ("raw", "uncompressed", "null"):
            pname = "none"
        if pname == "blosc":
            pname = "blosc-lz4"
        if pname == "zlib":
            raise CodecError(f"{where}: zlib is not offered.", hint="Use gzip:N instead.")
        positional, pairs = _split_args(args, where=where)
        if pname in FILTER_NAMES:
            if positional is not None or pairs:
                raise CodecError(
                    f"{where}: {pname} takes no options (its item size is the data type's)."
                )
            if pname in filters:
                raise CodecError(f"{where}: {pname} is given twice.")
            filters.add(pname)
            continue
        if pname in LOSSY_NAMES or pname in IMAGE_NAMES:
            if lossy is not None:
                raise CodecError(f"{where}: only one lossy codec can be used.")
            lossy = pname
            lossy_opts = _parse_lossy(pname, positional, pairs, where=where)
            continue
        if pname not in COMPRESSOR_NAMES:
            raise CodecError(f"{where}: unknown compressor {pname!r}.", hint=_valid_hint())
        if main_given:
            raise CodecError(f"{where}: only one lossless compressor can be used.")
        main_given = True
        name = pname
        kind = "blosc" if name.startswith("blosc-") else name
        lo_hi = _LEVELS.get(kind)
        lvl_text = pairs.pop("level", pairs.pop("clevel", None)) or positional
        if name in ("none", "lzw"):
            level = None
            if lvl_text is not None or pairs:
                raise CodecError(f"{where}: '{name}' takes no options.")
            continue
        assert lo_hi is not None
        if lvl_text is None:
            level = lo_hi[2]
        else:
            try:
                level = int(lvl_text)
            except ValueError:
                raise CodecError(
                    f"{where}: level {lvl_text!r} is not an integer.",
                    hint=f"{name} levels go from {lo_hi[0]} to {lo_hi[1]}.",
                ) from None
            if not lo_hi[0] <= level <= lo_hi[1]:
                raise CodecError(
                    f"{where}: level {level} is out of range.",
                    hint=f"{name} levels go from {lo_hi[0]} to {lo_hi[1]}.",
                )
        shuf_text = pairs.pop("shuffle", None)
        for flag in [k for k, v in pairs.items() if v == "true" and k in _SHUFFLE_ALIASES]:
            shuf_text = flag
            pairs.pop(flag)
        if shuf_text is not None:
            if shuf_text not in _SHUFFLE_ALIASES:
                raise CodecError(
                    f"{where}: unknown shuffle {shuf_text!r}.", hint="Use none, byte or bit."
                )
            shuffle = _SHUFFLE_ALIASES[shuf_text]
        if pairs:
            raise CodecError(
                f"{where}: unknown option(s) {', '.join(sorted(pairs))}.",
                hint="Options are a level and, for blosc, shuffle=none|byte|bit.",
            )
    serializer = lossy in ("zfp", "zfpy") or lossy in IMAGE_NAMES
    if serializer and not main_given:
        name, level = "none", None
    elif serializer and name != "none":
        raise CodecError(
            f"{where}: {lossy} already compresses; it cannot be combined with {name}.",
            hint=f"Use {lossy} alone, e.g. {lossy}" + (":rate=8." if lossy == "zfp" else "."),
        )
    if {"shuffle", "bitshuffle"} <= filters:
        raise CodecError(f"{where}: use either shuffle or bitshuffle, not both.")
    if serializer and filters & {"shuffle", "bitshuffle"}:
        raise CodecError(
            f"{where}: {lossy} encodes the image itself; a byte shuffle cannot follow it.",
            hint="Shuffles go with a byte compressor, e.g. shuffle+zstd:5.",
        )
    return CompressorSpec(
        name=name,
        level=level,
        shuffle=shuffle,
        lossy=lossy,
        lossy_options=tuple(sorted(lossy_opts.items())),
        filters=tuple(f for f in FILTER_NAMES if f in filters),
    )


def _parse_lossy(
    name: str, positional: str | None, pairs: dict[str, str], *, where: str
) -> dict[str, Option]:
    opts: dict[str, Option] = {}
    if name == "png":
        if positional is not None or pairs:
            raise CodecError(f"{where}: png takes no options (it is lossless).")
        return opts
    if name in _IMAGE_OPTIONS:
        key, lo, hi = _IMAGE_OPTIONS[name]
        if name == "jpeg2k" and (positional == "reversible" or "reversible" in pairs):
            pairs.pop("reversible", "")
            positional = None
        if name == "webp" and (positional == "lossless" or "lossless" in pairs):
            pairs.pop("lossless", "")
            positional = None
        if positional is not None:
            pairs.setdefault(key, positional)
        if set(pairs) - {key}:
            raise CodecError(
                f"{where}: {name} takes one option, {key}=N.", hint=f"e.g. {name}:{key}=..."
            )
        if key in pairs:
            value = _parse_value(pairs[key], where=where)
            if not lo <= float(value) <= hi:
                raise CodecError(f"{where}: {name} {key} must be from {lo:g} to {hi:g}.")
            opts[key] = value
        return opts
    if name in ("zfp", "zfpy"):
        if positional == "reversible":
            pairs["reversible"] = "true"
        elif positional is not None:
            pairs.setdefault("rate", positional)
        if name == "zfpy" and not pairs:
            pairs["reversible"] = "true"
        if name == "zfp" and ("tolerance" in pairs or "accuracy" in pairs):
            raise CodecError(
                f"{where}: zfp's tolerance mode is not offered (imagecodecs takes integer levels).",
                hint="Use zfpy:tolerance=T (numcodecs' zfpy), zfp:rate=N or zfp:precision=N.",
            )
        modes = [m for m in ("tolerance", *_ZFP_MODES) if m in pairs]
        if len(modes) != 1 or len(pairs) != 1:
            raise CodecError(
                f"{where}: {name} needs exactly one of "
                + ("tolerance=T, " if name == "zfpy" else "")
                + "rate=N, precision=N or reversible.",
                hint=f"For example {name}:" + ("tolerance=0.01." if name == "zfpy" else "rate=8."),
            )
        mode = modes[0]
        if mode == "reversible":
            opts["reversible"] = True
        elif mode == "tolerance":
            value = _parse_value(pairs[mode], where=where)
            if not 0 < float(value) < math.inf:
                raise CodecError(f"{where}: zfpy tolerance must be a number above 0.")
            opts[mode] = value
        else:
            value = _parse_value(pairs[mode], where=where)
            if not float(value).is_integer() or not 1 <= value <= 64:
                raise CodecError(f"{where}: {name} {mode} must be an integer from 1 to 64.")
            opts[mode] = int(value)
        return opts
    if name == "fixedscaleoffset":
        if positional is not None:
            pairs.setdefault("scale", positional)
        unknown = set(pairs) - {"scale", "offset", "astype"}
        if unknown or "scale" not in pairs:
            raise CodecError(
                f"{where}: fixedscaleoffset takes scale=S and optionally offset=O, astype=TYPE.",
                hint="e.g. fixedscaleoffset:scale=100,astype=i2 (error up to 0.5/scale).",
            )
        scale = _parse_value(pairs["scale"], where=where)
        if not 0 < float(scale) < math.inf:
            raise CodecError(f"{where}: fixedscaleoffset scale must be a number above 0.")
        opts["scale"] = scale
        if "offset" in pairs:
            offset = _parse_value(pairs["offset"], where=where)
            if not math.isfinite(float(offset)):
                raise CodecError(f"{where}: fixedscaleoffset offset must be a finite number.")
            opts["offset"] = offset
        if "astype" in pairs:
            try:
                astype = np.dtype(pairs["astype"]).str[1:]
            except TypeError:
                astype = ""
            if astype not in _FSO_TYPES:
                raise CodecError(
                    f"{where}: fixedscaleoffset astype {pairs['astype']!r} is not offered.",
                    hint="Use one of: " + ", ".join(_FSO_TYPES) + ".",
                )
            opts["astype"] = astype
        return opts
    key = "keepbits" if name == "bitround" else "digits"
    if positional is not None:
        pairs.setdefault(key, positional)
    if set(pairs) != {key}:
        raise CodecError(f"{where}: {name} takes one option, {key}=N.", hint=f"e.g. {name}:7")
    value = _parse_value(pairs[key], where=where)
    if not float(value).is_integer() or not 0 <= value <= 52:
        raise CodecError(f"{where}: {name} {key} must be an integer from 0 to 52.")
    opts[key] = int(value)
    return opts


def _valid_hint() -> str:
    return (
        "Valid compressors: "
        + ", ".join(COMPRESSOR_NAMES)
        + "; filters before them: delta, shuffle, bitshuffle (e.g. shuffle+zstd:5);"
        + " lossy: zfp:rate=N, zfpy:tolerance=T, bitround:N, quantize:N,"
        + " fixedscaleoffset:scale=S; images: png, jpeg2k[:psnr=N], jpegxl[:distance=D],"
        + " lerc[:maxerror=E], webp[:quality=Q], jpeg:quality; a level after a colon (zstd:5)."
    )
