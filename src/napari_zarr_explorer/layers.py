"""Turn a Zarr or OME-Zarr store into napari layer data, without importing napari.

:func:`open_layers` returns ``(data, kwargs, layer_type)`` tuples (npe2 ``LayerData``). Data are
lazy arrays napari slices directly (:class:`~napari_zarr_explorer.pyramid.LazyArray`: a view
reads only the stored chunks under it), plates a lazy dask mosaic (see
:mod:`napari_zarr_explorer.pyramid`); nothing but metadata is read here.
Problems that do not stop the opening are reported as
:class:`~napari_zarr_explorer.errors.ExplorerWarning`.

Every layer's ``metadata`` records where it came from, so that the explorer can map a layer back
to its node: ``source_url``, ``node_path``, ``level_paths``, ``zarr_format``, ``ome_version``,
``ome_kind`` and, depending on the kind, ``series``, ``plate`` or ``fields``.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_zarr_explorer.errors import (
    AccessDeniedError,
    ExplorerError,
    ExplorerWarning,
    MetadataError,
    NotFoundError,
    PathEscapeError,
)
from napari_zarr_explorer.ome.model import (
    Axis,
    Multiscale,
    OmeMetadata,
    Omero,
    infer_axes,
    parse_ome,
)
from napari_zarr_explorer.plate import PlateSource, plate_levels
from napari_zarr_explorer.pyramid import (
    ChunkReader,
    LazyArray,
    _numeric,
    as_level,
    find_pyramid,
    list_children,
)
from napari_zarr_explorer.store import (
    Location,
    NodeMeta,
    check_array_metadata,
    open_array,
    open_store,
    parse_location,
    read_node,
    safe_join,
)
from napari_zarr_explorer.store.locate import node_where

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["LayerData", "colormap_spec", "open_layers"]

LayerData = tuple[Any, dict[str, Any], str]

#: Named napari colormaps for the common pure OMERO colours.
_NAMED = {
    "FF0000": "red",
    "00FF00": "green",
    "0000FF": "blue",
    "FF00FF": "magenta",
    "00FFFF": "cyan",
    "FFFF00": "yellow",
    "FFFFFF": "gray",
}
#: Colours used for channels without one (napari's own multichannel cycle).
_CYCLE = ("magenta", "green", "cyan", "red", "blue", "yellow")
#: At most this many arrays of a plain group become layers.
MAX_PLAIN_LAYERS = 32
#: At most this many bioformats2raw series are probed when no ``OME/series`` list exists.
MAX_SERIES_PROBE = 1000


def _open_image(loc: Location, path: str, *, store: Any) -> Any:
    """Open the array at *path* for an image or labels layer: numeric or boolean data only.

    Object, string and other non-numeric data types are refused here, whatever other metadata
    (a consolidated document, OME metadata) said about the array.
    """
    arr = open_array(loc, path, store=store)
    dtype = np.dtype(arr.dtype) if isinstance(arr.dtype, np.dtype) else None
    if dtype is None or dtype.kind not in "biuf":
        raise MetadataError(
            f"{node_where(loc.shown, path)}: the data type {arr.dtype} is not numeric; it cannot "
            "be shown as an image.",
            hint="Image and labels layers need numeric or boolean arrays.",
        )
    return arr


def open_layers(
    url: str | Location,
    *,
    storage_options: dict[str, Any] | None = None,
    path: str = "",
) -> list[LayerData]:
    """Open the Zarr / OME-Zarr node at *url* (and *path*) as napari layer data.

    Parameters
    ----------
    url
        Local path, ``file://``, ``http(s)://``, ``s3://`` or ``gs://`` URL of the store.
    storage_options
        Options for remote stores (credentials, endpoint...).
    path
        Store-relative node to open (default: the root).

    Returns
    -------
    list of (data, kwargs, layer_type)
        Image layers (``"image"``) and label layers (``"labels"``); data are
        :class:`~napari_zarr_explorer.pyramid.LazyArray` levels (lists of them for multiscale
        layers; a dask mosaic for plates).

    Raises
    ------
    ExplorerError
        When nothing can be opened (no Zarr metadata, unsafe data, unknown codec...).
    """
    loc = parse_location(url, storage_options)
    store = open_store(loc)
    ctx = _Ctx(loc, store)
    path = safe_join("", path)
    node = read_node(store, path, where=loc.shown)
    if node is None:
        raise NotFoundError(
            f"{ctx.where(path)}: no Zarr metadata found (.zarray, .zgroup, .zattrs or zarr.json).",
            hint="Open the folder of a Zarr array or group.",
        )
    layers = ctx.open_node(node)
    if not layers:
        raise ExplorerError(
            f"{ctx.where(path)}: nothing to show: no image-like array found.",
            hint="Numeric arrays with at least two dimensions are opened as images.",
        )
    return layers


@dataclass
class _Ctx:
    loc: Location
    store: Any

    def where(self, path: str) -> str:
        return node_where(self.loc.shown, path)

    def warn(self, path: str, message: str) -> None:
        warnings.warn(f"{self.where(path)}: {message}", ExplorerWarning, stacklevel=4)

    # ---------------------------------------------------------------- dispatch

    def open_node(self, node: NodeMeta) -> list[LayerData]:
        if node.kind == "array":
            return [self.plain_array(node)]
        ome = parse_ome(node.attributes, zarr_format=node.zarr_format)
        if ome is None:
            return self.plain_group(node)
        if ome.warnings:
            self.warn(
                node.path,
                f"the OME-NGFF {ome.version or ''} metadata is not valid but was used: "
                + "; ".join(ome.warnings),
            )
        try:
            if ome.kind == "image":
                return self.ome_image(node, ome)
            if ome.kind == "labels":
                return self.labels_group(node.path, ome)
            if ome.kind == "plate":
                return self.plate(node, ome)
            if ome.kind == "well":
                return self.well(node, ome)
            if ome.kind == "bioformats2raw":
                return self.bioformats2raw(node, ome)
            if ome.kind == "scene":
                return self.scene(node, ome)
        except _Unusable as exc:
            self.warn(
                node.path,
                f"the OME-NGFF metadata cannot be used ({exc}); the arrays are opened plainly.",
            )
            return self.plain_group(node)
        return self.plain_group(node)  # pragma: no cover

    # ---------------------------------------------------------------- plain data

    def base_metadata(self, path: str, node: NodeMeta | None, **extra: Any) -> dict[str, Any]:
        md: dict[str, Any] = {
            "source_url": self.loc.shown,
            "node_path": path,
            "zarr_format": node.zarr_format if node is not None else None,
        }
        md.update(extra)
        return md

    def plain_array(self, node: NodeMeta, name: str | None = None) -> LayerData:
        # unsafe or undecodable data is refused with its own reason first
        check_array_metadata(
            node.metadata, where=self.where(node.path), zarr_format=node.zarr_format
        )
        shape = node.shape
        if shape is not None and (len(shape) < 2 or not _numeric(node.metadata, node.zarr_format)):
            dtype = node.metadata.get("dtype" if node.zarr_format == 2 else "data_type")
            raise ExplorerError(
                f"{self.where(node.path)}: a {len(shape)}-dimensional array of {dtype!r} cannot "
                "be shown as an image.",
                hint="Images need a numeric or boolean array with at least two dimensions.",
            )
        arr = _open_image(self.loc, node.path, store=self.store)
        data = as_level(arr, where=self.where(node.path))
        dims = node.metadata.get("dimension_names") if node.zarr_format == 3 else None
        kwargs: dict[str, Any] = {
            "name": name or (node.path.rsplit("/", 1)[-1] if node.path else self.loc.name),
            "metadata": self.base_metadata(
                node.path, node, level_paths=[node.path], ome_version=None, ome_kind=None
            ),
        }
        if (
            isinstance(dims, list)
            and len(dims) == data.ndim
            and all(isinstance(d, str) for d in dims)
        ):
            kwargs["axis_labels"] = tuple(dims)
        return (_viewable(data), kwargs, "image")

    def plain_group(self, node: NodeMeta, depth: int = 0) -> list[LayerData]:
        path = node.path
        arrays: list[tuple[str, tuple[int, ...]]] = []
        nodes: dict[str, NodeMeta] = {}
        groups: list[NodeMeta] = []
        for name in list_children(self.store, path):
            try:
                key = safe_join(path, name)
                child = read_node(self.store, key, where=self.loc.shown)
            except (PathEscapeError, MetadataError) as exc:
                self.warn(path, f"child {name!r} skipped: {exc}")
                continue
            if child is None:
                continue
            if child.kind == "group":
                groups.append(child)
                continue
            shape = child.shape
            if shape is None or len(shape) < 2 or not _numeric(child.metadata, child.zarr_format):
                continue
            arrays.append((name, shape))
            nodes[name] = child
        layers: list[LayerData] = []
        pyr = find_pyramid(arrays)
        if pyr:
            levels = [
                as_level(
                    _open_image(self.loc, nodes[n].path, store=self.store),
                    where=self.where(nodes[n].path),
                )
                for n in pyr
            ]
            kwargs: dict[str, Any] = {
                "name": path.rsplit("/", 1)[-1] if path else self.loc.name,
                "multiscale": True,
                "metadata": self.base_metadata(
                    path,
                    node,
                    level_paths=[nodes[n].path for n in pyr],
                    ome_version=None,
                    ome_kind=None,
                ),
            }
            layers.append(([_viewable(lv) for lv in levels], kwargs, "image"))
        else:
            for name, _ in arrays[:MAX_PLAIN_LAYERS]:
                layers.append(self.plain_array(nodes[name]))
            if len(arrays) > MAX_PLAIN_LAYERS:
                self.warn(
                    path,
                    f"{len(arrays)} arrays found; only the first {MAX_PLAIN_LAYERS} are opened.",
                )
        if not layers:
            # a container of OME images (e.g. several images in one store)
            for child in groups[:MAX_PLAIN_LAYERS]:
                ome = parse_ome(child.attributes, zarr_format=child.zarr_format)
                if ome is not None and ome.kind in ("image", "plate", "bioformats2raw"):
                    layers.extend(self.open_node(child))
        if not layers and depth < 2:
            # images nested in plain groups (N5 from BigDataViewer: setup0/timepoint0/s0)
            for child in groups[:MAX_PLAIN_LAYERS]:
                if parse_ome(child.attributes, zarr_format=child.zarr_format) is None:
                    layers.extend(self.plain_group(child, depth + 1))
                if len(layers) >= MAX_PLAIN_LAYERS:
                    break
        return layers

    # ---------------------------------------------------------------- OME images

    def ome_image(
        self,
        node: NodeMeta,
        ome: OmeMetadata,
        *,
        with_labels: bool = True,
        extra_md: Mapping[str, Any] | None = None,
    ) -> list[LayerData]:
        if not ome.multiscales:
            raise _Unusable("no usable 'multiscales' entry")
        ms = ome.multiscales[0]
        if len(ome.multiscales) > 1:
            self.warn(
                node.path,
                f"{len(ome.multiscales)} multiscales entries; the first is opened.",
            )
        is_label = ome.image_label is not None or _is_in_labels(node.path)
        layer = self.multiscale_layer(node, ms, ome, as_labels=is_label, extra_md=extra_md)
        layers = [layer]
        if with_labels and not is_label:
            layers.extend(self.labels_of(node.path))
        return layers

    def levels(
        self, node: NodeMeta, ms: Multiscale
    ) -> tuple[list[LazyArray], list[str], list[int], tuple[Axis, ...]]:
        """Open the usable levels of *ms*; return arrays, paths, dataset indices and axes."""
        out: list[LazyArray] = []
        paths: list[str] = []
        used: list[int] = []
        problems: list[str] = []
        ndim: int | None = None
        for i, ds in enumerate(ms.datasets):
            try:
                key = safe_join(node.path, ds.path)
            except PathEscapeError as exc:
                problems.append(f"level {ds.path!r} refused: {exc.message}")
                continue
            child = read_node(self.store, key, where=self.loc.shown)
            if child is None or child.kind != "array":
                problems.append(f"level {ds.path!r} does not exist or is not an array")
                continue
            arr = _open_image(self.loc, key, store=self.store)
            if ndim is None:
                ndim = arr.ndim
            elif arr.ndim != ndim:
                problems.append(
                    f"level {ds.path!r} has {arr.ndim} dimensions, level 0 has {ndim}; skipped"
                )
                continue
            if out and any(s > p for s, p in zip(arr.shape, out[-1].shape, strict=True)):
                problems.append(f"level {ds.path!r} is larger than the level before it; skipped")
                continue
            out.append(as_level(arr, where=self.where(key)))
            paths.append(key)
            used.append(i)
        if problems:
            self.warn(
                node.path, "; ".join(problems) + (" (the other levels are opened)." if out else ".")
            )
        if not out:
            refused = [p for p in problems if "refused" in p]
            if refused and len(refused) == len(problems):
                raise PathEscapeError(
                    f"{self.where(node.path)}: every multiscales level was refused: "
                    + "; ".join(refused)
                )
            raise _Unusable("none of the multiscales levels could be opened")
        assert ndim is not None
        axes = ms.axes
        if not axes:
            axes = infer_axes(ndim)
        elif len(axes) != ndim:
            self.warn(
                node.path,
                f"{len(axes)} axes are declared for {ndim}-dimensional data; axes inferred.",
            )
            axes = infer_axes(ndim)
        return out, paths, used, axes

    def multiscale_layer(
        self,
        node: NodeMeta,
        ms: Multiscale,
        ome: OmeMetadata,
        *,
        as_labels: bool,
        extra_md: Mapping[str, Any] | None = None,
        data_override: list[da.Array] | None = None,
        opened: tuple[list[LazyArray], list[str], list[int], tuple[Axis, ...]] | None = None,
        name: str | None = None,
    ) -> LayerData:
        opened_levels, paths, used, axes = opened if opened is not None else self.levels(node, ms)
        levels: list[Any] = list(opened_levels) if data_override is None else list(data_override)
        ndim = levels[0].ndim
        ds0 = ms.datasets[used[0]]
        scale = list(ds0.scale) if ds0.scale is not None and len(ds0.scale) == ndim else None
        translate = (
            list(ds0.translation)
            if ds0.translation is not None and len(ds0.translation) == ndim
            else None
        )
        labels_ = [a.name for a in axes]
        units = [a.unit for a in axes]
        caxis = None if as_labels else _channel_axis(axes)
        base_name = name or ms.name or _basename(node.path) or self.loc.name
        md = self.base_metadata(
            node.path,
            node,
            level_paths=paths,
            ome_version=ome.version,
            ome_kind=ome.kind,
            axes=[{"name": a.name, "type": a.type, "unit": a.unit} for a in axes],
        )
        if extra_md:
            md.update(extra_md)
        kwargs: dict[str, Any] = {"multiscale": len(levels) > 1, "metadata": md}
        if caxis is not None:
            for lst in (scale, translate):
                if lst is not None:
                    del lst[caxis]
            del labels_[caxis]
            del units[caxis]
        if scale is not None:
            if any(s <= 0 for s in scale):
                self.warn(node.path, f"scale {scale} is not positive; ignored.")
            else:
                kwargs["scale"] = tuple(scale)
        if translate is not None:
            kwargs["translate"] = tuple(translate)
        kwargs["axis_labels"] = tuple(labels_)
        if units and all(u is not None for u in units):
            if all(u in _OME_UNITS for u in units):
                kwargs["units"] = tuple(units)
            else:
                self.warn(node.path, f"axis units {units} are not OME-NGFF units; ignored.")
        data: Any = [_viewable(lv) for lv in levels] if len(levels) > 1 else _viewable(levels[0])
        if as_labels:
            dt = levels[0].dtype
            if dt.kind not in "iub":
                self.warn(node.path, f"label image has dtype {dt}; opened as an image instead.")
            else:
                kwargs["name"] = base_name
                if isinstance(data, LazyArray):
                    # napari paints into the array it read, then assigns it back: reads of a
                    # single-scale label image are writable copies
                    data.writable = True
                cmap = _label_colormap(ome)
                if cmap is not None:
                    kwargs["colormap"] = cmap
                if ome.image_label is not None and ome.image_label.properties:
                    kwargs["metadata"]["label_properties"] = [
                        dict(p) for p in ome.image_label.properties
                    ]
                return (data, kwargs, "labels")
        dtype = levels[0].dtype
        if caxis is not None and _is_rgb(node, ome, int(levels[0].shape[caxis]), dtype):
            import dask.array

            # levels are lazy arrays napari slices directly; moving the channel axis last goes
            # through dask, one block per stored chunk
            moved = [
                dask.array.moveaxis(
                    dask.array.from_array(  # type: ignore[no-untyped-call]
                        lv,
                        chunks=getattr(lv, "chunks", None) or "auto",
                        asarray=True,
                        fancy=False,
                        name=f"nze-rgb-{_token(self.loc.url, node.path, i)}",
                    ),
                    caxis,
                    -1,
                )
                for i, lv in enumerate(levels)
            ]
            kwargs["rgb"] = True
            kwargs["name"] = base_name
            kwargs["metadata"]["rgb_channel_axis"] = caxis
            return (moved if len(moved) > 1 else moved[0], kwargs, "image")
        if caxis is not None:
            n = int(levels[0].shape[caxis])
            kwargs["channel_axis"] = caxis
            kwargs.update(self.channel_settings(node.path, ome.omero, n, dtype, base_name))
        else:
            kwargs["name"] = base_name
            if ome.omero is not None and len(ome.omero.channels) == 1:
                one = self.channel_settings(node.path, ome.omero, 1, dtype, base_name)
                for key in ("colormap", "contrast_limits", "visible"):
                    if key in one:
                        kwargs[key] = one[key][0]
                if one.get("name") and ome.omero.channels[0].label:
                    kwargs["name"] = one["name"][0]
        return (data, kwargs, "image")

    def channel_settings(
        self, path: str, omero: Omero | None, n: int, dtype: np.dtype[Any], base: str
    ) -> dict[str, Any]:
        chans = list(omero.channels) if omero is not None else []
        if omero is not None and len(chans) != n:
            self.warn(
                path,
                f"omero lists {len(chans)} channels for {n} in the data; "
                "missing ones use defaults, extra ones are ignored.",
            )
        chans = chans[:n]
        names = []
        cmaps: list[Any] = []
        limits: list[list[float] | None] = []
        visible = []
        for i in range(n):
            ch = chans[i] if i < len(chans) else None
            label = ch.label if ch is not None and ch.label else None
            names.append(label or (f"{base} [{i}]" if n > 1 else base))
            cmaps.append(colormap_spec(ch.color if ch else None, i, n, ch.inverted if ch else None))
            limits.append(_window(ch, dtype) if ch is not None else None)
            visible.append(bool(ch.active) if ch is not None and ch.active is not None else True)
        out: dict[str, Any] = {"name": names, "colormap": cmaps, "visible": visible}
        if any(lim is not None for lim in limits):
            fallback = _dtype_range(dtype)
            out["contrast_limits"] = [lim if lim is not None else fallback for lim in limits]
        if dtype.kind not in "iuf" and "contrast_limits" in out:
            del out["contrast_limits"]
        return out

    # ---------------------------------------------------------------- labels

    def labels_of(self, image_path: str) -> list[LayerData]:
        key = safe_join(image_path, "labels")
        try:
            node = read_node(self.store, key, where=self.loc.shown)
        except (MetadataError, AccessDeniedError) as exc:
            # Refused: a bucket that does not allow listing refuses an absent labels group
            # too. The image is shown; the warning says the labels were refused.
            self.warn(image_path, f"labels skipped: {exc}")
            return []
        if node is None or node.kind != "group":
            return []
        ome = parse_ome(node.attributes, zarr_format=node.zarr_format)
        if ome is None or not ome.labels:
            return []
        return self.labels_group(key, ome)

    def labels_group(self, path: str, ome: OmeMetadata) -> list[LayerData]:
        layers: list[LayerData] = []
        for name in ome.labels:
            try:
                key = safe_join(path, name)
                node = read_node(self.store, key, where=self.loc.shown)
                if node is None:
                    self.warn(path, f"label image {name!r} is listed but does not exist.")
                    continue
                lome = parse_ome(node.attributes, zarr_format=node.zarr_format)
                if lome is None or not lome.multiscales:
                    self.warn(path, f"label image {name!r} has no multiscales; skipped.")
                    continue
                if lome.warnings:
                    self.warn(
                        key, "label metadata is not valid but was used: " + "; ".join(lome.warnings)
                    )
                layers.append(
                    self.multiscale_layer(
                        node, lome.multiscales[0], lome, as_labels=True, name=name
                    )
                )
            except (PathEscapeError, _Unusable, MetadataError) as exc:
                self.warn(path, f"label image {name!r} skipped: {exc}")
        return layers

    # ---------------------------------------------------------------- OME-NGFF 0.6 scenes

    def scene(self, node: NodeMeta, ome: OmeMetadata) -> list[LayerData]:
        """OME-NGFF 0.6 scene: each image it names, placed in the scene's first system."""
        from napari_zarr_explorer.ome.scene import load_graph
        from napari_zarr_explorer.ome.transforms import TransformError, layer_placement

        assert ome.scene is not None
        sg = load_graph(self.store, node.path, where=self.loc.shown)
        for text in sg.graph.problems:
            self.warn(node.path, text)
        ref = sg.default_system()
        out: list[LayerData] = []
        images = list(self.ome_images(node, ome.scene.image_paths, "image", "does not exist."))
        if ref is None and images:
            ms0 = images[0][2].multiscales[0]
            ref = (images[0][1].path, ms0.intrinsic) if ms0.intrinsic else None
        for _rel, child, come in images:
            layers = self.ome_image(child, come)
            ms = come.multiscales[0]
            out.extend(layers)
            if ref is None:
                continue
            if not ms.intrinsic:
                self.warn(child.path, "the image has no intrinsic coordinate system; not placed.")
                continue
            try:
                t = sg.graph.find((child.path, ms.intrinsic), ref)
            except TransformError as exc:
                self.warn(child.path, f"{exc.message} It is shown in its own coordinates.")
                continue
            n = len(ms.axes)
            m = t.matrix(n)
            if m is None or m.shape != (n + 1, n + 1):
                self.warn(
                    child.path,
                    f"the transformation to {_cs_name(ref)!r} ({t.describe()}) is not applied "
                    "(only affine transformations with inline parameters place layers); the "
                    "image is shown in its own coordinates.",
                )
                continue
            caxis = _channel_axis(ms.axes)
            # The image and its label images (in the image's intrinsic system) move together.
            for _data, kwargs, _type in layers:
                kwargs["metadata"]["coordinate_system"] = _cs_name(ref)
                drop = caxis if len(kwargs.get("axis_labels", ())) == n - 1 else None
                if len(kwargs.get("axis_labels", ())) != n - (drop is not None):
                    self.warn(
                        child.path, "a label image has other axes than its image; not placed."
                    )
                    continue
                placed, problem = layer_placement(
                    m, kwargs.get("scale"), kwargs.get("translate"), drop_axis=drop
                )
                if problem:
                    self.warn(child.path, problem + ".")
                kwargs.update(placed)
        if not out:
            raise _Unusable("the scene names no image that could be opened")
        return out

    # ---------------------------------------------------------------- HCS

    def well(self, node: NodeMeta, ome: OmeMetadata) -> list[LayerData]:
        assert ome.well is not None
        if not ome.well.images:
            raise _Unusable("the well lists no images")
        fields = [im.path for im in ome.well.images]
        for _, child, fome in self.ome_images(node, fields, "field", "does not exist."):
            return self.ome_image(child, fome, extra_md={"fields": fields, "ome_kind": "well"})
        raise _Unusable("no field of the well could be opened")

    def ome_images(
        self, node: NodeMeta, rels: Sequence[str], what: str, missing: str
    ) -> Iterator[tuple[str, NodeMeta, OmeMetadata]]:
        """Yield ``(rel, node, ome)`` for each of *rels* below *node* that is an OME image.

        Paths that leave the store or do not exist are skipped with a warning naming *what*
        (``"field"``, ``"series"``) and saying *missing*.
        """
        for rel in rels:
            try:
                key = safe_join(node.path, rel)
            except PathEscapeError as exc:
                self.warn(node.path, f"{what} {rel!r} refused: {exc.message}")
                continue
            child = read_node(self.store, key, where=self.loc.shown)
            if child is None:
                self.warn(node.path, f"{what} {rel!r} {missing}")
                continue
            come = parse_ome(child.attributes, zarr_format=child.zarr_format)
            if come is not None and come.multiscales:
                yield rel, child, come

    def plate(self, node: NodeMeta, ome: OmeMetadata) -> list[LayerData]:
        plate = ome.plate
        assert plate is not None
        if not plate.wells:
            raise _Unusable("the plate lists no wells")
        # the template: the first well (in plate order) whose first field opens
        template = None
        for w in sorted(plate.wells, key=lambda w: (w.row_index, w.column_index)):
            try:
                wkey = safe_join(node.path, w.path)
            except PathEscapeError as exc:
                self.warn(node.path, f"well {w.path!r} refused: {exc.message}")
                continue
            wnode = read_node(self.store, wkey, where=self.loc.shown)
            if wnode is None:
                continue
            wome = parse_ome(wnode.attributes, zarr_format=wnode.zarr_format)
            if wome is None or wome.well is None or not wome.well.images:
                continue
            try:
                fkey = safe_join(wkey, wome.well.images[0].path)
            except PathEscapeError:
                continue
            fnode = read_node(self.store, fkey, where=self.loc.shown)
            if fnode is None:
                continue
            fome = parse_ome(fnode.attributes, zarr_format=fnode.zarr_format)
            if fome is None or not fome.multiscales:
                continue
            template = (w, wome.well.images[0].path, fnode, fome, wome.well.images)
            break
        if template is None:
            raise _Unusable("no well with an openable field was found")
        tw, _field, fnode, fome, tw_images = template
        ms = fome.multiscales[0]
        opened = self.levels(fnode, ms)
        _levels, paths, _used, axes = opened
        names = [a.name.lower() for a in axes]
        if len(names) < 2 or names[-2:] != ["y", "x"]:
            self.warn(node.path, "field axes do not end with y, x; only the first well is opened.")
            return self.ome_image(fnode, fome, with_labels=False)
        nrows = max(len(plate.rows), 1 + max(w.row_index for w in plate.wells))
        ncols = max(len(plate.columns), 1 + max(w.column_index for w in plate.wells))
        where_well = {(w.row_index, w.column_index): w.path for w in plate.wells}
        grid: list[list[str | None]] = [
            [where_well.get((r, c)) for c in range(ncols)] for r in range(nrows)
        ]
        rel_levels = [p[len(fnode.path) + 1 :] for p in paths]
        # the first field's level arrays: every well is read with their metadata until it
        # proves different (metadata cached: no second request)
        templates = [_open_image(self.loc, p, store=self.store) for p in paths]
        source = PlateSource(self, node.path, grid, tw.path, rel_levels, templates)
        fields = [im.path for im in tw_images]
        base = plate.name or _basename(node.path) or self.loc.name
        limits: list[list[float]] | None = None
        layers: list[LayerData] = []
        for index, fpath in enumerate(fields):
            extra = {
                "ome_kind": "plate",
                "plate": {
                    "rows": list(plate.rows),
                    "columns": list(plate.columns),
                    "wells": [w.path for w in plate.wells],
                    "field": fpath,
                    "fields": fields,
                    "template_well": tw.path,
                },
            }
            mosaic = plate_levels(source, fpath, index)
            if index == 0 and not (
                fome.omero
                and any(
                    c.window_start is not None or c.window_min is not None
                    for c in fome.omero.channels
                )
            ):
                limits = _plate_limits(mosaic[-1], axes)
            layer = self.multiscale_layer(
                fnode,
                ms,
                fome,
                as_labels=False,
                extra_md=extra,
                data_override=mosaic,  # type: ignore[arg-type]
                opened=opened,
                name=base,
            )
            kw = layer[1]
            if len(fields) > 1:  # every layer names its field (channel labels included)
                given = kw.get("name")
                if isinstance(given, list):
                    kw["name"] = [f"{n} field {fpath}" for n in given]
                elif isinstance(given, str):
                    kw["name"] = f"{given} field {fpath}"
            kw["multiscale"] = True
            if not isinstance(layer[0], list):
                layer = ([layer[0]], kw, layer[2])
            kw["metadata"]["node_path"] = node.path
            kw["metadata"]["level_paths"] = [f"{{well}}/{fpath}/{r}" for r in rel_levels]
            if limits is not None and "contrast_limits" not in kw:
                kw["contrast_limits"] = limits if "channel_axis" in kw else limits[0]
            if index > 0:  # the field chooser: one field shown, the others a click away
                n = len(kw["name"]) if isinstance(kw.get("name"), list) else 0
                kw["visible"] = [False] * n if n else False
            layers.append(layer)
        return layers

    # ---------------------------------------------------------------- bioformats2raw

    def bioformats2raw(self, node: NodeMeta, ome: OmeMetadata) -> list[LayerData]:
        series: list[str] = list(ome.series)
        if not series:
            try:
                okey = safe_join(node.path, "OME")
                onode = read_node(self.store, okey, where=self.loc.shown)
            except MetadataError as exc:
                self.warn(node.path, f"OME group unreadable: {exc}")
                onode = None
            if onode is not None:
                oome = parse_ome(onode.attributes, zarr_format=onode.zarr_format)
                if oome is not None:
                    series = list(oome.series)
        if not series:
            for i in range(MAX_SERIES_PROBE):
                if (
                    read_node(self.store, safe_join(node.path, str(i)), where=self.loc.shown)
                    is None
                ):
                    break
                series.append(str(i))
        found = self.ome_images(node, series, "series", "is listed but does not exist.")
        for s, snode, some in found:
            extra = {"series": series, "series_opened": s, "ome_kind": "bioformats2raw"}
            layers = self.ome_image(snode, some, extra_md=extra)
            for lay in layers:
                lay[1]["metadata"].setdefault("series", series)
            return layers
        raise _Unusable("no series could be opened")


