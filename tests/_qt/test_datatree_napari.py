"""A DataTree from open_datatree, added to a real napari viewer, lands where the reader puts it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import napari_zarr_explorer as nze
from napari_zarr_explorer import testing

pytest.importorskip("xarray")


def test_datatree_layers_sit_at_their_physical_position(make_napari_viewer, tmp_path: Path) -> None:
    import zarr

    path = testing.write_ome_image(
        tmp_path / "img.ome.zarr",
        shape=(2, 4, 64, 48),
        axes="czyx",
        levels=2,
        voxel=(1.0, 3.0, 0.5, 0.25),
        channels=[("DAPI", "0000FF"), ("GFP", "00FF00")],
    )
    group = zarr.open_group(path, mode="r+")
    ome = dict(group.attrs["ome"])
    for ds in ome["multiscales"][0]["datasets"]:
        ds["coordinateTransformations"].append(
            {"type": "translation", "translation": [0, 30.0, 100.0, -20.0]}
        )
    group.attrs["ome"] = ome
    tree = nze.open_datatree(path)
    viewer = make_napari_viewer()
    layers = viewer.add_image(**nze.to_napari_kwargs(tree))
    assert [layer.name for layer in layers] == ["DAPI", "GFP"]
    level0 = tree["scale0"].to_dataset()["image"]
    for layer in layers:
        assert layer.multiscale
        # the voxel (z=1, y=10, x=7) of level 0 sits at its xarray coordinates in the world
        world = layer.data_to_world((1, 10, 7))
        expected = [
            float(level0.coords[d].values[i]) for d, i in zip("zyx", (1, 10, 7), strict=True)
        ]
        np.testing.assert_allclose(world, expected)
        np.testing.assert_allclose(expected, [33.0, 105.0, -18.25])
        assert tuple(layer.axis_labels) == ("z", "y", "x")
    # the same placement as the napari reader's layers
    opened = viewer.open(str(path), plugin="napari-zarr-explorer")
    assert len(opened) == 2
    for reader_layer in opened:
        np.testing.assert_allclose(reader_layer.scale, layers[0].scale)
        np.testing.assert_allclose(reader_layer.translate, layers[0].translate)
    # a coarse level's pixels line up with its own coordinates
    level1 = tree["scale1"].to_dataset()["image"]
    scale1 = np.asarray(layers[0].scale) * np.asarray(layers[0].downsample_factors[1])
    np.testing.assert_allclose(
        np.asarray(layers[0].translate) + scale1 * np.array([1, 4, 3]),
        [float(level1.coords[d].values[i]) for d, i in zip("zyx", (1, 4, 3), strict=True)],
    )
