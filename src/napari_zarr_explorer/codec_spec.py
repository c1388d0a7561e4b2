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
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from napari_zarr_explorer.errors import CodecError

__all__ = [
    "COMPRESSOR_NAMES",
    "IMAGE_NAMES",
    "LOSSY_NAMES",
    "SHUFFLES",
    "CompressorSpec",
    "ErrorStats",
    "parse_compressor",
    "register_zarr_codecs",
]

Shuffle = Literal["none", "byte", "bit"]
SHUFFLES: tuple[Shuffle, ...] = ("none", "byte", "bit")

_BLOSC_CNAMES = ("zstd", "lz4", "lz4hc", "blosclz", "zlib")
COMPRESSOR_NAMES: tuple[str, ...] = (
    "zstd",
    *(f"blosc-{c}" for c in _BLOSC_CNAMES),
    "gzip",
    "none",
)
LOSSY_NAMES: tuple[str, ...] = ("zfp", "bitround", "quantize")
#: imagecodecs image codecs written as the array->bytes codec (lossless by default except jpeg).
IMAGE_NAMES: tuple[str, ...] = ("png", "jpeg2k", "jpegxl", "lerc", "jpeg")
_IMAGE_DTYPES: dict[str, tuple[str, ...]] = {
    "png": ("u1", "u2"),
    "jpeg2k": ("u1", "u2", "i1", "i2"),
    "jpegxl": ("u1", "u2", "f4"),
    "lerc": ("i1", "u1", "i2", "u2", "i4", "u4", "f4", "f8"),
    "jpeg": ("u1",),
}
# name -> (option, value range, default) of the one option each image codec takes
_IMAGE_OPTIONS: dict[str, tuple[str, float, float]] = {
    "jpeg2k": ("psnr", 1, 200),  # lossy at this PSNR in dB (absent: reversible)
    "jpegxl": ("distance", 0, 25),  # butteraugli distance (absent or 0: lossless)
    "lerc": ("maxerror", 0, 1e300),  # largest absolute error (absent or 0: lossless)
    "jpeg": ("quality", 1, 100),
}

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
    lossy_options: tuple[tuple[str, float | int | bool], ...] = field(default=())

    # ------------------------------------------------------------------ description
    @property
    def is_blosc(self) -> bool:
        """True for the ``blosc-*`` compressors."""
        return self.name.startswith("blosc-")

    @property
    def is_lossy(self) -> bool:
        """True when decoded values may differ from the original ones."""
        if self.lossy == "zfp":
            return not bool(dict(self.lossy_options).get("reversible", False))
        if self.lossy in IMAGE_NAMES:
            return self.lossy == "jpeg" or any(float(v) > 0 for _, v in self.lossy_options)
        return self.lossy is not None

    @property
    def is_serializer(self) -> bool:
        """True for one array->bytes codec without a byte compressor (zfp, png...)."""
        return self.lossy == "zfp" or self.lossy in IMAGE_NAMES

    @property
    def label(self) -> str:
        """Canonical short text, parseable again by :func:`parse_compressor`."""
        parts: list[str] = []
        if self.lossy is not None:
            opts = ",".join(k if v is True else f"{k}={_fmt(v)}" for k, v in self.lossy_options)
            parts.append(f"{self.lossy}:{opts}" if opts else self.lossy)
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
        return "byte" if np.dtype(dtype).itemsize > 1 else "bit"

    def check_dtype(self, dtype: npt.DTypeLike) -> None:
        """Raise :class:`CodecError` when this spec cannot encode items of *dtype*."""
        dt = np.dtype(dtype)
        if self.lossy in ("bitround", "quantize") and dt.kind != "f":
            raise CodecError(
                f"{self.lossy} works on floating-point data only, not {dt}.",
                hint="Choose a lossless compressor for integer data (e.g. zstd:5).",
            )
        if self.lossy in IMAGE_NAMES and dt.str[1:] not in _IMAGE_DTYPES[self.lossy]:
            raise CodecError(
                f"{self.lossy} encodes {', '.join(_IMAGE_DTYPES[self.lossy])} data only, not {dt}.",
                hint="Choose a lossless compressor (e.g. zstd:5) for this array.",
            )
        if self.lossy == "zfp" and dt.str[1:] not in ("f4", "f8", "i4", "i8"):
            raise CodecError(
                f"zfp encodes float32, float64, int32 and int64 only, not {dt}.",
                hint="Choose a lossless compressor (e.g. zstd:5) for this array.",
            )

    # ------------------------------------------------------------------ zarr v3
    def v3_parts(self, dtype: npt.DTypeLike) -> tuple[list[Any], Any, list[Any]]:
        """Return ``(filters, serializer, compressors)`` for ``zarr.create_array``.

        Parameters
        ----------
        dtype
            The array's data type (sets blosc's type size and automatic shuffle).
        """
        import zarr.codecs as zc

        self.check_dtype(dtype)
        dt = np.dtype(dtype)
        filters: list[Any] = []
        serializer: Any = zc.BytesCodec(endian="little") if dt.itemsize > 1 else zc.BytesCodec()
        if self.lossy == "bitround":
            from zarr.codecs.numcodecs import BitRound

            filters.append(BitRound(keepbits=int(dict(self.lossy_options)["keepbits"])))
        elif self.lossy == "quantize":
            from zarr.codecs.numcodecs import Quantize

            filters.append(Quantize(digits=int(dict(self.lossy_options)["digits"]), dtype=dt.str))
        elif self.lossy == "zfp":
            serializer = _zfp_v3_class()(**self._zfp_config())
        elif self.lossy in IMAGE_NAMES:
            import warnings

            config = self._image_config()
            config.pop("id")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zarr: numcodecs codecs are not in the v3 spec
                serializer = _image_v3_class(self.lossy)(**config)
        compressors: list[Any] = []
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
                        self.shuffle_for(dt)
                    ],  # type: ignore[arg-type]
                    typesize=dt.itemsize,
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
        if self.lossy in IMAGE_NAMES:
            return _image_numcodec(self._image_config())
        if self.name == "zstd":
            return numcodecs.Zstd(level=int(self.level or 0))
        if self.name == "gzip":
            return numcodecs.GZip(level=int(self.level or 0))
        if self.is_blosc:
            shuffle = self.shuffle_for(dtype if dtype is not None else "u2")
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
        opts = dict(self.lossy_options)
        if self.lossy == "bitround":
            return [numcodecs.BitRound(keepbits=int(opts["keepbits"]))]
        if self.lossy == "quantize":
            return [numcodecs.Quantize(digits=int(opts["digits"]), dtype=np.dtype(dtype).str)]
        return None

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
        for f in self.v2_filters(arr.dtype) or []:
            arr = np.ascontiguousarray(f.encode(arr))
        if self.lossy == "zfp":
            return bytes(_zfp_numcodec(self._zfp_config()).encode(arr))
        if self.lossy in IMAGE_NAMES:
            return bytes(_image_numcodec(self._image_config()).encode(arr))
        le = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
        raw = memoryview(le.reshape(-1).view(np.uint8).data)
        if self.name == "zstd":
            return _zstd_compress(raw, int(self.level or 0))
        comp = self.v2_compressor(arr.dtype)
        if comp is None:
            return raw.tobytes()
        if self.is_blosc:
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
            nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        else:
            from napari_zarr_explorer.pyramid import max_chunk_bytes

            nbytes = max_chunk_bytes()
        if self.lossy == "zfp":
            out = np.asarray(decode_bounded(_zfp_numcodec(self._zfp_config()), data, nbytes))
        elif self.lossy in IMAGE_NAMES:
            out = np.asarray(decode_bounded(_image_numcodec(self._image_config()), data, nbytes))
        else:
            comp = self.v2_compressor(dtype)
            if self.name == "zstd":
                raw = _zstd_decompress(data, nbytes)
            else:
                raw = data if comp is None else decode_bounded(comp, data, nbytes)
            out = np.frombuffer(raw, dtype=np.uint8)
            if dtype is None:
                return out.copy()
            dt = np.dtype(dtype)
            out = out.view(dt.newbyteorder("<")).astype(dt, copy=False)
            for f in reversed(self.v2_filters(dt) or []):
                out = np.asarray(decode_bounded(f, out, nbytes, expansion=2.0)).view(dt)
        if dtype is not None:
            out = out.astype(np.dtype(dtype), copy=False)
        if shape is not None:
            out = out.reshape(shape)
        return out

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


