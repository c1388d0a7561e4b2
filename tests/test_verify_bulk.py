"""Bulk verification of sharded arrays: same states and keys as the chunk-by-chunk path.

Arrays are written by tensorstore (the writer of the benchmark's 10^6-chunk array) and by
zarr-python; damage is done to the stored bytes of inner chunks, keeping shard indexes valid.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import crc32c
import numpy as np
import pytest
import zstandard

from napari_zarr_explorer import chunk_map
from napari_zarr_explorer import chunks as chunks_mod
from napari_zarr_explorer.chunks import CORRUPT, PRESENT
from napari_zarr_explorer.codecs import CodecInfo
from napari_zarr_explorer.store import bulk_chunk_checker
from napari_zarr_explorer.store.exact import ExactSizeError
from napari_zarr_explorer.testing import tensorstore_sharded_spec, write_array
from scripts import printed_json, run_python

SHAPE = (200, 300)
INNER = (10, 10)
SHARD = (100, 100)
BOMB_BYTES = 256 << 20


def _tensorstore_array(
    path: Path, inner_codecs: list[dict[str, object]], shape: tuple[int, int] = SHAPE
) -> np.ndarray:
    ts = pytest.importorskip("tensorstore")
    rng = np.random.default_rng(3)
    data = rng.integers(0, 40, size=shape, dtype=np.uint8)
    data[:, 250:] = 0  # whole inner chunks equal to the fill value are not stored
    spec = tensorstore_sharded_spec(
        path, shape, dtype="uint8", chunks=INNER, shards=SHARD, codecs=inner_codecs
    )
    arr = ts.open(spec).result()
    arr[...] = data
    return data


ZSTD = [{"name": "bytes"}, {"name": "zstd", "configuration": {"level": 1}}]
RAW = [{"name": "bytes"}]


def _read_shard(path: Path) -> tuple[list[bytes | None], int]:
    """The inner chunks of a shard (None when empty) and the number per shard."""
    raw = path.read_bytes()
    n = (SHARD[0] // INNER[0]) * (SHARD[1] // INNER[1])
    index = np.frombuffer(raw[-(n * 16 + 4) : -4], dtype="<u8").reshape(n, 2)
    out: list[bytes | None] = []
    for off, size in index.tolist():
        out.append(None if off == 2**64 - 1 else raw[off : off + size])
    return out, n


def _write_shard(path: Path, chunks: list[bytes | None], padding: int = 0) -> None:
    """Write a shard (index at the end, crc32c) holding *chunks*, then *padding* zero bytes."""
    body = bytearray()
    index = np.full((len(chunks), 2), 2**64 - 1, dtype="<u8")
    for i, c in enumerate(chunks):
        if c is not None:
            index[i] = (len(body), len(c))
            body += c
    body += bytes(padding)
    idx = index.tobytes()
    path.write_bytes(bytes(body) + idx + crc32c.crc32c(idx).to_bytes(4, "little"))


def _bomb_frame() -> bytes:
    """A valid zstd frame of zeros declaring (and holding) 256 MiB, built without 256 MiB."""
    out = zstandard.ZstdCompressor(level=1).compressobj(size=BOMB_BYTES)
    parts = [out.compress(bytes(1 << 20)) for _ in range(BOMB_BYTES >> 20)]
    return b"".join(parts) + out.flush()


def _edit_shard(
    shard: Path, edits: dict[int, Callable[[bytes], bytes]], padding: int = 0
) -> list[bytes | None]:
    """Replace inner chunks of *shard* (each stored) by what *edits* makes of them; append
    *padding* unreferenced bytes. Returns the inner chunks it had."""
    chunks, _ = _read_shard(shard)
    before = list(chunks)
    for i, edit in edits.items():
        old = chunks[i]
        assert old is not None, f"inner chunk {i} is not stored"
        chunks[i] = edit(old)
    _write_shard(shard, chunks, padding=padding)
    return before


def _same_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The verified chunk map of *path* with the bulk decoder, once found the same without."""
    fast = chunk_map(path, verify=True)
    with monkeypatch.context() as m:
        m.setattr(chunks_mod, "_BULK_DECODE", False)
        plain = chunk_map(path, verify=True)
    assert np.array_equal(fast.state, plain.state)
    assert fast.corrupt_keys == plain.corrupt_keys
    assert set(fast.problems) == set(plain.problems)
    assert fast.verified and plain.verified
    return fast


@pytest.mark.parametrize("codecs", [ZSTD, RAW], ids=["zstd", "raw"])
def test_bulk_verify_of_intact_array_matches_plain(tmp_path, monkeypatch, codecs):
    data = _tensorstore_array(tmp_path / "a.zarr", codecs)
    fast = _same_both_ways(tmp_path / "a.zarr", monkeypatch)
    stored = np.array(
        [
            [bool(data[i : i + 10, j : j + 10].any()) for j in range(0, SHAPE[1], 10)]
            for i in range(0, SHAPE[0], 10)
        ]
    )
    assert fast.chunks_present == int(stored.sum()) == 20 * 25
    assert fast.chunks_corrupt == 0


@pytest.mark.parametrize("codecs", [ZSTD, RAW], ids=["zstd", "raw"])
def test_bulk_verify_finds_the_same_corrupt_inner_chunks(tmp_path, monkeypatch, codecs):
    path = tmp_path / "a.zarr"
    _tensorstore_array(path, codecs)
    bad_chunk = b"\x28\xb5\x2f\xfd garbage" if codecs is ZSTD else b"short"
    _edit_shard(path / "c" / "1" / "2", {3: lambda _: bad_chunk, 52: lambda c: c[:-5]})
    fast = _same_both_ways(path, monkeypatch)
    assert fast.corrupt_keys == ("c/1/2",)
    bad = np.argwhere(fast.state == CORRUPT).tolist()
    assert bad == [[10, 23], [15, 22]]
    assert fast.chunks_present == 20 * 25 - 2


