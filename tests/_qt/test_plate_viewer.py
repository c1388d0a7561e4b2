"""A plate over HTTP in a real napari viewer: the overview reads one chunk per well, hidden
fields are not read until shown, and the coarsest level fits a texture."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer.plate import MAX_TEXTURE


def test_plate_fields_in_a_viewer(make_napari_viewer, qtbot, http_server, tmp_path: Path) -> None:
    src = testing.write_plate(tmp_path / "plate.zarr", version="0.4", rows=3, cols=4, fields=2)
    shutil.copytree(src, http_server.root / "plate.zarr")
    viewer = make_napari_viewer()
    http_server.clear_log()
    viewer.open(f"{http_server.url}/plate.zarr", plugin="napari-zarr-explorer")
    viewer.reset_view()
    # two channels per field; field 0 shown, field 1 hidden (the field chooser)
    assert [ly.visible for ly in viewer.layers] == [True, True, False, False]
    assert [ly.name for ly in viewer.layers] == [
        "Channel 0 field 0",
        "Channel 1 field 0",
        "Channel 0 field 1",
        "Channel 1 field 1",
    ]
    for ly in viewer.layers:
        assert max(ly.data[-1].shape[-2:]) <= MAX_TEXTURE
    chunks = [
        q.path
        for q in http_server.requests
        if q.path.count("/") >= 5 and not q.path.rsplit("/", 1)[-1].startswith(".")
    ]
    assert chunks and all(p.split("/")[3] == "0" for p in chunks)  # field 0 only
    assert len(chunks) == len(set(chunks))  # nothing read twice
    shown = np.asarray(viewer.layers[0]._slice.image.view)
    assert shown.any()
    # choosing field 1 reads it, with the right pixels
    http_server.clear_log()
    viewer.layers[2].visible = True
    qtbot.waitUntil(lambda: bool(http_server.requests), timeout=10000)
    field1 = [q.path for q in http_server.requests if "/1/" in q.path]
    assert field1
    level = viewer.layers[2].data_level
    n = 64 >> level
    want = np.asarray(zarr.open_array(str(src / "B" / "3" / "1" / str(level)), mode="r")[0])
    got = np.asarray(viewer.layers[2].data[level][n : 2 * n, 2 * n : 3 * n])
    np.testing.assert_array_equal(got, want)