def _fmt(v: float | int | bool) -> str:
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


_ZFP_V3: list[Any] = []


def _zfp_v3_class() -> Any:
    """Return (creating and registering once) the Zarr v3 codec ``numcodecs.imagecodecs_zfp``."""
    if _ZFP_V3:
        return _ZFP_V3[0]
    _zfp_numcodec({"mode": "reversible"})  # registers it with numcodecs
    import zarr.registry

    from napari_zarr_explorer._compat import numcodecs_array_bytes_codec_class

    ImagecodecsZfp = numcodecs_array_bytes_codec_class("ImagecodecsZfp", "imagecodecs_zfp")
    zarr.registry.register_codec("numcodecs.imagecodecs_zfp", ImagecodecsZfp)
    _ZFP_V3.append(ImagecodecsZfp)
    return ImagecodecsZfp


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
    return numcodecs.get_codec(dict(config))


_IMAGE_V3: dict[str, Any] = {}


def _image_v3_class(name: str) -> Any:
    """Return (creating and registering once) the Zarr v3 codec ``numcodecs.imagecodecs_NAME``."""
    if name in _IMAGE_V3:
        return _IMAGE_V3[name]
    _image_numcodec({"id": f"imagecodecs_{name}"})  # registers imagecodecs with numcodecs
    import zarr.registry
    from zarr.codecs.numcodecs import _NumcodecsArrayBytesCodec

    cls = type(
        f"Imagecodecs{name.capitalize()}",
        (_NumcodecsArrayBytesCodec,),
        {},
        codec_name=f"imagecodecs_{name}",
    )
    zarr.registry.register_codec(f"numcodecs.imagecodecs_{name}", cls)
    _IMAGE_V3[name] = cls
    return cls


