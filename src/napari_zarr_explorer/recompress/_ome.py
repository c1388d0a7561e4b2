"""Carry OME-NGFF attributes across Zarr formats and versions.

0.1-0.4 (Zarr v2) <-> 0.5 (Zarr v3); 0.1-0.5 -> 0.6 (Zarr v3, coordinate systems) when asked.
OME-NGFF 0.6 metadata is copied unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from napari_zarr_explorer.errors import ExplorerError

__all__ = [
    "OME_KEYS",
    "OME_VERSIONS",
    "axes_names",
    "convert_attributes",
    "ome_body",
    "scene_paths",
    "to_06",
]

#: OME-NGFF versions an output can be asked for (None: 0.5 for Zarr v3, 0.4 for Zarr v2).
OME_VERSIONS = ("0.6",)
#: The version string written for OME-NGFF 0.6.
VERSION_06 = "0.6"
#: Name of the intrinsic coordinate system written when converting to 0.6.
INTRINSIC = "physical"

#: Attribute keys that belong to OME-NGFF (top level in 0.1-0.4, under "ome" in 0.5).
OME_KEYS = (
    "multiscales",
    "omero",
    "labels",
    "image-label",
    "plate",
    "well",
    "bioformats2raw.layout",
    "series",
    "scene",
)
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
_DEFAULT_AXES = ("t", "c", "z", "y", "x")


def ome_body(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the OME-NGFF part of *attrs* (the ``ome`` object, or the top-level keys)."""
    ome = attrs.get("ome")
    if isinstance(ome, Mapping):
        return dict(ome)
    body = {k: attrs[k] for k in OME_KEYS if k in attrs}
    if body.get("labels") is not None and not _is_str_list(body.get("labels")):
        body.pop("labels")
    if "series" in body and not _is_str_list(body["series"]):
        body.pop("series")
    return body or None


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _old_version(body: Mapping[str, Any]) -> str | None:
    for key in ("multiscales", "plate", "well", "image-label"):
        v = body.get(key)
        items = v if isinstance(v, list) else [v]
        for item in items:
            if isinstance(item, Mapping) and isinstance(item.get("version"), str):
                return str(item["version"])
    return None


def axes_names(attrs: Mapping[str, Any]) -> list[str] | None:
    """Return the axis names of the first multiscale of *attrs*, if any."""
    body = ome_body(attrs) or {}
    ms = body.get("multiscales")
    if not isinstance(ms, list) or not ms or not isinstance(ms[0], Mapping):
        return None
    axes = ms[0].get("axes")
    if axes is None and isinstance(ms[0].get("coordinateSystems"), list):  # 0.6: intrinsic
        axes = _intrinsic_axes(ms[0])
    if not isinstance(axes, list):
        return None
    names = [a.get("name") if isinstance(a, Mapping) else a for a in axes]
    if all(isinstance(n, str) for n in names):
        return [str(n) for n in names]
    return None


def _intrinsic_axes(ms: Mapping[str, Any]) -> Any:
    """Return the axes of a 0.6 multiscale's intrinsic system (the output of its levels)."""
    systems = [c for c in ms.get("coordinateSystems") or [] if isinstance(c, Mapping)]
    target = None
    for d in ms.get("datasets") or []:
        cts = d.get("coordinateTransformations") if isinstance(d, Mapping) else None
        if isinstance(cts, list) and cts and isinstance(cts[-1], Mapping):
            out = cts[-1].get("output")
            target = out.get("name") if isinstance(out, Mapping) else out
            break
    for c in systems:
        if c.get("name") == target:
            return c.get("axes")
    return systems[-1].get("axes") if systems else None


