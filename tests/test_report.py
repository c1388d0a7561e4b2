"""Inspection reports: hierarchy, arrays, codecs, bytes, OME, bad nodes."""

from __future__ import annotations

import json
import math
from typing import Any

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore, WrapperStore

from napari_zarr_explorer import inspect
from napari_zarr_explorer.codecs import codec_pipeline, describe_pipeline, sharding_info
from napari_zarr_explorer.report import ArrayReport, ErrorReport, GroupReport, StoreReport
from napari_zarr_explorer.testing import (
    write_array,
    write_bioformats2raw,
    write_ome_image,
    write_plate,
)


class UnlistableStore(WrapperStore[Any]):
    """A local store that cannot list, like an HTTP server."""

    @property
    def supports_listing(self) -> bool:
        return False


def _json_roundtrip(report: StoreReport) -> dict[str, Any]:
    return json.loads(json.dumps(report.to_dict(), allow_nan=False))


def test_plain_array_report(tmp_path, zarr_format):
    data = np.arange(40 * 50, dtype="float32").reshape(40, 50)
    data[20:] = np.nan
    path = write_array(
        tmp_path / "a.zarr",
        data,
        zarr_format=zarr_format,
        chunks=(10, 10),
        fill_value=np.nan,
        compressor="zstd:5",
        dimension_names=["y", "x"],
        attributes={"note": "hello"},
    )
    report = inspect(path)
    assert report.listed
    (arr,) = report.arrays
    assert arr.path == ""
    assert arr.zarr_format == zarr_format
    assert arr.shape == (40, 50)
    assert arr.chunk_shape == (10, 10)
    assert arr.shard_shape is None
    assert arr.chunks_total == 20
    assert arr.shards_total is None
    assert arr.objects_stored == 10  # the NaN half is not stored
    assert arr.fill_value == "NaN"
    assert arr.endianness == "little"
    assert arr.order == "C"
    assert arr.attributes == {"note": "hello"}
    assert arr.logical_bytes == 40 * 50 * 4
    on_disk = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert arr.bytes_stored == on_disk
    assert arr.ratio == pytest.approx(arr.logical_bytes / on_disk)
    names = [c.name for c in arr.codecs]
    assert names[-1] in ("zstd", "numcodecs.zstd")
    assert "bytes" in names
    if zarr_format == 3:
        assert arr.dimension_names == ("y", "x")
        assert arr.dtype == "float32"
    else:
        assert arr.dtype == "<f4"
        assert arr.codecs[0].implied  # dtype byte order as a bytes codec
    node = _json_roundtrip(report)["nodes"][0]
    for key in (
        "path",
        "kind",
        "zarr_format",
        "shape",
        "dtype",
        "chunk_shape",
        "shard_shape",
        "codecs",
        "fill_value",
        "dimension_names",
        "bytes_stored",
        "attributes",
    ):
        assert key in node
    assert node["kind"] == "array" and node["shard_shape"] is None
    assert node["fill_value"] == "NaN"
    assert all(set(c) >= {"name", "configuration"} for c in node["codecs"])


def test_sharded_codecs_normalised(tmp_path):
    path = write_array(
        tmp_path / "s.zarr",
        np.ones((64, 64), dtype="uint16"),
        chunks=(8, 8),
        shards=(32, 32),
        compressor="zstd:3",
    )
    report = inspect(path)
    (arr,) = report.arrays
    assert arr.chunk_shape == (8, 8)
    assert arr.shard_shape == (32, 32)
    assert arr.chunks_total == 64 and arr.shards_total == 4
    assert arr.objects_stored == 4
    (sharding,) = arr.codecs
    assert sharding.name == "sharding_indexed" and sharding.role == "array->bytes"
    assert [c.name for c in sharding.inner] == ["bytes", "zstd"]
    assert [c.name for c in sharding.index] == ["bytes", "crc32c"]
    assert sharding.inner[1].role == "bytes->bytes"
    assert arr.endianness == "little"
    info = sharding_info(arr.codecs)
    assert info is not None and info.index_location == "end"
    assert info.index_nbytes((32, 32)) == 16 * 16 + 4
    node = _json_roundtrip(report)["nodes"][0]
    assert node["shard_shape"] == [32, 32]
    inner = node["codecs"][0]["configuration"]["codecs"]
    assert [c["name"] for c in inner] == ["bytes", "zstd"]
    assert "sharding[8x8](bytes(endian=little) | zstd(" in arr.codecs_text


