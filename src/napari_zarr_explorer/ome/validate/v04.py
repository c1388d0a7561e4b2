"""OME-NGFF 0.4: metadata at the top level of ``.zattrs`` (Zarr v2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from napari_zarr_explorer.ome.validate.common import (
    _OLD_VERSIONS,
    _SECTIONS,
    _check_axes,
    _check_datasets,
    _check_level_transforms,
    _check_multiscales_list,
    _check_sections,
    _Ctx,
    _kind_of,
    _kinds,
    _OmeInfo,
    _p,
)

__all__ = ["check_multiscales", "judge"]


def judge(attrs: Mapping[str, Any], ctx: _Ctx) -> _OmeInfo:
    """Apply the 0.4 rules to attributes without an ``ome`` object; messages go to *ctx*."""
    present = [k for k in _SECTIONS if k in attrs]
    info = _OmeInfo()
    if not present:
        return info
    info.container, info.base, info.kinds = attrs, "", _kinds(attrs)
    if ctx.zarr_format == 3:
        ctx.error(
            _p("", present[0]),
            "OME-NGFF metadata at the top level of the attributes is the 0.4 layout, which is "
            "defined for Zarr v2 (.zattrs) only; in a Zarr v3 zarr.json it belongs in an 'ome' "
            'object with "version": "0.5".',
        )
    fields = _version_fields_04(attrs)
    old: list[str] = []
    for ptr, value in fields:
        if not isinstance(value, str):
            ctx.error(ptr, f'must be the string "0.4", found {_kind_of(value)}.')
        elif value == "0.4":
            continue
        elif value in _OLD_VERSIONS:
            old.append(value)
            ctx.error(
                ptr,
                f"OME-NGFF {value} is not validated here (0.4, 0.5 and the 0.6 draft are); "
                "convert the metadata to a current version.",
            )
        elif value.startswith(("0.5", "0.6")):
            ctx.error(
                ptr,
                f"OME-NGFF {value} metadata belongs in an 'ome' object of zarr.json (Zarr v3), "
                "not at the top level of the attributes.",
            )
        else:
            ctx.error(ptr, f'unknown OME-NGFF version {value!r}; expected "0.4".')
    if fields and len(old) == len(fields):
        info.version = old[0]
        return info
    info.version, info.family = "0.4", "0.4"
    versioned = _versioned_sections_04(attrs)
    if ctx.strict:
        for ptr, section in versioned:
            if "version" not in section:
                ctx.missing(_p(ptr, "version"), 'the strict schema requires "version": "0.4"')
    elif versioned and not fields:
        ctx.warn("", 'no "version" is given: the metadata was judged as OME-NGFF 0.4.')
    _check_sections(attrs, ctx, "", check_multiscales)
    return info


def _version_fields_04(attrs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [
        (_p(ptr, "version"), section["version"])
        for ptr, section in _versioned_sections_04(attrs)
        if "version" in section
    ]


def _versioned_sections_04(attrs: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    out: list[tuple[str, Mapping[str, Any]]] = []
    ms = attrs.get("multiscales")
    if isinstance(ms, list):
        out.extend((_p("", "multiscales", i), m) for i, m in enumerate(ms) if isinstance(m, dict))
    for key in ("plate", "well", "image-label"):
        if isinstance(attrs.get(key), dict):
            out.append((_p("", key), attrs[key]))
    return out


def check_multiscales(value: Any, ctx: _Ctx, ptr: str) -> None:
    """0.4 ``multiscales``: ``axes``, datasets with one scale (and a translation) each."""
    _check_multiscales_list(value, ctx, ptr, _check_multiscale)


def _check_multiscale(m: dict[str, Any], ctx: _Ctx, p: str, family: str = "0.4") -> None:
    if "axes" not in m:
        ctx.missing(_p(p, "axes"), "the list of axes of the image")
        n_axes = None
    else:
        n_axes = _check_axes(m["axes"], ctx, _p(p, "axes"))
    if "datasets" not in m:
        ctx.missing(_p(p, "datasets"), "the list of resolution levels (datasets)")
    else:
        _check_datasets(m["datasets"], ctx, _p(p, "datasets"), n_axes, family)
    if "coordinateTransformations" in m:
        ct_ptr = _p(p, "coordinateTransformations")
        _check_level_transforms(m["coordinateTransformations"], ctx, ct_ptr, n_axes, family)
