"""Checks across parts: what one part writes, the others read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import MetadataError
from napari_zarr_explorer.meta import read_json


def test_zfp_output_of_recompress_opens_in_a_fresh_process(tmp_path: Path) -> None:
    pytest.importorskip("imagecodecs")
    from napari_zarr_explorer.recompress import recompress

    data = (np.random.default_rng(0).random((2, 16, 16)) * 10).astype("float32")
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=3, chunks=(1, 8, 8))
    dst = tmp_path / "dst.zarr"
    assert recompress(src, dst, compressor="zfp:reversible", zarr_format=3).ok
    code = (
        "import sys, numpy as np; from napari_zarr_explorer import open_pyramid; "
        f"a = open_pyramid({str(dst)!r})[0].compute(); np.save(sys.stdout.buffer, a)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    import io

    np.testing.assert_array_equal(np.load(io.BytesIO(proc.stdout)), data)


def test_json_error_message_reads_naturally(tmp_path: Path) -> None:
    from zarr.storage import LocalStore

    (tmp_path / "zarr.json").write_text('{"zarr_format": 3, "node_type": "gr\noup"}')
    store = LocalStore(tmp_path, read_only=True)
    with pytest.raises(MetadataError) as info:
        read_json(store, "zarr.json", where=str(tmp_path))
    message = str(info.value)
    assert "zarr.json" in message
    assert " at at " not in message
    assert "line 1" in message
    json.dumps(message)
