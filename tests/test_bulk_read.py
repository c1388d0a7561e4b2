"""Bulk region reads (``store.bulk_read``): the same array, and the same errors, as the plain path.

The plain path is ``array[region]`` through the guarded zarr-python pipeline. Every case checks
that the bulk path actually did the work (no region handed to the plain path) where it should,
and that damaged chunks go to the plain path and fail there exactly as they fail without it.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec

from napari_zarr_explorer.errors import ExplorerWarning
from napari_zarr_explorer.pyramid import ChunkCache, as_level
from napari_zarr_explorer.store import ChunkSizeError, bulk_read, open_array, parse_location
from napari_zarr_explorer.store import bulk as bulk_mod
from napari_zarr_explorer.testing import blobs, tensorstore_sharded_spec, write_array

SHAPE = (11, 45, 53)  # partial edge chunks and shards along every dimension
CHUNKS = (2, 8, 16)
SHARDS = (4, 16, 32)


def _data(dtype: str = "uint16") -> np.ndarray:
    base = blobs(SHAPE[1:], seed=5, n=6, dtype="uint16").astype(dtype)
    data = np.stack([np.roll(base, 3 * z, axis=1) for z in range(SHAPE[0])])
    data[:4, :16, :32] = 0  # whole chunks (and a whole shard) equal to the fill value: absent
    data[6:8, 16:32, 32:48] = 0
    return data


def _open(path: Path, name: str = "") -> Any:
    return open_array(parse_location(str(path)), name)


SELECTIONS = [
    (slice(None), slice(None), slice(None)),
    (slice(3, 4), slice(None), slice(None)),  # one plane
    (slice(1, 9), slice(5, 40), slice(7, 50)),  # unaligned, inside
    (slice(10, 11), slice(40, 45), slice(48, 53)),  # the last, partial chunk only
    (slice(0, 4), slice(0, 16), slice(0, 32)),  # absent chunks only
    (slice(2, 2), slice(None), slice(None)),  # empty
]


class _Plain:
    """Records the regions the bulk path hands to the plain path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.regions: list[tuple[slice, ...]] = []
        real = bulk_mod._plain

        def plain(array: Any, region: tuple[slice, ...]) -> np.ndarray:
            self.regions.append(region)
            return real(array, region)

        monkeypatch.setattr(bulk_mod, "_plain", plain)


def _same(array: Any, sel: tuple[slice, ...]) -> None:
    want = np.asarray(array[sel])
    got = bulk_read(array, sel)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def _v3_sharded(
    path: Path, data: np.ndarray, inner: list[Any], index: list[Any], where: str
) -> Path:
    """A sharded array whose codecs are rewritten in its metadata before any data is written."""
    zarr.create_array(
        str(path), shape=data.shape, chunks=CHUNKS, shards=SHARDS, dtype=data.dtype, fill_value=0
    )
    meta = json.loads((path / "zarr.json").read_text())
    conf = meta["codecs"][0]["configuration"]
    conf.update(codecs=inner, index_codecs=index, index_location=where)
    (path / "zarr.json").write_text(json.dumps(meta))
    zarr.open_array(str(path), mode="r+")[...] = data
    return path


_BYTES = {"name": "bytes", "configuration": {"endian": "little"}}

WRITERS = {
    "v3 raw": lambda p, d: write_array(p, d, chunks=CHUNKS, compressor=None),
    "v3 blosc": lambda p, d: write_array(p, d, chunks=CHUNKS, compressor="blosc"),
    "v3 zstd": lambda p, d: write_array(p, d, chunks=CHUNKS, compressor="zstd:3"),
    "v3 sharded blosc": lambda p, d: write_array(
        p, d, chunks=CHUNKS, shards=SHARDS, compressor="blosc"
    ),
    "v3 sharded zstd": lambda p, d: write_array(
        p, d, chunks=CHUNKS, shards=SHARDS, compressor="zstd:3"
    ),
    "v3 sharded raw": lambda p, d: write_array(p, d, chunks=CHUNKS, shards=SHARDS, compressor=None),
    "v3 sharded, index first, no checksum": lambda p, d: _v3_sharded(
        p, d, [_BYTES, {"name": "zstd", "configuration": {"level": 1}}], [_BYTES], "start"
    ),
    "v3 sharded, index first, checksum": lambda p, d: _v3_sharded(
        p,
        d,
        [
            _BYTES,
            {
                "name": "blosc",
                "configuration": {
                    "cname": "lz4",
                    "clevel": 3,
                    "shuffle": "shuffle",
                    "typesize": d.dtype.itemsize,
                    "blocksize": 0,
                },
            },
        ],
        [_BYTES, {"name": "crc32c"}],
        "start",
    ),
    "v2 blosc": lambda p, d: write_array(p, d, zarr_format=2, chunks=CHUNKS, compressor="blosc"),
    "v2 zstd, nested keys": lambda p, d: write_array(
        p, d, zarr_format=2, chunks=CHUNKS, compressor="zstd:3", separator="/"
    ),
    "v2 raw": lambda p, d: write_array(p, d, zarr_format=2, chunks=CHUNKS, compressor=None),
}


