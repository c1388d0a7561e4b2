"""The docks driven as a user drives them: clicks and typing in a real napari window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from qtkeys import type_text
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

from napari_zarr_explorer._qt._common import format_bytes
from napari_zarr_explorer._qt.explorer import ExplorerWidget
from napari_zarr_explorer._qt.recompress import RecompressWidget
from napari_zarr_explorer.testing import write_array, write_ome_image

PLUGIN = "napari-zarr-explorer"


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def click_node(qtbot, explorer: ExplorerWidget, path: str) -> None:
    """Click the tree row of the node at *path* (expanding its parents as a user would)."""
    item = explorer._items[path]
    parent = item.parent()
    while parent is not None:
        parent.setExpanded(True)
        parent = parent.parent()
    explorer.tree.scrollToItem(item)
    rect = explorer.tree.visualItemRect(item)
    qtbot.mouseClick(explorer.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert explorer.selected_path == path


def type_into(qtbot, line_edit, text: str) -> None:
    """Select all of a line edit and type *text* over it."""
    line_edit.setFocus()
    line_edit.selectAll()
    qtbot.keyClick(line_edit, Qt.Key.Key_Delete)
    type_text(qtbot, line_edit, text)


def open_in_explorer(qtbot, explorer: ExplorerWidget, url: str) -> None:
    type_into(qtbot, explorer.location_edit, url)
    qtbot.mouseClick(explorer.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not explorer.busy, timeout=180000)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return write_ome_image(tmp_path / "img.ome.zarr", shape=(2, 4, 64, 64), levels=2)


@pytest.fixture
def docks(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    _, recompress = viewer.window.add_plugin_dock_widget(PLUGIN, "Recompress")
    return viewer, explorer, recompress


# ---------------------------------------------------------------- 1. never into the source


def test_default_output_is_a_sibling_and_inside_is_refused(
    docks, qtbot, image: Path, notifications
) -> None:
    _viewer, explorer, recompress = docks
    open_in_explorer(qtbot, explorer, str(image))
    click_node(qtbot, explorer, "0")  # a pyramid level, as in the report
    assert recompress.source == str(image / "0")
    assert recompress.form.output.value == str(image.parent / "img-recompressed.ome.zarr")
    before = _files(image)
    type_into(qtbot, recompress.destination_edit, str(image / "0-recompressed.zarr"))
    notifications.clear()
    qtbot.mouseClick(recompress.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not recompress.busy and bool(notifications), timeout=120000)
    assert any("inside the source store" in m for m in notifications)
    assert "Nothing was written" in recompress.progress_label.text()
    assert _files(image) == before
    assert recompress.run_button.isEnabled()


# ---------------------------------------------------------------- 5. the form keeps what was typed


def test_form_keeps_what_the_user_typed(docks, qtbot, image: Path, tmp_path: Path) -> None:
    _viewer, explorer, recompress = docks
    open_in_explorer(qtbot, explorer, str(image))
    click_node(qtbot, explorer, "0")
    mine = str(tmp_path / "mine.zarr")
    type_into(qtbot, recompress.destination_edit, mine)
    type_into(qtbot, recompress.chunks_edit, "1,1,32,32")
    recompress.format_combo.setCurrentIndex(1)  # Zarr v2, chosen by the user
    click_node(qtbot, explorer, "1")
    click_node(qtbot, explorer, "")
    assert recompress.source == str(image)
    assert recompress.form.output.value == mine
    assert recompress.form.chunks.value == "1,1,32,32"
    assert recompress.form.zarr_format.value == 2
    # the user may empty a field: it stays empty ("keep") too
    type_into(qtbot, recompress.chunks_edit, "")
    click_node(qtbot, explorer, "1")
    assert recompress.form.chunks.value == ""


# ---------------------------------------------------------------- 6. partial outputs


def test_partial_output_is_flagged_and_not_taken_as_source(
    docks, qtbot, image: Path, tmp_path: Path, notifications
) -> None:
    import threading

    from napari_zarr_explorer.recompress import recompress as run

    cancel = threading.Event()
    cancel.set()  # stop before the first task: the output is marked incomplete
    partial = tmp_path / "partial.zarr"
    assert run(image, partial, cancel=cancel, chunks=(1, 1, 16, 16)).cancelled
    _viewer, explorer, recompress = docks
    open_in_explorer(qtbot, explorer, str(image))
    assert recompress.source == str(image)
    notifications.clear()
    open_in_explorer(qtbot, explorer, str(partial))
    assert explorer.incomplete
    assert any("unfinished" in m for m in notifications)
    assert "(incomplete)" in explorer._items[""].text(1)
    assert "unfinished output" in explorer.array_view.toPlainText()
    assert recompress.source == str(image)  # not switched to the partial output
    assert "unfinished output" in recompress.progress_label.text()
    notifications.clear()
    qtbot.mouseClick(explorer.open_layer_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not explorer.busy, timeout=120000)
    assert any("unfinished" in m for m in notifications)


def test_an_unfinished_output_inside_a_folder_is_named_not_the_folder(
    docks, qtbot, image: Path, tmp_path: Path, notifications
) -> None:
    """A folder holding stores, one of them an unfinished output: the warning names that one
    (never 'the folder is an unfinished output... delete it'), and only it is marked."""
    import shutil
    import threading

    from napari_zarr_explorer.recompress import recompress as run

    folder = tmp_path / "collection"
    folder.mkdir()
    shutil.copytree(image, folder / "done.ome.zarr")
    cancel = threading.Event()
    cancel.set()
    assert run(image, folder / "partial.zarr", cancel=cancel, chunks=(1, 1, 16, 16)).cancelled
    _viewer, explorer, recompress = docks
    notifications.clear()
    open_in_explorer(qtbot, explorer, str(folder))
    assert not explorer.incomplete
    assert explorer.incomplete_paths == ("partial.zarr",)
    said = [m for m in notifications if "unfinished" in m]
    assert said and all("partial.zarr" in m for m in said), said
    assert not any(m.startswith(f"{folder} is an unfinished") for m in said), said
    assert "INCOMPLETE" not in explorer.status_label.text()
    marked = [p for p, item in explorer._items.items() if "(incomplete)" in item.text(1)]
    assert marked == ["partial.zarr"], marked
    # selected, the finished store becomes the Recompress source; the unfinished one does not
    explorer.select_path("done.ome.zarr")
    qtbot.waitUntil(lambda: recompress.source_path == "done.ome.zarr", timeout=10000)
    explorer.select_path("partial.zarr")
    qtbot.waitUntil(lambda: "unfinished output" in recompress.progress_label.text(), timeout=10000)
    assert recompress.source_path == "done.ome.zarr"
    assert "partial.zarr is an unfinished output" in recompress.progress_label.text()


def test_refusing_a_complete_output_says_so_in_the_docks_words(
    make_napari_viewer, qtbot, tmp_path: Path, notifications
) -> None:
    src = write_array(
        tmp_path / "a.zarr", np.arange(64 * 64, dtype="uint16").reshape(64, 64), chunks=(16, 16)
    )
    viewer = make_napari_viewer()
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(str(src), "", (64, 64))
    out = tmp_path / "done.zarr"
    type_into(qtbot, widget.destination_edit, str(out))
    with qtbot.waitSignal(widget.finished, timeout=180000):
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    # the button comes back once the run's thread has finished
    qtbot.waitUntil(lambda: widget.run_button.isEnabled() and not widget.busy, timeout=120000)
    notifications.clear()
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)  # again: the output exists
    qtbot.waitUntil(lambda: not widget.busy and bool(notifications), timeout=120000)
    text = widget.progress_label.text()
    assert "complete" in text and "incomplete" not in text
    assert not any("--" in m for m in notifications)
    # resuming a complete output says so instead of counting objects written
    widget.resume_box.click()
    qtbot.waitUntil(lambda: widget.run_button.isEnabled(), timeout=120000)
    with qtbot.waitSignal(widget.finished, timeout=180000) as blocker:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].ok
    assert "already complete" in widget.progress_label.text()


def test_cancelling_stays_visible(make_napari_viewer, qtbot, tmp_path: Path) -> None:
    src = write_array(
        tmp_path / "big.zarr",
        np.random.default_rng(0).integers(0, 60000, (64, 256, 256), dtype="uint16"),
        chunks=(1, 64, 64),
    )
    viewer = make_napari_viewer()
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(str(src), "", (64, 256, 256))
    type_into(qtbot, widget.destination_edit, str(tmp_path / "out.zarr"))
    type_into(qtbot, widget.chunks_edit, "1,16,16")
    type_into(qtbot, widget.shards_edit, "none")
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
    assert widget.progress_label.text().startswith("Cancelling")
    for _ in range(20):  # progress events arriving meanwhile do not overwrite it
        QApplication.processEvents()
        if not widget.busy:
            break
        assert widget.progress_label.text().startswith("Cancelling")
    qtbot.waitUntil(lambda: not widget.busy, timeout=180000)


# ---------------------------------------------------------------- 3. the Explorer follows


def test_explorer_follows_the_sample_and_the_layer_list(
    make_napari_viewer, qtbot, sample: Path
) -> None:
    viewer = make_napari_viewer(show=True)
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    assert explorer.url is None
    viewer.open_sample(PLUGIN, "ome-zarr-pyramid")  # File > Open Sample
    qtbot.waitUntil(lambda: explorer.url == str(sample) and not explorer.busy, timeout=120000)
    # the layer napari selected last (the labels) has its node selected
    assert explorer.selected_path == "labels/cells"
    # selecting a layer selects its node
    nuclei = viewer.layers["nuclei"]
    viewer.layers.selection.active = nuclei
    assert explorer.selected_path == ""
    # selecting a node highlights its layer
    click_node(qtbot, explorer, "labels/cells")
    assert viewer.layers.selection.active is viewer.layers["cells"]
    click_node(qtbot, explorer, "")
    assert {layer.name for layer in viewer.layers.selection} == {"nuclei", "membrane", "vesicles"}
    assert explorer.selected_path == ""


def test_explorer_follows_a_layer_of_another_store(
    make_napari_viewer, qtbot, sample: Path, image: Path
) -> None:
    viewer = make_napari_viewer(show=True)
    viewer.open_sample(PLUGIN, "ome-zarr-pyramid")
    # a dock opened after the layers follows the selected one at once
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    qtbot.waitUntil(lambda: explorer.url == str(sample) and not explorer.busy, timeout=120000)
    viewer.open(str(image), plugin=PLUGIN)
    qtbot.waitUntil(lambda: explorer.url == str(image) and not explorer.busy, timeout=120000)
    assert explorer.selected_path == ""
    viewer.layers.selection.active = viewer.layers["cells"]
    qtbot.waitUntil(lambda: explorer.url == str(sample) and not explorer.busy, timeout=120000)
    assert explorer.selected_path == "labels/cells"


# ---------------------------------------------------------------- 4. failures


def test_status_says_when_the_stored_size_is_unknown(
    make_napari_viewer, qtbot, tmp_path: Path, http_server
) -> None:
    """Over plain HTTP the store cannot list its keys: the status says the size is unknown."""
    write_ome_image(http_server.root / "img.ome.zarr", shape=(2, 64, 64), axes="cyx", levels=2)
    viewer = make_napari_viewer()
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    url = f"{http_server.url}/img.ome.zarr"
    open_in_explorer(qtbot, explorer, url)
    qtbot.waitUntil(lambda: explorer.url == url and not explorer.busy, timeout=120000)
    status = explorer.status_label.fullText()
    assert "stored size unknown" in status and "- stored" not in status, status


def test_failures_notify_and_are_not_remembered(
    make_napari_viewer, qtbot, tmp_path: Path, notifications
) -> None:
    viewer = make_napari_viewer()
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    notifications.clear()
    open_in_explorer(qtbot, explorer, "http://127.0.0.1:9/x.zarr")
    qtbot.waitUntil(lambda: bool(notifications), timeout=180000)
    assert any("127.0.0.1:9" in m for m in notifications)
    assert explorer.status_label.fullText().startswith("Could not read")
    folder = tmp_path / "not-zarr"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    notifications.clear()
    open_in_explorer(qtbot, explorer, str(folder))
    qtbot.waitUntil(lambda: bool(notifications), timeout=120000)
    assert any("not a Zarr store" in m and "not-zarr" in m for m in notifications)
    assert explorer.recent_stores() == []
    assert explorer.url is None


# ---------------------------------------------------------------- 9. default reader offer


@pytest.fixture
def offer_not_answered():
    """No answer to the default-reader offer saved, and the plugin not napari's default for
    ``*.zarr`` folders (napari's setting restored afterwards); yields napari's settings."""
    from napari.settings import get_settings

    from napari_zarr_explorer._qt import _reader_offer

    _reader_offer.settings_path().unlink(missing_ok=True)
    _reader_offer._OFFERED.clear()
    settings = get_settings()
    saved = dict(settings.plugins.extension2reader)
    settings.plugins.extension2reader = {
        k: v for k, v in saved.items() if k != _reader_offer.PATTERN
    }
    try:
        yield settings
    finally:
        settings.plugins.extension2reader = saved


def test_default_reader_offered_once_and_a_no_is_kept(
    make_napari_viewer, qtbot, offer_not_answered
) -> None:
    from napari.utils.notifications import notification_manager

    from napari_zarr_explorer._qt import _reader_offer

    viewer = make_napari_viewer()
    n = len(notification_manager.records)
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    offers = [r for r in notification_manager.records[n:] if "by default" in r.message]
    assert len(offers) == 1
    actions = dict(offers[0].actions)
    actions["No, keep asking"]()  # the toast's button
    assert json.loads(_reader_offer.settings_path().read_text())["default_reader"] == "no"
    _reader_offer._OFFERED.clear()  # a new session
    n = len(notification_manager.records)
    again = ExplorerWidget(viewer)
    assert not any("by default" in r.message for r in notification_manager.records[n:])
    again.deleteLater()
    # yes sets napari's own setting
    actions["Yes, by default"]()
    assert offer_not_answered.plugins.extension2reader[_reader_offer.PATTERN] == PLUGIN
    assert explorer is not None


def test_default_reader_offer_names_the_plugin_as_its_source(
    make_napari_viewer, qtbot, offer_not_answered
) -> None:
    """The toast's "Source:" line names the plugin, not napari's notification manager object."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from napari.utils.notifications import notification_manager

    shown: list[str] = []

    def as_napari_shows_it(event) -> None:  # napari builds its toast inside this emission
        if "by default" in event.message:
            toast = NapariQtNotification.from_notification(event)
            shown.append(toast.source_label.text())
            toast.deleteLater()

    notification_manager.notification_ready.connect(as_napari_shows_it)
    try:
        viewer = make_napari_viewer()
        viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
        assert shown == ["Source: napari-zarr-explorer"]
    finally:
        notification_manager.notification_ready.disconnect(as_napari_shows_it)


def test_explorer_follows_a_dropped_store(make_napari_viewer, qtbot, image: Path) -> None:
    from napari.settings import get_settings
    from test_opening import _drop

    settings = get_settings()
    saved = dict(settings.plugins.extension2reader)
    settings.plugins.extension2reader = {**saved, "*.zarr/": PLUGIN}  # no reader question
    try:
        viewer = make_napari_viewer(show=True)
        _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
        assert "Open a store" in explorer.status_label.fullText()
        _drop(viewer, image)
        qtbot.waitUntil(lambda: explorer.url == str(image) and not explorer.busy, timeout=120000)
        assert explorer.selected_path == ""
        assert explorer.recent_stores() == [str(image)]
    finally:
        settings.plugins.extension2reader = saved


def test_rgb_image_opens_as_one_rgb_layer(make_napari_viewer, qtbot, tmp_path: Path) -> None:
    store = write_ome_image(
        tmp_path / "photo.ome.zarr",
        shape=(3, 48, 64),
        axes="cyx",
        levels=2,
        dtype="uint8",
        channels=(("R", "FF0000"), ("G", "00FF00"), ("B", "0000FF")),
    )
    viewer = make_napari_viewer()
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    open_in_explorer(qtbot, explorer, str(store))
    click_node(qtbot, explorer, "")
    qtbot.mouseClick(explorer.open_layer_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(viewer.layers) == 1 and not explorer.busy, timeout=120000)
    (layer,) = viewer.layers
    assert layer.rgb and layer.data[0].shape == (48, 64, 3)


# ---------------------------------------------------------------- the dock's own words


def _small_run(make_napari_viewer, tmp_path: Path):
    src = write_array(
        tmp_path / "small.zarr", np.arange(64 * 64, dtype="uint16").reshape(64, 64), chunks=(16, 16)
    )
    viewer = make_napari_viewer()
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(str(src), "", (64, 64))
    return src, widget


def test_a_cancel_after_every_task_ran_says_the_run_finished(
    make_napari_viewer, qtbot, tmp_path: Path
) -> None:
    _src, widget = _small_run(make_napari_viewer, tmp_path)
    type_into(qtbot, widget.destination_edit, str(tmp_path / "out.zarr"))
    clicked = []

    def cancel_once_all_ran(update) -> None:
        event = update[3]
        done = getattr(event, "objects_done", 0)
        if not clicked and done and done == getattr(event, "objects_total", -1):
            clicked.append(done)  # every task has run: the cancel comes too late
            qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)

    with qtbot.waitSignal(widget.finished, timeout=120000) as blocker:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
        widget._run_task.progressed.connect(cancel_once_all_ran)
    report = blocker.args[0]
    assert clicked and report.complete and not report.cancelled
    text = widget.progress_label.text()
    assert text.startswith("The run finished before the cancel took effect. Done: "), text
    assert text.endswith(report.done_line() + ", verified.")
    assert "Cancelling" not in text and "ancelled" not in text
    # the next run, not cancelled, just says it is done (its button comes back once the last
    # run's task has ended, a moment after its report)
    widget.overwrite_box.click()
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=60000)
    with qtbot.waitSignal(widget.finished, timeout=120000):
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert widget.progress_label.text().startswith("Done: ")


