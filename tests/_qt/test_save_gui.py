"""Saving from a real napari viewer: the npe2 writer and the save dock, reopened by our reader."""

from __future__ import annotations

import numpy as np
import pytest

from napari_zarr_explorer.layers import open_layers


def _scene(viewer):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 4000, size=(2, 64, 96), dtype=np.uint16)
    viewer.add_image(
        img,
        channel_axis=0,
        name=["nuclei", "membrane"],
        colormap=["green", "magenta"],
        contrast_limits=[(0, 3000), (100, 2000)],
        scale=(0.5, 0.25),
        translate=(10.0, -4.0),
    )
    labels = viewer.add_labels(
        np.zeros((64, 96), dtype=np.int32), name="cells", scale=(0.5, 0.25), translate=(10.0, -4.0)
    )
    # edit the labels the way a user does: paint, then fill
    labels.paint((10, 10), 3, refresh=True)
    labels.data[40:50, 60:80] = 7
    labels.refresh()
    return labels


def _check_reopened(path, labels_data):
    layers = open_layers(str(path))
    kinds = [t for _, _, t in layers]
    assert kinds == ["image", "labels"]
    _, kw, _ = layers[0]
    assert kw["name"] == ["nuclei", "membrane"]
    assert kw["colormap"] == ["green", "magenta"]
    assert kw["contrast_limits"] == [[0.0, 3000.0], [100.0, 2000.0]]
    assert kw["scale"] == (0.5, 0.25)
    assert kw["translate"] == (10.0, -4.0)
    ldata, lkw, _ = layers[1]
    assert lkw["name"] == "cells"
    assert lkw["scale"] == (0.5, 0.25) and lkw["translate"] == (10.0, -4.0)
    got = np.asarray(ldata[0] if isinstance(ldata, list) else ldata)
    np.testing.assert_array_equal(got, labels_data)
    # the colours napari showed are the colours stored
    assert set(lkw["colormap"]) >= {3, 7}
    return lkw["colormap"]


def test_save_selected_layers_through_the_writer_contribution(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    labels = _scene(viewer)
    expected = {v: [round(c * 255) for c in labels.colormap.map(np.array([v]))[0]] for v in (3, 7)}
    out = tmp_path / "scene.ome.zarr"
    written = viewer.layers.save(str(out), plugin="napari-zarr-explorer")
    assert written == [str(out)]
    cmap = _check_reopened(out, labels.data)
    for v in (3, 7):
        assert [round(c * 255) for c in cmap[v]] == expected[v]
    # reopened in napari: same placement, and the labels layer shows the same colours
    viewer.layers.clear()
    viewer.open(str(out), plugin="napari-zarr-explorer")
    names = [layer.name for layer in viewer.layers]
    assert names == ["nuclei", "membrane", "cells"]
    cells = viewer.layers["cells"]
    np.testing.assert_allclose(cells.scale, (0.5, 0.25))
    np.testing.assert_allclose(cells.translate, (10.0, -4.0))
    for v in (3, 7):
        got = [round(c * 255) for c in cells.colormap.map(np.array([v]))[0]]
        assert got == expected[v]


def test_saving_again_replaces_the_store_safely(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    labels = _scene(viewer)
    out = tmp_path / "scene.ome.zarr"
    viewer.layers.save(str(out), plugin="napari-zarr-explorer")
    labels.data[0:5, 0:5] = 9
    viewer.layers.save(str(out), plugin="napari-zarr-explorer")
    _check_reopened(out, labels.data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.ome.zarr"]


def test_a_single_labels_layer_becomes_a_label_image(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    labels = _scene(viewer)
    viewer.layers.selection = {labels}
    out = tmp_path / "cells.ome.zarr"
    viewer.layers.save(str(out), selected=True, plugin="napari-zarr-explorer")
    layers = open_layers(str(out))
    assert [t for _, _, t in layers] == ["labels"]
    np.testing.assert_array_equal(np.asarray(layers[0][0]), labels.data)


@pytest.mark.parametrize("ome_version", ["0.5", "0.4"])
def test_save_dock_writes_and_reports(make_napari_viewer, qtbot, tmp_path, ome_version):
    from napari_zarr_explorer._qt.save import SaveWidget

    viewer = make_napari_viewer()
    labels = _scene(viewer)
    widget = SaveWidget(viewer)
    form = widget.form
    out = tmp_path / "dock.ome.zarr"
    form.path.value = str(out)
    form.ome_version.value = ome_version
    form.compressor.value = "blosc-zstd"
    form.level.value = 5
    assert "1, 256" in form.chunks.value or "64, 96" in form.chunks.value
    assert form.estimate.value  # the estimate is shown
    with qtbot.waitSignal(widget.finished, timeout=120_000):
        form.save_button.clicked.emit()
    assert "OK" in widget.status.value
    _check_reopened(out, labels.data)


def test_reopened_multiscale_layers_save_again_with_their_levels(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    labels = _scene(viewer)
    labels.data = np.pad(labels.data, ((0, 1100), (0, 0)))  # tall enough for a second level
    for name in ("nuclei", "membrane"):
        layer = viewer.layers[name]
        layer.data = np.pad(layer.data, ((0, 1100), (0, 0)))
    first = tmp_path / "first.ome.zarr"
    viewer.layers.save(str(first), plugin="napari-zarr-explorer")
    viewer.layers.clear()
    viewer.open(str(first), plugin="napari-zarr-explorer")
    assert viewer.layers["cells"].multiscale
    second = tmp_path / "second.ome.zarr"
    viewer.layers.save(str(second), plugin="napari-zarr-explorer")
    a, b = open_layers(str(first)), open_layers(str(second))
    for (d1, k1, _), (d2, k2, _) in zip(a, b, strict=True):
        assert len(d1) == len(d2) == 2
        for x, y in zip(d1, d2, strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        for key in ("name", "scale", "translate", "colormap"):
            assert k1.get(key) == k2.get(key), key


def test_save_dock_preview_names_the_level_before_an_output_is_chosen(make_napari_viewer):
    from napari_zarr_explorer._qt.save import SaveWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64), np.uint16), name="cells")
    form = SaveWidget(viewer).form
    assert not str(form.path.value or "").strip("."), "no output typed yet"
    form.chunks.value = "1, 32, 32"
    form.shards.value = "1, 48, 48"
    assert str(form.estimate.value).startswith("Level '0': shard shape (1, 48, 48)"), (
        form.estimate.value
    )


def test_save_dock_errors_are_sentences_in_the_docks_words(make_napari_viewer, qtbot, tmp_path):
    from qtpy.QtCore import Qt

    from napari_zarr_explorer._qt.save import SaveWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64), np.uint16), name="cells")
    widget = SaveWidget(viewer)
    form = widget.form
    form.path.value = str(tmp_path / "cells.ome.zarr")
    chunks = form.chunks.native
    chunks.selectAll()
    qtbot.keyClicks(chunks, "a,b")
    with qtbot.waitSignal(widget.finished, timeout=120_000):
        qtbot.mouseClick(form.save_button.native, Qt.MouseButton.LeftButton)
    assert widget.status.value.startswith("Chunks 'a,b' is not"), widget.status.value
    assert str(form.estimate.value).startswith("Chunks 'a,b' is not"), form.estimate.value
    # saving over an existing store names the dock's check box, not the writer's keyword
    chunks.selectAll()
    qtbot.keyClicks(chunks, "64, 64")
    for _ in range(2):  # the second time the store exists
        with qtbot.waitSignal(widget.finished, timeout=120_000):
            qtbot.mouseClick(form.save_button.native, Qt.MouseButton.LeftButton)
    status = widget.status.value
    assert status.startswith("The output") and status.endswith("or tick Overwrite."), status
    assert "--" not in status and "overwrite=True" not in status


