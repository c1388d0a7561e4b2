"""Pyramids as an ``xarray.DataTree``: one node per level, in physical coordinates.

:func:`open_datatree` walks a store the way the napari reader does (OME images and their label
images, plate wells and their fields, bioformats2raw series, plain arrays and groups, N5) and
returns a tree whose leaves are the resolution levels ``scale0``, ``scale1``... Each level holds
one dask-backed variable, ``image``; nothing is read until it is computed. Dimension names come
from the OME axes, coordinates from each level's scale and translation (pixel centres:
``translation + scale * index``), the channel coordinate from the ``omero`` labels. Each image
node (the parent of its levels) carries the source, the path and the axes in its attributes.

:func:`to_napari_kwargs` turns an image node (or one level) back into the arguments of
``napari.Viewer.add_image``, since napari does not take a DataTree itself.

xarray is an optional dependency (the ``xarray`` extra); it is imported on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_zarr_explorer.errors import ExplorerError, MetadataError, NotFoundError, PathEscapeError

if TYPE_CHECKING:
    import xarray as xr

    from napari_zarr_explorer.layers import _Ctx
    from napari_zarr_explorer.ome.model import Axis, OmeMetadata
    from napari_zarr_explorer.store import NodeMeta

__all__ = ["LEVEL_PREFIX", "VARIABLE", "open_datatree", "to_napari_kwargs"]

#: Name of the level nodes: ``scale0`` (full resolution), ``scale1``...
LEVEL_PREFIX = "scale"
#: Name of the data variable in each level node.
VARIABLE = "image"

_MAX_NODES = 2000
_MAX_DEPTH = 6


def _xarray() -> Any:
    try:
        import xarray
    except ImportError:  # pragma: no cover - exercised without the extra
        raise ExplorerError(
            "open_datatree needs xarray, which is not installed.",
            hint='Install it with: pip install "napari-zarr-explorer[xarray]"',
        ) from None
    if not hasattr(xarray, "DataTree"):  # pragma: no cover
        raise ExplorerError(
            f"xarray {xarray.__version__} has no DataTree.",
            hint='Upgrade it: pip install "xarray>=2024.10"',
        )
    return xarray


def open_datatree(
    url: Any, path: str = "", *, storage_options: Mapping[str, Any] | None = None
) -> xr.DataTree:
    """Open a store (or the node at *path*) as an ``xarray.DataTree``, lazily.

    Parameters
    ----------
    url
        Local path or URL (``https://``, ``s3://``, ``gs://``) of a Zarr or N5 store.
    path
        Store-relative path of the node to open (default: the root).
    storage_options
        Options for remote stores.

    Returns
    -------
    xarray.DataTree
        Image nodes hold their levels as children ``scale0``, ``scale1``...; label images sit
        below ``labels/<name>``, plate fields below ``<row>/<column>/<field>``, bioformats2raw
        series below ``<series>``. A plain array is one level with index coordinates.

    Raises
    ------
    ExplorerError
        When xarray is missing, nothing is found at *path*, or the data cannot be opened.
    """
    xmod = _xarray()
    from napari_zarr_explorer.layers import _Ctx
    from napari_zarr_explorer.store import open_store, parse_location, read_node, safe_join
    from napari_zarr_explorer.store.locate import node_where

    loc = parse_location(url, dict(storage_options) if storage_options else None)
    store = open_store(loc)
    path = safe_join("", path, source="given")
    node = read_node(store, path, where=loc.shown)
    if node is None:
        raise NotFoundError(
            f"{node_where(loc.shown, path)}: no Zarr or N5 metadata found.", hint="Check the path."
        )
    builder = _Builder(_Ctx(loc, store), xmod)
    builder.visit(node, "")
    if not builder.entries:
        raise ExplorerError(f"{loc.shown}: nothing to show: no image-like array found.")
    root = builder.entries.setdefault("/", xmod.Dataset())
    root.attrs.setdefault("source", loc.shown)
    tree: xr.DataTree = xmod.DataTree.from_dict(builder.entries, name=loc.name)
    return tree


class _Builder:
    def __init__(self, ctx: _Ctx, xr: Any) -> None:
        self.ctx = ctx
        self.xr = xr
        self.entries: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return self.ctx.loc.shown

    def _key(self, prefix: str, *names: str) -> str:
        parts = [p for p in (prefix.strip("/"), *names) if p]
        return "/" + "/".join(parts)

    def visit(self, node: NodeMeta, prefix: str, depth: int = 0) -> None:
        from napari_zarr_explorer.layers import _Unusable
        from napari_zarr_explorer.ome.model import parse_ome

        if len(self.entries) > _MAX_NODES or depth > _MAX_DEPTH:
            return
        if node.kind == "array":
            self.plain_array(node, prefix)
            return
        ome = parse_ome(node.attributes, zarr_format=node.zarr_format)
        try:
            if ome is not None and ome.kind == "image":
                self.image(node, ome, prefix)
                self.labels_below(node, prefix)
                return
            if ome is not None and ome.kind == "labels":
                self.labels(node.path, ome, prefix)
                return
            if ome is not None and ome.kind == "well" and ome.well is not None:
                self.children(node, [im.path for im in ome.well.images], prefix, depth)
                return
            if ome is not None and ome.kind == "plate" and ome.plate is not None:
                self.children(node, [w.path for w in ome.plate.wells], prefix, depth)
                return
            if ome is not None and ome.kind == "bioformats2raw":
                self.children(node, self.series(node, ome), prefix, depth)
                return
        except _Unusable as exc:
            self.ctx.warn(node.path, f"the OME-NGFF metadata cannot be used ({exc}).")
        from napari_zarr_explorer.pyramid import list_children

        self.children(node, list_children(self.ctx.store, node.path), prefix, depth)

    def children(self, node: NodeMeta, rels: Sequence[str], prefix: str, depth: int) -> None:
        from napari_zarr_explorer.store import read_node, safe_join

        for rel in rels:
            try:
                key = safe_join(node.path, rel)
                child = read_node(self.ctx.store, key, where=self.url)
            except (PathEscapeError, MetadataError) as exc:
                self.ctx.warn(node.path, f"{rel!r} skipped: {exc}")
                continue
            if child is None:
                continue
            try:
                self.visit(child, self._key(prefix, *rel.split("/")), depth + 1)
            except ExplorerError as exc:
                self.ctx.warn(key, f"skipped: {exc}")

    def series(self, node: NodeMeta, ome: OmeMetadata) -> list[str]:
        from napari_zarr_explorer.layers import MAX_SERIES_PROBE
        from napari_zarr_explorer.ome.model import parse_ome
        from napari_zarr_explorer.store import read_node, safe_join

        series = list(ome.series)
        if not series:
            onode = read_node(self.ctx.store, safe_join(node.path, "OME"), where=self.url)
            if onode is not None:
                oome = parse_ome(onode.attributes, zarr_format=onode.zarr_format)
                series = list(oome.series) if oome is not None else []
        if not series:
            for i in range(MAX_SERIES_PROBE):
                if read_node(self.ctx.store, safe_join(node.path, str(i)), where=self.url) is None:
                    break
                series.append(str(i))
        return series

    def labels_below(self, node: NodeMeta, prefix: str) -> None:
        from napari_zarr_explorer.ome.model import parse_ome
        from napari_zarr_explorer.store import read_node, safe_join

        key = safe_join(node.path, "labels")
        try:
            lnode = read_node(self.ctx.store, key, where=self.url)
        except MetadataError as exc:
            self.ctx.warn(node.path, f"labels skipped: {exc}")
            return
        if lnode is None or lnode.kind != "group":
            return
        lome = parse_ome(lnode.attributes, zarr_format=lnode.zarr_format)
        if lome is not None and lome.labels:
            self.labels(key, lome, self._key(prefix, "labels"))

    def labels(self, path: str, ome: OmeMetadata, prefix: str) -> None:
        from napari_zarr_explorer.ome.model import parse_ome
        from napari_zarr_explorer.store import read_node, safe_join

        for name in ome.labels:
            try:
                key = safe_join(path, name)
                node = read_node(self.ctx.store, key, where=self.url)
                lome = (
                    None
                    if node is None
                    else parse_ome(node.attributes, zarr_format=node.zarr_format)
                )
                if node is None or lome is None or not lome.multiscales:
                    self.ctx.warn(path, f"label image {name!r} has no multiscales; skipped.")
                    continue
                self.image(node, lome, self._key(prefix, name), kind="labels")
            except (PathEscapeError, MetadataError) as exc:
                self.ctx.warn(path, f"label image {name!r} skipped: {exc}")

    # ---------------------------------------------------------------- nodes

    def image(self, node: NodeMeta, ome: OmeMetadata, prefix: str, kind: str = "image") -> None:
        ms = ome.multiscales[0]
        levels, paths, used, axes = self.ctx.levels(node, ms)
        dims = _dims(axes)
        channels = _channel_labels(ome, axes, levels[0].shape)
        units = {d: a.unit for d, a in zip(dims, axes, strict=True) if a.unit}
        for i, (data, lpath, idx) in enumerate(zip(levels, paths, used, strict=True)):
            ds = ms.datasets[idx]
            scale = _fit(ds.scale, data.ndim, 1.0)
            translation = _fit(ds.translation, data.ndim, 0.0)
            coords = {}
            for d, (dim, axis, n) in enumerate(zip(dims, axes, data.shape, strict=True)):
                if axis.type == "channel" or dim == "c":
                    values: Any = channels if channels is not None else np.arange(n)
                    coords[dim] = (dim, values, {"type": "channel"})
                else:
                    cattrs: dict[str, Any] = {"type": axis.type} if axis.type else {}
                    if axis.unit:
                        cattrs["units"] = axis.unit
                    values = translation[d] + scale[d] * np.arange(n, dtype="float64")
                    coords[dim] = (dim, values, cattrs)
            # layer data are LazyArray: the variable is dask, as documented
            var = self.xr.DataArray(data.to_dask(), dims=dims, coords=coords, name=VARIABLE)
            self.entries[self._key(prefix, f"{LEVEL_PREFIX}{i}")] = self.xr.Dataset(
                {VARIABLE: var},
                attrs={
                    "source": self.url,
                    "path": lpath,
                    "scale": scale,
                    "translation": translation,
                },
            )
        attrs: dict[str, Any] = {
            "source": self.url,
            "path": node.path,
            "kind": kind,
            "ome_version": ome.version or "",
            "axes": [{"name": a.name, "type": a.type, "unit": a.unit} for a in axes],
            "units": units,
        }
        if ms.name:
            attrs["name"] = ms.name
        if channels is not None:
            attrs["channel_names"] = list(channels)
        self.entries[self._key(prefix)] = self.xr.Dataset(attrs=attrs)

    def plain_array(self, node: NodeMeta, prefix: str) -> None:
        from napari_zarr_explorer.pyramid import as_dask
        from napari_zarr_explorer.store import open_array

        shape = node.shape or ()
        dtype = str(node.metadata.get("data_type", node.metadata.get("dtype", "")))
        if not shape or "O" in dtype or dtype in ("string", "bytes"):
            return
        arr = open_array(self.ctx.loc, node.path, store=self.ctx.store)
        data = as_dask(arr, where=self.ctx.where(node.path))
        names = node.metadata.get("dimension_names") if node.zarr_format == 3 else None
        if (
            isinstance(names, list)
            and len(names) == data.ndim
            and all(isinstance(n, str) for n in names)
            and len(set(names)) == len(names)
        ):
            dims = [str(n) for n in names]
        else:
            dims = [f"dim_{i}" for i in range(data.ndim)]
        coords = {d: np.arange(n) for d, n in zip(dims, data.shape, strict=True)}
        var = self.xr.DataArray(data, dims=dims, coords=coords, name=VARIABLE)
        attrs = {"source": self.url, "path": node.path}
        self.entries[self._key(prefix, f"{LEVEL_PREFIX}0")] = self.xr.Dataset(
            {VARIABLE: var}, attrs={**attrs, "scale": [1.0] * data.ndim}
        )
        self.entries[self._key(prefix)] = self.xr.Dataset(attrs={**attrs, "kind": "array"})


def _dims(axes: Sequence[Axis]) -> list[str]:
    names = [a.name for a in axes]
    if len(set(names)) == len(names) and all(isinstance(n, str) and n for n in names):
        return list(names)
    return [f"dim_{i}" for i in range(len(axes))]


def _fit(values: Sequence[float] | None, ndim: int, default: float) -> list[float]:
    if values is None or len(values) != ndim:
        return [default] * ndim
    return [float(v) for v in values]


def _channel_labels(
    ome: OmeMetadata, axes: Sequence[Axis], shape: Sequence[int]
) -> list[str] | None:
    for d, axis in enumerate(axes):
        if axis.type == "channel" or axis.name == "c":
            chans = ome.omero.channels if ome.omero is not None else ()
            labels = [c.label or f"channel {i}" for i, c in enumerate(chans)]
            if len(labels) == shape[d] and len(set(labels)) == len(labels):
                return labels
            return None
    return None


# --------------------------------------------------------------------------------------------
# napari
# --------------------------------------------------------------------------------------------


def _levels_of(tree: Any) -> list[Any]:
    """Return the level datasets of an image node (or the one level given)."""
    import xarray as xr

    if isinstance(tree, xr.DataArray):
        return [xr.Dataset({VARIABLE: tree})]
    if isinstance(tree, xr.Dataset):
        return [tree]
    children = getattr(tree, "children", {})
    names = sorted(
        (n for n in children if n.startswith(LEVEL_PREFIX) and n[len(LEVEL_PREFIX) :].isdigit()),
        key=lambda n: int(n[len(LEVEL_PREFIX) :]),
    )
    if names:
        return [children[n].to_dataset() for n in names]
    if VARIABLE in getattr(tree, "data_vars", {}):
        return [tree.to_dataset()]
    raise ExplorerError(
        f"{getattr(tree, 'path', tree)!s}: not an image node: it has no "
        f"{LEVEL_PREFIX}0, {LEVEL_PREFIX}1... children.",
        hint="Pass the node of one image, e.g. tree['labels/cells'] or tree['A/1/0'].",
    )


def to_napari_kwargs(tree: Any, *, variable: str = VARIABLE) -> dict[str, Any]:
    """Return ``viewer.add_image`` arguments for an image node of :func:`open_datatree`.

    Parameters
    ----------
    tree
        An image node (whose children are ``scale0``, ``scale1``...), one level node, a level
        ``Dataset`` or a ``DataArray`` with physical coordinates.
    variable
        The data variable of each level (``"image"``).

    Returns
    -------
    dict
        ``data`` (a list of dask arrays, largest first, or one array), ``multiscale``,
        ``scale`` and ``translate`` from the level-0 coordinates, ``axis_labels``, ``units``
        when every spatial axis has one, and for a channel axis ``channel_axis`` and ``name``
        (the channel labels). Use as ``viewer.add_image(**to_napari_kwargs(tree["image"]))``.
    """
    levels = _levels_of(tree)
    arrays = [ds[variable] for ds in levels]
    first = arrays[0]
    dims = [str(d) for d in first.dims]
    ds0 = levels[0]
    scale: list[float] = []
    translate: list[float] = []
    units: list[str | None] = []
    for d, dim in enumerate(dims):
        coord = first.coords.get(dim)
        attr_scale = ds0.attrs.get("scale")
        attr_trans = ds0.attrs.get("translation")
        if isinstance(attr_scale, list) and len(attr_scale) == len(dims):
            step = float(attr_scale[d])
            start = float(attr_trans[d]) if isinstance(attr_trans, list) else 0.0
        elif coord is not None and coord.size > 1 and np.issubdtype(coord.dtype, np.number):
            step = float(coord.values[1] - coord.values[0])
            start = float(coord.values[0])
        else:
            step, start = 1.0, float(coord.values[0]) if coord is not None and coord.size else 0.0
        scale.append(step)
        translate.append(start)
        units.append(coord.attrs.get("units") if coord is not None else None)
    caxis = None
    for d, dim in enumerate(dims):
        coord = first.coords.get(dim)
        if dim == "c" or (coord is not None and coord.attrs.get("type") == "channel"):
            caxis = d
            break
    out: dict[str, Any] = {}
    names: list[str] | None = None
    if caxis is not None:
        coord = first.coords.get(dims[caxis])
        if coord is not None and coord.dtype.kind in "US":
            names = [str(v) for v in coord.values]
        for lst in (scale, translate, units):
            del lst[caxis]
        del dims[caxis]
        out["channel_axis"] = caxis
    data = [a.data for a in arrays]
    out["data"] = data if len(data) > 1 else data[0]
    out["multiscale"] = len(data) > 1
    out["scale"] = tuple(scale)
    out["translate"] = tuple(translate)
    out["axis_labels"] = tuple(dims)
    if units and all(u for u in units):
        out["units"] = tuple(units)
    if names is not None:
        out["name"] = names
    else:
        label = getattr(tree, "name", None)
        if isinstance(label, str) and label:
            out["name"] = label
    return out
