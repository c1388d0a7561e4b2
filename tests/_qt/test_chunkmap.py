"""The Chunk map dock: grid geometry in world coordinates, states, bytes, view and mouse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from napari.utils.interactions import mouse_move_callbacks

from napari_zarr_explorer._qt._common import camera_of
from napari_zarr_explorer._qt._provenance import PROVENANCE_KEY
from napari_zarr_explorer._qt.chunkmap import ChunkMapWidget


def _chunk_id_store(
    path: Path, *, shards: tuple[int, int] | None = None, fmt: int = 3
) -> np.ndarray:
    """A (40, 60) array whose pixels hold the id of their (10, 20) chunk; chunk (1, 2) missing."""
    data = np.zeros((40, 60), dtype="uint16")
    for i in range(4):
        for j in range(3):
            data[i * 10 : (i + 1) * 10, j * 20 : (j + 1) * 20] = 1 + i * 3 + j
    kwargs = {"shards": shards} if shards else {}
    arr = zarr.create_array(
        str(path),
        shape=data.shape,
        chunks=(10, 20),
        dtype="uint16",
        zarr_format=fmt,
        fill_value=0,
        **kwargs,
    )
    arr[:] = data
    if shards is None:
        key = path / ("c/1/2" if fmt == 3 else "1.2")
        key.unlink()
    return data


def _open_layer(viewer, path: Path, data: np.ndarray, scale, translate):
    from napari_zarr_explorer.pyramid import as_dask

    arr = as_dask(zarr.open_array(str(path), mode="r"), where=str(path))  # corrupt chunks as fill
    return viewer.add_image(
        arr,
        contrast_limits=(0, 13),
        name="ids",
        scale=scale,
        translate=translate,
        metadata={PROVENANCE_KEY: {"url": str(path), "path": "", "levels": [""]}},
    )


def _wait_map(qtbot, widget: ChunkMapWidget) -> None:
    qtbot.waitUntil(lambda: widget.cmap is not None and not widget.busy, timeout=20000)


@pytest.mark.parametrize("fmt", [2, 3], ids=["v2", "v3"])
def test_chunk_grid_lines_up_with_data(make_napari_viewer, qtbot, tmp_path, fmt, MouseEvent):
    viewer = make_napari_viewer()
    store = tmp_path / "ids.zarr"
    data = _chunk_id_store(store, fmt=fmt)
    scale, translate = (0.5, 2.0), (10.0, -7.0)
    layer = _open_layer(viewer, store, data, scale, translate)
    widget = ChunkMapWidget(viewer)
    viewer.window.add_dock_widget(widget)
    _wait_map(qtbot, widget)
    assert widget.overlay is not None
    overlay = widget.overlay
    assert overlay.data.shape == (4, 3)
    # the overlay pixel of chunk (2, 1) covers exactly the world extent of that chunk
    lo, hi = widget.level_geometry.world_bounds((10, 20), (2, 1))
    assert lo == pytest.approx([10 + 0.5 * (20 - 0.5), -7 + 2.0 * (20 - 0.5)])
    assert hi == pytest.approx([10 + 0.5 * (30 - 0.5), -7 + 2.0 * (40 - 0.5)])
    centre = [(a + b) / 2 for a, b in zip(lo, hi, strict=True)]
    assert layer.get_value(centre, world=True) == data[25, 30] == 1 + 2 * 3 + 1
    np.testing.assert_allclose(overlay.world_to_data(centre), [2, 1])
    # every data pixel maps (through the world) into the overlay pixel of its own chunk
    for i, j in [(0, 0), (9, 19), (10, 20), (39, 59), (25, 41)]:
        w = layer.data_to_world([i, j])
        np.testing.assert_array_equal(np.round(overlay.world_to_data(w)), [i // 10, j // 20])
    # state: chunk (1, 2) is missing
    assert overlay.data[1, 2] == 0
    assert overlay.data[0, 0] == 1
    assert "1 missing" in widget.summary_label.text()
    # mouse info names the key
    text = widget.chunk_info_at(layer.data_to_world([15, 45]))
    expected = "c/1/2" if fmt == 3 else "1.2"
    assert expected in text and "missing" in text
    # ... and so does the dock when the mouse moves there
    event = MouseEvent(type="mouse_move", position=tuple(layer.data_to_world([15, 45])))
    mouse_move_callbacks(viewer, event)
    assert expected in widget.mouse_label.text()
    widget.close()


def _images(viewer):
    return [layer for layer in viewer.layers if type(layer).__name__ == "Image"]


def _sample_viewer(make_napari_viewer, sample, **kwargs):
    viewer = make_napari_viewer(**kwargs)
    viewer.open(str(sample), plugin="napari-zarr-explorer")
    return viewer


def test_sample_nd_plane_follows_dims_slider(make_napari_viewer, qtbot, sample, screenshot_dir):
    viewer = _sample_viewer(make_napari_viewer, sample, show=True)
    channel1 = _images(viewer)[1]
    widget = ChunkMapWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.layers.selection.active = channel1
    _wait_map(qtbot, widget)
    # the sample is (c, z, y, x) = (3, 32, 512, 512), chunks (1, 8, 128, 128),
    # shards (1, 32, 512, 512)
    assert widget.provenance.channel == 1
    assert widget.overlay.data.shape == (4, 4, 4)
    assert widget.cmap.shard_shape == (1, 32, 512, 512)
    assert "192 present" in widget.summary_label.text()
    viewer.reset_view()
    # move the z slider to plane 20: chunk 2 along z
    z_world = channel1.data_to_world([20, 0, 0])[0]
    viewer.dims.set_point(0, z_world)
    qtbot.waitUntil(
        lambda: widget.touched is not None and widget.touched[1] == (2, 2), timeout=5000
    )
    assert widget.touched[0] == (1, 1)  # the channel shown
    assert widget.touched[2:] == ((0, 3), (0, 3))
    assert "16 chunks" in widget.view_label.text() and "1 shard" in widget.view_label.text()
    # the overlay shows the same plane
    np.testing.assert_allclose(np.round(widget.overlay.world_to_data(viewer.dims.point))[0], 2)
    # zoom in on one chunk: the view touches fewer chunks, and the grid lines are drawn
    camera = camera_of(viewer)
    camera.zoom *= 6
    camera.center = tuple(channel1.data_to_world([20, 64, 64]))[1:]
    qtbot.waitUntil(
        lambda: (
            widget.touched is not None and widget.touched[2][0] == 0 and widget.touched[2][1] < 3
        ),
        timeout=5000,
    )
    assert widget.grid_layer is not None and len(widget.grid_layer.data) > 2
    # mouse info
    text = widget.chunk_info_at(channel1.data_to_world([20, 300, 140]))
    assert "chunk (1, 2, 2, 1)" in text and "shard (1, 0, 0, 0)" in text and "c/1/0/0/0" in text
    widget.set_mode("bytes")
    assert "Stored bytes" in widget.legend.text()
    widget.set_mode("ratio")
    assert widget.legend.text().endswith("x")
    widget.set_mode("state")
    viewer.screenshot(str(screenshot_dir / "chunkmap.png"), canvas_only=False, flash=False)
    widget.close()


def test_sharded_v3_shard_grid_and_level_choice(make_napari_viewer, qtbot, sample):
    viewer = _sample_viewer(make_napari_viewer, sample)
    channel0 = _images(viewer)[0]
    widget = ChunkMapWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_layer(channel0)
    _wait_map(qtbot, widget)
    assert widget.level_combo.count() == 3
    widget.set_level(2)
    qtbot.waitUntil(
        lambda: widget.cmap is not None and widget.cmap.path.endswith("2") and not widget.busy,
        timeout=20000,
    )
    # level 2 is (3, 32, 128, 128): one chunk along y and x, drawn 4x bigger in the world
    assert widget.overlay.data.shape == (4, 1, 1)
    lo, hi = widget.level_geometry.world_bounds(widget.cmap.chunk_shape, (0, 0, 0, 0))
    assert hi[2] - lo[2] == pytest.approx(128 * 4 * channel0.scale[2])
    # a labels layer maps too
    cells = next(layer for layer in viewer.layers if type(layer).__name__ == "Labels")
    viewer.layers.selection.active = cells
    _wait_map(qtbot, widget)
    assert widget.cmap.path == "labels/cells/0"
    assert widget.overlay.data.shape == (4, 4, 4)
    # removing the mapped layer removes its overlays
    viewer.layers.remove(cells)
    assert widget.overlay is None and widget.grid_layer is None
    assert not any("chunk" in layer.name for layer in viewer.layers)
    widget.close()


@pytest.mark.parametrize("fmt", [2, 3], ids=["v2", "v3"])
def test_missing_and_corrupt_chunks(make_napari_viewer, qtbot, tmp_path, fmt):
    viewer = make_napari_viewer()
    store = tmp_path / "ids.zarr"
    data = _chunk_id_store(store, fmt=fmt)
    (store / ("c/0/1" if fmt == 3 else "0.1")).write_bytes(b"garbage")
    _open_layer(viewer, store, data, (1, 1), (0, 0))
    widget = ChunkMapWidget(viewer)
    viewer.window.add_dock_widget(widget)
    _wait_map(qtbot, widget)
    widget.verify_box.setChecked(True)
    widget.compute()
    qtbot.waitUntil(lambda: widget.cmap is not None and widget.cmap.verified, timeout=20000)
    assert widget.overlay.data[0, 1] == 2  # corrupt
    assert widget.overlay.data[1, 2] == 0  # missing
    assert "1 corrupt" in widget.summary_label.text()
    widget.close()


def test_a_million_chunks_stay_cheap(make_napari_viewer, qtbot, tmp_path):
    # 1000 x 1000 chunks, nothing written: the overlay is one small image, the grid is skipped
    store = tmp_path / "big.zarr"
    zarr.create_array(str(store), shape=(100_000, 100_000), chunks=(100, 100), dtype="uint8")
    viewer = make_napari_viewer()
    import dask.array as da

    # shown as a pyramid of (lazy, empty) levels, like the reader does
    levels = [da.zeros((100_000 // f,) * 2, dtype="uint8", chunks=1000) for f in (1, 10, 100)]
    layer = viewer.add_image(
        levels,
        multiscale=True,
        contrast_limits=(0, 1),
        metadata={PROVENANCE_KEY: {"url": str(store), "path": "", "levels": [""]}},
    )
    widget = ChunkMapWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_layer(layer)
    _wait_map(qtbot, widget)
    assert widget.cmap.chunks_total == 1_000_000
    assert widget.overlay.data.shape == (1000, 1000)
    viewer.reset_view()
    widget._update_view()
    # zoomed out: only the view's outline, no line per chunk
    assert widget.grid_layer is None or len(widget.grid_layer.data) <= 1
    widget.close()


def test_bad_store_notifies_and_dock_keeps_working(
    make_napari_viewer, qtbot, tmp_path, notifications
):
    viewer = make_napari_viewer()
    store = tmp_path / "ids.zarr"
    data = _chunk_id_store(store)
    bad = viewer.add_image(
        np.zeros((4, 4)),
        name="gone",
        metadata={PROVENANCE_KEY: {"url": str(tmp_path / "gone.zarr"), "path": "", "levels": [""]}},
    )
    widget = ChunkMapWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_layer(bad)
    qtbot.waitUntil(lambda: not widget.busy and bool(notifications), timeout=20000)
    assert any("gone.zarr" in m for m in notifications)
    good = _open_layer(viewer, store, data, (1, 1), (0, 0))
    viewer.layers.selection.active = good
    _wait_map(qtbot, widget)
    assert widget.overlay is not None
    widget.close()


def test_plate_mosaic_and_field(make_napari_viewer, qtbot, tmp_path):
    from napari_zarr_explorer._qt.explorer import ExplorerWidget
    from napari_zarr_explorer.testing import write_plate

    plate = write_plate(tmp_path / "plate.zarr", rows=1, cols=2, fields=1)
    viewer = make_napari_viewer()
    viewer.open(str(plate), plugin="napari-zarr-explorer")
    widget = ChunkMapWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_layer(viewer.layers[0])
    assert "plate" in widget.layer_label.text() and widget.cmap is None
    explorer = ExplorerWidget(viewer)
    viewer.window.add_dock_widget(explorer)
    explorer.open(str(plate))
    qtbot.waitUntil(lambda: explorer.report is not None and not explorer.busy, timeout=20000)
    field = next(p for p, n in explorer.nodes.items() if n.kind == "field")
    n = len(viewer.layers)
    explorer.open_node(field)
    qtbot.waitUntil(lambda: len(viewer.layers) > n and not explorer.busy, timeout=20000)
    _wait_map(qtbot, widget)
    assert widget.cmap.path.startswith(field)
    widget.close()


def test_cancel_then_compute_again(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    store = tmp_path / "ids.zarr"
    data = _chunk_id_store(store)
    layer = _open_layer(viewer, store, data, (1, 1), (0, 0))
    widget = ChunkMapWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_layer(layer)  # starts computing
    assert widget.busy and widget.cancel_button.isEnabled()
    widget.cancel()
    assert widget.summary_label.text() == "Cancelled."
    qtbot.waitUntil(lambda: not widget.busy, timeout=20000)
    assert widget.cmap is None and widget.overlay is None  # nothing delivered after cancel
    widget.compute_button.click()
    _wait_map(qtbot, widget)
    assert widget.overlay is not None
    widget.close()


def test_3d_view_and_channel_switch_reuse_the_map(make_napari_viewer, qtbot, sample):
    viewer = _sample_viewer(make_napari_viewer, sample)
    images = _images(viewer)
    widget = ChunkMapWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.layers.selection.active = images[0]
    _wait_map(qtbot, widget)
    first = widget.cmap
    viewer.layers.selection.active = images[2]
    assert widget.cmap is first and not widget.busy  # same array: shown again at once
    assert widget.provenance.channel == 2
    viewer.dims.ndisplay = 3
    widget._update_view()
    assert "3-D" in widget.view_label.text()
    viewer.dims.ndisplay = 2
    widget.close()


def test_summary_says_whether_the_map_was_verified(
    make_napari_viewer, qtbot, http_server, tmp_path, monkeypatch
):
    """The dock's summary says whether every stored chunk was decoded, in the notebook's and
    the command line's words: listing only, verified, or left incomplete by the server."""
    from servers import serve_sharded_image

    monkeypatch.setenv("NZE_REMOTE_RETRIES", "0")
    monkeypatch.setenv("NZE_REMOTE_TIMEOUT", "30")
    url, _ = serve_sharded_image(http_server, tmp_path, size=32)
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-zarr-explorer", "Chunk map")
    viewer.open(url, plugin="napari-zarr-explorer")
    _wait_map(qtbot, widget)
    assert not widget.cmap.verified
    lines = widget.summary_label.text().splitlines()
    assert "Verified: no (listing only; tick Verify to decode)" in lines, lines

    widget.verify_box.setChecked(True)
    widget.compute_button.click()
    qtbot.waitUntil(lambda: widget.cmap.verified and not widget.busy, timeout=60000)
    lines = widget.summary_label.text().splitlines()
    assert "Verified: yes" in lines, lines
    assert not any(line.startswith("Verified: no") for line in lines), lines

    # the server fails the chunks: the map is incomplete, not verified, and says why
    http_server.fail("img.ome.zarr/0/c/*", 500)
    widget.compute_button.click()
    qtbot.waitUntil(lambda: widget.cmap.unanswered and not widget.busy, timeout=60000)
    assert not widget.cmap.verified
    lines = widget.summary_label.text().splitlines()
    assert f"Verified: {widget.cmap.verified_text()}" in lines, lines
    assert any(
        line.startswith("Verified: no: the store did not deliver some of the data")
        for line in lines
    ), lines
    assert "Verified: yes" not in lines
    http_server.clear_faults()
    widget.close()
