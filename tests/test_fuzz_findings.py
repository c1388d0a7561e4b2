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
