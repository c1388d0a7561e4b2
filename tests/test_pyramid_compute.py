"""Computing ``open_pyramid`` levels: one array filled in place, exact, same errors, bounded.

A level computed by itself (whole, or a region taken with step-1 slices) is read by one task into
one preallocated array; every case compares it with zarr-python's read of the same array and
with the block-by-block dask graph of the same level (what was computed before), and checks
which of the two graphs actually ran.
"""

from __future__ import annotations

import pickle
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from dask.array.core import getter
from dask.callbacks import Callback

from napari_zarr_explorer import pyramid, testing
from napari_zarr_explorer._dasklevel import LevelArray, _read_whole
from napari_zarr_explorer.errors import ExplorerWarning, LimitError

SHAPE = (11, 45, 53)  # partial edge chunks, shards and blocks along every dimension
CHUNKS = (2, 8, 16)
SHARDS = (4, 16, 32)

STORES = {
    "v2 blosc": {"zarr_format": 2, "compressor": "blosc"},
    "v2 raw": {"zarr_format": 2, "compressor": None},
    "v3 zstd": {"compressor": "zstd:3"},
    "v3 sharded blosc": {"shards": SHARDS, "compressor": "blosc"},
    "v3 sharded zstd": {"shards": SHARDS, "compressor": "zstd:3"},
}

REGIONS = [
    (slice(1, 9), slice(5, 40), slice(7, 50)),  # unaligned, inside
    (Ellipsis, slice(3, 20)),
    (slice(-3, None),),
    (slice(10, 11), slice(40, 45), slice(48, 53)),  # the last, partial chunk only
    (slice(2, 2),),  # empty
    (slice(4, 8), slice(0, 16), slice(0, 32)),  # exactly one shard
]


def _data() -> np.ndarray:
    base = testing.blobs(SHAPE[1:], seed=3, n=6, dtype="uint16")
    data = np.stack([np.roll(base, 5 * z, axis=1) for z in range(SHAPE[0])])
    data[6:8, 16:32, 32:48] = 0  # a chunk equal to the fill value: absent
    return data


def _write(path: Path, kind: str) -> Path:
    return testing.write_array(path, _data(), chunks=CHUNKS, **STORES[kind])


class _Ran(Callback):  # type: ignore[misc]
    """The functions of the tasks a local scheduler ran."""

    def __init__(self) -> None:
        super().__init__()
        self.funcs: list[Any] = []

    def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
        self.funcs.append(getattr(dsk[key], "func", None))

    @property
    def filled(self) -> bool:
        """Whether the one-array read ran (and no block read of dask's)."""
        return _read_whole in self.funcs and getter not in self.funcs


def _plain(level: Any) -> da.Array:
    """The same level as a plain dask array: the block-by-block graph."""
    return da.Array(level.dask, level.name, level.chunks, meta=level._meta)


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, np.ndarray]:
    path = _write(tmp_path / "a.zarr", request.param)
    return path, zarr.open_array(str(path), mode="r")[...]


@pytest.mark.parametrize("block_bytes", [1, pyramid.MIN_BLOCK_BYTES])
def test_whole_level_is_exact_and_filled_in_place(store, block_bytes) -> None:
    path, want = store
    (level,) = pyramid.open_pyramid(str(path), block_bytes=block_bytes)
    assert isinstance(level, LevelArray) and isinstance(level, da.Array)
    if block_bytes == 1:
        assert math_prod(level.numblocks) > 1
    with _Ran() as ran:
        got = level.compute()
    assert ran.filled
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert got.base is None and got.flags.writeable and got.flags.c_contiguous
    with _Ran() as ran:
        np.testing.assert_array_equal(np.asarray(level), want)
        (again,) = dask.compute(level)
    assert ran.filled
    np.testing.assert_array_equal(again, want)


def math_prod(values: Any) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


@pytest.mark.parametrize("region", REGIONS, ids=[repr(r)[:40] for r in REGIONS])
def test_regions_are_exact_and_filled_in_place(store, region) -> None:
    path, want = store
    (level,) = pyramid.open_pyramid(str(path), block_bytes=1)
    part = level[region]
    assert isinstance(part, LevelArray)
    assert part.chunks == _plain(level)[region].chunks  # the blocks dask would make
    with _Ran() as ran:
        got = part.compute()
    assert ran.filled
    np.testing.assert_array_equal(got, want[region])
    # a region of a region
    inner = part[1:, 2:]
    np.testing.assert_array_equal(inner.compute(), want[region][1:, 2:])