def test_output_inside_the_source_suggests_what_the_dock_offers(
    docks, qtbot, image: Path, notifications
) -> None:
    _viewer, explorer, recompress = docks
    open_in_explorer(qtbot, explorer, str(image))
    click_node(qtbot, explorer, "")
    type_into(qtbot, recompress.destination_edit, str(image / "copy.zarr"))
    notifications.clear()
    qtbot.mouseClick(recompress.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not recompress.busy and bool(notifications), timeout=120000)
    (message,) = [m for m in notifications if "overlaps the source" in m]
    assert message.endswith("Choose another Output folder, outside the source."), message
    assert "replace" not in message and "--" not in message
    assert "Nothing was written" in recompress.progress_label.text()
    assert recompress.report_view.toPlainText() == message  # stays when the toast goes


def test_cancelled_report_and_resume_hints_speak_the_docks_words(
    make_napari_viewer, qtbot, tmp_path: Path, notifications
) -> None:
    _src, widget = _small_run(make_napari_viewer, tmp_path)
    type_into(qtbot, widget.destination_edit, str(tmp_path / "out.zarr"))
    type_into(qtbot, widget.chunks_edit, "8,8")
    type_into(qtbot, widget.shards_edit, "none")
    with qtbot.waitSignal(widget.finished, timeout=120000) as blocker:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)  # before any task
    assert blocker.args[0].cancelled
    shown = widget.report_view.toPlainText()
    assert "CANCELLED (tick Resume and run again to continue)" in shown, shown
    assert "continue with resume" not in shown
    qtbot.waitUntil(lambda: widget.run_button.isEnabled() and not widget.busy, timeout=120000)
    # resuming with other settings is refused with the dock's words for what to do
    widget.set_compressor("gzip:6")
    widget.resume_box.click()
    notifications.clear()
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.busy and bool(notifications), timeout=120000)
    (message,) = [m for m in notifications if "different settings" in m]
    assert message.endswith("Resume with the same settings, or tick Overwrite to start again.")
    assert "--" not in message