def test_bulk_verify_of_zarr_python_shards_matches_plain(tmp_path, monkeypatch):
    data = np.arange(40 * 40, dtype="uint16").reshape(40, 40)
    path = write_array(tmp_path / "s.zarr", data, chunks=(5, 5), shards=(20, 20))
    fast = _same_both_ways(path, monkeypatch)
    assert fast.chunks_present == 64


def test_bulk_verify_of_edge_shards_matches_plain(tmp_path, monkeypatch):
    # partial shards at the edges, a missing shard, and inner chunks damaged in an edge shard
    path = tmp_path / "a.zarr"
    _tensorstore_array(path, ZSTD, shape=(205, 243))
    (path / "c" / "0" / "1").unlink()
    chunks = _edit_shard(path / "c" / "2" / "2", {1: lambda _: b"\x28\xb5\x2f\xfd\x00"})
    assert chunks[0] is not None and chunks[10] is None  # row 21 lies outside the array
    fast = _same_both_ways(path, monkeypatch)
    assert fast.state.shape == (21, 25)
    assert np.argwhere(fast.state == CORRUPT).tolist() == [[20, 21]]
    assert fast.chunks_present == 21 * 25 - 100 - 1


def test_oversized_shard_is_verified_by_the_plain_path(tmp_path, monkeypatch):
    # 3 MB of unreferenced bytes: more than a shard of 10 kB is read whole for the bulk decode
    path = tmp_path / "a.zarr"
    _tensorstore_array(path, ZSTD)
    _edit_shard(path / "c" / "0" / "0", {7: lambda _: b"\x28\xb5\x2f\xfd\x00"}, padding=3 << 20)
    fast = _same_both_ways(path, monkeypatch)
    assert np.argwhere(fast.state == CORRUPT).tolist() == [[0, 7]]


@pytest.mark.parametrize("tail", ["garbage", "frame"])
def test_bulk_verify_refuses_data_after_an_inner_frame(tmp_path, monkeypatch, tail):
    # The batch decoder stops at the end of each frame: what follows it in the inner chunk
    # (bytes that are not a frame, or a second frame of more content) was not looked at, so
    # the bulk check passed inner chunks that reading them refuses.
    path = tmp_path / "a.zarr"
    _tensorstore_array(path, ZSTD)
    extra = b"not zstd" if tail == "garbage" else zstandard.ZstdCompressor().compress(bytes(7))
    _edit_shard(path / "c" / "1" / "1", {5: lambda c: c + extra, 40: lambda c: c + extra})
    fast = _same_both_ways(path, monkeypatch)
    assert fast.corrupt_keys == ("c/1/1",)
    bad = np.argwhere(fast.state == CORRUPT).tolist()
    assert bad == [[10, 15], [14, 10]]


def test_bulk_checker_refuses_data_after_a_frame():
    good = zstandard.ZstdCompressor().compress(bytes(100))
    check = bulk_chunk_checker(
        [CodecInfo("bytes", {}, "array->bytes"), CodecInfo("zstd", {}, "bytes->bytes")], 100
    )
    assert check is not None
    check(good, np.array([[0, len(good)]], dtype=np.uint64))
    data = good + b"\x00"
    with pytest.raises(ExactSizeError, match="does not end where its chunk ends"):
        check(data, np.array([[0, len(data)]], dtype=np.uint64))


def test_bulk_checker_refuses_a_frame_declaring_more_than_the_chunk():
    bomb = _bomb_frame()
    assert zstandard.frame_content_size(bomb) == BOMB_BYTES
    good = zstandard.ZstdCompressor().compress(bytes(100))
    check = bulk_chunk_checker(
        [CodecInfo("bytes", {}, "array->bytes"), CodecInfo("zstd", {}, "bytes->bytes")], 100
    )
    assert check is not None
    data = good + bomb
    check(data, np.array([[0, len(good)]], dtype=np.uint64))  # the good frame alone passes
    # refused from its header by the exact-size rules, before the batch decodes anything
    with pytest.raises(ExactSizeError, match="declaring another size"):
        check(data, np.array([[0, len(good)], [len(good), len(bomb)]], dtype=np.uint64))


_RSS_SCRIPT = """
import json, resource, sys
from napari_zarr_explorer import chunk_map
cmap = chunk_map(sys.argv[1])  # imports and index reads, without decoding
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cmap = chunk_map(sys.argv[1], verify=True)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_kb": after - before, "corrupt": cmap.corrupt_keys,
                  "bad": [list(map(int, i)) for i in (cmap.state == 2).nonzero()]}))
"""


def test_bomb_inner_chunk_is_reported_without_allocating_it(tmp_path):
    path = tmp_path / "a.zarr"
    _tensorstore_array(path, ZSTD)
    shard = path / "c" / "0" / "1"
    chunks, _ = _read_shard(shard)
    chunks[11] = _bomb_frame()
    _write_shard(shard, chunks)
    result = printed_json(run_python(_RSS_SCRIPT, str(path)))
    assert result["corrupt"] == ["c/0/1"]
    assert result["bad"] == [[1], [11]]
    # the frame declares 256 MiB: peak memory grew by far less than that
    assert result["grew_kb"] < 64 * 1024


def test_present_states_come_from_the_index(tmp_path, monkeypatch):
    path = tmp_path / "a.zarr"
    _tensorstore_array(path, ZSTD)
    fast = _same_both_ways(path, monkeypatch)
    assert (fast.state[:, :25] == PRESENT).all()
