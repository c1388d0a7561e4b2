"""Plan a recompression: walk the source hierarchy and decide every output array's layout."""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_zarr_explorer._html import plural
from napari_zarr_explorer.codec_spec import CompressorSpec
from napari_zarr_explorer.errors import (
    ExplorerError,
    MetadataError,
    NotAnObjectError,
    NotFoundError,
    PathEscapeError,
)
from napari_zarr_explorer.recompress import _io
from napari_zarr_explorer.recompress._ome import (
    axes_names,
    convert_attributes,
    ome_body,
    scene_paths,
)
from napari_zarr_explorer.recompress._task import ArrayTarget
from napari_zarr_explorer.store import Location, open_store, read_bytes, safe_join
from napari_zarr_explorer.store.keys import control_name_problem
from napari_zarr_explorer.store.locate import node_where
from napari_zarr_explorer.store.meta import join_key

__all__ = [
    "ArrayPlan",
    "GroupPlan",
    "Plan",
    "fit_shape",
    "make_plan",
    "resolve_layout",
    "suggest_layout",
    "suggest_shards",
]

META_DOCS = frozenset({"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata"})
MARKER_KEY = "napari_zarr_explorer"
#: Largest non-Zarr file (e.g. ``OME/METADATA.ome.xml``) carried over from a group.
MAX_EXTRA_FILE = 64 * 1024 * 1024
ShapeArg = Sequence[int] | str | bool | None


@dataclass(frozen=True)
class GroupPlan:
    """One output group and its (converted) attributes."""

    path: str
    attributes: dict[str, Any]
    extra_files: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class ArrayPlan:
    """One output array."""

    target: ArrayTarget
    attributes: dict[str, Any]
    dimension_names: tuple[str | None, ...] | None
    source_chunks: tuple[int, ...]
    source_shards: tuple[int, ...] | None
    bytes_before: int | None
    src_fill_value: Any

    @property
    def nbytes(self) -> int:
        """Logical bytes of the array."""
        return math.prod(self.target.shape) * np.dtype(self.target.dtype).itemsize

    @property
    def objects_total(self) -> int:
        """Output objects (shards or chunks) covering the array."""
        return math.prod(len(r) for r in _io.grid_indices(self.target.shape, self.target.unit))


