"""The recompress engine: round trips, layouts, codecs, metadata, safety."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer._html import human_bytes
from napari_zarr_explorer.codec_spec import parse_compressor, register_zarr_codecs
from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.recompress import (
    JOURNAL_NAME,
    MARKER_KEY,
    ProgressEvent,
    RecompressReport,
    _io,
    recompress,
)
from napari_zarr_explorer.recompress._engine import _task_blocks
from napari_zarr_explorer.recompress._plan import make_plan


def tree_hash(root: Path) -> str:
    """Hash of every file name and content under *root*."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def read(path: Path, name: str = "") -> np.ndarray:
    register_zarr_codecs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr = zarr.open_array(path / name if name else path, mode="r")
        return np.asarray(arr[...])


def image(shape: tuple[int, ...], dtype: str = "uint16", seed: int = 0) -> np.ndarray:
    return testing.blobs(shape, seed=seed, dtype=dtype)


def chunk_files(root: Path) -> set[str]:
    """Relative paths of the chunk objects (not metadata) under *root*."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name not in ("zarr.json", ".zarray", ".zattrs", ".zgroup")
    }


def read_ts(path: Path, zarr_format: int) -> np.ndarray:
    ts = pytest.importorskip("tensorstore")
    driver = "zarr3" if zarr_format == 3 else "zarr"
    store = ts.open({"driver": driver, "kvstore": {"driver": "file", "path": str(path)}}).result()
    return np.asarray(store.read().result())


# ---------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize(
    ("src_format", "src_shards", "dst_format", "chunks", "shards"),
    [
        pytest.param(2, None, 3, (8, 32, 32), None, id="v2-to-v3"),
        pytest.param(2, None, 3, (4, 16, 16), (8, 64, 64), id="v2-to-v3-sharded"),
        pytest.param(3, (8, 32, 32), 3, None, "none", id="sharded-to-unsharded"),
        pytest.param(3, None, 3, (4, 16, 16), (8, 32, 32), id="unsharded-to-sharded"),
        pytest.param(3, (8, 32, 32), 2, (4, 16, 16), "none", id="v3-sharded-to-v2"),
        pytest.param(3, None, 2, None, None, id="v3-to-v2"),
    ],
)
def test_round_trip(
    tmp_path: Path,
    src_format: int,
    src_shards: Any,
    dst_format: int,
    chunks: Any,
    shards: Any,
) -> None:
    data = image((10, 70, 50))
    src = testing.write_array(
        tmp_path / "src.zarr",
        data,
        zarr_format=src_format,
        chunks=(4, 16, 16),
        shards=src_shards,
        dimension_names=("z", "y", "x") if src_format == 3 else None,
        attributes={"note": "kept"},
    )
    before = tree_hash(src)
    dst = tmp_path / "dst.zarr"
    report = recompress(
        src, dst, compressor="zstd:5", chunks=chunks, shards=shards, zarr_format=dst_format
    )
    assert report.ok, str(report)
    assert report.verified
    assert report.chunks_verified > 0
    assert report.mismatches == ()
    out = read(dst)
    assert out.dtype == data.dtype
    np.testing.assert_array_equal(out, data)
    np.testing.assert_array_equal(read_ts(dst, dst_format), data)
    assert tree_hash(src) == before
    arr = zarr.open_array(dst, mode="r")
    assert arr.metadata.zarr_format == dst_format
    assert arr.attrs["note"] == "kept"
    assert MARKER_KEY not in arr.attrs
    assert not (dst / JOURNAL_NAME).exists()
    if dst_format == 3 and src_format == 3:
        assert arr.metadata.dimension_names == ("z", "y", "x")
    if dst_format == 2 and src_format == 3:
        assert arr.attrs["_ARRAY_DIMENSIONS"] == ["z", "y", "x"]
    if dst_format == 3:
        expect_shards = None if shards == "none" else (shards if shards is not None else src_shards)
        assert arr.shards == expect_shards


@pytest.mark.parametrize(
    "compressor",
    [
        "zstd:5",
        "blosc-zstd:5",
        "blosc-lz4",
        "blosc-lz4hc:9",
        "blosc-blosclz",
        "blosc-zlib:3",
        "blosc-zstd:level=5,shuffle=bit",
        "blosc-lz4:level=1,shuffle=none",
        "gzip:6",
        "none",
    ],
)
def test_every_compressor(tmp_path: Path, compressor: str, zarr_format: int) -> None:
    data = image((3, 40, 30))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    dst = tmp_path / "dst.zarr"
    report = recompress(
        src,
        dst,
        compressor=compressor,
        chunks=(2, 16, 16),
        shards=(2, 32, 32) if zarr_format == 3 else None,
        zarr_format=zarr_format,
    )
    assert report.ok, str(report)
    assert report.compressor == parse_compressor(compressor).label
    np.testing.assert_array_equal(read(dst), data)
    np.testing.assert_array_equal(read_ts(dst, zarr_format), data)


@pytest.mark.parametrize(
    "compressor", ["zfp:rate=16", "zfp:reversible", "bitround:12", "quantize:3"]
)
def test_lossy_compressors_report_their_error(
    tmp_path: Path, compressor: str, zarr_format: int
) -> None:
    pytest.importorskip("imagecodecs")
    rng = np.random.default_rng(1)
    data = (rng.random((2, 32, 32)) * 100).astype("float32")
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=3, chunks=(1, 16, 16))
    dst = tmp_path / "dst.zarr"
    report = recompress(src, dst, compressor=compressor, zarr_format=zarr_format)
    assert report.ok, str(report)
    out = read(dst)
    err = float(np.abs(out.astype(np.float64) - data).max())
    if compressor == "zfp:reversible":
        assert report.max_error is None
        assert err == 0
    else:
        assert report.max_error is not None
        assert report.max_error == pytest.approx(err, rel=1e-6, abs=1e-9)
        assert 0 <= err < 1.0
    assert "max_error" in report.to_dict()


def test_lossy_codec_refuses_integer_data(tmp_path: Path) -> None:
    src = testing.write_array(tmp_path / "src.zarr", image((2, 16, 16)), zarr_format=3)
    with pytest.raises(ExplorerError, match="floating-point"):
        recompress(src, tmp_path / "dst.zarr", compressor="bitround:7")
    assert not (tmp_path / "dst.zarr").exists()


# ---------------------------------------------------------------------------------------------
# layouts


@pytest.mark.parametrize(
    ("shape", "src_chunks", "chunks", "shards"),
    [
        pytest.param((1, 1, 37), (1, 1, 5), (1, 1, 8), (1, 1, 24), id="one-element-dims"),
        pytest.param((13, 17), (4, 5), (3, 7), (9, 14), id="edge-chunks-and-shards"),
        pytest.param((5, 9, 11), (2, 2, 2), (64, 64, 64), (128, 128, 128), id="clip-to-shape"),
        pytest.param((40,), (7,), (6,), (18,), id="one-dim"),
        pytest.param((3, 4), (3, 4), (-1, 1), (-1, 4), id="whole-dimension"),
    ],
)
def test_odd_shapes(
    tmp_path: Path, shape: tuple[int, ...], src_chunks: Any, chunks: Any, shards: Any
) -> None:
    data = (np.arange(int(np.prod(shape)), dtype="int32").reshape(shape) * 7 + 1).astype("int32")
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=src_chunks)
    dst = tmp_path / "dst.zarr"
    report = recompress(src, dst, chunks=chunks, shards=shards)
    assert report.ok, str(report)
    np.testing.assert_array_equal(read(dst), data)
    np.testing.assert_array_equal(read_ts(dst, 3), data)
    arr = zarr.open_array(dst, mode="r")
    assert all(c <= max(s, 1) for c, s in zip(arr.chunks, shape, strict=True))


def test_misaligned_source_chunks_and_target_shards_every_element(tmp_path: Path) -> None:
    """Source chunks that straddle target shards (dask issue 12583 writes wrong data here)."""
    rng = np.random.default_rng(12583)
    shape = (37, 53, 41)
    data = rng.integers(1, 60000, size=shape, dtype="uint16")
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(5, 7, 3))
    dst = tmp_path / "dst.zarr"
    report = recompress(src, dst, chunks=(4, 8, 8), shards=(16, 32, 24), threads=4, task_bytes=1)
    assert report.ok, str(report)
    # Each shard object is written once by one task: objects written == shard files present.
    shards = [p for p in chunk_files(dst) if p.startswith("c/")]
    assert report.objects_written == len(shards) == 3 * 2 * 2
    assert report.chunks_verified == report.chunks_written
    out = read(dst)
    assert out.shape == shape
    assert int((out != data).sum()) == 0
    np.testing.assert_array_equal(read_ts(dst, 3), data)


@pytest.mark.parametrize(
    ("shape", "unit", "task_bytes"),
    [((37, 53, 41), (16, 32, 24), 1), ((100, 100), (7, 9), 2000), ((5, 1000), (1, 10), 10**6)],
)
def test_tasks_partition_the_output_objects(
    tmp_path: Path, shape: tuple[int, ...], unit: tuple[int, ...], task_bytes: int
) -> None:
    """Every output object belongs to exactly one task: no two writers, none forgotten."""
    data = np.ones(shape, dtype="uint8")
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=3, chunks=unit)
    from napari_zarr_explorer.store import parse_location

    plan = make_plan(
        parse_location(src), spec=parse_compressor("none"), zarr_format=3, chunks=unit, shards=None
    )
    (a,) = plan.arrays
    seen: dict[tuple[int, ...], int] = {}
    import itertools

    for i, block in enumerate(_task_blocks(a, task_bytes)):
        for coords in itertools.product(*(range(lo, hi) for lo, hi in block)):
            assert coords not in seen, f"{coords} in tasks {seen[coords]} and {i}"
            seen[coords] = i
    grid = [len(r) for r in _io.grid_indices(shape, unit)]
    assert len(seen) == int(np.prod(grid))


# ---------------------------------------------------------------------------------------------
# missing chunks and fill values


def test_missing_chunks_stay_missing(tmp_path: Path, zarr_format: int) -> None:
    data = np.zeros((4, 64, 64), dtype="uint16")
    data[0, :16, :16] = 5  # one chunk
    data[2, 40:50, 40:50] = 9  # chunks (2, 2..3, 2..3)
    src = testing.write_array(
        tmp_path / "src.zarr", data, zarr_format=zarr_format, chunks=(1, 16, 16), fill_value=0
    )
    src_chunks = {p for p in chunk_files(src)}
    assert len(src_chunks) == 1 + 4  # zarr did not store the all-fill chunks
    dst = tmp_path / "dst.zarr"
    report = recompress(src, dst, shards="none")
    assert report.ok, str(report)
    out_chunks = chunk_files(dst)
    assert len(out_chunks) == len(src_chunks)
    assert report.objects_written == 5
    np.testing.assert_array_equal(read(dst), data)


def test_sharded_output_omits_all_fill_inner_chunks(tmp_path: Path) -> None:
    data = np.zeros((2, 64, 64), dtype="uint16")
    data[1, 0:16, 16:32] = 3
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    dst = tmp_path / "dst.zarr"
    report = recompress(src, dst, chunks=(1, 16, 16), shards=(2, 64, 64))
    assert report.ok
    assert report.objects_written == 1
    assert report.chunks_written == 1
    (shard,) = [dst / p for p in chunk_files(dst)]
    pieces = _io.parse_shard(shard.read_bytes(), 2 * 4 * 4, where="test")
    assert sum(p is not None for p in pieces) == 1
    assert pieces[16 + 1] is not None  # z=1, y=0, x=1
    np.testing.assert_array_equal(read(dst), data)


def test_all_fill_array_writes_no_chunks(tmp_path: Path) -> None:
    src = testing.write_array(
        tmp_path / "src.zarr", np.zeros((8, 8), "float64"), zarr_format=3, chunks=(4, 4)
    )
    dst = tmp_path / "dst.zarr"
    report = recompress(src, dst, shards=(8, 8))
    assert report.ok
    assert chunk_files(dst) == set()
    np.testing.assert_array_equal(read(dst), np.zeros((8, 8)))


def test_nan_fill_value(tmp_path: Path, zarr_format: int) -> None:
    data = np.full((3, 32, 32), np.nan, dtype="float32")
    data[0, :8, :8] = 1.5
    data[1, 10:20, 3:30] = np.arange(270, dtype="float32").reshape(10, 27)
    data[1, 12, 5] = np.nan  # a NaN inside a stored chunk
    src = testing.write_array(
        tmp_path / "src.zarr", data, zarr_format=3, chunks=(1, 8, 8), fill_value=float("nan")
    )
    dst = tmp_path / "dst.zarr"
    report = recompress(
        src,
        dst,
        zarr_format=zarr_format,
        chunks=(1, 8, 8),
        shards=(1, 16, 16) if zarr_format == 3 else "none",
        compressor="blosc-zstd:5",
    )
    assert report.ok, str(report)
    out = read(dst)
    np.testing.assert_array_equal(out, data)  # NaN == NaN for assert_array_equal
    arr = zarr.open_array(dst, mode="r")
    assert np.isnan(arr.fill_value)
    if zarr_format == 2:
        assert len(chunk_files(dst)) == len(chunk_files(src))


def test_fill_value_and_attributes_carried(tmp_path: Path) -> None:
    data = np.full((6, 6), 7, dtype="int16")
    data[0, 0] = -3
    src = testing.write_array(
        tmp_path / "src.zarr",
        data,
        zarr_format=2,
        chunks=(3, 3),
        fill_value=7,
        attributes={"units": "counts", "nested": {"a": [1, 2]}},
    )
    dst = tmp_path / "dst.zarr"
    assert recompress(src, dst).ok
    arr = zarr.open_array(dst, mode="r")
    assert arr.fill_value == 7
    assert dict(arr.attrs) == {"units": "counts", "nested": {"a": [1, 2]}}
    assert len(chunk_files(dst)) == 1
    np.testing.assert_array_equal(arr[...], data)


def test_big_endian_and_bool_sources(tmp_path: Path) -> None:
    data = np.arange(24, dtype=">i4").reshape(4, 6)
    src = testing.write_array(tmp_path / "be.zarr", data, zarr_format=2, chunks=(2, 3))
    assert recompress(src, tmp_path / "be_out.zarr").ok
    np.testing.assert_array_equal(read(tmp_path / "be_out.zarr"), data)
    mask = np.arange(30).reshape(5, 6) % 3 == 0
    src = testing.write_array(tmp_path / "b.zarr", mask, zarr_format=3, chunks=(2, 2))
    assert recompress(src, tmp_path / "b_out.zarr", compressor="blosc-lz4").ok
    np.testing.assert_array_equal(read(tmp_path / "b_out.zarr"), mask)


# ---------------------------------------------------------------------------------------------
# OME hierarchies


def _attrs(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((path / "zarr.json").read_text())
    return doc["attributes"]


def _levels(root: Path) -> list[Path]:
    return sorted(
        p.parent
        for p in root.rglob("zarr.json")
        if "c" not in p.parent.parts[-1:] and json.loads(p.read_text())["node_type"] == "array"
    )


def test_ome_pyramid_with_labels_04_to_05(tmp_path: Path) -> None:
    src = testing.write_ome_image(
        tmp_path / "img.ome.zarr", version="0.4", labels=True, shape=(2, 8, 64, 64), levels=3
    )
    before = tree_hash(src)
    dst = tmp_path / "out.ome.zarr"
    report = recompress(src, dst, chunks=(1, 1, 32, 32), shards=(1, 4, 64, 64))
    assert report.ok, str(report)
    assert tree_hash(src) == before
    # every level of the image and of the labels
    src_arrays = sorted(p.parent.relative_to(src).as_posix() for p in src.rglob(".zarray"))
    assert sorted(a.path for a in report.arrays) == src_arrays
    assert any(a.path.startswith("labels/") for a in report.arrays)
    for rel in src_arrays:
        np.testing.assert_array_equal(read(dst, rel), read(src, rel))
        arr = zarr.open_array(dst / rel, mode="r")
        assert arr.metadata.zarr_format == 3
        assert arr.shards is not None
        assert arr.metadata.dimension_names is not None
    root = _attrs(dst)
    assert root["ome"]["version"] == "0.5"
    assert "multiscales" not in root
    ms = root["ome"]["multiscales"][0]
    assert "version" not in ms
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"]
    assert "version" not in root["ome"].get("omero", {})
    assert _attrs(dst / "labels")["ome"]["labels"]
    label_name = _attrs(dst / "labels")["ome"]["labels"][0]
    assert "image-label" in _attrs(dst / "labels" / label_name)["ome"]
    assert report.validation is not None and report.validation.startswith("valid"), (
        report.validation
    )
    from napari_zarr_explorer.ome.validate import validate

    assert validate(str(dst)).valid


def test_ome_images_inside_a_plain_group_are_validated_as_images(tmp_path: Path) -> None:
    # A plain group holding OME images (a collection, or an N5 container's setups) has no OME
    # metadata at its root: the verdict is about the images, not "no OME-NGFF metadata".
    src = tmp_path / "collection.zarr"
    zarr.open_group(src, mode="w", zarr_format=3)
    testing.write_ome_image(src / "a", shape=(1, 4, 32, 32), levels=2)
    testing.write_ome_image(src / "b", shape=(1, 4, 32, 32), levels=2, labels=True)
    report = recompress(src, tmp_path / "out.zarr")
    assert report.ok, str(report)
    assert report.validation is not None and report.validation.startswith("valid"), (
        report.validation
    )
    broken = tmp_path / "broken.zarr"
    zarr.open_group(broken, mode="w", zarr_format=3)
    testing.write_ome_image(broken / "a", shape=(1, 4, 32, 32), levels=2)
    testing.write_ome_image(broken / "b", shape=(1, 4, 32, 32), levels=2)
    attrs = json.loads((broken / "b" / "zarr.json").read_text())
    attrs["attributes"]["ome"]["multiscales"][0]["axes"][1]["type"] = "time"
    (broken / "b" / "zarr.json").write_text(json.dumps(attrs))
    report = recompress(broken, tmp_path / "broken-out.zarr")
    assert report.validation is not None and report.validation.startswith("invalid"), (
        report.validation
    )
    assert "b" in report.validation
    assert "\n" not in report.validation  # one line per image, in the report's one line


def test_ome_05_to_v2_becomes_04(tmp_path: Path) -> None:
    src = testing.write_ome_image(tmp_path / "img.zarr", version="0.5", shape=(1, 4, 32, 32))
    dst = tmp_path / "out.zarr"
    report = recompress(src, dst, zarr_format=2, shards="none")
    assert report.ok, str(report)
    attrs = json.loads((dst / ".zattrs").read_text())
    assert "ome" not in attrs
    assert attrs["multiscales"][0]["version"] == "0.4"
    np.testing.assert_array_equal(read(dst, "0"), read(src, "0"))


def test_plate_04_to_05(tmp_path: Path) -> None:
    src = testing.write_plate(tmp_path / "plate.zarr", version="0.4", rows=2, cols=2, fields=2)
    dst = tmp_path / "plate_out.zarr"
    report = recompress(src, dst, chunks=(1, 32, 32))
    assert report.ok, str(report)
    src_arrays = sorted(p.parent.relative_to(src).as_posix() for p in src.rglob(".zarray"))
    assert sorted(a.path for a in report.arrays) == src_arrays
    assert len(src_arrays) == 2 * 2 * 2 * 2  # wells x fields x levels
    root = _attrs(dst)["ome"]
    assert root["version"] == "0.5"
    assert "version" not in root["plate"]
    well = _attrs(dst / root["plate"]["wells"][0]["path"])["ome"]
    assert "version" not in well["well"]
    for rel in src_arrays:
        np.testing.assert_array_equal(read(dst, rel), read(src, rel))
    assert report.validation is not None and report.validation.startswith("valid")


def test_bioformats2raw_series_and_ome_xml(tmp_path: Path) -> None:
    src = testing.write_bioformats2raw(tmp_path / "b2r.zarr", series=2)
    dst = tmp_path / "b2r_out.zarr"
    report = recompress(src, dst)
    assert report.ok, str(report)
    assert {a.path.split("/")[0] for a in report.arrays} == {"0", "1"}
    xml = src / "OME" / "METADATA.ome.xml"
    assert (dst / "OME" / "METADATA.ome.xml").read_bytes() == xml.read_bytes()
    assert _attrs(dst)["ome"]["bioformats2raw.layout"] == 3


# ---------------------------------------------------------------------------------------------
# safety: refusing, overwrite, replace, cancel, progress


def test_refuses_existing_output_and_overlaps(tmp_path: Path) -> None:
    src = testing.write_array(tmp_path / "src.zarr", image((2, 16, 16)), zarr_format=2)
    dst = tmp_path / "dst.zarr"
    dst.mkdir()
    (dst / "precious.txt").write_text("keep me")
    with pytest.raises(ExplorerError, match="already exists"):
        recompress(src, dst)
    assert (dst / "precious.txt").read_text() == "keep me"
    with pytest.raises(ExplorerError, match="overlaps"):
        recompress(src, src)
    with pytest.raises(ExplorerError, match="overlaps"):
        recompress(src, src / "inner")
    with pytest.raises(ExplorerError, match="not a Zarr store"):
        recompress(src, dst, overwrite=True)
    assert (dst / "precious.txt").read_text() == "keep me"
    (dst / "precious.txt").unlink()
    assert recompress(src, dst).ok
    report = recompress(src, dst, overwrite=True, compressor="gzip:1")
    assert report.ok and report.compressor == "gzip:1"
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(ExplorerError, match="existing file"):
        recompress(src, tmp_path / "file.zarr")


def test_replace_keeps_a_backup(tmp_path: Path) -> None:
    data = image((2, 16, 16))
    src = testing.write_array(tmp_path / "data.zarr", data, zarr_format=2, chunks=(1, 8, 8))
    before = tree_hash(src)
    dst = tmp_path / "new.zarr"
    report = recompress(src, dst, replace=True, chunks=(2, 16, 16))
    assert report.ok
    assert report.backup is not None
    backup = Path(report.backup)
    assert backup.name.startswith("data.zarr.backup-")
    assert tree_hash(backup) == before
    assert not dst.exists()
    assert (src / "zarr.json").exists()  # the new v3 data is in the original's place
    np.testing.assert_array_equal(read(src), data)
    assert report.destination == str(src)
    assert "backup" in str(report)


def test_replace_needs_verification(tmp_path: Path) -> None:
    src = testing.write_array(tmp_path / "s.zarr", image((2, 8, 8)), zarr_format=2)
    with pytest.raises(ExplorerError, match="verification"):
        recompress(src, tmp_path / "d.zarr", replace=True, verify=False)


def test_progress_events_and_report_faces(tmp_path: Path) -> None:
    data = image((8, 32, 32))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 8, 8))
    events: list[ProgressEvent] = []
    report = recompress(
        src,
        tmp_path / "dst.zarr",
        shards=(2, 16, 16),
        chunks=(1, 8, 8),
        progress=events.append,
        task_bytes=1,
    )
    assert report.ok
    phases = [e.phase for e in events]
    assert phases[0] == "plan" and phases[-1] == "done"
    writes = [e for e in events if e.phase == "write"]
    assert [e.bytes_done for e in writes] == sorted(e.bytes_done for e in writes)
    assert writes[-1].bytes_done == writes[-1].bytes_total == data.nbytes
    assert writes[-1].objects_done == writes[-1].objects_total == 4 * 2 * 2
    assert all(e.eta is not None for e in writes[1:])
    json.dumps(events[-1].to_dict())
    d = report.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["ok"] is True and d["arrays_written"] == 1 and d["ratio"] is not None
    assert "OK, verified" in str(report)
    assert "<table>" in report._repr_html_()
    assert isinstance(report, RecompressReport)


def test_cancel_then_resume(tmp_path: Path) -> None:
    data = image((8, 32, 32))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 8, 8))
    dst = tmp_path / "dst.zarr"
    cancel = threading.Event()

    def stop_after_first(ev: ProgressEvent) -> None:
        if ev.phase == "write" and ev.objects_done >= 2:
            cancel.set()

    report = recompress(
        src,
        dst,
        shards=(1, 16, 16),
        chunks=(1, 8, 8),
        threads=1,
        task_bytes=1,
        progress=stop_after_first,
        cancel=cancel,
    )
    assert report.cancelled and not report.ok and not report.complete
    # a part of the output against the whole source is no ratio: the report says "so far"
    stored_line = next(line for line in str(report).splitlines() if "stored" in line)
    assert "so far" in stored_line and "ratio" not in stored_line, stored_line
    doc = report.to_dict()  # nor in JSON: part of the output against the whole source
    assert doc["ratio"] is None and doc["compression_ratio"] is None
    assert _attrs(dst)[MARKER_KEY]["incomplete"] is True
    assert (dst / JOURNAL_NAME).exists()
    with pytest.raises(ExplorerError, match="already exists"):
        recompress(src, dst, shards=(1, 16, 16), chunks=(1, 8, 8))
    with pytest.raises(ExplorerError, match="different settings"):
        recompress(src, dst, shards=(1, 32, 32), chunks=(1, 8, 8), resume=True)
    again = recompress(src, dst, shards=(1, 16, 16), chunks=(1, 8, 8), resume=True, task_bytes=1)
    assert again.ok and again.resumed
    assert again.tasks_skipped >= 2
    assert MARKER_KEY not in _attrs(dst)
    assert not (dst / JOURNAL_NAME).exists()
    np.testing.assert_array_equal(read(dst), data)


def test_cancel_does_not_wait_for_the_source_size_scan(tmp_path: Path) -> None:
    # The stored size of the source is measured by walking its files while the tasks run.
    # A cancelled run stops that walk and returns; no scan thread is left behind.
    data = image((8, 32, 32))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 8, 8))
    for d in range(10):  # many files for the walk: folders of notes kept beside the chunks
        folder = src / "notes" / f"{d:02d}"
        folder.mkdir(parents=True)
        for f in range(1000):
            (folder / f"{f:04d}.txt").write_bytes(b"n")
    cancel = threading.Event()

    def stop_after_first(ev: ProgressEvent) -> None:
        if ev.phase == "write" and ev.objects_done >= 1:
            cancel.set()

    def scans() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "recompress-sizes"]

    assert not scans()
    report = recompress(
        src,
        tmp_path / "dst.zarr",
        chunks=(1, 8, 8),
        threads=1,
        task_bytes=1,
        progress=stop_after_first,
        cancel=cancel,
    )
    assert report.cancelled and not report.complete
    for t in scans():
        t.join(timeout=120)  # generous: fails on a hang only
    assert not scans()


def test_resume_rewrites_corrupted_objects(tmp_path: Path) -> None:
    data = image((4, 32, 32))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 8, 8))
    dst = tmp_path / "dst.zarr"
    assert recompress(src, dst, shards=(1, 32, 32), chunks=(1, 16, 16), task_bytes=1).ok
    victim = dst / "c" / "2" / "0" / "0"
    raw = bytearray(victim.read_bytes())
    raw[10] ^= 0xFF
    victim.write_bytes(bytes(raw))
    (dst / "c" / "3" / "0" / "0").unlink()
    report = recompress(src, dst, shards=(1, 32, 32), chunks=(1, 16, 16), resume=True, task_bytes=1)
    assert report.ok, str(report)
    assert report.tasks_rewritten == 2
    np.testing.assert_array_equal(read(dst), data)


def test_bad_options_are_clear(tmp_path: Path) -> None:
    src = testing.write_array(tmp_path / "s.zarr", image((2, 8, 8)), zarr_format=2)
    with pytest.raises(ExplorerError, match="unknown compressor"):
        recompress(src, tmp_path / "d.zarr", compressor="brotli")
    with pytest.raises(ExplorerError, match="no shards"):
        recompress(src, tmp_path / "d.zarr", zarr_format=2, shards=(2, 8, 8))
    with pytest.raises(ExplorerError, match="multiple of the chunk"):
        recompress(src, tmp_path / "d.zarr", chunks=(1, 4, 4), shards=(1, 6, 6))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExplorerError, match="no Zarr"):
        recompress(tmp_path / "empty", tmp_path / "d.zarr")
    assert not (tmp_path / "d.zarr").exists() or not any((tmp_path / "d.zarr").iterdir())


# ---------------------------------------------------------------------------------------------
# remote output


def test_ome_output_on_private_s3_is_validated_with_its_options(
    tmp_path: Path, s3_server: Any
) -> None:
    from servers import FAKE_KEY_ID, FAKE_SECRET

    src = testing.write_ome_image(tmp_path / "img.ome.zarr", shape=(1, 4, 32, 32), levels=2)
    opts = {
        "key": FAKE_KEY_ID,
        "secret": FAKE_SECRET,
        "client_kwargs": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
    }
    url = f"s3://{s3_server.private_bucket}/validate-{os.getpid()}/out.ome.zarr"
    report = recompress(src, url, dst_storage_options=opts)
    assert report.ok, str(report)
    assert report.validation == "valid", report.validation


def test_remote_output_on_s3(tmp_path: Path, s3_server: Any) -> None:
    from servers import FAKE_KEY_ID, FAKE_SECRET

    data = image((3, 24, 24))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 8, 8))
    opts = {
        "key": FAKE_KEY_ID,
        "secret": FAKE_SECRET,
        "client_kwargs": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
    }
    url = f"s3://{s3_server.private_bucket}/recompress-{os.getpid()}/out.zarr"
    report = recompress(src, url, dst_storage_options=opts, shards=(3, 16, 16), chunks=(1, 8, 8))
    assert report.ok, str(report)
    with pytest.raises(ExplorerError, match="already exists"):
        recompress(src, url, dst_storage_options=opts)
    from zarr.storage import FsspecStore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = FsspecStore.from_url(url, storage_options=opts, read_only=True)
        out = zarr.open_array(store, mode="r")
        np.testing.assert_array_equal(out[...], data)
        assert MARKER_KEY not in out.attrs


def test_inspect_warns_about_an_incomplete_output(tmp_path: Path) -> None:
    from napari_zarr_explorer import inspect

    src = testing.write_array(tmp_path / "src.zarr", image((4, 16, 16)), zarr_format=2)
    dst = tmp_path / "dst.zarr"
    cancel = threading.Event()
    cancel.set()  # stop before the first task
    report = recompress(src, dst, cancel=cancel)
    assert report.cancelled and not report.ok
    text = json.dumps(inspect(str(dst)).to_dict())
    assert "incomplete output" in text
    assert recompress(src, dst, resume=True).ok
    assert "incomplete output" not in json.dumps(inspect(str(dst)).to_dict())


def test_remote_http_source(tmp_path: Path, http_server: Any) -> None:
    data = image((2, 24, 24))
    www = Path(http_server.root) if hasattr(http_server, "root") else tmp_path / "www"
    testing.write_array(www / "img.zarr", data, zarr_format=3, chunks=(1, 8, 8))
    dst = tmp_path / "dst.zarr"
    report = recompress(f"{http_server.url}/img.zarr", dst, compressor="gzip:1")
    assert report.ok, str(report)
    assert report.bytes_before is not None and report.bytes_before > 0
    np.testing.assert_array_equal(read(dst), data)


def test_corrupt_source_chunk_fails_clearly_and_stays_incomplete(tmp_path: Path) -> None:
    src = testing.write_array(
        tmp_path / "src.zarr", image((4, 16, 16)), zarr_format=2, chunks=(1, 16, 16)
    )
    (src / "2.0.0").write_bytes(b"definitely not blosc")
    dst = tmp_path / "dst.zarr"
    with pytest.raises(ExplorerError, match=r"failed at .* \(chunk 3 of 4\)") as info:
        recompress(src, dst, task_bytes=1, threads=1)
    assert "--resume" in str(info.value)
    assert _attrs(dst)[MARKER_KEY]["incomplete"] is True


def test_plan_preview_writes_nothing(tmp_path: Path) -> None:
    from napari_zarr_explorer.recompress import plan_recompress

    src = testing.write_ome_image(
        tmp_path / "img.zarr", version="0.4", labels=True, shape=(2, 4, 64, 64), levels=2
    )
    before = tree_hash(src)
    plan = plan_recompress(src, chunks=(1, 1, 32, 32), shards=(1, 4, 64, 64), compressor="zstd:5")
    assert tree_hash(src) == before
    d = plan.to_dict()
    json.dumps(d)
    assert d["compressor"] == "zstd:5" and d["zarr_format"] == 3
    by_path = {a["path"]: a for a in d["arrays"]}
    assert by_path["0"]["chunks"] == [1, 1, 32, 32]
    assert by_path["1"]["chunks"] == [1, 1, 32, 32]
    assert any(p.startswith("labels/") for p in by_path)
    assert "converted to 0.5" in str(plan)


@pytest.mark.parametrize("dst_format", [2, 3])
def test_zero_dimensional_and_empty_arrays(tmp_path: Path, dst_format: int) -> None:
    src = testing.write_array(tmp_path / "s0.zarr", np.array(5.5), zarr_format=3)
    report = recompress(src, tmp_path / "d0.zarr", zarr_format=dst_format, shards="none")
    assert report.ok, str(report)
    assert read(tmp_path / "d0.zarr")[()] == 5.5
    src = testing.write_array(
        tmp_path / "se.zarr", np.zeros((0, 4), "uint8"), zarr_format=2, chunks=(2, 2)
    )
    report = recompress(src, tmp_path / "de.zarr", zarr_format=dst_format)
    assert report.ok and report.objects_written == 0
    assert read(tmp_path / "de.zarr").shape == (0, 4)


def test_progress_true_shows_a_rich_bar(tmp_path: Path) -> None:
    src = testing.write_array(tmp_path / "s.zarr", image((2, 16, 16)), zarr_format=2)
    assert recompress(src, tmp_path / "d.zarr", progress=True).ok


def test_consolidated_metadata_is_kept(tmp_path: Path, zarr_format: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = zarr.open_group(tmp_path / "src.zarr", mode="w", zarr_format=2)
        root.create_array("a", shape=(4, 4), chunks=(2, 2), dtype="int32")[...] = 3
        root.attrs["title"] = "t"
        zarr.consolidate_metadata(tmp_path / "src.zarr", zarr_format=2)
    dst = tmp_path / "dst.zarr"
    report = recompress(tmp_path / "src.zarr", dst, zarr_format=zarr_format)
    assert report.ok
    assert any("consolidated metadata written" in n for n in report.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = zarr.open_consolidated(dst, zarr_format=zarr_format)
        assert MARKER_KEY not in g.attrs and g.attrs["title"] == "t"
        np.testing.assert_array_equal(g["a"][...], np.full((4, 4), 3))


def test_suggest_layout() -> None:
    from napari_zarr_explorer.recompress import suggest_layout

    assert suggest_layout((3, 16, 4096, 5000)) == ((1, 1, 256, 256), (1, 1, 2048, 2048))
    assert suggest_layout((100, 100)) == ((100, 100), (100, 100))
    assert suggest_layout((300, 1000)) == ((256, 256), (512, 1024))
    assert suggest_layout((7,)) == ((7,), (7,))


def test_plain_folders_in_a_group_are_not_objects(tmp_path: Path) -> None:
    # a folder that is no Zarr node (notes, a folder named like a metadata document) used to
    # stop the plan with a bare IsADirectoryError
    src = tmp_path / "src.zarr"
    zarr.open_group(src, mode="w")
    testing.write_array(src / "img", np.arange(64, dtype="u2").reshape(8, 8), chunks=(4, 4))
    (src / "notes" / "2024").mkdir(parents=True)
    (src / "notes" / "2024" / "readme.txt").write_text("kept out of the copy")
    (src / "odd" / "zarr.json").mkdir(parents=True)
    dst = tmp_path / "dst.zarr"
    report = recompress(src, dst)
    assert report.ok, str(report)
    assert [a.path for a in report.arrays] == ["img"]
    np.testing.assert_array_equal(zarr.open_array(dst / "img")[:], zarr.open_array(src / "img")[:])
    assert not (dst / "notes").exists()


def test_control_characters_in_names_are_flagged_and_refused_with_what_to_do(
    tmp_path: Path,
) -> None:
    # Refused on purpose (docs/decisions.md): such names are not portable (Windows, some object
    # stores) and can rewrite a terminal. inspect shows the node with a warning; recompress
    # names the node and says how to fix it; renamed, it copies.
    from napari_zarr_explorer.report import inspect

    src = tmp_path / "src.zarr"
    zarr.open_group(src, mode="w")
    testing.write_array(src / "ok", np.arange(16, dtype="u1").reshape(4, 4), chunks=(2, 2))
    testing.write_array(src / "tab\there", np.ones((4, 4), dtype="u1"), chunks=(2, 2))
    report = inspect(src)
    (node,) = [n for n in report.nodes if n.path == "tab\there"]
    (warning,) = node.warnings
    assert "'tab\\there'" in warning and "control character" in warning
    assert "recompress" in warning and "'tab_here'" in warning
    assert "control character" in str(report) and "control character" in json.dumps(
        report.to_dict()
    )
    assert not next(n for n in report.nodes if n.path == "ok").warnings
    dst = tmp_path / "dst.zarr"
    with pytest.raises(ExplorerError) as info:
        recompress(src, dst)
    msg = str(info.value)
    assert f"{src}: node 'tab\\there'" in msg and "control character ('\\t')" in msg, msg
    assert "Rename it" in msg and "'tab_here'" in msg and "in metadata" not in msg, msg
    assert not dst.exists()
    (src / "tab\there").rename(src / "tab_here")
    assert recompress(src, dst).ok


def test_a_folder_at_a_chunk_key_reads_as_a_missing_chunk_on_every_path(tmp_path: Path) -> None:
    import shutil

    from napari_zarr_explorer.store import open_array, open_store, parse_location

    data = np.arange(64, dtype="u2").reshape(8, 8) + 1
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(4, 4))
    shutil.rmtree(src / "c" / "1")
    (src / "c" / "1" / "1" / "stray").mkdir(parents=True)  # a folder where a chunk belongs
    loc = parse_location(str(src))
    store = open_store(loc)
    reader = _io.SourceReader(open_array(loc, "", store=store), store, "")
    assert reader.fast
    expected = data.copy()
    expected[4:, :] = 0  # the fill value
    whole, _ = reader.read((slice(0, 8), slice(0, 8)))
    np.testing.assert_array_equal(whole, expected)
    part, _ = reader.read((slice(2, 7), slice(1, 8)))  # not aligned with the chunks
    np.testing.assert_array_equal(part, expected[2:7, 1:8])
    blocked = reader.read_blocked((slice(0, 8), slice(0, 8)), (4, 4))
    assert blocked is not None
    np.testing.assert_array_equal(blocked[0][1, 1], expected[4:, 4:])


def test_default_threads_one_per_cpu_two_more_for_remote_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from napari_zarr_explorer.recompress import _engine

    monkeypatch.setattr(_engine.os, "cpu_count", lambda: 3)
    assert _engine.default_threads() == 3
    assert _engine.default_threads(remote=True) == 5
    ex = _engine._executor(None, None, None)
    try:
        assert ex.slots == 3
    finally:
        ex.close()
    ex = _engine._executor(None, None, None, remote=True)
    try:
        assert ex.slots == 5
    finally:
        ex.close()
    assert _engine._executor(None, None, 7).slots == 7
    # a local run uses at most one thread per CPU
    seen: set[str] = set()
    real = _engine.run_task

    def spy(task: Any) -> Any:
        seen.add(threading.current_thread().name)
        return real(task)

    monkeypatch.setattr(_engine, "run_task", spy)
    src = tmp_path / "src.zarr"
    a = zarr.create_array(src, shape=(64, 64), chunks=(8, 8), dtype="u2", zarr_format=2)
    a[...] = np.arange(64 * 64, dtype="u2").reshape(64, 64)
    report = recompress(src, tmp_path / "dst.zarr", chunks=(8, 8), task_bytes=128)
    assert report.ok and report.objects_written == 64
    assert 1 <= len(seen) <= 3


def test_chunk_map_shares_the_chunks_with_an_idle_thread() -> None:
    """Each item is computed once, by the task's thread or the helper, in order; a helper's
    exception reaches the task."""
    from napari_zarr_explorer.recompress import _task

    def helper(job: Any) -> bool:
        threading.Thread(target=job).start()
        return True

    barrier = threading.Barrier(2, timeout=30)
    who: dict[int, int] = {}

    def square(i: int) -> int:
        if i < 2:
            barrier.wait()  # items 0 and 1 run at the same time: two threads take part
        who[i] = threading.get_ident()
        return i * i

    _task.set_helper(helper)
    try:
        assert _task._chunk_map(square, range(10)) == [i * i for i in range(10)]
        assert sorted(who) == list(range(10))
        assert len(set(who.values())) == 2

        barrier.reset()

        def fails_on_the_helper(i: int) -> int:
            if i < 2:
                barrier.wait()
            if i == 1:  # claimed by the helper: the task's thread holds item 0 at the barrier
                raise ValueError("damaged chunk 1")
            return i

        with pytest.raises(ValueError, match="damaged chunk 1"):
            _task._chunk_map(fails_on_the_helper, range(10))
    finally:
        _task.set_helper(None)


def test_the_idle_thread_helping_the_last_task_writes_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One shard, two threads: the second thread, with no task of its own, is offered the
    task's chunks; the output is byte for byte that of a run on one thread, and verified."""
    from napari_zarr_explorer.recompress import _engine

    data = testing.blobs((4, 96, 96), seed=11, dtype="uint16")
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 32, 32))
    taken: list[bool] = []
    real_help = _engine._Threads.help

    def help_and_note(self: Any, fn: Any) -> bool:
        taken.append(real_help(self, fn))
        return taken[-1]

    monkeypatch.setattr(_engine._Threads, "help", help_and_note)
    hashes = []
    for name, scheduler, threads in (("one", "sync", None), ("two", None, 2)):
        dst = tmp_path / f"{name}.zarr"
        report = recompress(
            src, dst, chunks=(1, 32, 32), shards=(4, 96, 96), scheduler=scheduler, threads=threads
        )
        assert report.ok, str(report)
        assert report.objects_written == 1
        assert report.chunks_verified == report.chunks_written == 36
        hashes.append(tree_hash(dst))
    assert True in taken  # the idle thread was taken
    assert hashes[0] == hashes[1]
    np.testing.assert_array_equal(read(tmp_path / "two.zarr"), data)


