"""The docks use a password given in a URL to connect, and never show it or save it.

A store opened as ``http://ann:PASSWORD@host/img.ome.zarr`` is named ``http://ann:***@host/...``
in every label, tooltip, menu, box and notification of the docks, and in the recent stores
saved on disk; its pixels are read with the password all the same.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QDockWidget,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTableWidget,
    QTextEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from napari_zarr_explorer._qt.explorer import ExplorerWidget
from napari_zarr_explorer._qt.recompress import RecompressWidget
from napari_zarr_explorer.testing import write_ome_image

SECRET = "s3cr3t-Pa55"
PLUGIN = "napari-zarr-explorer"


def _basic(password: str = SECRET) -> str:
    return "Basic " + base64.b64encode(f"ann:{password}".encode()).decode()


@pytest.fixture
def private(http_server):
    """The loopback server, answering only requests with ann's password (basic auth)."""
    write_ome_image(http_server.root / "img.ome.zarr", shape=(2, 32, 32), axes="cyx", levels=2)
    http_server.require_header("Authorization", _basic())
    return http_server


@pytest.fixture
def forget_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start with no password remembered, as a new napari session does."""
    from napari_zarr_explorer.store import locate

    monkeypatch.setattr(locate, "_USERINFO", {})


def _item_texts(item: QTreeWidgetItem) -> Iterator[str]:
    for col in range(item.columnCount()):
        yield item.text(col)
        yield item.toolTip(col)
    for i in range(item.childCount()):
        child = item.child(i)
        if child is not None:
            yield from _item_texts(child)


def shown_texts(widget: QWidget) -> list[str]:
    """Every text *widget* and its children show: labels, boxes, items, actions, tooltips."""
    texts: list[str] = []
    for w in [widget, *widget.findChildren(QWidget)]:
        texts += [w.toolTip(), w.windowTitle(), w.statusTip(), w.whatsThis()]
        if isinstance(w, QLabel):
            texts.append(w.text())
            full = getattr(w, "fullText", None)
            if full is not None:
                texts.append(full())
        elif isinstance(w, QLineEdit):
            texts += [w.text(), w.placeholderText()]
            completer = w.completer()
            model = completer.model() if completer is not None else None
            if model is not None:
                texts += [str(model.index(r, 0).data()) for r in range(model.rowCount())]
        elif isinstance(w, QTextEdit):
            texts += [w.toPlainText(), w.toHtml()]
        elif isinstance(w, QPlainTextEdit):
            texts.append(w.toPlainText())
        elif isinstance(w, QAbstractButton):
            texts.append(w.text())
        elif isinstance(w, QComboBox):
            texts += [w.itemText(i) for i in range(w.count())]
        elif isinstance(w, QDockWidget):
            texts.append(w.windowTitle())
        if isinstance(w, QTreeWidget):
            for i in range(w.topLevelItemCount()):
                top = w.topLevelItem(i)
                if top is not None:
                    texts += list(_item_texts(top))
        if isinstance(w, QTableWidget):
            for r in range(w.rowCount()):
                for c in range(w.columnCount()):
                    cell = w.item(r, c)
                    if cell is not None:
                        texts += [cell.text(), cell.toolTip()]
        for action in w.actions():
            texts += [action.text(), action.toolTip(), action.statusTip(), str(action.data())]
            menu = action.menu()
            if menu is not None:
                texts += shown_texts(menu)
    return [t for t in texts if t]


def _with_password(url: str, password: str = SECRET) -> str:
    return url.replace("://", f"://ann:{password}@", 1)


def _open(qtbot, explorer: ExplorerWidget, url: str) -> None:
    explorer.location_edit.setFocus()
    explorer.location_edit.selectAll()
    explorer.location_edit.setText(url)
    qtbot.mouseClick(explorer.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not explorer.busy, timeout=120000)


def test_a_url_with_a_password_opens_and_no_dock_shows_or_saves_it(
    make_napari_viewer, qtbot, private, tmp_path: Path, notifications, forget_passwords
):
    viewer = make_napari_viewer(show=True)
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    url = _with_password(f"{private.url}/img.ome.zarr")
    shown = _with_password(f"{private.url}/img.ome.zarr", "***")
    _open(qtbot, explorer, url)
    assert explorer.report is not None, notifications
    assert {"", "0", "1"} <= set(explorer.nodes)
    status = explorer.status_label.fullText()
    assert status.startswith(f"{shown}: "), status
    assert explorer.location_edit.text() == shown  # what was opened, as it may be shown
    assert explorer.recent_stores() == [shown]
    qtbot.waitUntil(lambda: explorer.validation is not None, timeout=60000)

    # the image opens, its pixels read with the password
    explorer.select_path("")
    explorer.open_layer_button.click()
    qtbot.waitUntil(lambda: len(viewer.layers) > 0 and not explorer.busy, timeout=60000)
    expected = zarr.open_array(str(private.root / "img.ome.zarr" / "0"), mode="r")[:]
    layer = viewer.layers[0]
    data = layer.data[0] if layer.multiscale else layer.data
    np.testing.assert_array_equal(np.asarray(data), expected[0] if data.ndim == 2 else expected)
    assert SECRET not in repr(layer.metadata)

    # the Recompress dock takes it as its source, and runs from it
    _, recompress = viewer.window.add_plugin_dock_widget(PLUGIN, "Recompress")
    assert isinstance(recompress, RecompressWidget)
    assert recompress.source_label.fullText() == shown
    out = tmp_path / "out.ome.zarr"
    recompress.destination_edit.setText(str(out))
    recompress.set_compressor("zstd:1")
    recompress.estimate()
    qtbot.waitUntil(
        lambda: recompress.run_estimate is not None and not recompress.busy, timeout=60000
    )
    with qtbot.waitSignal(recompress.finished, timeout=120000) as blocker:
        recompress.run_button.click()
    report = blocker.args[0]
    assert report.ok and report.complete, str(report)
    assert "ann:***@127.0.0.1" in recompress.report_view.toPlainText()
    np.testing.assert_array_equal(zarr.open_array(str(out / "0"), mode="r")[:], expected)
    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert SECRET.encode() not in written

    # the chunk map of the layer names the store without the password
    _, chunks = viewer.window.add_plugin_dock_widget(PLUGIN, "Chunk map")
    viewer.layers.selection.active = layer
    qtbot.waitUntil(lambda: "ann:***@" in chunks.layer_label.fullText(), timeout=20000)

    # a missing store and a wrong password fail with the URL shown
    _open(qtbot, explorer, _with_password(f"{private.url}/nothing.zarr"))
    assert explorer.status_label.fullText().startswith(
        f"Could not read {_with_password(f'{private.url}/nothing.zarr', '***')}"
    )
    notifications.clear()
    wrong = _with_password(f"{private.url}/img.ome.zarr", "wrong-" + SECRET)
    _open(qtbot, explorer, wrong)
    qtbot.waitUntil(lambda: bool(notifications), timeout=60000)
    assert any("401" in m for m in notifications), notifications
    # the open box keeps what the user typed, to correct it; it is the only text that shows it
    assert explorer.location_edit.text() == wrong
    explorer.location_edit.clear()

    dock_texts = [
        text
        for dock in (explorer, recompress, chunks)
        for text in shown_texts(dock.parentWidget() or dock)
    ]
    assert any(shown in t for t in dock_texts)
    leaks = [t for t in dock_texts if SECRET in t]
    assert not leaks, leaks
    assert not [m for m in notifications if SECRET in m]
    recent_file = Path(explorer._recent.path)
    assert recent_file.is_file() and shown in recent_file.read_text(encoding="utf-8")
    assert SECRET not in recent_file.read_text(encoding="utf-8")


def test_a_recent_store_opens_with_its_password_only_in_the_session_that_gave_it(
    make_napari_viewer, qtbot, private, notifications, forget_passwords
):
    viewer = make_napari_viewer()
    first = ExplorerWidget(viewer)
    shown = _with_password(f"{private.url}/img.ome.zarr", "***")
    _open(qtbot, first, _with_password(f"{private.url}/img.ome.zarr"))
    assert first.report is not None, notifications
    # in this session the shown URL of the Recent menu connects with the password given
    again = ExplorerWidget(viewer)
    (action,) = again.recent_menu.actions()
    assert action.text() == shown
    action.trigger()
    qtbot.waitUntil(lambda: not again.busy and again.report is not None, timeout=60000)
    assert {"", "0", "1"} <= set(again.nodes)
    # a later session does not know the password: access is denied, and the dock says how to
    # give it
    from napari_zarr_explorer.store import locate

    locate._USERINFO.clear()
    later = ExplorerWidget(viewer)
    notifications.clear()
    later.recent_menu.actions()[0].trigger()
    qtbot.waitUntil(lambda: not later.busy and bool(notifications), timeout=60000)
    assert later.report is None
    message = next(m for m in notifications if "401" in m)
    assert shown in message
    assert "user:PASSWORD@host" in message and "not saved" in message, message
    assert "--storage-options" not in message  # the command line's way, not the dock's
    assert later.status_label.fullText().startswith(f"Could not read {shown}")
    for dock in (first, again, later):
        dock.close()
        dock.deleteLater()


def test_a_password_an_earlier_version_saved_in_recent_is_never_shown_and_dropped(
    make_napari_viewer, qtbot, tmp_path: Path
):
    from napari_zarr_explorer._qt._common import RecentStores

    recent = RecentStores().path
    recent.parent.mkdir(parents=True, exist_ok=True)
    old = f"https://ann:{SECRET}@example.org/a.zarr"
    recent.write_text(json.dumps({"recent": [old, "https://ann:***@example.org/a.zarr"]}))
    viewer = make_napari_viewer()
    explorer = ExplorerWidget(viewer)
    assert explorer.recent_stores() == ["https://ann:***@example.org/a.zarr"]
    assert not [t for t in shown_texts(explorer) if SECRET in t]
    local = write_ome_image(tmp_path / "local.ome.zarr", shape=(8, 8), axes="yx", levels=1)
    _open(qtbot, explorer, str(local))
    assert explorer.recent_stores() == [str(local), "https://ann:***@example.org/a.zarr"]
    assert SECRET not in recent.read_text(encoding="utf-8")
    explorer.close()
    explorer.deleteLater()
