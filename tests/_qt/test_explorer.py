"""The Explorer dock: tree, panels, opening nodes as layers, selection sync, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_zarr_explorer._qt.explorer import TIMES, ExplorerWidget


def dims(text: str) -> str:
    """``"3,32"`` as the explorer shows it (with multiplication signs)."""
    return TIMES.join(text.split(","))


def _explorer(viewer, qtbot, url) -> ExplorerWidget:
    widget = ExplorerWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Explorer")
    widget.open(str(url))
    qtbot.waitUntil(lambda: widget.report is not None and not widget.busy, timeout=30000)
    return widget


def _kinds(widget: ExplorerWidget) -> dict[str, str]:
    return {p: n.kind for p, n in widget.nodes.items()}


def test_sample_tree_and_panels(make_napari_viewer, qtbot, sample: Path, screenshot_dir: Path):
    viewer = make_napari_viewer(show=True)
    widget = _explorer(viewer, qtbot, sample)
    kinds = _kinds(widget)
    assert kinds[""] == "image"
    assert kinds["0"] == "level" and kinds["2"] == "level"
    assert kinds["labels"] == "labels"
    assert kinds["labels/cells"] == "label"
    assert widget.selected_path == ""
    # array panel of a sharded level
    assert widget.select_path("0")
    text = widget.array_view.toPlainText()
    assert "Shards" in text and dims("1,32,512,512") in text and "Compression ratio" in text
    codec_names = [
        widget.codec_tree.topLevelItem(i).text(0)
        for i in range(widget.codec_tree.topLevelItemCount())
    ]
    assert any("sharding_indexed" in n for n in codec_names)
    sharding = next(
        widget.codec_tree.topLevelItem(i)
        for i in range(widget.codec_tree.topLevelItemCount())
        if "sharding" in widget.codec_tree.topLevelItem(i).text(0)
    )
    children = [sharding.child(i).text(0) for i in range(sharding.childCount())]
    assert "inner codecs" in children and "index codecs" in children
    # OME panel of the image
    widget.select_path("")
    ome = widget.ome_view.toPlainText()
    assert "Levels" in ome and "Channels" in ome and "Axes" in ome
    # attributes are a searchable tree
    tree = widget.attributes_tree
    assert tree is not None and tree.tree.topLevelItemCount() >= 1
    tree.filter.setText("multiscales")
    widget.grab().save(str(screenshot_dir / "explorer.png"))


def test_bad_store_notifies_and_stays_usable(
    make_napari_viewer, qtbot, tmp_path, sample, notifications
):
    viewer = make_napari_viewer()
    widget = ExplorerWidget(viewer)
    viewer.window.add_dock_widget(widget)
    missing = tmp_path / "nothing-here.zarr"
    widget.open(str(missing))
    qtbot.waitUntil(lambda: not widget.busy and bool(notifications), timeout=20000)
    assert any("nothing-here.zarr" in m for m in notifications)
    assert widget.open_button.isEnabled()
    # a corrupt metadata document
    bad = tmp_path / "bad.zarr"
    bad.mkdir()
    (bad / "zarr.json").write_text("{not json")
    notifications.clear()
    widget.open(str(bad))
    qtbot.waitUntil(lambda: not widget.busy, timeout=20000)
    # still works on a good store afterwards
    widget.open(str(sample))
    qtbot.waitUntil(lambda: widget.report is not None and not widget.busy, timeout=30000)
    assert "labels/cells" in widget.nodes


@pytest.fixture
def plain_v2(tmp_path) -> Path:
    import numpy as np

    from napari_zarr_explorer.testing import write_array

    data = np.arange(60 * 80, dtype="uint16").reshape(60, 80)
    return write_array(tmp_path / "plain_v2.zarr", data, zarr_format=2, chunks=(16, 32))


@pytest.fixture
def sharded_v3(tmp_path) -> Path:
    import numpy as np

    from napari_zarr_explorer.testing import write_array

    data = np.arange(4 * 64 * 64, dtype="uint16").reshape(4, 64, 64)
    return write_array(
        tmp_path / "sharded_v3.zarr", data, zarr_format=3, chunks=(1, 16, 16), shards=(2, 32, 32)
    )


def test_plain_v2_array(make_napari_viewer, qtbot, plain_v2):
    viewer = make_napari_viewer()
    widget = _explorer(viewer, qtbot, plain_v2)
    assert _kinds(widget) == {"": "array"}
    text = widget.array_view.toPlainText()
    assert dims("60,80") in text and dims("16,32") in text and "Shards" not in text
    names = [
        widget.codec_tree.topLevelItem(i).text(0)
        for i in range(widget.codec_tree.topLevelItemCount())
    ]
    assert names, "a v2 array shows its compressor (and implied byte order)"
    widget.open_node("")
    qtbot.waitUntil(lambda: len(viewer.layers) == 1 and not widget.busy, timeout=20000)
    assert viewer.layers[0].data.shape == (60, 80)


def test_sharded_v3_array(make_napari_viewer, qtbot, sharded_v3):
    viewer = make_napari_viewer()
    widget = _explorer(viewer, qtbot, sharded_v3)
    assert _kinds(widget) == {"": "array"}
    text = widget.array_view.toPlainText()
    assert dims("2,32,32") in text and "Shard grid" in text
    assert "8 shards of 8 chunks" in text.replace("\n", " ")
    top = [widget.codec_tree.topLevelItem(i) for i in range(widget.codec_tree.topLevelItemCount())]
    sharding = next(t for t in top if "sharding_indexed" in t.text(0))
    sub = {sharding.child(i).text(0): sharding.child(i) for i in range(sharding.childCount())}
    assert sub["inner chunk shape"].text(1) == dims("1,16,16")
    assert sub["index codecs"].childCount() >= 1


def test_plate_tree_and_field_opening(make_napari_viewer, qtbot, tmp_path):
    from napari_zarr_explorer.testing import write_plate

    plate = write_plate(tmp_path / "plate.zarr", rows=2, cols=2, fields=2)
    viewer = make_napari_viewer()
    widget = _explorer(viewer, qtbot, plate)
    kinds = _kinds(widget)
    assert kinds[""] == "plate"
    wells = [p for p, k in kinds.items() if k == "well"]
    fields = [p for p, k in kinds.items() if k == "field"]
    assert len(wells) == 4 and len(fields) == 8
    item = widget._items[fields[-1]]
    assert item.parent() is widget._items[wells[-1]]
    # open one field of one well
    widget.select_path(fields[-1])
    widget.open_selected()
    qtbot.waitUntil(lambda: len(viewer.layers) > 0 and not widget.busy, timeout=20000)
    md = viewer.layers[0].metadata
    assert md["node_path"] == fields[-1]
    # the plate opens as one mosaic
    n = len(viewer.layers)
    widget.open_node("")
    qtbot.waitUntil(lambda: len(viewer.layers) > n and not widget.busy, timeout=20000)


def test_bioformats2raw_series(make_napari_viewer, qtbot, tmp_path):
    from napari_zarr_explorer.testing import write_bioformats2raw

    store = write_bioformats2raw(tmp_path / "b2r.zarr", series=2)
    viewer = make_napari_viewer()
    widget = _explorer(viewer, qtbot, store)
    kinds = _kinds(widget)
    assert kinds[""] == "bioformats2raw"
    assert kinds["0"] == "series" and kinds["1"] == "series"
    widget.open_node("1")
    qtbot.waitUntil(lambda: len(viewer.layers) > 0 and not widget.busy, timeout=20000)
    assert all(layer.metadata["node_path"] == "1" for layer in viewer.layers)


def test_open_pyramid_level_alone(make_napari_viewer, qtbot, sample):
    viewer = make_napari_viewer()
    widget = _explorer(viewer, qtbot, sample)
    widget.open_node("1")
    qtbot.waitUntil(lambda: len(viewer.layers) == 3 and not widget.busy, timeout=20000)
    layer = viewer.layers[0]
    assert not layer.multiscale
    assert layer.data.shape == (32, 256, 256)
    full = ExplorerWidget  # noqa: F841 - keep the import used
    # level 1 is twice as coarse in y and x as level 0
    widget.open_node("")
    qtbot.waitUntil(lambda: len(viewer.layers) >= 7 and not widget.busy, timeout=20000)
    level0 = next(lay for lay in viewer.layers if lay.multiscale)
    assert layer.scale[-1] == pytest.approx(2 * level0.scale[-1])
    assert layer.scale[0] == pytest.approx(level0.scale[0])
    # the explorer follows the selection in the layer list
    viewer.layers.selection.active = layer
    assert widget.selected_path == "1"
    cells = next(lay for lay in viewer.layers if lay.name == "cells")
    viewer.layers.selection.active = cells
    assert widget.selected_path == "labels/cells"
    viewer.layers.selection.active = level0
    assert widget.selected_path == ""


def test_recent_stores_remembered(make_napari_viewer, qtbot, sample, plain_v2):
    viewer = make_napari_viewer()
    widget = _explorer(viewer, qtbot, plain_v2)
    widget.open(str(sample))
    qtbot.waitUntil(lambda: not widget.busy and widget.url == str(sample), timeout=30000)
    again = ExplorerWidget(viewer)
    assert again.recent_stores()[:2] == [str(sample), str(plain_v2)]
    # choosing one in the Recent menu opens it
    action = again.recent_menu.actions()[1]
    action.trigger()
    qtbot.waitUntil(lambda: not again.busy and again.url == str(plain_v2), timeout=30000)
    assert again.open_form.location.value == str(plain_v2)
    again.close()
    again.deleteLater()


def test_validation_messages_shown(make_napari_viewer, qtbot, tmp_path):
    import json

    from napari_zarr_explorer.testing import write_ome_image

    store = write_ome_image(tmp_path / "bad_axes.ome.zarr", shape=(2, 8, 32, 32), levels=2)
    doc = json.loads((store / "zarr.json").read_text())
    del doc["attributes"]["ome"]["multiscales"][0]["axes"]
    (store / "zarr.json").write_text(json.dumps(doc))
    viewer = make_napari_viewer()
    widget = _explorer(viewer, qtbot, store)
    qtbot.waitUntil(lambda: widget.validation is not None, timeout=20000)
    widget.select_path("")
    rows = [
        (
            widget.validation_tree.topLevelItem(i).text(0),
            widget.validation_tree.topLevelItem(i).text(1),
        )
        for i in range(widget.validation_tree.topLevelItemCount())
    ]
    assert any("not valid" in text for _, text in rows)
    assert any("axes" in text for _, text in rows)
    assert widget.tabs.tabText(4).startswith("Validation (")
