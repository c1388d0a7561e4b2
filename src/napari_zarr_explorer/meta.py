"""Read and check Zarr metadata documents before zarr-python ever sees them.

Everything here reads JSON only: no chunk is decoded. :func:`check_array_metadata` is the gate
that refuses arrays which would need code execution (pickle) or arbitrary Python objects, and
names codecs that cannot be decoded here, so that :func:`open_array` never hands such an array to
zarr-python.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from napari_zarr_explorer.errors import (
    CodecError,
    ExplorerError,
    MetadataError,
    NotFoundError,
    UnsafeDataError,
)
from napari_zarr_explorer.locate import Location, safe_join

if TYPE_CHECKING:
    import zarr

__all__ = [
    "MAX_METADATA_BYTES",
    "ChunkSizeError",
    "NodeMeta",
    "check_array_metadata",
    "codec_ids",
    "guard_decoding",
    "join_key",
    "open_array",
    "open_group",
    "read_json",
    "read_node",
]

#: Largest metadata document read (consolidated metadata of big hierarchies stays well below).
MAX_METADATA_BYTES = 256 * 1024 * 1024

_V2_ARRAY = ".zarray"
_V2_GROUP = ".zgroup"
_V2_ATTRS = ".zattrs"
_V2_CONSOLIDATED = ".zmetadata"
_V3 = "zarr.json"

# Codec ids that execute code or build arbitrary Python objects when decoding.
_UNSAFE_CODECS = frozenset({"pickle", "numcodecs.pickle"})

# Codec ids known to come from a package other than numcodecs / zarr.
_CODEC_PACKAGES: dict[str, str] = {
    "zfpy": "zfpy",
    "pcodec": "pcodec",
    "jpeg2k": "imagecodecs",
    "jpeg": "imagecodecs",
    "jpegxl": "imagecodecs",
    "webp": "imagecodecs",
    "png": "imagecodecs",
    "lerc": "imagecodecs",
    "zfp": "imagecodecs",
    "sz3": "pysz3",
}

# v3 codec names understood by zarr-python itself.
_ZARR_V3_CODECS = frozenset(
    {"bytes", "endian", "transpose", "blosc", "gzip", "zstd", "crc32c", "sharding_indexed"}
)


def _sync(coro: Any) -> Any:
    from zarr.core.sync import sync

    return sync(coro)


def join_key(path: str, name: str) -> str:
    """Join a node *path* and a document *name* into a store key."""
    path = path.strip("/")
    return f"{path}/{name}" if path else name


def _get_bytes(store: Any, key: str, *, where: str) -> bytes | None:
    from zarr.core.buffer import default_buffer_prototype

    try:
        buf = _sync(store.get(key, prototype=default_buffer_prototype()))
    except (FileNotFoundError, KeyError):  # NotFoundError included
        return None
    except ExplorerError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise MetadataError(
            f"{_where(where, key)}: the metadata document could not be read: {reason}.",
            hint="Check that it is a readable regular file (not a folder, a symbolic link loop "
            "or a file without read permission) and restore it from a copy if needed.",
        ) from None
    if buf is None:
        return None
    data: bytes = buf.to_bytes()
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataError(
            f"{_where(where, key)}: metadata document is {len(data)} bytes, more than the "
            f"{MAX_METADATA_BYTES} bytes allowed.",
            hint="This is not a plausible Zarr metadata document.",
        )
    return data


def _where(where: str, key: str) -> str:
    where = where.rstrip("/")
    return f"{where}/{key}" if where else key


def _max_int_digits() -> int:
    get = getattr(sys, "get_int_max_str_digits", None)
    limit = int(get()) if get is not None else 0
    return limit or 4300


def read_json(store: Any, key: str, *, where: str) -> dict[str, Any] | None:
    """Read one JSON document from a zarr store.

    Parameters
    ----------
    store
        A ``zarr.abc.store.Store``.
    key
        The key of the document (``"zarr.json"``, ``"labels/.zattrs"``...).
    where
        The location of the store, used in messages.

    Returns
    -------
    dict or None
        The parsed object, or None when the key does not exist.

    Raises
    ------
    MetadataError
        When the document is not valid UTF-8 JSON or is not a JSON object; the message names the
        file and the position of the problem.
    """
    raw = _get_bytes(store, key, where=where)
    if raw is None:
        return None
    return parse_json(raw, _where(where, key))


def parse_json(raw: bytes, name: str) -> dict[str, Any]:
    """Parse a metadata document that must be a JSON object.

    Parameters
    ----------
    raw
        The bytes of the document.
    name
        The file or key it came from, used in messages.

    Returns
    -------
    dict
        The parsed object.

    Raises
    ------
    MetadataError
        When the bytes are not UTF-8 JSON or not a JSON object; the message names *name* and
        the position of the problem.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(
            f"{name}: not valid UTF-8 text (byte {exc.start}).",
            hint="The metadata file is corrupt; restore it from a copy.",
        ) from None
    if not text.strip():
        raise MetadataError(
            f"{name}: invalid JSON: the file is empty.",
            hint="The metadata file is truncated or corrupt.",
        )
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetadataError(
            f"{name}: invalid JSON: {exc.msg.removesuffix(' at')} at line {exc.lineno}, "
            f"column {exc.colno}.",
            hint="The metadata file is truncated or corrupt; restore it from a copy.",
        ) from None
    except RecursionError:
        raise MetadataError(f"{name}: invalid JSON: nested too deeply.") from None
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        if "int" in str(exc) and "digits" in str(exc):
            what = f"contains an integer with more than {_max_int_digits()} digits"
        else:
            what = f"unusable JSON: {exc}"
        raise MetadataError(
            f"{name}: {what}.",
            hint="The metadata file is corrupt or hostile; restore it from a copy.",
        ) from None
    if not isinstance(obj, dict):
        raise MetadataError(
            f"{name}: expected a JSON object, found {type(obj).__name__}.",
            hint="The metadata file is corrupt.",
        )
    return obj


