"""The settings of the Recompress and Save docks as a user types them, and what a failure says.

Shards follow Chunks until the user types Shards; a Zarr v2 output shows no shards and gets the
v3 ones back; fewer chunk values than dimensions are explained with the rule the command line
uses; advice to tick Resume comes only where Resume would help.
"""

from __future__ import annotations

import threading

import numpy as np
import zarr
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

from napari_zarr_explorer._qt.recompress import RecompressWidget
from napari_zarr_explorer.recompress import JOURNAL_NAME, MARKER_KEY, recompress
from napari_zarr_explorer.testing import write_array

SHAPE = (2, 3, 512, 512)


def _retype(qtbot, edit, text: str) -> None:
    """Select everything in *edit* and type *text* (an empty text just deletes)."""
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    if text:
        qtbot.keyClicks(edit, text)
    QApplication.processEvents()


def _source(tmp_path):
    data = np.arange(np.prod(SHAPE), dtype="uint16").reshape(SHAPE) % 4099
    return write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 1, 128, 128)), data


def _dock(make_napari_viewer, tmp_path):
    src, data = _source(tmp_path)
    viewer = make_napari_viewer(show=True)
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.window._qt_window.resize(1280, 800)
    widget.set_source(str(src), "", SHAPE)
    return viewer, widget, src, data


def _run(qtbot, widget, notifications) -> str:
    """Click Recompress and wait for the run's end; return the error notification, or ''."""
    notifications.clear()
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.busy, timeout=60000)
    errors = [m for m in notifications if not m.startswith("Recompressed into")]
    return errors[-1] if errors else ""


def test_shards_follow_chunks_until_the_user_types_them(
    make_napari_viewer, qtbot, tmp_path, notifications
):
    _, widget, src, _ = _dock(make_napari_viewer, tmp_path)
    assert widget.chunks_edit.text() == "1,1,256,256"
    assert widget.shards_edit.text() == "1,1,512,512"
    # Chunks emptied: the source's chunks are kept, and so is its sharding
    _retype(qtbot, widget.chunks_edit, "")
    assert widget.shards_edit.text() == ""
    assert widget.shards_edit.placeholderText() == "keep"
    # other chunks: shards made of them again
    _retype(qtbot, widget.chunks_edit, "1,1,100,100")
    shards = tuple(int(v) for v in widget.shards_edit.text().split(","))
    assert shards[:2] == (1, 1) and all(s % 100 == 0 for s in shards[2:]), shards
    # they run as shown
    widget.destination_edit.setText(str(tmp_path / "out.zarr"))
    assert _run(qtbot, widget, notifications) == ""
    out = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")
    assert out.chunks == (1, 1, 100, 100) and out.shards == shards
    # shards the user typed stay, whatever the chunks become
    _retype(qtbot, widget.shards_edit, "1,1,256,256")
    _retype(qtbot, widget.chunks_edit, "1,1,64,64")
    assert widget.shards_edit.text() == "1,1,256,256"
    _retype(qtbot, widget.chunks_edit, "")
    assert widget.shards_edit.text() == "1,1,256,256"
    assert src.exists()


def test_fewer_chunk_values_than_dimensions_are_explained(
    make_napari_viewer, qtbot, tmp_path, notifications, screenshot_dir
):
    _, widget, _, _ = _dock(make_napari_viewer, tmp_path)
    note = widget.form.layout_note.native
    assert not note.isVisible()
    _retype(qtbot, widget.chunks_edit, "64,64")
    assert note.isVisible()
    text = note.text()
    # the rule of --chunks: the values go to the last axes, the others get 1
    assert "2 values for 4-D data" in text and "1,1,64,64" in text, text
    assert "last 2" in text, text
    # and the suggested shards are whole numbers of those chunks, in full
    shards = tuple(int(v) for v in widget.shards_edit.text().split(","))
    assert len(shards) == 4 and all(s % 64 == 0 for s in shards[2:]), shards
    widget.grab().save(str(screenshot_dir / "recompress-chunks-note.png"))
    widget.destination_edit.setText(str(tmp_path / "out.zarr"))
    assert _run(qtbot, widget, notifications) == ""
    out = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")
    assert out.chunks == (1, 1, 64, 64), out.chunks  # what the note said
    # as many values as dimensions: nothing to explain
    _retype(qtbot, widget.chunks_edit, "1,1,64,64")
    assert not note.isVisible()
    # too many values: the first ones are left out, as the command line does
    _retype(qtbot, widget.chunks_edit, "1,1,1,64,64")
    assert note.isVisible() and "5 values for 4-D data" in note.text(), note.text()


