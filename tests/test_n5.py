"""N5 containers: read like Zarr everywhere (reader, inspect, chunks, recompress), local and HTTP.

Data is written by z5py (the implementation behind the N5 examples of zarr_implementations) and
by hand where a test needs a hostile or n5-java-style block.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import warnings
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest

import napari_zarr_explorer as nze
from napari_zarr_explorer._reader import napari_get_reader
from napari_zarr_explorer.errors import CodecError, ExplorerWarning, MetadataError
from napari_zarr_explorer.layers import open_layers

# the function: napari_zarr_explorer.recompress is also a sub-package
from napari_zarr_explorer.recompress import recompress
from napari_zarr_explorer.store import n5, open_array, open_store, parse_location

z5py = pytest.importorskip("z5py")

COMPRESSIONS = ["raw", "gzip", "bzip2", "xz", "lz4", "blosc", "zstd"]
DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32",
          "float64"]  # fmt: skip


def _values(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is None:
        return (rng.standard_normal(shape) * 1000).astype(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def _z5(path: Path) -> Any:
    return z5py.File(str(path), mode="a", use_zarr_format=False)


def _read(path: Path | str, array: str) -> np.ndarray:
    return np.asarray(open_array(parse_location(path), array)[...])


# ---------------------------------------------------------------- the shared corpus


def test_zarr_implementations_n5_equals_reference(corpus: Path) -> None:
    import imageio.v3 as iio

    root = corpus / "zarr_implementations"
    ref = iio.imread(root / "data" / "reference_image.png")
    containers = sorted((root / "examples").glob("*.n5"))
    assert containers, "the corpus has N5 examples"
    import npe2

    npe2.PluginManager.instance().discover()
    for container in containers:
        assert napari_get_reader(str(container)) is not None
        layers = npe2.read([str(container)], stack=False, plugin_name="napari-zarr-explorer")
        datasets = sorted(p.parent.name for p in container.glob("*/attributes.json"))
        assert sorted(k["name"] for _, k, _ in layers) == datasets
        for data, kwargs, kind in layers:
            assert kind == "image"
            np.testing.assert_array_equal(np.asarray(data), ref, err_msg=kwargs["name"])


# ---------------------------------------------------------------- z5py-written data


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_z5py_compression_and_dtype(tmp_path: Path, compression: str) -> None:
    f = _z5(tmp_path / "c.n5")
    expected = {}
    for i, dtype in enumerate(DTYPES):
        shape = (13, 37, 29) if i % 2 else (45, 70)  # 3-D and 2-D, edge blocks everywhere
        chunks = (4, 16, 8) if len(shape) == 3 else (16, 32)
        values = _values(shape, dtype, seed=i)
        f.create_dataset(dtype, data=values, chunks=chunks, compression=compression)
        expected[dtype] = values
    for dtype, values in expected.items():
        got = _read(tmp_path / "c.n5", dtype)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, values, err_msg=dtype)
        # a region across block edges, through the reader's dask path
        ((data, _, _),) = [lay for lay in open_layers(tmp_path / "c.n5") if lay[1]["name"] == dtype]
        region = tuple(slice(3, s - 2) for s in values.shape)
        np.testing.assert_array_equal(np.asarray(data[region]), values[region])


def test_missing_blocks_read_as_zero_and_show_in_chunk_map(tmp_path: Path) -> None:
    values = _values((30, 40), "uint16")
    _z5(tmp_path / "m.n5").create_dataset("a", data=values, chunks=(10, 16), compression="gzip")
    # N5 keys list the fastest axis first: block (row 1, column 2) is "a/2/1"
    (tmp_path / "m.n5" / "a" / "2" / "1").unlink()
    expected = values.copy()
    expected[10:20, 32:40] = 0
    np.testing.assert_array_equal(_read(tmp_path / "m.n5", "a"), expected)
    cmap = nze.chunk_map(tmp_path / "m.n5", "a")
    assert cmap.grid_shape == (3, 3)
    assert (cmap.chunks_present, cmap.chunks_missing) == (8, 1)
    assert cmap.state[1, 2] != cmap.state[0, 0]


def test_inspect_describes_n5(tmp_path: Path) -> None:
    f = _z5(tmp_path / "i.n5")
    f.create_dataset("vol", data=_values((6, 20, 30), "float32"), chunks=(2, 8, 16),
                     compression="zstd")  # fmt: skip
    report = nze.inspect(tmp_path / "i.n5")
    (arr,) = report.arrays
    assert arr.path == "vol"
    assert arr.shape == (6, 20, 30)
    assert arr.chunk_shape == (2, 8, 16)
    (codec,) = arr.codecs
    assert codec.name == "n5"
    assert codec.configuration["compression"]["type"] == "zstd"
    assert codec.role == "array->bytes"
    assert "n5(compression=" in str(report)
    assert json.loads(json.dumps(report.to_dict()))


def test_n5_viewer_multiscale_at_physical_scale(tmp_path: Path) -> None:
    f = _z5(tmp_path / "ms.n5")
    g = f.create_group("setup0").create_group("timepoint0")
    base = _values((12, 64, 48), "uint16")
    for i in range(3):
        ds = g.create_dataset(f"s{i}", data=base[:, :: 2**i, :: 2**i], chunks=(4, 16, 16),
                              compression="gzip")  # fmt: skip
        ds.attrs["downsamplingFactors"] = [2**i, 2**i, 1]  # N5 order: x, y, z
    g.attrs["pixelResolution"] = {"dimensions": [0.25, 0.25, 2.0], "unit": "um"}
    g.attrs["multiScale"] = True
    ((data, kwargs, kind),) = open_layers(tmp_path / "ms.n5")
    assert kind == "image"
    assert kwargs["multiscale"] is True
    assert [d.shape for d in data] == [(12, 64, 48), (12, 32, 24), (12, 16, 12)]
    assert kwargs["scale"] == pytest.approx((2.0, 0.25, 0.25))
    assert kwargs["axis_labels"] == ("z", "y", "x")
    assert kwargs["units"] == ("micrometer",) * 3
    np.testing.assert_array_equal(np.asarray(data[2]), base[:, ::4, ::4])
    levels = nze.open_pyramid(tmp_path / "ms.n5" / "setup0" / "timepoint0")
    assert len(levels) == 3


def test_bigdataviewer_scales_from_group_attributes(tmp_path: Path) -> None:
    f = _z5(tmp_path / "bdv.n5")
    g = f.create_group("setup0")
    base = _values((8, 32, 32), "uint8")
    for i in range(2):
        g.create_dataset(f"s{i}", data=base[:, :: 2**i, :: 2**i], chunks=(8, 16, 16),
                         compression="raw")  # fmt: skip
    g.attrs["downsamplingFactors"] = [[1, 1, 1], [2, 2, 1]]
    g.attrs["resolution"] = [0.5, 0.5, 3.0]
    doc = n5.multiscales(
        dict(g.attrs), [(f"s{i}", dict(g[f"s{i}"].attrs) | _dims(g[f"s{i}"])) for i in range(2)]
    )
    assert doc is not None
    ds1 = doc["multiscales"][0]["datasets"][1]["coordinateTransformations"]
    assert ds1[0]["scale"] == [3.0, 1.0, 1.0]
    # BigDataViewer centres a mipmap's voxels: (factor - 1) / 2 of a level-0 voxel
    assert ds1[1]["translation"] == [0.0, 0.25, 0.25]
    ((data, kwargs, _),) = open_layers(tmp_path / "bdv.n5" / "setup0")
    assert [d.shape for d in data] == [(8, 32, 32), (8, 16, 16)]
    assert kwargs["scale"] == pytest.approx((3.0, 0.5, 0.5))


def _dims(ds: Any) -> dict[str, Any]:
    return {"dimensions": list(ds.shape[::-1])}


def test_recompress_n5_to_zarr_v3(tmp_path: Path) -> None:
    import zarr

    f = _z5(tmp_path / "src.n5")
    vol = _values((10, 33, 47), "int16")
    f.create_dataset("a/vol", data=vol, chunks=(4, 16, 16), compression="lz4")
    report = recompress(tmp_path / "src.n5", tmp_path / "dst.zarr", compressor="zstd:3",
                            chunks=(5, 32, 32))  # fmt: skip
    assert report.ok
    out = zarr.open_array(tmp_path / "dst.zarr" / "a" / "vol", mode="r")
    assert out.metadata.zarr_format == 3
    np.testing.assert_array_equal(out[...], vol)
    # the source is untouched and still N5
    assert not (tmp_path / "src.n5" / "zarr.json").exists()


def test_n5_over_http(http_server: Any, tmp_path: Path) -> None:
    vol = _values((9, 40, 40), "uint16")
    f = _z5(tmp_path / "web.n5")
    g = f.create_group("pyr")
    for i in range(2):
        g.create_dataset(f"s{i}", data=vol[:, :: 2**i, :: 2**i], chunks=(3, 16, 16),
                         compression="gzip")  # fmt: skip
    shutil.copytree(tmp_path / "web.n5", http_server.root / "web.n5")
    url = f"{http_server.url}/web.n5/pyr"
    reader = napari_get_reader(url)
    assert reader is not None
    ((data, kwargs, _),) = reader(url)
    assert kwargs["multiscale"] is True
    np.testing.assert_array_equal(np.asarray(data[0]), vol)
    np.testing.assert_array_equal(np.asarray(data[1]), vol[:, ::2, ::2])
    assert not any("zarr.json" in p or ".zarray" in p for p in http_server.paths())
    report = nze.inspect(f"{http_server.url}/web.n5/pyr/s0")
    assert report.arrays[0].shape == (9, 40, 40)


# ---------------------------------------------------------------- safety


def _container(tmp_path: Path, attrs: dict[str, Any], blocks: dict[str, bytes]) -> Path:
    root = tmp_path / "h.n5"
    (root / "a").mkdir(parents=True)
    (root / "attributes.json").write_text('{"n5": "2.0.0"}')
    (root / "a" / "attributes.json").write_text(json.dumps(attrs))
    for key, data in blocks.items():
        path = root / "a" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _header(dims: list[int], mode: int = 0) -> bytes:
    return struct.pack(f">HH{len(dims)}I", mode, len(dims), *dims)


_ATTRS = {"dimensions": [8, 4], "blockSize": [8, 4], "dataType": "uint16",
          "compression": {"type": "gzip"}}  # fmt: skip


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            _header([8, 4 * 10**6]) + gzip.compress(b"\0" * 64),
            "larger than the dataset's blockSize",
        ),
        (_header([8, 4, 1]) + b"", "declares 3 dimensions"),
        (_header([8, 4], mode=2) + b"xx", "object block"),
        (_header([8, 4]) + gzip.compress(b"\0" * 10**7), "gzip chunk would decompress"),
        (_header([8, 4]) + gzip.compress(b"\0" * 10), "holds 10 bytes"),
        (b"\0", "shorter than its header"),
    ],
    ids=["huge-header", "ndim", "object-mode", "gzip-bomb", "short-body", "truncated"],
)
def test_hostile_blocks_are_refused_before_decoding(
    tmp_path: Path, block: bytes, message: str
) -> None:
    good = _header([8, 4]) + gzip.compress(np.arange(32, dtype=">u2").tobytes())
    root = _container(tmp_path, {**_ATTRS, "dimensions": [16, 4]}, {"0/0": good, "1/0": block})
    with pytest.raises(n5.N5BlockError, match=message):
        n5.decode_block(block, dtype="uint16", block_shape=(4, 8), compression={"type": "gzip"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ((data, _, _),) = open_layers(root)
        values = np.asarray(data)
    assert values.shape == (4, 16)
    np.testing.assert_array_equal(values[:, :8], np.arange(32).reshape(4, 8))
    np.testing.assert_array_equal(values[:, 8:], 0)  # the bad block shows as the fill value
    assert any(isinstance(w.message, ExplorerWarning) and "c/0/1" in str(w.message) for w in caught)


def test_n5_java_lz4_framing_and_varlength_blocks() -> None:
    values = np.arange(12, dtype=">i4").reshape(3, 4)
    raw = values.tobytes()
    body = numcodecs.LZ4().encode(raw)[4:]  # bare LZ4 block
    framed = b"LZ4Block" + bytes([0x20 | 6]) + struct.pack("<iii", len(body), len(raw), 0) + body
    framed += b"LZ4Block" + bytes([0x10 | 6]) + struct.pack("<iii", 0, 0, 0)
    got = n5.decode_block(_header([4, 3]) + framed, dtype="int32", block_shape=(3, 4),
                          compression={"type": "lz4"})  # fmt: skip
    np.testing.assert_array_equal(got, values)
    varlen = _header([4, 3], mode=1) + struct.pack(">I", 12) + raw
    np.testing.assert_array_equal(
        n5.decode_block(varlen, dtype="int32", block_shape=(3, 4), compression={"type": "raw"}),
        values,
    )
    with pytest.raises(n5.N5BlockError, match="varlength block of 5 elements"):
        n5.decode_block(_header([4, 3], mode=1) + struct.pack(">I", 5) + raw[:20],
                        dtype="int32", block_shape=(3, 4), compression={"type": "raw"})  # fmt: skip


@pytest.mark.parametrize(
    ("attrs", "error", "message"),
    [
        ({**_ATTRS, "dimensions": [8, -4]}, MetadataError, "'dimensions' must be"),
        ({**_ATTRS, "blockSize": [8]}, MetadataError, "'blockSize' must be"),
        ({**_ATTRS, "dataType": "object"}, MetadataError, "dataType 'object'"),
        ({**_ATTRS, "compression": {"type": "jpeg"}}, CodecError, "compression 'jpeg'"),
        ({**_ATTRS, "blockSize": [2**31, 2**31]}, MetadataError, "absurdly large"),
    ],
    ids=["negative", "ndim", "dtype", "jpeg", "absurd"],
)
def test_bad_metadata_is_a_clear_error(
    tmp_path: Path, attrs: dict[str, Any], error: type[Exception], message: str
) -> None:
    root = _container(tmp_path, attrs, {})
    with pytest.raises(error, match=message) as info:
        open_array(parse_location(root), "a")
    assert "attributes.json" in str(info.value)


def test_links_leaving_the_container_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "attributes.json").write_text(json.dumps(_ATTRS))
    root = _container(tmp_path, _ATTRS, {})
    (root / "b").symlink_to(outside)
    (root / "a" / "0").mkdir()
    (root / "a" / "0" / "0").symlink_to(outside / "attributes.json")
    store = open_store(parse_location(root))
    assert isinstance(store, n5.N5Store)
    layers = open_layers(root)
    assert [k["name"] for _, k, _ in layers] == ["a"]
    np.testing.assert_array_equal(np.asarray(layers[0][0]), 0)  # the linked block is absent


def test_store_translates_keys_and_listings(tmp_path: Path) -> None:
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    values = _values((5, 6, 7), "uint8")
    _z5(tmp_path / "k.n5").create_dataset("g/a", data=values, chunks=(5, 3, 7), compression="raw")
    store = open_store(parse_location(tmp_path / "k.n5"))
    keys = sorted(sync(_collect(store.list_prefix("g/a/"))))
    assert keys == ["g/a/c/0/0/0", "g/a/c/0/1/0", "g/a/zarr.json"]
    assert sorted(sync(_collect(store.list_dir("g/")))) == ["a", "zarr.json"]
    doc = json.loads(sync(store.get("g/a/zarr.json", default_buffer_prototype())).to_bytes())
    assert doc["shape"] == [5, 6, 7] and doc["node_type"] == "array"
    assert sync(store.get("g/a/.zarray", default_buffer_prototype())) is None
    with pytest.raises(PermissionError):
        sync(store.set("g/a/zarr.json", default_buffer_prototype().buffer.from_bytes(b"{}")))


async def _collect(agen: Any) -> list[str]:
    return [k async for k in agen]


def test_n5_on_s3(s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    vol = _values((6, 30, 20), "float32")
    _z5(tmp_path / "s3.n5").create_dataset("vol", data=vol, chunks=(3, 16, 16), compression="zstd")
    prefix = f"t-{uuid.uuid4().hex[:8]}/data.n5"
    url = s3_server.upload(tmp_path / "s3.n5", s3_server.public_bucket, prefix)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    ((data, kwargs, _),) = open_layers(url)
    assert kwargs["name"] == "vol"
    np.testing.assert_array_equal(np.asarray(data), vol)
    cmap = nze.chunk_map(url, "vol")
    assert cmap.chunks_present == cmap.chunks_total == 2 * 2 * 2


def _cli(*args: str) -> Any:
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "napari_zarr_explorer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_command_line_inspect_chunks_recompress(tmp_path: Path) -> None:
    import zarr

    vol = _values((4, 20, 30), "uint16")
    _z5(tmp_path / "c.n5").create_dataset("g/vol", data=vol, chunks=(2, 8, 16), compression="xz")
    proc = _cli("inspect", str(tmp_path / "c.n5"), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (node,) = [n for n in doc["nodes"] if n["path"] == "g/vol"]
    assert node["shape"] == [4, 20, 30]
    assert node["codecs"][0]["name"] == "n5"
    proc = _cli("chunks", str(tmp_path / "c.n5"), "--array", "g/vol", "--verify", "--json")
    assert proc.returncode == 0, proc.stderr
    chunks = json.loads(proc.stdout)
    assert chunks["chunks_corrupt"] == [] and chunks["chunks_present"] == 2 * 3 * 2
    proc = _cli("recompress", str(tmp_path / "c.n5"), str(tmp_path / "c.zarr"), "--json")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "c.zarr" / "g" / "vol")[...], vol)


def test_opened_arrays_pickle_for_dask_workers(tmp_path: Path) -> None:
    import pickle

    values = _values((10, 12), "int32")
    _z5(tmp_path / "p.n5").create_dataset("a", data=values, chunks=(4, 5), compression="blosc")
    arr = open_array(parse_location(tmp_path / "p.n5"), "a")
    again = pickle.loads(pickle.dumps(arr))
    assert isinstance(again.store, n5.N5Store)
    np.testing.assert_array_equal(again[...], values)


def test_attributes_beyond_the_metadata_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attrs = {**_ATTRS, "padding": "x" * 5000}
    root = _container(tmp_path, attrs, {})
    monkeypatch.setenv("NAPARI_ZARR_EXPLORER_MAX_METADATA_BYTES", "1000")
    with pytest.raises(MetadataError, match=r"attributes\.json") as info:
        open_array(parse_location(root), "a")
    assert "1000" in str(info.value)