@pytest.mark.parametrize("kind", list(WRITERS))
@pytest.mark.parametrize("dtype", ["uint16", "float32", "int8"])
def test_same_array_as_the_plain_path(tmp_path, monkeypatch, kind, dtype):
    WRITERS[kind](tmp_path / "a.zarr", _data(dtype))
    array = _open(tmp_path / "a.zarr")
    assert bulk_mod.bulk_plan(array) is not None
    plain = _Plain(monkeypatch)
    for sel in SELECTIONS:
        _same(array, sel)
    assert plain.regions == []  # everything was read in bulk


@pytest.mark.parametrize(
    ("zarr_format", "sharded"), [(2, False), (3, False), (3, True)], ids=["v2", "v3", "sharded"]
)
def test_fill_values_of_absent_chunks(tmp_path, monkeypatch, zarr_format, sharded):
    data = np.full(SHAPE, np.nan, dtype="float32")
    data[5:, 20:, :] = 1.5
    write_array(
        tmp_path / "a.zarr",
        data,
        zarr_format=zarr_format,
        chunks=CHUNKS,
        shards=SHARDS if sharded else None,
        compressor="zstd:1",
        fill_value=float("nan"),
    )
    array = _open(tmp_path / "a.zarr")
    plain = _Plain(monkeypatch)
    for sel in SELECTIONS:
        _same(array, sel)
    got = bulk_read(array, (slice(None),) * 3)
    assert np.isnan(got[:5]).all() and (got[5:, 20:] == 1.5).all()
    assert plain.regions == []


def test_v2_without_fill_value_reads_zeros(tmp_path):
    data = _data()
    write_array(tmp_path / "a.zarr", data, zarr_format=2, chunks=CHUNKS, compressor="blosc")
    meta = tmp_path / "a.zarr" / ".zarray"
    meta.write_text(meta.read_text().replace('"fill_value": 0', '"fill_value": null'))
    (tmp_path / "a.zarr" / "4.3.2").unlink()
    array = _open(tmp_path / "a.zarr")
    assert array.metadata.fill_value is None
    for sel in SELECTIONS:
        _same(array, sel)


def test_tensorstore_shards(tmp_path, monkeypatch):
    ts = pytest.importorskip("tensorstore")
    data = _data()
    spec = tensorstore_sharded_spec(
        tmp_path / "t.zarr", SHAPE, dtype="uint16", chunks=CHUNKS, shards=SHARDS
    )
    ts.open(spec).result().write(data).result()
    array = _open(tmp_path / "t.zarr")
    plain = _Plain(monkeypatch)
    for sel in SELECTIONS:
        _same(array, sel)
    np.testing.assert_array_equal(bulk_read(array, (slice(None),) * 3), data)
    assert plain.regions == []