@pytest.mark.parametrize(
    ("shape", "chunks"), [((), "auto"), ((37,), (5,)), ((0, 4), (1, 4)), ((5, 0), (2, 2))]
)
def test_zero_one_dimensional_and_empty_levels(tmp_path: Path, shape: Any, chunks: Any) -> None:
    path = tmp_path / "e.zarr"
    arr = zarr.create_array(str(path), shape=shape, chunks=chunks, dtype="int32", fill_value=3)
    if 0 not in shape:
        arr[...] = np.arange(math_prod(shape), dtype="int32").reshape(shape) - 5
    (level,) = pyramid.open_pyramid(str(path), block_bytes=1)
    got = level.compute()
    assert isinstance(got, np.ndarray) and got.shape == shape
    np.testing.assert_array_equal(got, arr[...])
    if shape and shape[0] > 2:
        np.testing.assert_array_equal(level[3:30].compute(), arr[3:30])


def test_everything_else_is_dask_as_before(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.zarr", "v3 sharded zstd")
    want = zarr.open_array(str(path), mode="r")[...]
    (level,) = pyramid.open_pyramid(str(path), block_bytes=1)
    derived = {
        "arithmetic": (level + 1, want + 1),
        "strided": (level[::2, 3], want[::2, 3]),
        "fancy": (level[[0, 5, 2]], want[[0, 5, 2]]),
        "map_blocks": (level.map_blocks(lambda b: b * 2), want * 2),
        "sum": (level.sum(axis=0), want.sum(axis=0)),
    }
    for name, (lazy, value) in derived.items():
        assert not isinstance(lazy, LevelArray), name
        with _Ran() as ran:
            np.testing.assert_array_equal(lazy.compute(), value, err_msg=name)
        assert not ran.filled, name
    # each compute has an array of its own (dask gives the same one twice in one compute)
    a, b = dask.compute(level, level)
    np.testing.assert_array_equal(a, want)
    np.testing.assert_array_equal(b, want)
    assert not np.shares_memory(a, level.compute())
    # computed with another collection: still exact
    c, d = dask.compute(level, level[2:5] * 3)
    np.testing.assert_array_equal(c, want)
    np.testing.assert_array_equal(d, want[2:5] * 3)
    # persist, blocks as delayed objects, pickling
    with _Ran() as ran:
        persisted = level.persist()
    assert ran.filled
    np.testing.assert_array_equal(persisted.compute(), want)
    np.testing.assert_array_equal(
        persisted.blocks[1].compute(), want[persisted.chunks[0][0] :][: persisted.chunks[0][1]]
    )
    with _Ran() as ran:
        first = level.to_delayed().ravel()[0].compute()
    assert not ran.filled
    np.testing.assert_array_equal(first, want[tuple(slice(0, c[0]) for c in level.chunks)])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(level)).compute(), want)


def test_results_kept_by_a_dask_cache_are_not_shared(tmp_path: Path) -> None:
    pytest.importorskip("cachey")
    from dask.cache import Cache

    path = _write(tmp_path / "a.zarr", "v3 sharded zstd")
    want = zarr.open_array(str(path), mode="r")[...]
    (level,) = pyramid.open_pyramid(str(path), block_bytes=1)
    with Cache(1 << 30):  # what napari keeps while it slices: task results, by key
        first = level.compute()
        first[...] = 0  # the caller owns its result
        second = level.compute()
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(second, want)


def _traced_peak(func: Any) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_about_the_result(tmp_path: Path) -> None:
    data = testing.blobs((16, 256, 256), dtype="uint16")  # 2 MiB in 16 shards (16 blocks)
    path = testing.write_array(
        tmp_path / "m.zarr", data, chunks=(1, 64, 64), shards=(4, 128, 128), compressor="zstd:3"
    )
    (level,) = pyramid.open_pyramid(str(path), block_bytes=1)
    assert math_prod(level.numblocks) == 16
    level.compute()  # imports and thread pools outside the measure
    with dask.config.set(scheduler="sync"):
        ours = _traced_peak(level.compute)
        before = _traced_peak(_plain(level).compute)
    # the block-by-block graph holds the blocks and their joined copy: about 2x the result
    assert before > 1.8 * data.nbytes
    assert ours < 1.3 * data.nbytes


