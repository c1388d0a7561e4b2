"""Levels as dask arrays: storage-aligned blocks, bounded task counts, exact indexing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer import pyramid, testing
from napari_zarr_explorer import store as meta
from napari_zarr_explorer.store import parse_location


@pytest.mark.parametrize(
    ("shape", "base"),
    [
        ((100, 100), (10, 10)),
        ((10**6, 10**6, 10**6), (1, 64, 64)),
        ((7,), (100,)),
        ((0, 5), (1, 5)),
        ((3, 10**9), (1, 1)),
    ],
)
def test_dask_chunks_are_whole_multiples_and_bounded(shape, base) -> None:
    block = pyramid.dask_chunks(shape, base, itemsize=2, max_blocks=1000)
    nblocks = math.prod(max(1, -(-s // b)) for s, b in zip(shape, block, strict=True))
    assert nblocks <= 1000
    for s, b, c in zip(shape, block, base, strict=True):
        assert b % min(c, max(s, 1)) == 0 or b == max(s, 1)


def test_small_chunks_grow_to_fewer_tasks() -> None:
    block = pyramid.dask_chunks((64, 4096, 4096), (1, 128, 128), itemsize=2)
    assert block[1] % 128 == 0 and block[2] % 128 == 0
    assert math.prod(block) * 2 >= pyramid.MIN_BLOCK_BYTES


def test_sharded_blocks_are_shards(tmp_path: Path) -> None:
    values = testing.blobs((8, 64, 64), dtype="uint16")
    testing.write_array(tmp_path / "s.zarr", values, chunks=(1, 16, 16), shards=(4, 32, 32))
    arr = meta.open_array(parse_location(tmp_path / "s.zarr"))
    d = pyramid.as_dask(arr, where="s", block="shard")
    assert all(
        c % s == 0 or c == n
        for cs, s, n in zip(d.chunks, (4, 32, 32), d.shape, strict=True)
        for c in cs[:-1]
    )
    d_inner = pyramid.as_dask(arr, where="s", block="chunk")
    assert all(
        c % s == 0 for cs, s in zip(d_inner.chunks, (1, 16, 16), strict=True) for c in cs[:-1]
    )
    np.testing.assert_array_equal(d.compute(), values)
    np.testing.assert_array_equal(d_inner.compute(), values)


def test_plane_reads_do_not_decode_whole_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = testing.blobs((16, 64, 64), dtype="uint16")
    testing.write_array(tmp_path / "s.zarr", values, chunks=(1, 32, 32), shards=(16, 64, 64))
    arr = meta.open_array(parse_location(tmp_path / "s.zarr"))
    d = pyramid.as_dask(arr, where="s")
    assert d.numblocks == (1, 1, 1)
    # the limit allows the chunks of one plane (4 x 2 KiB) but not the whole block (16 planes):
    # the plane read must go to storage as a plane (dask slice fusion)
    monkeypatch.setenv(pyramid.LIMIT_ENV, str(4 * 32 * 32 * 2))
    np.testing.assert_array_equal(np.asarray(d[5]), values[5])
    np.testing.assert_array_equal(np.asarray(d[7, 10:50, ::3]), values[7, 10:50, ::3])


INDEXES = [
    (slice(None),),
    (3,),
    (-1, slice(2, 9)),
    (slice(None, None, 2), slice(5, 1, -1)),
    (Ellipsis, 4),
    (slice(2, 2),),
    ([0, 5, 2], slice(1, 4)),
    (np.array([True, False] * 5), 0),
    (slice(-3, None), Ellipsis),
]


@pytest.mark.parametrize("index", INDEXES, ids=[repr(i)[:30] for i in INDEXES])
def test_chunk_reader_indexing_matches_numpy(tmp_path: Path, index) -> None:
    values = np.arange(10 * 12, dtype="int32").reshape(10, 12)
    testing.write_array(tmp_path / "a.zarr", values, chunks=(3, 5))
    reader = pyramid.ChunkReader(meta.open_array(parse_location(tmp_path / "a.zarr")), where="a")
    np.testing.assert_array_equal(reader[index], values[index])
    d = pyramid.as_dask(reader.array, where="a")
    np.testing.assert_array_equal(np.asarray(d[index]), values[index])


def test_chunk_reader_rejects_bad_indexes(tmp_path: Path) -> None:
    testing.write_array(tmp_path / "a.zarr", np.zeros((4, 4)), chunks=(2, 2))
    reader = pyramid.ChunkReader(meta.open_array(parse_location(tmp_path / "a.zarr")), where="a")
    for bad in [(9,), (0, 0, 0), (None,), ("x",), (..., ...)]:
        with pytest.raises(IndexError):
            reader[bad]


def test_find_pyramid() -> None:
    assert pyramid.find_pyramid([("b", (50, 50)), ("a", (100, 100)), ("c", (25, 25))]) == [
        "a",
        "b",
        "c",
    ]
    assert pyramid.find_pyramid([("a", (100, 100))]) is None
    assert pyramid.find_pyramid([("a", (100, 100)), ("b", (100, 100))]) is None
    assert pyramid.find_pyramid([("a", (100, 100)), ("b", (50, 200))]) is None
    assert pyramid.find_pyramid([("a", (100, 100)), ("b", (5, 5, 5))]) is None


def test_open_pyramid(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "i.zarr",
        version="0.5",
        shape=(2, 64, 64),
        axes="cyx",
        levels=3,
        chunks=(1, 16, 16),
        shards=(1, 32, 32),
    )
    levels = pyramid.open_pyramid(str(path))
    assert [lv.shape for lv in levels] == [(2, 64, 64), (2, 32, 32), (2, 16, 16)]
    one = pyramid.open_pyramid(str(path), "1")
    assert len(one) == 1 and one[0].shape == (2, 32, 32)
    np.testing.assert_array_equal(levels[1].compute(), one[0].compute())


def test_max_chunk_bytes_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    from napari_zarr_explorer.errors import ExplorerWarning

    for raw, value in [("2G", 2 << 30), ("512M", 512 << 20), ("64KiB", 64 << 10), ("123", 123)]:
        monkeypatch.setenv(pyramid.LIMIT_ENV, raw)
        assert pyramid.max_chunk_bytes() == value
    monkeypatch.setenv(pyramid.LIMIT_ENV, "lots")
    with pytest.warns(ExplorerWarning, match="not a number"):
        assert pyramid.max_chunk_bytes() == pyramid.DEFAULT_MAX_CHUNK_BYTES


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory):
    values = np.arange(9 * 11 * 7, dtype="int16").reshape(9, 11, 7)
    path = tmp_path_factory.mktemp("h") / "a.zarr"
    testing.write_array(path, values, chunks=(2, 3, 4), shards=(4, 6, 4))
    arr = meta.open_array(parse_location(path))
    return values, pyramid.ChunkReader(arr, where="h"), pyramid.as_dask(arr, where="h")


def _index_strategy():
    from hypothesis import strategies as st

    def one(n: int):
        return st.one_of(
            st.integers(-n, n - 1),
            st.builds(
                slice,
                st.integers(-n - 2, n + 2) | st.none(),
                st.integers(-n - 2, n + 2) | st.none(),
                st.sampled_from([None, 1, 2, 3, -1, -2]),
            ),
        )

    return st.tuples(one(9), one(11), one(7))


def test_indexing_property(small_store) -> None:
    import dask.array as da
    from hypothesis import given, settings

    values, reader, d = small_store
    # dask's own slicing differs from numpy's on a few out-of-range negative-step slices; the
    # levels must behave exactly like dask over the same values held in memory.
    in_memory = da.from_array(values, chunks=d.chunks)

    @settings(max_examples=80, deadline=None, derandomize=True)
    @given(_index_strategy())
    def check(index) -> None:
        np.testing.assert_array_equal(reader[index], values[index])
        np.testing.assert_array_equal(np.asarray(d[index]), np.asarray(in_memory[index]))

    check()