@pytest.mark.parametrize(
    "kind", ["v3 transpose", "v3 gzip", "v2 lz4", "v2 filters", "v2 F order", "big-endian"]
)
def test_other_pipelines_are_read_plainly(tmp_path, kind):
    data = _data()
    p = tmp_path / "a.zarr"
    if kind == "v3 transpose":
        from zarr.codecs import TransposeCodec

        zarr.create_array(
            str(p),
            shape=SHAPE,
            chunks=CHUNKS,
            dtype="uint16",
            filters=[TransposeCodec(order=(2, 1, 0))],
            serializer=BytesCodec(),
            compressors=None,
        )[...] = data
    elif kind == "v3 gzip":
        write_array(p, data, chunks=CHUNKS, compressor="gzip")
    elif kind == "v2 lz4":
        write_array(p, data, zarr_format=2, chunks=CHUNKS, compressor="lz4")
    elif kind == "v2 filters":
        import numcodecs

        write_array(p, data, zarr_format=2, chunks=CHUNKS, filters=[numcodecs.Delta("u2")])
    elif kind == "v2 F order":
        zarr.create_array(
            str(p), shape=SHAPE, chunks=CHUNKS, dtype="uint16", zarr_format=2, order="F"
        )[...] = data
    else:
        write_array(p, data.astype(">u2"), zarr_format=2, chunks=CHUNKS, compressor="zstd:1")
    array = _open(p)
    assert bulk_mod.bulk_plan(array) is None
    for sel in SELECTIONS:
        _same(array, sel)


# ------------------------------------------------------------------------------------------
# damaged chunks: the plain path reads them, and fails as it fails without the bulk path
# ------------------------------------------------------------------------------------------


def _same_or_same_error(array: Any, sel: tuple[slice, ...]) -> BaseException | None:
    """Compare both paths; return the error both raised (None when both read)."""
    try:
        want = np.asarray(array[sel])
    except Exception as exc:
        with pytest.raises(type(exc)) as bulk:
            bulk_read(array, sel)
        assert str(bulk.value) == str(exc)
        return exc
    np.testing.assert_array_equal(bulk_read(array, sel), want)
    return None


