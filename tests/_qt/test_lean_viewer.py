"""A real viewer opening a remote OME image: the first image without zarr-python, then zarr.

The layers napari makes from the lean path are those it makes from the ordinary path (names,
colormaps, contrast limits computed from the coarsest level), the pixels shown are the data,
and zarr-python takes over the reads after the first image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer.layers import _LeanReader
from servers import serve_sharded_image

PLUGIN = "napari-zarr-explorer"


@pytest.mark.parametrize("labels", [False, True], ids=["image", "with-labels"])
def test_viewer_shows_the_first_image_from_the_lean_reader(
    make_napari_viewer, qtbot, http_server, tmp_path: Path, labels: bool
) -> None:
    """The layers are those of the local copy (names, contrast limits, colormaps, the colours
    of the image-label metadata, pixels), all read lean first; with ``labels/cells``, an image
    layer per channel and a labels layer sharing one zarr-python import."""
    url, src = serve_sharded_image(http_server, tmp_path, size=256, labels=labels)
    shown = make_napari_viewer(show=True).open(url, plugin=PLUGIN)
    reference = make_napari_viewer(show=True).open(str(src), plugin=PLUGIN)
    assert [ly.name for ly in shown] == [ly.name for ly in reference]
    kinds = ["Image", "Image", "Labels"] if labels else ["Image", "Image"]
    assert [type(ly).__name__ for ly in shown] == kinds
    for layer, ref in zip(shown, reference, strict=True):
        assert all(isinstance(lv.reader, _LeanReader) for lv in layer.data)
        qtbot.waitUntil(lambda layer=layer: layer.loaded, timeout=20000)
        if type(layer).__name__ == "Labels":
            for value in (0, 1, 2, 3):
                np.testing.assert_allclose(layer.colormap.map(value), ref.colormap.map(value))
        else:
            assert layer.contrast_limits == ref.contrast_limits
            assert layer.colormap.name == ref.colormap.name
        np.testing.assert_array_equal(
            np.asarray(layer._slice.image.raw), np.asarray(ref._slice.image.raw)
        )
    image = shown[0].data[0].reader.image
    assert all(ly.data[0].reader.image is image for ly in shown)  # one zarr-python import
    assert image.reads >= 2  # the contrast limits and the first tile: lean
    qtbot.waitUntil(lambda: image.ready, timeout=20000)  # then zarr-python, in the background
    assert image._error is None