def test_stored_bytes_before_are_those_of_the_source_files(tmp_path: Path) -> None:
    """The report and the dry-run plan give the stored bytes of each source array's files
    (the run measures them while it writes, and uses what the scan finished; the plan before)."""
    from napari_zarr_explorer.recompress import plan_recompress

    group = tmp_path / "src.zarr"
    root = zarr.open_group(group, mode="w", zarr_format=2)
    for name, seed in (("a", 1), ("b", 2)):
        arr = root.create_array(name, shape=(3, 40, 40), chunks=(1, 16, 16), dtype="uint16")
        arr[:] = testing.blobs((3, 40, 40), seed=seed, dtype="uint16")
    (group / "a" / "stray.bin").write_bytes(b"x" * 1000)  # a file among the chunks counts too
    expected = {
        name: sum(
            p.stat().st_size
            for p in (group / name).rglob("*")
            if p.is_file() and p.name not in (".zarray", ".zattrs")
        )
        for name in ("a", "b")
    }

    def scan_done_before_the_end(ev: ProgressEvent) -> None:
        # the run does not wait for the scan: here the last task waits for it instead
        if ev.phase == "write" and ev.objects_done == ev.objects_total:
            for t in threading.enumerate():
                if t.name == "recompress-sizes":
                    t.join(timeout=120)  # generous: fails on a hang only

    report = recompress(
        group, tmp_path / "dst.zarr", chunks=(1, 32, 32), progress=scan_done_before_the_end
    )
    assert report.ok, str(report)
    assert {a.path: a.bytes_before for a in report.arrays} == expected
    assert {a.bytes_before_basis for a in report.arrays} == {"files"}
    assert report.bytes_before == sum(expected.values())
    assert report.bytes_before_basis == "files"
    before = sum(expected.values())
    assert report.done_line() == (
        f"Done: {human_bytes(before)} -> {human_bytes(report.bytes_after)} "
        f"({report.bytes_after / before:.0%} of the original)"
    )
    plan = plan_recompress(group, chunks=(1, 32, 32))
    assert {a.target.path: a.bytes_before for a in plan.arrays} == expected


