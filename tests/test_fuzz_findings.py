"""Regression tests for what the fuzz harness (tests/test_fuzz.py) found, one case each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import ExplorerError

VALUES = np.arange(16 * 16, dtype="uint16").reshape(16, 16)


def _sharded(tmp_path: Path) -> Path:
    return testing.write_array(
        tmp_path / "s.zarr", VALUES, zarr_format=3, chunks=(4, 4), shards=(8, 8)
    )


def _set_inner_chunk_shape(path: Path, value: Any) -> None:
    doc = json.loads((path / "zarr.json").read_text())
    doc["codecs"][0]["configuration"]["chunk_shape"] = value
    (path / "zarr.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("value", ["4x4", [[4], 4], [4.5, 4], [True, 4]], ids=str)
def test_inspect_reports_a_malformed_inner_chunk_shape(tmp_path: Path, value: Any) -> None:
    """inspect raised ValueError/TypeError from int() on a malformed sharding chunk_shape."""
    from napari_zarr_explorer.report import inspect

    path = _sharded(tmp_path)
    _set_inner_chunk_shape(path, value)
    report = inspect(path)  # a report, not a crash
    (node,) = report.nodes
    json.dumps(report.to_dict(), allow_nan=False)
    str(report)
    from napari_zarr_explorer.chunks import chunk_map

    with pytest.raises(ExplorerError, match="chunk shape"):
        chunk_map(path)
    assert node.path == ""


@pytest.mark.parametrize("fmt", [2, 3])
def test_a_codec_list_of_millions_is_refused_quickly(tmp_path: Path, fmt: int) -> None:
    """A codec list of a million entries (3 MB of JSON) took minutes to describe in inspect."""
    from napari_zarr_explorer.chunks import chunk_map
    from napari_zarr_explorer.codecs import MAX_CODECS
    from napari_zarr_explorer.errors import MetadataError
    from napari_zarr_explorer.report import inspect

    path = testing.write_array(tmp_path / "s.zarr", VALUES, zarr_format=fmt, chunks=(8, 8))
    name = "zarr.json" if fmt == 3 else ".zarray"
    doc = json.loads((path / name).read_text())
    many = [{"name": "crc32c"} if fmt == 3 else {"id": "crc32c"}] * 150_000
    doc["codecs" if fmt == 3 else "filters"] = doc.get("codecs", [])[:1] + many
    (path / name).write_text(json.dumps(doc))
    report = inspect(path)
    (node,) = report.nodes
    assert any(f"more than the {MAX_CODECS}" in e for e in node.errors), node.errors
    with pytest.raises(MetadataError):
        chunk_map(path, verify=True)


def test_a_huge_list_of_bad_transformations_is_parsed_in_linear_time(tmp_path: Path) -> None:
    """150 000 invalid coordinateTransformations kept inspect busy (quadratic warning dedup)."""
    from napari_zarr_explorer.ome.model import MAX_WARNINGS
    from napari_zarr_explorer.report import inspect

    path = testing.write_ome_image(
        tmp_path / "i.zarr", version="0.4", shape=(2, 16, 16), axes="cyx", levels=2
    )
    doc = json.loads((path / ".zattrs").read_text())
    doc["multiscales"][0]["datasets"][1]["coordinateTransformations"].extend(range(150_000))
    (path / ".zattrs").write_text(json.dumps(doc))
    report = inspect(path)
    warnings = report.nodes[0].ome.warnings if report.nodes[0].ome else ()
    assert 0 < len(warnings) <= MAX_WARNINGS + 1
    assert any("not shown" in w for w in warnings), warnings


@pytest.mark.parametrize(
    "configuration",
    [["..%2Fsecret", True, -664, False], {"chunk_shape": "8x8"}, {"chunk_shape": [8.5, 8]}],
    ids=str,
)
def test_inspect_survives_a_malformed_chunk_grid(tmp_path: Path, configuration: Any) -> None:
    """inspect raised AttributeError on a chunk_grid configuration that is a list."""
    from napari_zarr_explorer.report import inspect

    path = testing.write_array(tmp_path / "a.zarr", VALUES, zarr_format=3, chunks=(4, 4))
    doc = json.loads((path / "zarr.json").read_text())
    doc["chunk_grid"]["configuration"] = configuration
    (path / "zarr.json").write_text(json.dumps(doc))
    try:
        report = inspect(path)
    except ExplorerError:
        return  # a clear refusal is fine; a crash is not
    json.dumps(report.to_dict(), allow_nan=False)
    str(report)


def test_a_chunk_grid_that_is_not_an_object_is_named_in_the_message(tmp_path: Path) -> None:
    """The message named an empty chunk shape instead of the malformed chunk_grid."""
    from napari_zarr_explorer.report import inspect

    path = testing.write_array(tmp_path / "a.zarr", VALUES, zarr_format=3, chunks=(4, 4))
    doc = json.loads((path / "zarr.json").read_text())
    doc["chunk_grid"]["configuration"] = [4, 4]
    (path / "zarr.json").write_text(json.dumps(doc))
    (node,) = inspect(path).nodes
    assert any("'chunk_grid' must be an object" in e for e in node.errors), node.errors


def test_validate_keeps_a_bounded_report_of_a_list_of_many_bad_entries(tmp_path: Path) -> None:
    """A 3 MB labels/.zattrs listing a million and a half numbers made validate build one
    message per entry (hundreds of MiB); each document now lists its first messages and counts
    the rest, and text quoted from the data is clipped."""
    from napari_zarr_explorer.ome.validate import validate
    from napari_zarr_explorer.ome.validate.common import (
        MAX_MESSAGE_CHARS,
        MAX_MESSAGES_PER_DOCUMENT,
    )

    path = testing.write_ome_image(
        tmp_path / "a.ome.zarr", version="0.4", shape=(2, 16, 16), axes="zyx", labels=True
    )
    n = 300_000
    huge = "x" * 3_000_000
    labels = ["cells", "cells", "../" + huge, *([0] * n)]
    (path / "labels" / ".zattrs").write_text(json.dumps({"labels": labels}))
    for report in (validate(path), validate(path / "labels" / ".zattrs")):
        assert not report.valid
        mine = [m for m in report.messages if m.file.endswith(".zattrs")]
        assert len(mine) == MAX_MESSAGES_PER_DOCUMENT + 1
        assert mine[0].path.endswith("/labels/1") and "already listed" in mine[0].message
        assert "outside" in mine[1].message or ".." in mine[1].message
        assert mine[-1].message.startswith(f"{n + 2 - MAX_MESSAGES_PER_DOCUMENT} more errors")
        for m in report.messages:
            assert max(len(m.message), len(m.path), len(m.node), len(m.file)) <= MAX_MESSAGE_CHARS
        json.dumps(report.to_dict())
        assert len(str(report)) < 100 * MAX_MESSAGE_CHARS