def _arrived(server, pattern: str) -> None:
    """Wait until a request matching *pattern* reached *server* (fails on a hang only)."""
    import fnmatch
    import time

    deadline = time.monotonic() + 120
    while not any(fnmatch.fnmatchcase(p, pattern) for p in list(server.arrived)):
        assert time.monotonic() < deadline, f"no request for {pattern}: {server.arrived}"
        time.sleep(0.01)


# the last plane of every level: napari shows the middle one, so only a save asks for these
HELD = "img.ome.zarr/*/c/2/*"


def _remote_layer(viewer, http_server, tmp_path, levels):
    from napari_zarr_explorer import testing

    src = testing.write_ome_image(
        tmp_path / "img.ome.zarr",
        shape=(3, 256, 256),
        axes="zyx",
        levels=levels,
        chunks=(1, 32, 32),
    )
    url = http_server.publish(src, "img.ome.zarr")
    viewer.open(url, plugin="napari-zarr-explorer")
    assert viewer.dims.current_step[0] == 1
    np.asarray(viewer.layers[0].data[0][1])  # what napari shows is read (and cached) first
    http_server.clear_log()


def _save_and_cancel_while_held(widget, qtbot, http_server, out):
    widget.form.path.value = str(out)
    http_server.hold(HELD)
    try:
        widget.form.save_button.clicked.emit()
        _arrived(http_server, HELD)  # the save is reading: a task waits for its answer
        with qtbot.waitSignal(widget.finished, timeout=120_000):
            widget.form.cancel_button.clicked.emit()
            http_server.release()
    finally:
        http_server.release()


def test_save_dock_cancelled_mid_save_says_nothing_was_kept(
    make_napari_viewer, qtbot, http_server, tmp_path
):
    from napari_zarr_explorer._qt.save import SaveWidget

    viewer = make_napari_viewer()
    # cancelled while its first reads wait for the server: the save is far from done
    _remote_layer(viewer, http_server, tmp_path, levels=7)
    widget = SaveWidget(viewer)
    out = tmp_path / "out.ome.zarr"
    _save_and_cancel_while_held(widget, qtbot, http_server, out)
    assert widget.status.value == "Cancelled: nothing was kept."
    assert not out.exists()
    assert widget.form.save_button.enabled and not widget.form.cancel_button.enabled


def test_the_chunk_maps_overlays_are_not_offered_for_saving(make_napari_viewer):
    """The Chunk map's own layers (the map and the grid) are not data to save: not listed, not
    selected, so they never make the layers 'differ in shape'."""
    from napari_zarr_explorer._qt._provenance import OVERLAY_KEY
    from napari_zarr_explorer._qt.save import SaveWidget

    viewer = make_napari_viewer()
    _scene(viewer)
    viewer.add_image(np.zeros((4, 4), "float32"), name="x chunk map", metadata={OVERLAY_KEY: True})
    widget = SaveWidget(viewer)
    names = [layer.name for layer in widget.form.selected_layers()]
    assert "x chunk map" not in names and names, names
    assert "x chunk map" not in widget._layers()
    assert "differ in shape" not in str(widget.form.estimate.value)
