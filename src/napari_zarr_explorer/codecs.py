"""One description of the codec pipeline of Zarr v2 and v3 arrays.

Zarr v2 stores ``filters`` and a ``compressor`` next to a dtype whose byte order is part of its
string (``"<u2"``); Zarr v3 stores one chain of ``codecs``: array-to-array codecs, exactly one
array-to-bytes codec (``bytes``, ``sharding_indexed``, ...) and bytes-to-bytes codecs. This module
turns both into the same tuple of :class:`CodecInfo`, computed from the raw metadata JSON only:
no codec is instantiated, so codecs that are unknown or unavailable here are still described.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ARRAY_ARRAY",
    "ARRAY_BYTES",
    "BYTES_BYTES",
    "CodecInfo",
    "ShardingInfo",
    "chunk_key",
    "chunk_key_encoding",
    "codec_pipeline",
    "describe_pipeline",
    "endianness",
    "grid_shape",
    "inner_chunk_shape",
    "jsonable",
    "outer_chunk_shape",
    "sharding_info",
]

Role = Literal["array->array", "array->bytes", "bytes->bytes"]
ARRAY_ARRAY: Role = "array->array"
ARRAY_BYTES: Role = "array->bytes"
BYTES_BYTES: Role = "bytes->bytes"

# Codec names whose kind is known without asking zarr's registry (which may lack them here).
_KNOWN_ROLES: dict[str, Role] = {
    "transpose": ARRAY_ARRAY,
    "bytes": ARRAY_BYTES,
    "endian": ARRAY_BYTES,
    "sharding_indexed": ARRAY_BYTES,
    "vlen-utf8": ARRAY_BYTES,
    "vlen-bytes": ARRAY_BYTES,
    "numcodecs.zfpy": ARRAY_BYTES,
    "numcodecs.pcodec": ARRAY_BYTES,
    "zfpy": ARRAY_BYTES,
    "n5": ARRAY_BYTES,
    "blosc": BYTES_BYTES,
    "zstd": BYTES_BYTES,
    "gzip": BYTES_BYTES,
    "crc32c": BYTES_BYTES,
}


def jsonable(value: Any) -> Any:
    """Return *value* made JSON-safe: NaN/inf become ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

    Tuples become lists, bytes become lists of ints, numpy scalars become Python scalars and
    anything else unknown becomes its ``str``.
    """
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return list(value)
    if isinstance(value, complex):
        return [jsonable(value.real), jsonable(value.imag)]
    item = getattr(value, "item", None)
    if callable(item):  # numpy scalar
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return jsonable(tolist())
    return str(value)


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """One codec of a pipeline, as described by the metadata.

    Attributes
    ----------
    name
        The codec name (v3 ``name``, v2 numcodecs ``id``).
    configuration
        The codec configuration as written (JSON-safe); for ``sharding_indexed`` it holds the
        inner ``codecs`` and ``index_codecs`` lists as written.
    role
        ``"array->array"``, ``"array->bytes"`` or ``"bytes->bytes"``.
    implied
        True for a codec that the metadata implies but does not list (the byte order of a v2
        dtype, the memory order ``"F"`` of a v2 array).
    inner
        For sharding: the normalised inner codecs.
    index
        For sharding: the normalised index codecs.
    """

    name: str
    configuration: Mapping[str, Any] = field(default_factory=dict)
    role: Role = BYTES_BYTES
    implied: bool = False
    inner: tuple[CodecInfo, ...] = ()
    index: tuple[CodecInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"name", "configuration", "role", "implied"}`` (JSON-safe)."""
        out: dict[str, Any] = {
            "name": self.name,
            "configuration": jsonable(dict(self.configuration)),
            "role": self.role,
        }
        if self.implied:
            out["implied"] = True
        return out

    @property
    def short(self) -> str:
        """A compact one-line description, e.g. ``zstd(level=5)``."""
        if self.name == "sharding_indexed":
            inner = " | ".join(c.short for c in self.inner)
            shape = "x".join(str(s) for s in self.configuration.get("chunk_shape", []))
            return f"sharding[{shape}]({inner})"
        cfg = {k: v for k, v in self.configuration.items() if k not in ("id", "typesize")}
        if not cfg:
            return self.name
        parts = ", ".join(f"{k}={_short_value(v)}" for k, v in cfg.items())
        return f"{self.name}({parts})"

    def __str__(self) -> str:
        return self.short