def test_v2_filters_and_order():
    meta = {
        "zarr_format": 2,
        "shape": [10, 10],
        "chunks": [5, 5],
        "dtype": ">i4",
        "order": "F",
        "filters": [{"id": "delta", "dtype": ">i4"}],
        "compressor": {"id": "blosc", "cname": "zstd", "clevel": 5, "shuffle": 2},
        "fill_value": 0,
    }
    codecs = codec_pipeline(meta, zarr_format=2)
    assert [(c.name, c.role) for c in codecs] == [
        ("delta", "array->array"),
        ("transpose", "array->array"),
        ("bytes", "array->bytes"),
        ("blosc", "bytes->bytes"),
    ]
    assert codecs[2].configuration == {"endian": "big"}
    assert codecs[1].implied and codecs[2].implied
    assert "blosc(cname=zstd" in describe_pipeline(codecs)


def test_unknown_v3_codec_described_by_position():
    meta = {
        "zarr_format": 3,
        "node_type": "array",
        "codecs": [
            {"name": "my.filter", "configuration": {"a": 1}},
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "my.compressor"},
        ],
    }
    codecs = codec_pipeline(meta, zarr_format=3)
    assert [c.role for c in codecs] == ["array->array", "array->bytes", "bytes->bytes"]
    assert codecs[0].configuration == {"a": 1}


def test_ome_image_report(tmp_path):
    path = write_ome_image(tmp_path / "img.ome.zarr", shape=(2, 4, 64, 64), levels=2, labels=True)
    report = inspect(path)
    root = report.root
    assert isinstance(root, GroupReport)
    assert root.ome is not None
    assert root.ome.kind == "image" and root.ome.version == "0.5"
    assert [a["name"] for a in root.ome.axes] == ["c", "z", "y", "x"]
    assert [lvl.path for lvl in root.ome.levels] == ["0", "1"]
    assert root.ome.levels[0].shape == (2, 4, 64, 64)
    assert root.ome.levels[1].shape == (2, 4, 32, 32)
    assert root.ome.levels[1].scale is not None
    assert len(root.ome.channels) == 2
    labels = report["labels"]
    assert isinstance(labels, GroupReport) and labels.ome and labels.ome.kind == "labels"
    cells = report["labels/cells"]
    assert isinstance(cells, GroupReport) and cells.ome and cells.ome.label_image
    assert {a.path for a in report.arrays} >= {"0", "1", "labels/cells/0"}
    d = _json_roundtrip(report)
    assert d["nodes"][0]["ome"]["levels"][0]["shape"] == [2, 4, 64, 64]
    assert report.children("") and all(n.path.count("/") == 0 for n in report.children(""))


def test_ome_04_plate_and_bioformats2raw(tmp_path):
    image = write_ome_image(tmp_path / "v04.ome.zarr", version="0.4", shape=(1, 2, 32, 32))
    r = inspect(image)
    assert r.root is not None and r.root.zarr_format == 2
    assert isinstance(r.root, GroupReport) and r.root.ome and r.root.ome.version == "0.4"
    plate = write_plate(tmp_path / "plate.ome.zarr", rows=1, cols=2, fields=1)
    r = inspect(plate)
    assert isinstance(r.root, GroupReport) and r.root.ome and r.root.ome.kind == "plate"
    assert len(r.root.ome.children) == 2
    kinds = {n.ome.kind for n in r.groups if n.ome}
    assert {"plate", "well", "image"} <= kinds
    b2r = write_bioformats2raw(tmp_path / "b2r.ome.zarr", series=2)
    r = inspect(b2r)
    assert isinstance(r.root, GroupReport) and r.root.ome and r.root.ome.kind == "bioformats2raw"


