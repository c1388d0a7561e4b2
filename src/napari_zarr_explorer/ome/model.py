"""Lenient parsing of OME-NGFF (OME-Zarr) 0.1 to 0.6 metadata into frozen dataclasses.

0.6 (RFC-5) adds named coordinate systems, transformations between them
(:mod:`napari_zarr_explorer.ome.transforms`) and ``scene`` groups relating several images.

The parser keeps whatever is usable and records what is wrong in ``warnings``; it never raises on
bad metadata (validation with precise messages lives in :mod:`napari_zarr_explorer.ome.validate`).
Paths found in the metadata are kept as written: resolve them with
:func:`napari_zarr_explorer.store.safe_join`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.ome.transforms import (
    Sequence_,
    Transform,
    TransformError,
    TransformGraph,
    as_scale_translation,
    join_path,
    parse_transform,
)

__all__ = [
    "Acquisition",
    "Axis",
    "CoordinateSystem",
    "Dataset",
    "ImageLabel",
    "LabelColor",
    "Multiscale",
    "OmeMetadata",
    "Omero",
    "OmeroChannel",
    "Plate",
    "PlateWell",
    "Scene",
    "Well",
    "WellImage",
    "parse_ome",
]

OmeKind = Literal["image", "labels", "plate", "well", "bioformats2raw", "scene"]

_DEFAULT_AXES_5D = ("t", "c", "z", "y", "x")
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


@dataclass(frozen=True, slots=True)
class Axis:
    """One axis: ``name``, ``type`` (space, time, channel or custom) and ``unit``."""

    name: str
    type: str | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class CoordinateSystem:
    """A named coordinate system (OME-NGFF 0.6): ``name`` and ``axes``."""

    name: str
    axes: tuple[Axis, ...]


@dataclass(frozen=True, slots=True)
class Dataset:
    """One resolution level.

    ``scale`` and ``translation`` are the full transformation of the level: the dataset's own
    transformations followed by the multiscale-level ones (0.4, 0.5); in 0.6 the transformation
    of the level's array to the image's intrinsic coordinate system. None when the metadata has
    none. ``transform`` is that transformation as written (0.6 only).
    """

    path: str
    scale: tuple[float, ...] | None = None
    translation: tuple[float, ...] | None = None
    transform: Transform | None = None


@dataclass(frozen=True, slots=True)
class Multiscale:
    """One ``multiscales`` entry."""

    name: str | None
    axes: tuple[Axis, ...]
    datasets: tuple[Dataset, ...]
    version: str | None = None
    type: str | None = None
    axes_inferred: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    coordinate_systems: tuple[CoordinateSystem, ...] = ()
    transforms: tuple[Transform, ...] = ()
    intrinsic: str | None = None

    def add_to(self, graph: TransformGraph, group: str = "") -> None:
        """Add this image's coordinate systems and transformations (0.6) to *graph*.

        The image's group is at *group*; a level's array is the system ``(array path, "")``.
        """
        for cs in self.coordinate_systems:
            graph.add_system((group, cs.name), len(cs.axes))
        for ds in self.datasets:
            t = ds.transform
            if t is None or self.intrinsic is None:
                continue
            try:
                key = join_path(group, ds.path)
            except ExplorerError:
                continue
            graph.add_system((key, ""), len(self.axes) or None)
            graph.add((key, ""), (group, self.intrinsic), t)
        for t in self.transforms:
            if t.input is None or t.output is None:
                continue
            try:
                src = (join_path(group, t.input.path), t.input.name or "")
                dst = (join_path(group, t.output.path), t.output.name or "")
            except ExplorerError:
                continue
            graph.add(src, dst, t)

    @property
    def channel_axis(self) -> int | None:
        """Index of the channel axis, or None."""
        for i, ax in enumerate(self.axes):
            if ax.type == "channel" or (ax.type is None and ax.name.lower() in ("c", "channel")):
                return i
        return None


@dataclass(frozen=True, slots=True)
class OmeroChannel:
    """Display settings of one channel from ``omero.channels``."""

    label: str | None = None
    color: str | None = None
    active: bool | None = None
    window_start: float | None = None
    window_end: float | None = None
    window_min: float | None = None
    window_max: float | None = None
    inverted: bool | None = None

    @property
    def rgb(self) -> tuple[float, float, float] | None:
        """The colour as RGB floats in 0..1, or None when absent or not a hex colour."""
        c = (self.color or "").strip().lstrip("#")
        if len(c) == 8:  # RRGGBBAA
            c = c[:6]
        if len(c) == 3:
            c = "".join(ch * 2 for ch in c)
        if len(c) != 6:
            return None
        try:
            r, g, b = (int(c[i : i + 2], 16) / 255 for i in (0, 2, 4))
        except ValueError:
            return None
        return (r, g, b)


@dataclass(frozen=True, slots=True)
class Omero:
    """The ``omero`` block (transitional rendering settings)."""

    channels: tuple[OmeroChannel, ...] = ()
    name: str | None = None
    default_z: int | None = None
    default_t: int | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class LabelColor:
    """One ``image-label.colors`` entry: label value and RGBA in 0..255."""

    label_value: int | float
    rgba: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class ImageLabel:
    """The ``image-label`` block of a label image."""

    colors: tuple[LabelColor, ...] = ()
    properties: tuple[Mapping[str, Any], ...] = ()
    source_image: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class PlateWell:
    """A well of a plate: ``path`` (``"A/1"``) and its row/column indices."""

    path: str
    row_index: int
    column_index: int


@dataclass(frozen=True, slots=True)
class Acquisition:
    """A plate acquisition."""

    id: int
    name: str | None = None
    maximumfieldcount: int | None = None


@dataclass(frozen=True, slots=True)
class Plate:
    """The ``plate`` block of an HCS plate."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    wells: tuple[PlateWell, ...]
    name: str | None = None
    field_count: int | None = None
    acquisitions: tuple[Acquisition, ...] = ()
    version: str | None = None


