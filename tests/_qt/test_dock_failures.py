"""What the Explorer and the Chunk map say when a store or its chunks cannot be read.

A failed open says what failed and what to do (the core's message, in the docks' words), and
which store the tree still shows; a chunk map of a remote store whose server fails names the key
and the URL. Everything runs against a real HTTP server on loopback, in a real napari window.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication
from test_credentials_docks import shown_texts
from test_docks_user import click_node, open_in_explorer

from napari_zarr_explorer.testing import write_ome_image

PLUGIN = "napari-zarr-explorer"
SECRET = "s3cr3t-Pa55"


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast: one retry after a short backoff."""
    monkeypatch.setenv("NZE_REMOTE_RETRIES", "1")
    monkeypatch.setenv("NZE_REMOTE_BACKOFF", "0.01")
    monkeypatch.setenv("NZE_REMOTE_TIMEOUT", "5")


def _root_text(explorer) -> str:
    item = explorer.tree.topLevelItem(0)
    return "" if item is None else item.text(0)


def _laptop(viewer) -> None:
    window = viewer.window._qt_window
    window.resize(1280, 800)
    QApplication.processEvents()


def test_a_failed_open_says_what_failed_what_to_do_and_what_is_still_shown(
    make_napari_viewer,
    qtbot,
    http_server,
    tmp_path: Path,
    notifications,
    screenshot_dir: Path,
    refused_port: int,
) -> None:
    write_ome_image(http_server.root / "img.ome.zarr", shape=(2, 32, 32), axes="cyx", levels=2)
    http_server.fail("broken.zarr/*", 500)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a store")
    viewer = make_napari_viewer(show=True)
    _laptop(viewer)
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")

    # nothing shown yet: the dock says why and what to do, and shows no store
    port = refused_port
    open_in_explorer(qtbot, explorer, f"http://127.0.0.1:{port}/x.zarr")
    assert explorer.status_label.fullText() == f"Could not read http://127.0.0.1:{port}/x.zarr."
    problem = explorer.problem_label.text()
    assert explorer.problem_label.isVisible()
    assert f"Connection refused by 127.0.0.1:{port}" in problem, problem
    assert "Check the URL (host name and port) and that the server is running." in problem
    assert explorer.url is None and explorer.tree.topLevelItemCount() == 0

    good = f"{http_server.url}/img.ome.zarr"
    open_in_explorer(qtbot, explorer, good)
    assert explorer.url == good and _root_text(explorer) == "img.ome.zarr"
    assert not explorer.problem_label.isVisible()  # a store read: the last failure is over
    click_node(qtbot, explorer, "0")
    panel = explorer.array_view.toPlainText()

    broken = f"http://ann:{SECRET}@127.0.0.1:{http_server.port}/broken.zarr"
    cases = [
        (
            f"{http_server.url}/nothing.zarr",
            [f"No Zarr metadata at {http_server.url}/nothing.zarr", "not a Zarr store"],
            "Give the folder or URL of the store itself",
        ),
        (
            broken,
            ["HTTP 500 Internal Server Error", f"ann:***@127.0.0.1:{http_server.port}/broken"],
            "try again later",
        ),
        (str(folder), [f"No Zarr metadata at {folder}"], "Give the folder or URL"),
        (
            str(tmp_path / "gone.zarr"),
            [f"{tmp_path / 'gone.zarr'}: no such file"],
            "Check the path",
        ),
    ]
    for url, what, todo in cases:
        notifications.clear()
        open_in_explorer(qtbot, explorer, url)
        qtbot.waitUntil(lambda: bool(notifications), timeout=20000)
        shown = url.replace(SECRET, "***")
        status = explorer.status_label.fullText()
        assert status == f"Could not read {shown}.", status
        problem = explorer.problem_label.text()
        assert all(w in problem for w in what) and todo in problem, problem
        assert problem.endswith(f"\nStill showing {good}."), problem
        # the tree and the panels still show the store the status names, as they were
        assert explorer.url == good and _root_text(explorer) == "img.ome.zarr"
        assert explorer.selected_path == "0" and explorer.array_view.toPlainText() == panel
        others = [t for t in shown_texts(explorer) if t != url]  # every text but the box's
        assert not [t for t in others if SECRET in t]
        if url == broken:
            explorer.grab().save(str(screenshot_dir / "explorer-failed-open.png"))
    assert not [m for m in notifications if SECRET in m]

    # the store shown cannot be read again (its server stopped): the tree is what was read
    http_server.close()
    qtbot.mouseClick(explorer.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not explorer.busy, timeout=60000)
    assert explorer.status_label.fullText() == f"Could not read {good} again."
    problem = explorer.problem_label.text()
    assert f"Connection refused by 127.0.0.1:{http_server.port}" in problem, problem
    assert problem.endswith(f"\nStill showing {good} as read before."), problem
    assert explorer.url == good and explorer.selected_path == "0"


