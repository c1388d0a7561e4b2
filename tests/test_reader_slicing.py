"""Views read only the stored chunks under them, the way napari slices layer data.

napari slices a multiscale level in two steps (the displayed region, then the plane) and reads the
result with ``numpy.asarray``, inside the context ``configure_dask`` returns (dask task fusion off,
napari's dask cache on) when slicing asynchronously, with dask's defaults otherwise. Reads are
counted with a store wrapper that logs every ``get`` (local stores) or with the loopback HTTP
server's request log (remote stores), for Zarr v2, v3 and sharded v3. zarr after 3.1 asks for
the inner chunks of a shard in one ``get_ranges`` call and may merge nearby ones into one fetch:
the wrapper logs what was asked (one range per inner chunk, as zarr 3.1 asks for them one by
one) and, separately, what was fetched.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
from zarr.abc.store import RangeByteRequest, SuffixByteRequest

from counting import CountingStore
from napari_zarr_explorer import pyramid, testing
from napari_zarr_explorer.errors import ExplorerWarning, LimitError
from napari_zarr_explorer.layers import open_layers
from napari_zarr_explorer.store import open_array, open_store, parse_location

CHUNK = 64
SHAPE = (4, 256, 256)  # z, y, x
LAYOUTS = ["v2", "v3", "sharded"]
METADATA = {".zarray", ".zattrs", ".zgroup", "zarr.json", ".zmetadata"}
# a tile that is not aligned to the chunks: y 70..129 (chunks 1, 2), x 10..139 (chunks 0, 1, 2)
TILE = (slice(70, 130), slice(10, 140))


def _write(path: Path, layout: str) -> Path:
    return testing.write_ome_image(
        path,
        version="0.4" if layout == "v2" else "0.5",
        shape=SHAPE,
        axes="zyx",
        levels=2,
        chunks=(1, CHUNK, CHUNK),
        shards=(2, 2 * CHUNK, 2 * CHUNK) if layout == "sharded" else None,
    )


@pytest.fixture(params=LAYOUTS)
def image(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    return request.param, _write(tmp_path / f"{request.param}.ome.zarr", request.param)


def _chunks_under(z: int, tile: tuple[slice, slice]) -> set[tuple[int, int, int]]:
    ys = range(tile[0].start // CHUNK, -(-tile[0].stop // CHUNK))
    xs = range(tile[1].start // CHUNK, -(-tile[1].stop // CHUNK))
    return {(z, y, x) for y, x in itertools.product(ys, xs)}


def _expected_keys(arr: Any, coords: set[tuple[int, int, int]], sharded: bool) -> set[str]:
    per = (2, 2, 2) if sharded else (1, 1, 1)
    return {
        "0/" + arr.metadata.encode_chunk_key(tuple(c // p for c, p in zip(cc, per, strict=True)))
        for cc in coords
    }


def _napari_read(level: Any, z: int, tile: tuple[slice, slice]) -> np.ndarray:
    """Read a tile the way napari's slice request does, inside napari's dask context."""
    from napari.utils._dask_utils import configure_dask

    with configure_dask(level)():
        return np.asarray(level[(slice(None), *tile)][z])


def _check_reads(
    reads: list[tuple[str, Any]], arr: Any, coords: set[tuple[int, int, int]], sharded: bool
) -> None:
    """Every data read of level 0 is a chunk (or inner chunk) under the tile, each read once."""
    data = [(k, r) for k, r in reads if k.startswith("0/") and k.rpartition("/")[2] not in METADATA]
    expected = _expected_keys(arr, coords, sharded)
    if not sharded:
        assert sorted(k for k, _ in data) == sorted(expected)
        assert all(r is None for _, r in data)
        return
    assert all(r is not None for _, r in data), "a whole shard was read for a small view"
    index = [k for k, r in data if r == "index"]
    inner = [k for k, r in data if r == "chunk"]
    assert len(inner) == len(coords)  # one range read per inner chunk under the tile
    assert set(inner) == expected
    assert set(index) <= expected and len(index) <= len(expected)


def _check_fetches(fetches: list[Any], arr: Any, coords: set[tuple[int, int, int]]) -> None:
    """A sharded read fetched byte ranges (never a whole shard) of the shards under the tile."""
    data = [f for f in fetches if f.key.startswith("0/") and f.key.split("/")[-1] not in METADATA]
    assert data, "nothing fetched"
    assert all(f.byte_range is not None for f in data), "a whole shard was fetched for a small view"
    assert {f.key for f in data} <= _expected_keys(arr, coords, sharded=True)


def _classify_local(r: Any) -> str | None:
    if r is None:
        return None
    if isinstance(r, SuffixByteRequest):
        return "index"
    assert isinstance(r, RangeByteRequest)
    return "chunk"


@contextlib.contextmanager
def _dask_config(kind: str) -> Iterator[None]:
    if kind == "napari":
        with dask.config.set({"optimization.fuse.active": False}):
            yield
    else:
        yield


@pytest.mark.parametrize("config", ["napari", "dask-defaults"])
def test_local_tile_reads_only_the_chunks_under_it(image, config: str) -> None:
    layout, path = image
    loc = parse_location(str(path))
    store = CountingStore(open_store(loc))
    arr = open_array(loc, "0", store=store)
    level = pyramid.as_level(arr, where=str(path), cache=pyramid.ChunkCache(1 << 30))
    expected_values = np.asarray(arr[:])
    store.clear_log()
    with _dask_config(config):
        tile = _napari_read(level, 2, TILE)
    np.testing.assert_array_equal(tile, expected_values[(2, *TILE)])
    reads = [(r.key, _classify_local(r.byte_range)) for r in store.reads]
    _check_reads(reads, arr, _chunks_under(2, TILE), layout == "sharded")
    if layout == "sharded":
        _check_fetches(store.fetches, arr, _chunks_under(2, TILE))

    # panning by one chunk reads only the chunks that come into view
    store.clear_log()
    moved = (slice(TILE[0].start, TILE[0].stop), slice(TILE[1].start + CHUNK, TILE[1].stop + CHUNK))
    tile = _napari_read(level, 2, moved)
    np.testing.assert_array_equal(tile, expected_values[(2, *moved)])
    new = _chunks_under(2, moved) - _chunks_under(2, TILE)
    reads = [(r.key, _classify_local(r.byte_range)) for r in store.reads]
    _check_reads(reads, arr, new, layout == "sharded")
    if layout == "sharded":
        _check_fetches(store.fetches, arr, new)

    # the same view again: nothing read
    store.clear_log()
    again = _napari_read(level, 2, moved)
    assert [r for r in store.reads if r.key.rpartition("/")[2] not in METADATA] == []
    assert [r for r in store.fetches if r.key.rpartition("/")[2] not in METADATA] == []
    # what is read may be shared with the cache, so nobody can change it by accident
    with pytest.raises(ValueError, match="read-only"):
        again[0, 0] = 1
    mine = np.array(level[2])  # an explicit copy is the caller's own
    mine[0, 0] = 1
    np.testing.assert_array_equal(_napari_read(level, 2, moved), expected_values[(2, *moved)])


def test_layers_are_lazy_arrays_napari_aligns_to_chunks(image) -> None:
    _, path = image
    ((data, kwargs, _),) = open_layers(str(path))
    assert kwargs["multiscale"] is True
    assert all(isinstance(level, pyramid.LazyArray) for level in data)
    assert data[0].chunks == (1, CHUNK, CHUNK)
    assert data[0].shape == SHAPE
    # Python users still get dask arrays
    import dask.array as da

    assert all(isinstance(level, da.Array) for level in pyramid.open_pyramid(str(path)))


def _http_reads(server: Any, name: str) -> list[tuple[str, Any]]:
    out = []
    for rec in server.requests:
        if rec.method != "GET" or not rec.path.startswith(name + "/"):
            continue
        key = rec.path[len(name) + 1 :]
        kind = None
        if rec.range is not None:
            kind = "index" if rec.range.startswith("bytes=-") else "chunk"
        out.append((key, kind))
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_remote_tile_reads_only_the_chunks_under_it(http_server, tmp_path: Path, layout) -> None:
    src = _write(tmp_path / "src.ome.zarr", layout)
    name = f"{layout}.ome.zarr"
    shutil.copytree(src, http_server.root / name)
    ((data, _, _),) = open_layers(f"{http_server.url}/{name}")
    level = data[0]
    assert isinstance(level, pyramid.LazyArray)
    values = np.asarray(open_array(parse_location(str(src)), "0")[:])
    http_server.clear_log()
    tile = _napari_read(level, 1, TILE)
    np.testing.assert_array_equal(tile, values[(1, *TILE)])
    reads = _http_reads(http_server, name)
    _check_reads(reads, level.reader.array, _chunks_under(1, TILE), layout == "sharded")
    assert all(r.status in (200, 206) for r in http_server.requests)


def test_napari_image_layer_slices_only_the_view(tmp_path: Path) -> None:
    """napari's own slice request (the asynchronous path, with ``configure_dask``)."""
    napari_layers = pytest.importorskip("napari.layers")
    from napari.components import Dims

    path = _write(tmp_path / "s.ome.zarr", "sharded")
    loc = parse_location(str(path))
    store = CountingStore(open_store(loc))
    cache = pyramid.ChunkCache(1 << 30)
    arrays = [open_array(loc, p, store=store) for p in ("0", "1")]
    levels = [pyramid.as_level(a, where=str(path), cache=cache) for a in arrays]
    layer = napari_layers.Image(levels, multiscale=True, contrast_limits=(0, 65535))
    store.clear_log()
    layer._data_level = 0
    layer.corner_pixels = np.array([[0, 64, 0], [0, 191, 63]])
    dims = Dims(ndim=3, ndisplay=2)
    dims.point = (3, 0, 0)
    response = layer._slicing_state._make_slice_request(dims)()
    assert response.image.raw.shape == (128, 64)
    reads = [(r.key, _classify_local(r.byte_range)) for r in store.reads]
    under = _chunks_under(3, (slice(64, 192), slice(0, 64)))
    _check_reads(reads, arrays[0], under, True)
    _check_fetches(store.fetches, arrays[0], under)