@dataclass(frozen=True, slots=True)
class WellImage:
    """A field of view in a well."""

    path: str
    acquisition: int | None = None


@dataclass(frozen=True, slots=True)
class Well:
    """The ``well`` block of an HCS well."""

    images: tuple[WellImage, ...]
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Scene:
    """The ``scene`` block (OME-NGFF 0.6).

    Coordinate systems, and transformations between them and those of the images below it.
    """

    coordinate_systems: tuple[CoordinateSystem, ...] = ()
    transforms: tuple[Transform, ...] = ()

    @property
    def image_paths(self) -> tuple[str, ...]:
        """Paths of the images the transformations refer to, in order of appearance."""
        out: dict[str, None] = {}
        for t in self.transforms:
            for ref in (t.input, t.output):
                if ref is not None and ref.path:
                    out[ref.path] = None
        return tuple(out)

    def add_to(self, graph: TransformGraph, group: str = "") -> None:
        """Add the scene's coordinate systems and transformations to *graph*."""
        for cs in self.coordinate_systems:
            graph.add_system((group, cs.name), len(cs.axes))
        for t in self.transforms:
            if t.input is None or t.output is None:
                continue
            try:
                src = (join_path(group, t.input.path), t.input.name or "")
                dst = (join_path(group, t.output.path), t.output.name or "")
            except ExplorerError:
                continue
            graph.add(src, dst, t)


@dataclass(frozen=True, slots=True)
class OmeMetadata:
    """OME-NGFF metadata of one node, parsed leniently.

    Attributes
    ----------
    version
        The NGFF version found (``"0.4"``, ``"0.5"``...), or None when unknown.
    kind
        ``"image"``, ``"labels"`` (a ``labels/`` group listing label images), ``"plate"``,
        ``"well"`` or ``"bioformats2raw"``.
    multiscales
        Parsed multiscales entries (images and label images).
    omero
        The ``omero`` rendering block, or None.
    image_label
        The ``image-label`` block (label images), or None.
    labels
        Paths listed by a ``labels`` group.
    plate, well
        HCS blocks, or None.
    bioformats2raw_layout
        The layout version of a bioformats2raw container, or None.
    series
        Series paths listed by a bioformats2raw ``OME`` group (``series``), if any.
    warnings
        What is wrong in the metadata but was tolerated.
    """

    version: str | None
    kind: OmeKind
    multiscales: tuple[Multiscale, ...] = ()
    omero: Omero | None = None
    image_label: ImageLabel | None = None
    labels: tuple[str, ...] = ()
    plate: Plate | None = None
    well: Well | None = None
    bioformats2raw_layout: int | None = None
    series: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    scene: Scene | None = None


# --------------------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