def test_bad_nodes_do_not_hide_others(tmp_path):
    root = tmp_path / "h.zarr"
    group = zarr.create_group(LocalStore(root), zarr_format=2)
    good = group.create_array("good", shape=(10,), chunks=(5,), dtype="uint8")
    good[:] = 1
    group.create_array("badjson", shape=(10,), chunks=(5,), dtype="uint8")
    (root / "badjson" / ".zarray").write_text('{"zarr_format": 2, "shape": [10,')
    # pickle-based object codec: refused and reported, never decoded
    pick = root / "pickled"
    pick.mkdir()
    (pick / ".zarray").write_text(
        json.dumps(
            {
                "zarr_format": 2,
                "shape": [4],
                "chunks": [4],
                "dtype": "|O",
                "compressor": None,
                "filters": [{"id": "pickle", "protocol": 5}],
                "fill_value": 0,
                "order": "C",
            }
        )
    )
    unknown = root / "unknown"
    unknown.mkdir()
    (unknown / ".zarray").write_text(
        json.dumps(
            {
                "zarr_format": 2,
                "shape": [4],
                "chunks": [2],
                "dtype": "<u2",
                "compressor": {"id": "no-such-codec", "level": 3},
                "filters": None,
                "fill_value": 0,
                "order": "C",
            }
        )
    )
    report = inspect(root)
    by_path = {n.path: n for n in report.nodes}
    assert isinstance(by_path["good"], ArrayReport) and not by_path["good"].errors
    assert isinstance(by_path["badjson"], ErrorReport)
    assert "badjson/.zarray" in by_path["badjson"].errors[0]
    assert isinstance(by_path["pickled"], ArrayReport) and by_path["pickled"].errors
    assert "pickle" in by_path["pickled"].errors[0]
    assert isinstance(by_path["unknown"], ArrayReport)
    assert "no-such-codec" in by_path["unknown"].errors[0]
    assert by_path["unknown"].codecs[-1].name == "no-such-codec"
    assert len(report.problems) == 3
    d = _json_roundtrip(report)
    assert {n["path"] for n in d["nodes"]} >= {"good", "badjson", "pickled", "unknown"}
    text = str(report)
    assert "error" in text and "good" in text
    assert "badjson" in report._repr_html_()


def test_max_nodes_and_path(tmp_path):
    root = tmp_path / "many.zarr"
    group = zarr.create_group(LocalStore(root))
    for i in range(6):
        sub = group.create_group(f"g{i}")
        for j in range(3):
            sub.create_array(f"a{j}", shape=(4,), chunks=(2,), dtype="uint8")
    full = inspect(root)
    assert len(full.nodes) == 1 + 6 + 18 and not full.truncated
    capped = inspect(root, max_nodes=5)
    assert capped.truncated and len(capped.nodes) == 5
    assert capped.more[:2] == ("g1", "g2")
    deeper = inspect(root, path=capped.more[-1])
    assert deeper.path == capped.more[-1]
    assert len(deeper.arrays) == 3
    assert all(n.path.startswith(deeper.path) for n in deeper.nodes)
    d = capped.to_dict()
    assert d["truncated"] is True and d["more"]
    one = inspect(root, max_nodes=1)
    assert "more than 1 node;" in str(one) and "More than 1 node:" in one._repr_html_()
    assert "more than 5 nodes;" in str(capped)


def test_unlistable_store_walks_ome_metadata(tmp_path):
    path = write_ome_image(tmp_path / "img.ome.zarr", shape=(1, 2, 32, 32), levels=2, labels=True)
    report = inspect(UnlistableStore(LocalStore(path, read_only=True)))
    assert not report.listed
    paths = {n.path for n in report.nodes}
    assert {"", "0", "1", "labels", "labels/cells", "labels/cells/0"} <= paths
    assert all(a.bytes_stored is None for a in report.arrays)
    assert any("cannot list" in w for w in report.warnings)


def test_unlistable_store_uses_consolidated_metadata(tmp_path):
    root = tmp_path / "c.zarr"
    group = zarr.create_group(LocalStore(root), zarr_format=2)
    group.create_group("x").create_array("y", shape=(4,), chunks=(2,), dtype="uint8")
    zarr.consolidate_metadata(LocalStore(root))
    report = inspect(UnlistableStore(LocalStore(root, read_only=True)))
    assert {n.path for n in report.nodes} >= {"", "x", "x/y"}