class _Unusable(Exception):
    pass


def _plate_limits(overview: Any, axes: Sequence[Axis]) -> list[list[float]] | None:
    """Contrast limits per channel from the first field's coarsest mosaic (the overview).

    napari would otherwise compute them from the coarsest level of every field layer, hidden
    ones included: one read per well and field before anything is shown. The overview is read
    here once (kept by the plate source, so that napari's first slice reuses it).
    """
    if overview.dtype.kind not in "iuf":
        return None
    data = np.asarray(overview)
    caxis = _channel_axis(axes)
    planes = (
        [data]
        if caxis is None
        else [np.take(data, i, axis=caxis) for i in range(data.shape[caxis])]
    )
    out = []
    for p in planes:
        lo, hi = (float(p.min()), float(p.max())) if p.size else (0.0, 1.0)
        out.append([lo, hi if hi > lo else lo + 1])
    return out


def _token(*parts: Any) -> str:
    from dask.base import tokenize

    return str(tokenize(*parts))


def _viewable(arr: Any) -> Any:
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    return arr


def _cs_name(key: tuple[str, str]) -> str:
    return f"{key[0]}#{key[1]}" if key[0] else key[1]


_RGB_COLORS = ("FF0000", "00FF00", "0000FF")


def _is_rgb(node: NodeMeta, ome: OmeMetadata, n: int, dtype: np.dtype[Any]) -> bool:
    """Tell whether an image's channels are the red, green, blue (and alpha) of one picture.

    An explicit ``rgb`` attribute decides; otherwise 3 or 4 ``uint8`` channels are RGB(A) unless
    ``omero`` gives the first three channels colours other than red, green and blue.
    """
    if n not in (3, 4):
        return False
    hint = node.attributes.get("rgb")
    if isinstance(hint, bool):
        return hint
    if dtype != np.uint8:
        return False
    chans = ome.omero.channels if ome.omero is not None else ()
    colors = [str(c.color or "").strip().lstrip("#").upper()[:6] for c in chans[:3]]
    return not any(colors) or colors == list(_RGB_COLORS[: len(colors)])


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _is_in_labels(path: str) -> bool:
    parts = path.split("/")
    return len(parts) >= 2 and parts[-2] == "labels"


