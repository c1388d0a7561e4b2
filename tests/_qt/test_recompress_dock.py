"""The Recompress dock: estimate table, run with progress, report, open the result."""

from __future__ import annotations

import numpy as np
import zarr

from napari_zarr_explorer._qt.explorer import ExplorerWidget
from napari_zarr_explorer._qt.recompress import RecompressWidget


def test_recompress_dock_on_the_sample(make_napari_viewer, qtbot, sample, tmp_path, screenshot_dir):
    viewer = make_napari_viewer(show=True)
    explorer = ExplorerWidget(viewer)
    viewer.window.add_dock_widget(explorer)
    explorer.open(str(sample))
    qtbot.waitUntil(lambda: explorer.report is not None and not explorer.busy, timeout=30000)
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    # follows the explorer's selection, with defaults for imaging data
    assert widget.source == str(sample)
    assert widget.chunks_edit.text() == "1,1,256,256"
    assert widget.shards_edit.text() == "1,1,512,512"
    widget.set_compressor("blosc-zstd:5")
    widget.estimate()
    qtbot.waitUntil(lambda: widget.estimate_report is not None and not widget.busy, timeout=60000)
    assert widget.estimate_table.rowCount() >= 4
    assert widget.estimate_table.item(0, 0).text().startswith("blosc-zstd:5")
    # the table is about the whole run: both pyramids (image and labels), every level
    run = widget.run_estimate
    assert [a.path for a in run.arrays][:3] == ["0", "1", "2"] and len(run.arrays) == 6
    ratio = run.nbytes / run.projected(0)
    assert widget.estimate_table.item(0, 1).text() == f"{ratio:.2f}x"
    # run into a new store
    out = tmp_path / "out.ome.zarr"
    widget.destination_edit.setText(str(out))
    widget.set_compressor("zstd:3")
    with qtbot.waitSignal(widget.finished, timeout=120000) as blocker:
        widget.run_button.click()
    report = blocker.args[0]
    assert report.ok and report.verified and report.complete
    assert widget.progress_label.text() == report.done_line() + ", verified."
    assert "% of the original" in widget.progress_label.text()
    src = zarr.open_array(str(sample / "0"), mode="r")
    dst = zarr.open_array(str(out / "0"), mode="r")
    assert dst.chunks == (1, 1, 256, 256) and dst.shards == (1, 1, 512, 512)
    np.testing.assert_array_equal(src[:, 5], dst[:, 5])
    # the result opens next to the original
    n = len(viewer.layers)
    widget.open_result_button.click()
    qtbot.waitUntil(lambda: len(viewer.layers) > n and not widget.busy, timeout=20000)
    assert any(layer.name.endswith("(recompressed)") for layer in viewer.layers)
    widget.grab().save(str(screenshot_dir / "recompress.png"))


def test_recompress_dock_refuses_existing_output_and_stays_usable(
    make_napari_viewer, qtbot, tmp_path, notifications
):
    from napari_zarr_explorer.testing import write_array

    src = write_array(
        tmp_path / "a.zarr",
        np.arange(64 * 64, dtype="uint16").reshape(64, 64),
        zarr_format=2,
        chunks=(16, 16),
    )
    taken = tmp_path / "taken.zarr"
    taken.mkdir()
    (taken / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    viewer = make_napari_viewer()
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(str(src), "", (64, 64))
    widget.destination_edit.setText(str(taken))
    widget.run()
    qtbot.waitUntil(lambda: not widget.busy and bool(notifications), timeout=30000)
    assert any("taken.zarr" in m for m in notifications)
    assert widget.run_button.isEnabled()
    # converting to Zarr v2 works afterwards
    widget.format_combo.setCurrentIndex(1)
    widget.destination_edit.setText(str(tmp_path / "v2.zarr"))
    with qtbot.waitSignal(widget.finished, timeout=60000) as blocker:
        widget.run()
    assert blocker.args[0].ok
    assert zarr.open_array(str(tmp_path / "v2.zarr"), mode="r").metadata.zarr_format == 2