def test_every_command_line_hint_of_a_recompression_reads_in_dock_words() -> None:
    """Each hint the core gives about a run, once translated, names no command-line flag."""
    import re

    from napari_zarr_explorer._qt._common import dock_words

    root = Path(__file__).resolve().parents[2] / "src" / "napari_zarr_explorer"
    sources = [*sorted((root / "recompress").glob("*.py")), root / "estimate.py"]
    hints = []
    for source in sources:
        text = source.read_text(encoding="utf-8")
        # the string literals of each hint= and message, joined as Python joins them
        for call in re.findall(r"hint=\(?((?:\s*f?\"[^\"]*\"\s*)+)", text):
            hints.append("".join(re.findall(r"\"([^\"]*)\"", call)))
    flagged = [h for h in hints if "--" in h]
    assert flagged, "no hint with a flag found: the pattern above needs updating"
    # replacing the source is command-line only: the dock never asks for it
    flagged = [h for h in flagged if not h.startswith("Drop --replace")]
    left = [dock_words(h) for h in flagged]
    assert [h for h in left if "--" in h] == []


# ---------------------------------------------------------------- estimate of a whole run


def test_estimate_summarises_every_level_the_run_writes(docks, qtbot, image: Path) -> None:
    from napari_zarr_explorer._qt._common import format_bytes

    _viewer, explorer, recompress = docks
    open_in_explorer(qtbot, explorer, str(image))
    click_node(qtbot, explorer, "")
    qtbot.mouseClick(recompress.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: recompress.run_estimate is not None, timeout=120000)
    qtbot.waitUntil(lambda: not recompress.busy, timeout=120000)
    text = recompress.estimate_label.text()

    def stored(level: str) -> int:  # the bytes of its chunks, as the run counts them
        files = (image / level).rglob("*")
        return sum(f.stat().st_size for f in files if f.is_file() and f.name != "zarr.json")

    now = stored("0") + stored("1")
    assert text.startswith(f"The run writes 2 arrays: now {format_bytes(now)} in all"), text
    run = recompress.run_estimate
    projected = run.projected(0)
    per_level = [run.projected_of(a, 0) for a in run.arrays]
    assert [a.path for a in run.arrays] == ["0", "1"]
    assert projected == sum(per_level)
    chosen = recompress.compressor_text()
    assert (
        f"-> about {format_bytes(projected)} with {chosen} ({projected / now:.0%} of now)" in text
    )
    for level, size in zip(("0", "1"), per_level, strict=True):
        assert f"{level}: {format_bytes(stored(level))} -> {format_bytes(size)}" in text
    # the table's first row is the same run in all
    assert recompress.estimate_table.item(0, 2).text() == format_bytes(projected)
    # one array alone is named by its path
    click_node(qtbot, explorer, "1")
    qtbot.mouseClick(recompress.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: not recompress.busy and recompress.estimate_label.text().startswith("1: now"),
        timeout=120000,
    )