def test_damaged_chunk_in_view_is_fill_and_named_once(tmp_path: Path) -> None:
    values = testing.blobs((2, 128, 128), dtype="uint16")
    path = testing.write_array(tmp_path / "a.zarr", values, chunks=(1, 64, 64), fill_value=7)
    (path / "c" / "0" / "1" / "0").write_bytes(b"not a chunk")
    ((level, _, _),) = open_layers(str(path))
    with pytest.warns(ExplorerWarning, match=r"c/0/1/0") as seen:
        tile = _napari_read(level, 0, (slice(32, 96), slice(32, 96)))
    assert len([w for w in seen if issubclass(w.category, ExplorerWarning)]) == 1
    np.testing.assert_array_equal(tile[32:, :32], 7)  # the damaged chunk's part of the tile
    np.testing.assert_array_equal(tile[:32], values[0, 32:64, 32:96])
    # other views over the same chunk: no second warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(np.asarray(level[0, 64:128, 0:64]), 7)
        np.testing.assert_array_equal(np.asarray(level[1]), values[1])


def test_lazy_reads_keep_the_decode_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = testing.blobs((2, 128, 128), dtype="uint16")
    path = testing.write_array(tmp_path / "a.zarr", values, chunks=(1, 64, 64))
    ((level, _, _),) = open_layers(str(path))
    monkeypatch.setenv(pyramid.LIMIT_ENV, str(2 * 64 * 64 * 2))
    np.testing.assert_array_equal(np.asarray(level[0, :64, :128]), values[0, :64, :128])
    view = level[0]  # indexing reads nothing, so it never fails
    with pytest.raises(LimitError, match=pyramid.LIMIT_ENV):
        np.asarray(view)