#: Distinct warnings kept per document: a list of a million bad entries would otherwise cost
#: quadratic time to deduplicate and megabytes of messages nobody reads.
MAX_WARNINGS = 100


class _Ctx:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self._seen: set[str] = set()

    def warn(self, msg: str) -> None:
        if len(self.warnings) > MAX_WARNINGS or msg in self._seen:
            return
        if len(self.warnings) == MAX_WARNINGS:
            self.warnings.append(f"more warnings not shown (the first {MAX_WARNINGS} are listed)")
            return
        self._seen.add(msg)
        self.warnings.append(msg)


def _version_of(attrs: Mapping[str, Any], block: Any) -> str | None:
    if isinstance(block, Mapping) and isinstance(block.get("version"), str):
        return str(block["version"])
    if isinstance(attrs.get("version"), str):
        return str(attrs["version"])
    return None


def parse_ome(attributes: Mapping[str, Any], *, zarr_format: int) -> OmeMetadata | None:
    """Parse the OME-NGFF metadata in a node's *attributes*.

    Parameters
    ----------
    attributes
        The node's user attributes (``.zattrs`` or ``zarr.json`` ``attributes``).
    zarr_format
        The node's Zarr format (2 or 3); 0.5 and later keep everything under ``"ome"``.

    Returns
    -------
    OmeMetadata or None
        None when the node carries no OME-NGFF metadata at all.
    """
    if not isinstance(attributes, Mapping):
        return None
    ctx = _Ctx()
    attrs: Mapping[str, Any] = attributes
    version: str | None = None
    ome = attributes.get("ome")
    if isinstance(ome, Mapping):
        attrs = ome
        version = _str(ome.get("version"))
        if zarr_format == 2:
            ctx.warn("OME-NGFF 0.5 and later belong in Zarr v3 (zarr.json); found in Zarr v2.")
    elif ome is not None:
        ctx.warn(f"'ome' must be a JSON object, found {type(ome).__name__}; ignored.")

    kind: OmeKind | None = None
    multiscales: tuple[Multiscale, ...] = ()
    omero: Omero | None = None
    image_label: ImageLabel | None = None
    labels: tuple[str, ...] = ()
    plate: Plate | None = None
    well: Well | None = None
    layout: int | None = None
    series: tuple[str, ...] = ()

    raw_ms = attrs.get("multiscales")
    if raw_ms is not None:
        kind = "image"
        if not isinstance(raw_ms, list):
            ctx.warn(f"'multiscales' must be a list, found {type(raw_ms).__name__}.")
        else:
            parsed = []
            for i, m in enumerate(raw_ms):
                ms = _parse_multiscale(m, i, version, ctx)
                if ms is not None:
                    parsed.append(ms)
            multiscales = tuple(parsed)
            if version is None and raw_ms and isinstance(raw_ms[0], Mapping):
                version = _str(raw_ms[0].get("version"))
    if "omero" in attrs:
        omero = _parse_omero(attrs["omero"], ctx)
    if "image-label" in attrs:
        image_label = _parse_image_label(attrs["image-label"], ctx)
    raw_labels = attrs.get("labels")
    if raw_labels is not None:
        if isinstance(raw_labels, list):
            good = []
            for lab in raw_labels:
                if isinstance(lab, str):
                    good.append(lab)
                else:
                    ctx.warn(f"'labels' entries must be strings; {lab!r} ignored.")
            labels = tuple(good)
        else:
            ctx.warn(f"'labels' must be a list of paths, found {type(raw_labels).__name__}.")
        if kind is None:
            kind = "labels"
    if "plate" in attrs:
        plate = _parse_plate(attrs["plate"], ctx)
        if plate is not None:
            kind = "plate"
            version = version or plate.version
    if "well" in attrs and kind is None:
        well = _parse_well(attrs["well"], ctx)
        if well is not None:
            kind = "well"
            version = version or well.version
    scene: Scene | None = None
    if "scene" in attrs:
        scene = _parse_scene(attrs["scene"], ctx)
        if scene is not None and kind is None:
            kind = "scene"
    raw_layout = attrs.get("bioformats2raw.layout")
    if raw_layout is not None:
        layout = _int(raw_layout)
        if layout is None:
            ctx.warn(f"'bioformats2raw.layout' must be an integer, found {raw_layout!r}.")
            layout = 3
        if kind is None:
            kind = "bioformats2raw"
    raw_series = attrs.get("series")
    if raw_series is not None:
        if isinstance(raw_series, list) and all(isinstance(s, str) for s in raw_series):
            series = tuple(raw_series)
        else:
            ctx.warn("'series' must be a list of paths; ignored.")
        if kind is None:
            kind = "bioformats2raw"
    if kind is None:
        if omero is not None or image_label is not None:
            kind = "image"
        else:
            return None
    if version is None:
        version = _version_of(attrs, None)
    return OmeMetadata(
        version=version,
        kind=kind,
        multiscales=multiscales,
        omero=omero,
        image_label=image_label,
        labels=labels,
        plate=plate,
        well=well,
        bioformats2raw_layout=layout,
        series=series,
        warnings=tuple(ctx.warnings),
        scene=scene,
    )


