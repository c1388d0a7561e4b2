"""The Recompress dock offers the imaging codecs, lossy ones labelled with their error setting."""

from __future__ import annotations

import numpy as np
import zarr
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication, QLabel

import napari_zarr_explorer as nze
from napari_zarr_explorer._qt.recompress import RecompressWidget
from napari_zarr_explorer.testing import write_array


def _visible_cut_labels(widget) -> list[str]:
    cut = []
    for label in widget.findChildren(QLabel):
        if not label.isVisible() or label.wordWrap() or not label.text():
            continue
        needed = label.fontMetrics().horizontalAdvance(label.text())
        if needed > label.contentsRect().width():
            cut.append(label.text())
    return cut


def test_lossy_codec_chosen_and_typed_in_the_dock(make_napari_viewer, qtbot, tmp_path):
    yy, xx = np.mgrid[0:64, 0:96]
    data = np.stack([np.sin(yy / 7.0 + i) * np.cos(xx / 5.0) for i in range(2)]).astype("f4")
    src = write_array(tmp_path / "src.zarr", data, chunks=(1, 32, 48))
    viewer = make_napari_viewer(show=True)
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.window._qt_window.resize(1280, 800)
    widget.set_source(str(src), "", data.shape)
    codec_combo = widget.form.codec.native
    labels = [codec_combo.itemText(i) for i in range(codec_combo.count())]
    # every lossy choice says so; the lossless image codecs too
    assert "lerc (LOSSY: max error)" in labels and "png (lossless)" in labels
    assert all("LOSSY" in t for t in labels if ":" in t)
    setting = widget.form.lossy_value.native
    assert not setting.isEnabled()
    # the user picks lossy LERC and types the largest error allowed
    codec_combo.setCurrentIndex(labels.index("lerc (LOSSY: max error)"))
    assert setting.isEnabled() and widget.form.lossy_name.native.text() == "Max error"
    assert not widget.compressor_combo.isEnabled()  # lerc compresses by itself
    setting.selectAll()
    qtbot.keyClicks(setting, "0.002")
    QApplication.processEvents()
    assert _visible_cut_labels(widget) == []
    out = tmp_path / "lerc.zarr"
    widget.destination_edit.setText(str(out))
    widget.chunks_edit.setText("1,32,48")
    with qtbot.waitSignal(widget.finished, timeout=120000) as blocker:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    report = blocker.args[0]
    assert report.ok and report.compressor == "lerc:maxerror=0.002"
    assert report.verification == "within tolerance 0.002 absolute"
    assert "verified within tolerance 0.002 absolute" in widget.report_view.toPlainText()
    assert widget.progress_label.text().endswith("verified within tolerance 0.002 absolute.")
    back = zarr.open_array(str(out), mode="r")[...]
    np.testing.assert_allclose(back, data, atol=0.002, rtol=0)
    (arr,) = nze.inspect(out).arrays
    (shard,) = arr.codecs  # the dock suggests shards for imaging data
    assert [c.name for c in shard.inner] == ["imagecodecs_lerc"]
    assert shard.inner[0].configuration["level"] == 0.002
    # back to a lossless filter in front of a compressor
    codec_combo.setCurrentIndex(labels.index("shuffle + compressor"))
    assert not setting.isEnabled() and widget.compressor_combo.isEnabled()
    assert widget.compressor_text() == "shuffle+zstd:3"
