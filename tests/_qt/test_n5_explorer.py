"""An N5 container in the Explorer dock: tree, codec panel, opened as layers at its scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer._qt.explorer import ExplorerWidget

z5py = pytest.importorskip("z5py")


def test_n5_pyramid_in_the_explorer(make_napari_viewer, qtbot, tmp_path: Path) -> None:
    f = z5py.File(str(tmp_path / "bdv.n5"), mode="a", use_zarr_format=False)
    g = f.create_group("setup0")
    base = (np.arange(8 * 64 * 64) % 4000).astype("uint16").reshape(8, 64, 64)
    for i in range(2):
        ds = g.create_dataset(
            f"s{i}", data=base[:, :: 2**i, :: 2**i], chunks=(4, 32, 32), compression="gzip"
        )
        ds.attrs["downsamplingFactors"] = [2**i, 2**i, 1]
    g.attrs["pixelResolution"] = {"dimensions": [0.5, 0.5, 2.0], "unit": "um"}
    viewer = make_napari_viewer()
    widget = ExplorerWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Explorer")
    widget.open(str(tmp_path / "bdv.n5"))
    qtbot.waitUntil(lambda: widget.report is not None and not widget.busy, timeout=30000)
    kinds = {p: n.kind for p, n in widget.nodes.items()}
    assert kinds["setup0"] == "image" and kinds["setup0/s0"] == "level"
    assert widget.select_path("setup0/s1")
    names = [
        widget.codec_tree.topLevelItem(i).text(0)
        for i in range(widget.codec_tree.topLevelItemCount())
    ]
    assert len(names) == 1 and "n5" in names[0]

    def texts(item):
        out = [item.text(c) for c in range(item.columnCount())]
        for i in range(item.childCount()):
            out += texts(item.child(i))
        return out

    assert any("gzip" in t for t in texts(widget.codec_tree.topLevelItem(0)))
    widget.open_node("setup0")
    qtbot.waitUntil(lambda: len(viewer.layers) == 1 and not widget.busy, timeout=20000)
    layer = viewer.layers[0]
    assert layer.multiscale
    np.testing.assert_allclose(layer.scale, (2.0, 0.5, 0.5))
    np.testing.assert_allclose(layer.data_to_world((1, 10, 20)), (2.0, 5.0, 10.0))