def _short_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class ShardingInfo:
    """The layout of sharded chunks (``sharding_indexed`` codec).

    Attributes
    ----------
    chunk_shape
        Shape of the inner chunks.
    codecs
        Inner codecs.
    index_codecs
        Codecs of the shard index.
    index_location
        ``"end"`` (default) or ``"start"``.
    """

    chunk_shape: tuple[int, ...]
    codecs: tuple[CodecInfo, ...]
    index_codecs: tuple[CodecInfo, ...]
    index_location: Literal["start", "end"] = "end"

    def chunks_per_shard(self, shard_shape: Sequence[int]) -> tuple[int, ...]:
        """Return the number of inner chunks along each axis of a shard."""
        return tuple(s // c for s, c in zip(shard_shape, self.chunk_shape, strict=True))

    def index_nbytes(self, shard_shape: Sequence[int]) -> int:
        """Size in bytes of the encoded shard index (16 bytes per chunk + 4 per crc32c)."""
        n = math.prod(self.chunks_per_shard(shard_shape)) * 16
        return n + 4 * sum(1 for c in self.index_codecs if c.name == "crc32c")


def _role_of(name: str) -> Role | None:
    role = _KNOWN_ROLES.get(name)
    if role is not None:
        return role
    from napari_zarr_explorer.store.imaging import role_of

    role = role_of(name)  # shuffles, filters, zfpy and imagecodecs' image codecs
    if role is not None:
        return role
    try:
        from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec, BytesBytesCodec
        from zarr.registry import get_codec_class

        cls = get_codec_class(name)
    except Exception:  # unknown here: the position in the chain decides
        return None
    if issubclass(cls, ArrayArrayCodec):
        return ARRAY_ARRAY
    if issubclass(cls, ArrayBytesCodec):
        return ARRAY_BYTES
    if issubclass(cls, BytesBytesCodec):
        return BYTES_BYTES
    return None


def _name_and_config(raw: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(raw, str):
        return raw, {}
    if not isinstance(raw, Mapping):
        return repr(raw), {}
    name = raw.get("name", raw.get("id"))
    if not isinstance(name, str):
        name = "<unnamed>"
    if "name" in raw:
        cfg = raw.get("configuration") or {}
        cfg = dict(cfg) if isinstance(cfg, Mapping) else {"value": cfg}
    else:  # v2 numcodecs style: {"id": ..., **config}
        cfg = {k: v for k, v in raw.items() if k != "id"}
    return name, cfg


#: Longest codec list described. Real pipelines have a handful of codecs; a list of millions
#: (a few MB of JSON) would otherwise take minutes to describe.
MAX_CODECS = 64


def _check_length(raw_codecs: Sequence[Any], what: str) -> None:
    if len(raw_codecs) > MAX_CODECS:
        from napari_zarr_explorer.errors import MetadataError

        raise MetadataError(
            f"the {what} list has {len(raw_codecs)} entries, more than the {MAX_CODECS} "
            "accepted: not a plausible codec pipeline."
        )


def _v3_chain(raw_codecs: Any) -> tuple[CodecInfo, ...]:
    if not isinstance(raw_codecs, Sequence) or isinstance(raw_codecs, str):
        return ()
    _check_length(raw_codecs, "codecs")
    named = [_name_and_config(c) for c in raw_codecs]
    roles = [_role_of(name) for name, _ in named]
    # The array->bytes codec splits the chain; unknown codecs take their role from their side.
    try:
        split = roles.index(ARRAY_BYTES)
    except ValueError:
        split = -1
    out: list[CodecInfo] = []
    for i, ((name, cfg), role) in enumerate(zip(named, roles, strict=True)):
        if role is None:
            if split < 0:
                role = BYTES_BYTES
            elif i < split:
                role = ARRAY_ARRAY
            else:
                role = BYTES_BYTES
        inner: tuple[CodecInfo, ...] = ()
        index: tuple[CodecInfo, ...] = ()
        if name == "sharding_indexed":
            inner = _v3_chain(cfg.get("codecs", ()))
            index = _v3_chain(cfg.get("index_codecs", _DEFAULT_INDEX_CODECS))
        out.append(CodecInfo(name, jsonable(cfg), role, inner=inner, index=index))
    return tuple(out)


_DEFAULT_INDEX_CODECS = [
    {"name": "bytes", "configuration": {"endian": "little"}},
    {"name": "crc32c"},
]


def _v2_endian(dtype: Any) -> str | None:
    """Byte order of a v2 dtype string: ``"little"``, ``"big"`` or None (single byte/none)."""
    if isinstance(dtype, str) and dtype:
        return {"<": "little", ">": "big"}.get(dtype[0])
    if isinstance(dtype, list):  # structured dtype: the first field decides
        for fld in dtype:
            if isinstance(fld, list | tuple) and len(fld) >= 2:
                found = _v2_endian(fld[1])
                if found:
                    return found
    return None


def codec_pipeline(metadata: Mapping[str, Any], *, zarr_format: int) -> tuple[CodecInfo, ...]:
    """Return the normalised codec pipeline of an array's raw metadata.

    Parameters
    ----------
    metadata
        The raw ``.zarray`` (v2) or ``zarr.json`` (v3) document.
    zarr_format
        2 or 3.

    Returns
    -------
    tuple of CodecInfo
        For v2: the filters (array->array), an implied ``transpose`` when ``order`` is ``"F"``,
        an implied ``bytes`` codec carrying the dtype's byte order (array->bytes), and the
        compressor (bytes->bytes). For v3: the ``codecs`` list as written, each with its role.
    """
    if zarr_format == 3:
        return _v3_chain(metadata.get("codecs", ()))
    out: list[CodecInfo] = []
    filters = metadata.get("filters") or ()
    byte_filters: list[CodecInfo] = []
    if isinstance(filters, Sequence) and not isinstance(filters, str):
        _check_length(filters, "filters")
        named = [_name_and_config(flt) for flt in filters]
        # byte-level filters at the end (shuffles) act on the bytes: after the implied bytes
        tail = len(named)
        while tail and _role_of(named[tail - 1][0]) == BYTES_BYTES:
            tail -= 1
        for i, (name, cfg) in enumerate(named):
            if i < tail:
                out.append(CodecInfo(name, jsonable(cfg), ARRAY_ARRAY))
            else:
                byte_filters.append(CodecInfo(name, jsonable(cfg), BYTES_BYTES))
    shape = metadata.get("shape") or ()
    if metadata.get("order") == "F" and isinstance(shape, Sequence) and len(shape) > 1:
        order = list(range(len(shape)))[::-1]
        out.append(CodecInfo("transpose", {"order": order}, ARRAY_ARRAY, implied=True))
    endian = _v2_endian(metadata.get("dtype"))
    compressor = metadata.get("compressor")
    name, cfg = _name_and_config(compressor) if compressor else ("", {})
    if compressor and _role_of(name) == ARRAY_BYTES and not byte_filters:
        # image and array compressors (jpeg, png, zfpy...) encode the array themselves
        out.append(CodecInfo(name, jsonable(cfg), ARRAY_BYTES))
        return tuple(out)
    out.append(CodecInfo("bytes", {"endian": endian} if endian else {}, ARRAY_BYTES, implied=True))
    out.extend(byte_filters)
    if compressor:
        out.append(CodecInfo(name, jsonable(cfg), BYTES_BYTES))
    return tuple(out)


def describe_pipeline(codecs: Sequence[CodecInfo]) -> str:
    """One line for a pipeline: ``bytes(endian=little) | zstd(level=5)``."""
    return " | ".join(c.short for c in codecs) or "(none)"


def sharding_info(codecs: Sequence[CodecInfo]) -> ShardingInfo | None:
    """Return the sharding layout when the pipeline's array->bytes codec is ``sharding_indexed``."""
    for codec in codecs:
        if codec.name != "sharding_indexed":
            continue
        cfg = codec.configuration
        shape = cfg.get("chunk_shape", ())
        loc = cfg.get("index_location", "end")
        valid = isinstance(shape, list | tuple) and all(
            isinstance(s, int) and not isinstance(s, bool) for s in shape
        )
        return ShardingInfo(
            # a malformed inner chunk shape ("4x4", [[4]]) is reported where it is checked
            chunk_shape=tuple(shape) if valid else (),
            codecs=codec.inner,
            index_codecs=codec.index,
            index_location="start" if loc == "start" else "end",
        )
    return None


def endianness(codecs: Sequence[CodecInfo]) -> str | None:
    """Byte order of the stored chunks (``"little"``/``"big"``) or None when not applicable."""
    for codec in codecs:
        if codec.role == ARRAY_BYTES:
            if codec.name == "sharding_indexed":
                return endianness(codec.inner)
            value = codec.configuration.get("endian")
            return value if isinstance(value, str) else None
    return None


def outer_chunk_shape(metadata: Mapping[str, Any], *, zarr_format: int) -> tuple[int, ...]:
    """Return the shape of the stored objects' grid cells (shards when sharded, else chunks)."""
    if zarr_format == 3:
        grid = metadata.get("chunk_grid") or {}
        cfg = grid.get("configuration") if isinstance(grid, Mapping) else None
        shape = cfg.get("chunk_shape", ()) if isinstance(cfg, Mapping) else ()
        return _int_shape(shape, "chunk_grid.configuration.chunk_shape")
    return _int_shape(metadata.get("chunks", ()), "chunks")


def _int_shape(value: Any, what: str) -> tuple[int, ...]:
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and all(isinstance(c, int) and not isinstance(c, bool) for c in value)
    ):
        return tuple(value)
    from napari_zarr_explorer.errors import MetadataError

    raise MetadataError(f"{what} must be a list of integers, not {json.dumps(jsonable(value))}.")


def inner_chunk_shape(metadata: Mapping[str, Any], *, zarr_format: int) -> tuple[int, ...]:
    """Return the shape of the smallest encoded unit (inner chunks when sharded)."""
    shard = sharding_info(codec_pipeline(metadata, zarr_format=zarr_format))
    if shard is not None and shard.chunk_shape:
        return shard.chunk_shape
    return outer_chunk_shape(metadata, zarr_format=zarr_format)


def grid_shape(shape: Sequence[int], chunks: Sequence[int]) -> tuple[int, ...]:
    """Return the number of chunks along each axis (``ceil(shape / chunks)``)."""
    return tuple(
        -(-int(s) // int(c)) if int(c) > 0 else 0 for s, c in zip(shape, chunks, strict=True)
    )


def chunk_key_encoding(metadata: Mapping[str, Any], *, zarr_format: int) -> tuple[str, str]:
    """Return ``(encoding, separator)``: encoding ``"default"`` (v3 ``c/...``) or ``"v2"``."""
    if zarr_format == 2:
        sep = metadata.get("dimension_separator") or "."
        return "v2", sep if sep in ("/", ".") else "."
    enc = metadata.get("chunk_key_encoding") or {"name": "default"}
    if not isinstance(enc, Mapping):
        return "default", "/"
    name = enc.get("name", "default")
    cfg = enc.get("configuration") or {}
    if name == "v2":
        sep = cfg.get("separator", ".") if isinstance(cfg, Mapping) else "."
        return "v2", sep if sep in ("/", ".") else "."
    sep = cfg.get("separator", "/") if isinstance(cfg, Mapping) else "/"
    return "default", sep if sep in ("/", ".") else "/"


def chunk_key(index: Sequence[int], encoding: tuple[str, str]) -> str:
    """Return the store key (relative to the array) of the chunk at grid *index*."""
    name, sep = encoding
    if name == "v2":
        return sep.join(str(int(i)) for i in index) if len(index) else "0"
    return sep.join(["c", *(str(int(i)) for i in index)])