def test_cache_stays_within_its_size(tmp_path: Path) -> None:
    values = testing.blobs((8, 128, 128), dtype="uint16")
    path = testing.write_array(tmp_path / "a.zarr", values, chunks=(1, 32, 32))
    arr = open_array(parse_location(str(path)))
    cache = pyramid.ChunkCache(10 * 32 * 32 * 2)  # ten chunks
    level = pyramid.as_level(arr, where="a", cache=cache)
    for z in range(8):
        np.testing.assert_array_equal(np.asarray(level[z, :64, :64]), values[z, :64, :64])
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 10  # the ten most recently read chunks
    # a read larger than half the cache goes around it
    np.testing.assert_array_equal(np.asarray(level[:]), values)
    assert cache.nbytes <= cache.max_bytes


def test_cache_size_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pyramid.CACHE_ENV, "64M")
    assert pyramid.cache_bytes() == 64 << 20
    monkeypatch.setenv(pyramid.CACHE_ENV, "0")
    assert pyramid.cache_bytes() == 0
    monkeypatch.delenv(pyramid.CACHE_ENV)
    assert 0 < pyramid.cache_bytes() <= pyramid.DEFAULT_CACHE_BYTES


def test_boxes_cover_exactly_the_missing_chunks() -> None:
    missing = [(0, y, x) for y in range(3) for x in range(4) if (y, x) != (1, 1)]
    boxes = pyramid._boxes(missing)
    covered = [
        p
        for lo, hi in boxes
        for p in itertools.product(*(range(a, b) for a, b in zip(lo, hi, strict=True)))
    ]
    assert sorted(covered) == sorted(missing)  # every one, none twice, nothing else
    assert len(boxes) <= 4


