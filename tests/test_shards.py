"""Direct decoding of whole stored objects (store.shards): equal to zarr-python, and refusing
damaged shards (index checksum, offsets past the end, inner chunks decompressing too far)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.store import open_array, open_store, parse_location
from napari_zarr_explorer.store.decode import ChunkSizeError
from napari_zarr_explorer.store.read import read_bytes
from napari_zarr_explorer.store.shards import object_decoder


def _open(path: Path):
    loc = parse_location(str(path))
    store = open_store(loc)
    return open_array(loc, store=store), store


def _objects(arr) -> list[tuple[tuple[int, ...], str]]:
    outer = arr.shards or arr.chunks
    grid = [range(-(-n // o)) for n, o in zip(arr.shape, outer, strict=True)]
    return [(c, arr.metadata.encode_chunk_key(c)) for c in itertools.product(*grid)]


@pytest.mark.parametrize(
    ("shape", "chunks", "shards", "location"),
    [
        ((2, 70, 90), (1, 16, 16), (2, 32, 32), "end"),  # partial shards at the edges
        ((2, 40, 40), (1, 16, 16), (2, 64, 64), "start"),  # one shard larger than the array
        ((3, 50, 50), (1, 25, 25), None, "end"),  # not sharded: plain chunks
    ],
)
def test_objects_decode_as_zarr_reads_them(tmp_path: Path, shape, chunks, shards, location) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(1, 1000, size=shape, dtype="uint16")
    data[:, :16, :16] = 0  # an inner chunk left out (fill value)
    path = testing.write_array(
        tmp_path / "a.zarr", data, chunks=chunks, shards=shards, fill_value=0
    )
    if location == "start":  # the same data, written again with the index first
        import shutil

        doc = (path / "zarr.json").read_text()
        assert '"index_location": "end"' in doc
        (path / "zarr.json").write_text(doc.replace('"end"', '"start"'))
        shutil.rmtree(path / "c")
        zarr.open_array(str(path), mode="r+")[...] = data
    arr, store = _open(path)
    decode = object_decoder(arr)
    assert decode is not None
    outer = arr.shards or arr.chunks
    for coords, key in _objects(arr):
        raw = read_bytes(store, key)
        region = tuple(
            slice(c * o, min((c + 1) * o, n)) for c, o, n in zip(coords, outer, shape, strict=True)
        )
        if raw is None:
            assert not data[region].any()
            continue
        got = decode(raw, coords)
        want = data[region]
        np.testing.assert_array_equal(got[tuple(slice(0, s) for s in want.shape)], want)


def _sharded(tmp_path: Path):
    data = np.arange(2 * 32 * 32, dtype="uint16").reshape(2, 32, 32)
    path = testing.write_array(
        tmp_path / "a.zarr", data, chunks=(1, 16, 16), shards=(2, 32, 32), compressor="zstd:3"
    )
    arr, store = _open(path)
    raw = read_bytes(store, "c/0/0/0")
    assert raw is not None
    decode = object_decoder(arr)
    assert decode is not None
    return decode, raw


def test_shard_index_failing_its_checksum_is_refused(tmp_path: Path) -> None:
    decode, raw = _sharded(tmp_path)
    bad = bytearray(raw)
    bad[-10] ^= 0xFF  # inside the index
    with pytest.raises(ExplorerError, match="crc32c"):
        decode(bytes(bad), (0, 0, 0))


def test_shard_index_pointing_past_the_end_is_refused(tmp_path: Path) -> None:
    import crc32c

    decode, raw = _sharded(tmp_path)
    n = 8  # inner chunks of the shard
    index = np.frombuffer(raw[-(16 * n + 4) : -4], dtype="<u8").copy()
    index[0] = len(raw) + 100  # the first chunk's offset
    body = index.tobytes()
    bad = raw[: -(16 * n + 4)] + body + crc32c.crc32c(body).to_bytes(4, "little")
    with pytest.raises(ExplorerError, match="past the end"):
        decode(bad, (0, 0, 0))


def test_truncated_shard_is_refused(tmp_path: Path) -> None:
    decode, raw = _sharded(tmp_path)
    with pytest.raises(ExplorerError, match="cannot hold its index"):
        decode(raw[:20], (0, 0, 0))


def test_inner_chunk_decompressing_too_far_is_refused(tmp_path: Path) -> None:
    import crc32c
    import numcodecs

    decode, _ = _sharded(tmp_path)
    bomb = numcodecs.Zstd().encode(np.zeros(64 * 2**20, dtype="uint8"))  # 64 MiB for 512 bytes
    n = 8
    index = np.full((n, 2), 2**64 - 1, dtype="<u8")
    index[0] = (0, len(bomb))
    body = index.tobytes()
    shard = bytes(bomb) + body + crc32c.crc32c(body).to_bytes(4, "little")
    with pytest.raises(ChunkSizeError):
        decode(shard, (0, 0, 0))


def test_unusual_pipelines_are_left_to_zarr(tmp_path: Path) -> None:
    data = np.arange(64, dtype="float32").reshape(8, 8)
    path = testing.write_array(tmp_path / "a.zarr", data, chunks=(4, 4), compressor="zstd:3")
    arr, _ = _open(path)
    assert object_decoder(arr) is not None  # bytes + zstd: direct
    path2 = testing.write_array(tmp_path / "b.zarr", data, chunks=(4, 4), compressor="lzma")
    arr2, _ = _open(path2)
    assert object_decoder(arr2) is None  # lzma is not one of the direct codecs