def register_zarr_codecs() -> None:
    """Register the optional codecs this module can write (zfp, image codecs) with zarr."""
    with contextlib.suppress(CodecError):
        _zfp_v3_class()
    with contextlib.suppress(CodecError, ImportError):
        for name in IMAGE_NAMES:
            _image_v3_class(name)


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
    lossy_opts: dict[str, float | int | bool] = {}
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
        if name == "none":
            level = None
            if lvl_text is not None or pairs:
                raise CodecError(f"{where}: 'none' takes no options.")
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
    serializer = lossy == "zfp" or lossy in IMAGE_NAMES
    if serializer and not main_given:
        name, level = "none", None
    elif serializer and name != "none":
        raise CodecError(
            f"{where}: {lossy} already compresses; it cannot be combined with {name}.",
            hint=f"Use {lossy} alone, e.g. {lossy}" + (":rate=8." if lossy == "zfp" else "."),
        )
    return CompressorSpec(
        name=name,
        level=level,
        shuffle=shuffle,
        lossy=lossy,
        lossy_options=tuple(sorted(lossy_opts.items())),
    )


def _parse_lossy(
    name: str, positional: str | None, pairs: dict[str, str], *, where: str
) -> dict[str, float | int | bool]:
    opts: dict[str, float | int | bool] = {}
    if name == "png":
        if positional is not None or pairs:
            raise CodecError(f"{where}: png takes no options (it is lossless).")
        return opts
    if name in _IMAGE_OPTIONS:
        key, lo, hi = _IMAGE_OPTIONS[name]
        if name == "jpeg2k" and (positional == "reversible" or "reversible" in pairs):
            pairs.pop("reversible", "")
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
    if name == "zfp":
        if positional == "reversible":
            pairs["reversible"] = "true"
        elif positional is not None:
            pairs.setdefault("rate", positional)
        if "tolerance" in pairs or "accuracy" in pairs:
            raise CodecError(
                f"{where}: zfp's tolerance mode is not offered (imagecodecs takes integer levels).",
                hint="Use zfp:rate=N (bits per value) or zfp:precision=N (bit planes).",
            )
        modes = [m for m in _ZFP_MODES if m in pairs]
        if len(modes) != 1 or len(pairs) != 1:
            raise CodecError(
                f"{where}: zfp needs exactly one of rate=N, precision=N or reversible.",
                hint="For example zfp:rate=8.",
            )
        mode = modes[0]
        if mode == "reversible":
            opts["reversible"] = True
        else:
            value = _parse_value(pairs[mode], where=where)
            if not float(value).is_integer() or not 1 <= value <= 64:
                raise CodecError(f"{where}: zfp {mode} must be an integer from 1 to 64.")
            opts[mode] = int(value)
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
        + "; lossy: zfp:rate=N, bitround:N, quantize:N; images: png, jpeg2k[:psnr=N],"
        + " jpegxl[:distance=D], lerc[:maxerror=E], jpeg:quality; a level after a colon (zstd:5)."
    )
