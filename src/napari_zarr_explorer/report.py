"""Inspection reports: what a Zarr / OME-Zarr store holds and how it is stored.

:func:`inspect` walks the hierarchy (by listing the store when it can list, otherwise through
consolidated metadata and the OME metadata's own paths), reads only metadata documents and the
listing's object sizes, and returns a :class:`StoreReport`. One unreadable node never hides the
others: its problem is recorded in its ``errors`` and the walk goes on.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from napari_zarr_explorer import codecs as _codecs
from napari_zarr_explorer._html import plural
from napari_zarr_explorer.codecs import CodecInfo, jsonable
from napari_zarr_explorer.errors import ExplorerError, NotFoundError, PathEscapeError, RemoteError
from napari_zarr_explorer.store import safe_join
from napari_zarr_explorer.store.locate import node_where

__all__ = [
    "ArrayReport",
    "ErrorReport",
    "GroupReport",
    "LevelReport",
    "NodeReport",
    "OmeReport",
    "StoreReport",
    "TransformReport",
    "inspect",
]

MARKER_KEY = "napari_zarr_explorer"
"""Attribute key that the recompression engine writes on outputs under construction."""


@dataclass(kw_only=True, frozen=True, slots=True)
class LevelReport:
    """One multiscale level: its ``path``, ``scale``, ``translation`` and ``shape`` if known."""

    path: str
    scale: tuple[float, ...] | None = None
    translation: tuple[float, ...] | None = None
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "path": self.path,
            "scale": jsonable(self.scale),
            "translation": jsonable(self.translation),
            "shape": list(self.shape) if self.shape is not None else None,
        }


@dataclass(kw_only=True, frozen=True, slots=True)
class TransformReport:
    """One OME-NGFF 0.6 coordinate transformation, as shown to people.

    Attributes
    ----------
    where
        ``"datasets"`` (a level's array to the intrinsic system), ``"multiscale"`` or ``"scene"``.
    source, target
        The input and output: a coordinate system name, ``path#name``, or a level's array path.
    type
        The transformation type (``"scale"``, ``"affine"``, ``"displacements"``...).
    description
        Type and parameters in one line.
    applied
        False when it is shown but cannot be applied here (vector fields, parameters stored in
        arrays, unknown types).
    metadata
        The transformation as JSON.
    """

    where: str
    source: str
    target: str
    type: str
    description: str
    applied: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "where": self.where,
            "source": self.source,
            "target": self.target,
            "type": self.type,
            "description": self.description,
            "applied": self.applied,
            "metadata": jsonable(dict(self.metadata)),
        }

    def __str__(self) -> str:
        note = "" if self.applied else " (shown, not applied)"
        return f"{self.source} -> {self.target}: {self.description}{note}"


@dataclass(kw_only=True, frozen=True, slots=True)
class OmeReport:
    """The OME-NGFF view of one node.

    Attributes
    ----------
    kind
        ``"image"``, ``"labels"``, ``"plate"``, ``"well"``, ``"bioformats2raw"`` or ``"scene"``.
    version
        The NGFF version, or None when unknown.
    label_image
        True for a label image (an image with ``image-label``).
    name
        The multiscale (or plate) name.
    axes
        ``({"name", "type", "unit"}, ...)`` of the first multiscale.
    levels
        Resolution levels with their full scale and translation.
    channels
        ``({"label", "color", "window", "active"}, ...)`` from ``omero``.
    children
        Paths (relative to the node) the metadata points to: labels, wells, fields, series.
    warnings
        What the lenient parser tolerated.
    coordinate_systems
        OME-NGFF 0.6: ``({"name", "axes", "where"}, ...)`` of the multiscale and the scene.
    transforms
        OME-NGFF 0.6: the transformations between them (:class:`TransformReport`).
    """

    kind: str
    version: str | None = None
    label_image: bool = False
    name: str | None = None
    axes: tuple[Mapping[str, Any], ...] = ()
    levels: tuple[LevelReport, ...] = ()
    channels: tuple[Mapping[str, Any], ...] = ()
    children: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    coordinate_systems: tuple[Mapping[str, Any], ...] = ()
    transforms: tuple[TransformReport, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "kind": self.kind,
            "version": self.version,
            "label_image": self.label_image,
            "name": self.name,
            "axes": [jsonable(dict(a)) for a in self.axes],
            "levels": [lvl.to_dict() for lvl in self.levels],
            "channels": [jsonable(dict(c)) for c in self.channels],
            "children": list(self.children),
            "warnings": list(self.warnings),
            "coordinate_systems": [jsonable(dict(c)) for c in self.coordinate_systems],
            "transforms": [t.to_dict() for t in self.transforms],
        }

    @property
    def summary(self) -> str:
        """``"OME image 0.5, 3 levels, axes czyx, 2 channels"``."""
        what = "label image" if self.label_image else self.kind
        parts = [f"OME {what}" + (f" {self.version}" if self.version else "")]
        if self.levels:
            parts.append(f"{len(self.levels)} level{'s' if len(self.levels) != 1 else ''}")
        if self.axes:
            parts.append("axes " + "".join(str(a.get("name", "?")) for a in self.axes))
        if self.channels:
            parts.append(f"{len(self.channels)} channel{'s' if len(self.channels) != 1 else ''}")
        if self.children and self.kind in ("labels", "plate", "well", "bioformats2raw"):
            parts.append(f"{len(self.children)} {_children_word(self.kind)}")
        if self.coordinate_systems:
            n = len(self.coordinate_systems)
            parts.append(f"{n} coordinate system{'s' if n != 1 else ''}")
        if self.transforms:
            n = len(self.transforms)
            parts.append(f"{n} transformation{'s' if n != 1 else ''}")
        return ", ".join(parts)

    def coordinates_lines(self) -> list[str]:
        """Coordinate systems and transformations, one line each (for text renderings)."""
        lines = []
        for cs in self.coordinate_systems:
            axes = " ".join(
                str(a.get("name")) + (f" [{a['unit']}]" if a.get("unit") else "")
                for a in cs.get("axes", ())
            )
            lines.append(f"coordinate system {cs.get('name')} ({cs.get('where')}): {axes}")
        lines.extend(f"transformation {t}" for t in self.transforms)
        return lines


def _children_word(kind: str) -> str:
    return {"labels": "labels", "plate": "wells", "well": "fields", "bioformats2raw": "series"}.get(
        kind, "children"
    )


@dataclass(kw_only=True, frozen=True, slots=True)
class GroupReport:
    """A group of the hierarchy."""

    path: str
    zarr_format: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    ome: OmeReport | None = None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    kind: Literal["group"] = "group"

    @property
    def name(self) -> str:
        """Last component of the path (``"/"`` for the root)."""
        return self.path.rsplit("/", 1)[-1] if self.path else "/"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (see ``docs/cli-json.md``)."""
        return {
            "path": self.path,
            "kind": "group",
            "zarr_format": self.zarr_format,
            "attributes": jsonable(dict(self.attributes)),
            "ome": self.ome.to_dict() if self.ome else None,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }

    def _repr_html_(self) -> str:
        from napari_zarr_explorer import _html

        rows: list[tuple[str, Any]] = [
            ("path", self.path or "/"),
            ("zarr format", self.zarr_format),
        ]
        parts = []
        if self.ome is not None:
            rows.append(("OME", self.ome.summary))
            if self.ome.levels:
                parts.append(
                    _html.table(
                        ["level", "shape", "scale", "translation"],
                        [
                            (lvl.path, lvl.shape or "?", lvl.scale, lvl.translation)
                            for lvl in self.ome.levels
                        ],
                    )
                )
            if self.ome.channels:
                parts.append(
                    _html.table(
                        ["channel", "color", "window"],
                        [
                            (c.get("label"), c.get("color"), c.get("window"))
                            for c in self.ome.channels
                        ],
                    )
                )
            if self.ome.coordinate_systems or self.ome.transforms:
                parts.append(_html.coordinates_html(self.ome))
        rows.extend(("error", e) for e in self.errors)
        rows.extend(("warning", w) for w in self.warnings)
        head = _html.table(["group", ""], rows)
        return head + "".join(parts) + _html.json_block(jsonable(dict(self.attributes)))

    def __str__(self) -> str:
        return self._line(self.path or "/")

    def _line(self, name: str) -> str:
        """One line about the group, naming it *name* (``""``: no name)."""
        text = f"group{' ' + name if name else ''} (Zarr v{self.zarr_format})"
        if self.ome:
            text += f" [{self.ome.summary}]"
        return text


@dataclass(kw_only=True, frozen=True, slots=True)
class ArrayReport:
    """An array of the hierarchy: geometry, codecs, and what is stored.

    Attributes
    ----------
    path
        Store-relative path.
    zarr_format
        2 or 3.
    shape, dtype
        Shape and data type (as written in the metadata).
    chunk_shape
        Shape of the chunks (the inner chunks when sharded).
    shard_shape
        Shape of the shards, or None when unsharded.
    codecs
        The normalised codec pipeline (see :mod:`napari_zarr_explorer.codecs`).
    fill_value
        The fill value, JSON-safe (``"NaN"``, ``"Infinity"`` for non-finite floats).
    dimension_names
        v3 dimension names, or None.
    order
        Memory order: v2 ``order``; ``"C"`` for v3 (a transpose shows in the codecs).
    endianness
        Byte order of the stored chunks (``"little"``, ``"big"``) or None.
    chunks_total, shards_total
        Number of chunks (and shards) in the grid.
    objects_stored
        Chunk (or shard) objects found in the listing; None when the store cannot list.
    bytes_stored
        Bytes of all objects of the array (metadata included), from the listing; None when
        unknown.
    logical_bytes
        ``prod(shape) * itemsize``.
    attributes
        User attributes.
    """

    path: str
    zarr_format: int
    shape: tuple[int, ...]
    dtype: str
    chunk_shape: tuple[int, ...]
    shard_shape: tuple[int, ...] | None = None
    codecs: tuple[CodecInfo, ...] = ()
    fill_value: Any = None
    dimension_names: tuple[str | None, ...] | None = None
    order: str = "C"
    endianness: str | None = None
    key_encoding: tuple[str, str] = ("default", "/")
    chunks_total: int = 0
    shards_total: int | None = None
    objects_stored: int | None = None
    bytes_stored: int | None = None
    logical_bytes: int = 0
    attributes: Mapping[str, Any] = field(default_factory=dict)
    ome: OmeReport | None = None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    kind: Literal["array"] = "array"

    @property
    def name(self) -> str:
        """Last component of the path."""
        return self.path.rsplit("/", 1)[-1] if self.path else "/"

    @property
    def ratio(self) -> float | None:
        """Compression ratio ``logical_bytes / bytes_stored`` (None when unknown)."""
        if not self.bytes_stored or not self.logical_bytes:
            return None
        return self.logical_bytes / self.bytes_stored

    @property
    def codecs_text(self) -> str:
        """The pipeline on one line."""
        return _codecs.describe_pipeline(self.codecs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (see ``docs/cli-json.md``)."""
        ratio = self.ratio
        return {
            "path": self.path,
            "kind": "array",
            "zarr_format": self.zarr_format,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "chunk_shape": list(self.chunk_shape),
            "shard_shape": list(self.shard_shape) if self.shard_shape is not None else None,
            "codecs": [c.to_dict() for c in self.codecs],
            "fill_value": jsonable(self.fill_value),
            "dimension_names": list(self.dimension_names) if self.dimension_names else None,
            "order": self.order,
            "endianness": self.endianness,
            "chunk_key_encoding": {"name": self.key_encoding[0], "separator": self.key_encoding[1]},
            "chunks_total": self.chunks_total,
            "shards_total": self.shards_total,
            "objects_stored": self.objects_stored,
            "bytes_stored": self.bytes_stored,
            "logical_bytes": self.logical_bytes,
            "ratio": round(ratio, 4) if ratio is not None else None,
            "attributes": jsonable(dict(self.attributes)),
            "ome": self.ome.to_dict() if self.ome else None,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }

    def _repr_html_(self) -> str:
        from napari_zarr_explorer import _html

        ratio = self.ratio
        rows: list[tuple[str, Any]] = [
            ("path", self.path or "/"),
            ("zarr format", self.zarr_format),
            ("shape", list(self.shape)),
            ("dtype", self.dtype),
            ("chunk shape", list(self.chunk_shape)),
            ("shard shape", list(self.shard_shape) if self.shard_shape else "none"),
            ("chunks (shards)", f"{self.chunks_total} ({self.shards_total or '-'})"),
            ("objects stored", self.objects_stored if self.objects_stored is not None else "?"),
            ("fill value", self.fill_value),
            ("dimension names", self.dimension_names or "-"),
            ("order / byte order", f"{self.order} / {self.endianness or '-'}"),
            ("bytes stored", _html.human_bytes(self.bytes_stored)),
            ("logical bytes", _html.human_bytes(self.logical_bytes)),
            ("compression ratio", f"{ratio:.2f}x" if ratio else "-"),
        ]
        rows.extend(("error", e) for e in self.errors)
        rows.extend(("warning", w) for w in self.warnings)
        codec_rows: list[tuple[str, str, str]] = []
        for codec in self.codecs:
            codec_rows.append((codec.role, codec.name, codec.short))
            for inner in codec.inner:
                codec_rows.append((f"  inner {inner.role}", inner.name, inner.short))
            for index in codec.index:
                codec_rows.append((f"  index {index.role}", index.name, index.short))
        return (
            _html.table(["array", ""], rows)
            + _html.table(["role", "codec", "configuration"], codec_rows)
            + _html.json_block(jsonable(dict(self.attributes)))
        )

    def __str__(self) -> str:
        return self._line(self.path or "/")

    def _line(self, name: str) -> str:
        """One line about the array, naming it *name* (``""``: no name)."""
        from napari_zarr_explorer._html import human_bytes

        shard = f" shards {list(self.shard_shape)}" if self.shard_shape else ""
        ratio = self.ratio
        return (
            f"array{' ' + name if name else ''} (Zarr v{self.zarr_format}) "
            f"{list(self.shape)} {self.dtype} "
            f"chunks {list(self.chunk_shape)}{shard} [{self.codecs_text}] "
            f"stored {human_bytes(self.bytes_stored)}"
            + (f", compression ratio {ratio:.2f}x" if ratio else "")
        )


@dataclass(kw_only=True, frozen=True, slots=True)
class ErrorReport:
    """A node whose metadata could not be read at all."""

    path: str
    errors: tuple[str, ...]
    zarr_format: int | None = None
    warnings: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)

    kind: Literal["error"] = "error"

    @property
    def name(self) -> str:
        """Last component of the path."""
        return self.path.rsplit("/", 1)[-1] if self.path else "/"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "path": self.path,
            "kind": "error",
            "zarr_format": self.zarr_format,
            "attributes": {},
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }

    def __str__(self) -> str:
        return self._line(self.path or "/")

    def _line(self, name: str) -> str:
        """One line about the node, naming it *name* (``""``: no name)."""
        return f"unreadable{' ' + name if name else ''}"


NodeReport = GroupReport | ArrayReport | ErrorReport


@dataclass(kw_only=True, frozen=True, slots=True)
class StoreReport:
    """The report of a whole store (or of the part below ``path``).

    Attributes
    ----------
    url
        The store.
    path
        Where the walk started (``""`` for the root).
    nodes
        Reports in walk order (parents before children, depth-first, sorted by name).
    truncated
        True when more nodes exist than ``max_nodes``; see ``more``.
    more
        Paths of the nodes left out whose parent was reported (the roots of the subtrees not
        shown): pass one as ``path=`` to :func:`inspect` to go deeper (at most 100 entries).
    listed
        True when the hierarchy came from a store listing (sizes known); False when it came from
        consolidated and OME metadata (remote HTTP stores).
    max_nodes
        The cap used.
    warnings, errors
        Store-level messages (node-level ones are on the nodes).
    """

    url: str
    path: str = ""
    nodes: tuple[NodeReport, ...] = ()
    truncated: bool = False
    more: tuple[str, ...] = ()
    listed: bool = True
    max_nodes: int = 500
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    # -- access ---------------------------------------------------------------------------
    @property
    def arrays(self) -> tuple[ArrayReport, ...]:
        """The array reports."""
        return tuple(n for n in self.nodes if isinstance(n, ArrayReport))

    @property
    def groups(self) -> tuple[GroupReport, ...]:
        """The group reports."""
        return tuple(n for n in self.nodes if isinstance(n, GroupReport))

    def __getitem__(self, path: str) -> NodeReport:
        path = path.strip("/")
        for node in self.nodes:
            if node.path == path:
                return node
        raise KeyError(f"{self.url}: no node {path!r} in this report")

    def __iter__(self) -> Iterator[NodeReport]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def root(self) -> NodeReport | None:
        """The node at ``path``, if it is a node."""
        for node in self.nodes:
            if node.path == self.path:
                return node
        return None

    @property
    def bytes_stored(self) -> int | None:
        """Sum of the arrays' stored bytes (None when unknown)."""
        sizes = [a.bytes_stored for a in self.arrays]
        if any(s is None for s in sizes):
            return None
        return sum(s for s in sizes if s is not None)

    @property
    def logical_bytes(self) -> int:
        """Sum of the arrays' logical bytes."""
        return sum(a.logical_bytes for a in self.arrays)

    @property
    def problems(self) -> list[tuple[str, str]]:
        """``(path, message)`` for every node error."""
        return [(n.path, e) for n in self.nodes for e in n.errors] + [("", e) for e in self.errors]

    def children(self, path: str) -> list[NodeReport]:
        """Direct children of the node at *path* among the reported nodes."""
        path = path.strip("/")
        return [n for n in self.nodes if n.path != path and _parent(n.path) == path]

    # -- renderings -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"url", "path", "nodes": [...], ...}``, JSON-safe (see ``docs/cli-json.md``)."""
        stored = self.bytes_stored
        return {
            "url": self.url,
            "path": self.path,
            "nodes": [n.to_dict() for n in self.nodes],
            "truncated": self.truncated,
            "more": list(self.more),
            "listed": self.listed,
            "max_nodes": self.max_nodes,
            "bytes_stored": stored,
            "logical_bytes": self.logical_bytes,
            "warnings": list(self.warnings),
            "errors": list(self.errors),
        }

    def __str__(self) -> str:
        lines = [f"{self.url}{'/' + self.path if self.path else ''}"]
        # the first line names the starting node: its description follows there, unnamed
        shift = 0 if any(n.path == self.path for n in self.nodes) else 1
        for node in self.nodes:
            depth = _depth(node.path) - _depth(self.path) + shift
            if node.path == self.path:
                lines[0] += "  " + node._line("")
            else:
                lines.append("  " * depth + str(node))
            for err in node.errors:
                lines.append("  " * (depth + 1) + f"error: {err}")
            for warn in node.warnings:
                lines.append("  " * (depth + 1) + f"warning: {warn}")
        if self.truncated:
            lines.append(
                f"  ... more than {plural(self.max_nodes, 'node')}; go deeper with path= one of: "
                + ", ".join(self.more[:10])
            )
        lines.extend(f"warning: {w}" for w in self.warnings)
        lines.extend(f"error: {e}" for e in self.errors)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"StoreReport(url={self.url!r}, path={self.path!r}, nodes={len(self.nodes)}, "
            f"arrays={len(self.arrays)}, truncated={self.truncated})"
        )

    def _repr_html_(self) -> str:
        from napari_zarr_explorer import _html

        stored = self.bytes_stored
        head = (
            f"<div><b>{_html.esc(self.url)}</b>{_html.esc('/' + self.path if self.path else '')}"
            f" &mdash; {plural(len(self.groups), 'group')}, "
            f"{plural(len(self.arrays), 'array')}, stored "
            f"{_html.human_bytes(stored)}, logical {_html.human_bytes(self.logical_bytes)}</div>"
        )
        group_rows = []
        for g in self.groups[:200]:
            group_rows.append((g.path or "/", f"v{g.zarr_format}", g.ome.summary if g.ome else ""))
        array_rows = []
        for a in self.arrays[:200]:
            ratio = a.ratio
            array_rows.append(
                (
                    a.path or "/",
                    f"v{a.zarr_format}",
                    "x".join(map(str, a.shape)),
                    a.dtype,
                    "x".join(map(str, a.chunk_shape)),
                    "x".join(map(str, a.shard_shape)) if a.shard_shape else "-",
                    a.codecs_text,
                    _html.human_bytes(a.bytes_stored),
                    _html.human_bytes(a.logical_bytes),
                    f"{ratio:.2f}x" if ratio else "-",
                )
            )
        parts = [head]
        if group_rows:
            parts.append(_html.table(["group", "format", "OME"], group_rows))
        if array_rows:
            parts.append(
                _html.table(
                    [
                        "array",
                        "format",
                        "shape",
                        "dtype",
                        "chunks",
                        "shards",
                        "codecs",
                        "stored",
                        "logical",
                        "compression ratio",
                    ],
                    array_rows,
                )
            )
            if len(self.arrays) > 200:
                parts.append(f"<div>... and {len(self.arrays) - 200} more arrays</div>")
        problems = self.problems
        if problems:
            parts.append(
                "<div class='nze-err'>"
                + _html.table(["node", "problem"], [(p or "/", m) for p, m in problems[:100]])
                + "</div>"
            )
        warnings = [(n.path or "/", w) for n in self.nodes for w in n.warnings]
        warnings += [("", w) for w in self.warnings]
        if warnings:
            parts.append(
                "<details><summary>warnings</summary>"
                + _html.table(["node", "warning"], warnings[:100])
                + "</details>"
            )
        if self.truncated:
            parts.append(
                f"<div class='nze-warn'>More than {plural(self.max_nodes, 'node')}: "
                "showing the first. "
                f"Go deeper with inspect(url, path=...) on: {_html.esc(', '.join(self.more[:10]))}"
                "</div>"
            )
        return "".join(parts)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _depth(path: str) -> int:
    return 0 if not path else path.count("/") + 1


# --------------------------------------------------------------------------------------------
# building reports


def _ome_report(
    attributes: Mapping[str, Any], zarr_format: int, where: str
) -> tuple[OmeReport | None, list[str]]:
    """Return the OME view of a node, and problems met while parsing it."""
    try:
        from napari_zarr_explorer.ome.model import parse_ome

        ome = parse_ome(attributes, zarr_format=zarr_format)
    except Exception as exc:  # the lenient parser should not fail; never lose the report
        return None, [f"{where}: OME metadata could not be parsed: {exc}"]
    if ome is None:
        return None, []
    axes: tuple[Mapping[str, Any], ...] = ()
    levels: tuple[LevelReport, ...] = ()
    name: str | None = None
    if ome.multiscales:
        ms = ome.multiscales[0]
        name = ms.name
        axes = tuple({"name": a.name, "type": a.type, "unit": a.unit} for a in ms.axes)
        levels = tuple(
            LevelReport(path=d.path, scale=d.scale, translation=d.translation) for d in ms.datasets
        )
    channels: tuple[Mapping[str, Any], ...] = ()
    if ome.omero is not None:
        channels = tuple(
            {
                "label": c.label,
                "color": c.color,
                "active": c.active,
                "window": [c.window_start, c.window_end],
            }
            for c in ome.omero.channels
        )
    children: tuple[str, ...] = ()
    if ome.kind == "labels":
        children = ome.labels
    elif ome.plate is not None:
        children = tuple(w.path for w in ome.plate.wells)
        name = name or ome.plate.name
    elif ome.well is not None:
        children = tuple(i.path for i in ome.well.images)
    elif ome.kind == "bioformats2raw":
        children = ome.series
    if ome.labels and ome.kind == "image":
        children = ome.labels
    if ome.scene is not None:
        children = ome.scene.image_paths
    systems, transforms = _coordinates(ome)
    warnings = list(ome.warnings)
    for path in (*(lv.path for lv in levels), *children):
        try:
            safe_join("", path)
        except PathEscapeError:
            warnings.append(f"path {path!r} leaves the store; it is not followed.")
    return (
        OmeReport(
            kind=ome.kind,
            version=ome.version,
            label_image=ome.image_label is not None,
            name=name,
            axes=axes,
            levels=levels,
            channels=channels,
            children=children,
            warnings=tuple(warnings),
            coordinate_systems=systems,
            transforms=transforms,
        ),
        [],
    )


def _coordinates(ome: Any) -> tuple[tuple[Mapping[str, Any], ...], tuple[TransformReport, ...]]:
    """Return the 0.6 coordinate systems and transformations of a node, for display."""
    systems: list[Mapping[str, Any]] = []
    transforms: list[TransformReport] = []

    def ref(r: Any, fallback: str = "?") -> str:
        if r is None:
            return fallback
        return str(r)

    def add(where: str, t: Any, source: str | None = None, target: str | None = None) -> None:
        transforms.append(
            TransformReport(
                where=where,
                source=source or ref(t.input),
                target=target or ref(t.output),
                type=t.type if t.type != "unknown" else t.describe().split(" ")[0],
                description=t.describe(),
                applied=t.applicable and t.type != "unknown",
                metadata=t.to_json(),
            )
        )

    groups: list[tuple[str, Any, Any]] = []
    if ome.multiscales:
        ms = ome.multiscales[0]
        groups.append(("multiscale", ms.coordinate_systems, ms.transforms))
        for d in ms.datasets:
            if d.transform is not None:
                add("datasets", d.transform, source=d.path, target=ms.intrinsic)
    if ome.scene is not None:
        groups.append(("scene", ome.scene.coordinate_systems, ome.scene.transforms))
    for where, css, ts in groups:
        for cs in css:
            systems.append(
                {
                    "name": cs.name,
                    "where": where,
                    "axes": [{"name": a.name, "type": a.type, "unit": a.unit} for a in cs.axes],
                }
            )
        for t in ts:
            add(where, t)
    return tuple(systems), tuple(transforms)


def _marker_warning(attributes: Mapping[str, Any], where: str) -> str | None:
    marker = attributes.get(MARKER_KEY)
    if isinstance(marker, Mapping) and marker.get("incomplete"):
        return (
            f"{where}: this is an incomplete output of napari-zarr-explorer recompress (still "
            "being written, or interrupted); do not trust its contents. Finish it with "
            "`napari-zarr-explorer recompress ... --resume` or delete it."
        )
    return None


def _dtype_text(metadata: Mapping[str, Any], zarr_format: int) -> str:
    raw = metadata.get("dtype") if zarr_format == 2 else metadata.get("data_type")
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
        return str(raw["name"])
    return str(jsonable(raw))


def _array_report(
    node: Any,
    where: str,
    *,
    listing_keys: Sequence[str] | None,
    listing_sizes: Any,
) -> ArrayReport:
    """Build an :class:`ArrayReport` from a node's metadata (never raises)."""
    from napari_zarr_explorer import chunks as _chunks

    md: Mapping[str, Any] = node.metadata
    fmt = int(node.zarr_format)
    at = node_where(where, node.path)
    errors: list[str] = []
    warnings: list[str] = []
    try:
        from napari_zarr_explorer.store import check_array_metadata

        check_array_metadata(md, where=at, zarr_format=fmt)
    except ExplorerError as exc:
        errors.append(str(exc))
    except Exception as exc:
        errors.append(f"{at}: {exc}")
    codecs: tuple[CodecInfo, ...] = ()
    try:
        codecs = _codecs.codec_pipeline(md, zarr_format=fmt)
    except Exception as exc:
        errors.append(f"{at}: codec pipeline unreadable: {exc}")
    shape: tuple[int, ...] = ()
    outer: tuple[int, ...] = ()
    shape_ok = False
    try:
        shape = tuple(int(s) for s in md.get("shape", ()))
        shape_ok = all(s >= 0 for s in shape)
        outer = _codecs.outer_chunk_shape(md, zarr_format=fmt)
    except (TypeError, ValueError) as exc:
        if not errors:  # the metadata check usually said it already, better
            errors.append(f"{at}: shape or chunk shape is malformed: {exc}")
    sharding = _codecs.sharding_info(codecs)
    inner = sharding.chunk_shape if sharding is not None and sharding.chunk_shape else outer
    if len(inner) != len(shape) or len(outer) != len(shape):
        if not errors:
            errors.append(
                f"{at}: chunk shape {list(inner)} does not match the array's "
                f"{len(shape)} dimensions."
            )
        inner = inner if len(inner) == len(shape) else tuple(shape)
        outer = outer if len(outer) == len(shape) else tuple(shape)
    encoding = _codecs.chunk_key_encoding(md, zarr_format=fmt)
    try:
        chunks_total = math.prod(_codecs.grid_shape(shape, inner))
        outer_grid = _codecs.grid_shape(shape, outer)
    except (ValueError, ZeroDivisionError):
        chunks_total, outer_grid = 0, tuple(0 for _ in shape)
    _, itemsize = _chunks._dtype_info(md, fmt)
    dims = md.get("dimension_names") if fmt == 3 else None
    objects_stored: int | None = None
    bytes_stored: int | None = None
    if listing_keys is not None:
        bytes_stored = int(np.asarray(listing_sizes).sum()) if len(listing_keys) else 0
        try:
            _, valid = _chunks.parse_chunk_keys(listing_keys, outer_grid, encoding)
            objects_stored = int(valid.sum())
        except Exception as exc:  # never lose the report over a strange key
            warnings.append(f"{at}: chunk keys could not be parsed: {exc}")
    marker = _marker_warning(node.attributes, at)
    if marker:
        warnings.append(marker)
    warnings.extend(_name_warning(node.path, at))
    order = str(md.get("order", "C")) if fmt == 2 else "C"
    return ArrayReport(
        path=node.path,
        zarr_format=fmt,
        shape=shape,
        dtype=_dtype_text(md, fmt),
        chunk_shape=tuple(inner),
        shard_shape=tuple(outer) if sharding is not None else None,
        codecs=codecs,
        fill_value=jsonable(md.get("fill_value")),
        dimension_names=tuple(dims) if isinstance(dims, list) else None,
        order=order,
        endianness=_codecs.endianness(codecs),
        key_encoding=encoding,
        chunks_total=chunks_total,
        shards_total=math.prod(outer_grid) if sharding is not None else None,
        objects_stored=objects_stored,
        bytes_stored=bytes_stored,
        logical_bytes=math.prod(shape) * itemsize if shape_ok else 0,
        attributes=dict(node.attributes),
        errors=tuple(errors),
        warnings=tuple(warnings),
    )


def _group_report(node: Any, where: str) -> GroupReport:
    at = node_where(where, node.path)
    ome, errors = _ome_report(node.attributes, int(node.zarr_format), at)
    warnings = [f"{at}: {w}" for w in (ome.warnings if ome else ())]
    marker = _marker_warning(node.attributes, at)
    if marker:
        warnings.append(marker)
    warnings.extend(_name_warning(node.path, at))
    return GroupReport(
        path=node.path,
        zarr_format=int(node.zarr_format),
        attributes=dict(node.attributes),
        ome=ome,
        errors=tuple(errors),
        warnings=tuple(warnings),
    )


def _name_warning(path: str, at: str) -> list[str]:
    """Warn about control characters in the node's own name (recompress refuses them)."""
    from napari_zarr_explorer.store.keys import control_name_problem

    name = path.rsplit("/", 1)[-1]
    found = control_name_problem(name) if name else None
    if found is None:
        return []
    what, fix = found
    return [f"{at}: the name {name!r} has {what}; recompress refuses to copy it. {fix}."]


_NODE_DOCS = ("zarr.json", ".zarray", ".zgroup", ".zattrs")


def _node_paths_from_listing(keys: Sequence[str]) -> list[str]:
    """Paths (relative to the listed prefix) of every directory holding a metadata document."""
    paths: set[str] = set()
    for key in keys:
        head, _, name = key.rpartition("/")
        if name in _NODE_DOCS:
            paths.add(head)
    return sorted(paths, key=_sort_key)


def _sort_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/")) if path else ()


def _walk_metadata(
    store: Any,
    root: str,
    where: str,
    limit: int,
    known: dict[str, Any] | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """Find node paths without listing: consolidated metadata, then OME metadata's own paths.

    Returns ``(paths, more, errors)``; *paths* are store-relative. Nodes are read a batch at
    a time, concurrently; what was read is put in *known* (path -> NodeMeta, None or the error).
    """
    from napari_zarr_explorer.store import consolidated_nodes, read_nodes, safe_join

    found: list[str] = []
    errors: list[str] = []
    more: list[str] = []
    seen: set[str] = set()
    cons = None
    try:
        cons = consolidated_nodes(store, where=where)
    except ExplorerError as exc:
        errors.append(str(exc))
    if cons:
        pre = f"{root}/" if root else ""
        paths = [p for p in cons if p == root or p.startswith(pre)]
        if root not in paths:
            paths.append(root)
        return sorted(paths, key=_sort_key), more, errors
    # Every read of a node counts toward *limit*, found or not: on a store that cannot list,
    # metadata naming 20 000 wells that do not exist must not cost 20 000 probes.
    queue: deque[str] = deque([root])
    queued: set[str] = {root}
    optional: set[str] = set()  # paths the format allows but no metadata promised ("labels")
    probes = 0
    while queue:
        batch: list[str] = []
        while queue and len(batch) < min(256, limit - probes):
            path = queue.popleft()
            if path not in seen:
                seen.add(path)
                batch.append(path)
        if not batch:  # the budget is spent: what is left is not read
            more.extend(p for p in queue if p not in seen and p not in optional)
            break
        probes += len(batch)
        results = read_nodes(store, batch, where=where)
        if known is not None:
            known.update(results)
        for path in batch:
            node = results[path]
            if isinstance(node, ExplorerError):
                if path not in optional:
                    found.append(path)  # its error is reported when the node itself is shown
                continue
            if node is None and path != root:
                continue  # an optional path (such as "labels") that is not there
            found.append(path)
            if node is None or node.kind != "group":
                continue
            from napari_zarr_explorer.ome.model import parse_ome

            try:
                ome = parse_ome(node.attributes, zarr_format=node.zarr_format)
            except Exception:
                ome = None
            if ome is None:
                continue
            rels: list[str] = []
            for ms in ome.multiscales:
                rels.extend(d.path for d in ms.datasets)
            if ome.labels:
                rels.extend(ome.labels)
            if ome.kind == "image" and ome.image_label is None and "labels" not in rels:
                rels.append("labels")
                optional.add(safe_join(path, "labels"))
            if ome.plate is not None:
                rels.extend(w.path for w in ome.plate.wells)
            if ome.well is not None:
                rels.extend(i.path for i in ome.well.images)
            if ome.kind == "bioformats2raw":
                rels.extend(ome.series or ())
                rels.append("OME")
                if not ome.series:
                    budget = max(0, min(1000, limit - probes))
                    counted = _count_numbered(store, path, where, cap=budget)
                    probes += counted + 1
                    rels.extend(str(i) for i in range(counted))
            for rel in rels:
                try:
                    child = safe_join(path, rel)
                except ExplorerError as exc:
                    errors.append(f"{node_where(where, path)}: {exc}")
                    continue
                # Plate wells are "A/1": visit the row group "A" too.
                rel_parts = child[len(path) :].strip("/").split("/")
                for n in range(1, len(rel_parts) + 1):
                    step = "/".join([p for p in (path, *rel_parts[:n]) if p])
                    if step not in queued:
                        queued.add(step)
                        queue.append(step)
    return sorted(found, key=_sort_key), sorted(set(more)), errors


def _count_numbered(store: Any, path: str, where: str, cap: int = 1000) -> int:
    """How many series ``0``, ``1``, ... exist below a bioformats2raw group (probe by reading)."""
    from napari_zarr_explorer.store import read_node, safe_join

    n = 0
    while n < cap:
        try:
            if read_node(store, safe_join(path, str(n)), where=where) is None:
                break
        except ExplorerError:
            pass
        n += 1
    return n


def inspect(
    url: Any,
    *,
    storage_options: Mapping[str, Any] | None = None,
    max_nodes: int = 500,
    path: str = "",
) -> StoreReport:
    """Report what a Zarr / OME-Zarr store holds and how it is stored.

    Parameters
    ----------
    url
        Path or URL of the store (or a :class:`~napari_zarr_explorer.store.Location`, or an
        open zarr store).
    storage_options
        Options for remote stores (credentials, endpoint...).
    max_nodes
        Report at most this many nodes; the report says ``truncated`` and lists in ``more``
        where to go deeper with *path*.
    path
        Start the walk at this node instead of the root.

    Returns
    -------
    StoreReport
        Never raises for problems of single nodes: they are in the nodes' ``errors``.

    Raises
    ------
    RemoteError
        A remote store could not be reached, or refused access, so nothing could be read.
    NotFoundError
        Nothing to report: the path does not exist, there is no Zarr metadata at the URL (a
        local folder or a URL alike), or no node at *path*.
    ExplorerError
        Other reasons the store itself cannot be opened.
    """
    from napari_zarr_explorer import chunks as _chunks
    from napari_zarr_explorer.store import open_url, read_nodes, safe_join

    if max_nodes < 1:
        raise ExplorerError(
            f"max_nodes must be at least 1, not {max_nodes}.", hint="Give --max-nodes 1 or more."
        )
    store, where = open_url(url, storage_options)
    known: dict[str, Any] = {}  # path -> NodeMeta, None or the ExplorerError reading it
    root = safe_join("", path) if path else ""
    store_warnings: list[str] = []
    store_errors: list[str] = []
    fallback: list[str] = []  # why the hierarchy comes from metadata: moot if none was read
    listing = None
    try:
        listing = _chunks.list_stored(store, root)
    except Exception as exc:  # a failing listing falls back to the metadata walk
        detail = (
            exc.message
            if isinstance(exc, ExplorerError)
            else f"{where}: listing the store failed: {type(exc).__name__}: {exc}"
        )
        fallback.append(f"{detail.rstrip('.')}; walking metadata.")
    listed = listing is not None
    more: list[str] = []
    truncated = False
    keys: list[str] = []
    sizes = np.zeros(0, dtype=np.int64)
    if listing is not None:
        order = np.argsort(np.asarray(listing.keys, dtype=object), kind="stable")
        keys = [listing.keys[i] for i in order]
        sizes = listing.sizes[order] if len(order) else sizes
        rel_paths = _node_paths_from_listing(keys)
        if "" not in rel_paths:
            rel_paths.insert(0, "")
        # Listed keys are names in the store, not paths from metadata: any name is fine.
        paths = [f"{root}/{p}" if root and p else p or root for p in rel_paths]
    else:
        paths, more, errs = _walk_metadata(store, root, where, max_nodes, known)
        store_errors.extend(errs)
        truncated = bool(more)
        fallback.append(
            f"{where}: the store cannot list its keys; the hierarchy comes from consolidated "
            "and OME metadata, and stored bytes are unknown."
        )
    if len(paths) > max_nodes:
        truncated = True
        shown = set(paths[:max_nodes])
        # the roots of the subtrees left out: each can be inspected with path=
        more = [p for p in paths[max_nodes:] if _parent(p) in shown or _parent(p) == root]
        paths = paths[:max_nodes]
    more = more[:100]
    known.update(read_nodes(store, [p for p in paths if p not in known], where=where))
    root_node = known.get(root)
    if isinstance(root_node, RemoteError) and not listed:
        raise root_node  # unreachable or refused: nothing of the store can be reported
    if root_node is None and not more and all(p == root for p in paths):
        raise _nothing_at(where, root)
    nodes: list[NodeReport] = []
    for node_path in paths:
        node = known[node_path]
        if isinstance(node, ExplorerError):
            nodes.append(ErrorReport(path=node_path, errors=(str(node),)))
            continue
        if node is None:
            if node_path == root and listed:
                if root:
                    store_errors.append(f"{node_where(where, root)}: not a Zarr node.")
                # an implicit root (v3 without zarr.json at the root) is fine: children follow
                continue
            nodes.append(
                ErrorReport(
                    path=node_path, errors=(f"{node_where(where, node_path)}: no Zarr node here.",)
                )
            )
            continue
        if node.kind == "array":
            array_keys: list[str] | None = None
            array_sizes: Any = None
            if listed:
                rel = node_path[len(root) :].lstrip("/") if root else node_path
                if rel:
                    lo = bisect.bisect_left(keys, rel + "/")
                    hi = bisect.bisect_left(keys, rel + "0")  # "0" follows "/" in ASCII
                    array_keys = [k[len(rel) + 1 :] for k in keys[lo:hi]]
                    array_sizes = sizes[lo:hi]
                else:
                    array_keys, array_sizes = keys, sizes
            nodes.append(
                _array_report(node, where, listing_keys=array_keys, listing_sizes=array_sizes)
            )
        else:
            nodes.append(_group_report(node, where))
    nodes = _with_level_shapes(nodes)
    for reported in nodes:
        for w in reported.warnings:
            if "incomplete output" in w and w not in store_warnings:
                store_warnings.append(w)
    if not isinstance(known.get(root), RemoteError):  # unreachable: its error says it all
        store_warnings[:0] = fallback
    # an error the walk met reading a node is reported on that node, once
    shown = {e for n in nodes for e in n.errors}
    store_errors = [e for e in dict.fromkeys(store_errors) if e not in shown]
    return StoreReport(
        url=where,
        path=root,
        nodes=tuple(nodes),
        truncated=truncated,
        more=tuple(more),
        listed=listed,
        max_nodes=max_nodes,
        warnings=tuple(store_warnings),
        errors=tuple(store_errors),
    )


def _nothing_at(where: str, root: str) -> NotFoundError:
    """Return the error of a walk that found no node: no store at *where*, or no node at *root*."""
    if root:
        return NotFoundError(
            f"no node at {node_where(where, root)}: no Zarr metadata there (zarr.json, .zgroup, "
            ".zarray or .zattrs), nor below it.",
            hint="Check the path; inspecting the store without one lists its nodes.",
        )
    return NotFoundError(
        f"no Zarr metadata at {where} (zarr.json, .zgroup, .zarray or .zattrs): this is not a "
        "Zarr store.",
        hint="Give the folder or URL of the store itself (the .zarr folder).",
    )


def _with_level_shapes(nodes: list[NodeReport]) -> list[NodeReport]:
    """Fill the ``shape`` of OME levels from the arrays found."""
    from dataclasses import replace

    shapes = {n.path: n.shape for n in nodes if isinstance(n, ArrayReport)}
    out: list[NodeReport] = []
    for node in nodes:
        if isinstance(node, GroupReport) and node.ome is not None and node.ome.levels:
            levels = tuple(
                replace(lvl, shape=shapes.get(f"{node.path}/{lvl.path}" if node.path else lvl.path))
                for lvl in node.ome.levels
            )
            node = replace(node, ome=replace(node.ome, levels=levels))
        out.append(node)
    return out
