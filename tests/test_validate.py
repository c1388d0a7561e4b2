"""Validation of whole stores: the walk through the OME metadata and the Zarr sanity checks."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import MetadataError, NotFoundError
from napari_zarr_explorer.ome.validate import ValidationReport, validate

# --- small stores written directly, with full control over the metadata --------------------


def _set_attrs(node: Path, attrs: dict[str, Any], zarr_format: int) -> None:
    if zarr_format == 3:
        doc = json.loads((node / "zarr.json").read_text())
        doc["attributes"] = attrs
        (node / "zarr.json").write_text(json.dumps(doc))
    else:
        (node / ".zattrs").write_text(json.dumps(attrs))


def _image_attrs(
    version: str, paths: list[str], axes: list[dict[str, Any]], scales: list[list[float]]
) -> dict[str, Any]:
    ms: dict[str, Any] = {
        "axes": copy.deepcopy(axes),
        "datasets": [
            {"path": p, "coordinateTransformations": [{"type": "scale", "scale": s}]}
            for p, s in zip(paths, scales, strict=True)
        ],
    }
    if version == "0.4":
        ms["version"] = "0.4"
        return {"multiscales": [ms]}
    return {"ome": {"version": version, "multiscales": [ms]}}


YX = [
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]
CYX = [{"name": "c", "type": "channel"}, *YX]


def make_image(
    root: Path,
    *,
    version: str = "0.5",
    shapes: tuple[tuple[int, ...], ...] = ((2, 16, 16), (2, 8, 8)),
    axes: list[dict[str, Any]] | None = None,
    scales: list[list[float]] | None = None,
    dtype: str = "uint16",
    extra: dict[str, Any] | None = None,
) -> Path:
    """An image group with one array per level (no chunk written) and the given metadata."""
    zarr_format = 2 if version == "0.4" else 3
    group = zarr.open_group(root, mode="w", zarr_format=zarr_format)
    paths = [str(i) for i in range(len(shapes))]
    for p, shape in zip(paths, shapes, strict=True):
        group.create_array(p, shape=shape, dtype=dtype, chunks=shape)
    axes = CYX if axes is None else axes
    if scales is None:
        scales = [[1.0] * len(axes) for _ in shapes]
    attrs = _image_attrs(version, paths, axes, scales)
    if extra:
        attrs.get("ome", attrs).update(extra)
    _set_attrs(root, attrs, zarr_format)
    return root


def _messages(report: ValidationReport, level: str = "error") -> list[str]:
    return [f"{m.file}#{m.path}: {m.message}" for m in report.messages if m.level == level]


# --- real pyramids from the shared factories -------------------------------------------------


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_valid_image_with_labels(tmp_path: Path, version: str) -> None:
    path = testing.write_ome_image(
        tmp_path / "img.ome.zarr", version=version, shape=(2, 4, 32, 32), levels=2, labels=True
    )
    report = validate(path)
    assert report.valid, str(report)
    assert (report.version, report.kind, report.mode) == (version, "image", "store")
    # root, 2 levels, labels group, the label image and its 2 levels at least
    assert report.nodes_checked >= 6
    json.dumps(report.to_dict(), allow_nan=False)
    assert "VALID" in str(report)
    assert "valid" in report._repr_html_()
    assert report.summary().startswith(f"valid OME-NGFF {version} image")


def test_valid_plate_and_missing_well(tmp_path: Path) -> None:
    path = testing.write_plate(tmp_path / "plate.ome.zarr", rows=1, cols=2, fields=2, levels=1)
    report = validate(path)
    assert report.valid, str(report)
    assert report.kind == "plate"
    # plate + 2 wells + 4 fields + their levels
    assert report.nodes_checked >= 7
    shutil.rmtree(path / "A" / "2")
    report = validate(path)
    assert not report.valid
    [err] = report.errors
    assert err.file == "zarr.json"
    assert err.path == "/attributes/ome/plate/wells/1/path"
    assert "'A/2'" in err.message and "does not exist" in err.message
    # The remaining well was still checked.
    assert any(m.node.startswith("A/1") for m in report.messages) or report.nodes_checked >= 4


def test_missing_field_in_well(tmp_path: Path) -> None:
    path = testing.write_plate(tmp_path / "plate.ome.zarr", rows=1, cols=1, fields=2, levels=1)
    shutil.rmtree(path / "A" / "1" / "1")
    report = validate(path)
    [err] = report.errors
    assert err.node == "A/1"
    assert err.path == "/attributes/ome/well/images/1/path"


def test_bioformats2raw_series(tmp_path: Path) -> None:
    path = testing.write_bioformats2raw(tmp_path / "bf.zarr", series=2)
    report = validate(path)
    assert report.valid, str(report)
    assert report.kind == "bioformats2raw"
    assert report.nodes_checked >= 1 + 1 + 2 * 3  # root, OME, 2 series with 2 levels each
    shutil.rmtree(path / "1")
    report = validate(path)
    # The series listed by OME/ must exist.
    [err] = report.errors
    assert (err.node, err.file, err.path) == ("OME", "OME/.zattrs", "/series/1")
    # Without the list, groups 0, 1, ... are the series; the OME-XML still describes two.
    (path / "OME" / ".zattrs").write_text("{}")
    report = validate(path)
    assert report.valid, str(report)
    assert any(
        "METADATA.ome.xml describes 2 images, but 1 series was found." in m
        for m in _messages(report, "warning")
    )

    path = testing.write_bioformats2raw(tmp_path / "bf3.zarr", series=3)
    shutil.rmtree(path / "2")
    (path / "OME" / ".zattrs").write_text("{}")
    warnings = _messages(validate(path), "warning")
    assert any("describes 3 images, but 2 series were found." in m for m in warnings), warnings


# --- Zarr sanity -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_missing_level(tmp_path: Path, version: str) -> None:
    root = make_image(tmp_path / "img", version=version)
    shutil.rmtree(root / "1")
    report = validate(root)
    assert not report.valid
    [err] = report.errors
    prefix = "/attributes/ome" if version == "0.5" else ""
    assert err.path == f"{prefix}/multiscales/0/datasets/1/path"
    assert err.file == ("zarr.json" if version == "0.5" else ".zattrs")
    assert "'1'" in err.message and "does not exist" in err.message


def test_metadata_only_hierarchy_is_a_warning(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img")
    shutil.rmtree(root / "0")
    shutil.rmtree(root / "1")
    report = validate(root)
    assert report.valid
    assert any("only the metadata was checked" in m for m in _messages(report, "warning"))


def test_levels_must_shrink(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img", shapes=((2, 8, 8), (2, 16, 16)))
    report = validate(root)
    [err] = report.errors
    assert err.path == "/attributes/ome/multiscales/0/datasets/1/path"
    assert "larger than the level before it" in err.message and "y, x" in err.message


def test_rank_and_transform_mismatch(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img", shapes=((16, 16),), axes=CYX, scales=[[1.0, 1.0, 1.0]])
    report = validate(root)
    msgs = _messages(report)
    assert any("has 2 dimensions" in m and "3 axes (c, y, x)" in m for m in msgs), msgs
    assert any("coordinateTransformations" in m and "scale has 3 values" in m for m in msgs), msgs


def test_label_image_must_be_integer(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img")
    labels = zarr.open_group(root / "labels", mode="w", zarr_format=3)
    _set_attrs(root / "labels", {"ome": {"version": "0.5", "labels": ["cells"]}}, 3)
    make_image(
        root / "labels" / "cells",
        dtype="float32",
        extra={"image-label": {"colors": [{"label-value": 1, "rgba": [255, 0, 0, 255]}]}},
    )
    del labels
    report = validate(root)
    assert len(report.errors) == 2  # one per level
    for level, err in enumerate(report.errors):
        assert err.node == "labels/cells"
        assert err.file == "labels/cells/zarr.json"
        assert err.path == f"/attributes/ome/multiscales/0/datasets/{level}/path"
        assert "label images must be integers" in err.message


def test_corrupt_document_is_reported_and_the_walk_goes_on(tmp_path: Path) -> None:
    root = testing.write_ome_image(
        tmp_path / "img.ome.zarr", version="0.5", shape=(1, 2, 16, 16), levels=2, labels=True
    )
    (root / "labels" / "cells" / "zarr.json").write_text('{"zarr_format": 3,\n "node_type": ')
    shutil.rmtree(root / "1")
    report = validate(root)
    assert not report.valid
    corrupt = [
        m for m in report.errors if m.node == "labels/cells" and m.file.endswith("zarr.json")
    ]
    assert corrupt, str(report)
    assert "invalid JSON" in corrupt[0].message and "line 2" in corrupt[0].message
    # The reference to it is flagged at its JSON path, and the rest was checked too.
    assert any(m.path == "/attributes/ome/labels/0" for m in report.errors), str(report)
    assert any(m.path == "/attributes/ome/multiscales/0/datasets/1/path" for m in report.errors)


def test_unsafe_dataset_path_is_not_followed(tmp_path: Path) -> None:
    outside = make_image(tmp_path / "outside")
    root = make_image(tmp_path / "img")
    doc = json.loads((root / "zarr.json").read_text())
    doc["attributes"]["ome"]["multiscales"][0]["datasets"][1]["path"] = "../outside/0"
    (root / "zarr.json").write_text(json.dumps(doc))
    report = validate(root)
    [err] = report.errors
    assert err.path == "/attributes/ome/multiscales/0/datasets/1/path"
    assert "'..'" in err.message
    assert outside.exists()


def test_layout_and_zarr_format_must_match(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img", version="0.5")
    doc = json.loads((root / "zarr.json").read_text())
    ms = doc["attributes"]["ome"]["multiscales"]
    ms[0]["version"] = "0.4"
    doc["attributes"] = {"multiscales": ms}
    (root / "zarr.json").write_text(json.dumps(doc))
    report = validate(root)
    msgs = _messages(report)
    assert any("0.4 layout" in m and "Zarr v2" in m for m in msgs), msgs
    assert any("is Zarr v3; OME-NGFF 0.4 requires Zarr v2" in m for m in msgs), msgs


def test_plain_zarr_is_not_ome(tmp_path: Path, zarr_format: int) -> None:
    zarr.create_array(tmp_path / "a", shape=(4, 4), dtype="u1", zarr_format=zarr_format)
    report = validate(tmp_path / "a")
    assert not report.valid
    assert "no OME-NGFF metadata at the root" in report.errors[0].message
    assert report.kind is None and report.version is None


def test_strict_store(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img")
    assert validate(root).valid
    report = validate(root, strict=True)
    assert not report.valid and report.strict
    assert {m.path for m in report.errors} >= {
        "/attributes/ome/multiscales/0/name",
        "/attributes/ome/multiscales/0/metadata",
    }


def test_max_nodes(tmp_path: Path) -> None:
    path = testing.write_plate(tmp_path / "plate.ome.zarr", rows=1, cols=3, fields=1, levels=1)
    report = validate(path, max_nodes=3)
    assert any("stopped after" in m for m in _messages(report, "warning"))
    assert report.nodes_checked <= 4


def test_remote_store_over_http(http_server: Any) -> None:
    testing.write_ome_image(
        http_server.root / "img.ome.zarr", version="0.5", shape=(1, 2, 16, 16), levels=2
    )
    report = validate(f"{http_server.url}/img.ome.zarr")
    assert report.valid, str(report)
    assert report.kind == "image"
    report = validate(f"{http_server.url}/img.ome.zarr/zarr.json")
    assert report.valid and report.mode == "attributes"


# --- inputs ----------------------------------------------------------------------------------


def test_missing_path_and_non_store(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        validate(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetadataError, match="no Zarr metadata at the root"):
        validate(tmp_path / "empty")


def test_json_files(tmp_path: Path) -> None:
    attrs = _image_attrs("0.5", ["0"], YX, [[1.0, 1.0]])
    plain = tmp_path / "attrs.json"
    plain.write_text(json.dumps(attrs))
    assert validate(plain).valid
    v3 = tmp_path / "zarr.json"
    v3.write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}))
    assert validate(v3).valid
    # 0.5 metadata in a .zattrs (Zarr v2) is wrong, at /ome.
    v2 = tmp_path / ".zattrs"
    v2.write_text(json.dumps(attrs))
    report = validate(v2)
    assert [m.path for m in report.errors] == ["/ome"]
    # Pointers into a zarr.json include /attributes.
    attrs["ome"]["multiscales"][0]["axes"][1]["type"] = 3
    v3.write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}))
    report = validate(v3)
    assert "/attributes/ome/multiscales/0/axes/1/type" in [m.path for m in report.errors]
    assert report.errors[0].file == "zarr.json"
    # The mapping itself.
    assert not validate(attrs).valid
    assert validate({"ome": {"version": "0.5", "well": {"images": [{"path": "0"}]}}}).valid


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", r"bad\.json: invalid JSON.*line 1, column 2"),
        ("[1, 2]", r"expected a JSON object"),
        ("", r"invalid JSON"),
    ],
    ids=["broken", "list", "empty"],
)
def test_unreadable_json_file(tmp_path: Path, content: str, match: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(MetadataError, match=match):
        validate(bad)


def test_zgroup_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".zgroup").write_text('{"zarr_format": 2}')
    with pytest.raises(MetadataError, match="holds no attributes"):
        validate(tmp_path / ".zgroup")


def test_no_ome_metadata_in_document() -> None:
    report = validate({"foo": 1})
    assert not report.valid
    assert "no OME-NGFF metadata" in report.errors[0].message


def test_versions() -> None:
    ms = _image_attrs("0.4", ["0"], YX, [[1.0, 1.0]])["multiscales"]
    del ms[0]["version"]
    report = validate({"multiscales": ms})
    assert report.valid and report.version == "0.4"
    assert "judged as OME-NGFF 0.4" in report.warnings[0].message
    report = validate({"multiscales": ms}, strict=True)
    assert "/multiscales/0/version" in [m.path for m in report.errors]
    report = validate({"ome": {"version": "0.4", "multiscales": ms}})
    assert not report.valid and report.errors[0].path == "/ome/version"
    report = validate({"ome": {"multiscales": ms}})
    assert report.errors[0].path == "/ome/version"
    assert "required, but missing" in report.errors[0].message


def test_report_renderings() -> None:
    report = validate({"ome": {"version": "0.5", "well": {"images": []}}})
    d = report.to_dict()
    assert d["valid"] is False and d["errors"] == 1 and d["mode"] == "attributes"
    assert d["messages"][0] == {
        "level": "error",
        "node": "",
        "file": "",
        "path": "/ome/well/images",
        "message": "must list at least one field of view, found an empty list.",
    }
    text = str(report)
    assert "INVALID" in text and "/ome/well/images" in text
    html = report._repr_html_()
    assert "<table" in html and "/ome/well/images" in html and "invalid" in html
    assert "&lt;attributes&gt;" in html


def test_unknown_codec_is_a_warning(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img", version="0.4")
    meta = json.loads((root / "1" / ".zarray").read_text())
    meta["compressor"] = {"id": "no-such-codec"}
    (root / "1" / ".zarray").write_text(json.dumps(meta))
    report = validate(root)
    assert report.valid, str(report)
    [warning] = report.warnings
    assert warning.path == "/multiscales/0/datasets/1/path"
    assert "'no-such-codec'" in warning.message and "cannot be decoded here" in warning.message


def test_corrupt_array_metadata(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img", version="0.4")
    (root / "1" / ".zarray").write_text('{"shape": [2, 8')
    report = validate(root)
    errors = {(m.node, m.file, m.path) for m in report.errors}
    assert ("1", "1/.zarray", "") in errors, str(report)
    assert ("", ".zattrs", "/multiscales/0/datasets/1/path") in errors
    assert any("invalid JSON" in m.message and "line 1" in m.message for m in report.errors)


# --- robustness ------------------------------------------------------------------------------


_KEYS = [
    "ome", "version", "multiscales", "axes", "datasets", "path", "coordinateTransformations",
    "type", "scale", "translation", "name", "unit", "omero", "channels", "color", "window",
    "image-label", "colors", "label-value", "rgba", "properties", "labels", "plate", "rows",
    "columns", "wells", "rowIndex", "columnIndex", "acquisitions", "id", "well", "images",
    "acquisition", "bioformats2raw.layout", "series", "coordinateSystems", "start", "end",
]  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["0.4", "0.5", "0.6rc0", "space", "time", "channel", "scale", "translation",
                     "0", "A/1", "x", "y", "micrometer", "../x", "FF0000"]),
)  # fmt: skip
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)  # fmt: skip


def _resolve(doc: Any, pointer: str) -> bool:
    """True when *pointer* resolves in *doc*, or names a missing key of an object in it."""
    node = doc
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    for i, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return i == len(parts) - 1 and isinstance(node, dict)
    return True


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=4)
    | st.builds(lambda d: {"ome": d}, st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=5)),
    st.booleans(),
)
def test_any_document_gets_a_verdict_with_resolvable_pointers(
    doc: dict[str, Any], strict: bool
) -> None:
    report = validate(doc, strict=strict)
    json.dumps(report.to_dict(), allow_nan=False)
    assert report.valid is (not report.errors)
    for m in report.messages:
        assert m.path == "" or _resolve(doc, m.path), (m, doc)


def test_well_against_plate(tmp_path: Path) -> None:
    path = testing.write_plate(tmp_path / "plate.ome.zarr", rows=1, cols=1, fields=2, levels=1)
    doc = json.loads((path / "zarr.json").read_text())
    doc["attributes"]["ome"]["plate"]["field_count"] = 1
    doc["attributes"]["ome"]["plate"]["acquisitions"] = [{"id": 0}]
    (path / "zarr.json").write_text(json.dumps(doc))
    well = json.loads((path / "A" / "1" / "zarr.json").read_text())
    well["attributes"]["ome"]["well"]["images"][0]["acquisition"] = 7
    (path / "A" / "1" / "zarr.json").write_text(json.dumps(well))
    report = validate(path)
    assert report.valid, str(report)
    warnings = {(m.node, m.path): m.message for m in report.warnings}
    assert (
        "not among the plate's acquisitions [0]"
        in warnings[("A/1", "/attributes/ome/well/images/0/acquisition")]
    )
    assert "more than the plate's field_count 1" in warnings[("A/1", "/attributes/ome/well/images")]


def test_label_source_image(tmp_path: Path) -> None:
    root = testing.write_ome_image(
        tmp_path / "img.ome.zarr", version="0.5", shape=(1, 2, 16, 16), levels=1, labels=True
    )
    label = root / "labels" / "cells" / "zarr.json"
    doc = json.loads(label.read_text())
    doc["attributes"]["ome"]["image-label"]["source"] = {"image": "../../../elsewhere"}
    label.write_text(json.dumps(doc))
    [warning] = validate(root).warnings
    assert warning.path == "/attributes/ome/image-label/source/image"
    assert "outside the store" in warning.message
    doc["attributes"]["ome"]["image-label"]["source"] = {"image": "../"}
    label.write_text(json.dumps(doc))
    [warning] = validate(root).warnings
    assert "leads to 'labels', which is not an image" in warning.message
    doc["attributes"]["ome"]["image-label"]["source"] = {"image": "../../"}
    label.write_text(json.dumps(doc))
    assert not validate(root).messages


def test_bad_array_metadata_names_the_key(tmp_path: Path) -> None:
    root = make_image(tmp_path / "img", version="0.5")
    meta = json.loads((root / "0" / "zarr.json").read_text())
    meta["shape"] = [2, -16, 16]
    (root / "0" / "zarr.json").write_text(json.dumps(meta))
    report = validate(root)
    [err] = report.errors
    assert err.path == "/attributes/ome/multiscales/0/datasets/0/path"
    assert "0/zarr.json" in err.message and "'shape'" in err.message
