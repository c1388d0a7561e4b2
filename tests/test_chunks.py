"""Chunk maps: listing-based states and bytes, shard indexes, verification, geometry."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore, MemoryStore, WrapperStore

from napari_zarr_explorer import chunk_map
from napari_zarr_explorer.chunks import (
    CORRUPT,
    MISSING,
    PARTIAL,
    PRESENT,
    UNKNOWN,
    ChunkMap,
    aggregate,
    decode_shard_index,
    list_stored,
    parse_chunk_keys,
)
from napari_zarr_explorer.codecs import CodecInfo
from napari_zarr_explorer.errors import ExplorerError, MetadataError
from napari_zarr_explorer.testing import write_array, write_ome_image


class CountingStore(WrapperStore[Any]):
    """A real store that records every read (key and byte range)."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.reads: list[tuple[str, Any]] = []

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        self.reads.append((key, byte_range))
        return await self._store.get(key, prototype, byte_range)


class UnlistableStore(WrapperStore[Any]):
    """A local store that cannot list, like an HTTP server."""

    @property
    def supports_listing(self) -> bool:
        return False


def _half_filled(shape=(40, 50)) -> np.ndarray:
    """Values in the top half only: the bottom-half chunks hold only the fill value (0)."""
    data = np.zeros(shape, dtype="uint16")
    data[: shape[0] // 2] = np.arange(shape[0] // 2 * shape[1]).reshape(shape[0] // 2, -1) + 1
    return data


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


@pytest.mark.parametrize("separator", [".", "/"], ids=["dot", "slash"])
def test_missing_chunks_from_listing(tmp_path, zarr_format, separator):
    store = write_array(
        tmp_path / "a.zarr",
        _half_filled(),
        zarr_format=zarr_format,
        chunks=(10, 10),
        separator=separator,
        fill_value=0,
    )
    cmap = chunk_map(store)
    assert cmap.grid_shape == (4, 5)
    assert cmap.chunk_shape == (10, 10)
    assert cmap.shard_shape is None
    assert cmap.chunks_total == 20
    assert cmap.chunks_present == 10
    assert cmap.chunks_missing == 10
    assert cmap.chunks_corrupt == 0
    assert (cmap.state[:2] == PRESENT).all() and (cmap.state[2:] == MISSING).all()
    assert (cmap.nbytes[:2] > 0).all() and (cmap.nbytes[2:] == 0).all()
    assert cmap.bytes_stored == int(cmap.nbytes.sum())
    assert cmap.logical_bytes == 40 * 50 * 2
    assert not cmap.verified and cmap.listed
    key = cmap.key_for((1, 2))
    if zarr_format == 2:
        assert key == f"1{separator}2"
    else:
        assert key == f"c{separator}1{separator}2"
    assert cmap.stray_keys == ()
    json.dumps(cmap.to_dict(), allow_nan=False)


def test_corrupt_chunks_found_by_verify(tmp_path, zarr_format):
    store = write_array(
        tmp_path / "a.zarr", _half_filled(), zarr_format=zarr_format, chunks=(10, 10), fill_value=0
    )
    bad_key = "0.1" if zarr_format == 2 else "c/0/1"
    _truncate(store / bad_key)
    listing_only = chunk_map(store)
    assert listing_only.chunks_corrupt == 0  # nothing decoded
    done: list[tuple[int, int, str]] = []
    cmap = chunk_map(store, verify=True, progress=lambda d, t, m: done.append((d, t, m)))
    assert cmap.verified
    assert cmap.corrupt_keys == (bad_key,)
    assert cmap.state[0, 1] == CORRUPT
    assert cmap.chunks_corrupt == 1
    assert cmap.chunks_present == 9
    assert bad_key in cmap.problems[bad_key]
    assert done and done[-1][0] == done[-1][1] == 10
    d = cmap.to_dict()
    assert d["chunks_corrupt"] == [bad_key]
    assert "corrupt" in str(cmap)


def test_sharded_partial_occupancy_from_index_only(tmp_path):
    data = np.zeros((40, 40), dtype="uint16")
    data[0:5, 0:5] = 1  # one inner chunk of shard (0, 0)
    data[0:5, 10:20] = 2  # two inner chunks of shard (0, 1)
    data[30:40, 30:40] = 3  # the whole shard (3, 3)
    path = write_array(
        tmp_path / "s.zarr", data, chunks=(5, 5), shards=(10, 10), fill_value=0, compressor="zstd"
    )
    store = CountingStore(LocalStore(path, read_only=True))
    cmap = chunk_map(store)
    assert cmap.shard_shape == (10, 10)
    assert cmap.chunk_shape == (5, 5)
    assert cmap.grid_shape == (8, 8)
    assert cmap.shard_grid_shape == (4, 4)
    assert cmap.shards_total == 16
    assert cmap.shards_present == 3
    assert cmap.chunks_present == 1 + 2 + 4
    expected = np.zeros((8, 8), dtype=bool)
    expected[0, 0] = True
    expected[0, 2:4] = True
    expected[6:8, 6:8] = True
    assert ((cmap.state == PRESENT) == expected).all()
    assert (cmap.nbytes[expected] > 0).all()
    assert cmap.key_for((0, 3)) == "c/0/1"
    # Only the index (16 bytes per inner chunk + 4 checksum bytes) was read from each shard.
    shard_reads = [(k, r) for k, r in store.reads if "/c/" in f"/{k}"]
    assert len(shard_reads) == 3
    for _, byte_range in shard_reads:
        assert byte_range is not None
        assert byte_range.suffix == 4 * 16 + 4
    # Inner sizes plus indexes add up to the shard sizes.
    assert cmap.shard_nbytes is not None
    assert int(cmap.shard_nbytes.sum()) == int(cmap.nbytes.sum()) + 3 * (4 * 16 + 4)


def test_sharded_index_at_start(tmp_path):
    path = tmp_path / "s.zarr"
    arr = zarr.create_array(
        LocalStore(path),
        shape=(20, 20),
        chunks=(5, 5),
        shards=(10, 10),
        dtype="uint8",
        fill_value=0,
    )
    # rewrite the metadata with index_location "start" before writing data
    meta = json.loads((path / "zarr.json").read_text())
    meta["codecs"][0]["configuration"]["index_location"] = "start"
    (path / "zarr.json").write_text(json.dumps(meta))
    arr = zarr.open_array(LocalStore(path), mode="r+")
    arr[0:5, 0:5] = 7
    cmap = chunk_map(path)
    assert cmap.chunks_present == 1
    assert cmap.state[0, 0] == PRESENT


def test_truncated_shard_is_corrupt_without_verify(tmp_path):
    data = np.arange(40 * 40, dtype="uint16").reshape(40, 40)
    path = write_array(tmp_path / "s.zarr", data, chunks=(5, 5), shards=(20, 20))
    _truncate(path / "c" / "1" / "0")
    cmap = chunk_map(path)
    assert cmap.corrupt_keys == ("c/1/0",)
    assert (cmap.state[4:8, 0:4] == CORRUPT).all()
    assert cmap.chunks_present == 64 - 16
    assert "checksum" in cmap.problems["c/1/0"] or "truncated" in cmap.problems["c/1/0"]


def test_sharded_verify_names_inner_chunk(tmp_path):
    data = np.arange(20 * 20, dtype="uint16").reshape(20, 20)
    path = write_array(tmp_path / "s.zarr", data, chunks=(5, 5), shards=(10, 10))
    # damage the bytes of an inner chunk but keep the index intact
    shard = path / "c" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[0:8] = b"\xff" * 8
    shard.write_bytes(bytes(raw))
    cmap = chunk_map(path, verify=True)
    assert cmap.corrupt_keys == ("c/0/0",)
    assert cmap.chunks_corrupt == 1 and cmap.state[0, 0] == CORRUPT
    assert cmap.chunks_present == 15
    assert "inner chunk [0, 0]" in cmap.problems["c/0/0"]


def test_unlistable_store_probes_keys(tmp_path, zarr_format):
    path = write_array(
        tmp_path / "a.zarr", _half_filled(), zarr_format=zarr_format, chunks=(10, 10), fill_value=0
    )
    cmap = chunk_map(UnlistableStore(LocalStore(path, read_only=True)))
    assert not cmap.listed
    assert cmap.chunks_present == 10 and cmap.chunks_missing == 10
    assert cmap.bytes_stored is not None and cmap.bytes_stored > 0


def test_multiscale_level(tmp_path):
    path = write_ome_image(tmp_path / "img.ome.zarr", shape=(2, 4, 64, 64), levels=2)
    level1 = chunk_map(path, level=1)
    assert level1.path == "1"
    assert level1.shape == (2, 4, 32, 32)
    assert chunk_map(path).path == "0"
    with pytest.raises(ExplorerError, match="level 5"):
        chunk_map(path, level=5)


def test_group_without_multiscales_is_refused(tmp_path):
    zarr.create_group(LocalStore(tmp_path / "g.zarr"))
    with pytest.raises(ExplorerError, match="group"):
        chunk_map(tmp_path / "g.zarr")


def test_million_chunks_listing():
    """10^6 chunk keys are parsed without reading any chunk."""
    store = MemoryStore()
    zarr.create_array(store, shape=(1000, 1000), chunks=(1, 1), dtype="uint8", fill_value=0)
    from zarr.core.buffer import default_buffer_prototype

    one = default_buffer_prototype().buffer.from_bytes(b"\x01\x02\x03")
    store._store_dict.update(
        {f"c/{i}/{j}": one for i in range(1000) for j in range(1000) if j % 2 == 0}
    )
    cmap = chunk_map(store)
    assert cmap.chunks_total == 1_000_000
    assert cmap.chunks_present == 500_000
    assert cmap.bytes_stored == 1_500_000
    assert (cmap.state[:, ::2] == PRESENT).all() and (cmap.state[:, 1::2] == MISSING).all()
    html = cmap._repr_html_()
    assert len(html) < 200_000  # aggregated picture, not a million cells
    blocks, factor = cmap.aggregated(100)
    assert blocks.shape == (100, 100) and factor == (10, 10)
    assert (blocks == PARTIAL).all()


def test_parse_chunk_keys_mixed_and_out_of_grid():
    keys = ["c/0/0", "c/1/2", "zarr.json", "c/9/9", "c/0", "junk", "c/0/x", "c/1/1"]
    flat, valid = parse_chunk_keys(keys, (2, 3), ("default", "/"))
    assert valid.tolist() == [True, True, False, False, False, False, False, True]
    assert flat[valid].tolist() == [0, 5, 4]
    flat, valid = parse_chunk_keys(["0.1", "1.0", ".zarray", "0/1"], (2, 2), ("v2", "."))
    assert valid.tolist() == [True, True, False, False]
    assert flat[valid].tolist() == [1, 2]
    flat, valid = parse_chunk_keys(["c", "zarr.json"], (), ("default", "/"))
    assert valid.tolist() == [True, False]


def test_zero_dimensional_array(tmp_path, zarr_format):
    path = write_array(tmp_path / "s.zarr", np.array(5, dtype="int32"), zarr_format=zarr_format)
    cmap = chunk_map(path)
    assert cmap.chunks_total == 1 and cmap.chunks_present == 1


def test_geometry_helpers(tmp_path):
    data = np.ones((3, 25, 30), dtype="uint8")
    data[1] = 0
    path = write_array(tmp_path / "a.zarr", data, chunks=(1, 10, 10), fill_value=0)
    cmap = chunk_map(path)
    assert cmap.grid_shape == (3, 3, 3)
    assert cmap.chunk_bounds((0, 2, 1)) == ((0, 20, 10), (1, 25, 20))
    assert cmap.chunk_at((2, 24.5, 3)) == (2, 2, 0)
    state, nbytes = cmap.plane((1, None, None))
    assert state.shape == (3, 3) and (state == MISSING).all() and (nbytes == 0).all()
    state, _ = cmap.plane((0, None, None))
    assert (state == PRESENT).all()
    state, _ = cmap.plane((None, 12, None))
    assert state.shape == (3, 3)
    assert cmap.projection().tolist() == [[PARTIAL] * 3] * 3
    with pytest.raises(ValueError):
        cmap.plane((None, None))


def test_aggregate_states():
    state = np.array([[1, 1, 0, 0], [1, 1, 0, 2], [3, 1, 1, 1], [1, 1, 1, 1]], dtype=np.uint8)
    blocks, factor = aggregate(state, 2)
    assert factor == (2, 2)
    assert blocks.tolist() == [[PRESENT, CORRUPT], [UNKNOWN, PRESENT]]
    blocks, factor = aggregate(np.zeros((5, 3), np.uint8), 2)
    assert factor == (3, 2) and blocks.shape == (2, 2) and (blocks == MISSING).all()


def test_decode_shard_index_checks():
    codecs = (CodecInfo("bytes", {"endian": "little"}, "array->bytes"), CodecInfo("crc32c"))
    raw = np.array([[0, 10], [2**64 - 1, 2**64 - 1]], dtype="<u8").tobytes()
    import crc32c

    good = raw + crc32c.crc32c(raw).to_bytes(4, "little")
    index = decode_shard_index(good, (2,), codecs, where="x")
    assert index.shape == (2, 2) and int(index[0, 1]) == 10
    with pytest.raises(MetadataError, match="checksum"):
        decode_shard_index(good[:-1] + b"\x00", (2,), codecs, where="x")
    with pytest.raises(MetadataError, match="bytes"):
        decode_shard_index(raw[:-8], (2,), codecs[:1], where="x")


def test_cancel_leaves_unknown(tmp_path):
    data = np.arange(40 * 40, dtype="uint16").reshape(40, 40)
    path = write_array(tmp_path / "s.zarr", data, chunks=(5, 5), shards=(10, 10))
    cancel = threading.Event()
    cancel.set()
    cmap = chunk_map(path, cancel=cancel)
    assert cmap.cancelled
    assert (cmap.state == UNKNOWN).all()


def test_list_stored_sizes(tmp_path):
    path = write_array(tmp_path / "a.zarr", np.arange(100, dtype="uint8"), chunks=(10,))
    listing = list_stored(LocalStore(path))
    assert listing is not None
    sizes = listing.as_dict()
    assert "zarr.json" in sizes and "c/0" in sizes
    assert sizes["zarr.json"] == (path / "zarr.json").stat().st_size
    assert list_stored(UnlistableStore(LocalStore(path))) is None


def test_repr_html_and_str(tmp_path):
    path = write_array(tmp_path / "a.zarr", _half_filled(), chunks=(10, 10), fill_value=0)
    cmap = chunk_map(path)
    assert isinstance(cmap, ChunkMap)
    html = cmap._repr_html_()
    assert "<svg" in html and "present" in html
    text = str(cmap)
    assert "10 present" in text and "10 missing" in text