def test_a_zarr_v2_output_shows_no_shards_and_v3_gets_them_back(
    make_napari_viewer, qtbot, tmp_path
):
    _, widget, _, _ = _dock(make_napari_viewer, tmp_path)
    combo = widget.format_combo
    assert widget.shards_edit.text() == "1,1,512,512"
    combo.setCurrentIndex(1)  # Zarr v2
    assert not widget.shards_edit.isEnabled()
    assert widget.shards_edit.text() == ""
    assert "v2" in widget.shards_edit.placeholderText()
    # chunks typed meanwhile: back in v3, the shards suggested for them
    _retype(qtbot, widget.chunks_edit, "1,1,128,128")
    assert widget.shards_edit.text() == ""
    combo.setCurrentIndex(0)
    assert widget.shards_edit.isEnabled() and widget.shards_edit.text() == "1,1,512,512"
    # shards the user typed come back as typed
    _retype(qtbot, widget.shards_edit, "1,1,256,512")
    combo.setCurrentIndex(1)
    assert widget.shards_edit.text() == ""
    combo.setCurrentIndex(0)
    assert widget.shards_edit.text() == "1,1,256,512"
    _retype(qtbot, widget.chunks_edit, "1,1,64,64")
    assert widget.shards_edit.text() == "1,1,256,512"  # still the user's


def _unfinished_output(src, out) -> None:
    cancel = threading.Event()
    cancel.set()  # stopped before its first task: marked incomplete
    report = recompress(src, out, cancel=cancel)
    assert report.cancelled


def test_settings_errors_do_not_advise_resume(make_napari_viewer, qtbot, tmp_path, notifications):
    _, widget, src, _ = _dock(make_napari_viewer, tmp_path)
    out = tmp_path / "out.zarr"
    _unfinished_output(src, out)
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    widget.destination_edit.setText(str(out))
    # shards that are not whole chunks: no Resume fixes that
    _retype(qtbot, widget.chunks_edit, "1,1,128,128")
    _retype(qtbot, widget.shards_edit, "1,1,200,200")
    message = _run(qtbot, widget, notifications)
    assert "not a multiple of the chunk shape" in message, message
    shown = widget.progress_label.text() + widget.report_view.toPlainText() + message
    assert "Resume" not in shown, shown
    assert widget.progress_label.text().startswith("Nothing was written"), (
        widget.progress_label.text()
    )
    # Resume ticked: a settings error still does not say to tick it
    widget.resume_box.setChecked(True)
    message = _run(qtbot, widget, notifications)
    assert "not a multiple" in message and "tick Resume" not in widget.progress_label.text()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    # the unfinished output refused as it is: that is where Resume helps
    widget.resume_box.setChecked(False)
    _retype(qtbot, widget.shards_edit, "")
    _retype(qtbot, widget.chunks_edit, "")
    message = _run(qtbot, widget, notifications)
    assert "already exists" in message, message
    assert "Resume" in widget.progress_label.text() and "Resume" in message, message
    # a complete output: another Output or Overwrite, and Resume is not offered
    done = tmp_path / "done.zarr"
    recompress(src, done)
    widget.destination_edit.setText(str(done))
    message = _run(qtbot, widget, notifications)
    assert "already exists" in message and "Resume" not in message, message
    assert "Resume" not in widget.progress_label.text(), widget.progress_label.text()
    assert zarr.open(str(out), mode="r").attrs[MARKER_KEY]["incomplete"]
    assert (out / JOURNAL_NAME).exists()


def test_save_dock_shards_follow_chunks_and_the_format(make_napari_viewer, qtbot, tmp_path):
    from napari_zarr_explorer._qt.save import SaveWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((3, 600, 700), np.uint16), name="cells")
    widget = SaveWidget(viewer)
    form = widget.form
    chunks, shards = form.chunks.native, form.shards.native
    default_chunks, default_shards = chunks.text(), shards.text()
    assert default_shards, "the data is saved sharded by default"
    _retype(qtbot, chunks, "1, 100, 100")
    values = [int(v) for v in shards.text().split(",")]
    rank = len(default_chunks.split(","))
    assert len(values) == rank and all(v % 100 == 0 for v in values[-2:]), shards.text()
    assert "not a multiple" not in str(form.estimate.value), form.estimate.value
    # two values for the last two axes: the estimate says how they apply
    _retype(qtbot, chunks, "100, 100")
    estimate = str(form.estimate.value)
    assert f"2 values for {rank}-D data apply to the last 2 axes" in estimate, estimate
    # Chunks emptied: the default chunks, and their shards
    _retype(qtbot, chunks, "")
    assert shards.text() == default_shards
    # OME-Zarr 0.4 has no shards: none shown; 0.5 gets the user's back
    _retype(qtbot, shards, "1, 512, 512")
    form.ome_version.value = "0.4"
    assert shards.text() == "" and not shards.isEnabled()
    form.ome_version.value = "0.5"
    assert shards.text() == "1, 512, 512" and shards.isEnabled()
    _retype(qtbot, chunks, "1, 128, 128")
    assert shards.text() == "1, 512, 512"
    assert default_chunks