def test_a_run_estimated_to_grow_is_warned_about(make_napari_viewer, qtbot, tmp_path) -> None:
    smooth = np.tile(np.arange(128, dtype="uint16"), (128, 1))  # compresses well: stored small
    src = write_array(tmp_path / "smooth.zarr", smooth, chunks=(32, 32))
    viewer = make_napari_viewer(show=True)
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(str(src), "", smooth.shape)
    combo = widget.compressor_combo
    combo.setCurrentIndex(combo.findText("none"))  # stored raw: larger than now
    assert widget.compressor_text() == "none"
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.run_estimate is not None and not widget.busy, timeout=120000)
    assert widget.estimate_warning.isVisible()
    warning = widget.estimate_warning.text()
    now, after = widget.run_estimate.bytes_now, widget.run_estimate.projected(0)
    larger = round(100 * (after - now) / now)
    assert larger > 15
    assert warning.startswith(
        f"Warning: the estimate predicts the output will be {larger}% larger than the source"
    ), warning
    assert "choose a stronger codec" in warning.lower() and "keep the source" in warning
    assert widget.run_button.isEnabled()  # a warning, not a refusal
    # choosing a smaller row of the table takes the warning away
    row = next(
        r
        for r in range(widget.estimate_table.rowCount())
        if widget.estimate_table.item(r, 0).text() == "zstd:3"
    )
    widget.estimate_table.scrollToItem(widget.estimate_table.item(row, 0))
    rect = widget.estimate_table.visualItemRect(widget.estimate_table.item(row, 0))
    qtbot.mouseClick(widget.estimate_table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(
        widget.estimate_table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()
    )
    assert widget.compressor_text() == "zstd:3"
    assert not widget.estimate_warning.isVisible()


# ---------------------------------------------------------------- messages as sentences


def test_error_messages_start_with_a_capital_letter(
    make_napari_viewer, qtbot, tmp_path: Path, notifications
) -> None:
    viewer = make_napari_viewer()
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    folder = tmp_path / "plain"
    folder.mkdir()
    notifications.clear()
    open_in_explorer(qtbot, explorer, str(folder))
    qtbot.waitUntil(lambda: bool(notifications), timeout=120000)
    assert any(m.startswith("No Zarr metadata at ") and str(folder) in m for m in notifications)
    # the recompress dock: a shape that is not one
    _src, widget = _small_run(make_napari_viewer, tmp_path)
    type_into(qtbot, widget.chunks_edit, "a,b")
    notifications.clear()
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(notifications), timeout=30000)
    assert notifications[-1][0].isupper(), notifications


