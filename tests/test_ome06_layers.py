"""OME-NGFF 0.6 images and scenes in napari layer data: where each pixel lands in the world."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from napari.layers import Layer

from napari_zarr_explorer.cli import main
from napari_zarr_explorer.layers import open_layers
from napari_zarr_explorer.ome.transforms import layer_placement
from ngff06_data import ROTATE_90, two_image_scene, write_image


def _layers(path: Path) -> dict[str, Layer]:
    out = {}
    for data, kwargs, ltype in open_layers(str(path)):
        layer = Layer.create(data, kwargs, ltype)
        out[kwargs["metadata"]["node_path"]] = layer
    return out


def _world(layer: Layer, pixel: tuple[float, ...]) -> list[float]:
    return [float(v) for v in layer.data_to_world(pixel)]


def test_scene_places_each_image_in_the_scene_system(tmp_path: Path) -> None:
    root = tmp_path / "scene.ome.zarr"
    data = two_image_scene(root)
    layer_data = {k["metadata"]["node_path"]: k for _d, k, _t in open_layers(str(root))}
    # a translation folds into scale/translate; a rotation needs the layer's affine
    a, b = layer_data["imgA"], layer_data["imgB"]
    assert "affine" not in a
    assert a["scale"] == (0.5, 0.5) and a["translate"] == (100.0, 0.0)
    assert b["scale"] == (2.0, 2.0) and b["translate"] == (1.0, 1.0)
    np.testing.assert_allclose(b["affine"], [[0, -1, 0], [1, 0, 50], [0, 0, 1]])
    assert a["metadata"]["coordinate_system"] == "world"

    layers = _layers(root)
    # imgA, level 0, pixel (3, 5): intrinsic (1.5, 2.5), world (101.5, 2.5)
    assert _world(layers["imgA"], (3, 5)) == pytest.approx([101.5, 2.5])
    # imgB pixel (3, 5): intrinsic (7, 11); rotated (-11, 7); translated (-11, 57)
    assert _world(layers["imgB"], (3, 5)) == pytest.approx([-11.0, 57.0])
    # the pixel there is the one written there
    lv = layers["imgB"].data
    assert (
        int(np.asarray(lv[0] if layers["imgB"].multiscale else lv)[3, 5])
        == data["imgB"]["s0"][3, 5]
    )


def test_layer_positions_agree_with_the_transform_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "scene.ome.zarr"
    two_image_scene(root)
    layers = _layers(root)
    pixels = [[0, 0], [3, 5], [15, 31], [7.5, 2.25]]
    for image in ("imgA", "imgB"):
        assert main(["transform", str(root), f"{image}/s0", "world", json.dumps(pixels)]) == 0
        expected = json.loads(capsys.readouterr().out)["coordinates"]
        got = [_world(layers[image], tuple(p)) for p in pixels]
        np.testing.assert_allclose(got, expected, atol=1e-9)


def test_single_06_image_is_shown_in_its_intrinsic_system(tmp_path: Path) -> None:
    root = tmp_path / "img.ome.zarr"
    write_image(
        root,
        "",
        systems=[{"name": "world", "axes": [{"name": "y"}, {"name": "x"}]}],
        extra=[
            {
                "type": "rotation",
                "rotation": ROTATE_90,
                "input": {"name": "physical"},
                "output": {"name": "world"},
            }
        ],
    )
    [(data, kwargs, ltype)] = open_layers(str(root))
    assert ltype == "image" and len(data) == 2
    assert kwargs["scale"] == (0.5, 0.5) and "translate" not in kwargs
    assert "affine" not in kwargs
    assert kwargs["axis_labels"] == ("y", "x") and kwargs["units"] == ("micrometer",) * 2
    layer = Layer.create(data, kwargs, ltype)
    assert _world(layer, (3, 5)) == pytest.approx([1.5, 2.5])
    # level 1 (scale 1, translation 0.25) lines up with level 0
    assert layer.level_shapes[1].tolist() == [8, 16]


def test_scene_with_a_vector_field_shows_the_image_in_its_own_coordinates(
    tmp_path: Path,
) -> None:
    import zarr

    from ngff06_data import write_scene

    root = tmp_path / "scene.ome.zarr"
    zarr.open_group(root, mode="w", zarr_format=3)
    write_image(root, "img")
    write_scene(
        root,
        [
            {
                "type": "displacements",
                "path": "coordinateTransformations/field",
                "input": {"name": "physical", "path": "img"},
                "output": {"name": "world"},
            }
        ],
        [{"name": "world", "axes": [{"name": "y"}, {"name": "x"}]}],
    )
    with pytest.warns(
        Warning, match=r"\(displacements path=coordinateTransformations/field\) is not applied"
    ):
        [(_data, kwargs, _t)] = open_layers(str(root))
    assert kwargs["scale"] == (0.5, 0.5) and "affine" not in kwargs


def test_layer_placement_drops_the_channel_axis() -> None:
    # (c, y, x): channel untouched, y/x swapped and shifted
    m = np.array(
        [[1, 0, 0, 0], [0, 0, 1, 10], [0, 1, 0, 20], [0, 0, 0, 1]],
        dtype=float,
    )
    placed, problem = layer_placement(m, (2.0, 3.0), (1.0, 1.0), drop_axis=0)
    assert problem is None
    np.testing.assert_allclose(placed["affine"], [[0, 1, 10], [1, 0, 20], [0, 0, 1]])
    assert placed["scale"] == (2.0, 3.0) and placed["translate"] == (1.0, 1.0)
    # a diagonal transformation folds into scale and translate
    d = np.diag([1.0, 4.0, 5.0, 1.0])
    d[1, -1] = 7
    placed, problem = layer_placement(d, (2.0, 3.0), (1.0, 1.0), drop_axis=0)
    assert "affine" not in placed
    assert placed["scale"] == (8.0, 15.0) and placed["translate"] == (11.0, 5.0)
    mixed = np.eye(4)
    mixed[0, 1] = 1
    _placed, problem = layer_placement(mixed, None, None, drop_axis=0)
    assert problem is not None and "channel axis" in problem


def test_scene_channels_and_labels_move_with_their_image(tmp_path: Path) -> None:
    import zarr

    from ngff06_data import YX, write_scene

    root = tmp_path / "scene.ome.zarr"
    zarr.open_group(root, mode="w", zarr_format=3)
    cyx = [{"name": "c", "type": "channel"}, *YX]
    write_image(root, "img", shape=(2, 16, 32), axes=cyx, levels=[([1, 0.5, 0.5], None)])
    labels = zarr.open_group(root / "img" / "labels", mode="w", zarr_format=3)
    labels.attrs["ome"] = {"version": "0.6rc0", "labels": ["cells"]}
    write_image(root / "img" / "labels", "cells", levels=[([0.5, 0.5], None)])
    cells = zarr.open_group(root / "img" / "labels" / "cells", mode="a")
    cells.attrs["ome"] = {**cells.attrs["ome"], "image-label": {"colors": []}}
    # swap y and x, shift; the channel axis is left alone
    swap = [[1, 0, 0, 0], [0, 0, 1, 10], [0, 1, 0, 20]]
    write_scene(
        root,
        [
            {
                "type": "affine",
                "affine": swap,
                "input": {"name": "physical", "path": "img"},
                "output": {"name": "world"},
            }
        ],
        [{"name": "world", "axes": cyx}],
    )
    layers = {k["metadata"]["node_path"]: (d, k, t) for d, k, t in open_layers(str(root))}
    assert set(layers) == {"img", "img/labels/cells"}
    img, lab = layers["img"][1], layers["img/labels/cells"][1]
    assert img["channel_axis"] == 0
    for kw in (img, lab):
        np.testing.assert_allclose(kw["affine"], [[0, 1, 10], [1, 0, 20], [0, 0, 1]])
    label_layer = Layer.create(*layers["img/labels/cells"])
    # label pixel (3, 5): intrinsic (1.5, 2.5), swapped (2.5, 1.5), shifted (12.5, 21.5)
    assert _world(label_layer, (3, 5)) == pytest.approx([12.5, 21.5])


def test_scene_paths_that_leave_the_store_or_do_not_exist(tmp_path: Path) -> None:
    import zarr

    from ngff06_data import YX, write_scene

    outside = tmp_path / "evil"
    write_image(tmp_path, "evil")  # a real image just outside the store
    root = tmp_path / "scene.ome.zarr"
    zarr.open_group(root, mode="w", zarr_format=3)
    write_image(root, "img")
    world = {"name": "world"}
    write_scene(
        root,
        [
            {"type": "identity", "input": {"name": "physical", "path": p}, "output": world}
            for p in ("img", "../evil", "gone")
        ],
        [{"name": "world", "axes": YX}],
    )
    assert outside.is_dir()
    with pytest.warns(Warning) as record:
        layers = open_layers(str(root))
    assert [k["metadata"]["node_path"] for _d, k, _t in layers] == ["img"]
    text = " ".join(str(w.message) for w in record)
    assert "'../evil'" in text and "'gone'" in text
