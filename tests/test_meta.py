"""Metadata reading and the safety gate in front of zarr-python."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer import store as meta
from napari_zarr_explorer.errors import CodecError, MetadataError, NotFoundError, UnsafeDataError
from napari_zarr_explorer.store import open_store, parse_location
from napari_zarr_explorer.testing import write_array


def _store(path: Path):
    return open_store(parse_location(path))


def test_read_json_absent_and_present(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"x": 1}')
    store = _store(tmp_path)
    assert meta.read_json(store, "a.json", where="W") == {"x": 1}
    assert meta.read_json(store, "missing.json", where="W") is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"zarr_format": 2, "shape": [1', "line 1, column"),
        ("", "empty"),
        ("[1, 2]", "expected a JSON object"),
        ('{"a": 1,\n  "b": }', "line 2, column"),
    ],
    ids=["truncated", "empty", "list", "syntax"],
)
def test_read_json_corrupt(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "zarr.json").write_text(text)
    with pytest.raises(MetadataError, match=r"zarr\.json") as info:
        meta.read_json(_store(tmp_path), "zarr.json", where=str(tmp_path))
    assert needle in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_read_json_not_utf8(tmp_path: Path) -> None:
    (tmp_path / ".zattrs").write_bytes(b"\xff\xfe{}")
    with pytest.raises(MetadataError, match=r"\.zattrs: not valid UTF-8"):
        meta.read_json(_store(tmp_path), ".zattrs", where="W")


def test_read_node_v2_and_v3(tmp_path: Path, zarr_format: int) -> None:
    write_array(
        tmp_path / "s",
        np.zeros((4, 4)),
        zarr_format=zarr_format,
        name="arr",
        attributes={"hello": "world"},
    )
    store = _store(tmp_path / "s")
    node = meta.read_node(store, "arr", where="W")
    assert node is not None
    assert node.kind == "array" and node.zarr_format == zarr_format
    assert node.attributes["hello"] == "world"
    assert node.shape == (4, 4)
    root = meta.read_node(store, "", where="W")
    assert root is not None and root.kind == "group"
    assert meta.read_node(store, "nothing", where="W") is None


def test_read_node_consolidated(tmp_path: Path, zarr_format: int) -> None:
    import zarr

    write_array(tmp_path / "s", np.zeros((4, 4)), zarr_format=zarr_format, name="g/arr")
    zarr.consolidate_metadata(str(tmp_path / "s"), zarr_format=zarr_format)
    # remove the array's own metadata: the consolidated copy must be used
    own = tmp_path / "s" / "g" / "arr" / ("zarr.json" if zarr_format == 3 else ".zarray")
    own.unlink()
    node = meta.read_node(_store(tmp_path / "s"), "g/arr", where="W")
    assert node is not None and node.kind == "array" and node.shape == (4, 4)


def test_wrong_zarr_format(tmp_path: Path) -> None:
    (tmp_path / ".zgroup").write_text('{"zarr_format": 3}')
    with pytest.raises(MetadataError, match=r"\.zgroup: zarr_format is 3, expected 2"):
        meta.read_node(_store(tmp_path), "", where=str(tmp_path))
    (tmp_path / "zarr.json").write_text('{"zarr_format": 3, "node_type": "banana"}')
    with pytest.raises(MetadataError, match="node_type"):
        meta.read_node(_store(tmp_path), "", where=str(tmp_path))


V2 = {
    "shape": [4],
    "chunks": [2],
    "dtype": "<u2",
    "compressor": None,
    "filters": None,
    "fill_value": 0,
    "order": "C",
    "zarr_format": 2,
}


def v3(codecs: list) -> dict:
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [4],
        "data_type": "uint16",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
        "chunk_key_encoding": {"name": "default"},
        "fill_value": 0,
        "codecs": codecs,
    }


@pytest.mark.parametrize(
    "md",
    [
        {**V2, "compressor": {"id": "pickle"}},
        {**V2, "filters": [{"id": "pickle", "protocol": 4}]},
        {**V2, "dtype": "|O", "filters": [{"id": "vlen-utf8"}]},
        {**V2, "dtype": "|O", "filters": [{"id": "json2"}]},
        {**V2, "dtype": [["a", "<i4"], ["b", "|O"]]},
    ],
    ids=["compressor", "filter", "object-vlen", "object-json", "structured-object"],
)
def test_v2_pickle_and_objects_refused(md: dict) -> None:
    with pytest.raises(UnsafeDataError, match="no byte of it was decoded"):
        meta.check_array_metadata(md, where="W/arr", zarr_format=2)


@pytest.mark.parametrize(
    "codecs",
    [
        [{"name": "bytes"}, {"name": "numcodecs.pickle"}],
        [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": [1],
                    "codecs": [{"name": "bytes"}, {"name": "numcodecs.pickle"}],
                    "index_codecs": [{"name": "bytes"}],
                },
            }
        ],
        [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": [1],
                    "codecs": [{"name": "bytes"}],
                    "index_codecs": [{"name": "bytes"}, {"name": "pickle"}],
                },
            }
        ],
    ],
    ids=["codec", "nested-in-shard", "shard-index"],
)
def test_v3_pickle_refused(codecs: list) -> None:
    with pytest.raises(UnsafeDataError, match="pickle"):
        meta.check_array_metadata(v3(codecs), where="W", zarr_format=3)


def test_v3_object_dtype_refused() -> None:
    md = v3([{"name": "bytes"}])
    md["data_type"] = "object"
    with pytest.raises(UnsafeDataError):
        meta.check_array_metadata(md, where="W", zarr_format=3)


@pytest.mark.parametrize(
    ("md", "fmt", "codec", "package"),
    [
        (
            {**V2, "compressor": {"id": "imagecodecs_nonexistent"}},
            2,
            "imagecodecs_nonexistent",
            "imagecodecs",
        ),
        ({**V2, "compressor": {"id": "frobnicate"}}, 2, "frobnicate", None),
        ({**V2, "filters": [{"id": "sz3"}]}, 2, "sz3", "pysz3"),
        (v3([{"name": "bytes"}, {"name": "frobnicate"}]), 3, "frobnicate", None),
        (
            v3([{"name": "bytes"}, {"name": "numcodecs.imagecodecs_nope"}]),
            3,
            "numcodecs.imagecodecs_nope",
            "imagecodecs",
        ),
    ],
    ids=["v2-imagecodecs", "v2-unknown", "v2-sz3", "v3-unknown", "v3-imagecodecs"],
)
def test_unknown_codec(md: dict, fmt: int, codec: str, package: str | None) -> None:
    with pytest.raises(CodecError) as info:
        meta.check_array_metadata(md, where="W/arr", zarr_format=fmt)
    msg = str(info.value)
    assert repr(codec) in msg
    if package is None:  # no package is known to provide it: no advice to install anything
        assert "pip install" not in msg
        assert "lacks" in msg
    else:
        assert f"pip install {package}" in msg


@pytest.mark.parametrize(
    "md",
    [
        {**V2, "shape": "four"},
        {**V2, "chunks": [0]},
        {**V2, "chunks": [1, 2]},
        {**V2, "filters": {"id": "zlib"}},
        {**V2, "compressor": "zlib"},
    ],
    ids=["shape-str", "chunk-zero", "chunk-rank", "filters-obj", "compressor-str"],
)
def test_malformed_array_metadata(md: dict) -> None:
    with pytest.raises(MetadataError):
        meta.check_array_metadata(md, where="W", zarr_format=2)


def test_safe_codecs_pass() -> None:
    meta.check_array_metadata(
        {
            **V2,
            "compressor": {"id": "zstd", "level": 1},
            "filters": [{"id": "delta", "dtype": "<u2"}],
        },
        where="W",
        zarr_format=2,
    )
    meta.check_array_metadata(v3([{"name": "bytes"}, {"name": "zstd"}]), where="W", zarr_format=3)
    assert meta.codec_ids({**V2, "compressor": {"id": "zstd"}}, 2) == ["zstd"]


def test_open_array_refuses_before_zarr(tmp_path: Path) -> None:
    (tmp_path / ".zarray").write_text(json.dumps({**V2, "compressor": {"id": "pickle"}}))
    (tmp_path / "0").write_bytes(b"\x80\x04K\x01.")  # a pickle stream: must never be loaded
    with pytest.raises(UnsafeDataError):
        meta.open_array(parse_location(tmp_path))


def test_open_array_and_group(tmp_path: Path, zarr_format: int) -> None:
    write_array(tmp_path, np.arange(6).reshape(2, 3), zarr_format=zarr_format, name="a")
    loc = parse_location(tmp_path)
    arr = meta.open_array(loc, "a")
    np.testing.assert_array_equal(arr[...], np.arange(6).reshape(2, 3))
    grp = meta.open_group(loc)
    assert "a" in list(grp.array_keys())
    with pytest.raises(MetadataError, match="group, not an array"):
        meta.open_array(loc, "")
    with pytest.raises(MetadataError, match="array, not a group"):
        meta.open_group(loc, "a")
    with pytest.raises(NotFoundError):
        meta.open_array(loc, "b")
