"""Drag-and-drop, File > Open, the Explorer's field and the sample all give the same layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qtkeys import type_text
from qtpy.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from qtpy.QtGui import QDragEnterEvent, QDropEvent
from qtpy.QtWidgets import QApplication

from napari_zarr_explorer._qt._provenance import is_overlay
from napari_zarr_explorer._qt.explorer import ExplorerWidget

PLUGIN = "napari-zarr-explorer"


def _signature(viewer) -> list[tuple]:
    out = []
    for layer in viewer.layers:
        if is_overlay(layer):
            continue
        data = layer.data if layer.multiscale else [layer.data]
        out.append(
            (
                type(layer).__name__,
                layer.name,
                tuple(tuple(d.shape) for d in data),
                tuple(np.round(layer.scale, 6)),
                tuple(np.round(layer.translate, 6)),
                getattr(layer, "colormap", None).name
                if hasattr(layer, "contrast_limits")
                else None,
                tuple(np.round(layer.contrast_limits, 3))
                if hasattr(layer, "contrast_limits")
                else None,
                layer.visible,
                layer.metadata.get("node_path"),
            )
        )
    return out


def _drop(viewer, path: Path) -> None:
    """Send a real drag-enter and drop with the folder's URL to the viewer's canvas area."""
    qt_viewer = viewer.window._qt_viewer
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(
        QPoint(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(qt_viewer, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(qt_viewer, drop)


@pytest.fixture
def prefer_this_reader():
    """What a user gets after ticking 'remember' in napari's reader choice for *.zarr."""
    from napari.settings import get_settings

    settings = get_settings()
    # napari matches folders with a trailing separator
    settings.plugins.extension2reader = {**settings.plugins.extension2reader, "*.zarr/": PLUGIN}


def test_drop_open_explorer_and_sample_give_the_same_layers(
    make_napari_viewer, qtbot, sample, prefer_this_reader, screenshot_dir
):
    viewer = make_napari_viewer(show=True)
    # 1. drag-and-drop
    _drop(viewer, sample)
    qtbot.waitUntil(lambda: len(viewer.layers) > 0, timeout=20000)
    dropped = _signature(viewer)
    assert [s[0] for s in dropped].count("Labels") == 1
    assert sum(1 for s in dropped if s[0] == "Image") == 3
    viewer.screenshot(str(screenshot_dir / "dropped.png"), canvas_only=False, flash=False)
    viewer.layers.clear()
    # 2. File > Open (what the menu calls once the folder is chosen)
    viewer.window._qt_viewer._qt_open([str(sample)], stack=False)
    assert _signature(viewer) == dropped
    viewer.layers.clear()
    # 3. the Explorer's field, then "Open as layer" on the root node
    widget = ExplorerWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.location_edit.clear()
    type_text(qtbot, widget.location_edit, str(sample))
    widget.open_button.click()
    qtbot.waitUntil(lambda: widget.report is not None and not widget.busy, timeout=30000)
    widget.open_layer_button.click()
    qtbot.waitUntil(lambda: len(viewer.layers) == len(dropped) and not widget.busy, timeout=20000)
    assert _signature(viewer) == dropped
    viewer.layers.clear()
    # 4. File > Open Sample
    viewer.open_sample(PLUGIN, "ome-zarr-pyramid")
    assert _signature(viewer) == dropped


def test_drop_v2_array(make_napari_viewer, qtbot, tmp_path, prefer_this_reader):
    from napari_zarr_explorer.testing import write_array

    store = write_array(tmp_path / "plain.zarr", np.ones((20, 30), dtype="uint8"), zarr_format=2)
    viewer = make_napari_viewer()
    _drop(viewer, store)
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=20000)
    assert viewer.layers[0].data.shape == (20, 30)
