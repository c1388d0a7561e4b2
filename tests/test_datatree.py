"""open_datatree: one lazy node per pyramid level, in physical coordinates, for every layout."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest

import napari_zarr_explorer as nze
from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import ExplorerError, NotFoundError

xr = pytest.importorskip("xarray")

CHANNELS = [("DAPI", "0000FF"), ("GFP", "00FF00")]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return testing.write_ome_image(
        tmp_path / "img.ome.zarr",
        shape=(2, 6, 64, 48),
        axes="czyx",
        levels=3,
        chunks=(1, 3, 32, 32),
        labels=True,
        voxel=(1.0, 2.0, 0.5, 0.25),
        channels=CHANNELS,
    )


def _levels(node: Any) -> list[str]:
    return sorted(n for n in node.children if n.startswith("scale"))


def test_ome_image_levels_coordinates_and_channels(image: Path) -> None:
    tree = nze.open_datatree(image)
    assert isinstance(tree, xr.DataTree)
    assert _levels(tree) == ["scale0", "scale1", "scale2"]
    level0 = tree["scale0"].to_dataset()["image"]
    assert level0.dims == ("c", "z", "y", "x")
    assert isinstance(level0.data, da.Array)  # lazy
    assert list(level0.coords["c"].values) == ["DAPI", "GFP"]
    np.testing.assert_allclose(level0.coords["x"].values[:3], [0.0, 0.25, 0.5])
    np.testing.assert_allclose(level0.coords["z"].values[:2], [0.0, 2.0])
    assert level0.coords["x"].attrs["units"] == "micrometer"
    # each level: its own scale and (here none) translation, data equal to the store's
    level1 = tree["scale1"].to_dataset()["image"]
    step = float(level1.coords["x"].values[1] - level1.coords["x"].values[0])
    assert step == pytest.approx(0.5)
    pyramid = nze.open_pyramid(image)
    np.testing.assert_array_equal(level1.values, np.asarray(pyramid[1]))
    assert tree.attrs["source"] == str(image)
    assert tree.attrs["units"]["x"] == "micrometer"
    assert tree.attrs["channel_names"] == ["DAPI", "GFP"]
    assert "xarray" in tree._repr_html_() and "scale2" in tree._repr_html_()


def test_label_images_are_nodes_too(image: Path) -> None:
    tree = nze.open_datatree(image)
    (name,) = tree["labels"].children
    labels = tree[f"labels/{name}"]
    assert labels.attrs["kind"] == "labels"
    assert _levels(labels)[0] == "scale0"
    lab0 = labels["scale0"].to_dataset()["image"]
    assert lab0.dims == ("z", "y", "x")
    assert lab0.dtype.kind in "iu"
    np.testing.assert_allclose(lab0.coords["y"].values[:2], [0.0, 0.5])


def test_translation_moves_the_coordinates(tmp_path: Path) -> None:
    import zarr

    path = testing.write_ome_image(tmp_path / "t.ome.zarr", shape=(32, 32), axes="yx", levels=2)
    group = zarr.open_group(path, mode="r+")
    ome = dict(group.attrs["ome"])
    ms = ome["multiscales"][0]
    for ds in ms["datasets"]:
        ds["coordinateTransformations"].append({"type": "translation", "translation": [10, -4]})
    group.attrs["ome"] = ome
    tree = nze.open_datatree(path)
    y = tree["scale0"].to_dataset()["image"].coords["y"].values
    assert y[0] == pytest.approx(10.0)
    kwargs = nze.to_napari_kwargs(tree)
    assert kwargs["translate"] == pytest.approx((10.0, -4.0))


def test_plate_wells_and_fields(tmp_path: Path) -> None:
    plate = testing.write_plate(tmp_path / "p.zarr", rows=1, cols=2, fields=2, levels=2)
    tree = nze.open_datatree(plate)
    assert sorted(tree["A"].children) == ["1", "2"]
    assert sorted(tree["A/2"].children) == ["0", "1"]
    field = tree["A/2/1"]
    assert _levels(field) == ["scale0", "scale1"]
    data = field["scale0"].to_dataset()["image"]
    assert data.dims[-2:] == ("y", "x")
    expected = np.asarray(nze.open_pyramid(plate, "A/2/1")[0])
    np.testing.assert_array_equal(data.values, expected)


def test_bioformats2raw_series(tmp_path: Path) -> None:
    path = testing.write_bioformats2raw(tmp_path / "b.zarr", series=2)
    tree = nze.open_datatree(path)
    assert {"0", "1"} <= set(tree.children)
    assert _levels(tree["1"])[0] == "scale0"
    np.testing.assert_array_equal(
        tree["1/scale0"].to_dataset()["image"].values, np.asarray(nze.open_pyramid(path, "1")[0])
    )


def test_plain_array_has_index_coordinates(tmp_path: Path) -> None:
    values = testing.blobs((20, 30))
    testing.write_array(tmp_path / "a.zarr", values, dimension_names=["row", "col"])
    tree = nze.open_datatree(tmp_path / "a.zarr")
    assert _levels(tree) == ["scale0"]
    arr = tree["scale0"].to_dataset()["image"]
    assert arr.dims == ("row", "col")
    np.testing.assert_array_equal(arr.coords["col"].values, np.arange(30))
    np.testing.assert_array_equal(arr.values, values)
    kwargs = nze.to_napari_kwargs(tree)
    assert kwargs["scale"] == (1.0, 1.0) and kwargs["multiscale"] is False


def test_nothing_is_read_until_computed(http_server: Any, image: Path) -> None:
    shutil.copytree(image, http_server.root / "img.ome.zarr")
    tree = nze.open_datatree(f"{http_server.url}/img.ome.zarr")
    assert _levels(tree) == ["scale0", "scale1", "scale2"]
    chunk_requests = [p for p in http_server.paths() if "/c/" in p]
    assert chunk_requests == []
    tree["scale2"].to_dataset()["image"].isel(c=0, z=0).values  # noqa: B018
    assert [p for p in http_server.paths() if "/c/" in p]


def test_to_napari_kwargs_matches_the_reader(image: Path) -> None:
    from napari_zarr_explorer.layers import open_layers

    kwargs = nze.to_napari_kwargs(nze.open_datatree(image))
    (_, reader, _), _labels = open_layers(image)
    assert kwargs["scale"] == pytest.approx(reader["scale"])
    for key in ("axis_labels", "units", "channel_axis", "name", "multiscale"):
        assert kwargs[key] == reader[key], key
    assert kwargs["translate"] == pytest.approx(reader.get("translate", (0.0, 0.0, 0.0)))
    assert len(kwargs["data"]) == 3


def test_errors(tmp_path: Path) -> None:
    testing.write_array(tmp_path / "a.zarr", np.zeros((4, 4)))
    with pytest.raises(NotFoundError):
        nze.open_datatree(tmp_path / "a.zarr", "nope")
    with pytest.raises(ExplorerError, match="not an image node"):
        nze.to_napari_kwargs(xr.DataTree())


def test_xarray_is_imported_only_when_asked(tmp_path: Path) -> None:
    import subprocess
    import sys

    # (dask.array imports xarray itself when it is installed, so only our own imports are checked)
    testing.write_array(tmp_path / "a.zarr", np.zeros((8, 8), "uint8"))
    code = (
        "import sys, napari_zarr_explorer as nze\n"
        "print('xarray' in sys.modules)\n"
        f"nze.open_pyramid({str(tmp_path / 'a.zarr')!r})\n"
        "print('napari_zarr_explorer.datatree' in sys.modules)\n"
        f"nze.open_datatree({str(tmp_path / 'a.zarr')!r})\n"
        "print('xarray' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False", "True"]
