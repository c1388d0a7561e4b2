"""``validate`` on N5: judged for what N5 promises, never as a plain Zarr group or as OME-NGFF.

The containers are written by z5py (the implementation behind zarr_implementations' N5 data)
and then broken by hand where a rule is tested.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from napari_zarr_explorer.cli import main
from napari_zarr_explorer.ome.validate import validate

z5py = pytest.importorskip("z5py")


def _container(tmp_path: Path) -> Path:
    path = tmp_path / "c.n5"
    f = z5py.File(str(path), mode="a", use_zarr_format=False)
    group = f.create_group("setup0/timepoint0")
    for i, shape in enumerate([(32, 64), (16, 32), (8, 16)]):
        ds = group.create_dataset(
            f"s{i}", shape=shape, chunks=(8, 8), dtype="uint16", compression="gzip"
        )
        ds[:] = np.arange(np.prod(shape), dtype="uint16").reshape(shape)
        ds.attrs["downsamplingFactors"] = [2**i, 2**i]
    group.attrs["multiScale"] = True
    group.attrs["resolution"] = [0.5, 0.5]
    group.attrs["unit"] = "um"
    f.create_dataset("raw", shape=(10, 10), chunks=(5, 5), dtype="float32")
    return path


def _edit(path: Path, change: dict[str, Any]) -> None:
    doc = json.loads(path.read_text())
    doc.update(change)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("node", "kind", "nodes"),
    [("", "N5 container", 7), ("raw", "N5 dataset", 1), ("setup0/timepoint0", "N5 multiscale", 4)],
)
def test_n5_is_named_and_valid(tmp_path: Path, node: str, kind: str, nodes: int) -> None:
    root = _container(tmp_path)
    report = validate(root / node if node else root)
    assert report.valid, report.messages
    assert report.kind == kind and report.version is None
    assert report.nodes_checked == nodes
    assert "OME-NGFF rules do not apply" in report.notes[0]
    for text in (report.summary(), str(report), report._repr_html_()):
        assert kind in text and "plain Zarr" not in text and "OME-NGFF rules do not apply" in text
    assert report.to_dict()["notes"] == list(report.notes)


def test_command_line_says_n5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _container(tmp_path)
    assert main(["validate", str(root / "setup0" / "timepoint0"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True
    assert doc["message"].startswith("valid N5 multiscale (0 errors, 0 warnings)")
    assert "OME-NGFF rules do not apply" in doc["message"]
    assert main(["validate", str(root)]) == 0
    out = capsys.readouterr().out
    assert "valid N5 container" in out and "note: N5 is not OME-Zarr" in out


@pytest.mark.parametrize(
    ("file", "change", "where", "match"),
    [
        ("raw", {"blockSize": [5]}, "/blockSize", "one per dimension"),
        ("raw", {"dataType": "complex64"}, "/dataType", "cannot be read here"),
        ("raw", {"compression": {"type": "brotli"}}, "/compression", "cannot be decoded"),
        ("", {"n5": 4}, "/n5", "string like '4.0.0'"),
        (
            "setup0/timepoint0/s1",
            {"dimensions": [70, 40]},
            "/dimensions",
            "larger than the level before it",
        ),
        ("setup0/timepoint0/s2", {"dataType": "uint8"}, "/dataType", "share one data type"),
        (
            "setup0/timepoint0/s1",
            {"downsamplingFactors": [2, 0]},
            "/downsamplingFactors",
            "2 positive numbers",
        ),
        ("setup0/timepoint0", {"scales": [[1, 1], [2, 2]]}, "/scales", "one factor per level"),
        ("setup0/timepoint0", {"resolution": [0.5]}, "/resolution", "2 positive numbers"),
    ],
)
def test_broken_n5_rules_are_reported_at_their_place(
    tmp_path: Path, file: str, change: dict[str, Any], where: str, match: str
) -> None:
    root = _container(tmp_path)
    _edit(root / file / "attributes.json", change)
    report = validate(root)
    assert not report.valid
    (error,) = report.errors
    assert error.path == where and match in error.message
    assert error.file == (f"{file}/attributes.json" if file else "attributes.json")
    assert "OME-NGFF rules do not apply" in report.summary()


def test_malformed_attributes_json_is_an_error_not_a_crash(tmp_path: Path) -> None:
    root = _container(tmp_path)
    (root / "raw" / "attributes.json").write_text('{"dimensions": [10, 10], ')
    report = validate(root)
    assert not report.valid
    (error,) = report.errors
    assert error.node == "raw" and "well-formed" in error.message


def test_legacy_compression_type_is_a_warning(tmp_path: Path) -> None:
    root = _container(tmp_path)
    doc = json.loads((root / "raw" / "attributes.json").read_text())
    del doc["compression"]
    doc["compressionType"] = "gzip"
    (root / "raw" / "attributes.json").write_text(json.dumps(doc))
    report = validate(root)
    assert report.valid
    (warning,) = report.warnings
    assert warning.path == "/compressionType"
