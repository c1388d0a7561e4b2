"""Reports and chunk maps on remote stores: HTTP (cannot list) and S3 (lists with sizes)."""

from __future__ import annotations

import json
import shutil
import uuid

import numpy as np
import pytest

from napari_zarr_explorer import chunk_map, inspect
from napari_zarr_explorer.chunks import PRESENT
from napari_zarr_explorer.testing import write_array, write_ome_image

FAST = {"explorer_retries": 1, "explorer_backoff": 0.01, "explorer_timeout": 10}


@pytest.fixture
def served(http_server):
    root = http_server.root
    write_ome_image(root / "img.ome.zarr", shape=(1, 2, 32, 32), levels=2, labels=True)
    data = np.zeros((20, 20), dtype="uint16")
    data[:10] = 3
    write_array(root / "s.zarr", data, chunks=(5, 5), shards=(10, 10), fill_value=0)
    return http_server


def test_inspect_over_http_walks_ome_metadata(served):
    report = inspect(f"{served.url}/img.ome.zarr", storage_options=FAST)
    assert not report.listed
    paths = {n.path for n in report.nodes}
    assert {"", "0", "1", "labels", "labels/cells", "labels/cells/0"} <= paths
    assert report.root is not None and report.root.ome is not None
    assert not report.problems
    assert all(a.bytes_stored is None for a in report.arrays)


def test_chunk_map_over_http_probes_and_reads_only_indexes(served):
    cmap = chunk_map(f"{served.url}/s.zarr", storage_options=FAST)
    assert not cmap.listed
    assert cmap.chunks_present == 8 and cmap.shards_present == 2
    assert (cmap.state[:2] == PRESENT).all()
    gets = [
        r for r in served.requests if r.method == "GET" and "/c/" in f"/{r.path}" and r.status < 400
    ]
    assert gets and all(r.range == "bytes=-68" for r in gets)  # shard indexes only


def test_s3_listing_with_sizes(s3_server, tmp_path, monkeypatch):
    for var, value in s3_server.credentials_env.items():
        monkeypatch.setenv(var, value)
    local = write_ome_image(tmp_path / "img.ome.zarr", shape=(1, 2, 32, 32), levels=2)
    url = s3_server.upload(local, s3_server.public_bucket, f"r-{uuid.uuid4().hex[:8]}/img.ome.zarr")
    options = {**FAST, "endpoint_url": s3_server.endpoint_url}
    report = inspect(url, storage_options=options)
    assert report.listed
    local_report = inspect(local)
    assert {a.path: a.bytes_stored for a in report.arrays} == {
        a.path: a.bytes_stored for a in local_report.arrays
    }
    cmap = chunk_map(url, "0", storage_options=options)
    assert cmap.listed and cmap.chunks_present == chunk_map(local, "0").chunks_present
    shutil.rmtree(local)


def test_escaping_path_in_root_metadata_names_the_store_over_http(http_server):
    """The root group's own error is about the store: '<url>: ...', not '<url>/: ...'."""
    root = write_ome_image(http_server.root / "img.ome.zarr", shape=(1, 2, 32, 32), levels=1)
    doc = json.loads((root / "zarr.json").read_text())
    doc["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"] = "../../outside"
    (root / "zarr.json").write_text(json.dumps(doc))
    url = f"{http_server.url}/img.ome.zarr"
    report = inspect(url, storage_options=FAST)
    (error,) = [e for e in report.errors if "outside" in e]
    assert error.startswith(f"{url}: "), error


def test_missing_root_over_http_names_the_store(http_server):
    """No metadata at the URL: nothing to report, and the error names the store itself."""
    from napari_zarr_explorer.errors import NotFoundError

    (http_server.root / "empty.zarr").mkdir()
    url = f"{http_server.url}/empty.zarr"
    with pytest.raises(NotFoundError) as info:
        inspect(url, storage_options=FAST)
    assert str(info.value).startswith(f"no Zarr metadata at {url} ("), info.value