def _channel_axis(axes: Sequence[Axis]) -> int | None:
    for i, a in enumerate(axes):
        if a.type == "channel":
            return i
    for i, a in enumerate(axes):
        if a.type is None and a.name.lower() in ("c", "channel", "ch"):
            return i
    return None


#: Units allowed by OME-NGFF (all known to pint, which napari uses).
_OME_UNITS = frozenset(
    f"{p}{u}"
    for u in ("meter", "second")
    for p in (
        "",
        "yotta",
        "zetta",
        "exa",
        "peta",
        "tera",
        "giga",
        "mega",
        "kilo",
        "hecto",
        "deca",
        "deci",
        "centi",
        "milli",
        "micro",
        "nano",
        "pico",
        "femto",
        "atto",
        "zepto",
        "yocto",
    )
) | {"angstrom", "foot", "inch", "mile", "parsec", "yard", "day", "hour", "minute"}


def colormap_spec(color: str | None, index: int, count: int, inverted: bool | None = None) -> Any:
    """Return a napari colormap for an OMERO hex colour, without importing napari.

    Pure colours map to napari's named colormaps (``"FF0000"`` -> ``"red"``); other colours to a
    ``{"name", "colors"}`` dict (black to the colour) that napari turns into a Colormap. Without a
    colour, single-channel images are gray and channels cycle through magenta, green, cyan...

    Parameters
    ----------
    color
        ``RRGGBB`` (optionally with ``#`` or alpha), or None.
    index, count
        Channel index and channel count, for the default.
    inverted
        Reverse the colormap (OMERO ``inverted``).
    """
    from napari_zarr_explorer.ome.model import OmeroChannel

    rgb = OmeroChannel(color=color).rgb if color else None
    if rgb is None:
        if color:
            warnings.warn(
                f"channel colour {color!r} is not a hex colour; a default is used.",
                ExplorerWarning,
                stacklevel=3,
            )
        name: str = "gray" if count == 1 else _CYCLE[index % len(_CYCLE)]
        if not inverted:
            return name
        rgb = {"gray": (1.0, 1.0, 1.0)}.get(name) or _named_rgb(name)
    hexs = "".join(f"{round(c * 255):02X}" for c in rgb)
    if hexs in _NAMED and not inverted:
        return _NAMED[hexs]
    lo, hi = [0.0, 0.0, 0.0, 1.0], [rgb[0], rgb[1], rgb[2], 1.0]
    colors = [hi, lo] if inverted else [lo, hi]
    return {"name": f"ome #{hexs.lower()}" + (" inverted" if inverted else ""), "colors": colors}


