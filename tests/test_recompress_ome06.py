"""recompress and OME-NGFF 0.6: 0.4/0.5 converted when asked, 0.6 metadata kept intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer.cli import main
from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.layers import open_layers
from napari_zarr_explorer.ome.validate import validate
from napari_zarr_explorer.recompress import plan_recompress, recompress
from ngff06_data import two_image_scene


def _ome(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((path / "zarr.json").read_text())
    return doc["attributes"]["ome"]  # type: ignore[no-any-return]


def _placement(path: Path) -> list[tuple[Any, ...]]:
    out = []
    for _d, kw, _t in open_layers(str(path)):
        out.append(
            (
                kw["metadata"]["node_path"],
                tuple(np.round(kw.get("scale", ()), 9)),
                tuple(np.round(kw.get("translate", ()), 9)),
                kw.get("axis_labels"),
            )
        )
    return out


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_convert_to_06(tmp_path: Path, version: str) -> None:
    src = testing.write_ome_image(
        tmp_path / "img.ome.zarr",
        version=version,
        shape=(2, 4, 32, 32),
        levels=2,
        labels=True,
        voxel=(1.0, 2.0, 0.5, 0.5),
    )
    dst = tmp_path / "out.ome.zarr"
    report = recompress(src, dst, ome_version="0.6")
    assert report.ok, str(report)
    ome = _ome(dst)
    assert ome["version"] == "0.6"
    ms = ome["multiscales"][0]
    assert "axes" not in ms
    [cs] = ms["coordinateSystems"]
    assert cs["name"] == "physical"
    assert [a["name"] for a in cs["axes"]] == ["c", "z", "y", "x"]
    t0 = ms["datasets"][0]["coordinateTransformations"]
    assert len(t0) == 1 and t0[0]["input"] == {"path": "0"}
    assert t0[0]["output"] == {"name": "physical"}
    # the labels are converted too
    labels = _ome(dst / "labels")
    assert labels["version"] == "0.6"
    # valid 0.6, and every pixel lands where it did before
    check = validate(dst)
    assert check.valid, str(check)
    assert _placement(dst) == _placement(src)
    np.testing.assert_array_equal(
        zarr.open_array(dst / "1", mode="r")[...], zarr.open_array(src / "1", mode="r")[...]
    )


def test_06_metadata_is_copied_unchanged(tmp_path: Path) -> None:
    src = tmp_path / "scene.ome.zarr"
    two_image_scene(src)
    dst = tmp_path / "copy.ome.zarr"
    report = recompress(src, dst, compressor="gzip:1")
    assert report.ok, str(report)
    for rel in ("", "imgA", "imgB"):
        assert _ome(dst / rel) == _ome(src / rel)
    assert _placement(dst) == _placement(src)
    layers = {k["metadata"]["node_path"]: k for _d, k, _t in open_layers(str(dst))}
    np.testing.assert_allclose(layers["imgB"]["affine"], [[0, -1, 0], [1, 0, 50], [0, 0, 1]])


def test_06_needs_zarr_v3(tmp_path: Path) -> None:
    src = tmp_path / "scene.ome.zarr"
    two_image_scene(src)
    with pytest.raises(ExplorerError, match=r"0\.6 is defined for Zarr v3 only"):
        plan_recompress(src, zarr_format=2, shards="none")
    v4 = testing.write_ome_image(tmp_path / "v4.zarr", version="0.4", shape=(1, 4, 16, 16))
    with pytest.raises(ExplorerError, match=r"0\.6 is defined for Zarr v3 only"):
        plan_recompress(v4, zarr_format=2, ome_version="0.6")


def test_cli_ome_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = testing.write_ome_image(tmp_path / "v4.zarr", version="0.4", shape=(1, 4, 16, 16))
    dst = tmp_path / "v6.zarr"
    assert main(["recompress", str(src), str(dst), "--ome-version", "0.6", "--json"]) == 0
    capsys.readouterr()
    assert _ome(dst)["version"] == "0.6"
    assert main(["validate", str(dst), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_scene_from_http_is_copied_whole(tmp_path: Path, http_server: Any) -> None:
    """Over HTTP nothing can be listed: the scene's own paths lead to its images."""
    www = Path(http_server.root) if hasattr(http_server, "root") else tmp_path / "www"
    two_image_scene(www / "scene.ome.zarr")
    dst = tmp_path / "copy.ome.zarr"
    report = recompress(f"{http_server.url}/scene.ome.zarr", dst, compressor="gzip:1")
    assert report.ok, str(report)
    assert sorted(a.path for a in report.arrays) == ["imgA/s0", "imgA/s1", "imgB/s0"]
    for rel in ("", "imgA", "imgB"):
        assert _ome(dst / rel) == _ome(www / "scene.ome.zarr" / rel)
