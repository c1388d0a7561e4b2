"""Which rules apply to an attributes document: the layout and version decide."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from napari_zarr_explorer.ome.validate import v04, v05, v06
from napari_zarr_explorer.ome.validate.common import (
    _OLD_VERSIONS,
    _SECTIONS,
    _Ctx,
    _kind_of,
    _kinds,
    _OmeInfo,
    _p,
)

__all__ = ["judge_attributes"]


def judge_attributes(attrs: Mapping[str, Any], ctx: _Ctx) -> _OmeInfo:
    """Apply the OME-NGFF rules to one attributes object; messages go to *ctx*."""
    if "ome" in attrs:
        return _judge_ome_layout(attrs, ctx)
    return v04.judge(attrs, ctx)


def _judge_ome_layout(attrs: Mapping[str, Any], ctx: _Ctx) -> _OmeInfo:
    info = _OmeInfo()
    ome = attrs["ome"]
    if not isinstance(ome, dict):
        ctx.error(
            "/ome", f"must be a JSON object holding the OME-NGFF metadata, found {_kind_of(ome)}."
        )
        return info
    info.container, info.base, info.kinds = ome, "/ome", _kinds(ome)
    if ctx.zarr_format == 2:
        ctx.error(
            "/ome",
            "an 'ome' object is the OME-NGFF 0.5 layout, defined for Zarr v3 (zarr.json) only; "
            "in Zarr v2 (.zattrs) use the 0.4 layout.",
        )
    version = ome.get("version")
    family = "0.5"
    if "version" not in ome:
        ctx.missing("/ome/version", 'the OME-NGFF version, e.g. "0.5"')
    elif not isinstance(version, str):
        ctx.error("/ome/version", f'must be a string such as "0.5", found {_kind_of(version)}.')
    elif version == "0.5":
        info.version = version
    elif version.startswith("0.6"):
        info.version, family = version, "0.6"
        if version not in ("0.6", "0.6rc0"):
            ctx.warn(
                "/ome/version",
                f"OME-NGFF {version} is a development draft: it is checked with the rules and "
                "the JSON schema of 0.6rc0.",
            )
    elif version == "0.4" or version in _OLD_VERSIONS:
        ctx.error(
            "/ome/version",
            f"OME-NGFF {version} does not use an 'ome' object: its metadata sits at the top level "
            "of .zattrs (Zarr v2).",
        )
        info.version = version
        return info
    else:
        ctx.error("/ome/version", f'unknown OME-NGFF version {version!r}; expected "0.5".')
        info.version = version
        return info
    info.family = family
    present = [k for k in (*_SECTIONS, *(("scene",) if family == "0.6" else ())) if k in ome]
    if not present:
        ctx.error(
            "/ome",
            "holds no OME-NGFF metadata: expected one of 'multiscales', 'image-label', 'labels', "
            "'plate', 'well', 'bioformats2raw.layout' or 'series'.",
        )
    for key in _SECTIONS:
        if key in attrs:
            ctx.warn(
                _p("", key),
                f"'{key}' at the top level is the 0.4 layout and is ignored next to an 'ome' "
                "object; move it into 'ome'.",
            )
    (v06 if family == "0.6" else v05).check_container(ome, ctx, "/ome")
    return info