def _named_rgb(name: str) -> tuple[float, float, float]:
    for hexs, n in _NAMED.items():
        if n == name:
            return (int(hexs[0:2], 16) / 255, int(hexs[2:4], 16) / 255, int(hexs[4:6], 16) / 255)
    return (1.0, 1.0, 1.0)


def _dtype_range(dtype: np.dtype[Any]) -> list[float]:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return [float(info.min), float(info.max)]
    if dtype.kind == "b":
        return [0.0, 1.0]
    return [0.0, 1.0]


def _window(ch: Any, dtype: np.dtype[Any]) -> list[float] | None:
    start, end = ch.window_start, ch.window_end
    if start is None or end is None:
        start, end = ch.window_min, ch.window_max
    if start is None or end is None:
        return None
    if end < start:
        start, end = end, start
    if end == start:
        end = start + 1
    return [float(start), float(end)]


def _label_colormap(ome: OmeMetadata) -> dict[Any, Any] | None:
    il = ome.image_label
    if il is None or not il.colors:
        return None
    cmap: dict[Any, Any] = {None: [0.6, 0.6, 0.6, 1.0], 0: [0.0, 0.0, 0.0, 0.0]}
    for c in il.colors:
        value = c.label_value
        if isinstance(value, float):
            if not value.is_integer():
                continue
            value = int(value)
        cmap[value] = [v / 255 for v in c.rgba]
    return cmap


