"""An Output typed with a password or a key (``https://ann:PASSWORD@host/...``,
``s3://KEY:SECRET@bucket/...``) is used as typed, and never shown: not in the line saying
where the data goes, not in what the dock says when the work ends, not in a notification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import Qt
from test_credentials_docks import shown_texts

from napari_zarr_explorer.testing import blobs, write_array
from servers import LoopbackHTTPServer

SECRET = "s3cr3t-Pa55"

# an s3:// URL carrying a key and secret is refused before any request, without them
OUTPUTS = ("http", "s3")


def _output(kind: str, server: LoopbackHTTPServer, name: str) -> str:
    if kind == "http":
        return f"http://ann:{SECRET}@127.0.0.1:{server.port}/{name}"
    return f"s3://AKIDEXAMPLE:{SECRET}@no-such-bucket/{name}"


def _shown(widget, typed: str) -> list[str]:
    """What the dock shows, but for the Output field itself (what the user typed there)."""
    return [t for t in shown_texts(widget) if t != typed]


@pytest.mark.parametrize("kind", OUTPUTS)
def test_the_save_dock_never_shows_the_outputs_secret(
    make_napari_viewer, qtbot, http_server: LoopbackHTTPServer, notifications, kind: str
) -> None:
    from napari_zarr_explorer._qt.save import SaveWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((32, 32), np.uint16), name="cells")
    widget = SaveWidget(viewer)
    typed = _output(kind, http_server, "cells.ome.zarr")
    widget.form.path.line_edit.value = typed
    assert widget.form.output_text() == typed
    http_server.hold("*")  # whatever the writer asks the server waits
    try:
        with qtbot.waitSignal(widget.finished, timeout=120_000):
            qtbot.mouseClick(widget.form.save_button.native, Qt.MouseButton.LeftButton)
            during = str(widget.status.value)
            assert during.startswith("Saving to "), during
            assert SECRET not in during and "***" in during, during
            assert not [t for t in _shown(widget, typed) if SECRET in t]
            http_server.release()
    finally:
        http_server.release()
    after = str(widget.status.value)
    assert after and SECRET not in after, after
    assert not [t for t in _shown(widget, typed) if SECRET in t]
    assert not [m for m in notifications if SECRET in m], notifications


@pytest.mark.parametrize("kind", OUTPUTS)
def test_the_recompress_dock_never_shows_the_outputs_secret(
    make_napari_viewer,
    qtbot,
    tmp_path: Path,
    http_server: LoopbackHTTPServer,
    notifications,
    kind: str,
) -> None:
    from napari_zarr_explorer._qt.recompress import RecompressWidget

    src = write_array(tmp_path / "a.zarr", blobs((32, 32), dtype="uint16"), chunks=(16, 16))
    viewer = make_napari_viewer()
    widget = RecompressWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_source(str(src), "", (32, 32))
    typed = _output(kind, http_server, "out.zarr")
    widget.form.output.value = typed
    assert str(widget.form.output.value) == typed
    http_server.hold("*")
    try:
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
        during = widget.progress_label.text()
        assert during.startswith("Recompressing "), during
        assert SECRET not in during and "***" in during, during
        assert not [t for t in _shown(widget, typed) if SECRET in t]
        http_server.release()
        qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    finally:
        http_server.release()
    after = widget.progress_label.text()
    assert after and SECRET not in after, after
    assert not [t for t in _shown(widget, typed) if SECRET in t]
    assert not [m for m in notifications if SECRET in m], notifications