def test_capitalised_messages_keep_paths_and_names() -> None:
    from napari_zarr_explorer._qt._common import capitalized

    assert capitalized("cannot open /data/a.zarr") == "Cannot open /data/a.zarr"
    assert capitalized("no node at x: nothing") == "No node at x: nothing"
    for kept in ("/data/a.zarr: missing", "s3://bucket/a.zarr: denied", "zarr.json is bad", ""):
        assert capitalized(kept) == kept
    assert capitalized("Already") == "Already"


def test_estimate_of_a_group_with_an_empty_array_still_totals(
    make_napari_viewer, qtbot, tmp_path: Path
) -> None:
    import zarr

    from napari_zarr_explorer._qt._common import format_bytes

    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("data", shape=(64, 64), chunks=(16, 16), dtype="uint16")[:] = np.arange(
        64 * 64, dtype="uint16"
    ).reshape(64, 64)
    group.create_array("empty", shape=(64, 64), chunks=(16, 16), dtype="uint16", fill_value=0)
    viewer = make_napari_viewer()
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(str(tmp_path / "g.zarr"), "", None)
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.run_estimate is not None and not widget.busy, timeout=120000)
    run = widget.run_estimate
    assert sorted(a.path for a in run.arrays) == ["data", "empty"]
    projected = run.projected(0)
    assert projected is not None and projected > 0
    assert widget.estimate_table.item(0, 2).text() == format_bytes(projected)
    assert "The run writes 2 arrays" in widget.estimate_label.text()
    assert f"-> about {format_bytes(projected)}" in widget.estimate_label.text()