# ------------------------------------------------------------------------------------------------
# The first image of a remote OME-Zarr image, before zarr-python is imported

#: Most reads served by the lean readers of an image before zarr-python is imported for the
#: rest. napari reads the coarsest level for the contrast limits (once per channel), then the
#: first tile of the level it shows: zarr-python is imported as soon as a read of any other
#: level than the coarsest has been served, or after this many reads.
LEAN_FIRST_READS = 8
#: Most answers (shard indexes, or what a read handed to zarr-python fetched) the lean readers
#: of an image keep for zarr-python's store until it opens; beyond, they are asked for again.
_LEAN_KEEP = 256
#: Most bytes of those answers kept (whole shards can be large); one that would go beyond is
#: not kept (zarr-python asks for it again).
_LEAN_KEEP_BYTES = 64 * 2**20


class _Fallback(Exception):
    """The lean path does not apply: the image is opened by :func:`open_layers`."""


class _LeanImage:
    """The levels of one image read without zarr-python until zarr's arrays are ready.

    After :data:`LEAN_FIRST_READS` reads (or when a read needs zarr-python), zarr-python is
    imported in a background thread and the levels are opened as zarr arrays from the very
    metadata documents already read (no request); from then on reads go through them.
    """

    def __init__(
        self, loc: Location, client: Any, nodes: list[NodeMeta], coarsest: set[int] | None = None
    ) -> None:
        self.loc = loc
        self.client = client
        self.nodes = nodes
        #: indices (into *nodes*) of each layer's coarsest level: the levels of every layer
        #: of the image (the image's, then its label images') share one zarr-python import
        self.coarsest = coarsest if coarsest is not None else {len(nodes) - 1}
        self.reads = 0
        self._lock = threading.Lock()
        self._started = False
        self._done = threading.Event()
        self._arrays: list[Any] = []
        self._error: BaseException | None = None
        self._kept: dict[tuple[str, tuple[Any, ...] | None], bytes | None] = {}
        self._kept_nbytes = 0
        self._seed: Any = None  # zarr-python's store takes what is recorded, once it is open

    @property
    def ready(self) -> bool:
        """True once zarr-python's arrays are built (or failed to build)."""
        return self._done.is_set()

    def served(self, index: int) -> None:
        """Count one read of level *index*; start zarr-python after the first image."""
        with self._lock:
            self.reads += 1
            due = index not in self.coarsest or self.reads >= LEAN_FIRST_READS
        if due:
            self.start()

    def record(self, key: str, byte_range: tuple[Any, ...] | None, data: bytes | None) -> None:
        """Keep what a lean reader fetched for zarr-python's store (no second request).

        A shard index, or everything fetched by a read the lean reader could not finish. Until
        zarr-python's store is open, at most :data:`_LEAN_KEEP` answers and
        :data:`_LEAN_KEEP_BYTES` bytes are kept: an answer beyond is dropped (asked again).
        """
        size = 0 if data is None else len(data)
        with self._lock:
            seed = self._seed
            if seed is None:
                entry = (key, byte_range)
                old = self._kept.get(entry)
                nbytes = self._kept_nbytes - (0 if old is None else len(old)) + size
                if (entry in self._kept or len(self._kept) < _LEAN_KEEP) and (
                    nbytes <= _LEAN_KEEP_BYTES
                ):
                    self._kept[entry] = data
                    self._kept_nbytes = nbytes
                return
        seed(key, byte_range, data)

    @property
    def kept_nbytes(self) -> int:
        """Bytes kept for zarr-python's store, not handed on yet."""
        with self._lock:
            return self._kept_nbytes

    def start(self) -> None:
        """Import zarr-python and open the levels' arrays in a background thread (once)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._build, name="nze-zarr-import", daemon=True).start()

    def _build(self) -> None:
        try:
            from napari_zarr_explorer.store.open import array_from_metadata

            store = open_store(self.loc)
            seed = getattr(store, "seed_cache", None)
            if seed is not None:
                with self._lock:  # from now on, what is recorded goes to the store directly
                    kept, self._kept, self._seed = self._kept, {}, seed
                    self._kept_nbytes = 0
                for (key, rng), data in kept.items():
                    seed(key, rng, data)
            self._arrays = [
                array_from_metadata(
                    store,
                    node.path,
                    node.metadata,
                    zarr_format=node.zarr_format,
                    where=self.loc.shown,
                    attributes=node.attributes,
                )
                for node in self.nodes
            ]
        except BaseException as exc:  # raised to whoever reads through zarr-python
            self._error = exc
        finally:
            self._done.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until zarr-python's arrays are built, if their building has started.

        Returns False when *timeout* seconds passed first; True at once when it has not
        started (nothing runs in the background then).
        """
        with self._lock:
            started = self._started
        return not started or self._done.wait(timeout)

    def array(self, index: int) -> Any:
        """Return the zarr array of level *index* (importing zarr-python first if needed)."""
        self.start()
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._arrays[index]


