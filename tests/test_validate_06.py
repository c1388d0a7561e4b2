"""OME-NGFF 0.6 validation: the 0.6rc0 conformance hierarchies, scenes, transformations, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import zarr

from napari_zarr_explorer.ome.validate import validate
from ngff06_data import YX, two_image_scene, write_image, write_scene

SUITE = Path(__file__).parent / "data" / "ngff-spec-0.6rc0"
CASES = sorted(SUITE.glob("*/*/*/*.ome.zarr"))


def test_suite_is_complete() -> None:
    assert len(CASES) == 85


@pytest.mark.parametrize("case", CASES, ids=[str(c.relative_to(SUITE)) for c in CASES])
def test_spec_suite_verdicts(case: Path) -> None:
    strict = case.parts[-4] == "strict"
    expected = case.parts[-3] == "valid"
    report = validate(case, strict=strict)
    assert report.valid is expected, str(report)


def _errors(report: Any) -> list[str]:
    return [f"{m.path}: {m.message}" for m in report.errors]


def test_valid_scene_and_its_images_are_walked(tmp_path: Path) -> None:
    root = tmp_path / "scene.ome.zarr"
    two_image_scene(root)
    report = validate(root)
    assert report.valid, str(report)
    assert report.kind == "scene"
    # the scene, both images and their 3 level arrays
    assert report.nodes_checked >= 6
    assert not report.warnings, str(report)


def _scene(tmp_path: Path, transforms: list[dict[str, Any]]) -> Path:
    root = tmp_path / "scene.ome.zarr"
    zarr.open_group(root, mode="w", zarr_format=3)
    write_image(root, "img")
    write_scene(root, transforms, [{"name": "world", "axes": YX}])
    return root


GOOD_IN = {"name": "physical", "path": "img"}
GOOD_OUT = {"name": "world"}


@pytest.mark.parametrize(
    ("transform", "where", "text"),
    [
        (
            {"type": "scale", "scale": [1, "2"], "input": GOOD_IN, "output": GOOD_OUT},
            "/scene/coordinateTransformations/0",
            "finite numbers",
        ),
        (
            {"type": "warp", "input": GOOD_IN, "output": GOOD_OUT},
            "/scene/coordinateTransformations/0/type",
            "not a transformation type",
        ),
        (
            {"type": "identity", "input": GOOD_IN, "output": {"name": "nowhere"}},
            "/scene/coordinateTransformations/0/output",
            "'nowhere' is not a coordinate system of the scene",
        ),
        (
            {"type": "identity", "input": {"name": "physical", "path": "../x"}, "output": GOOD_OUT},
            "/scene/coordinateTransformations/0/input/path",
            "",
        ),
        (
            {"type": "identity", "input": GOOD_IN, "output": {"path": "img"}},
            "/scene/coordinateTransformations/0/output/name",
            "required",
        ),
        (
            {
                "type": "sequence",
                "transformations": [{"type": "mapAxis", "mapAxis": [0, 0]}],
                "input": GOOD_IN,
                "output": GOOD_OUT,
            },
            "/scene/coordinateTransformations/0/transformations/0",
            "must not repeat",
        ),
    ],
    ids=["vector", "type", "unknown-system", "escape", "no-name", "nested"],
)
def test_scene_errors_point_at_the_problem(
    tmp_path: Path, transform: dict[str, Any], where: str, text: str
) -> None:
    report = validate(_scene(tmp_path, [transform]))
    assert not report.valid
    hits = [m for m in report.messages if m.path == "/attributes/ome" + where]
    assert hits, str(report)
    assert any(text in m.message for m in hits), str(report)


def test_scene_needs_transformations(tmp_path: Path) -> None:
    root = _scene(tmp_path, [])
    report = validate(root)
    assert not report.valid
    assert any("non-empty list" in e for e in _errors(report))


def test_schema_backstop_catches_what_the_rules_do_not(tmp_path: Path) -> None:
    # an extra field in a scene reference: only the official schema forbids it
    t = {"type": "identity", "input": {**GOOD_IN, "colour": "red"}, "output": GOOD_OUT}
    report = validate(_scene(tmp_path, [t]))
    assert not report.valid
    [err] = report.errors
    assert "JSON schema (scene.schema)" in err.message and "colour" in err.message


def test_earlier_draft_string_references_are_warned_not_rejected(tmp_path: Path) -> None:
    root = tmp_path / "img.ome.zarr"
    write_image(root, "")
    doc = json.loads((root / "zarr.json").read_text())
    ct = doc["attributes"]["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]
    ct["input"], ct["output"] = "s0", "physical"
    (root / "zarr.json").write_text(json.dumps(doc))
    report = validate(root)
    assert report.valid, str(report)
    assert any("earlier 0.6 drafts" in m.message for m in report.warnings)


def test_dataset_references_are_checked(tmp_path: Path) -> None:
    root = tmp_path / "img.ome.zarr"
    write_image(root, "")
    doc = json.loads((root / "zarr.json").read_text())
    ds = doc["attributes"]["ome"]["multiscales"][0]["datasets"]
    ds[0]["coordinateTransformations"][0]["input"] = {"path": "s1"}
    ds[1]["coordinateTransformations"][0]["output"] = {"name": "elsewhere"}
    (root / "zarr.json").write_text(json.dumps(doc))
    errors = _errors(validate(root))
    assert any("names the array 's1', but this dataset's path is 's0'" in e for e in errors)
    assert any("'elsewhere' is not one of the coordinate systems" in e for e in errors)
    assert any("same (intrinsic) coordinate system" in e for e in errors)


def test_scene_image_that_does_not_exist(tmp_path: Path) -> None:
    ok = {"type": "identity", "input": GOOD_IN, "output": GOOD_OUT}
    gone = {"type": "identity", "input": {"name": "physical", "path": "gone"}, "output": GOOD_OUT}
    report = validate(_scene(tmp_path, [ok, gone]))
    assert not report.valid
    [err] = report.errors
    assert err.path == "/attributes/ome/scene/coordinateTransformations/1/input/path"
    assert "'gone' listed here does not exist" in err.message
