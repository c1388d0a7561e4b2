"""The Recompress and Save docks when the remote side fails, through real loopback servers.

A source served over HTTP whose chunk requests fail, an S3 output the server refuses: the dock
says what failed, naming the URL, keeps working, and damages nothing (the source is untouched,
no output looks complete, a save keeps nothing).
"""

from __future__ import annotations

import os
import re
import uuid

import numpy as np
import pytest
import zarr
from qtpy.QtCore import Qt

from napari_zarr_explorer._qt.recompress import RecompressWidget, output_state
from napari_zarr_explorer._qt.save import SaveWidget
from napari_zarr_explorer.testing import write_array, write_ome_image
from servers import AWS_VARS


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast: one retry after a short backoff."""
    monkeypatch.setenv("NZE_REMOTE_RETRIES", "1")
    monkeypatch.setenv("NZE_REMOTE_BACKOFF", "0.01")
    monkeypatch.setenv("NZE_REMOTE_TIMEOUT", "5")


@pytest.fixture
def s3_env(s3_server, monkeypatch: pytest.MonkeyPatch, tmp_path):
    """napari started with the loopback S3 endpoint and credentials in its environment."""
    for var in AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    for var, value in s3_server.credentials_env.items():
        monkeypatch.setenv(var, value)
    return s3_server


def _files(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _recompress_dock(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.window._qt_window.resize(1280, 800)
    return viewer, widget


def _click_run(qtbot, widget, notifications) -> str:
    notifications.clear()
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.busy, timeout=120000)
    qtbot.waitUntil(lambda: bool(notifications), timeout=10000)
    return notifications[-1]


def test_recompress_dock_source_chunks_failing_over_http(
    make_napari_viewer, qtbot, http_server, tmp_path, notifications, screenshot_dir
):
    data = (np.arange(4 * 64 * 64, dtype="uint16").reshape(4, 64, 64) * 7) % 1000
    src = write_array(http_server.root / "a.zarr", data, zarr_format=3, chunks=(1, 32, 32))
    served = _files(src)
    url = f"{http_server.url}/a.zarr"
    _, widget = _recompress_dock(make_napari_viewer)
    widget.set_source(url, "", data.shape)
    out = tmp_path / "out.zarr"
    widget.destination_edit.setText(str(out))
    http_server.fail("a.zarr/c/2/*", 500)  # the third plane's chunks
    message = _click_run(qtbot, widget, notifications)
    # what failed, where: the chunk's URL and the server's answer
    assert f"{url}/c/2/" in message and "HTTP 500" in message, message
    assert widget.report_view.toPlainText() == message
    # the run stopped partway: Resume continues it once the server is back
    status = widget.progress_label.text()
    assert "incomplete" in status and "Resume" in status, status
    assert output_state(str(out)) == "incomplete"
    assert widget.run_button.isEnabled() and widget.report is None
    # what became of the output is in view, whole, above the message
    label = widget.progress_label
    qtbot.waitUntil(lambda: label.visibleRegion().boundingRect() == label.rect())
    widget.grab().save(str(screenshot_dir / "recompress-remote-failure.png"))
    # the server is back: Resume finishes it, every value as the source's
    http_server.clear_faults()
    widget.resume_box.setChecked(True)
    with qtbot.waitSignal(widget.finished, timeout=120000) as blocker:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].ok and blocker.args[0].resumed
    np.testing.assert_array_equal(zarr.open_array(str(out), mode="r")[...], data)
    assert _files(src) == served


def test_recompress_dock_output_bucket_refuses_writes(
    make_napari_viewer, qtbot, tmp_path, notifications, s3_env
):
    data = np.arange(2 * 32 * 32, dtype="uint16").reshape(2, 32, 32)
    src = write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    before = _files(src)
    _, widget = _recompress_dock(make_napari_viewer)
    widget.set_source(str(src), "", data.shape)
    # a bucket that is not there: the server refuses every write
    url = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/out.zarr"
    widget.destination_edit.setText(url)
    message = _click_run(qtbot, widget, notifications)
    assert url in message, message
    assert "bucket" in message, message
    # a sentence, not an exception's type name and text (``ClientError: ...``)
    assert not re.match(r"[\w.]*(Error|Exception)\b", message), message
    status = widget.progress_label.text()
    assert status.startswith("Nothing was written"), status
    assert "Resume" not in status + message, status + message
    assert widget.run_button.isEnabled()
    assert _files(src) == before


def test_save_dock_layer_chunks_failing_over_http(
    make_napari_viewer, qtbot, http_server, tmp_path, notifications, screenshot_dir
):
    write_ome_image(http_server.root / "img.ome.zarr", shape=(2, 64, 64), axes="cyx", levels=1)
    # the chunks fail from the start: napari shows them as the fill value, with a warning
    http_server.fail("img.ome.zarr/0/c/*", 500)
    viewer = make_napari_viewer(show=True)
    viewer.open(f"{http_server.url}/img.ome.zarr", plugin="napari-zarr-explorer")
    assert len(viewer.layers) >= 1
    widget = SaveWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.window._qt_window.resize(1280, 800)
    out = tmp_path / "copy.ome.zarr"
    widget.form.path.value = str(out)
    with qtbot.waitSignal(widget.finished, timeout=120_000):
        qtbot.mouseClick(widget.form.save_button.native, Qt.MouseButton.LeftButton)
    status = widget.status.value
    # a save speaks of saving, names the chunk's URL, and offers no Resume it does not have
    assert status.startswith("Saving"), status
    assert "Recompress" not in status and "Resume" not in status, status
    assert f"{http_server.url}/img.ome.zarr/0/c/" in status and "HTTP 500" in status, status
    assert "Nothing was kept" in status, status
    # the form was filled in all the same (its estimate samples what napari shows)
    assert widget.form.chunks.value and widget.form.shards.value
    # the message is scrolled into view, whole
    status_label = widget.status.native

    def shown_whole() -> bool:
        tall = status_label.height() >= status_label.heightForWidth(status_label.width())
        return tall and status_label.visibleRegion().boundingRect() == status_label.rect()

    qtbot.waitUntil(shown_whole)
    viewer.screenshot(str(screenshot_dir / "save-remote-failure.png"), canvas_only=False)
    # nothing written with the chunks it could not read (no zeros saved as data)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if "copy" in p.name] == []
    assert widget.form.save_button.enabled


def test_save_dock_plate_with_a_well_failing_over_http(
    make_napari_viewer, qtbot, http_server, tmp_path, notifications, screenshot_dir
):
    """napari shows a plate well it cannot read as empty; the Save dock never saves it so."""
    import json

    from napari_zarr_explorer.testing import write_plate

    root = write_plate(http_server.root / "plate.zarr", version="0.4", rows=2, cols=2, fields=1)
    # B/1 keeps its fields under other paths (its own metadata says where) ...
    well = root / "B" / "1"
    (well / "0").rename(well / "field-0")
    doc = json.loads((well / ".zattrs").read_text())
    doc["well"]["images"][0]["path"] = "field-0"
    (well / ".zattrs").write_text(json.dumps(doc))
    # ... and the server fails on that metadata: napari shows the well empty, with a warning
    http_server.fail("plate.zarr/B/1/.z*", 500)
    url = f"{http_server.url}/plate.zarr"
    viewer = make_napari_viewer(show=True)
    viewer.open(url, plugin="napari-zarr-explorer")
    assert len(viewer.layers) >= 1
    widget = SaveWidget(viewer)
    viewer.window.add_dock_widget(widget)
    viewer.window._qt_window.resize(1280, 800)
    out = tmp_path / "plate-copy.ome.zarr"
    widget.form.path.value = str(out)
    with qtbot.waitSignal(widget.finished, timeout=120_000):
        qtbot.mouseClick(widget.form.save_button.native, Qt.MouseButton.LeftButton)
    status = widget.status.value
    assert status.startswith("Saving"), status
    assert f"{url}/B/1: well 'B/1' could not be read" in status, status
    assert "HTTP 500" in status and "Nothing was kept" in status, status
    status_label = widget.status.native

    def shown_whole() -> bool:
        tall = status_label.height() >= status_label.heightForWidth(status_label.width())
        return tall and status_label.visibleRegion().boundingRect() == status_label.rect()

    qtbot.waitUntil(shown_whole)
    viewer.screenshot(str(screenshot_dir / "save-plate-well-failure.png"), canvas_only=False)
    # nothing written, no zeros saved as the well's data
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if "plate-copy" in p.name] == []
    assert widget.form.save_button.enabled


def test_save_dock_to_a_bucket_that_refuses_writes(
    make_napari_viewer, qtbot, tmp_path, notifications, s3_env
):
    viewer = make_napari_viewer()
    viewer.add_image(np.ones((64, 64), np.uint16), name="cells")
    widget = SaveWidget(viewer)
    url = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/cells.ome.zarr"
    # typed into the box, as a user gives a URL
    box = widget.form.path.line_edit.native
    box.setFocus()
    qtbot.keyClicks(box, url)
    with qtbot.waitSignal(widget.finished, timeout=120_000):
        qtbot.mouseClick(widget.form.save_button.native, Qt.MouseButton.LeftButton)
    status = widget.status.value
    assert url in status and "bucket" in status, status
    assert "Recompress" not in status and "Resume" not in status, status
    assert "FileNotFoundError" not in status, status
    assert widget.form.save_button.enabled
    # nothing was made locally from the URL's text either
    assert not any("no-such-bucket" in str(p) for p in tmp_path.parent.rglob("*s3:*"))
    assert not os.path.exists("s3:")


def test_recompress_dock_run_cancelled_then_failing_says_it_ended(
    make_napari_viewer, qtbot, http_server, tmp_path, notifications
):
    """Cancel stops the tasks not started; a running one that then fails ends the run with
    no report: the dock says the run ended and why, and is usable again."""
    data = (np.arange(4 * 64 * 64, dtype="uint16").reshape(4, 64, 64) * 7) % 1000
    write_array(http_server.root / "a.zarr", data, zarr_format=3, chunks=(1, 32, 32))
    url = f"{http_server.url}/a.zarr"
    _, widget = _recompress_dock(make_napari_viewer)
    widget.set_source(url, "", data.shape)
    widget.destination_edit.setText(str(tmp_path / "out.zarr"))
    http_server.hold("a.zarr/c/*")
    try:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: any("/c/" in p for p in http_server.arrived), timeout=60000)
        qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
        assert widget.progress_label.text().startswith("Cancelling")
        notifications.clear()
        http_server.fail("a.zarr/c/*", 500)  # the chunks being read fail once released
    finally:
        http_server.release()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120000)
    assert widget.report is None  # the run ended with an error, not a report
    status = widget.progress_label.text()
    assert not status.startswith("Cancelling"), status
    assert status.startswith("Cancelled, then a task still running failed. "), status
    # the error is shown, as a run failing without a cancel shows it
    qtbot.waitUntil(lambda: bool(notifications), timeout=10000)
    assert "HTTP 500" in notifications[-1], notifications
    assert widget.report_view.toPlainText() == notifications[-1]
    assert widget.run_button.isEnabled() and widget.estimate_button.isEnabled()
    assert not widget.cancel_button.isEnabled()