class _LeanReader(ChunkReader):
    """A :class:`ChunkReader` whose first reads need no zarr-python (see :class:`_LeanImage`).

    A read that the lean reader cannot do exactly (anything unusual, any error) is done by the
    ordinary reader over zarr-python, with its results and its messages.
    """

    def __init__(self, lean: Any, image: _LeanImage, index: int, *, where: str, cache: Any) -> None:
        self.lean = lean
        self.image = image
        self.index = index
        # the array is opened later, from the same metadata: its geometry is the lean array's
        self._set_up(
            where=where,
            cache=cache,
            shape=lean.shape,
            dtype=lean.dtype,
            chunks=lean.chunks,
            shards=lean.shards,
            fill_value=lean.fill_value if lean.fill_known else 0,
        )

    @property
    def array(self) -> Any:
        """The level's zarr array (zarr-python is imported, in the background, on first use)."""
        return self.image.array(self.index)

    @array.setter
    def array(self, value: Any) -> None:  # pragma: no cover - set by ChunkReader only
        raise AttributeError("the array of a lean reader is opened from its metadata")

    def _fetch(self, sel: tuple[slice, ...], out: np.ndarray | None = None) -> np.ndarray:
        if not self.image.ready:
            data = None
            with contextlib.suppress(Exception):  # else read by zarr-python, with its messages
                data = self.lean.read(self.image.client, sel, self.image.record)
            if data is not None:
                self.image.served(self.index)
                if out is None:
                    return np.asarray(data)
                out[...] = data
                return out
        return super()._fetch(sel, out)