@pytest.fixture(scope="module")
def small_level(tmp_path_factory: pytest.TempPathFactory):
    values = np.arange(9 * 11 * 7, dtype="int16").reshape(9, 11, 7)
    path = tmp_path_factory.mktemp("h") / "a.zarr"
    testing.write_array(path, values, chunks=(2, 3, 4), shards=(4, 6, 4))
    arr = open_array(parse_location(path))
    return values, pyramid.as_level(arr, where="h", cache=pyramid.ChunkCache(1 << 20))


def _basic_index():
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

    return one


def test_views_of_views_match_numpy(small_level) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    values, level = small_level
    one = _basic_index()

    @settings(max_examples=80, deadline=None, derandomize=True)
    @given(st.tuples(one(9), one(11), one(7)), st.data())
    def check(first, data) -> None:
        expected = values[first]
        view = level[first]
        assert view.shape == expected.shape
        np.testing.assert_array_equal(np.asarray(view), expected)
        if expected.ndim:
            second = tuple(data.draw(one(max(n, 1))) for n in expected.shape if n)
            if len(second) == expected.ndim:
                np.testing.assert_array_equal(np.asarray(view[second]), expected[second])

    check()


@pytest.mark.parametrize(
    "index",
    [
        ([0, 3, 8], slice(None), 2),
        (1, [4, 0, 10], slice(1, 5)),
        (2, slice(None), [6, 0]),
        (np.array([True, False] * 4 + [True]), 0),
        (Ellipsis, [1, 1]),
    ],
    ids=repr,
)
def test_list_and_mask_indexes_match_numpy(small_level, index) -> None:
    values, level = small_level
    np.testing.assert_array_equal(level[index], values[index])


def test_bad_indexes_are_refused(small_level) -> None:
    _, level = small_level
    for bad in [(9,), (0, 0, 0, 0), (None,), ("x",), (..., ...), (0, 11)]:
        with pytest.raises(IndexError):
            np.asarray(level[bad])