# ---------------------------------------------------------------- the estimate as a user reads it


def _group_with_an_empty_first_array(root: Path) -> Path:
    import zarr

    group = zarr.open_group(str(root), mode="w")
    group.create_array("a", shape=(64, 64), chunks=(16, 16), dtype="uint16", fill_value=0)
    group.create_array("b", shape=(64, 64), chunks=(16, 16), dtype="uint16")[:] = np.arange(
        64 * 64, dtype="uint16"
    ).reshape(64, 64)
    return root


def test_an_estimate_whose_first_array_stores_nothing_says_what_was_sampled(
    make_napari_viewer, qtbot, tmp_path: Path
) -> None:
    from dataclasses import replace

    from napari_zarr_explorer._qt.recompress import estimate_summary

    src = _group_with_an_empty_first_array(tmp_path / "g.zarr")
    viewer = make_napari_viewer()
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(str(src), "", None)
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.run_estimate is not None and not widget.busy, timeout=120000)
    run = widget.run_estimate
    assert [a.path for a in run.arrays] == ["a", "b"]
    assert run.arrays[0].report.chunks_sampled == 0
    sampled = run.arrays[1].report.chunks_sampled
    assert sampled > 0
    text = widget.estimate_label.text()
    assert f"Sampled up to {sampled} chunks per array" in text, text
    # the speeds are those measured on the array that was sampled
    assert widget.estimate_table.item(0, 3).text() != "-"
    assert widget.estimate_table.item(0, 4).text() != "-"
    one_more = replace(run, unsampled=1, unsampled_nbytes=100, unsampled_now=100)
    assert (
        "1 array was not sampled: it is projected at the compression ratio of those sampled."
        in (estimate_summary(one_more))
    )
    two_more = replace(run, unsampled=2, unsampled_nbytes=100, unsampled_now=100)
    assert "2 arrays were not sampled: they are projected" in estimate_summary(two_more)