def _lean_node(client: Any, loc: Location, path: str, fmt: int | None) -> NodeMeta | None:
    """Return the node at *path* from the documents fetched ahead (as ``read_node`` would)."""
    from napari_zarr_explorer.store._http import NOTHING
    from napari_zarr_explorer.store.meta import _v3_node, join_key, parse_json, v2_node

    def doc(name: str) -> dict[str, Any] | None:
        key = join_key(path, name)
        raw = client.peek_early(key)
        if raw is NOTHING:
            raise _Fallback(f"{key} was not fetched ahead")
        if raw is None:
            return None
        assert isinstance(raw, bytes)
        return parse_json(raw, node_where(loc.shown, key))

    if fmt in (None, 3):
        v3 = doc("zarr.json")
        if v3 is not None:
            return _v3_node(path, v3, where=node_where(loc.shown, join_key(path, "zarr.json")))
        if fmt == 3:
            return None
    array = doc(".zarray")
    group = None if array is not None else doc(".zgroup")
    # another zarr_format raises MetadataError: the ordinary path reports it
    return v2_node(path, array, group, doc(".zattrs"), where=loc.shown)


def _lean_consolidated(
    client: Any, loc: Location, root: NodeMeta
) -> dict[str, tuple[int, dict[str, Any]]] | None:
    """Return the consolidated metadata, parsed by ``store.consolidated_nodes``'s parsers.

    None when there is none. From the root's ``zarr.json`` (v3) or, for a Zarr v2 root, the
    ``.zmetadata`` fetched ahead; the same parse, so that every node comes from the same
    document as on the ordinary path (which trusts the consolidated copy for every node but
    the root).
    """
    from napari_zarr_explorer.store._http import NOTHING
    from napari_zarr_explorer.store.meta import consolidated_v2, consolidated_v3, parse_json

    if root.zarr_format == 3:
        return consolidated_v3(root.metadata)
    raw = client.peek_early(".zmetadata")
    if raw is NOTHING:
        raise _Fallback(".zmetadata was not fetched ahead")
    if raw is None:
        return None
    assert isinstance(raw, bytes)
    return consolidated_v2(parse_json(raw, f"{loc.shown}/.zmetadata"))


