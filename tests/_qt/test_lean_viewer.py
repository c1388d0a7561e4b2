"""A real viewer opening a remote OME image: the first image without zarr-python, then zarr.

The layers napari makes from the lean path are those it makes from the ordinary path (names,
colormaps, contrast limits computed from the coarsest level), the pixels shown are the data,
and zarr-python takes over the reads after the first image.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from napari_zarr_explorer import testing
from napari_zarr_explorer.layers import _LeanReader

PLUGIN = "napari-zarr-explorer"


def test_viewer_shows_the_first_image_from_the_lean_reader(
    make_napari_viewer, qtbot, http_server, tmp_path: Path
) -> None:
    src = testing.write_ome_image(
        tmp_path / "img.ome.zarr",
        version="0.5",
        shape=(2, 4, 256, 256),
        levels=3,
        chunks=(1, 1, 64, 64),
        shards=(1, 1, 128, 128),
    )
    shutil.copytree(src, http_server.root / "img.ome.zarr")
    remote = make_napari_viewer(show=True)
    shown = remote.open(f"{http_server.url}/img.ome.zarr", plugin=PLUGIN)
    local = make_napari_viewer(show=True)
    reference = local.open(str(src), plugin=PLUGIN)
    assert [ly.name for ly in shown] == [ly.name for ly in reference]
    for layer, ref in zip(shown, reference, strict=True):
        assert all(isinstance(lv.reader, _LeanReader) for lv in layer.data)
        qtbot.waitUntil(lambda layer=layer: layer.loaded, timeout=20000)
        assert layer.contrast_limits == ref.contrast_limits
        assert layer.colormap.name == ref.colormap.name
        np.testing.assert_array_equal(
            np.asarray(layer._slice.image.raw), np.asarray(ref._slice.image.raw)
        )
    image = shown[0].data[0].reader.image
    assert image.reads >= 2  # the contrast limits and the first tile: lean
    qtbot.waitUntil(lambda: image.ready, timeout=20000)  # then zarr-python, in the background
    assert image._error is None


def test_viewer_shows_an_image_with_labels_from_the_lean_reader(
    make_napari_viewer, qtbot, http_server, tmp_path: Path
) -> None:
    """An image with ``labels/cells``: an image layer per channel and a labels layer, as from
    the local copy (names, colours of the image-label metadata, pixels), all lean first."""
    src = testing.write_ome_image(
        tmp_path / "lab.ome.zarr",
        version="0.5",
        shape=(2, 4, 256, 256),
        levels=3,
        chunks=(1, 1, 64, 64),
        shards=(1, 1, 128, 128),
        labels=True,
    )
    shutil.copytree(src, http_server.root / "lab.ome.zarr")
    remote = make_napari_viewer(show=True)
    shown = remote.open(f"{http_server.url}/lab.ome.zarr", plugin=PLUGIN)
    local = make_napari_viewer(show=True)
    reference = local.open(str(src), plugin=PLUGIN)
    assert [type(ly).__name__ for ly in shown] == ["Image", "Image", "Labels"]
    assert [ly.name for ly in shown] == [ly.name for ly in reference]
    for layer, ref in zip(shown, reference, strict=True):
        assert all(isinstance(lv.reader, _LeanReader) for lv in layer.data)
        qtbot.waitUntil(lambda layer=layer: layer.loaded, timeout=20000)
        if type(layer).__name__ == "Labels":
            for value in (0, 1, 2, 3):
                np.testing.assert_allclose(layer.colormap.map(value), ref.colormap.map(value))
            raw, want = layer._slice.image.raw, ref._slice.image.raw
        else:
            assert layer.contrast_limits == ref.contrast_limits
            assert layer.colormap.name == ref.colormap.name
            raw, want = layer._slice.image.raw, ref._slice.image.raw
        np.testing.assert_array_equal(np.asarray(raw), np.asarray(want))
    image = shown[0].data[0].reader.image
    assert shown[-1].data[0].reader.image is image  # one zarr-python import for all layers
    qtbot.waitUntil(lambda: image.ready, timeout=20000)
    assert image._error is None