def _damage_unsharded(path: Path, key: str, how: str) -> None:
    f = path / key
    raw = bytearray(f.read_bytes())
    if how == "garbage":  # neither a blosc header nor a zstd frame
        raw = bytearray(b"\xff" * len(raw))
    elif how == "truncated":
        raw = raw[: len(raw) // 2]
    elif how == "empty":
        raw = bytearray()
    f.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty"])
@pytest.mark.parametrize("compressor", ["blosc", "zstd:3", None])
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_damaged_chunk_fails_as_on_the_plain_path(
    tmp_path, monkeypatch, how, compressor, zarr_format
):
    data = _data()
    p = tmp_path / "a.zarr"
    write_array(p, data, zarr_format=zarr_format, chunks=CHUNKS, compressor=compressor)
    key = "2.1.1" if zarr_format == 2 else "c/2/1/1"
    _damage_unsharded(p, key, how)
    array = _open(p)
    plain = _Plain(monkeypatch)
    _same_or_same_error(array, (slice(None),) * 3)
    # only the damaged chunk went the plain way (uncompressed bytes of the right size decode)
    damaged = [(slice(4, 6), slice(8, 16), slice(16, 32))]
    assert plain.regions == ([] if (compressor, how) == (None, "garbage") else damaged)
    # untouched regions still read in bulk
    _same(array, (slice(0, 4), slice(None), slice(None)))


def _shard_rows(path: Path, n: int) -> tuple[bytearray, np.ndarray]:
    raw = bytearray(path.read_bytes())
    index = np.frombuffer(bytes(raw[-(16 * n + 4) : -4]), dtype="<u8").reshape(n, 2).copy()
    return raw, index


@pytest.mark.parametrize("how", ["garbage", "bomb", "index checksum", "offset past the end"])
@pytest.mark.parametrize("compressor", ["blosc", "zstd:3"])
def test_damaged_inner_chunk_fails_as_on_the_plain_path(tmp_path, monkeypatch, how, compressor):
    import crc32c
    import numcodecs
    import zstandard

    data = _data()
    p = tmp_path / "a.zarr"
    write_array(p, data, chunks=CHUNKS, shards=SHARDS, compressor=compressor)
    shard = p / "c" / "1" / "0" / "1"
    n = 2 * 2 * 2
    raw, index = _shard_rows(shard, n)
    off, size = (int(v) for v in index[1])  # inner chunk (0, 0, 1) of shard (1, 0, 1)
    if how == "garbage":  # neither a blosc header nor a zstd frame
        raw[off : off + size] = b"\xff" * size
    else:
        if how == "bomb":  # a valid frame of 256 MiB of zeros, appended, indexed for the chunk
            if compressor == "blosc":
                frame = numcodecs.Blosc("zstd", 1).encode(bytes(64 << 20))
            else:
                frame = zstandard.ZstdCompressor().compress(bytes(256 << 20))
            index[1] = (len(raw) - (16 * n + 4), len(frame))
            body = raw[: -(16 * n + 4)] + frame
        elif how == "offset past the end":
            index[1] = (off + (1 << 30), size)
            body = raw[: -(16 * n + 4)]
        else:
            body = raw[: -(16 * n + 4)]
        table = index.astype("<u8").tobytes()
        crc = crc32c.crc32c(table) ^ (1 if how == "index checksum" else 0)
        raw = bytearray(body + table + crc.to_bytes(4, "little"))
    shard.write_bytes(bytes(raw))
    array = _open(p)
    plain = _Plain(monkeypatch)
    error = _same_or_same_error(array, (slice(None),) * 3)
    if how in ("garbage", "bomb"):
        assert error is not None
    if how == "bomb":
        assert isinstance(error, ChunkSizeError)
    if how in ("index checksum", "offset past the end"):  # the shard's part went the plain way
        assert plain.regions == [(slice(4, 8), slice(0, 16), slice(32, 53))]
    else:
        assert plain.regions == [(slice(4, 6), slice(0, 8), slice(48, 53))]


def _reads(path: Path, bulk: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    with monkeypatch.context() as m:
        if not bulk:
            m.setattr(bulk_mod, "bulk_plan", lambda array: None)
        level = as_level(_open(path), where=str(path), cache=ChunkCache(64 << 20))
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            whole = np.asarray(level[:, :, :])
            plane = np.asarray(level[5])
        notes = sorted(str(w.message) for w in seen if issubclass(w.category, ExplorerWarning))
        return whole, plane, notes, level.reader.bad_chunks


@pytest.mark.parametrize("sharded", [False, True])
def test_layer_data_same_values_warnings_and_bad_chunks(tmp_path, monkeypatch, sharded):
    data = _data()
    p = tmp_path / "a.zarr"
    write_array(p, data, chunks=CHUNKS, shards=SHARDS if sharded else None, compressor="zstd:3")
    if sharded:
        shard = p / "c" / "1" / "0" / "1"
        raw, index = _shard_rows(shard, 8)
        off, size = (int(v) for v in index[1])
        raw[off : off + size] = b"\xff" * size
        shard.write_bytes(bytes(raw))
    else:
        _damage_unsharded(p, "c/5/2/1", "garbage")
    plain = _reads(p, False, monkeypatch)
    bulk = _reads(p, True, monkeypatch)
    np.testing.assert_array_equal(bulk[0], plain[0])
    np.testing.assert_array_equal(bulk[1], plain[1])
    assert bulk[2] == plain[2] and len(plain[2]) == 1  # one warning naming the same key
    assert bulk[3] == plain[3] and len(plain[3]) == 1


def test_many_objects_use_the_thread_pool(tmp_path, monkeypatch):
    data = _data()
    write_array(tmp_path / "a.zarr", data, chunks=(1, 4, 4), compressor="blosc")
    array = _open(tmp_path / "a.zarr")
    seen: list[int] = []
    real = bulk_mod._pool

    def pool() -> Any:
        seen.append(1)
        return real()

    monkeypatch.setattr(bulk_mod, "_pool", pool)
    monkeypatch.setattr(bulk_mod.os, "cpu_count", lambda: 4)
    np.testing.assert_array_equal(bulk_read(array, (slice(None),) * 3), data)
    assert seen


@pytest.mark.parametrize("how", ["no content size", "broken body", "two frames"])
def test_unusual_zstd_frames_go_the_plain_way(tmp_path, monkeypatch, how):
    import crc32c
    import zstandard

    data = _data()
    p = tmp_path / "a.zarr"
    write_array(p, data, chunks=CHUNKS, shards=SHARDS, compressor="zstd:3")
    shard = p / "c" / "1" / "0" / "1"
    n = 8
    raw, index = _shard_rows(shard, n)
    off, size = (int(v) for v in index[1])
    chunk = bytes(raw[off : off + size])
    plain_bytes = zstandard.ZstdDecompressor().decompress(chunk)
    if how == "no content size":  # the same values in a frame that does not declare its size
        frame = zstandard.ZstdCompressor(write_content_size=False).compress(plain_bytes)
    elif how == "two frames":  # the chunk's frame, then an empty one
        frame = chunk + zstandard.ZstdCompressor().compress(b"")
    else:  # the frame header kept, the rest broken
        frame = chunk[:6] + b"\xff" * (size - 6)
    body = raw[: -(16 * n + 4)]
    index[1] = (len(body), len(frame))
    table = index.astype("<u8").tobytes()
    shard.write_bytes(bytes(body + frame + table + crc32c.crc32c(table).to_bytes(4, "little")))
    array = _open(p)
    plain = _Plain(monkeypatch)
    error = _same_or_same_error(array, (slice(None),) * 3)
    assert (error is not None) == (how == "broken body")
    if how != "two frames":  # (frames adding up to the chunk's size decode in bulk too)
        assert plain.regions == [(slice(4, 6), slice(0, 8), slice(48, 53))]


def test_a_folder_where_a_chunk_should_be_reads_as_absent(tmp_path, monkeypatch):
    data = _data()
    p = tmp_path / "a.zarr"
    write_array(p, data, chunks=CHUNKS, compressor="blosc")
    (p / "c" / "5" / "2" / "1").unlink()
    (p / "c" / "5" / "2" / "1").mkdir()
    array = _open(p)
    plain = _Plain(monkeypatch)
    got = bulk_read(array, (slice(None),) * 3)
    np.testing.assert_array_equal(got, np.asarray(array[...]))
    assert (got[10:11, 16:24, 16:32] == 0).all()
    assert plain.regions == []


def test_an_object_that_cannot_be_read_goes_the_plain_way(tmp_path, monkeypatch):
    data = _data()
    p = tmp_path / "a.zarr"
    write_array(p, data, chunks=CHUNKS, shards=SHARDS, compressor="zstd:1")
    array = _open(p)
    real = bulk_mod._Job.get

    def get(self: Any, key: str, byte_range: Any = None) -> bytes | None:
        if key.endswith("c/1/0/1"):
            raise OSError("an unreadable shard")
        return real(self, key, byte_range)

    monkeypatch.setattr(bulk_mod._Job, "get", get)
    plain = _Plain(monkeypatch)
    np.testing.assert_array_equal(bulk_read(array, (slice(None),) * 3), data)
    assert plain.regions == [(slice(4, 8), slice(0, 16), slice(32, 53))]


def _read_in_child(path: str, queue: Any) -> None:
    bulk_mod.os.cpu_count = lambda: 4  # type: ignore[assignment]  # the pool, even on 1 core
    array = _open(Path(path))
    queue.put(float(bulk_read(array, (slice(None),) * 3).sum()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_reads_with_its_own_threads(tmp_path, monkeypatch):
    import multiprocessing

    data = _data()
    write_array(tmp_path / "a.zarr", data, chunks=(1, 4, 4), compressor="blosc")
    monkeypatch.setattr(bulk_mod.os, "cpu_count", lambda: 4)
    bulk_read(_open(tmp_path / "a.zarr"), (slice(None),) * 3)  # the pool has threads here
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a process with threads
        child = ctx.Process(target=_read_in_child, args=(str(tmp_path / "a.zarr"), queue))
        child.start()
    child.join(120)  # a child waiting on its parent's threads would never end
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0
    assert queue.get(timeout=10) == float(data.sum())


@pytest.mark.parametrize("sharded", [False, True])
def test_a_view_reads_only_the_chunks_under_it(tmp_path, monkeypatch, sharded):
    from zarr.abc.store import RangeByteRequest, SuffixByteRequest

    data = _data()
    p = tmp_path / "a.zarr"
    write_array(p, data, chunks=CHUNKS, shards=SHARDS if sharded else None, compressor="zstd:1")
    reads: list[tuple[str, Any]] = []
    real = bulk_mod._Job.get

    def get(self: Any, key: str, byte_range: Any = None) -> bytes | None:
        reads.append((key, byte_range))
        return real(self, key, byte_range)

    monkeypatch.setattr(bulk_mod._Job, "get", get)
    plain = _Plain(monkeypatch)
    array = _open(p)
    level = as_level(array, where=str(p), cache=ChunkCache(64 << 20))
    view = np.asarray(level[(slice(None), slice(10, 30), slice(20, 40))][5])  # as napari reads
    np.testing.assert_array_equal(view, data[5, 10:30, 20:40])
    assert plain.regions == []
    under = {(2, y, x) for y in (1, 2, 3) for x in (1, 2)}  # chunks (2, 8, 16) under the view
    if not sharded:
        assert sorted(k for k, _ in reads) == sorted(f"c/{z}/{y}/{x}" for z, y, x in under)
        assert all(r is None for _, r in reads)
        return
    shards = {tuple(c // n for c, n in zip(cc, (2, 2, 2), strict=True)) for cc in under}
    keys = {"c/{}/{}/{}".format(*s) for s in shards}
    assert {k for k, _ in reads} == keys
    for key in keys:  # the index once, then exactly the bytes of the inner chunks under the view
        mine = [r for k, r in reads if k == key]
        assert sum(isinstance(r, SuffixByteRequest) for r in mine) == 1
        ranges = [r for r in mine if isinstance(r, RangeByteRequest)]
        raw = (p / key).read_bytes()
        index = np.frombuffer(raw[-(16 * 8 + 4) : -4], dtype="<u8").reshape(2, 2, 2, 2)
        shard = tuple(int(v) for v in key.split("/")[1:])
        sizes = [
            int(index[tuple(c - s * 2 for c, s in zip(cc, shard, strict=True))][1])
            for cc in under
            if tuple(c // 2 for c in cc) == shard
        ]
        assert sum(r.end - r.start for r in ranges) == sum(sizes) > 0


def test_an_index_declaring_a_huge_chunk_allocates_nothing_of_it(tmp_path, monkeypatch):
    import crc32c

    data = _data()
    p = tmp_path / "a.zarr"
    write_array(p, data, chunks=CHUNKS, shards=SHARDS, compressor="zstd:3")
    shard = p / "c" / "1" / "0" / "1"
    raw, index = _shard_rows(shard, 8)
    index[1] = (100, 1 << 40)  # an inner chunk of 1 TiB
    table = index.astype("<u8").tobytes()
    body = raw[: -(16 * 8 + 4)]
    shard.write_bytes(bytes(body + table + crc32c.crc32c(table).to_bytes(4, "little")))
    # both paths, whole and chunk by chunk (as the layer data retries), fail without allocating
    plain = _reads(p, False, monkeypatch)
    bulk = _reads(p, True, monkeypatch)
    np.testing.assert_array_equal(bulk[0], plain[0])
    assert bulk[2] == plain[2] and len(plain[2]) == 1
    assert "MemoryError" not in plain[2][0]
    assert bulk[3] == plain[3] == frozenset({(2, 0, 3)})


@pytest.mark.parametrize(
    "sel",
    [
        (slice(None), slice(None), slice(None)),
        (slice(1, 9), slice(5, 40), slice(7, 50)),
        (3, slice(None), slice(None)),  # an integer: the plain path
        (slice(None, None, 2), slice(None), slice(None)),  # a step: the plain path
    ],
    ids=["whole", "unaligned", "integer", "step"],
)
def test_an_out_it_cannot_fill_is_refused_before_anything_is_read(
    tmp_path: Path, sel: tuple[Any, ...]
) -> None:
    # Every stored chunk is damaged: a read would fail on the first one. A read-only or
    # misshapen out fails first, saying what is wrong with it, before any chunk is read.
    path = tmp_path / "a.zarr"
    data = _data()
    arr = zarr.create_array(path, shape=SHAPE, chunks=CHUNKS, dtype="uint16", fill_value=0)
    arr[:] = data
    damaged = [p for p in (path / "c").rglob("*") if p.is_file()]
    assert damaged
    for p in damaged:
        p.write_bytes(b"not a chunk")
    array = _open(path)
    shape = data[sel].shape
    frozen = np.zeros(shape, dtype="uint16")
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"out is read-only.*writeable"):
        bulk_read(array, sel, out=frozen)
    with pytest.raises(
        ValueError, match=rf"out has the shape \(1, .*the region {re.escape(str(shape))}"
    ):
        bulk_read(array, sel, out=np.zeros((1, *shape), dtype="uint16"))
    with pytest.raises(Exception) as info:  # a good out: the damaged chunks are read
        bulk_read(array, sel, out=np.zeros(shape, dtype="uint16"))
    assert "out " not in str(info.value)
