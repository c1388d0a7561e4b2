"""The Save dock offers the codecs of the Recompress dock, with the same rules and messages."""

from __future__ import annotations

import numpy as np
import zarr
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication, QLabel

from napari_zarr_explorer._qt.recompress import RecompressWidget
from napari_zarr_explorer._qt.save import SaveWidget


def _labels(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def _visible_cut_labels(widget) -> list[str]:
    cut = []
    for label in widget.findChildren(QLabel):
        if not label.isVisible() or label.wordWrap() or not label.text():
            continue
        if label.fontMetrics().horizontalAdvance(label.text()) > label.contentsRect().width():
            cut.append(label.text())
    return cut


def test_save_dock_writes_a_lossy_codec_after_refusing_a_bad_setting(
    make_napari_viewer, qtbot, tmp_path
):
    yy, xx = np.mgrid[0:64, 0:96]
    data = (np.sin(yy / 7.0) * np.cos(xx / 5.0) * 1000).astype("f4")
    viewer = make_napari_viewer(show=True)
    viewer.add_image(data, name="field")
    widget = SaveWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.window._qt_window.resize(1280, 800)
    form = widget.form
    # the same choices, in the same order, as the Recompress dock
    recompress = RecompressWidget(viewer)
    codec_combo = form.codec.native
    assert _labels(codec_combo) == _labels(recompress.form.codec.native)
    assert _labels(form.compressor.native) == _labels(recompress.form.compressor.native)
    assert "lerc (LOSSY: max error)" in _labels(codec_combo)
    setting = form.lossy_value.native
    assert not setting.isEnabled() and form.compressor.native.isEnabled()
    # the user picks lossy LERC and types something that is not a number
    codec_combo.setCurrentIndex(_labels(codec_combo).index("lerc (LOSSY: max error)"))
    assert setting.isEnabled() and form.lossy_name.native.text() == "Max error"
    assert not form.compressor.native.isEnabled()  # lerc compresses by itself
    setting.selectAll()
    qtbot.keyClicks(setting, "a little")
    QApplication.processEvents()
    assert _visible_cut_labels(widget) == []
    out = tmp_path / "field.ome.zarr"
    form.path.value = str(out)
    message = "Max error 'a little' is not a number. lerc (LOSSY: max error) needs its setting"
    assert message in str(form.estimate.value)
    with qtbot.waitSignal(widget.finished, timeout=10_000):
        qtbot.mouseClick(form.save_button.native, Qt.MouseButton.LeftButton)
    assert message in str(widget.status.value)
    assert not out.exists()
    # a number: written, and verified within the error the user allowed
    setting.selectAll()
    qtbot.keyClicks(setting, "0.5")
    assert form.save_options()["compressor"] == "lerc:maxerror=0.5"
    with qtbot.waitSignal(widget.finished, timeout=120_000):
        qtbot.mouseClick(form.save_button.native, Qt.MouseButton.LeftButton)
    assert "OK" in str(widget.status.value), widget.status.value
    assert "within tolerance 0.5 absolute" in str(widget.status.value)
    back = zarr.open_array(out / "0", mode="r")[...].reshape(data.shape)  # a c axis of 1
    np.testing.assert_allclose(back, data, atol=0.5, rtol=0)
    assert not np.array_equal(back, data)  # it really was lossy
    # back to a filter in front of a blosc compressor with bit shuffle
    codec_combo.setCurrentIndex(_labels(codec_combo).index("shuffle + compressor"))
    form.compressor.value = "blosc-zstd"
    form.shuffle.value = "bit"
    assert not setting.isEnabled() and form.level.native.isEnabled()
    assert form.save_options()["compressor"] == "shuffle+blosc-zstd:level=5,shuffle=bit"
    recompress.close()
