"""Recompress, rechunk, reshard and convert Zarr and OME-Zarr data, verified and resumable.

The engine plans the output (every array of an array, group or OME hierarchy), writes every
output shard (or chunk) whole and once from one task, reads it back to verify it, keeps a
progress journal so an interrupted run can be resumed, and can swap the verified copy in for the
original while keeping a backup. See :func:`recompress`.
"""

from __future__ import annotations

from napari_zarr_explorer.recompress._engine import (
    JOURNAL_NAME,
    default_output,
    plan_recompress,
    recompress,
    store_root,
)
from napari_zarr_explorer.recompress._plan import (
    MARKER_KEY,
    ArrayPlan,
    Plan,
    fit_shape,
    suggest_layout,
    suggest_shards,
)
from napari_zarr_explorer.recompress._progress import RichProgress
from napari_zarr_explorer.recompress._report import ArrayResult, ProgressEvent, RecompressReport

__all__ = [
    "JOURNAL_NAME",
    "MARKER_KEY",
    "ArrayPlan",
    "ArrayResult",
    "Plan",
    "ProgressEvent",
    "RecompressReport",
    "RichProgress",
    "default_output",
    "fit_shape",
    "plan_recompress",
    "recompress",
    "store_root",
    "suggest_layout",
    "suggest_shards",
]