def _upgrade_multiscale(
    ms: dict[str, Any], level_shapes: Mapping[str, Sequence[int]]
) -> dict[str, Any]:
    """Give a pre-0.4 multiscale what 0.4/0.5 require: axes objects and scale transforms."""
    datasets = [d for d in ms.get("datasets", []) if isinstance(d, Mapping)]
    ndim = None
    for d in datasets:
        shape = level_shapes.get(str(d.get("path")))
        if shape is not None:
            ndim = len(shape)
            break
    axes = ms.get("axes")
    if axes is None and ndim is not None:
        axes = list(_DEFAULT_AXES[-ndim:]) if ndim <= 5 else None
    if isinstance(axes, list) and all(isinstance(a, str) for a in axes):
        ms["axes"] = [
            {"name": a, "type": _AXIS_TYPES[a]} if a in _AXIS_TYPES else {"name": a} for a in axes
        ]
    base = level_shapes.get(str(datasets[0].get("path"))) if datasets else None
    new_datasets = []
    for d in datasets:
        nd = dict(d)
        if "coordinateTransformations" not in nd:
            shape = level_shapes.get(str(d.get("path")))
            if base is not None and shape is not None and len(shape) == len(base):
                scale = [
                    float(b) / float(s) if s else 1.0 for b, s in zip(base, shape, strict=True)
                ]
            elif ndim is not None:
                scale = [1.0] * ndim
            else:
                scale = None
            if scale is not None:
                nd["coordinateTransformations"] = [{"type": "scale", "scale": scale}]
        new_datasets.append(nd)
    ms["datasets"] = new_datasets
    return ms