def test_incomplete_marker_warns(tmp_path):
    path = write_array(
        tmp_path / "out.zarr",
        np.zeros(4, dtype="uint8"),
        attributes={"napari_zarr_explorer": {"incomplete": True, "source": "x"}},
    )
    report = inspect(path)
    assert any("incomplete output" in w for w in report.arrays[0].warnings)
    assert any("incomplete output" in w for w in report.warnings)


def test_missing_store(tmp_path):
    from napari_zarr_explorer.errors import NotFoundError

    with pytest.raises(NotFoundError):
        inspect(tmp_path / "nope.zarr")
    # a folder with no Zarr metadata holds no store either, as a URL with nothing behind it
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match=r"no Zarr metadata at .*empty"):
        inspect(tmp_path / "empty")


def test_html_and_text(tmp_path):
    path = write_ome_image(tmp_path / "img.ome.zarr", shape=(1, 2, 32, 32), levels=2)
    report = inspect(path)
    html = report._repr_html_()
    assert "<table" in html and "codecs" in html and "OME image" in html
    text = str(report)
    assert "OME image 0.5" in text and "array 0" in text
    assert "zstd" in report["0"]._repr_html_()
    assert "level" in report[""]._repr_html_()
    assert "StoreReport" in repr(report)


def test_corpus_implementations(corpus):
    examples = corpus / "zarr_implementations" / "examples" / "zarr.zr"
    report = inspect(examples)
    assert sorted(a.path for a in report.arrays) == ["blosc", "gzip", "raw", "zlib"]
    for arr in report.arrays:
        assert arr.bytes_stored and arr.bytes_stored > 0
        assert not arr.errors, arr.errors
        assert math.prod(arr.shape) > 0
    json.dumps(report.to_dict(), allow_nan=False)


def test_numcodecs_filter_v2(tmp_path):
    path = write_array(
        tmp_path / "d.zarr",
        np.arange(100, dtype="int32"),
        zarr_format=2,
        chunks=(10,),
        filters=[numcodecs.Delta(dtype="<i4")],
    )
    (arr,) = inspect(path).arrays
    assert arr.codecs[0].name == "delta" and arr.codecs[0].role == "array->array"


def test_unlistable_image_without_labels(tmp_path):
    path = write_ome_image(tmp_path / "img.ome.zarr", shape=(1, 2, 32, 32), levels=2)
    report = inspect(UnlistableStore(LocalStore(path, read_only=True)))
    assert {n.path for n in report.nodes} == {"", "0", "1"}
    assert not report.problems


def test_unlistable_plate_visits_rows_and_wells(tmp_path):
    plate = write_plate(tmp_path / "plate.ome.zarr", rows=1, cols=2, fields=1)
    listed = inspect(plate)
    unlisted = inspect(UnlistableStore(LocalStore(plate, read_only=True)))
    assert {n.path for n in unlisted.nodes} == {n.path for n in listed.nodes}


def test_text_names_the_starting_node_once(tmp_path):
    """As `inspect --path`: the first line names the node, and its description follows."""
    path = write_ome_image(tmp_path / "img.ome.zarr", shape=(1, 2, 32, 32), levels=2, labels=True)
    first, *rest = str(inspect(path, path="0")).splitlines()
    assert first.startswith(f"{path}/0  array (Zarr v3) [1, 2, 32, 32] uint16"), first
    assert rest == []
    first, *rest = str(inspect(path, path="labels/cells")).splitlines()
    assert first.startswith(f"{path}/labels/cells  group (Zarr v3) [OME label image"), first
    assert [line.split(" (")[0] for line in rest] == [
        "  array labels/cells/0",
        "  array labels/cells/1",
    ]
    first, second, *_ = str(inspect(path)).splitlines()
    assert first.startswith(f"{path}  group (Zarr v3) [OME image 0.5"), first
    assert second.startswith("  array 0 (Zarr v3)"), second
