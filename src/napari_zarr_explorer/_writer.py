"""npe2 writer contributions: napari layers -> :func:`napari_zarr_explorer.writer.save`.

This module only converts what napari hands over (layer data and attributes) into the core
save call, and shows its progress in napari's activity panel. Saving to an existing Zarr store
replaces it through write, verify and swap (napari's file dialog has already asked whether to
overwrite); anything that is not a Zarr store is never replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["write_image", "write_labels", "write_layers"]


def _napari_progress() -> tuple[Callable[[Any], None], Callable[[], None]]:
    from napari.utils import progress

    state: dict[str, Any] = {"bar": None}

    def update(ev: Any) -> None:
        total = int(getattr(ev, "objects_total", 0) or 0)
        if total <= 0:
            return
        bar = state["bar"]
        if bar is None:
            bar = state["bar"] = progress(total=total, desc="Saving OME-Zarr")
        bar.n = min(int(ev.objects_done), total)
        bar.refresh()

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return update, close


def write_layers(path: str, layer_data: Sequence[tuple[Any, dict[str, Any], str]]) -> list[str]:
    """Save image and labels layers to *path* as OME-Zarr 0.5 (npe2 multi-layer writer).

    Parameters
    ----------
    path
        The folder to write (``*.zarr`` / ``*.ome.zarr``).
    layer_data
        ``(data, attributes, layer_type)`` of every layer to save.

    Returns
    -------
    list of str
        The saved store.
    """
    from napari_zarr_explorer.writer import save

    update, close = _napari_progress()
    try:
        report = save(list(layer_data), path, overwrite=True, progress=update)
    finally:
        close()
    return [str(report.destination)] if report.complete else []


def write_image(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save one image layer as an OME-Zarr image (npe2 single-layer writer)."""
    return write_layers(path, [(data, meta, "image")])


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save one labels layer as an OME-Zarr label image (npe2 single-layer writer)."""
    return write_layers(path, [(data, meta, "labels")])
