"""OME-NGFF 0.6 (RFC-5): named coordinate systems and transformations between them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from napari_zarr_explorer.ome.validate.common import (
    _check_axes,
    _check_datasets,
    _check_multiscales_list,
    _check_sections,
    _check_vector,
    _Ctx,
    _kind_of,
    _p,
    _short,
)

__all__ = ["check_container", "check_multiscales"]


def check_multiscales(value: Any, ctx: _Ctx, ptr: str) -> None:
    """0.6 ``multiscales``: coordinate systems, datasets, transformations between systems."""
    _check_multiscales_list(value, ctx, ptr, _check_multiscale)


def _check_multiscale(m: dict[str, Any], ctx: _Ctx, p: str) -> None:
    n_axes = _check_coordinate_systems(m, ctx, p)
    if "datasets" not in m:
        ctx.missing(_p(p, "datasets"), "the list of resolution levels (datasets)")
    else:
        _check_datasets(m["datasets"], ctx, _p(p, "datasets"), n_axes, "0.6")
    if "coordinateTransformations" in m:
        ct_ptr = _p(p, "coordinateTransformations")
        _check_free_transforms(m["coordinateTransformations"], ctx, ct_ptr, n_axes)


def check_container(ome: Mapping[str, Any], ctx: _Ctx, base: str) -> None:
    """Check the sections of a 0.6 ``ome`` object at JSON pointer *base*."""
    _check_sections(ome, ctx, base, check_multiscales)


def _check_coordinate_systems(m: Mapping[str, Any], ctx: _Ctx, p: str) -> int | None:
    """0.6 draft: axes live in named coordinate systems; returns the common number of axes."""
    if "coordinateSystems" not in m:
        hint = " ('axes' moved into the coordinate systems in 0.6)" if "axes" in m else ""
        ctx.missing(_p(p, "coordinateSystems"), f"the list of coordinate systems{hint}")
        return None
    systems = m["coordinateSystems"]
    ptr = _p(p, "coordinateSystems")
    if not isinstance(systems, list) or not systems:
        ctx.error(ptr, f"must be a non-empty list of coordinate systems, found {_short(systems)}.")
        return None
    counts: set[int] = set()
    names: dict[str, int] = {}
    for k, cs in enumerate(systems):
        pk = _p(ptr, k)
        if not isinstance(cs, dict):
            ctx.error(pk, f"must be a coordinate system object, found {_kind_of(cs)}.")
            continue
        name = cs.get("name")
        if "name" not in cs:
            ctx.missing(_p(pk, "name"), "every coordinate system needs a name")
        elif not isinstance(name, str):
            ctx.error(_p(pk, "name"), f"must be a string, found {_kind_of(name)}.")
        elif name in names:
            ctx.error(
                _p(pk, "name"), f"{name!r} is already the name of coordinate system {names[name]}."
            )
        else:
            names[name] = k
        if "axes" not in cs:
            ctx.missing(_p(pk, "axes"), "the axes of the coordinate system")
            continue
        n = _check_axes(cs["axes"], ctx, _p(pk, "axes"))
        if n is not None:
            counts.add(n)
    return counts.pop() if len(counts) == 1 else None


def _check_free_transforms(value: Any, ctx: _Ctx, ptr: str, n_axes: int | None) -> None:
    """0.6 draft: transformations between coordinate systems (any type; vectors checked)."""
    if not isinstance(value, list):
        ctx.error(ptr, f"must be a list of transformations, found {_kind_of(value)}.")
        return
    for j, t in enumerate(value):
        pj = _p(ptr, j)
        if not isinstance(t, dict):
            ctx.error(pj, f"must be a transformation object, found {_kind_of(t)}.")
            continue
        typ = t.get("type")
        if not isinstance(typ, str):
            ctx.error(
                _p(pj, "type"),
                f"must be a string naming the transformation, found {_kind_of(typ)}.",
            )
        elif typ in ("scale", "translation"):
            _check_vector(t, typ, ctx, pj, n_axes)
        for key in ("input", "output"):
            if key in t and not isinstance(t[key], str):
                ctx.error(_p(pj, key), f"must be a string, found {_kind_of(t[key])}.")