def convert_attributes(
    attrs: Mapping[str, Any],
    *,
    src_format: int,
    dst_format: int,
    level_shapes: Mapping[str, Sequence[int]] | None = None,
    ome_version: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Convert a node's attributes for the output's Zarr format.

    Zarr v2 -> v3 moves OME-NGFF 0.1-0.4 keys under ``"ome"`` with ``"version": "0.5"``,
    dropping the per-object ``"version"`` keys (0.5 keeps the version in one place), and
    completes pre-0.4 multiscales (axes objects, scale transformations). Zarr v3 -> v2 does the
    reverse (0.5 -> 0.4). Other attributes are kept as they are.

    Parameters
    ----------
    attrs
        The source node's attributes.
    src_format, dst_format
        Zarr formats of the source and the output.
    level_shapes
        Shapes of the multiscale levels by dataset path (used to complete pre-0.4 metadata).
    ome_version
        ``"0.6"`` converts OME-NGFF 0.1-0.5 metadata to 0.6 (Zarr v3 only): the axes become
        the coordinate system ``"physical"``, each level's scale and translation (with the
        multiscale-level ones folded in) its transformation to it. None: 0.5 for Zarr v3,
        0.4 for Zarr v2. OME-NGFF 0.6 metadata is always copied unchanged (Zarr v3 only).

    Returns
    -------
    tuple of (dict, list of str)
        The new attributes and notes describing what was changed.
    """
    out = copy.deepcopy(dict(attrs))
    notes: list[str] = []
    if ome_version is not None and ome_version not in OME_VERSIONS:
        raise ExplorerError(
            f"ome_version {ome_version!r} is not supported.",
            hint="Leave it out (0.5 for Zarr v3, 0.4 for Zarr v2) or ask for '0.6'.",
        )
    src_ome = out.get("ome")
    is_06 = isinstance(src_ome, Mapping) and str(src_ome.get("version", "")).startswith("0.6")
    if (is_06 or ome_version == "0.6") and dst_format != 3:
        raise ExplorerError(
            "OME-NGFF 0.6 is defined for Zarr v3 only.",
            hint="Write Zarr v3 (--zarr-format 3).",
        )
    if is_06:
        return out, notes  # kept intact: coordinate systems, transformations, scenes
    if ome_version == "0.6":
        if ome_body(out) is None:
            return out, notes
        out, notes = convert_attributes(
            attrs, src_format=src_format, dst_format=3, level_shapes=level_shapes
        )
        body = out.get("ome")
        if isinstance(body, Mapping):
            out["ome"] = to_06(body)
            notes = [n.replace("converted to 0.5", "converted to 0.6") for n in notes] or [
                "OME-NGFF 0.5 metadata converted to 0.6"
            ]
        return out, notes
    if dst_format == 3 and "ome" not in out:
        body = ome_body(out)
        if not body:
            return out, notes
        for k in body:
            out.pop(k, None)
        old = _old_version(body) or "0.4"
        for key in ("multiscales",):
            items = body.get(key)
            if isinstance(items, list):
                new_items = []
                for item in items:
                    if isinstance(item, Mapping):
                        item = dict(item)
                        item.pop("version", None)
                        if old in ("0.1", "0.2", "0.3"):
                            item = _upgrade_multiscale(item, level_shapes or {})
                    new_items.append(item)
                body[key] = new_items
        for key in ("plate", "well", "image-label", "omero"):
            item = body.get(key)
            if isinstance(item, Mapping):
                item = dict(item)
                item.pop("version", None)
                body[key] = item
        out["ome"] = {"version": "0.5", **body}
        notes.append(f"OME-NGFF {old} metadata converted to 0.5 (under 'ome')")
        return out, notes
    if dst_format == 2 and isinstance(out.get("ome"), Mapping):
        body = dict(out.pop("ome"))
        version = str(body.pop("version", "0.5"))
        if version != "0.5":
            notes.append(f"OME-NGFF {version} metadata written as 0.4 in Zarr v2 without changes")
        for key in ("multiscales",):
            items = body.get(key)
            if isinstance(items, list):
                body[key] = [
                    {**item, "version": "0.4"} if isinstance(item, Mapping) else item
                    for item in items
                ]
        for key in ("plate", "well", "image-label"):
            item = body.get(key)
            if isinstance(item, Mapping):
                body[key] = {**item, "version": "0.4"}
        out.update(body)
        notes.append("OME-NGFF 0.5 metadata converted to 0.4 (top-level keys)")
    return out, notes


def to_06(body: Mapping[str, Any]) -> dict[str, Any]:
    """Convert an OME-NGFF 0.5 ``ome`` object to 0.6.

    Each multiscale's ``axes`` become the coordinate system ``"physical"``; each level's full
    scale and translation (its own, then the multiscale-level ones, as 0.4/0.5 define them)
    become one ``scale`` or a ``sequence`` of scale and translation from the level's array
    (``{"path": ...}``) to ``{"name": "physical"}``. Everything else is kept.
    """
    from napari_zarr_explorer.ome.model import parse_ome

    out = copy.deepcopy(dict(body))
    out["version"] = VERSION_06
    raw = out.get("multiscales")
    if not isinstance(raw, list):
        return out
    parsed = parse_ome({"ome": {**out, "version": "0.5"}}, zarr_format=3)
    by_index = list(parsed.multiscales) if parsed is not None else []
    new = []
    for i, ms in enumerate(raw):
        if not isinstance(ms, Mapping) or i >= len(by_index):
            new.append(ms)
            continue
        pm = by_index[i]
        m = {k: v for k, v in ms.items() if k not in ("axes", "coordinateTransformations")}
        raw_axes = ms.get("axes")
        axes: list[Any] = list(raw_axes) if isinstance(raw_axes, list) else []
        m["coordinateSystems"] = [{"name": INTRINSIC, "axes": copy.deepcopy(axes)}]
        datasets = []
        for d in pm.datasets:
            raw_d = next(
                (
                    x
                    for x in ms.get("datasets", [])
                    if isinstance(x, Mapping) and x.get("path") == d.path
                ),
                {"path": d.path},
            )
            nd = {k: v for k, v in raw_d.items() if k != "coordinateTransformations"}
            n = len(axes) or len(d.scale or d.translation or ())
            scale = list(d.scale) if d.scale is not None else [1.0] * n
            t: dict[str, Any] = {"type": "scale", "scale": scale}
            if d.translation is not None and any(v != 0 for v in d.translation):
                t = {
                    "type": "sequence",
                    "transformations": [
                        t,
                        {"type": "translation", "translation": list(d.translation)},
                    ],
                }
            t["input"] = {"path": d.path}
            t["output"] = {"name": INTRINSIC}
            nd["coordinateTransformations"] = [t]
            datasets.append(nd)
        m["datasets"] = datasets
        new.append(m)
    out["multiscales"] = new
    return out


def scene_paths(body: Mapping[str, Any]) -> list[str]:
    """Return the relative paths an OME-NGFF 0.6 ``scene`` points to.

    These are the images its transformations name and the arrays holding transformation
    parameters (the ``path`` of a transformation).
    """
    scene = body.get("scene")
    if not isinstance(scene, Mapping):
        return []
    out: list[str] = []

    def walk(t: Any, depth: int = 0) -> None:
        if not isinstance(t, Mapping) or depth > 32:
            return
        if isinstance(t.get("path"), str):
            out.append(t["path"])
        for key in ("input", "output"):
            ref = t.get(key)
            if isinstance(ref, Mapping) and isinstance(ref.get("path"), str):
                out.append(ref["path"])
        for item in t.get("transformations") or []:
            walk(item.get("transformation", item) if isinstance(item, Mapping) else item, depth + 1)
        for key in ("forward", "inverse"):
            walk(t.get(key), depth + 1)

    for t in scene.get("coordinateTransformations") or []:
        walk(t)
    return [p for p in dict.fromkeys(out) if p]