@dataclass
class _LeanNodes:
    """Nodes as :func:`~napari_zarr_explorer.store.read_node` gives them, without a store.

    From the consolidated metadata for the nodes it describes (not the root), else from the
    documents fetched ahead.
    """

    client: Any
    loc: Location
    fmt: int
    cons: dict[str, tuple[int, dict[str, Any]]] | None

    def node(self, path: str) -> NodeMeta | None:
        from napari_zarr_explorer.store.meta import consolidated_node

        node = consolidated_node(self.cons, path, where=self.loc.shown)
        if node is not None:
            return node
        return _lean_node(self.client, self.loc, path, self.fmt)

    def levels(self, node: NodeMeta, ms: Multiscale) -> tuple[list[Any], list[NodeMeta], Any]:
        """Return the levels of *ms* if the lean reader reads every one, plainly (else fall back).

        Anything :meth:`_Ctx.levels` would warn about (a missing, refused, smaller or
        differently shaped level, axes not matching) falls back.
        """
        from napari_zarr_explorer.store.lean import lean_array

        nodes: list[NodeMeta] = []
        leans: list[Any] = []
        for ds in ms.datasets:
            key = safe_join(node.path, ds.path)
            child = self.node(key)
            if not key or key == node.path or child is None or child.kind != "array":
                raise _Fallback(f"level {ds.path!r}")
            lean = lean_array(child.metadata, child.zarr_format, key)
            if lean is None:  # lean_array takes only boolean and numeric data types
                raise _Fallback(f"level {key!r} is not lean")
            if leans and (
                len(lean.shape) != len(leans[0].shape)
                or any(s > p for s, p in zip(lean.shape, leans[-1].shape, strict=True))
            ):
                raise _Fallback(f"level {key!r} does not fit")
            nodes.append(child)
            leans.append(lean)
        if not leans:
            raise _Fallback("no levels")
        ndim = len(leans[0].shape)
        axes = ms.axes or infer_axes(ndim)
        if len(axes) != ndim:
            raise _Fallback("axes")
        return leans, nodes, axes

    def labels(self) -> list[tuple[str, NodeMeta, OmeMetadata]]:
        """Return the label images :meth:`_Ctx.labels_of` opens for the root image, plainly.

        Anything it would warn about (a label image missing, without multiscales, with OME
        warnings, or not an integer or boolean image) falls back, whole.
        """
        node = self.node("labels")
        if node is None or node.kind != "group":
            return []
        ome = parse_ome(node.attributes, zarr_format=node.zarr_format)
        if ome is None or not ome.labels:
            return []
        out: list[tuple[str, NodeMeta, OmeMetadata]] = []
        for name in ome.labels:
            key = safe_join("labels", name)
            lnode = self.node(key)
            if lnode is None:
                raise _Fallback(f"label image {name!r} is missing")
            lome = parse_ome(lnode.attributes, zarr_format=lnode.zarr_format)
            if lome is None or not lome.multiscales or lome.warnings:
                raise _Fallback(f"label image {name!r}")
            out.append((name, lnode, lome))
        return out


def open_first_image(url: str) -> list[LayerData] | None:
    """Open an ``http(s)://`` OME-Zarr image without importing zarr-python, if it is plain.

    The metadata documents must have been fetched ahead (``_reader`` starts that), or come
    from the consolidated metadata. The root must be an OME image with one multiscales entry
    and valid metadata, whose levels (and those of its label images, if it has ``labels``) are
    arrays :func:`napari_zarr_explorer.store.lean.lean_array` reads. Its layer data are those
    :func:`open_layers` returns (same layers in the same order, names, colours, scales,
    metadata); the levels' first reads are done by the lean reader, the rest through
    zarr-python, imported in the background after the first image.

    Returns
    -------
    list of LayerData, or None
        None when the image is anything else: :func:`open_layers` opens it (every document
        fetched ahead is still there for it).
    """
    try:
        return _open_first_image(url)
    except (_Fallback, ExplorerError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _open_first_image(url: str) -> list[LayerData] | None:
    from napari_zarr_explorer.pyramid import chunk_cache
    from napari_zarr_explorer.store._http import peek_prefetched
    from napari_zarr_explorer.store.remote_options import lean_path_options

    loc = parse_location(url)
    opts = lean_path_options(loc)  # also what the reader asks before fetching ahead
    if opts is None:
        return None
    client = peek_prefetched(loc.url, {})
    if client is None or (client.timeout, client.max_connections) != (
        opts.timeout,
        opts.concurrency,
    ):
        return None
    root = _lean_node(client, loc, "", None)
    if root is None or root.kind != "group":
        return None
    fmt = root.zarr_format
    nodes = _LeanNodes(client, loc, fmt, _lean_consolidated(client, loc, root))
    ome = parse_ome(root.attributes, zarr_format=fmt)
    if ome is None or ome.kind != "image" or ome.warnings or len(ome.multiscales) != 1:
        return None
    if ome.image_label is not None:
        return None
    ms = ome.multiscales[0]
    # every decision first: nothing is warned before the lean path is sure to apply
    parts: list[tuple[NodeMeta, Multiscale, OmeMetadata, str | None, Any]] = [
        (root, ms, ome, None, nodes.levels(root, ms))
    ]
    for name, lnode, lome in nodes.labels():
        lms = lome.multiscales[0]
        opened = nodes.levels(lnode, lms)
        if opened[0][0].dtype.kind not in "iub":
            raise _Fallback(f"label image {name!r} is not integer")
        parts.append((lnode, lms, lome, name, opened))
    all_nodes = [n for part in parts for n in part[4][1]]
    coarsest: set[int] = set()
    first = 0
    for part in parts:
        first += len(part[4][1])
        coarsest.add(first - 1)
    image = _LeanImage(loc, client, all_nodes, coarsest)
    cache = chunk_cache()
    ctx = _Ctx(loc, None)
    layers: list[LayerData] = []
    index = 0
    for node, pms, pome, label, (leans, lnodes, axes) in parts:
        levels: list[LazyArray] = []
        for lean, n in zip(leans, lnodes, strict=True):
            reader = _LeanReader(
                lean, image, index, where=node_where(loc.shown, n.path), cache=cache
            )
            levels.append(LazyArray(reader))
            index += 1
        paths = [n.path for n in lnodes]
        layers.append(
            ctx.multiscale_layer(
                node,
                pms,
                pome,
                as_labels=label is not None,
                opened=(levels, paths, list(range(len(lnodes))), axes),
                name=label,
            )
        )
    return layers
