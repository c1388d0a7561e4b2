"""Read and check Zarr metadata documents before zarr-python ever sees them.

Everything here reads JSON only: no chunk is decoded. :func:`check_array_metadata` is the gate
that refuses arrays which would need code execution (pickle) or arbitrary Python objects, and
names codecs that cannot be decoded here, so that
:func:`~napari_zarr_explorer.store.open.open_array` never hands such an array to zarr-python.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from napari_zarr_explorer._compat import unknown_codec_errors
from napari_zarr_explorer.errors import (
    CodecError,
    ExplorerError,
    MetadataError,
    UnsafeDataError,
)
from napari_zarr_explorer.store.limits import (
    MAX_CODEC_DEPTH,
    MAX_JSON_DEPTH,
    MAX_METADATA_BYTES,
    max_metadata_bytes,
    metadata_too_large,
)

__all__ = [
    "MAX_METADATA_BYTES",
    "NodeMeta",
    "check_array_metadata",
    "codec_ids",
    "join_key",
    "parse_json",
    "read_json",
    "read_node",
    "read_nodes",
    "v2_node",
]


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
    "lzw": "imagecodecs",
    "bitshuffle": "imagecodecs",
    "jpegls": "imagecodecs",
    "jpegxr": "imagecodecs",
    "avif": "imagecodecs",
    "qoi": "imagecodecs",
    "bitround": "numcodecs",
}

# More advice on installing a package (zfpy 1.0.1.post0 breaks `import numcodecs`: numcodecs
# 0.16 cannot parse its version).
_PIP_NOTE: dict[str, str] = {
    "zfpy": ' Avoid zfpy 1.0.1.post0, which breaks numcodecs: pip install "zfpy!=1.0.1.post0".'
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
    result: bytes | None = _sync(_get_bytes_async(store, key, where=where))
    return result


async def _get_bytes_async(store: Any, key: str, *, where: str) -> bytes | None:
    limit = max_metadata_bytes()
    try:
        data = await _bounded_get(store, key, limit)
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
    if data is not None and len(data) > limit:
        raise metadata_too_large(_where(where, key), len(data), limit)
    return data


async def _bounded_get(store: Any, key: str, limit: int) -> bytes | None:
    """Read *key* from *store*, refusing (before or while reading) more than *limit* bytes.

    Stores of this layer read at most *limit* + 1 bytes (``get_bounded``); other stores are
    asked for the size first when they can tell it.
    """
    from zarr.core.buffer import default_buffer_prototype

    bounded = getattr(store, "get_bounded", None)
    if bounded is not None:
        result: bytes | None = await bounded(key, limit)
        return result
    from zarr.abc.store import Store

    if type(store).getsize is not Store.getsize:  # the default getsize reads the whole value
        try:
            size = await store.getsize(key)
        except (FileNotFoundError, KeyError):
            return None
        except Exception:  # a store that cannot tell sizes: read, then check
            size = None
        if isinstance(size, int) and size > limit:
            raise metadata_too_large(key, size, limit)
    buf = await store.get(key, prototype=default_buffer_prototype())
    return None if buf is None else bytes(buf.to_bytes())


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


async def _read_json_async(store: Any, key: str, *, where: str) -> dict[str, Any] | None:
    raw = await _get_bytes_async(store, key, where=where)
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
    depth = _json_depth(obj, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        raise MetadataError(
            f"{name}: JSON nested more than {MAX_JSON_DEPTH} levels deep; not a plausible "
            "metadata document.",
            hint="The metadata file is corrupt or hostile; restore it from a copy.",
        )
    return obj


def _json_depth(obj: Any, stop: int) -> int:
    """Nesting depth of lists and objects in *obj* (iterative; stops counting past *stop*)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > stop:
                break
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return deepest


