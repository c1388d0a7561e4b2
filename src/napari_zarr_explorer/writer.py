"""Save napari layers or arrays as OME-Zarr, through the verified recompress engine.

:func:`save` turns image and labels layers (napari layers, npe2 ``LayerData`` tuples, or plain
arrays with metadata) into one OME-Zarr image: image layers of the same shape become the
channels of the image, labels layers its ``labels/`` (a labels layer saved alone becomes a label
image). Placement (``scale``, ``translate``), axis names and units, channel names, colours,
contrast limits and visibility, label colours and properties are kept. Single-scale data gets a
pyramid (mean for images, nearest for labels) down to a size that fits on a screen; every level
is written whole shard by whole shard, read back and verified by the recompress engine, and lazy
(dask) data is read one region at a time, never whole. Nothing here imports napari or Qt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.store import Location, open_store, parse_location, read_bytes
from napari_zarr_explorer.store.locate import node_where

__all__ = [
    "MAX_SCREEN",
    "SaveLayer",
    "default_layout",
    "normalize_layers",
    "plan_save",
    "save",
]

#: A generated pyramid stops at the first level whose y and x both fit in this many pixels.
MAX_SCREEN = 1024
#: Label values coloured from an in-memory labels layer's colormap (more are left to the reader).
MAX_LABEL_COLORS = 65536
#: In-memory labels up to this many elements are scanned for their values (to store colours).
MAX_LABEL_SCAN = 1 << 27

_SPACE = ("x", "y", "z")
_NAMED_COLORS = {
    "red": "FF0000",
    "green": "00FF00",
    "blue": "0000FF",
    "magenta": "FF00FF",
    "cyan": "00FFFF",
    "yellow": "FFFF00",
    "gray": "FFFFFF",
    "grey": "FFFFFF",
    "gray_r": "FFFFFF",
    "white": "FFFFFF",
}
_OME_UNITS: frozenset[str] | None = None
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


def _ome_units() -> frozenset[str]:
    global _OME_UNITS
    if _OME_UNITS is None:
        from napari_zarr_explorer.layers import _OME_UNITS as units

        _OME_UNITS = units
    return _OME_UNITS


# --------------------------------------------------------------------------------------------
# input model
# --------------------------------------------------------------------------------------------


@dataclass
class SaveLayer:
    """One image or labels layer to save, in napari's terms (without napari).

    Attributes
    ----------
    kind
        ``"image"`` or ``"labels"``.
    levels
        The data, level 0 first (one array for single-scale data).
    name
        Layer name.
    scale, translate
        Per data axis (napari ``scale`` / ``translate`` of the layer).
    axis_labels, units
        Per data axis; napari's defaults (``-1``, ``pixel``) count as unknown.
    channel_axis
        Axis of the data holding channels (multichannel images only).
    channel_names, colors, contrast_limits, visible
        Per channel (one entry for a single-channel image).
    label_colors
        Label value -> RGBA (0-255) for labels layers.
    label_properties
        OME ``image-label`` properties (each with ``label-value``).
    """

    kind: Literal["image", "labels"]
    levels: list[Any]
    name: str = "image"
    scale: list[float] | None = None
    translate: list[float] | None = None
    axis_labels: list[str] | None = None
    units: list[str | None] | None = None
    channel_axis: int | None = None
    channel_names: list[str] = field(default_factory=list)
    colors: list[str | None] = field(default_factory=list)
    contrast_limits: list[tuple[float, float] | None] = field(default_factory=list)
    visible: list[bool] = field(default_factory=list)
    label_colors: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)
    label_properties: list[dict[str, Any]] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of level 0."""
        return tuple(int(n) for n in self.levels[0].shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """Data type of level 0."""
        dt: np.dtype[Any] = np.dtype(self.levels[0].dtype)
        return dt


def _floats(v: Any, n: int) -> list[float] | None:
    if v is None:
        return None
    try:
        out = [float(x) for x in np.asarray(v, dtype=float).ravel()]
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _hex_of(rgb: Any) -> str:
    return "".join(f"{round(min(max(float(c), 0.0), 1.0) * 255):02X}" for c in rgb[:3])


def color_of(colormap: Any) -> tuple[str | None, bool]:
    """Return the OMERO colour (``RRGGBB``) and ``inverted`` flag of a napari colormap.

    Accepts a colormap name, a ``{"name", "colors"}`` mapping, or an object with ``colors``
    (napari's ``Colormap``). The colour is the bright end of the ramp.
    """
    if colormap is None:
        return None, False
    if isinstance(colormap, str):
        hexs = _NAMED_COLORS.get(colormap.lower())
        return hexs, colormap.lower().endswith("_r")
    colors = colormap.get("colors") if isinstance(colormap, Mapping) else None
    if colors is None:
        colors = getattr(colormap, "colors", None)
    if colors is None:
        name = colormap.get("name") if isinstance(colormap, Mapping) else None
        return (_NAMED_COLORS.get(name.lower()) if isinstance(name, str) else None), False
    arr = np.asarray(colors, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 3:
        return None, False
    first, last = arr[0, :3], arr[-1, :3]
    inverted = float(first.sum()) > float(last.sum())
    return _hex_of(first if inverted else last), inverted


def _label_colors(colormap: Any, data: Any) -> dict[int, tuple[int, int, int, int]]:
    """Colours of the label values of *data* under *colormap* (napari or our reader's dict)."""
    out: dict[int, tuple[int, int, int, int]] = {}

    def rgba(v: Any) -> tuple[int, int, int, int] | None:
        a = np.asarray(v, dtype=float).ravel()
        if a.size < 3:
            return None
        if a.size == 3:
            a = np.append(a, 1.0)
        r, g, b, alpha = (round(min(max(float(c), 0.0), 1.0) * 255) for c in a[:4])
        return (r, g, b, alpha)

    mapping = colormap if isinstance(colormap, Mapping) else getattr(colormap, "color_dict", None)
    if isinstance(mapping, Mapping) and not (
        isinstance(colormap, Mapping) and "colors" in colormap
    ):
        for k, v in mapping.items():
            if k is None or isinstance(k, str):
                continue
            try:
                value = int(k)
            except (TypeError, ValueError):
                continue
            if value == 0:
                continue
            c = rgba(v)
            if c is not None:
                out[value] = c
        return out
    mapper = getattr(colormap, "map", None)
    if mapper is None or not isinstance(data, np.ndarray) or data.size > MAX_LABEL_SCAN:
        return out
    values = np.unique(data)
    values = values[values != 0][:MAX_LABEL_COLORS]
    if values.size == 0:
        return out
    try:
        mapped = np.asarray(mapper(values), dtype=float)
    except Exception:
        return out
    for v, c in zip(values.tolist(), mapped, strict=False):
        col = rgba(c)
        if col is not None:
            out[int(v)] = col
    return out


def _json_safe(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    return str(v)


def _label_properties(kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    feats = kwargs.get("features")
    rows: list[dict[str, Any]] = []
    if feats is not None and hasattr(feats, "to_dict") and len(feats):
        records = feats.to_dict(orient="records")
        index = list(feats.index)
        for i, rec in enumerate(records):
            value = rec.pop("index", index[i])
            try:
                lv = int(value)
            except (TypeError, ValueError):
                continue
            row = {"label-value": lv}
            row.update({str(k): _json_safe(x) for k, x in rec.items()})
            rows.append(row)
        return rows
    props = kwargs.get("properties")
    if isinstance(props, Mapping) and props:
        cols = {str(k): list(np.asarray(v).tolist()) for k, v in props.items()}
        n = min(len(c) for c in cols.values())
        idx = cols.pop("index", list(range(n)))
        for i in range(n):
            row = {"label-value": int(idx[i])}
            row.update({k: _json_safe(c[i]) for k, c in cols.items()})
            rows.append(row)
        return rows
    md = kwargs.get("metadata")
    if isinstance(md, Mapping) and isinstance(md.get("label_properties"), list):
        return [dict(p) for p in md["label_properties"] if isinstance(p, Mapping)]
    return []


def _units(v: Any, n: int) -> list[str | None] | None:
    if v is None:
        return None
    items = [v] * n if isinstance(v, str) or not isinstance(v, Sequence) else list(v)
    if len(items) != n:
        return None
    out: list[str | None] = []
    for u in items:
        s = None if u is None else str(u)
        out.append(None if s in (None, "", "pixel", "dimensionless") else s)
    return out


def _is_layer(obj: Any) -> bool:
    return hasattr(obj, "as_layer_data_tuple") and hasattr(obj, "data")


def _per_channel(v: Any, n: int) -> list[Any]:
    if isinstance(v, list | tuple) and len(v) == n and n > 1:
        return list(v)
    if isinstance(v, list) and n == 1 and len(v) == 1 and not isinstance(v[0], int | float):
        return list(v)
    return [v] * n


def _from_layer_data(
    data: Any, kwargs: Mapping[str, Any], layer_type: str, index: int
) -> SaveLayer:
    kind = str(layer_type).lower()
    if kind not in ("image", "labels"):
        raise ExplorerError(
            f"Layer {kwargs.get('name', index)!r} is a {layer_type} layer; only image and "
            "labels layers can be saved as OME-Zarr.",
            hint="Select image and labels layers only.",
        )
    # napari hands multiscale data over as a MultiScaleData sequence, not a list
    multiscale = (bool(kwargs.get("multiscale")) and isinstance(data, Sequence)) or (
        isinstance(data, list | tuple) and len(data) > 0 and hasattr(data[0], "shape")
    )
    levels = list(data) if multiscale else [data]
    for lv in levels:
        if not hasattr(lv, "shape") or not hasattr(lv, "dtype"):
            levels = [np.asarray(lv) for lv in levels]
            break
    ndim = len(levels[0].shape)
    name = str(kwargs.get("name") or f"{kind}{index}")
    caxis = kwargs.get("channel_axis")
    rgb = bool(kwargs.get("rgb")) and kind == "image"
    if rgb:
        caxis = ndim - 1
    if caxis is not None:
        caxis = int(caxis) % ndim
    layer_nd = ndim - (1 if caxis is not None else 0)

    def spatial(key: str) -> list[float] | None:
        v = _floats(kwargs.get(key), layer_nd)
        if v is None and caxis is not None:
            v = _floats(kwargs.get(key), ndim)
            if v is not None:
                del v[caxis]
        return v

    scale = spatial("scale")
    translate = spatial("translate")
    labels = kwargs.get("axis_labels")
    axis_labels = [str(a) for a in labels] if isinstance(labels, Sequence) else None
    if axis_labels is not None and len(axis_labels) != layer_nd:
        axis_labels = None
    units = _units(kwargs.get("units"), layer_nd)
    layer = SaveLayer(
        kind=kind,  # type: ignore[arg-type]
        levels=levels,
        name=name,
        scale=scale,
        translate=translate,
        axis_labels=axis_labels,
        units=units,
        channel_axis=caxis,
    )
    if kind == "labels":
        dt = layer.dtype
        if dt.kind not in "iub":
            raise ExplorerError(
                f"Labels layer {name!r} has data type {dt}; labels must be integers.",
                hint="Convert it to an integer type (e.g. uint32) before saving.",
            )
        layer.label_colors = _label_colors(kwargs.get("colormap"), levels[0])
        layer.label_properties = _label_properties(kwargs)
        return layer
    n = int(levels[0].shape[caxis]) if caxis is not None else 1
    names = kwargs.get("name")
    if caxis is not None and isinstance(names, list | tuple) and len(names) == n:
        layer.channel_names = [str(x) for x in names]
        layer.name = str(names[0])
    elif rgb:
        layer.channel_names = ["red", "green", "blue", "alpha"][:n]
    else:
        layer.channel_names = [name] if n == 1 else [f"{name} [{i}]" for i in range(n)]
    if rgb:
        cmaps: list[Any] = ["red", "green", "blue", "gray"][:n]
    else:
        cmaps = _per_channel(kwargs.get("colormap"), n)
    for i, cm in enumerate(cmaps):
        hexs, _inv = color_of(cm)
        layer.colors.append(hexs if hexs else ("FFFFFF" if n == 1 else None))
        del i
    lims = kwargs.get("contrast_limits")
    lim_list: list[Any]
    if isinstance(lims, list | tuple) and len(lims) == n and n > 1:
        lim_list = list(lims)
    else:
        lim_list = [lims] * n
    for lim in lim_list:
        vals = _floats(lim, 2)
        layer.contrast_limits.append((vals[0], vals[1]) if vals else None)
    vis = _per_channel(kwargs.get("visible", True), n)
    layer.visible = [bool(v) if v is not None else True for v in vis]
    return layer


def normalize_layers(layers_or_arrays: Any, **metadata: Any) -> list[SaveLayer]:
    """Turn what :func:`save` accepts into :class:`SaveLayer` objects.

    Parameters
    ----------
    layers_or_arrays
        A napari layer, a ``(data, kwargs, layer_type)`` tuple (npe2 ``LayerData``, also
        ``(data, kwargs)`` for an image), an array, or a list of these.
    **metadata
        napari layer keywords (``scale``, ``translate``, ``axis_labels``, ``units``, ``name``,
        ``channel_axis``, ``colormap``, ``contrast_limits``, ``layer_type``...) for bare arrays.

    Returns
    -------
    list of SaveLayer
    """
    if isinstance(layers_or_arrays, tuple) and len(layers_or_arrays) in (2, 3):
        if isinstance(layers_or_arrays[1], Mapping):
            items: list[Any] = [layers_or_arrays]
        else:
            items = list(layers_or_arrays)
    elif isinstance(layers_or_arrays, list):
        items = list(layers_or_arrays)
    else:
        items = [layers_or_arrays]
    if not items:
        raise ExplorerError("Nothing to save.", hint="Give at least one layer or array.")
    out: list[SaveLayer] = []
    for i, item in enumerate(items):
        if isinstance(item, SaveLayer):
            out.append(item)
        elif _is_layer(item):
            data, kwargs, ltype = item.as_layer_data_tuple()
            out.append(_from_layer_data(data, kwargs, ltype, i))
        elif isinstance(item, tuple) and len(item) in (2, 3) and isinstance(item[1], Mapping):
            ltype = item[2] if len(item) == 3 else "image"
            out.append(_from_layer_data(item[0], item[1], ltype, i))
        elif hasattr(item, "shape") and hasattr(item, "dtype"):
            md = dict(metadata)
            ltype = md.pop("layer_type", "image")
            out.append(_from_layer_data(item, md, ltype, i))
        else:
            raise ExplorerError(
                f"Item {i} to save is a {type(item).__name__}, not a layer or an array.",
                hint="Give napari layers, (data, kwargs, layer_type) tuples or arrays.",
            )
    return out


# --------------------------------------------------------------------------------------------
# axes and layout
# --------------------------------------------------------------------------------------------


def _axis_names(layer: SaveLayer, nd: int) -> list[str]:
    """OME axis names of the non-channel axes of *layer* (napari defaults replaced)."""
    defaults = ["t", "z", "y", "x"][-nd:] if nd <= 4 else []
    labels = layer.axis_labels
    if labels is not None:
        clean = [
            a.strip().lower() if a.strip().lower() in ("t", "z", "y", "x") else a.strip()
            for a in labels
        ]
        usable = all(
            a and not re.fullmatch(r"-?\d+|axis\s*-?\d+", a) and a.lower() not in ("c",)
            for a in clean
        ) and len(set(clean)) == len(clean)
        if usable:
            return clean
    if not defaults:
        raise ExplorerError(
            f"Layer {layer.name!r} has {nd} non-channel dimensions; OME-Zarr images have at "
            "most 4 (t, z, y, x) besides channels.",
            hint="Name the axes (axis_labels) or save a subset of the data.",
        )
    return defaults


def _axis_type(name: str, unit: str | None) -> str | None:
    n = name.lower()
    if n in _SPACE:
        return "space"
    if n in ("t", "time"):
        return "time"
    if unit is not None and unit.endswith("meter"):
        return "space"
    if unit is not None and (unit.endswith("second") or unit in ("minute", "hour", "day")):
        return "time"
    return None


def default_layout(
    shape: Sequence[int], zarr_format: int = 3
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Default chunk and shard shapes for one image of *shape* (OME axis order).

    Chunks are 256 x 256 tiles of single planes, shards 2048 x 2048 (Zarr v3); v2 has no shards.
    """
    from napari_zarr_explorer.recompress._plan import suggest_layout

    chunks, shards = suggest_layout(shape)
    return chunks, (shards if zarr_format == 3 else None)


@dataclass
class _Image:
    """One OME image to write (an image or a label image), in OME axis order."""

    path: str
    name: str
    levels: list[Any]
    axes: list[dict[str, Any]]
    scale0: list[float]
    translate0: list[float] | None
    is_labels: bool
    source: SaveLayer
    omero: dict[str, Any] | None = None


def _to_dask(x: Any) -> Any:
    import dask.array as da

    if isinstance(x, da.Array):
        return x
    if hasattr(x, "to_dask_array"):  # our LazyArray layer data: read through its own reader
        return da.asarray(x)  # type: ignore[no-untyped-call]
    chunks = getattr(x, "chunks", None)
    if not (isinstance(chunks, tuple) and all(isinstance(c, int) for c in chunks)):
        chunks = "auto"
    return da.from_array(x, chunks=chunks, asarray=True, fancy=False)  # type: ignore[no-untyped-call]


def _channel_first(layer: SaveLayer, names: list[str]) -> tuple[list[Any], int]:
    """Levels with the channel axis moved to its OME place; returns (levels, channel index)."""
    import dask.array as da

    c_at = 1 if names and names[0] == "t" else 0
    levels = []
    for lv in layer.levels:
        if layer.channel_axis is None:
            levels.append(
                da.expand_dims(_to_dask(lv), c_at)
                if not isinstance(lv, np.ndarray)
                else np.expand_dims(lv, c_at)
            )
        elif isinstance(lv, np.ndarray):
            levels.append(np.moveaxis(lv, layer.channel_axis, c_at))
        else:
            levels.append(da.moveaxis(_to_dask(lv), layer.channel_axis, c_at))
    return levels, c_at


def _omero(layers: Sequence[SaveLayer], dtype: np.dtype[Any]) -> dict[str, Any]:
    channels = []
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = float(info.min), float(info.max)
    else:
        lo, hi = None, None
    for layer in layers:
        for i, name in enumerate(layer.channel_names):
            color = layer.colors[i] if i < len(layer.colors) else None
            lim = layer.contrast_limits[i] if i < len(layer.contrast_limits) else None
            ch: dict[str, Any] = {
                "label": name,
                "color": color or "FFFFFF",
                "active": layer.visible[i] if i < len(layer.visible) else True,
                "coefficient": 1.0,
                "family": "linear",
                "inverted": False,
            }
            if lim is None:
                lim = (lo, hi) if lo is not None and hi is not None else (0.0, 1.0)
            if lim is not None:
                start, end = lim
                ch["window"] = {
                    "start": start,
                    "end": end,
                    "min": min(lo, start) if lo is not None else min(start, 0.0),
                    "max": max(hi, end) if hi is not None else end,
                }
            channels.append(ch)
    return {"channels": channels, "rdefs": {"model": "color"}}


def _safe_name(name: str, taken: set[str]) -> str:
    base = _NAME_OK.sub("_", name).strip("._") or "labels"
    out, n = base, 1
    while out in taken or out in ("labels", "0"):
        n += 1
        out = f"{base}_{n}"
    taken.add(out)
    return out


def _build_images(layers: list[SaveLayer]) -> tuple[_Image | None, list[_Image]]:
    images = [x for x in layers if x.kind == "image"]
    labels = [x for x in layers if x.kind == "labels"]
    image: _Image | None = None
    if images:
        first = images[0]
        spatial = [lv for i, lv in enumerate(first.shape) if i != first.channel_axis]
        nd = len(spatial)
        for other in images[1:]:
            o_sp = [lv for i, lv in enumerate(other.shape) if i != other.channel_axis]
            if o_sp != spatial or len(other.levels) != len(first.levels):
                raise ExplorerError(
                    f"Image layers {first.name!r} ({spatial}) and {other.name!r} ({o_sp}) differ "
                    "in shape or levels; only images of the same shape are saved together "
                    "(as channels of one image).",
                    hint="Save them to separate stores.",
                )
            if other.dtype != first.dtype:
                raise ExplorerError(
                    f"Image layers {first.name!r} ({first.dtype}) and {other.name!r} "
                    f"({other.dtype}) have different data types; channels of one image share "
                    "one type.",
                    hint="Convert them to one data type, or save them to separate stores.",
                )
        names = _axis_names(first, nd)
        units = first.units or [None] * nd
        per_layer = [_channel_first(x, names) for x in images]
        c_at = per_layer[0][1]
        if len(images) == 1:
            levels = per_layer[0][0]
        else:
            import dask.array as da

            levels = [
                da.concatenate([_to_dask(p[0][k]) for p in per_layer], axis=c_at)  # type: ignore[no-untyped-call]
                for k in range(len(first.levels))
            ]
        axes: list[dict[str, Any]] = []
        for name, unit in zip(names, units, strict=True):
            ax: dict[str, Any] = {"name": name}
            t = _axis_type(name, unit)
            if t:
                ax["type"] = t
            if unit is not None and unit in _ome_units():
                ax["unit"] = unit
            axes.append(ax)
        axes.insert(c_at, {"name": "c", "type": "channel"})
        scale = list(first.scale or [1.0] * nd)
        translate = list(first.translate) if first.translate else None
        scale.insert(c_at, 1.0)
        if translate is not None:
            translate.insert(c_at, 0.0)
        image = _Image(
            path="",
            name=first.name,
            levels=levels,
            axes=axes,
            scale0=scale,
            translate0=translate,
            is_labels=False,
            source=first,
            omero=_omero(images, first.dtype),
        )
    out_labels: list[_Image] = []
    if labels and image is None and len(labels) > 1:
        raise ExplorerError(
            f"{len(labels)} labels layers and no image: a store holds one label image alone.",
            hint="Save them together with their image, or one at a time.",
        )
    taken: set[str] = set()
    for lab in labels:
        nd = len(lab.shape)
        if image is not None:
            img_axes = [a for a in image.axes if a.get("type") != "channel"]
            if nd != len(img_axes):
                raise ExplorerError(
                    f"Labels layer {lab.name!r} has {nd} dimensions and the image "
                    f"{image.name!r} {len(img_axes)} (without channels).",
                    hint="Labels must have the image's dimensions.",
                )
            axes = [dict(a) for a in img_axes]
        else:
            names = _axis_names(lab, nd)
            units = lab.units or [None] * nd
            axes = []
            for name, unit in zip(names, units, strict=True):
                ax = {"name": name}
                t = _axis_type(name, unit)
                if t:
                    ax["type"] = t
                if unit is not None and unit in _ome_units():
                    ax["unit"] = unit
                axes.append(ax)
        levels = [
            lv.astype(np.uint8) if np.dtype(lv.dtype).kind == "b" else lv for lv in lab.levels
        ]
        out_labels.append(
            _Image(
                path=("labels/" + _safe_name(lab.name, taken)) if image is not None else "",
                name=lab.name,
                levels=levels,
                axes=axes,
                scale0=list(lab.scale or [1.0] * nd),
                translate0=list(lab.translate) if lab.translate else None,
                is_labels=True,
                source=lab,
            )
        )
    return image, out_labels


# --------------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Level:
    path: str
    shape: tuple[int, ...]
    scale: list[float]
    source: Any


def _pyramid(img: _Image, dst_url: str, dst_opts: str, run_id: str) -> list[_Level]:
    from napari_zarr_explorer.recompress._source import DownsampledSource, InMemorySource

    shape0 = tuple(int(n) for n in img.levels[0].shape)
    base = img.path + "/" if img.path else ""
    levels = [_Level(f"{base}0", shape0, list(img.scale0), InMemorySource(img.levels[0]))]
    if len(img.levels) > 1:
        for k, lv in enumerate(img.levels[1:], start=1):
            shp = tuple(int(n) for n in lv.shape)
            sc = [
                s * (a / b if b else 1.0) for s, a, b in zip(img.scale0, shape0, shp, strict=True)
            ]
            levels.append(_Level(f"{base}{k}", shp, sc, InMemorySource(lv)))
        return levels
    space = [i for i, a in enumerate(img.axes) if a["name"] in ("y", "x")]
    if len(space) < 2:
        space = [i for i, a in enumerate(img.axes) if a.get("type") == "space"][-2:]
    shape = shape0
    k = 0
    while space and max(shape[i] for i in space) > MAX_SCREEN:
        factors = tuple(2 if i in space and shape[i] > 1 else 1 for i in range(len(shape)))
        new = tuple(math.ceil(n / f) for n, f in zip(shape, factors, strict=True))
        k += 1
        src = DownsampledSource(
            dst_url=dst_url,
            dst_options=dst_opts,
            path=levels[-1].path,
            factors=factors,
            method="nearest" if img.is_labels else "mean",
            shape=shape,
            stage=k,
            run_id=run_id,
        )
        scale = [s * f for s, f in zip(levels[-1].scale, factors, strict=True)]
        levels.append(_Level(f"{base}{k}", new, scale, src))
        shape = new
    return levels


def _transforms(scale: list[float], translate: list[float] | None) -> list[dict[str, Any]]:
    t: list[dict[str, Any]] = [{"type": "scale", "scale": [float(s) for s in scale]}]
    if translate is not None and any(v != 0 for v in translate):
        t.append({"type": "translation", "translation": [float(v) for v in translate]})
    return t


def _image_attrs(
    img: _Image, levels: list[_Level], ome_version: str, image_path: str | None
) -> dict[str, Any]:
    ms: dict[str, Any] = {
        "name": img.name,
        "axes": img.axes,
        "datasets": [
            {
                "path": lv.path.rsplit("/", 1)[-1],
                "coordinateTransformations": _transforms(lv.scale, img.translate0),
            }
            for lv in levels
        ],
    }
    if levels:
        ms["type"] = "nearest" if img.is_labels else "mean"
        ms["metadata"] = {
            "method": "napari_zarr_explorer.recompress._source.downsample"
            if len(img.source.levels) == 1
            else "given by the saved layer",
        }
    body: dict[str, Any] = {"multiscales": [ms]}
    if img.omero is not None:
        body["omero"] = img.omero
    if img.is_labels:
        il: dict[str, Any] = {}
        lab = img.source
        if lab.label_colors:
            il["colors"] = [
                {"label-value": int(v), "rgba": list(c)}
                for v, c in sorted(lab.label_colors.items())
            ]
        if lab.label_properties:
            il["properties"] = lab.label_properties
        if image_path is not None:
            il["source"] = {"image": image_path}
        body["image-label"] = il
    return _versioned(body, ome_version)


def _versioned(body: dict[str, Any], ome_version: str) -> dict[str, Any]:
    if ome_version == "0.5":
        return {"ome": {"version": "0.5", **body}}
    out = dict(body)
    for key in ("multiscales",):
        if key in out:
            out[key] = [{"version": "0.4", **m} for m in out[key]]
    for key in ("image-label",):
        if key in out:
            out[key] = {"version": "0.4", **out[key]}
    return out


def plan_save(
    layers_or_arrays: Any,
    url: str | os.PathLike[str] | Location | None,
    *,
    ome_version: str = "0.5",
    compressor: str | Any = "zstd:3",
    chunks: Sequence[int] | str | None = None,
    shards: Sequence[int] | str | None = None,
    storage_options: dict[str, Any] | None = None,
    run_id: str | None = None,
    **metadata: Any,
) -> tuple[Any, dict[str, Any]]:
    """Plan a save without writing anything: the engine plan and the sources of its arrays.

    Takes the same arguments as :func:`save`. Returns ``(plan, sources)``; ``str(plan)`` lists
    every array that would be written with its chunk and shard shape. *url* may be a
    :class:`~napari_zarr_explorer.store.Location`, or None to plan before an output is chosen
    (the Save dock's preview): messages then name the layer or the level (``Level '0'``) and
    the plan cannot be run.
    """
    from napari_zarr_explorer.codec_spec import parse_compressor
    from napari_zarr_explorer.recompress._plan import (
        ArrayPlan,
        GroupPlan,
        Plan,
        parse_shape_arg,
        resolve_layout,
    )
    from napari_zarr_explorer.recompress._source import options_json
    from napari_zarr_explorer.recompress._task import ArrayTarget

    ome_version = str(ome_version)
    if ome_version not in ("0.4", "0.5"):
        raise ExplorerError(
            f"OME-Zarr version {ome_version!r} cannot be written.", hint="Use 0.5 or 0.4."
        )
    zarr_format = 3 if ome_version == "0.5" else 2
    spec = parse_compressor(compressor)
    layers = normalize_layers(layers_or_arrays, **metadata)
    image, labels = _build_images(layers)
    dst = None if url is None else parse_location(url, storage_options)
    dst_opts = options_json(dst.storage_options if dst is not None else {})
    rid = run_id or uuid.uuid4().hex
    c_arg = parse_shape_arg(chunks, "chunks")
    s_arg = parse_shape_arg(shards, "shards")
    if zarr_format == 2 and isinstance(s_arg, tuple):
        raise ExplorerError(
            "OME-Zarr 0.4 (Zarr v2) has no shards.", hint="Drop shards or write OME-Zarr 0.5."
        )
    groups: list[GroupPlan] = []
    arrays: list[tuple[int, ArrayPlan]] = []
    sources: dict[str, Any] = {}
    items = ([image] if image is not None else []) + labels
    for img in items:
        levels = _pyramid(img, dst.url if dst is not None else "", dst_opts, rid)
        image_path = "../../" if img.is_labels and image is not None else None
        groups.append(
            GroupPlan(path=img.path, attributes=_image_attrs(img, levels, ome_version, image_path))
        )
        dims = tuple(str(a["name"]) for a in img.axes)
        dtype = np.dtype(img.levels[0].dtype)
        spec.check_dtype(dtype, where=_layers_of(img, layers))
        dtype = dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype
        for lv in levels:
            where = node_where(dst.url, lv.path) if dst is not None else f"Level {lv.path!r}"
            d_chunks, d_shards = default_layout(lv.shape, zarr_format)
            out_chunks, out_shards = resolve_layout(
                lv.shape,
                d_chunks,
                d_shards,
                c_arg if c_arg != "none" else None,
                s_arg,
                zarr_format,
                where=where,
            )
            # image codecs encode some chunk shapes only: say so before writing
            spec.check_dtype(dtype, chunks=out_chunks, zarr_format=zarr_format, where=where)
            fill = np.zeros((), dtype=dtype).item()
            attrs: dict[str, Any] = {}
            if zarr_format == 2:
                attrs["_ARRAY_DIMENSIONS"] = list(dims)
            target = ArrayTarget(
                path=lv.path,
                shape=lv.shape,
                dtype=dtype.str,
                fill_value=fill,
                zarr_format=zarr_format,
                chunks=out_chunks,
                shards=out_shards,
                compressor=spec.label,
            )
            arrays.append(
                (
                    int(getattr(lv.source, "stage", 0)),
                    ArrayPlan(
                        target=target,
                        attributes=attrs,
                        dimension_names=dims if zarr_format == 3 else None,
                        source_chunks=out_chunks,
                        source_shards=None,
                        bytes_before=None,
                        src_fill_value=fill,
                    ),
                )
            )
            sources[lv.path] = lv.source
    if image is not None and labels:
        groups.append(
            GroupPlan(
                path="labels",
                attributes=_versioned_labels(
                    [lab.path.split("/", 1)[1] for lab in labels], ome_version
                ),
            )
        )
    arrays.sort(key=lambda x: x[0])
    names = ", ".join(repr(n) for x in layers for n in _given_names(x))
    plan = Plan(
        source=f"layers {names}",
        spec=spec,
        zarr_format=zarr_format,
        root_kind="group",
        groups=tuple(sorted(groups, key=lambda g: g.path)),
        arrays=tuple(a for _, a in arrays),
        notes=(f"written as OME-Zarr {ome_version}",),
        params={"save": rid},
    )
    return plan, sources


def _layers_of(img: _Image, layers: list[SaveLayer]) -> str:
    """Name the layers *img* is written from, for messages (before any output is chosen)."""
    if img.is_labels:
        return f"Labels layer {img.name!r}"
    names = [n for x in layers if x.kind == "image" for n in _given_names(x)]
    if len(names) == 1:
        return f"Layer {names[0]!r}"
    return "Layers " + ", ".join(repr(n) for n in names)


def _given_names(layer: SaveLayer) -> list[str]:
    """Return the names the user gave *layer*.

    One per channel when it was named channel by channel (the layer then takes its first
    channel's name), else the layer's own.
    """
    named = len(layer.channel_names) > 1 and layer.channel_names[0] == layer.name
    return layer.channel_names if named else [layer.name]


def _versioned_labels(names: list[str], ome_version: str) -> dict[str, Any]:
    if ome_version == "0.5":
        return {"ome": {"version": "0.5", "labels": names}}
    return {"labels": names}


# --------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------


def _is_zarr_dir(p: Path) -> bool:
    return any((p / k).is_file() for k in ("zarr.json", ".zgroup", ".zarray", ".zattrs"))


def _exists(loc: Location) -> bool:
    if loc.is_local:
        p = loc.path
        return p.exists() and (p.is_file() or any(p.iterdir()))
    store = open_store(loc)
    return any(read_bytes(store, k) is not None for k in ("zarr.json", ".zgroup", ".zarray"))


def _remove(loc: Location) -> None:
    if loc.is_local:
        shutil.rmtree(loc.path, ignore_errors=True)
        return
    from napari_zarr_explorer.recompress import _io

    with contextlib.suppress(Exception):
        store = _io.open_output_store(loc.url, loc.storage_options)
        _io._sync(store.delete_dir(""))


def save(
    layers_or_arrays: Any,
    url: str | os.PathLike[str],
    *,
    ome_version: str = "0.5",
    compressor: str | Any = "zstd:3",
    chunks: Sequence[int] | str | None = None,
    shards: Sequence[int] | str | None = None,
    overwrite: bool = False,
    keep_backup: bool = False,
    progress: Callable[[Any], None] | bool | None = None,
    cancel: threading.Event | None = None,
    verify: bool = True,
    threads: int | None = None,
    storage_options: dict[str, Any] | None = None,
    **metadata: Any,
) -> Any:
    """Save image and labels layers (or arrays) as one OME-Zarr image.

    Parameters
    ----------
    layers_or_arrays
        napari layers, npe2 ``(data, kwargs, layer_type)`` tuples, arrays (numpy, dask,
        zarr), or a list of these. Image layers of the same shape become the channels of one
        image; labels layers go under its ``labels/`` group (a labels layer alone becomes a
        label image). Multiscale layers keep their levels; single-scale data gets a pyramid.
    url
        Output folder (``.ome.zarr``) or ``s3://`` / ``gs://`` URL.
    ome_version
        ``"0.5"`` (Zarr v3, sharded by default) or ``"0.4"`` (Zarr v2).
    compressor
        As for :func:`napari_zarr_explorer.recompress.recompress` (``"zstd:5"``,
        ``"blosc-lz4"``, ``"gzip:6"``, ``"none"``...).
    chunks, shards
        Chunk and shard shapes for the full rank of the image (OME order, right-aligned for
        labels); default 256 x 256 plane tiles in 2048 x 2048 shards. ``shards="none"``
        writes Zarr v3 without shards.
    overwrite
        Replace an existing Zarr store at *url*: the new store is written beside it, verified,
        and swapped in; the old one is then deleted (kept as ``<url>.backup-<time>`` with
        *keep_backup*). Local stores only.
    keep_backup
        Keep the replaced store.
    progress
        Called with a :class:`~napari_zarr_explorer.recompress.ProgressEvent` after every task;
        ``True`` shows a progress bar.
    cancel
        A ``threading.Event``; when set, running tasks finish, nothing else is written and the
        partial output is removed (an interrupted process leaves it marked incomplete).
    verify
        Read every written object back and compare it with the data.
    threads
        Worker threads (default: one per CPU; two more when the output is remote).
    storage_options
        Options for a remote output.
    **metadata
        For bare arrays: napari layer keywords (``name``, ``scale``, ``translate``,
        ``axis_labels``, ``units``, ``channel_axis``, ``colormap``, ``contrast_limits``,
        ``layer_type="labels"``...).

    Returns
    -------
    RecompressReport
        What was written and verified; ``report.destination`` is the saved store.

    Raises
    ------
    ExplorerError
        When *url* exists (without *overwrite*), the layers cannot be combined, an option is
        invalid, or writing fails (nothing is left looking complete).
    """
    if progress is True:
        from napari_zarr_explorer.recompress._progress import RichProgress

        with RichProgress(label="save") as bar:
            return save(
                layers_or_arrays,
                url,
                ome_version=ome_version,
                compressor=compressor,
                chunks=chunks,
                shards=shards,
                overwrite=overwrite,
                keep_backup=keep_backup,
                progress=bar,
                cancel=cancel,
                verify=verify,
                threads=threads,
                storage_options=storage_options,
                **metadata,
            )
    from napari_zarr_explorer.recompress._engine import _swap, run_plan

    t0 = time.monotonic()
    final = parse_location(url, storage_options)
    if final.is_local and final.path.exists() and not final.path.is_dir():
        raise ExplorerError(
            f"The output {final} is an existing file.", hint="Choose a folder name ending in .zarr."
        )
    exists = _exists(final)
    target = final
    if exists:
        if not overwrite:
            raise ExplorerError(
                f"The output {final} already exists.",
                hint="Choose another name, or overwrite it (overwrite=True, --overwrite).",
            )
        if not final.is_local:
            raise ExplorerError(
                f"{final}: overwriting works on local stores only (it swaps folders).",
                hint="Save to a new URL, then delete the old one yourself.",
            )
        if not _is_zarr_dir(final.path):
            raise ExplorerError(
                f"The output {final} exists and is not a Zarr store; overwrite only replaces "
                "Zarr stores.",
                hint="Delete it yourself if it is not needed, or choose another output.",
            )
        tmp = final.path.with_name(f".{final.path.name}.saving-{uuid.uuid4().hex[:8]}")
        target = parse_location(tmp)
    run_id = uuid.uuid4().hex
    plan, sources = plan_save(
        layers_or_arrays,
        target.url,
        ome_version=ome_version,
        compressor=compressor,
        chunks=chunks,
        shards=shards,
        storage_options=storage_options,
        run_id=run_id,
        **metadata,
    )
    cancel = cancel or threading.Event()
    try:
        report = run_plan(
            plan,
            target,
            sources=sources,
            verify=verify,
            progress=progress if callable(progress) else None,
            cancel=cancel,
            threads=threads,
            started=t0,
            output_name=str(final),
            failed_as=f"Saving {plan.source} to {final}",
            failure_hint="Nothing was kept; fix the cause and save again.",
        )
    except BaseException:
        _remove(target)
        raise
    ok = report.complete and not report.mismatches
    if not ok:
        _remove(target)
        if report.mismatches:
            raise ExplorerError(
                f"Saving to {final} failed verification: {report.mismatches[0]}",
                hint="Nothing was kept; the data read back differs from what was written.",
            )
        return dataclasses.replace(report, destination=str(final), action="Save")
    if target is not final:
        backup = _swap(final.path, target.path)
        kept: str | None = str(backup)
        if not keep_backup:
            shutil.rmtree(backup, ignore_errors=True)
            kept = None
        return dataclasses.replace(report, destination=str(final), backup=kept, action="Save")
    return dataclasses.replace(report, action="Save")


# --------------------------------------------------------------------------------------------
# defaults and estimate (for the save dialog)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavePreview:
    """What a save would write, for a dialog: main array, default layout and an estimate.

    Attributes
    ----------
    shape, dtype, axes
        Level 0 of the main image (OME axis order) or of the label image saved alone.
    chunks, shards
        The layout that will be used (defaults where none was given).
    levels
        Number of pyramid levels of the main image.
    nbytes
        Logical bytes of every array to write.
    ratio, projected_bytes
        The projected stored size, from sampled chunks, and ``nbytes`` over it (edge chunks
        are stored whole, empty ones not at all).
    """

    shape: tuple[int, ...]
    dtype: str
    axes: tuple[str, ...]
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    levels: int
    nbytes: int
    ratio: float | None
    projected_bytes: int | None

    def __str__(self) -> str:
        from napari_zarr_explorer._html import human_bytes, plural

        text = (
            f"{'x'.join(map(str, self.shape))} {self.dtype} ({','.join(self.axes)}), "
            f"{plural(self.levels, 'level')}, {human_bytes(self.nbytes)}"
        )
        if self.projected_bytes is not None:
            ratio = f"{self.ratio:.2f}x" if self.ratio else "?"
            text += f" -> about {human_bytes(self.projected_bytes)} (compression ratio {ratio})"
        return text


def preview_save(
    layers_or_arrays: Any,
    *,
    ome_version: str = "0.5",
    compressor: str | Any = "zstd:3",
    chunks: Sequence[int] | str | None = None,
    shards: Sequence[int] | str | None = None,
    sample: int = 8,
    **metadata: Any,
) -> SavePreview:
    """Describe what :func:`save` would write and estimate its stored size on sampled chunks.

    Takes the arguments of :func:`save` (without the output). Only *sample* chunks of level 0
    are read and encoded, so this stays quick on large lazy data.
    """
    from napari_zarr_explorer.codec_spec import parse_compressor
    from napari_zarr_explorer.estimate import Candidate, _evaluate
    from napari_zarr_explorer.recompress._plan import parse_shape_arg, resolve_layout
    from napari_zarr_explorer.recompress._source import InMemorySource

    spec = parse_compressor(compressor)
    zarr_format = 3 if str(ome_version) == "0.5" else 2
    plan, _ = plan_save(
        layers_or_arrays,
        None,
        ome_version=ome_version,
        compressor=spec,
        chunks=chunks,
        shards=shards,
        **metadata,
    )
    layers = normalize_layers(layers_or_arrays, **metadata)
    image, labels = _build_images(layers)
    main = image if image is not None else labels[0]
    data = main.levels[0]
    shape = tuple(int(n) for n in data.shape)
    d_chunks, d_shards = default_layout(shape, zarr_format)
    c_arg = parse_shape_arg(chunks, "chunks")
    out_chunks, out_shards = resolve_layout(
        shape,
        d_chunks,
        d_shards,
        c_arg if c_arg != "none" else None,
        parse_shape_arg(shards, "shards"),
        zarr_format,
        where=f"Level {(main.path + '/0') if main.path else '0'!r}",
    )
    main_levels = [
        a
        for a in plan.arrays
        if (a.target.path.rsplit("/", 1)[0] if "/" in a.target.path else "") == main.path
    ]
    grid = [math.ceil(n / c) for n, c in zip(shape, out_chunks, strict=True)]
    total = math.prod(grid)
    rng = np.random.default_rng(0)
    picks = {tuple(int(rng.integers(0, g)) for g in grid) for _ in range(min(sample, total))}
    src = InMemorySource(data, strict=False)  # a sample, read as napari shows it
    dtype = np.dtype(data.dtype)
    blocks = []
    for coords in sorted(picks):
        region = [
            slice(i * c, min((i + 1) * c, n))
            for i, c, n in zip(coords, out_chunks, shape, strict=True)
        ]
        block, _ = src.read(region)
        if block.shape != out_chunks:
            padded = np.zeros(out_chunks, dtype=block.dtype)
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        blocks.append((block, bool(not block.any())))
    res = _evaluate(Candidate(spec), out_chunks, out_shards, shape, dtype, dtype.itemsize, blocks)
    scale = plan.nbytes / max(math.prod(shape) * dtype.itemsize, 1)
    return SavePreview(
        shape=shape,
        dtype=str(dtype),
        axes=tuple(str(a["name"]) for a in main.axes),
        chunks=out_chunks,
        shards=out_shards,
        levels=len(main_levels),
        nbytes=plan.nbytes,
        ratio=res.projected_ratio,
        projected_bytes=round(res.projected_bytes * scale) if res.projected_bytes else None,
    )
