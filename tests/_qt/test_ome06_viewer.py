"""An OME-NGFF 0.6 scene opened in a real napari viewer: pixels land where the scene says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ngff06_data import two_image_scene

PLUGIN = "napari-zarr-explorer"


def test_scene_in_viewer_world_positions(make_napari_viewer, tmp_path: Path) -> None:
    root = tmp_path / "scene.ome.zarr"
    data = two_image_scene(root)
    viewer = make_napari_viewer()
    viewer.open(str(root), plugin=PLUGIN)
    layers = {layer.metadata["node_path"]: layer for layer in viewer.layers}
    assert set(layers) == {"imgA", "imgB"}
    a, b = layers["imgA"], layers["imgB"]
    assert a.data_to_world((3, 5)) == pytest.approx([101.5, 2.5])
    assert b.data_to_world((3, 5)) == pytest.approx([-11.0, 57.0])
    assert b.data_to_world((0, 0)) == pytest.approx([-1.0, 51.0])
    # the inverse: the world point (-11, 57) is pixel (3, 5) of imgB, which holds its value
    pixel = np.round(b.world_to_data((-11.0, 57.0))).astype(int)
    assert pixel.tolist() == [3, 5]
    level0 = b.data[0] if b.multiscale else b.data
    assert int(np.asarray(level0[tuple(pixel)])) == int(data["imgB"]["s0"][3, 5])
    # the rotated image's extent in the world: y from -1 - 31*2 to -1, x from 51 to 51 + 15*2
    ext = b.extent.world
    assert ext[0].tolist() == pytest.approx([-1 - 2 * 31, 51])
    assert ext[1].tolist() == pytest.approx([-1, 51 + 2 * 15])


def test_explorer_shows_coordinate_systems_and_transforms(
    make_napari_viewer, qtbot, tmp_path: Path
) -> None:
    from napari_zarr_explorer._qt.explorer import ExplorerWidget

    root = tmp_path / "scene.ome.zarr"
    two_image_scene(root)
    viewer = make_napari_viewer()
    widget = ExplorerWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Explorer")
    widget.open(str(root))
    qtbot.waitUntil(lambda: widget.report is not None and not widget.busy, timeout=30000)
    assert widget.select_path("")
    text = widget.ome_view.toPlainText()
    assert "Coordinate systems" in text and "Coordinate transformations" in text
    assert "imgB#physical" in text and "rotation [[0, -1], [1, 0]]" in text
    assert widget.select_path("imgA")
    text = widget.ome_view.toPlainText()
    assert "scale [0.5, 0.5]" in text