@dataclass(frozen=True)
class Plan:
    """Everything decided before any byte is written."""

    source: Location | str
    spec: CompressorSpec
    zarr_format: int
    root_kind: str
    groups: tuple[GroupPlan, ...]
    arrays: tuple[ArrayPlan, ...]
    notes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    consolidated: bool = False

    @property
    def nbytes(self) -> int:
        """Logical bytes of all arrays."""
        return sum(a.nbytes for a in self.arrays)

    @property
    def is_ome(self) -> bool:
        """True when the root (or any group) carries OME-NGFF metadata."""
        return any(ome_body(g.attributes) for g in self.groups)

    @property
    def ome_roots(self) -> tuple[str, ...]:
        """Paths of the top-most OME-NGFF groups (none inside another).

        The root alone when it is OME; otherwise the images (plates...) of a plain group.
        """
        tops: list[str] = []
        for path in sorted(g.path.strip("/") for g in self.groups if ome_body(g.attributes)):
            if not any(t == "" or path.startswith(t + "/") for t in tops):
                tops.append(path)
        return tuple(tops)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: every output array with its layout, the groups and notes."""
        return {
            "source": str(self.source),
            "compressor": self.spec.label,
            "lossy": self.spec.is_lossy,
            "zarr_format": self.zarr_format,
            "root": self.root_kind,
            "nbytes": self.nbytes,
            "groups": [g.path for g in self.groups],
            "arrays": [
                {
                    "path": a.target.path,
                    "shape": list(a.target.shape),
                    "dtype": a.target.dtype,
                    "source_chunks": list(a.source_chunks),
                    "source_shards": list(a.source_shards) if a.source_shards else None,
                    "chunks": list(a.target.chunks),
                    "shards": list(a.target.shards) if a.target.shards else None,
                    "objects": a.objects_total,
                    "nbytes": a.nbytes,
                    "bytes_before": a.bytes_before,
                }
                for a in self.arrays
            ],
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [
            f"Plan: {self.source} -> Zarr v{self.zarr_format}, {self.spec.label}: "
            f"{plural(len(self.arrays), 'array')}, {plural(len(self.groups), 'group')}"
        ]
        for a in self.arrays:
            lines.append(
                f"  {a.target.path or '/'} {a.target.shape} {a.target.dtype}: chunks "
                f"{a.source_chunks} -> {a.target.chunks}, shards {a.source_shards} -> "
                f"{a.target.shards} ({a.objects_total} objects)"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _fit(arg: Sequence[int], shape: Sequence[int], what: str) -> list[int]:
    """Apply a full-rank shape argument to an array of possibly lower (or higher) rank."""
    vals = [int(v) for v in arg]
    nd = len(shape)
    vals = vals[len(vals) - nd :] if len(vals) >= nd else [1] * (nd - len(vals)) + vals
    out = []
    for v, s in zip(vals, shape, strict=True):
        if v <= 0:  # -1 or 0: the whole dimension
            v = max(s, 1)
        out.append(v)
    return out


def fit_shape(arg: Sequence[int], shape: Sequence[int]) -> tuple[int, ...]:
    """Apply a chunk or shard shape given for the full rank to an array of *shape*.

    The one rule of ``--chunks`` and ``--shards`` (and of the docks' fields): the values are
    right-aligned to the array's dimensions. Fewer values than dimensions apply to the last
    axes and the leading axes get 1; more values than dimensions lose their first ones (a
    lower-rank array of the hierarchy, such as a ``zyx`` label image, takes the last three).
    Values <= 0 mean the whole dimension. Not clipped to the shape.
    """
    return tuple(_fit(arg, shape, "shape"))


def suggest_shards(
    shape: Sequence[int], chunks: Sequence[int], *, shard_tile: int = 2048
) -> tuple[int, ...]:
    """Suggest a shard shape made of whole *chunks* for imaging data of *shape*.

    *chunks* is given for the full rank (see :func:`fit_shape`). In the last two dimensions
    (y, x) a shard holds as many chunks as fit in ``shard_tile`` (at least one), clipped to the
    shape rounded up to whole chunks; in every other dimension it is one chunk.
    """
    nd = len(shape)
    given = zip(fit_shape(chunks, shape), shape, strict=True)
    fitted = [max(1, min(c, max(int(n), 1))) for c, n in given]
    shards = list(fitted)
    for d in range(max(0, nd - 2), nd):
        c, n = fitted[d], max(int(shape[d]), 1)
        whole = math.ceil(n / c) * c
        shards[d] = max(c, min(whole, shard_tile // c * c))
    return tuple(shards)


def suggest_layout(
    shape: Sequence[int], *, tile: int = 256, shard_tile: int = 2048
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Suggest chunk and shard shapes for imaging data of *shape* (a sensible default).

    The last two dimensions (y, x) get ``tile`` x ``tile`` chunks in ``shard_tile`` x
    ``shard_tile`` shards, every other dimension (t, c, z) 1: each chunk is one plane tile, which
    is what a viewer reads when it shows a slice, and each shard holds a few MiB to tens of MiB.
    Both are clipped to *shape*.

    Returns
    -------
    tuple of (chunks, shards)
    """
    nd = len(shape)
    chunks = [1] * nd
    for d in range(max(0, nd - 2), nd):
        chunks[d] = min(tile, max(int(shape[d]), 1))
    return tuple(chunks), suggest_shards(shape, chunks, shard_tile=shard_tile)


def parse_shape_arg(arg: ShapeArg, what: str) -> tuple[int, ...] | str | None:
    """Normalise a chunk/shard argument: a sequence of ints, ``"none"`` or None."""
    if arg is None:
        return None
    if isinstance(arg, str):
        text = arg.strip().lower()
        if text in ("none", "no", "off", "false", ""):
            return "none"
        try:
            return tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
        except ValueError:
            raise ExplorerError(
                f"{what} {arg!r} is not a comma-separated list of integers.",
                hint="For example 1,1,256,256.",
            ) from None
    if isinstance(arg, bool):
        return "none"
    vals = tuple(int(v) for v in arg)
    if not vals:
        return "none"
    return vals


def resolve_layout(
    shape: Sequence[int],
    src_chunks: Sequence[int],
    src_shards: Sequence[int] | None,
    chunks: tuple[int, ...] | str | None,
    shards: tuple[int, ...] | str | None,
    zarr_format: int,
    *,
    where: str,
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Decide an array's output chunk and shard shapes, clipped to its shape.

    Chunk and shard shapes given for the full rank are right-aligned to the array's rank, values
    <= 0 mean the whole dimension, and each is clipped to the array's shape (shards to the
    shape rounded up to a whole number of chunks). ``chunks=None`` keeps the source chunks;
    ``shards=None`` keeps the source sharding (Zarr v3 only), ``"none"`` writes no shards.
    """
    nd = len(shape)
    if chunks is None or chunks == "none":
        c = list(src_chunks)
    else:
        assert not isinstance(chunks, str)
        c = _fit(chunks, shape, "chunks")
    c = [max(1, min(ci, si)) if si else 1 for ci, si in zip(c, shape, strict=True)]
    s: list[int] | None
    if shards is None:
        s = list(src_shards) if (src_shards is not None and zarr_format == 3) else None
        if s is not None:
            s = [math.ceil(si / ci) * ci for si, ci in zip(s, c, strict=True)]
    elif shards == "none":
        s = None
    else:
        assert not isinstance(shards, str)
        if zarr_format != 3:
            raise ExplorerError(
                "Zarr v2 has no shards.", hint="Drop --shards or write Zarr v3 (--zarr-format 3)."
            )
        s = _fit(shards, shape, "shards")
        full_c = _fit(chunks, shape, "chunks") if isinstance(chunks, tuple) else list(c)
        for si, ci, n in zip(s, full_c, shape, strict=True):
            if si % ci and si < n:
                raise ExplorerError(
                    f"{where}: shard shape {tuple(s)} is not a multiple of the chunk shape "
                    f"{tuple(full_c)}.",
                    hint="Each shard dimension must be a whole number of chunks.",
                )
    if s is not None:
        s = [
            max(ci, min(math.ceil(si / ci) * ci, math.ceil(n / ci) * ci if n else ci))
            for si, ci, n in zip(s, c, shape, strict=True)
        ]
    assert len(c) == nd
    return tuple(c), (tuple(s) if s is not None else None)


def _source_layout(
    node_md: Mapping[str, Any], fmt: int
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    if fmt == 2:
        return tuple(node_md["chunks"]), None
    grid = tuple(node_md["chunk_grid"]["configuration"]["chunk_shape"])
    codecs = node_md.get("codecs") or []
    first = codecs[0] if codecs else None
    if isinstance(first, Mapping) and first.get("name") == "sharding_indexed":
        inner = tuple(first["configuration"]["chunk_shape"])
        return inner, grid
    return grid, None


def _ome_children(path: str, attrs: Mapping[str, Any]) -> list[str]:
    body = ome_body(attrs) or {}
    out: list[str] = []
    for ms in body.get("multiscales") or []:
        if isinstance(ms, Mapping):
            for d in ms.get("datasets") or []:
                if isinstance(d, Mapping) and isinstance(d.get("path"), str):
                    out.append(safe_join(path, d["path"]))
    if body.get("multiscales"):
        out.append(safe_join(path, "labels"))
    labels = body.get("labels")
    if isinstance(labels, list):
        out += [safe_join(path, p) for p in labels if isinstance(p, str)]
    plate = body.get("plate")
    if isinstance(plate, Mapping):
        for w in plate.get("wells") or []:
            if isinstance(w, Mapping) and isinstance(w.get("path"), str):
                out.append(safe_join(path, w["path"]))
    well = body.get("well")
    if isinstance(well, Mapping):
        for im in well.get("images") or []:
            if isinstance(im, Mapping) and isinstance(im.get("path"), str):
                out.append(safe_join(path, im["path"]))
    series = body.get("series")
    if isinstance(series, list):
        out += [safe_join("", p) for p in series if isinstance(p, str)]
    if "bioformats2raw.layout" in body:
        out.append(safe_join(path, "OME"))
    out += [safe_join(path, p) for p in scene_paths(body)]
    return out


def local_size(loc: Location, path: str, *, stop: threading.Event | None = None) -> int | None:
    """Return the stored bytes of the files under *path* of a local *loc*.

    Parameters
    ----------
    loc
        The store.
    path
        The array's path in it.
    stop
        Set by another thread when the number is no longer wanted (the run was cancelled or
        failed): the walk then ends at the next file and returns None.

    Returns
    -------
    int or None
        The bytes of every file but the metadata documents; None when *loc* is remote or the
        walk was stopped.
    """
    if not loc.is_local:
        return None
    base = loc.path / path if path else loc.path
    total = 0
    for dirpath, _dirnames, filenames in os.walk(base):
        for fn in filenames:
            if stop is not None and stop.is_set():
                return None
            if fn in META_DOCS:
                continue
            try:
                total += os.stat(os.path.join(dirpath, fn)).st_size
            except OSError:
                continue
    return total


def _refuse_control_name(child: str, name: str, where: str) -> None:
    """Refuse a listed node or file whose name has control characters, saying what to do."""
    found = control_name_problem(name)
    if found is None:
        return
    what, fix = found
    raise ExplorerError(
        f"{where}: node {child!r} has {what} in its name; recompress does not copy such names "
        "(they are not portable to every file system and object store, and can rewrite a "
        "terminal).",
        hint=f"{fix} and run again.",
    )


def make_plan(
    source: Location,
    *,
    spec: CompressorSpec,
    zarr_format: int,
    chunks: tuple[int, ...] | str | None,
    shards: tuple[int, ...] | str | None,
    ome_version: str | None = None,
    measure: bool = True,
) -> Plan:
    """Walk the source and plan every output group and array (nothing is written).

    Parameters
    ----------
    source
        The source location (an array, a group or an OME hierarchy).
    spec
        The output compressor.
    zarr_format
        2 or 3.
    chunks, shards, ome_version
        As for :func:`napari_zarr_explorer.recompress.recompress`.
    measure
        Measure the stored bytes of each local source array now (``bytes_before``; a stat of
        every file). False leaves them None, for :func:`run_plan` to measure while it writes.

    Returns
    -------
    Plan
    """
    from napari_zarr_explorer.store import check_array_metadata, consolidated_nodes, read_node

    if zarr_format not in (2, 3):
        raise ExplorerError(f"zarr_format must be 2 or 3, not {zarr_format!r}.")
    store = open_store(source)
    where = str(source)
    root = read_node(store, "", where=where)
    if root is None:
        raise NotFoundError(
            f"{where}: no Zarr array or group here.",
            hint="Give the path of a .zarr folder (or of an array inside it).",
        )
    nodes: dict[str, Any] = {}
    extras: dict[str, list[tuple[str, bytes]]] = {}
    parent_axes: dict[str, list[str]] = {}
    level_shapes: dict[str, dict[str, tuple[int, ...]]] = {}
    listable = bool(getattr(store, "supports_listing", False))
    # a store that cannot list (a web server): the members come from consolidated metadata
    cons = None if listable else consolidated_nodes(store, where=where)
    optional: set[str] = set()  # paths the format allows but no metadata promised ("labels")
    stack = [""]
    while stack:
        path = stack.pop()
        if path in nodes:
            continue
        node = root if path == "" else read_node(store, path, where=where)
        if node is None:
            continue
        nodes[path] = node
        if node.kind != "group":
            continue
        children: set[str] = set()
        prefix = path
        for name in _io.list_dir(store, prefix):
            if name in META_DOCS or name.startswith(".napari-zarr-explorer"):
                continue
            child = f"{path}/{name}" if path else name
            _refuse_control_name(child, name, where)
            children.add(child)
        try:
            named = _ome_children(path, node.attributes)
        except PathEscapeError as exc:
            doc = ".zattrs" if node.zarr_format == 2 else "zarr.json"
            raise PathEscapeError(
                f"{node_where(where, join_key(path, doc))}: {exc}",
                hint="The copy would be incomplete; fix the path in the metadata first.",
            ) from None
        children.update(named)
        if "bioformats2raw.layout" in (ome_body(node.attributes) or {}):
            optional.add(safe_join(path, "OME"))  # its "series" list is optional
        if (ome_body(node.attributes) or {}).get("multiscales"):
            # the format allows an image's "labels" group; its members are named only by its
            # own OME metadata, and one that names none is copied as it is
            optional.add(safe_join(path, "labels"))
        names = axes_names(node.attributes)
        body = ome_body(node.attributes) or {}
        if not listable:
            if cons:
                children.update(p for p in cons if p and p.rpartition("/")[0] == path)
            elif not named and "bioformats2raw.layout" not in body and path not in optional:
                raise ExplorerError(
                    f"{node_where(where, path)}: this server cannot list its files and the group "
                    "has no consolidated metadata, so its members cannot be found: the copy "
                    "would be empty.",
                    hint="Recompress each array by its own URL, consolidate the source's "
                    "metadata first (zarr.consolidate_metadata), or copy from a store that lists "
                    "(a local folder, s3://, gs://).",
                )
        for ms in body.get("multiscales") or []:
            if isinstance(ms, Mapping):
                for d in ms.get("datasets") or []:
                    if isinstance(d, Mapping) and isinstance(d.get("path"), str):
                        child = safe_join(path, d["path"])
                        if names:
                            parent_axes[child] = names
        if "bioformats2raw.layout" in body and not getattr(store, "supports_listing", False):
            i = 0
            while i < 10000 and read_node(store, str(i), where=where) is not None:
                children.add(str(i))
                i += 1
        stack.extend(sorted(children, reverse=True))
        # Non-Zarr files kept in groups (bioformats2raw's OME/METADATA.ome.xml).
        for child in sorted(children):
            if child in nodes or child.rsplit("/", 1)[-1] in META_DOCS:
                continue
            if read_node(store, child, where=where) is not None:
                continue
            try:
                data = read_bytes(store, child)
            except NotAnObjectError:  # a plain folder (notes, scratch): not carried over
                continue
            if data is not None and len(data) <= MAX_EXTRA_FILE:
                extras.setdefault(path, []).append((child.rsplit("/", 1)[-1], data))
        if path == "" and "bioformats2raw.layout" in body:
            xml = read_bytes(store, "OME/METADATA.ome.xml")
            if xml is not None and not any(
                n == "METADATA.ome.xml" for n, _ in extras.get("OME", [])
            ):
                extras.setdefault("OME", []).append(("METADATA.ome.xml", xml))

    for path, node in nodes.items():
        if node.kind == "array" and node.shape is not None:
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            level_shapes.setdefault(parent, {})[path.rsplit("/", 1)[-1]] = node.shape

    groups: list[GroupPlan] = []
    arrays: list[ArrayPlan] = []
    notes: list[str] = []
    if not listable and not cons and any(n.kind == "group" for n in nodes.values()):
        notes.append(
            "this server cannot list its files and the source has no consolidated metadata: "
            "only the members its OME-NGFF metadata names are copied (consolidate the metadata "
            "to copy any others)"
        )
    note_paths: dict[str, list[str]] = {}
    for path in sorted(nodes):
        node = nodes[path]
        attrs, n = convert_attributes(
            node.attributes,
            src_format=node.zarr_format,
            dst_format=zarr_format,
            level_shapes=level_shapes.get(path, {}),
            ome_version=ome_version,
        )
        if path == "" and isinstance(attrs.pop(MARKER_KEY, None), Mapping):
            notes.append(
                "the source itself is marked as an incomplete recompress output; its missing "
                "parts read as fill values"
            )
        for x in n:
            note_paths.setdefault(x, []).append(path or "/")
        if node.kind == "group":
            groups.append(
                GroupPlan(path=path, attributes=attrs, extra_files=tuple(extras.get(path, ())))
            )
            continue
        awhere = node_where(where, path)
        check_array_metadata(node.metadata, where=awhere, zarr_format=node.zarr_format)
        md = node.metadata
        shape = tuple(int(s) for s in md["shape"])
        if node.zarr_format == 2:
            dtype = np.dtype(md["dtype"]) if isinstance(md["dtype"], str) else None
            fill = md.get("fill_value")
        else:
            from napari_zarr_explorer.store import open_array

            arr = open_array(source, path, store=store)
            dtype = np.dtype(arr.dtype)
            fill = arr.fill_value
        if dtype is None or dtype.kind not in "biufc":
            raise MetadataError(
                f"{awhere}: data type {md.get('dtype', md.get('data_type'))!r} cannot be "
                "recompressed (numbers and booleans only).",
            )
        dtype = dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype
        src_chunks, src_shards = _source_layout(md, node.zarr_format)
        out_chunks, out_shards = resolve_layout(
            shape, src_chunks, src_shards, chunks, shards, zarr_format, where=awhere
        )
        # named: a hierarchy has many arrays
        spec.check_dtype(dtype, chunks=out_chunks, zarr_format=zarr_format, where=awhere)
        if fill is None:
            data_fill: Any = np.zeros((), dtype=dtype).item()
        elif isinstance(fill, str) and dtype.kind in "fc":
            data_fill = float(fill)
        else:
            data_fill = np.asarray(fill).astype(dtype).item()
        dim_names: tuple[str | None, ...] | None = None
        if node.zarr_format == 3 and md.get("dimension_names") is not None:
            dim_names = tuple(md["dimension_names"])
        elif isinstance(node.attributes.get("_ARRAY_DIMENSIONS"), list):
            dim_names = tuple(node.attributes["_ARRAY_DIMENSIONS"])
        elif path in parent_axes and len(parent_axes[path]) == len(shape):
            dim_names = tuple(parent_axes[path])
        if dim_names is not None and len(dim_names) != len(shape):
            dim_names = None
        if (
            zarr_format == 2
            and dim_names is not None
            and "_ARRAY_DIMENSIONS" not in attrs
            and all(isinstance(d, str) for d in dim_names)
        ):
            attrs["_ARRAY_DIMENSIONS"] = list(dim_names)
        target = ArrayTarget(
            path=path,
            shape=shape,
            dtype=dtype.str,
            fill_value=data_fill,
            zarr_format=zarr_format,
            chunks=out_chunks,
            shards=out_shards,
            compressor=spec.label,
        )
        arrays.append(
            ArrayPlan(
                target=target,
                attributes=attrs,
                dimension_names=dim_names,
                source_chunks=src_chunks,
                source_shards=src_shards,
                bytes_before=local_size(source, path) if measure else None,
                src_fill_value=None if fill is None and zarr_format == 2 else data_fill,
            )
        )
    for text, paths in note_paths.items():
        where_text = paths[0] if len(paths) == 1 else f"{len(paths)} groups"
        notes.append(f"{text} ({where_text})")
    params = {
        "source": str(source),
        "compressor": spec.label,
        "zarr_format": zarr_format,
        "arrays": {
            a.target.path: {
                "shape": list(a.target.shape),
                "chunks": list(a.target.chunks),
                "shards": list(a.target.shards) if a.target.shards else None,
            }
            for a in arrays
        },
    }
    return Plan(
        source=source,
        spec=spec,
        zarr_format=zarr_format,
        root_kind=root.kind,
        consolidated=root.kind == "group"
        and (
            read_bytes(store, ".zmetadata") is not None
            or isinstance(root.metadata.get("consolidated_metadata"), Mapping)
        ),
        groups=tuple(groups),
        arrays=tuple(arrays),
        notes=tuple(notes),
        params=json.loads(json.dumps(params)),
    )