@dataclass(frozen=True, slots=True)
class NodeMeta:
    """The metadata of one node (array or group) of a Zarr hierarchy.

    Attributes
    ----------
    path
        Store-relative path of the node (``""`` for the root).
    kind
        ``"array"`` or ``"group"``.
    zarr_format
        2 or 3.
    attributes
        User attributes (``.zattrs`` or the ``attributes`` of ``zarr.json``).
    metadata
        The raw ``.zarray`` / ``.zgroup`` or ``zarr.json`` document.
    """

    path: str
    kind: Literal["array", "group"]
    zarr_format: Literal[2, 3]
    attributes: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of an array node (None for groups or malformed metadata)."""
        shape = self.metadata.get("shape")
        if isinstance(shape, list) and all(isinstance(s, int) for s in shape):
            return tuple(shape)
        return None


# Consolidated metadata per store object, read once (stores are often unhashable: keyed by id,
# with a weak reference that both checks identity and drops the entry with the store).
_CONSOLIDATED: dict[int, tuple[Any, dict[str, tuple[int, dict[str, Any]]] | None]] = {}
_CONSOLIDATED_LOCK = threading.Lock()


def consolidated_nodes(store: Any, *, where: str) -> dict[str, tuple[int, dict[str, Any]]] | None:
    """Map of node path -> (zarr_format, metadata incl. attributes) from consolidated metadata."""
    key = id(store)
    with _CONSOLIDATED_LOCK:
        entry = _CONSOLIDATED.get(key)
        if entry is not None and entry[0]() is store:
            return entry[1]
    result: dict[str, tuple[int, dict[str, Any]]] | None = None
    root = read_json(store, _V3, where=where)
    if root is not None:
        cm = root.get("consolidated_metadata")
        if isinstance(cm, dict) and isinstance(cm.get("metadata"), dict):
            result = {}
            for path, md in cm["metadata"].items():
                if isinstance(path, str) and isinstance(md, dict):
                    result[path.strip("/")] = (3, md)
    else:
        zmeta = read_json(store, _V2_CONSOLIDATED, where=where)
        if zmeta is not None and isinstance(zmeta.get("metadata"), dict):
            docs: dict[str, Any] = zmeta["metadata"]
            result = {}
            for doc_key, md in docs.items():
                if not isinstance(doc_key, str) or not isinstance(md, dict):
                    continue
                path, _, name = doc_key.rpartition("/")
                if name in (_V2_ARRAY, _V2_GROUP):
                    attrs = docs.get(join_key(path, _V2_ATTRS))
                    doc = dict(md)
                    doc["__kind__"] = "array" if name == _V2_ARRAY else "group"
                    doc["__attrs__"] = attrs if isinstance(attrs, dict) else {}
                    result[path] = (2, doc)

    def forget(_ref: Any, k: int = key) -> None:
        _CONSOLIDATED.pop(k, None)

    try:
        ref = weakref.ref(store, forget)
    except TypeError:  # not weak-referenceable: do not cache
        return result
    with _CONSOLIDATED_LOCK:
        _CONSOLIDATED[key] = (ref, result)
    return result


def read_node(store: Any, path: str, *, where: str) -> NodeMeta | None:
    """Read the metadata of the node at *path*.

    Zarr v3 (``zarr.json``) is tried first, then v2 (``.zarray`` / ``.zgroup`` with
    ``.zattrs``). Consolidated metadata at the root is used for nodes it describes, which saves
    requests on remote stores.

    Parameters
    ----------
    store
        A ``zarr.abc.store.Store``.
    path
        Store-relative node path (``""`` for the root).
    where
        The location of the store, used in messages.

    Returns
    -------
    NodeMeta or None
        None when there is no Zarr node at *path*.

    Raises
    ------
    MetadataError
        When a metadata document is corrupt or malformed.
    """
    path = path.strip("/")
    if path:
        cons = consolidated_nodes(store, where=where)
        if cons is not None and path in cons:
            cfmt, cmd = cons[path]
            if cfmt == 3:
                return _v3_node(path, cmd, where=_where(where, join_key(path, _V3)))
            cmd = dict(cmd)
            kind = cmd.pop("__kind__")
            cattrs = cmd.pop("__attrs__")
            return NodeMeta(path=path, kind=kind, zarr_format=2, attributes=cattrs, metadata=cmd)
    doc = read_json(store, join_key(path, _V3), where=where)
    if doc is not None:
        return _v3_node(path, doc, where=_where(where, join_key(path, _V3)))
    array = read_json(store, join_key(path, _V2_ARRAY), where=where)
    group = None if array is not None else read_json(store, join_key(path, _V2_GROUP), where=where)
    attrs = read_json(store, join_key(path, _V2_ATTRS), where=where)
    if array is None and group is None:
        if attrs is None:
            return None
        # Attributes without .zgroup: treat as an implicit v2 group (seen in the wild).
        group = {"zarr_format": 2}
    md = array if array is not None else group
    assert md is not None
    fmt = md.get("zarr_format", 2)
    if fmt != 2:
        name = _V2_ARRAY if array is not None else _V2_GROUP
        raise MetadataError(
            f"{_where(where, join_key(path, name))}: zarr_format is {fmt!r}, expected 2.",
        )
    return NodeMeta(
        path=path,
        kind="array" if array is not None else "group",
        zarr_format=2,
        attributes=attrs or {},
        metadata=md,
    )


def _v3_node(path: str, doc: dict[str, Any], *, where: str) -> NodeMeta:
    fmt = doc.get("zarr_format")
    if fmt != 3:
        raise MetadataError(f"{where}: zarr_format is {fmt!r}, expected 3.")
    node_type = doc.get("node_type")
    if node_type not in ("array", "group"):
        raise MetadataError(
            f"{where}: node_type is {node_type!r}, expected 'array' or 'group'.",
        )
    attrs = doc.get("attributes", {})
    if attrs is None:
        attrs = {}
    if not isinstance(attrs, dict):
        raise MetadataError(
            f"{where}: 'attributes' must be a JSON object, found {type(attrs).__name__}."
        )
    return NodeMeta(
        path=path,
        kind="array" if node_type == "array" else "group",
        zarr_format=3,
        attributes=attrs,
        metadata=doc,
    )


# --------------------------------------------------------------------------------------------
# Codec and dtype checks
# --------------------------------------------------------------------------------------------


def _provider(codec_id: str) -> str | None:
    """Return the package known to provide *codec_id*, or None when none is known."""
    base = codec_id.removeprefix("numcodecs.")
    if base.startswith("imagecodecs_"):
        return "imagecodecs"
    return _CODEC_PACKAGES.get(base)


def _installed(package: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(package)
    except PackageNotFoundError:
        return False
    return True


def _numcodecs_has(codec_id: str) -> bool:
    from numcodecs import registry

    if codec_id in registry.codec_registry:
        return True
    if codec_id.startswith("imagecodecs_"):
        try:
            from imagecodecs.numcodecs import register_codecs
        except ImportError:
            return False
        register_codecs(verbose=False)
        return codec_id in registry.codec_registry
    try:
        registry.run_entrypoints()
    except Exception:
        return False
    return codec_id in registry.codec_registry


def _unsafe(codec_id: str, where: str, position: str) -> UnsafeDataError:
    return UnsafeDataError(
        f"{where}: the {position} uses the codec {codec_id!r}, which decodes with Python pickle "
        "and could run arbitrary code; this array is refused and no byte of it was decoded.",
        hint="Re-encode the data with a safe codec (e.g. a numeric dtype with zstd) in a trusted "
        "environment.",
    )


def _unknown(codec_id: str, where: str, position: str) -> CodecError:
    pkg = _provider(codec_id)
    if pkg is not None and not _installed(pkg):
        return CodecError(
            f"{where}: the {position} uses the codec {codec_id!r}, which is not available here.",
            hint=f"It is provided by the package {pkg!r}: install it (pip install {pkg}) "
            "and open the data again.",
        )
    if pkg is not None:
        return CodecError(
            f"{where}: the {position} uses the codec {codec_id!r}, which the installed package "
            f"{pkg!r} does not provide.",
            hint=f"A newer {pkg} may provide it (pip install {pkg} --upgrade); otherwise "
            "open the data where the software that wrote it is installed.",
        )
    return CodecError(
        f"{where}: the {position} uses the codec {codec_id!r}, which is not a codec "
        "zarr-python or numcodecs know: the data was written with a codec this environment "
        "lacks.",
        hint=f"Find out which software wrote the data and install the package that provides "
        f"the codec {codec_id!r} (or re-encode the data where it is available).",
    )


def _check_v2_codec(codec: Any, *, where: str, position: str) -> None:
    if codec is None:
        return
    if not isinstance(codec, dict) or not isinstance(codec.get("id"), str):
        raise MetadataError(
            f"{where}: the {position} must be a JSON object with a string 'id', found {codec!r}."
        )
    cid = codec["id"]
    if cid in _UNSAFE_CODECS:
        raise _unsafe(cid, where, position)
    if not _numcodecs_has(cid):
        raise _unknown(cid, where, position)


def _v2_dtype_has_object(dtype: Any) -> bool:
    if isinstance(dtype, str):
        return dtype.lstrip("<>|=").startswith("O")
    if isinstance(dtype, list):
        for entry in dtype:
            if isinstance(entry, list | tuple) and len(entry) >= 2:
                if _v2_dtype_has_object(entry[1]):
                    return True
            else:
                return True  # malformed: treat as unsafe rather than guessing
        return False
    return True


def _v3_codec_name(codec: Any, *, where: str, position: str) -> tuple[str, Mapping[str, Any]]:
    if isinstance(codec, str):
        return codec, {}
    if isinstance(codec, dict) and isinstance(codec.get("name"), str):
        conf = codec.get("configuration") or {}
        if not isinstance(conf, dict):
            raise MetadataError(f"{where}: the {position} has a non-object 'configuration'.")
        return codec["name"], conf
    raise MetadataError(
        f"{where}: the {position} must be a codec name or an object with a string 'name', "
        f"found {codec!r}."
    )


def _positive_ints(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    )


def _check_inner_chunks(inner: Any, outer: Any, *, where: str, position: str) -> None:
    """Refuse a sharding ``chunk_shape`` that zarr-python cannot divide the shards into."""
    if not _positive_ints(inner) or not inner:
        raise MetadataError(
            f"{where}: the {position} chunk_shape {inner!r} must be a list of positive integers."
        )
    if not _positive_ints(outer):
        return  # the outer chunk shape is reported by the shape check
    if len(inner) != len(outer):
        raise MetadataError(
            f"{where}: the {position} chunk_shape {inner!r} must have one entry per dimension "
            f"of the shard shape {outer!r}."
        )
    if any(o % i for o, i in zip(outer, inner, strict=True)):
        raise MetadataError(
            f"{where}: the {position} chunk_shape {inner!r} is not dividing the shard shape "
            f"{outer!r}.",
            hint="Each shard must hold a whole number of inner chunks; the metadata is corrupt.",
        )


def _check_v3_codecs(codecs: Any, *, where: str, position: str, chunk_shape: Any = None) -> None:
    if codecs is None:
        raise MetadataError(f"{where}: {position} is missing.")
    if not isinstance(codecs, list):
        raise MetadataError(f"{where}: {position} must be a JSON list, found {codecs!r}.")
    from zarr.registry import get_codec_class

    from napari_zarr_explorer.codec_spec import register_zarr_codecs

    # Codecs this package itself writes (zfp through imagecodecs) are known to zarr only once
    # registered; registering is cheap and idempotent.
    register_zarr_codecs()
    for i, codec in enumerate(codecs):
        pos = f"{position}[{i}]"
        name, conf = _v3_codec_name(codec, where=where, position=pos)
        if name in _UNSAFE_CODECS:
            raise _unsafe(name, where, pos)
        if name == "sharding_indexed":
            inner = conf.get("chunk_shape")
            _check_inner_chunks(inner, chunk_shape, where=where, position=f"{pos} (sharding)")
            _check_v3_codecs(
                conf.get("codecs"), where=where, position=f"{pos} codecs", chunk_shape=inner
            )
            _check_v3_codecs(
                conf.get("index_codecs", [{"name": "bytes"}, {"name": "crc32c"}]),
                where=where,
                position=f"{pos} index_codecs",
            )
            continue
        if name in _ZARR_V3_CODECS:
            continue
        if name.startswith("numcodecs."):
            base = name.removeprefix("numcodecs.")
            if base in _UNSAFE_CODECS:
                raise _unsafe(name, where, pos)
            if not _numcodecs_has(base):
                raise _unknown(name, where, pos)
        try:
            get_codec_class(name)
        except KeyError:
            raise _unknown(name, where, pos) from None
        except Exception as exc:
            raise CodecError(f"{where}: codec {name!r} failed to load: {exc}") from None


def check_array_metadata(metadata: Mapping[str, Any], *, where: str, zarr_format: int) -> None:
    """Refuse array metadata that is unsafe or cannot be decoded here.

    Must be called before zarr-python sees the array.

    Parameters
    ----------
    metadata
        The raw ``.zarray`` (v2) or ``zarr.json`` (v3) document.
    where
        The location of the array, used in messages.
    zarr_format
        2 or 3.

    Raises
    ------
    UnsafeDataError
        When a codec or the dtype would need pickle or Python objects to decode.
    CodecError
        When a codec is unknown or its package is not installed; names the codec id and the
        package that provides it.
    MetadataError
        When the metadata is malformed (wrong JSON types, missing keys).
    """
    if zarr_format == 2:
        dtype = metadata.get("dtype")
        if dtype is None:
            raise MetadataError(f"{where}: the .zarray has no 'dtype'.")
        if _v2_dtype_has_object(dtype):
            raise UnsafeDataError(
                f"{where}: the dtype {dtype!r} holds Python objects, which are decoded with an "
                "object codec; this array is refused and no byte of it was decoded.",
                hint="Only numeric, boolean and fixed-size string arrays are opened.",
            )
        filters = metadata.get("filters")
        if filters is not None and not isinstance(filters, list):
            raise MetadataError(f"{where}: 'filters' must be a list or null, found {filters!r}.")
        for i, f in enumerate(filters or []):
            _check_v2_codec(f, where=where, position=f"filter {i}")
        _check_v2_codec(metadata.get("compressor"), where=where, position="compressor")
        _check_shape_chunks(metadata.get("shape"), metadata.get("chunks"), where=where)
        return
    if zarr_format != 3:
        raise MetadataError(f"{where}: unsupported zarr_format {zarr_format!r}.")
    dtype = metadata.get("data_type")
    name = dtype.get("name") if isinstance(dtype, dict) else dtype
    if not isinstance(name, str):
        raise MetadataError(f"{where}: 'data_type' must be a string, found {dtype!r}.")
    if name.lower() in ("object", "o", "|o", "pickle"):
        raise UnsafeDataError(
            f"{where}: the data type {name!r} holds Python objects; this array is refused and "
            "no byte of it was decoded.",
        )
    grid = metadata.get("chunk_grid")
    chunks = None
    if isinstance(grid, dict) and isinstance(grid.get("configuration"), dict):
        chunks = grid["configuration"].get("chunk_shape")
    _check_v3_codecs(metadata.get("codecs"), where=where, position="codecs", chunk_shape=chunks)
    _check_shape_chunks(metadata.get("shape"), chunks, where=where)


def _check_shape_chunks(shape: Any, chunks: Any, *, where: str) -> None:
    if not isinstance(shape, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise MetadataError(f"{where}: 'shape' must be a list of non-negative integers.")
    if chunks is None:
        return
    if (
        not isinstance(chunks, list)
        or len(chunks) != len(shape)
        or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in chunks)
    ):
        raise MetadataError(
            f"{where}: the chunk shape {chunks!r} must be a list of positive integers, one per "
            f"dimension of the shape {shape!r}."
        )
    if math.prod(chunks) > 2**62:
        raise MetadataError(f"{where}: the chunk shape {chunks!r} is absurdly large.")


def codec_ids(metadata: Mapping[str, Any], zarr_format: int) -> list[str]:
    """Return the codec ids of an array's pipeline, in order (nested sharding codecs included)."""
    out: list[str] = []
    if zarr_format == 2:
        for f in metadata.get("filters") or []:
            if isinstance(f, dict):
                out.append(str(f.get("id")))
        comp = metadata.get("compressor")
        if isinstance(comp, dict):
            out.append(str(comp.get("id")))
        return out

    def walk(codecs: Any) -> None:
        for c in codecs if isinstance(codecs, list) else []:
            name = c if isinstance(c, str) else c.get("name") if isinstance(c, dict) else None
            out.append(str(name))
            if name == "sharding_indexed" and isinstance(c, dict):
                walk((c.get("configuration") or {}).get("codecs"))

    walk(metadata.get("codecs"))
    return out


