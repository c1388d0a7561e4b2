"""A real viewer over a real HTTP server fetches only the chunks it shows.

Zooming to 1:1 in the centre of a sharded OME-Zarr 0.5 image must fetch, of level 0, only the
inner chunks napari asks for (its view, widened to whole chunks), each once, plus shard indexes:
never a whole shard, never the whole level. With napari's asynchronous slicing on, the event loop
keeps running while the tiles are on their way.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from napari_zarr_explorer import testing

PLUGIN = "napari-zarr-explorer"
CHUNK = 256
SHARD = 1024
SIZE = 4096


@pytest.fixture(scope="module")
def big_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return testing.write_ome_image(
        tmp_path_factory.mktemp("img") / "big.ome.zarr",
        version="0.5",
        shape=(SIZE, SIZE),
        axes="yx",
        levels=4,
        chunks=(CHUNK, CHUNK),
        shards=(SHARD, SHARD),
    )


def _level0_reads(server: Any, name: str) -> list[tuple[str, str | None]]:
    prefix = f"{name}/0/c/"
    return [(r.path, r.range) for r in server.requests if r.path.startswith(prefix)]


def _chunks_in(corners: np.ndarray) -> set[tuple[int, int]]:
    (y0, x0), (y1, x1) = corners[0][-2:], corners[1][-2:]
    return {
        (y, x)
        for y in range(int(y0) // CHUNK, int(y1) // CHUNK + 1)
        for x in range(int(x0) // CHUNK, int(x1) // CHUNK + 1)
    }


def _zoom_to_centre(viewer: Any, layer: Any) -> None:
    """Centre the view on the image at 1:1 (one screen pixel per level-0 pixel)."""
    world = np.asarray(layer.extent.world)[:, -2:]
    viewer.scene.camera.center = tuple(world.mean(axis=0))
    viewer.scene.camera.zoom = 1.0 / float(layer.scale[-1])


def _pan(viewer: Any, layer: Any, pixels: int) -> None:
    cy, cx = viewer.scene.camera.center[-2:]
    viewer.scene.camera.center = (cy, cx + pixels * float(layer.scale[-1]))


def _open(viewer: Any, server: Any, big_image: Path) -> tuple[Any, str]:
    name = big_image.name
    if not (server.root / name).exists():
        shutil.copytree(big_image, server.root / name)
    layers = viewer.open(f"{server.url}/{name}", plugin=PLUGIN)
    return layers[0], name


def test_zoom_to_full_resolution_fetches_only_the_view(
    make_napari_viewer, qtbot, http_server, big_image: Path
) -> None:
    viewer = make_napari_viewer(show=True)
    layer, name = _open(viewer, http_server, big_image)
    assert layer.multiscale
    http_server.clear_log()
    _zoom_to_centre(viewer, layer)
    qtbot.waitUntil(lambda: layer.data_level == 0, timeout=20000)
    qtbot.wait(200)  # let any further redraws run
    wanted = _chunks_in(layer.corner_pixels)
    assert 0 < len(wanted) < (SIZE // CHUNK) ** 2 // 4  # a small view of a big level
    reads = _level0_reads(http_server, name)
    assert reads, "nothing fetched for the full-resolution view"
    assert all(rng is not None for _, rng in reads), "a whole shard was fetched"
    inner = [p for p, rng in reads if rng is not None and not rng.startswith("bytes=-")]
    index = [p for p, rng in reads if rng is not None and rng.startswith("bytes=-")]
    assert len(inner) == len(wanted)  # one request per inner chunk in view, none twice
    shards = {(y * CHUNK // SHARD, x * CHUNK // SHARD) for y, x in wanted}
    assert {p.rsplit("/c/", 1)[1] for p in inner} == {f"{y}/{x}" for y, x in shards}
    assert len(index) == len(set(index)) <= len(shards)
    # the image shown is the data
    shown = np.asarray(layer._slice.image.raw)
    assert shown.shape == tuple(
        int(layer.corner_pixels[1][d] - layer.corner_pixels[0][d] + 1) for d in (-2, -1)
    )

    # a pan of one chunk fetches only the chunks that come into view
    before = set(wanted)
    http_server.clear_log()
    _pan(viewer, layer, 2 * CHUNK)
    qtbot.waitUntil(lambda: _chunks_in(layer.corner_pixels) != before, timeout=20000)
    qtbot.wait(200)
    new = _chunks_in(layer.corner_pixels) - before
    inner = [
        p
        for p, rng in _level0_reads(http_server, name)
        if rng is not None and not rng.startswith("bytes=-")
    ]
    assert len(inner) == len(new)


@pytest.fixture
def async_slicing_viewer(make_napari_viewer) -> Any:
    """A viewer with napari's asynchronous slicing switched on (Settings > Experimental)."""
    from napari.settings import get_settings

    viewer = make_napari_viewer(show=True)  # napari's fixture gives it fresh settings
    settings = get_settings().experimental
    before = settings.async_
    settings.async_ = True
    assert not viewer._layer_slicer._force_sync
    yield viewer
    settings.async_ = before


def test_async_slicing_keeps_the_viewer_responsive(
    async_slicing_viewer, qtbot, http_server, big_image: Path
) -> None:
    from qtpy.QtCore import QTimer

    viewer = async_slicing_viewer
    layer, name = _open(viewer, http_server, big_image)
    qtbot.waitUntil(lambda: layer.loaded, timeout=20000)
    # level-0 tiles are slow to come: the slice stays pending for a while
    http_server.slow(f"{name}/0/c/*", 5.0)
    _zoom_to_centre(viewer, layer)
    # the full-resolution slice is asked for, and not there yet...
    qtbot.waitUntil(lambda: not layer.loaded, timeout=4000)
    seen: dict[str, bool] = {}

    # ...while the event loop goes on handling events
    def tick() -> None:
        seen["loaded while the event loop ran"] = bool(layer.loaded)

    QTimer.singleShot(0, tick)
    qtbot.waitUntil(lambda: bool(seen), timeout=4000)
    assert seen == {"loaded while the event loop ran": False}
    qtbot.waitUntil(lambda: layer.loaded and layer.data_level == 0, timeout=60000)
    inner = [
        p
        for p, rng in _level0_reads(http_server, name)
        if rng is not None and not rng.startswith("bytes=-")
    ]
    assert len(inner) == len(_chunks_in(layer.corner_pixels))