@pytest.mark.parametrize("under", ["file", "file/deeper"])
def test_an_output_under_a_file_is_refused_naming_the_file(
    tmp_path: Path, under: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path whose parent is a file cannot be a folder: said plainly, not as a crash."""
    from napari_zarr_explorer.cli import main
    from napari_zarr_explorer.writer import save

    src = testing.write_array(tmp_path / "src.zarr", np.arange(64, dtype="u1").reshape(8, 8))
    blocker = tmp_path / "file"
    blocker.write_bytes(b"keep me")
    out = tmp_path / under / "out.zarr"
    with pytest.raises(ExplorerError) as info:
        recompress(src, out)
    msg = " ".join(str(info.value).split())
    assert f"{blocker} is a file, not a folder" in msg and str(out) in msg, msg
    with pytest.raises(ExplorerError, match="is a file, not a folder"):
        save(np.zeros((4, 4), "u1"), out)
    assert main(["recompress", str(src), str(out)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "is a file, not a folder" in err and "please report" not in err, err
    assert blocker.read_bytes() == b"keep me"  # nothing of the user's is touched


def _http_group(root: Path, name: str, *, consolidated: bool) -> None:
    group = zarr.open_group(root / name, mode="w", zarr_format=3)
    for i, sub in enumerate(("sub/a", "sub/b")):
        arr = group.create_array(sub, shape=(32, 32), chunks=(16, 16), dtype="uint16")
        arr[:] = np.arange(32 * 32, dtype="uint16").reshape(32, 32) + i
    if consolidated:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr: consolidated metadata is not in the v3 spec
            zarr.consolidate_metadata(root / name)


def test_a_group_over_plain_http_is_copied_from_its_consolidated_metadata(
    tmp_path: Path, http_server: Any
) -> None:
    """A web server cannot list: the members come from the consolidated metadata."""
    _http_group(Path(http_server.root), "g.zarr", consolidated=True)
    report = recompress(f"{http_server.url}/g.zarr", tmp_path / "out.zarr")
    assert report.ok, str(report)
    assert sorted(a.path for a in report.arrays) == ["sub/a", "sub/b"]
    out = zarr.open_group(tmp_path / "out.zarr", mode="r")
    np.testing.assert_array_equal(out["sub/b"][:], np.arange(1024).reshape(32, 32) + 1)


def test_a_group_whose_members_cannot_be_found_is_refused_not_copied_empty(
    tmp_path: Path, http_server: Any
) -> None:
    """Without listing or consolidated metadata the copy would be empty, yet "OK, verified"."""
    _http_group(Path(http_server.root), "g.zarr", consolidated=False)
    with pytest.raises(ExplorerError) as info:
        recompress(f"{http_server.url}/g.zarr", tmp_path / "out.zarr")
    msg = " ".join(str(info.value).split())
    assert f"{http_server.url}/g.zarr" in msg and "cannot list" in msg, msg
    assert "consolidat" in msg and "each array" in msg, msg
    assert not (tmp_path / "out.zarr").exists()
    # an array of it, named by its URL, is copied
    report = recompress(f"{http_server.url}/g.zarr/sub/a", tmp_path / "a.zarr")
    assert report.ok and report.arrays[0].path == ""


def test_the_plan_counts_in_words(tmp_path: Path) -> None:
    from napari_zarr_explorer.recompress import plan_recompress

    src = testing.write_array(tmp_path / "src.zarr", np.zeros((4, 4), "u1"), name="a")
    assert "1 array, 1 group" in str(plan_recompress(src))


@pytest.mark.parametrize("case", ["loop", "too long"])
def test_a_path_the_system_cannot_resolve_is_named_not_reported_as_a_crash(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from napari_zarr_explorer.cli import main

    src = testing.write_array(tmp_path / "src.zarr", np.arange(16, dtype="u1").reshape(4, 4))
    if case == "loop":
        (tmp_path / "loop").symlink_to(tmp_path / "loop")
        bad, words = tmp_path / "loop" / "out.zarr", "a loop of symbolic links"
    else:
        bad, words = tmp_path / ("a" * 300) / "out.zarr", "file name too long"
    for args in (["recompress", str(src), str(bad)], ["inspect", str(bad)]):
        assert main(args) == 1
        err = " ".join(capsys.readouterr().err.split())
        assert f"{bad}: {words}." in err and "unexpectedly" not in err, err


def test_an_image_over_plain_http_with_a_bare_labels_group_is_copied(
    tmp_path: Path, http_server: Any
) -> None:
    """OME metadata names the image's members; a "labels" group naming none is not a refusal."""
    src = testing.write_ome_image(
        Path(http_server.root) / "img.ome.zarr", shape=(32, 32), axes="yx", levels=2
    )
    zarr.open_group(src / "labels", mode="w", zarr_format=3)  # no "labels" list in it
    report = recompress(f"{http_server.url}/img.ome.zarr", tmp_path / "out.zarr")
    assert report.ok, str(report)
    assert sorted(a.path for a in report.arrays) == ["0", "1"]


def test_bioformats2raw_over_plain_http_without_a_series_list(
    tmp_path: Path, http_server: Any
) -> None:
    """The layout allows an OME group without "series": the images are found by probing."""
    src = testing.write_bioformats2raw(Path(http_server.root) / "b2r.zarr", series=2)
    (src / "OME" / ".zattrs").write_text("{}")  # no "series" list
    report = recompress(f"{http_server.url}/b2r.zarr", tmp_path / "out.zarr")
    assert report.ok, str(report)
    assert {a.path for a in report.arrays} == {"0/0", "0/1", "1/0", "1/1"}
    assert (tmp_path / "out.zarr" / "OME" / "METADATA.ome.xml").exists()


def test_over_plain_http_the_plan_says_only_named_members_are_copied(
    tmp_path: Path, http_server: Any
) -> None:
    from napari_zarr_explorer.recompress import plan_recompress

    src = testing.write_ome_image(
        Path(http_server.root) / "img.ome.zarr", shape=(32, 32), axes="yx", levels=1
    )
    testing.write_array(src, np.zeros((4, 4), "u1"), name="extra")  # named by no metadata
    plan = plan_recompress(f"{http_server.url}/img.ome.zarr")
    assert [a.target.path for a in plan.arrays] == ["0"]
    assert any("only the members its OME-NGFF metadata names" in n for n in plan.notes)
    local = plan_recompress(src)  # a folder lists: every member, no such note
    assert sorted(a.target.path for a in local.arrays) == ["0", "extra"]
    assert not any("cannot list" in n for n in local.notes)


def test_an_output_bucket_that_is_not_there_is_named(tmp_path: Path, s3_server: Any) -> None:
    from servers import FAKE_KEY_ID, FAKE_SECRET

    src = testing.write_array(tmp_path / "src.zarr", image((2, 16, 16)), zarr_format=2)
    opts = {
        "key": FAKE_KEY_ID,
        "secret": FAKE_SECRET,
        "client_kwargs": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
    }
    url = f"s3://no-bucket-{os.getpid()}/out.zarr"
    with pytest.raises(ExplorerError) as info:
        recompress(src, url, dst_storage_options=opts)
    message = str(info.value)
    assert message.startswith(f"Writing {url}/zarr.json failed: the bucket"), message
    assert "does not exist" in message and "Error:" not in message


def test_a_missing_key_in_a_bucket_named_bucket_is_not_a_missing_bucket() -> None:
    """Only S3's own NoSuchBucket means the bucket is not there, not the word in a name."""
    from napari_zarr_explorer.recompress._io import output_error

    where = "s3://my-bucket/out.zarr/c/0/0"
    lost = output_error("Reading", where, FileNotFoundError("my-bucket/out.zarr/c/0/0"))
    assert "bucket 'my-bucket' does not exist" not in str(lost), lost
    gone = output_error("Writing", where, FileNotFoundError("The specified bucket does not exist"))
    assert "the bucket 'my-bucket' does not exist" in str(gone), gone


def test_a_v2_output_is_marked_incomplete_before_its_other_root_document(
    tmp_path: Path, s3_server: Any
) -> None:
    """The document holding the marker (.zattrs) is written first: a run whose next document
    is refused is an unfinished output, which the error and Resume say, not a bare refusal."""
    from napari_zarr_explorer.errors import RunFailedError
    from servers import FAKE_KEY_ID, FAKE_SECRET

    bucket = f"zgroup-refused-{os.getpid()}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:PutObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/out.zarr/.zarray"],
            }
        ],
    }
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    src = testing.write_array(tmp_path / "src.zarr", image((2, 16, 16)), zarr_format=2)
    opts = {
        "key": FAKE_KEY_ID,
        "secret": FAKE_SECRET,
        "client_kwargs": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
    }
    with pytest.raises(RunFailedError) as info:
        recompress(src, f"s3://{bucket}/out.zarr", dst_storage_options=opts, zarr_format=2)
    assert "marked incomplete" in (info.value.hint or ""), info.value
    attrs = json.loads(client.get_object(Bucket=bucket, Key="out.zarr/.zattrs")["Body"].read())
    assert any(isinstance(v, dict) and v.get("incomplete") for v in attrs.values()), attrs


def test_a_v2_output_stopped_after_its_first_document_is_still_ours(tmp_path: Path) -> None:
    """A run stopped right after writing its marked .zattrs (disk full, a crash) leaves only
    that: it is an unfinished output of ours, which --overwrite replaces and the refusal names."""
    import shutil
    import threading

    from napari_zarr_explorer.errors import OutputExistsError

    data = image((2, 16, 16))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2)
    out = tmp_path / "out.zarr"
    stop = threading.Event()
    stop.set()  # cancelled before any task: the metadata documents are written, marked
    first = recompress(src, out, zarr_format=2, cancel=stop)
    assert first.cancelled
    for entry in out.iterdir():  # what a stop right after the first document leaves
        if entry.name != ".zattrs":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    with pytest.raises(OutputExistsError) as info:
        recompress(src, out, zarr_format=2)
    assert "unfinished" in str(info.value), info.value
    report = recompress(src, out, zarr_format=2, overwrite=True)
    assert report.ok, report
    np.testing.assert_array_equal(zarr.open_array(str(out), mode="r")[:], data)