# --------------------------------------------------------------------------------------------
# Decompression guard: no chunk may decode to more than its declared size
# --------------------------------------------------------------------------------------------


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
    n = len(mv)
    pos = 0
    total = 0
    while pos + 4 <= n:
        magic = int.from_bytes(mv[pos : pos + 4], "little")
        if 0x184D2A50 <= magic <= 0x184D2A5F:  # skippable frame
            if pos + 8 > n:
                return
            pos += 8 + int.from_bytes(mv[pos + 4 : pos + 8], "little")
            continue
        if magic != 0xFD2FB528 or pos + 5 > n:
            return  # not zstd: let the codec report it
        fhd = mv[pos + 4]
        pos += 5
        fcs_flag, single, checksum, did_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
        window: int | None = None
        if not single:
            if pos >= n:
                return
            wd = mv[pos]
            pos += 1
            base = 1 << (10 + (wd >> 3))
            window = base + (base // 8) * (wd & 7)
        pos += (0, 1, 2, 4)[did_flag]
        fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
        fcs: int | None = None
        if fcs_size:
            if pos + fcs_size > n:
                return
            fcs = int.from_bytes(mv[pos : pos + fcs_size], "little") + (256 if fcs_size == 2 else 0)
            pos += fcs_size
            if single:
                window = fcs
            if total + fcs > bound:
                raise _too_big("zstd", total + fcs, bound)
        block_max = min(window or (1 << 17), 1 << 17)
        frame = 0
        while True:
            if pos + 3 > n:
                return
            bh = int.from_bytes(mv[pos : pos + 3], "little")
            pos += 3
            btype, bsize = (bh >> 1) & 3, bh >> 3
            if btype == 0:
                frame += bsize
                pos += bsize
            elif btype == 1:
                frame += bsize
                pos += 1
            elif btype == 2:
                frame += block_max
                pos += bsize
            else:
                return
            if fcs is None and total + frame > bound:
                raise _too_big("zstd", None, bound)
            if bh & 1:
                break
        pos += 4 if checksum else 0
        total += fcs if fcs is not None else frame


def _precheck(codec: str, data: Any, bound: int) -> None:
    mv = memoryview(data).cast("B")
    if codec == "zstd":
        _zstd_check(mv, bound)
    elif codec == "blosc" and len(mv) >= 16:
        nbytes = int.from_bytes(mv[4:8], "little")
        if nbytes > bound:
            raise _too_big("blosc", nbytes, bound)
    elif codec == "lz4" and len(mv) >= 4:
        nbytes = int.from_bytes(mv[0:4], "little")
        if nbytes > bound:
            raise _too_big("lz4", nbytes, bound)


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
            _precheck(self.kind, data, bound)
            return await self.inner._decode_single(chunk_bytes, chunk_spec)

        async def _encode_single(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
            return await self.inner._encode_single(chunk_bytes, chunk_spec)

        def compute_encoded_size(self, input_byte_length: int, chunk_spec: Any) -> int:
            return int(self.inner.compute_encoded_size(input_byte_length, chunk_spec))

        def to_dict(self) -> Any:
            return self.inner.to_dict()

    out: list[Any] = []
    for codec in codecs:
        if isinstance(codec, ShardingCodec):
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
        elif isinstance(codec, BytesBytesCodec) and hasattr(codec, "_codec"):
            cid = getattr(codec._codec, "codec_id", "")
            if cid in _HEADER_CODECS or (cid in _STREAM_CODECS and cid != "lzma"):
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
    Arrays whose pipeline cannot be rebuilt are returned unchanged.
    """
    try:
        import numpy as _np
        from zarr.codecs._v2 import V2Codec
        from zarr.core.metadata import ArrayV2Metadata, ArrayV3Metadata
        from zarr.registry import get_pipeline_class

        aa = array._async_array
        md = aa.metadata
        if isinstance(md, ArrayV2Metadata):
            nbytes = math.prod(md.chunks) * _np.dtype(md.dtype.to_native_dtype()).itemsize
            bound = chunk_bound(nbytes, v2_expansion(md.filters))
            comp = md.compressor
            if comp is None:
                return array
            codec = V2Codec(filters=md.filters, compressor=guarded_v2_compressor(comp, bound))
            pipeline = get_pipeline_class().from_codecs([codec])
        elif isinstance(md, ArrayV3Metadata):
            pipeline = get_pipeline_class().from_codecs(_guard_v3_codecs(md.codecs))
        else:
            return array
        object.__setattr__(aa, "codec_pipeline", pipeline)
    except Exception:  # an unknown zarr layout: read unguarded rather than fail
        return array
    return array


# --------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------


def _open_store(location: Location | Any) -> tuple[Location, Any]:
    from napari_zarr_explorer.locate import parse_location

    loc = parse_location(location)
    return loc, loc.open_store()


def open_array(location: Location, path: str = "", *, store: Any = None) -> zarr.Array[Any]:
    """Open the array at *path* read-only, after checking its metadata.

    Parameters
    ----------
    location
        Where the store is (see :func:`napari_zarr_explorer.locate.parse_location`).
    path
        Store-relative path of the array; refused if it would leave the store.
    store
        An already opened store for *location* (saves opening it again).

    Returns
    -------
    zarr.Array

    Raises
    ------
    MetadataError, CodecError, UnsafeDataError, PathEscapeError, NotFoundError
    """
    import zarr

    path = safe_join("", path)
    if store is None:
        location, store = _open_store(location)
    where = _where(str(location), path)
    node = read_node(store, path, where=str(location))
    if node is None:
        raise NotFoundError(f"{where}: no Zarr array here.", hint="Check the path.")
    if node.kind != "array":
        raise MetadataError(f"{where}: this is a group, not an array.")
    doc = _V3 if node.zarr_format == 3 else _V2_ARRAY
    check_array_metadata(
        node.metadata,
        where=_where(str(location), join_key(path, doc)),
        zarr_format=node.zarr_format,
    )
    try:
        arr = zarr.open_array(store=store, path=path, mode="r", zarr_format=node.zarr_format)
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        raise MetadataError(f"{where}: zarr could not read the array metadata: {exc}") from None
    guarded: zarr.Array[Any] = guard_decoding(arr)
    return guarded


def open_group(location: Location, path: str = "", *, store: Any = None) -> zarr.Group:
    """Open the group at *path* read-only (without trusting consolidated child metadata).

    Parameters
    ----------
    location
        Where the store is.
    path
        Store-relative path of the group.
    store
        An already opened store for *location*.

    Returns
    -------
    zarr.Group
    """
    import zarr

    path = safe_join("", path)
    if store is None:
        location, store = _open_store(location)
    where = _where(str(location), path)
    node = read_node(store, path, where=str(location))
    if node is None:
        raise NotFoundError(f"{where}: no Zarr group here.", hint="Check the path.")
    if node.kind != "group":
        raise MetadataError(f"{where}: this is an array, not a group.")
    try:
        return zarr.open_group(
            store=store,
            path=path,
            mode="r",
            zarr_format=node.zarr_format,
            use_consolidated=False,
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise MetadataError(f"{where}: zarr could not read the group metadata: {exc}") from None