def _parse_axes(raw: Any, ctx: _Ctx, where: str) -> tuple[tuple[Axis, ...], bool]:
    if raw is None:
        return (), True
    if not isinstance(raw, list):
        ctx.warn(f"{where}: 'axes' must be a list, found {type(raw).__name__}; axes inferred.")
        return (), True
    axes = []
    for i, a in enumerate(raw):
        if isinstance(a, str):  # 0.3
            axes.append(Axis(a, _AXIS_TYPES.get(a.lower()), None))
        elif isinstance(a, Mapping) and isinstance(a.get("name"), str):
            typ = a.get("type")
            unit = a.get("unit")
            if typ is not None and not isinstance(typ, str):
                ctx.warn(f"{where}: axes[{i}].type must be a string, found {typ!r}; ignored.")
                typ = None
            if unit is not None and not isinstance(unit, str):
                ctx.warn(f"{where}: axes[{i}].unit must be a string, found {unit!r}; ignored.")
                unit = None
            axes.append(Axis(a["name"], typ, unit))
        else:
            ctx.warn(f"{where}: axes[{i}] is not a valid axis ({a!r}); axes inferred.")
            return (), True
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        ctx.warn(f"{where}: axis names {names} are not unique.")
    return tuple(axes), False


def _apply_transforms(
    raw: Any, ndim: int | None, ctx: _Ctx, where: str
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """Compose a list of scale/translation transformations into one scale and translation."""
    if raw is None:
        return None, None
    if not isinstance(raw, list):
        ctx.warn(f"{where}: 'coordinateTransformations' must be a list; ignored.")
        return None, None
    scale: list[float] | None = None
    trans: list[float] | None = None
    for j, t in enumerate(raw):
        if not isinstance(t, Mapping):
            ctx.warn(f"{where}: coordinateTransformations[{j}] is not an object; ignored.")
            continue
        typ = t.get("type")
        if typ == "identity":
            continue
        if typ not in ("scale", "translation"):
            ctx.warn(f"{where}: coordinate transformation type {typ!r} is not supported; ignored.")
            continue
        if "path" in t and typ not in t:
            ctx.warn(f"{where}: transformations stored in a file ('path') are not read; ignored.")
            continue
        values = t.get(typ)
        if not isinstance(values, list) or not all(_num(v) is not None for v in values):
            ctx.warn(f"{where}: the {typ} {values!r} must be a list of finite numbers; ignored.")
            continue
        vals = [float(v) for v in values]
        if ndim is not None and len(vals) != ndim:
            ctx.warn(
                f"{where}: the {typ} has {len(vals)} values for {ndim} axes; ignored.",
            )
            continue
        n = len(vals)
        if (scale is not None and len(scale) != n) or (trans is not None and len(trans) != n):
            ctx.warn(f"{where}: transformations of different lengths; {typ} ignored.")
            continue
        if typ == "scale":
            if any(v == 0 for v in vals):
                ctx.warn(f"{where}: scale {vals} contains zero; ignored.")
                continue
            if trans is not None:
                trans = [a * b for a, b in zip(trans, vals, strict=True)]
            scale = vals if scale is None else [a * b for a, b in zip(scale, vals, strict=True)]
        else:
            trans = vals if trans is None else [a + b for a, b in zip(trans, vals, strict=True)]
    return (
        tuple(scale) if scale is not None else None,
        tuple(trans) if trans is not None else None,
    )


def _compose(
    inner: tuple[tuple[float, ...] | None, tuple[float, ...] | None],
    outer: tuple[tuple[float, ...] | None, tuple[float, ...] | None],
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """Apply *inner* then *outer*: x -> s_o * (s_i * x + t_i) + t_o."""
    s_i, t_i = inner
    s_o, t_o = outer
    n = next((len(v) for v in (s_i, t_i, s_o, t_o) if v is not None), None)
    if n is None:
        return None, None
    if any(v is not None and len(v) != n for v in (s_i, t_i, s_o, t_o)):
        return inner
    one = (1.0,) * n
    zero = (0.0,) * n
    si, ti, so, to = s_i or one, t_i or zero, s_o or one, t_o or zero
    scale = tuple(a * b for a, b in zip(si, so, strict=True))
    trans = tuple(a * b + c for a, b, c in zip(ti, so, to, strict=True))
    has_scale = s_i is not None or s_o is not None
    has_trans = t_i is not None or t_o is not None
    return (scale if has_scale else None, trans if has_trans else None)


def _parse_multiscale(m: Any, index: int, version: str | None, ctx: _Ctx) -> Multiscale | None:
    where = f"multiscales[{index}]"
    if not isinstance(m, Mapping):
        ctx.warn(f"{where} must be an object, found {type(m).__name__}; ignored.")
        return None
    mversion = _str(m.get("version")) or version
    if (mversion or "").startswith("0.6") or ("coordinateSystems" in m and "axes" not in m):
        return _parse_multiscale_06(m, where, mversion, ctx)
    axes, inferred = _parse_axes(m.get("axes"), ctx, where)
    if inferred and m.get("axes") is None and mversion not in (None, "0.1", "0.2"):
        ctx.warn(f"{where}: 'axes' is missing (required since 0.3); axes inferred.")
    ndim = len(axes) if axes else None
    outer = _apply_transforms(m.get("coordinateTransformations"), ndim, ctx, where)
    raw_ds = m.get("datasets")
    datasets: list[Dataset] = []
    if not isinstance(raw_ds, list):
        ctx.warn(f"{where}: 'datasets' must be a list, found {type(raw_ds).__name__}.")
        raw_ds = []
    for j, d in enumerate(raw_ds):
        dwhere = f"{where}.datasets[{j}]"
        if not isinstance(d, Mapping):
            ctx.warn(f"{dwhere} must be an object; ignored.")
            continue
        path = d.get("path")
        if not isinstance(path, str) or not path:
            ctx.warn(f"{dwhere}: 'path' must be a non-empty string, found {path!r}; ignored.")
            continue
        inner = _apply_transforms(d.get("coordinateTransformations"), ndim, ctx, dwhere)
        if (
            inner == (None, None)
            and mversion not in (None, "0.1", "0.2", "0.3")
            and d.get("coordinateTransformations") is None
        ):
            ctx.warn(f"{dwhere}: 'coordinateTransformations' is missing (required since 0.4).")
        scale, trans = _compose(inner, outer)
        datasets.append(Dataset(path=path, scale=scale, translation=trans))
    if not datasets:
        ctx.warn(f"{where}: no usable dataset.")
    name = m.get("name")
    if name is not None and not isinstance(name, str):
        ctx.warn(f"{where}: 'name' must be a string, found {name!r}; ignored.")
        name = None
    typ = m.get("type")
    meta = m.get("metadata")
    return Multiscale(
        name=name,
        axes=axes,
        datasets=tuple(datasets),
        version=mversion,
        type=typ if isinstance(typ, str) else None,
        axes_inferred=inferred,
        metadata=meta if isinstance(meta, Mapping) else {},
    )


def infer_axes(ndim: int) -> tuple[Axis, ...]:
    """Axes for OME-NGFF 0.1/0.2 data without ``axes``: the last *ndim* of ``t, c, z, y, x``."""
    names: Sequence[str]
    if ndim <= 5:
        names = _DEFAULT_AXES_5D[5 - ndim :]
    else:
        names = [f"dim_{i}" for i in range(ndim - 5)] + list(_DEFAULT_AXES_5D)
    return tuple(Axis(n, _AXIS_TYPES.get(n)) for n in names)


def _parse_omero(raw: Any, ctx: _Ctx) -> Omero | None:
    if not isinstance(raw, Mapping):
        ctx.warn(f"'omero' must be an object, found {type(raw).__name__}; ignored.")
        return None
    chans = raw.get("channels", [])
    if not isinstance(chans, list):
        ctx.warn("omero.channels must be a list; ignored.")
        chans = []
    out = []
    for i, ch in enumerate(chans):
        if not isinstance(ch, Mapping):
            ctx.warn(f"omero.channels[{i}] must be an object; defaults used.")
            out.append(OmeroChannel())
            continue
        label = ch.get("label")
        if label is not None and not isinstance(label, str):
            ctx.warn(f"omero.channels[{i}].label must be a string, found {label!r}.")
            label = str(label)
        color = ch.get("color")
        if color is not None and not isinstance(color, str):
            ctx.warn(f"omero.channels[{i}].color must be a hex string, found {color!r}; ignored.")
            color = None
        active = ch.get("active")
        if active is not None and not isinstance(active, bool):
            ctx.warn(f"omero.channels[{i}].active must be a boolean, found {active!r}.")
            active = bool(active) if isinstance(active, int | float) else None
        inverted = ch.get("inverted")
        window = ch.get("window")
        w: dict[str, float | None] = {"start": None, "end": None, "min": None, "max": None}
        if isinstance(window, Mapping):
            for k in w:
                if k in window:
                    w[k] = _num(window[k])
                    if w[k] is None:
                        ctx.warn(
                            f"omero.channels[{i}].window.{k} must be a number, "
                            f"found {window[k]!r}; ignored."
                        )
        elif window is not None:
            ctx.warn(f"omero.channels[{i}].window must be an object; ignored.")
        out.append(
            OmeroChannel(
                label=label,
                color=color,
                active=active,
                window_start=w["start"],
                window_end=w["end"],
                window_min=w["min"],
                window_max=w["max"],
                inverted=inverted if isinstance(inverted, bool) else None,
            )
        )
    rdefs = raw.get("rdefs") if isinstance(raw.get("rdefs"), Mapping) else {}
    assert isinstance(rdefs, Mapping)
    return Omero(
        channels=tuple(out),
        name=_str(raw.get("name")),
        default_z=_int(rdefs.get("defaultZ")),
        default_t=_int(rdefs.get("defaultT")),
        model=_str(rdefs.get("model")),
    )


def _parse_image_label(raw: Any, ctx: _Ctx) -> ImageLabel | None:
    if not isinstance(raw, Mapping):
        ctx.warn(f"'image-label' must be an object, found {type(raw).__name__}; ignored.")
        return None
    colors = []
    raw_colors = raw.get("colors", [])
    if not isinstance(raw_colors, list):
        ctx.warn("image-label.colors must be a list; ignored.")
        raw_colors = []
    for i, c in enumerate(raw_colors):
        if not isinstance(c, Mapping):
            ctx.warn(f"image-label.colors[{i}] must be an object; ignored.")
            continue
        value = c.get("label-value")
        rgba = c.get("rgba")
        if _num(value) is None:
            ctx.warn(f"image-label.colors[{i}].label-value must be a number; ignored.")
            continue
        if (
            not isinstance(rgba, list)
            or len(rgba) not in (3, 4)
            or not all(_int(v) is not None and 0 <= v <= 255 for v in rgba)
        ):
            ctx.warn(f"image-label.colors[{i}].rgba must be 4 integers in 0..255; ignored.")
            continue
        vals = [int(v) for v in rgba] + ([255] if len(rgba) == 3 else [])
        lv = _int(value)
        colors.append(
            LabelColor(
                label_value=lv if lv is not None else float(value or 0),
                rgba=(vals[0], vals[1], vals[2], vals[3]),
            )
        )
    props = raw.get("properties", [])
    if not isinstance(props, list):
        ctx.warn("image-label.properties must be a list; ignored.")
        props = []
    source = raw.get("source")
    src_image = source.get("image") if isinstance(source, Mapping) else None
    return ImageLabel(
        colors=tuple(colors),
        properties=tuple(p for p in props if isinstance(p, Mapping)),
        source_image=src_image if isinstance(src_image, str) else None,
        version=_str(raw.get("version")),
    )


def _names(raw: Any, key: str, ctx: _Ctx) -> tuple[str, ...]:
    if not isinstance(raw, list):
        ctx.warn(f"plate.{key} must be a list; ignored.")
        return ()
    out = []
    for i, r in enumerate(raw):
        name = r.get("name") if isinstance(r, Mapping) else None
        if not isinstance(name, str):
            ctx.warn(f"plate.{key}[{i}].name must be a string.")
            name = str(i)
        out.append(name)
    return tuple(out)


def _parse_plate(raw: Any, ctx: _Ctx) -> Plate | None:
    if not isinstance(raw, Mapping):
        ctx.warn(f"'plate' must be an object, found {type(raw).__name__}; ignored.")
        return None
    rows = _names(raw.get("rows"), "rows", ctx)
    cols = _names(raw.get("columns"), "columns", ctx)
    wells = []
    raw_wells = raw.get("wells", [])
    if not isinstance(raw_wells, list):
        ctx.warn("plate.wells must be a list; ignored.")
        raw_wells = []
    for i, w in enumerate(raw_wells):
        if not isinstance(w, Mapping) or not isinstance(w.get("path"), str):
            ctx.warn(f"plate.wells[{i}] must be an object with a string 'path'; ignored.")
            continue
        path = w["path"]
        ri, ci = _int(w.get("rowIndex")), _int(w.get("columnIndex"))
        if ri is None or ci is None:  # 0.1-0.3: derive from the path
            parts = path.split("/")
            if len(parts) == 2 and parts[0] in rows and parts[1] in cols:
                ri, ci = rows.index(parts[0]), cols.index(parts[1])
            else:
                ctx.warn(f"plate.wells[{i}] ({path!r}) has no usable rowIndex/columnIndex.")
                continue
        if not (0 <= ri < max(len(rows), 1) and 0 <= ci < max(len(cols), 1)):
            ctx.warn(f"plate.wells[{i}] ({path!r}) is outside the plate's rows/columns.")
            continue
        wells.append(PlateWell(path=path, row_index=ri, column_index=ci))
    acqs = []
    for a in raw.get("acquisitions", []) if isinstance(raw.get("acquisitions"), list) else []:
        if isinstance(a, Mapping) and _int(a.get("id")) is not None:
            acqs.append(
                Acquisition(
                    id=int(a["id"]),
                    name=_str(a.get("name")),
                    maximumfieldcount=_int(a.get("maximumfieldcount")),
                )
            )
    return Plate(
        rows=rows,
        columns=cols,
        wells=tuple(wells),
        name=_str(raw.get("name")),
        field_count=_int(raw.get("field_count")),
        acquisitions=tuple(acqs),
        version=_str(raw.get("version")),
    )


def _parse_well(raw: Any, ctx: _Ctx) -> Well | None:
    if not isinstance(raw, Mapping):
        ctx.warn(f"'well' must be an object, found {type(raw).__name__}; ignored.")
        return None
    imgs = raw.get("images", [])
    if not isinstance(imgs, list):
        ctx.warn("well.images must be a list; ignored.")
        imgs = []
    out = []
    for i, im in enumerate(imgs):
        if not isinstance(im, Mapping) or not isinstance(im.get("path"), str):
            ctx.warn(f"well.images[{i}] must be an object with a string 'path'; ignored.")
            continue
        out.append(WellImage(path=im["path"], acquisition=_int(im.get("acquisition"))))
    return Well(images=tuple(out), version=_str(raw.get("version")))


# --- OME-NGFF 0.6 ------------------------------------------------------------------------------


def _parse_systems(raw: Any, ctx: _Ctx, where: str) -> tuple[CoordinateSystem, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        ctx.warn(f"{where}: 'coordinateSystems' must be a list; ignored.")
        return ()
    out: list[CoordinateSystem] = []
    for k, cs in enumerate(raw):
        if not isinstance(cs, Mapping) or not isinstance(cs.get("name"), str):
            ctx.warn(f"{where}: coordinateSystems[{k}] needs a string 'name'; ignored.")
            continue
        axes, inferred = _parse_axes(cs.get("axes"), ctx, f"{where}.coordinateSystems[{k}]")
        if inferred:
            ctx.warn(f"{where}: coordinate system {cs['name']!r} has no usable 'axes'; ignored.")
            continue
        if any(c.name == cs["name"] for c in out):
            ctx.warn(f"{where}: coordinate system name {cs['name']!r} is repeated.")
            continue
        out.append(CoordinateSystem(cs["name"], axes))
    return tuple(out)


def _parse_transforms(
    raw: Any, ctx: _Ctx, where: str, *, dataset: bool = False
) -> tuple[Transform, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        ctx.warn(f"{where}: 'coordinateTransformations' must be a list; ignored.")
        return ()
    out = []
    for j, t in enumerate(raw):
        tw = f"{where}.coordinateTransformations[{j}]"
        try:
            parsed = parse_transform(t, tw, dataset=dataset)
        except TransformError as exc:
            ctx.warn(f"{exc.message} Ignored.")
            continue
        out.append(parsed)
    return tuple(out)


def _parse_multiscale_06(
    m: Mapping[str, Any], where: str, mversion: str | None, ctx: _Ctx
) -> Multiscale | None:
    systems = _parse_systems(m.get("coordinateSystems"), ctx, where)
    if m.get("coordinateSystems") is None:
        ctx.warn(f"{where}: 'coordinateSystems' is missing (required in 0.6); axes inferred.")
    raw_ds = m.get("datasets")
    if not isinstance(raw_ds, list):
        ctx.warn(f"{where}: 'datasets' must be a list, found {type(raw_ds).__name__}.")
        raw_ds = []
    found: list[tuple[str, Transform | None]] = []
    intrinsic: str | None = None
    for j, d in enumerate(raw_ds):
        dwhere = f"{where}.datasets[{j}]"
        if not isinstance(d, Mapping) or not isinstance(d.get("path"), str) or not d["path"]:
            ctx.warn(f"{dwhere} must be an object with a non-empty string 'path'; ignored.")
            continue
        ts = _parse_transforms(d.get("coordinateTransformations"), ctx, dwhere, dataset=True)
        if d.get("coordinateTransformations") is None:
            ctx.warn(f"{dwhere}: 'coordinateTransformations' is missing (required).")
        t: Transform | None
        if not ts:
            t = None
        elif len(ts) == 1:
            t = ts[0]
        else:
            t = Sequence_(transformations=ts, input=ts[0].input, output=ts[-1].output)
        if t is not None and t.output is not None and t.output.name:
            if intrinsic is None:
                intrinsic = t.output.name
            elif t.output.name != intrinsic:
                ctx.warn(
                    f"{dwhere}: the output {t.output.name!r} differs from the intrinsic "
                    f"coordinate system {intrinsic!r} of the first level."
                )
        found.append((d["path"], t))
    if intrinsic is None and systems:
        intrinsic = systems[-1].name
    cs = next((c for c in systems if c.name == intrinsic), None)
    if cs is None and intrinsic is not None and systems:
        ctx.warn(
            f"{where}: the datasets' output {intrinsic!r} is not a declared coordinate system."
        )
    axes = cs.axes if cs is not None else ()
    ndim = len(axes) or None
    datasets = []
    for path, t in found:
        scale = trans = None
        if t is not None and ndim is not None:
            st = as_scale_translation(t, ndim)
            if st is None:
                ctx.warn(
                    f"{where}: the transformation of level {path!r} ({t.describe()}) is not a "
                    "scale and translation; the level is placed without it."
                )
            else:
                scale, trans = st
                if all(v == 0 for v in trans):
                    trans = None
        datasets.append(Dataset(path=path, scale=scale, translation=trans, transform=t))
    if not datasets:
        ctx.warn(f"{where}: no usable dataset.")
    name = m.get("name")
    typ = m.get("type")
    meta = m.get("metadata")
    return Multiscale(
        name=name if isinstance(name, str) else None,
        axes=axes,
        datasets=tuple(datasets),
        version=mversion,
        type=typ if isinstance(typ, str) else None,
        axes_inferred=not axes,
        metadata=meta if isinstance(meta, Mapping) else {},
        coordinate_systems=systems,
        transforms=_parse_transforms(m.get("coordinateTransformations"), ctx, where),
        intrinsic=intrinsic if cs is not None else None,
    )


def _parse_scene(raw: Any, ctx: _Ctx) -> Scene | None:
    if not isinstance(raw, Mapping):
        ctx.warn(f"'scene' must be an object, found {type(raw).__name__}; ignored.")
        return None
    if "coordinateTransformations" not in raw:
        ctx.warn("scene: 'coordinateTransformations' is missing (required).")
    return Scene(
        coordinate_systems=_parse_systems(raw.get("coordinateSystems"), ctx, "scene"),
        transforms=_parse_transforms(raw.get("coordinateTransformations"), ctx, "scene"),
    )