def test_chunk_map_of_a_remote_store_names_what_failed(
    make_napari_viewer, qtbot, http_server, tmp_path: Path, notifications, screenshot_dir: Path
) -> None:
    from servers import serve_sharded_image

    url, _ = serve_sharded_image(http_server, tmp_path, size=64)
    viewer = make_napari_viewer(show=True)
    _laptop(viewer)
    _, chunks = viewer.window.add_plugin_dock_widget(PLUGIN, "Chunk map")
    viewer.open(url, plugin=PLUGIN)
    qtbot.waitUntil(lambda: chunks.cmap is not None and not chunks.busy, timeout=60000)
    assert chunks.cmap.chunks_present == chunks.cmap.chunks_total

    # the server fails every request for the chunks of level 1: the map says which and why
    http_server.fail("img.ome.zarr/1/c/*", 500)
    chunks.level_combo.setCurrentIndex(1)
    qtbot.waitUntil(
        lambda: chunks.cmap is not None and chunks.cmap.path == "1" and not chunks.busy,
        timeout=60000,
    )
    assert chunks.cmap.chunks_unknown == chunks.cmap.chunks_total
    summary = chunks.summary_label.text()
    assert "unknown" in chunks.legend.text(), chunks.legend.text()
    assert f"{url}/1/c/" in summary, summary  # the key, as a URL one can try
    assert "HTTP 500 Internal Server Error" in summary and "try again later" in summary, summary
    qtbot.waitUntil(lambda: "unknown; at least" in chunks.view_label.text(), timeout=5000)
    QApplication.processEvents()
    chunks.grab().save(str(screenshot_dir / "chunkmap-server-error.png"))

    # the server stopped: mapping again says so and names the URL; no map of before stays
    http_server.close()
    notifications.clear()
    qtbot.mouseClick(chunks.compute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not chunks.busy and bool(notifications), timeout=60000)
    summary = chunks.summary_label.text()
    assert f"Connection refused by 127.0.0.1:{http_server.port}" in summary, summary
    assert f"{url}/zarr.json" in summary, summary
    assert "that the server is running" in summary, summary
    assert chunks.cmap is None and chunks.overlay is None
    assert not [layer for layer in viewer.layers if layer.name.endswith("chunk map")]
    chunks.grab().save(str(screenshot_dir / "chunkmap-server-stopped.png"))


def test_refresh_and_map_chunks_ask_the_server_again_once_it_recovered(
    make_napari_viewer, qtbot, http_server, tmp_path: Path, monkeypatch
) -> None:
    """Clicked again right after the server recovered, Refresh and Map chunks read the store:
    what an earlier read's store remembers of its failures is not theirs."""
    from napari_zarr_explorer.store import remote
    from servers import serve_sharded_image

    monkeypatch.setattr(remote, "FAILURE_TTL", 3600.0)  # whatever the machine's speed
    monkeypatch.setattr(remote, "_FRESH_FAILURE", 0.0)
    url, _ = serve_sharded_image(http_server, tmp_path, size=32)
    viewer = make_napari_viewer(show=True)
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    _, chunks = viewer.window.add_plugin_dock_widget(PLUGIN, "Chunk map")
    open_in_explorer(qtbot, explorer, url)
    assert explorer.url == url
    viewer.open(url, plugin=PLUGIN)
    qtbot.waitUntil(lambda: chunks.cmap is not None and not chunks.busy, timeout=60000)

    # the server fails: Refresh and Map chunks say so
    http_server.fail("img.ome.zarr/*", 500)
    qtbot.mouseClick(explorer.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not explorer.busy, timeout=60000)
    assert explorer.status_label.fullText() == f"Could not read {url} again."
    assert "HTTP 500" in explorer.problem_label.text()
    qtbot.mouseClick(chunks.compute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not chunks.busy and chunks.cmap is None, timeout=60000)
    assert "HTTP 500" in chunks.summary_label.text(), chunks.summary_label.text()

    # the server recovered: clicked again at once, both read it
    http_server.clear_faults()
    qtbot.mouseClick(explorer.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not explorer.busy, timeout=60000)
    assert "Could not" not in explorer.status_label.fullText()
    assert not explorer.problem_label.isVisible()
    assert explorer.url == url and _root_text(explorer) == "img.ome.zarr"
    qtbot.mouseClick(chunks.compute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not chunks.busy and chunks.cmap is not None, timeout=60000)
    assert chunks.cmap.chunks_present == chunks.cmap.chunks_total
    summary = chunks.summary_label.text()
    assert "Remembered" not in summary and "HTTP 500" not in summary, summary
