"""Recompress, rechunk, reshard and convert Zarr and OME-Zarr data, verified and resumable.

The engine plans the output (every array of an array, group or OME hierarchy), writes every
output shard (or chunk) whole and once from one task, reads it back to verify it, keeps a
progress journal so an interrupted run can be resumed, and can swap the verified copy in for the
original while keeping a backup. See :func:`recompress`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from napari_zarr_explorer.recompress._engine import JOURNAL_NAME, plan_recompress, recompress
from napari_zarr_explorer.recompress._plan import MARKER_KEY, ArrayPlan, Plan, suggest_layout
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
    "plan_recompress",
    "recompress",
    "suggest_layout",
]


class _CallableModule(types.ModuleType):
    """The ``recompress`` package, callable as :func:`recompress`.

    ``napari_zarr_explorer.recompress`` is both this subpackage and the public function: once
    any module imports the subpackage first (``save`` does), the import system sets the
    package attribute to the module, so the module must behave as the function.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> RecompressReport:
        return recompress(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
