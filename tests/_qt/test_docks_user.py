"""The docks driven as a user drives them: clicks and typing in a real napari window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from qtkeys import type_text
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

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
