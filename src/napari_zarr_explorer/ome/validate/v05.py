"""OME-NGFF 0.5: the metadata of 0.4 in an ``ome`` object of ``zarr.json`` (Zarr v3).

The sections keep the 0.4 rules; only the layout and the version field changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from napari_zarr_explorer.ome.validate import v04
from napari_zarr_explorer.ome.validate.common import _check_multiscales_list, _check_sections, _Ctx

__all__ = ["check_container", "check_multiscales"]


def check_multiscales(value: Any, ctx: _Ctx, ptr: str) -> None:
    """0.5 ``multiscales``: as in 0.4."""
    _check_multiscales_list(value, ctx, ptr, _check_multiscale)


def _check_multiscale(m: dict[str, Any], ctx: _Ctx, p: str) -> None:
    v04._check_multiscale(m, ctx, p, "0.5")


def check_container(ome: Mapping[str, Any], ctx: _Ctx, base: str) -> None:
    """Check the sections of a 0.5 ``ome`` object at JSON pointer *base*."""
    _check_sections(ome, ctx, base, check_multiscales)
