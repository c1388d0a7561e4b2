"""The reader over HTTP (a real loopback server): same layers as from disk, no listing needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from napari_zarr_explorer import testing
from napari_zarr_explorer._reader import napari_get_reader
from napari_zarr_explorer.layers import open_layers


def test_ome_image_over_http(http_server, tmp_path: Path) -> None:
    src = testing.write_ome_image(
        tmp_path / "img.ome.zarr",
        version="0.5",
        shape=(2, 8, 64, 64),
        chunks=(1, 4, 32, 32),
        shards=(1, 8, 64, 64),
        levels=2,
        labels=True,
    )
    shutil.copytree(src, http_server.root / "img.ome.zarr")
    url = f"{http_server.url}/img.ome.zarr"
    reader = napari_get_reader(url)
    assert reader is not None
    local = open_layers(src)
    remote = reader(url)
    assert [t for _, _, t in remote] == ["image", "labels"]
    assert remote[0][1]["metadata"]["source_url"] == url
    for (ld, lk, _), (rd, rk, _) in zip(local, remote, strict=True):
        assert lk["name"] == rk["name"]
        np.testing.assert_array_equal(
            np.asarray(ld[0][..., :40, :40]), np.asarray(rd[0][..., :40, :40])
        )


def test_plate_over_http(http_server, tmp_path: Path) -> None:
    src = testing.write_plate(tmp_path / "plate.zarr", version="0.4", rows=1, cols=2, fields=1)
    shutil.copytree(src, http_server.root / "plate.zarr")
    ((data, _, _),) = open_layers(f"{http_server.url}/plate.zarr")
    ((local, _, _),) = open_layers(src)
    np.testing.assert_array_equal(np.asarray(data[0]), np.asarray(local[0]))


def test_unfetchable_chunk_shows_fill_and_warns(http_server, tmp_path: Path) -> None:
    import pytest

    from napari_zarr_explorer.errors import ExplorerWarning

    values = np.arange(40 * 40, dtype="uint16").reshape(40, 40) + 1
    testing.write_array(http_server.root / "a.zarr", values, zarr_format=2, chunks=(20, 20))
    http_server.fail("*a.zarr/1.0", 500)
    ((data, _, _),) = open_layers(
        f"{http_server.url}/a.zarr",
        storage_options={"explorer_retries": 0, "explorer_backoff": 0},
    )
    with pytest.warns(ExplorerWarning, match=r"chunk 1\.0 "):
        out = np.asarray(data)
    expected = values.copy()
    expected[20:, :20] = 0
    np.testing.assert_array_equal(out, expected)