def _damage_inner_chunk(path: Path, how: str) -> None:
    """Overwrite inner chunk (0, 0, 1) of shard (1, 0, 1) of a sharded array."""
    shard = path / "c" / "1" / "0" / "1"
    raw = bytearray(shard.read_bytes())
    n = 2 * 2 * 2
    index = np.frombuffer(bytes(raw[-(16 * n + 4) : -4]), dtype="<u8").reshape(n, 2)
    off, size = (int(v) for v in index[1])
    raw[off : off + size] = b"\xff" * size if how == "garbage" else bytes(size)
    shard.write_bytes(bytes(raw))


def _outcome(level: Any) -> tuple[Any, ...]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            value: Any = level.compute()
        except Exception as exc:  # compared below, type and message
            value = (type(exc), str(exc))
    notes = sorted(str(w.message) for w in seen if issubclass(w.category, ExplorerWarning))
    return value, notes


@pytest.mark.parametrize("how", ["garbage", "zeros"])
@pytest.mark.parametrize("kind", ["v3 sharded zstd", "v3 sharded blosc"])
def test_damaged_chunk_as_before(tmp_path: Path, how: str, kind: str) -> None:
    path = _write(tmp_path / "a.zarr", kind)
    _damage_inner_chunk(path, how)
    outcomes = []
    for filled in (True, False):
        (level,) = pyramid.open_pyramid(str(path), block_bytes=1)  # a fresh reader each time
        with _Ran() as ran:
            outcomes.append(_outcome(level if filled else _plain(level)))
        assert ran.filled is filled
    (ours, ours_notes), (before, before_notes) = outcomes
    assert ours_notes == before_notes and len(ours_notes) == 1
    assert "c/1/0/1" in ours_notes[0]
    if isinstance(before, tuple):
        assert ours == before
    else:
        np.testing.assert_array_equal(ours, before)


def test_damaged_v2_chunk_as_before(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.zarr", "v2 blosc")
    (path / "2.1.1").write_bytes(b"\x02\x01\x21\x02" + b"\xff" * 40)
    (level,) = pyramid.open_pyramid(str(path), block_bytes=1)
    ours = _outcome(level)
    (level,) = pyramid.open_pyramid(str(path), block_bytes=1)
    before = _outcome(_plain(level))
    np.testing.assert_array_equal(ours[0], before[0])
    assert ours[1] == before[1] and len(ours[1]) == 1 and "2.1.1" in ours[1][0]


def test_the_decoded_size_limit_raises_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "a.zarr", "v3 sharded zstd")
    (level,) = pyramid.open_pyramid(str(path))  # one block
    one_shard = 8 * (2 * 8 * 16) * 2  # 8 inner chunks of uint16
    monkeypatch.setenv(pyramid.LIMIT_ENV, str(one_shard))
    with pytest.raises(LimitError) as ours:
        level.compute()
    with pytest.raises(LimitError) as before:
        _plain(level).compute()
    assert str(ours.value) == str(before.value)
    # blocks within the limit are read in reads within it
    (small,) = pyramid.open_pyramid(str(path), block_bytes=1)
    np.testing.assert_array_equal(small.compute(), zarr.open_array(str(path), mode="r")[...])


@pytest.mark.parametrize("kind", ["v2 blosc", "v3 sharded zstd"])
def test_remote_level_is_exact_and_filled_in_place(http_server: Any, kind: str) -> None:
    path = _write(http_server.root / "a.zarr", kind)
    want = zarr.open_array(str(path), mode="r")[...]
    (level,) = pyramid.open_pyramid(f"{http_server.url}/a.zarr", block_bytes=1)
    with _Ran() as ran:
        np.testing.assert_array_equal(level.compute(), want)
        np.testing.assert_array_equal(level[1:9, 5:40].compute(), want[1:9, 5:40])
    assert ran.filled


distributed = pytest.importorskip("distributed")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["v2 blosc", "v3 sharded zstd"])
def test_distributed_cluster(tmp_path: Path, cluster: Any, kind: str) -> None:
    path = _write(tmp_path / "a.zarr", kind)
    want = zarr.open_array(str(path), mode="r")[...]
    (level,) = pyramid.open_pyramid(str(path), block_bytes=1)
    with distributed.Client(cluster) as client:
        np.testing.assert_array_equal(level.compute(), want)
        np.testing.assert_array_equal(client.compute(level).result(), want)
        np.testing.assert_array_equal(level[1:9, 5:40].compute(), want[1:9, 5:40])
        np.testing.assert_array_equal((level + 1).sum(axis=0).compute(), (want + 1).sum(axis=0))
        workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2
