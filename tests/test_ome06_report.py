"""OME-NGFF 0.6 coordinate systems and transformations in ``inspect`` (text, JSON, HTML)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zarr

from napari_zarr_explorer.cli import main
from napari_zarr_explorer.report import inspect
from ngff06_data import two_image_scene, write_image, write_scene


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    root = tmp_path / "scene.ome.zarr"
    two_image_scene(root)
    return root


def test_report_lists_systems_and_transformations(scene: Path) -> None:
    report = inspect(str(scene))
    root = report[""].ome
    assert root is not None and root.kind == "scene"
    assert root.children == ("imgA", "imgB")
    assert [c["name"] for c in root.coordinate_systems] == ["world"]
    assert [str(t) for t in root.transforms] == [
        "imgA#physical -> world: translation [100, 0]",
        "imgB#physical -> world: sequence [rotation [[0, -1], [1, 0]]; translation [0, 50]]",
    ]
    assert "1 coordinate system, 2 transformations" in root.summary
    img = report["imgA"].ome
    assert img is not None
    assert [(t.where, t.source, t.target) for t in img.transforms] == [
        ("datasets", "s0", "physical"),
        ("datasets", "s1", "physical"),
    ]


def test_inspect_json_text_and_html(scene: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(scene), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    nodes = {n["path"]: n for n in doc["nodes"]}
    t = nodes[""]["ome"]["transforms"][1]
    assert t["type"] == "sequence" and t["applied"] is True
    assert t["metadata"]["transformations"][0]["rotation"] == [[0.0, -1.0], [1.0, 0.0]]
    assert nodes[""]["ome"]["coordinate_systems"][0]["axes"][0]["unit"] == "micrometer"

    assert main(["inspect", str(scene)]) == 0
    text = capsys.readouterr().out
    assert "coordinate system world (scene): y [micrometer] x [micrometer]" in text
    assert "transformation imgA#physical -> world: translation [100, 0]" in text

    html = inspect(str(scene))[""]._repr_html_()
    assert "<h4>Coordinate transformations</h4>" in html
    assert "imgB#physical" in html


def test_unapplied_transformations_are_marked(tmp_path: Path) -> None:
    root = tmp_path / "scene.ome.zarr"
    zarr.open_group(root, mode="w", zarr_format=3)
    write_image(root, "img")
    write_scene(
        root,
        [
            {
                "type": "coordinates",
                "path": "coordinateTransformations/xy",
                "interpolation": "nearest",
                "input": {"name": "physical", "path": "img"},
                "output": {"name": "world"},
            }
        ],
        [{"name": "world", "axes": [{"name": "y"}, {"name": "x"}]}],
    )
    [t] = inspect(str(root))[""].ome.transforms
    assert not t.applied
    assert str(t) == (
        "img#physical -> world: coordinates path=coordinateTransformations/xy "
        "interpolation=nearest (shown, not applied)"
    )
    assert "no: shown only" in inspect(str(root))[""]._repr_html_()
