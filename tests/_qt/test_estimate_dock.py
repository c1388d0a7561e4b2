"""The Recompress dock's estimate as a user sees it: cancelling, the buttons, the growth
warning and what each figure of compression means."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from qtkeys import type_text
from qtpy.QtCore import Qt

from napari_zarr_explorer._qt.recompress import RecompressWidget
from napari_zarr_explorer.testing import blobs, write_array
from servers import LoopbackHTTPServer


def _dock(make_napari_viewer, url: str, shape: tuple[int, ...] | None, *, show: bool = False):
    viewer = make_napari_viewer(show=show)
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(url, "", shape)
    return viewer, widget


def _estimate(qtbot, widget: RecompressWidget) -> None:
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.run_estimate is not None and not widget.busy, timeout=120000)


def type_into(qtbot, line_edit, text: str) -> None:
    """Select all of a line edit and type *text* over it."""
    line_edit.setFocus()
    line_edit.selectAll()
    qtbot.keyClick(line_edit, Qt.Key.Key_Delete)
    type_text(qtbot, line_edit, text)


def _noise(path: Path) -> Path:
    """Noise stored raw: every codec the dock tries writes more than is stored now."""
    rng = np.random.default_rng(0)
    return write_array(
        path, rng.integers(0, 2**16, (128, 128), dtype="uint16"), chunks=(32, 32), compressor=None
    )


# ---------------------------------------------------------------- cancel, and the buttons


@pytest.fixture
def slow_image(http_server: LoopbackHTTPServer) -> str:
    """An array whose chunks are held until the test releases them: an estimate waits."""
    write_array(http_server.root / "a.zarr", blobs((128, 128), dtype="uint16"), chunks=(16, 16))
    http_server.hold("a.zarr/c/*")
    return f"{http_server.url}/a.zarr"


def test_cancelling_an_estimate_says_so_then_says_what_was_sampled(
    make_napari_viewer,
    qtbot,
    slow_image: str,
    http_server: LoopbackHTTPServer,
    screenshot_dir: Path,
) -> None:
    viewer, widget = _dock(make_napari_viewer, slow_image, (128, 128), show=True)
    viewer.window._qt_window.resize(1280, 800)
    # the source's chunks, one request each
    type_into(qtbot, widget.chunks_edit, "16,16")
    type_into(qtbot, widget.shards_edit, "none")
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    assert widget.estimate_label.text() == "Estimating on sampled chunks..."
    # a recompression cannot start while the estimate runs, and the button says why
    assert not widget.run_button.isEnabled()
    assert widget.run_button.toolTip() == "Wait for the estimate to end, or Cancel it"
    qtbot.waitUntil(lambda: any("/c/" in p for p in http_server.arrived), timeout=60000)
    qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
    assert widget.estimate_label.text() == (
        "Cancelling the estimate: the chunk being read finishes, then it stops..."
    )
    assert not widget.run_button.isEnabled()  # not before the estimate has stopped
    qtbot.wait(20)
    viewer.window._qt_window.grab().save(str(screenshot_dir / "estimate-cancelling.png"))
    assert widget.busy  # the chunk being read is still held
    http_server.release()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120000)
    run = widget.run_estimate
    assert run is not None and run.cancelled
    n = run.chunks_sampled
    assert 1 <= n < 16
    text = widget.estimate_label.text()
    assert text.startswith(
        f"Estimate cancelled after sampling {n} of 16 chunks: the figures are projected from "
        "those alone."
    ), text
    assert "Sampled" not in text
    # everything is usable again
    assert widget.run_button.isEnabled() and widget.estimate_button.isEnabled()
    assert not widget.cancel_button.isEnabled()
    assert widget.run_button.toolTip() != "Wait for the estimate to end, or Cancel it"
    qtbot.wait(50)
    viewer.window._qt_window.grab().save(str(screenshot_dir / "estimate-cancelled.png"))


def test_recompress_waits_for_the_estimate_and_comes_back_after_it(
    make_napari_viewer, qtbot, tmp_path: Path
) -> None:
    import shutil

    src = write_array(tmp_path / "a.zarr", blobs((64, 64), dtype="uint16"), chunks=(16, 16))
    _viewer, widget = _dock(make_napari_viewer, str(src), (64, 64))
    out = tmp_path / "out.zarr"
    widget.destination_edit.setText(str(out))
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    assert not widget.run_button.isEnabled()
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)  # does nothing
    widget.run()  # nor does asking the dock itself
    qtbot.waitUntil(lambda: not widget.busy, timeout=120000)
    assert not out.exists() and widget.report is None
    assert widget.run_estimate is not None and not widget.run_estimate.cancelled
    assert widget.run_button.isEnabled()  # after the estimate finished
    # the run's report, in the same dock, calls no other figure a ratio
    with qtbot.waitSignal(widget.finished, timeout=120000) as blocker:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    report = blocker.args[0]
    said = widget.report_view.toPlainText()
    assert report.bytes_before, said
    share = f"{report.bytes_after / report.bytes_before:.0%}"
    assert f"({share} of the original; logical" in said, said
    assert not [m for m in re.finditer(r"(\w+\s+)?ratio", said) if "compression" not in m[0]]
    # after an estimate that fails (clicked once its button is back, as a user can)
    qtbot.waitUntil(lambda: widget.estimate_button.isEnabled(), timeout=120000)
    shutil.rmtree(src)
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    assert widget.estimate_label.text() == "Estimating on sampled chunks..."
    qtbot.waitUntil(lambda: not widget.busy, timeout=120000)
    assert widget.estimate_label.text().startswith("The estimate failed")
    assert widget.run_button.isEnabled() and widget.estimate_button.isEnabled()


# ---------------------------------------------------------------- growth


def test_when_every_encoding_grows_the_data_the_dock_does_not_advise_a_stronger_codec(
    make_napari_viewer, qtbot, tmp_path: Path, screenshot_dir: Path
) -> None:
    src = _noise(tmp_path / "noise.zarr")
    viewer, widget = _dock(make_napari_viewer, str(src), (128, 128), show=True)
    viewer.window._qt_window.resize(1280, 800)
    widget.form.sample.value = 64  # every chunk: the projection is exact
    _estimate(qtbot, widget)
    run = widget.run_estimate
    assert all(run.projected(i) > run.bytes_now for i in range(len(run.compressors)))
    assert widget.estimate_warning.isVisible()
    warning = widget.estimate_warning.text()
    assert warning.startswith("Warning: the estimate predicts the output will be"), warning
    assert "stronger codec" not in warning
    assert "No encoding estimated is projected smaller than now" in warning
    assert "Keep the source as it is" in warning
    qtbot.wait(50)
    viewer.window._qt_window.grab().save(str(screenshot_dir / "estimate-grows.png"))


# ---------------------------------------------------------------- what each figure means


def test_every_figure_of_the_estimate_says_what_it_is(
    make_napari_viewer, qtbot, tmp_path: Path, screenshot_dir: Path
) -> None:
    from napari_zarr_explorer.testing import write_ome_image

    src = write_ome_image(
        tmp_path / "img.ome.zarr", shape=(2, 256, 256), axes="cyx", levels=3, chunks=(1, 64, 64)
    )
    viewer, widget = _dock(make_napari_viewer, str(src), (2, 256, 256), show=True)
    viewer.window._qt_window.resize(1280, 800)
    _estimate(qtbot, widget)
    run = widget.run_estimate
    header = [widget.estimate_table.horizontalHeaderItem(c).text() for c in range(5)]
    assert header[1:] == ["Compression\nratio", "Projected\nsize", "Enc.\nMB/s", "Dec.\nMB/s"]
    # the encodings' names are not wrapped to make room for them: one line each
    table = widget.estimate_table
    metrics = table.fontMetrics()
    for r in range(table.rowCount()):
        name = table.item(r, 0).text()
        assert metrics.horizontalAdvance(name) + 8 <= table.columnWidth(0), name
    tip = widget.estimate_table.horizontalHeaderItem(1).toolTip()
    assert tip.startswith("Compression ratio of the output: logical size / projected stored size")
    ratio = run.nbytes / run.projected(0)
    assert widget.estimate_table.item(0, 1).text() == f"{ratio:.2f}x"
    text = widget.estimate_label.text()
    now = run.nbytes / run.bytes_now
    assert f"now {_size(run.bytes_now)} in all (compression ratio {now:.2f}x)" in text, text
    assert "% of now)" in text
    bare = [m.group(0) for m in re.finditer(r"(\w+\s+)?ratio", text) if "compression" not in m[0]]
    assert not bare, text
    most = max(a.report.chunks_sampled for a in run.arrays)
    assert f"Sampled up to {most} chunks per array" in text
    qtbot.wait(50)
    viewer.window._qt_window.grab().save(str(screenshot_dir / "recompress-estimate.png"))


def _size(n: int | None) -> str:
    from napari_zarr_explorer._qt._common import format_bytes

    return format_bytes(n)


def test_a_cancel_once_every_chunk_was_read_says_the_estimate_finished(
    make_napari_viewer, qtbot, slow_image: str, http_server: LoopbackHTTPServer
) -> None:
    _viewer, widget = _dock(make_napari_viewer, slow_image, (128, 128))
    type_into(qtbot, widget.chunks_edit, "16,16")
    type_into(qtbot, widget.shards_edit, "none")
    widget.form.sample.value = 1  # the chunk being read is the last one
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any("/c/" in p for p in http_server.arrived), timeout=60000)
    qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
    http_server.release()  # the one chunk comes after the cancel
    qtbot.waitUntil(lambda: not widget.busy, timeout=120000)
    assert not widget.run_estimate.cancelled
    text = widget.estimate_label.text()
    assert text.startswith("The estimate finished before the cancel took effect. "), text
    assert "Sampled 1 chunk" in text and "cancelled" not in text
    assert widget.run_button.isEnabled()


def test_another_source_while_estimating_stops_the_estimate_and_never_shows_it(
    make_napari_viewer, qtbot, slow_image: str, http_server: LoopbackHTTPServer, tmp_path: Path
) -> None:
    """The estimate is of the node selected when it started: another node selected stops it,
    and its table and summary are never drawn under the node selected now."""
    _viewer, widget = _dock(make_napari_viewer, slow_image, (128, 128))
    type_into(qtbot, widget.chunks_edit, "16,16")
    type_into(qtbot, widget.shards_edit, "none")
    other = write_array(tmp_path / "b.zarr", blobs((32, 32), dtype="uint16"), chunks=(16, 16))
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any("/c/" in p for p in http_server.arrived), timeout=60000)
    widget.set_source(str(other), "", (32, 32))
    task = widget._estimate_task
    assert task is not None and task.cancel_event.is_set()  # the estimate left stops
    assert "a.zarr" not in widget.estimate_label.text()
    http_server.release()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120000)
    assert widget.run_estimate is None and widget.estimate_table.rowCount() == 0
    assert widget.estimate_label.text() == "", widget.estimate_label.text()
    assert not widget.estimate_warning.isVisibleTo(widget)
    assert http_server.count("a.zarr/c/*") < 16  # it stopped at the chunk being read
    # the node selected now is estimated as usual
    _estimate(qtbot, widget)
    assert widget.run_estimate.bytes_now and widget.estimate_table.rowCount() > 0
    assert widget.estimate_label.text().startswith("/: now"), widget.estimate_label.text()


@pytest.mark.parametrize("sample", [1, 16], ids=["read-every-chunk", "stopped-early"])
def test_back_to_the_node_left_while_its_estimate_stops_shows_nothing_of_it(
    make_napari_viewer,
    qtbot,
    slow_image: str,
    http_server: LoopbackHTTPServer,
    tmp_path: Path,
    sample: int,
) -> None:
    """Leaving a node stops its estimate; coming back to it before that estimate has ended
    must not show it as if the user had cancelled it (or as finished despite a cancel):
    the user never clicked Cancel. Once it ends, the buttons are usable again."""
    _viewer, widget = _dock(make_napari_viewer, slow_image, (128, 128))
    type_into(qtbot, widget.chunks_edit, "16,16")
    type_into(qtbot, widget.shards_edit, "none")
    widget.form.sample.value = sample
    other = write_array(tmp_path / "b.zarr", blobs((32, 32), dtype="uint16"), chunks=(16, 16))
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any("/c/" in p for p in http_server.arrived), timeout=60000)
    widget.set_source(str(other), "", (32, 32))
    widget.set_source(slow_image, "", (128, 128))  # back to A while its estimate still runs
    assert widget.busy and widget.estimate_label.text() == ""
    assert not widget.estimate_button.isEnabled() and widget.cancel_button.isEnabled()
    http_server.release()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120000)
    text = widget.estimate_label.text()
    assert text == "", text  # neither "Estimate cancelled." nor "finished before the cancel"
    assert widget.run_estimate is None and widget.estimate_table.rowCount() == 0
    assert not widget.estimate_warning.isVisibleTo(widget)
    assert widget.estimate_button.isEnabled() and widget.run_button.isEnabled()
    assert not widget.cancel_button.isEnabled()
    assert widget.run_button.toolTip() != "Wait for the estimate to end, or Cancel it"
    # an estimate started now is shown as usual
    _estimate(qtbot, widget)
    assert widget.estimate_table.rowCount() > 0
    text = widget.estimate_label.text()
    assert text.startswith("/: ") and "cancel" not in text, text


def test_the_estimate_says_how_many_arrays_are_sampled(
    make_napari_viewer, qtbot, http_server: LoopbackHTTPServer
) -> None:
    """An estimate of an image samples each level: the dock says how far it is, as the
    notebook does, then shows the figures."""
    from napari_zarr_explorer.testing import write_ome_image

    write_ome_image(http_server.root / "img.ome.zarr", shape=(64, 64), axes="yx", levels=2)
    _viewer, widget = _dock(make_napari_viewer, f"{http_server.url}/img.ome.zarr", (64, 64))
    http_server.hold("img.ome.zarr/1/c/*")  # the second level waits
    try:
        qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: "1 of 2 arrays sampled" in widget.estimate_label.text(), timeout=60000
        )
        assert widget.estimate_label.text() == (
            "Estimating on sampled chunks: 1 of 2 arrays sampled..."
        )
        assert widget.busy
    finally:
        http_server.release()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120000)
    assert widget.run_estimate is not None and len(widget.run_estimate.arrays) == 2
    assert "sampled..." not in widget.estimate_label.text()
