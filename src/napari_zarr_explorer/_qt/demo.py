"""Set up the demo window (sample + docks) and take window screenshots; used by ``demo``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["PLUGIN", "open_demo", "save_window_screenshot", "wait_idle"]

PLUGIN = "napari-zarr-explorer"


def _dock(viewer: napari.Viewer, name: str) -> Any:
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return widget


def _raise(widget: Any) -> None:
    from qtpy.QtWidgets import QDockWidget

    parent = widget.parent()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parent()
    if parent is not None:
        parent.raise_()


def wait_idle(widgets: list[Any], timeout: float = 60.0) -> None:
    """Process Qt events until none of *widgets* is busy (or *timeout* seconds passed)."""
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if not any(getattr(w, "busy", False) for w in widgets):
            break
        time.sleep(0.02)
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.01)


def open_demo(viewer: napari.Viewer, sample: Path) -> dict[str, Any]:
    """Open *sample* in *viewer* with the Explorer, Chunk map and Recompress docks.

    The sample's image node is selected in the Explorer and its first channel in the layer
    list, so the Chunk map shows its chunks and the Recompress dock acts on it.

    Returns
    -------
    dict
        The dock widgets by name (``"explorer"``, ``"chunk_map"``, ``"recompress"``).
    """
    viewer.open(str(sample), plugin=PLUGIN)
    viewer.reset_view()
    explorer = _dock(viewer, "Explorer")
    recompress = _dock(viewer, "Recompress")
    chunk_map = _dock(viewer, "Chunk map")
    explorer.open(str(sample))
    wait_idle([explorer])
    explorer.select_path("")
    images = [layer for layer in viewer.layers if layer.__class__.__name__ == "Image"]
    if images:
        viewer.layers.selection.active = images[0]
    wait_idle([explorer, chunk_map])
    _raise(explorer)  # the docks share one place as tabs; the Explorer in front
    viewer.reset_view()
    wait_idle([explorer, chunk_map])
    return {"explorer": explorer, "chunk_map": chunk_map, "recompress": recompress}


def save_window_screenshot(
    viewer: napari.Viewer, path: Path, widgets: list[Any] | None = None
) -> Path:
    """Wait for the docks to finish, then write a screenshot of the whole window to *path*."""
    wait_idle(widgets or [])
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    return path