def test_an_estimate_of_a_run_that_cannot_be_planned_says_so(
    make_napari_viewer, qtbot, tmp_path: Path
) -> None:
    """A group the run refuses (an array of text): the first array's figures say they are its."""
    import warnings

    import zarr

    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=2)
    smooth = np.tile(np.arange(128, dtype="uint16"), (128, 1))  # stored raw: larger than now
    group.create_array("a", shape=smooth.shape, chunks=(32, 32), dtype="uint16")[:] = smooth
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: fixed-length bytes are not in the v3 spec
        group.create_array("b", shape=(4,), chunks=(4,), dtype="S4")[:] = np.array([b"ab"] * 4)
    viewer = make_napari_viewer(show=True)
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(str(tmp_path / "g.zarr"), "", None)
    combo = widget.compressor_combo
    combo.setCurrentIndex(combo.findText("none"))
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.run_estimate is not None and not widget.busy, timeout=120000)
    text = widget.estimate_label.text()
    said = "The run as set cannot be planned: "
    only = "The figures are for the first array only (a)."
    assert text.startswith(said) and "cannot be recompressed" in text, text
    assert widget.estimate_warning.isVisible()
    warning = widget.estimate_warning.text()
    assert warning.startswith("Warning: the estimate predicts"), warning
    # said once, in the summary the user reads first: the warning under it does not repeat it
    shown = text + "\n" + warning
    assert shown.count(said) == 1 and shown.count(only) == 1, shown
    assert said not in warning and only not in warning, warning
    label = widget.estimate_label
    qtbot.waitUntil(lambda: label.visibleRegion().boundingRect() == label.rect())


@pytest.mark.parametrize("path", ["", "0"], ids=["image", "level"])
def test_an_estimate_of_a_store_that_cannot_list_says_its_size_now_is_unknown(
    make_napari_viewer, qtbot, http_server, path: str, screenshot_dir: Path
) -> None:
    """Over plain HTTP the size stored now is unknown: said in words, the projection still shown."""
    write_ome_image(http_server.root / "img.ome.zarr", shape=(2, 64, 64), axes="cyx", levels=2)
    url = f"{http_server.url}/img.ome.zarr"
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1280, 800)
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(url, path, None)
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.run_estimate is not None and not widget.busy, timeout=120000)
    run = widget.run_estimate
    assert run.bytes_now is None  # the store cannot list: nothing to add up
    projected = run.projected(0)
    assert projected
    text = widget.estimate_label.text()
    assert "stored size now unknown" in text, text
    assert " - " not in text and ": -" not in text and "?" not in text, text
    # the projected size is still said, for the whole run and per array
    in_all = "" if path else " in all"
    assert f"projected about {format_bytes(projected)}{in_all} with zstd:3" in text, text
    if not path:
        for a in run.arrays:
            assert f"{a.path}: unknown now -> {format_bytes(run.projected_of(a, 0))}" in text
    assert widget.estimate_table.item(0, 2).text() == format_bytes(projected)
    assert not widget.estimate_warning.isVisible()  # no comparison with an unknown size
    label = widget.estimate_label
    qtbot.waitUntil(lambda: label.visibleRegion().boundingRect() == label.rect())
    widget.grab().save(str(screenshot_dir / f"recompress-size-unknown-{path or 'image'}.png"))


def test_the_growth_warning_goes_when_the_settings_change(
    make_napari_viewer, qtbot, tmp_path: Path
) -> None:
    smooth = np.tile(np.arange(128, dtype="uint16"), (128, 1))
    src = write_array(tmp_path / "smooth.zarr", smooth, chunks=(32, 32))
    viewer = make_napari_viewer(show=True)
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(str(src), "", smooth.shape)
    combo = widget.compressor_combo
    combo.setCurrentIndex(combo.findText("none"))
    qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.run_estimate is not None and not widget.busy, timeout=120000)
    assert widget.estimate_warning.isVisible()
    summary = widget.estimate_label.text()
    chunks = widget.chunks_edit.text()
    type_into(qtbot, widget.chunks_edit, "16,16")
    qtbot.waitUntil(lambda: not widget.estimate_warning.isVisible(), timeout=5000)
    assert widget.estimate_label.text().startswith("This estimate is for other settings")
    # back to the settings estimated: the warning and the summary return
    type_into(qtbot, widget.chunks_edit, chunks)
    qtbot.waitUntil(lambda: widget.estimate_warning.isVisible(), timeout=5000)
    assert widget.estimate_label.text() == summary
    widget.format_combo.setCurrentIndex(widget.format_combo.findText("Zarr v2 (OME 0.4)"))
    assert not widget.estimate_warning.isVisible()
    assert widget.estimate_label.text().startswith("This estimate is for other settings")