def codec_depth(codecs: Any) -> int:
    """How deeply the v3 *codecs* nest (1 for a flat list, 2 with one sharding level ...)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(codecs, 1)]
    while stack:
        items, depth = stack.pop()
        if not isinstance(items, list):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_CODEC_DEPTH:
            break
        for codec in items:
            conf = codec.get("configuration") if isinstance(codec, dict) else None
            if isinstance(conf, dict):
                for sub in ("codecs", "index_codecs"):
                    if isinstance(conf.get(sub), list):
                        stack.append((conf[sub], depth + 1))
    return deepest


def _check_codec_depth(codecs: Any, *, where: str) -> None:
    depth = codec_depth(codecs)
    if depth > MAX_CODEC_DEPTH:
        raise MetadataError(
            f"{where}: the codecs are nested more than {MAX_CODEC_DEPTH} levels deep "
            "(sharding inside sharding ...); such metadata is refused.",
            hint="Real data nests at most a few levels; the metadata is corrupt or hostile.",
        )


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


#: Node path -> (zarr_format, metadata; for Zarr v2 with ``__kind__`` and ``__attrs__``).
Consolidated = dict[str, tuple[int, dict[str, Any]]]


def consolidated_v3(root: Mapping[str, Any]) -> Consolidated | None:
    """Parse the ``consolidated_metadata`` of a root ``zarr.json`` (None when it has none)."""
    cm = root.get("consolidated_metadata")
    if not isinstance(cm, dict) or not isinstance(cm.get("metadata"), dict):
        return None
    result: Consolidated = {}
    for path, md in cm["metadata"].items():
        if isinstance(path, str) and isinstance(md, dict):
            result[path.strip("/")] = (3, md)
    return result


def consolidated_v2(zmeta: Mapping[str, Any]) -> Consolidated | None:
    """Parse a Zarr v2 ``.zmetadata`` document (None when it holds no ``metadata``)."""
    if not isinstance(zmeta.get("metadata"), dict):
        return None
    docs: dict[str, Any] = zmeta["metadata"]
    result: Consolidated = {}
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
    return result


def consolidated_node(cons: Consolidated | None, path: str, *, where: str) -> NodeMeta | None:
    """Return the node at *path* as the consolidated metadata *cons* describes it, else None.

    The root is never taken from it: its own document is the one that holds the copy.
    """
    if not path or cons is None or path not in cons:
        return None
    cfmt, cmd = cons[path]
    if cfmt == 3:
        return _v3_node(path, cmd, where=_where(where, join_key(path, _V3)))
    cmd = dict(cmd)
    kind = cmd.pop("__kind__")
    cattrs = cmd.pop("__attrs__")
    return NodeMeta(path=path, kind=kind, zarr_format=2, attributes=cattrs, metadata=cmd)


def consolidated_nodes(store: Any, *, where: str) -> Consolidated | None:
    """Map of node path -> (zarr_format, metadata incl. attributes) from consolidated metadata."""
    key = id(store)
    with _CONSOLIDATED_LOCK:
        entry = _CONSOLIDATED.get(key)
        if entry is not None and entry[0]() is store:
            return entry[1]
    result: Consolidated | None = None
    root = read_json(store, _V3, where=where)
    if root is not None:
        result = consolidated_v3(root)
    else:
        zmeta = read_json(store, _V2_CONSOLIDATED, where=where)
        if zmeta is not None:
            result = consolidated_v2(zmeta)

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
    cons = consolidated_nodes(store, where=where) if path else None
    result: NodeMeta | None = _sync(_read_node_async(store, path, where=where, cons=cons))
    return result


def read_nodes(
    store: Any, paths: list[str], *, where: str, concurrency: int = 32
) -> dict[str, NodeMeta | ExplorerError | None]:
    """Read the metadata of several nodes concurrently (see :func:`read_node`).

    Returns
    -------
    dict
        For each path: its :class:`NodeMeta`, None when there is no node, or the
        :class:`~napari_zarr_explorer.errors.ExplorerError` reading it raised.
    """
    import asyncio

    cons = consolidated_nodes(store, where=where) if any(p.strip("/") for p in paths) else None

    async def run() -> dict[str, NodeMeta | ExplorerError | None]:
        sem = asyncio.Semaphore(concurrency)

        async def one(path: str) -> NodeMeta | ExplorerError | None:
            async with sem:
                try:
                    return await _read_node_async(store, path.strip("/"), where=where, cons=cons)
                except ExplorerError as exc:
                    return exc
                except Exception as exc:  # a store failing in its own way: named, not raised
                    return MetadataError(f"{_where(where, path)}: {type(exc).__name__}: {exc}")

        results = await asyncio.gather(*(one(p) for p in paths))
        return dict(zip(paths, results, strict=True))

    out: dict[str, NodeMeta | ExplorerError | None] = _sync(run())
    return out


async def _read_node_async(
    store: Any,
    path: str,
    *,
    where: str,
    cons: dict[str, tuple[int, dict[str, Any]]] | None,
) -> NodeMeta | None:
    node = consolidated_node(cons, path, where=where)
    if node is not None:
        return node
    doc = await _read_json_async(store, join_key(path, _V3), where=where)
    if doc is not None:
        return _v3_node(path, doc, where=_where(where, join_key(path, _V3)))
    array = await _read_json_async(store, join_key(path, _V2_ARRAY), where=where)
    group = None
    if array is None:
        group = await _read_json_async(store, join_key(path, _V2_GROUP), where=where)
    attrs = await _read_json_async(store, join_key(path, _V2_ATTRS), where=where)
    return v2_node(path, array, group, attrs, where=where)


def v2_node(
    path: str,
    array: dict[str, Any] | None,
    group: dict[str, Any] | None,
    attrs: dict[str, Any] | None,
    *,
    where: str,
) -> NodeMeta | None:
    """Return the Zarr v2 node at *path* made of its documents (None when it has none).

    *array*, *group* and *attrs* are the parsed ``.zarray``, ``.zgroup`` and ``.zattrs`` (None
    when absent; *group* is not looked at when *array* is given). Attributes without ``.zgroup``
    make an implicit group, as seen in the wild. *where* prefixes error messages.

    Raises
    ------
    MetadataError
        When the document says another ``zarr_format``.
    """
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
    if node_type == "array":
        _check_codec_depth(doc.get("codecs"), where=where)
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
            "and open the data again." + _PIP_NOTE.get(pkg, ""),
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
        # Codecs this package itself writes (zfp, image codecs through imagecodecs) are known
        # to numcodecs and zarr only once registered; registering is idempotent, and imports
        # imagecodecs: done only for a codec zarr does not have built in.
        register_zarr_codecs()
        if name.startswith("numcodecs."):
            base = name.removeprefix("numcodecs.")
            if base in _UNSAFE_CODECS:
                raise _unsafe(name, where, pos)
            if not _numcodecs_has(base):
                raise _unknown(name, where, pos)
        try:
            get_codec_class(name)
        except unknown_codec_errors():
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
    _check_codec_depth(metadata.get("codecs"), where=where)
    grid = metadata.get("chunk_grid")
    if not (isinstance(grid, dict) and isinstance(grid.get("configuration"), dict)):
        raise MetadataError(
            f"{where}: 'chunk_grid' must be an object with a 'configuration' object holding "
            f"'chunk_shape', not {_short_json(grid)}."
        )
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


def _short_json(value: Any, limit: int = 80) -> str:
    """*value* as JSON for a message, cut to *limit* characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
