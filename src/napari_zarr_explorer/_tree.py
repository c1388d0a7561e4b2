"""How the nodes of a store report show in a tree: the kind of each node, its level-0 shape.

Shared by the Explorer dock and the notebook explorer; no Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from napari_zarr_explorer.report import StoreReport

__all__ = ["NodeView", "build_nodes", "join_path", "parent_path", "short_kind"]


@dataclass(slots=True)
class NodeView:
    """How a report node shows in the tree.

    Attributes
    ----------
    path
        Store-relative path (``""`` for the root).
    kind
        ``group``, ``array``, ``level``, ``image``, ``label``, ``labels``, ``plate``, ``well``,
        ``field``, ``series``, ``bioformats2raw`` or ``error``.
    label
        Text of the kind column (``"level 1"``, ``"OME image 0.5"``...).
    shape, dtype
        Of the array, or of level 0 of an image.
    stored
        Stored bytes of the array or of all arrays below the node; None when unknown.
    report
        The node's report (``ArrayReport``, ``GroupReport`` or ``ErrorReport``).
    image_path, level
        For a pyramid level: the image's path and the level index.
    """

    path: str
    kind: str
    label: str
    shape: tuple[int, ...] | None
    dtype: str | None
    stored: int | None
    report: Any
    image_path: str | None = None
    level: int | None = None

    @property
    def name(self) -> str:
        """Last path component (``/`` for the root)."""
        return self.path.rsplit("/", 1)[-1] if self.path else "/"


_SHORT_KINDS = {
    "image": "image",
    "label": "label",
    "labels": "labels",
    "plate": "plate",
    "well": "well",
    "field": "field",
    "series": "series",
    "bioformats2raw": "collection",
    "error": "unreadable",
}


def short_kind(node: NodeView) -> str:
    """Return the Kind column's few words (the whole description is its tooltip)."""
    if node.kind in ("level", "array", "group"):
        return node.label.split(" (")[0]  # "level 1", "array", "group"
    return _SHORT_KINDS.get(node.kind, node.kind)


def parent_path(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def join_path(base: str, rel: str) -> str:
    return "/".join(p for p in f"{base}/{rel}".split("/") if p)


def build_nodes(report: StoreReport) -> dict[str, NodeView]:
    """Classify every node of *report* (insertion order = walk order, parents first)."""
    by_path = {n.path: n for n in report.nodes}
    nodes: dict[str, NodeView] = {}
    # levels of images: array path -> (image path, level index)
    levels: dict[str, tuple[str, int]] = {}
    for n in report.nodes:
        ome = getattr(n, "ome", None)
        if n.kind == "group" and ome is not None:
            for i, lvl in enumerate(ome.levels):
                levels[join_path(n.path, lvl.path)] = (n.path, i)
    stored_below: dict[str, int | None] = {}
    for n in report.nodes:
        if n.kind != "array":
            continue
        b = n.bytes_stored
        p: str | None = n.path
        while p is not None:
            if p in stored_below:
                prev = stored_below[p]
                stored_below[p] = None if (prev is None or b is None) else prev + b
            else:
                stored_below[p] = b
            p = None if p == "" else parent_path(p)
    for n in report.nodes:
        parent = by_path.get(parent_path(n.path)) if n.path else None
        parent_ome = getattr(parent, "ome", None)
        parent_kind = parent_ome.kind if parent_ome is not None else None
        ome = getattr(n, "ome", None)
        shape: tuple[int, ...] | None = None
        dtype: str | None = None
        image_path: str | None = None
        level: int | None = None
        if n.kind == "error":
            kind, label = "error", "unreadable"
        elif n.kind == "array":
            shape, dtype = tuple(n.shape), str(n.dtype)
            if n.path in levels:
                image_path, level = levels[n.path]
                kind, label = "level", f"level {level}"
            else:
                kind, label = "array", f"array (v{n.zarr_format})"
        elif ome is None:
            kind, label = "group", f"group (v{n.zarr_format})"
        else:
            version = f" {ome.version}" if ome.version else ""
            if ome.kind == "image":
                if ome.label_image or parent_kind == "labels":
                    kind, label = "label", "label image"
                elif parent_kind == "well":
                    kind, label = "field", "field"
                elif parent_kind == "bioformats2raw":
                    kind, label = "series", "series"
                else:
                    kind, label = "image", f"OME image{version}"
                if ome.levels:
                    first = by_path.get(join_path(n.path, ome.levels[0].path))
                    if first is not None and first.kind == "array":
                        shape, dtype = tuple(first.shape), str(first.dtype)
                    elif ome.levels[0].shape is not None:
                        shape = tuple(ome.levels[0].shape)
                    label += f", {len(ome.levels)} level{'s' if len(ome.levels) != 1 else ''}"
            elif ome.kind == "labels":
                kind, label = "labels", "labels"
            elif ome.kind == "plate":
                kind, label = "plate", f"OME plate{version}"
            elif ome.kind == "well":
                kind, label = "well", "well"
            elif ome.kind == "bioformats2raw":
                kind, label = "bioformats2raw", "bioformats2raw"
            else:
                kind, label = "group", f"OME {ome.kind}"
        nodes[n.path] = NodeView(
            path=n.path,
            kind=kind,
            label=label,
            shape=shape,
            dtype=dtype,
            stored=stored_below.get(n.path) if n.kind != "error" else None,
            report=n,
            image_path=image_path,
            level=level,
        )
    return nodes