def test_a_cancelled_estimate_says_it_was_cancelled(
    make_napari_viewer, qtbot, tmp_path: Path, monkeypatch
) -> None:
    """Whether the estimate stops with its partial figures or with an error."""
    import importlib

    from napari_zarr_explorer.errors import ExplorerError

    core = importlib.import_module("napari_zarr_explorer.estimate")

    real = core.estimate_run

    def after_cancel(*args, **kwargs):
        cancel = args[6]
        assert cancel.wait(60)
        return real(*args, **kwargs)

    def fails_after_cancel(*args, **kwargs):
        assert args[6].wait(60)
        raise ExplorerError("the store went away")

    _src, widget = _small_run(make_napari_viewer, tmp_path)
    for work in (fails_after_cancel, after_cancel):
        monkeypatch.setattr(core, "estimate_run", work)
        qtbot.mouseClick(widget.estimate_button, Qt.MouseButton.LeftButton)
        assert widget.estimate_label.text() == "Estimating on sampled chunks..."
        qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
        assert widget.estimate_label.text().startswith("Cancelling the estimate")
        qtbot.waitUntil(lambda: not widget.busy, timeout=120000)
        qtbot.waitUntil(
            lambda: widget.estimate_label.text().startswith("Estimate cancelled"), timeout=5000
        )
        assert "Sampled" not in widget.estimate_label.text()


def test_names_with_markup_show_as_typed(docks, qtbot, tmp_path: Path) -> None:
    """A node named ``a<b>b`` reads as its name in every label, never as bold text."""
    data = np.arange(32 * 32, dtype="uint16").reshape(32, 32)
    store = write_array(tmp_path / "g.zarr", data, chunks=(16, 16), name="a<b>b")
    viewer, explorer, recompress = docks
    _, chunkmap = viewer.window.add_plugin_dock_widget(PLUGIN, "Chunk map")
    _, save = viewer.window.add_plugin_dock_widget(PLUGIN, "Save as OME-Zarr")
    open_in_explorer(qtbot, explorer, str(store))
    click_node(qtbot, explorer, "a<b>b")
    qtbot.mouseClick(recompress.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: recompress.run_estimate is not None, timeout=120000)
    qtbot.waitUntil(lambda: not recompress.busy, timeout=120000)
    assert "a<b>b" in recompress.estimate_label.text()
    assert "a<b>b" in recompress.source_label.fullText()
    for label in (
        recompress.estimate_label,
        recompress.estimate_warning,
        recompress.progress_label,
        recompress.source_label,
        explorer.status_label,
        explorer.summary_codecs,
        save.status.native,
        save.form.estimate.native,
        chunkmap.layer_label,
        chunkmap.summary_label,
        chunkmap.view_label,
        chunkmap.mouse_label,
    ):
        assert label.textFormat() == Qt.TextFormat.PlainText, label


def test_another_store_does_not_inherit_the_output_or_overwrite(
    docks, qtbot, image: Path, tmp_path: Path
) -> None:
    """An Output typed, and Overwrite ticked, for one store must not replace another's result."""
    _viewer, explorer, recompress = docks
    open_in_explorer(qtbot, explorer, str(image))
    mine = str(tmp_path / "first-result.zarr")
    type_into(qtbot, recompress.destination_edit, mine)
    recompress.overwrite_box.click()
    with qtbot.waitSignal(recompress.finished, timeout=120000):
        qtbot.mouseClick(recompress.run_button, Qt.MouseButton.LeftButton)
    assert recompress.progress_label.text().startswith("Done: ")
    assert recompress.open_result_button.isEnabled()
    other = write_ome_image(tmp_path / "other.ome.zarr", shape=(1, 2, 32, 32), levels=1)
    open_in_explorer(qtbot, explorer, str(other))
    assert recompress.source == str(other)
    # the other store's own default, nothing ticked that would replace anything
    assert recompress.form.output.value == str(tmp_path / "other-recompressed.ome.zarr")
    assert not recompress.overwrite_box.isChecked() and not recompress.resume_box.isChecked()
    # what was said about the first store's run is gone
    assert recompress.progress_label.text() == ""
    assert recompress.report_view.toPlainText() == ""
    assert not recompress.open_result_button.isEnabled()
    # within one store, a node change keeps what was typed (and ticked)
    type_into(qtbot, recompress.destination_edit, mine)
    recompress.overwrite_box.click()
    click_node(qtbot, explorer, "0")
    assert recompress.form.output.value == mine and recompress.overwrite_box.isChecked()


def test_progress_lines_read_as_words(make_napari_viewer, qtbot, tmp_path: Path) -> None:
    _src, widget = _small_run(make_napari_viewer, tmp_path)
    type_into(qtbot, widget.destination_edit, str(tmp_path / "out.zarr"))
    seen: list[str] = []
    with qtbot.waitSignal(widget.finished, timeout=120000):
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
        widget._run_task.progressed.connect(lambda *_: seen.append(widget.progress_label.text()))
    lines = [t for t in seen if "objects," in t]
    assert lines and all(t.startswith(("Planning", "Writing", "Checking", "Done")) for t in lines)
    assert any(t.startswith("Writing: ") for t in lines), lines
