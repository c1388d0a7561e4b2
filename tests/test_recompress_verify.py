"""Verification of what recompress writes, and damaged sources named by key.

The verify pass reads every written object back from the store and compares its decoded values
with the source data; these tests damage what reaches the disk (between the encoder and the
read-back) and check that each kind of damage is reported, with the object's key.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.recompress import MARKER_KEY, _io, recompress
from napari_zarr_explorer.store import chunkio

#: Inner chunks per shard in these tests: shards (2, 64, 64) of chunks (1, 32, 32).
N_INNER = 8


def _image(shape: tuple[int, ...]) -> np.ndarray:
    return testing.blobs(shape, seed=5, dtype="uint16")


def _attrs(path: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(zarr.open(path, mode="r").attrs)


def _damage_writes(monkeypatch: pytest.MonkeyPatch, key: str, damage: Any) -> None:
    """Make the output object *key* reach the disk changed by *damage* (bytes -> bytes)."""
    real = _io.StoreWriter.set

    def damaged_set(self: _io.StoreWriter, k: str, data: Any, *, atomic: bool = False) -> None:
        if k == key:
            data = damage(data if isinstance(data, bytes) else b"".join(data))
        real(self, k, data, atomic=atomic)

    monkeypatch.setattr(_io.StoreWriter, "set", damaged_set)


def _flip(pos: int) -> Any:
    def damage(data: bytes) -> bytes:
        b = bytearray(data)
        b[pos] ^= 0x5A
        return bytes(b)

    return damage


def _second_frame_header(data: bytes) -> bytes:
    # Inner chunk 1 starts where chunk 0 ends (offsets from the index at the end of the shard).
    index = np.frombuffer(data[-(N_INNER * 16 + 4) : -4], dtype="<u8").reshape(N_INNER, 2)
    b = bytearray(data)
    off = int(index[1, 0])
    b[off + 20] ^= 0xFF  # inside the first block of inner chunk 1
    return bytes(b)


@pytest.mark.parametrize(
    ("damage", "expect"),
    [
        pytest.param(_second_frame_header, "c/1/0/0", id="inner-frame"),
        pytest.param(_flip(-3), "c/1/0/0", id="index-checksum"),
        pytest.param(lambda d: d[: len(d) // 2], "c/1/0/0", id="truncated"),
        pytest.param(
            lambda d: d[: -(N_INNER * 16 + 4)] + bytes(N_INNER * 16 + 4),
            "c/1/0/0",
            id="index-zeroed",
        ),
    ],
)
def test_verify_reports_damage_of_the_written_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: Any, expect: str
) -> None:
    data = _image((4, 64, 64))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    dst = tmp_path / "dst.zarr"
    _damage_writes(monkeypatch, "c/1/0/0", damage)
    report = recompress(src, dst, chunks=(1, 32, 32), shards=(2, 64, 64), compressor="zstd:3")
    assert not report.ok
    assert report.mismatches, str(report)
    assert all(expect in m for m in report.mismatches), report.mismatches
    assert _attrs(dst)[MARKER_KEY]["incomplete"] is True


def test_verify_reports_a_chunk_that_decodes_to_other_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid frame of the right size but other values (a swapped chunk) is caught."""
    import zstandard

    data = _image((2, 64, 64))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    dst = tmp_path / "dst.zarr"
    other = zstandard.ZstdCompressor(level=3).compress(np.zeros((1, 32, 32), "<u2").tobytes())

    def swap_first_chunk(shard: bytes) -> bytes:
        index = np.frombuffer(shard[-(N_INNER * 16 + 4) : -4], dtype="<u8").reshape(N_INNER, 2)
        index = index.astype(np.int64)
        first = int(index[0, 1])
        body = other + shard[first : int(index[-1].sum())]
        index[:, 0] += len(other) - first
        index[0] = (0, len(other))
        import crc32c

        idx = index.astype("<u8").tobytes()
        return body + idx + np.uint32(crc32c.crc32c(idx)).astype("<u4").tobytes()

    _damage_writes(monkeypatch, "c/0/0/0", swap_first_chunk)
    report = recompress(src, dst, chunks=(1, 32, 32), shards=(2, 64, 64), compressor="zstd:3")
    assert not report.ok
    # the root array is the store itself (not "/"), then the chunk's key in it
    assert report.mismatches == (
        f"{report.destination}: c/0/0/0 (inner chunk 0): decoded values differ from the source",
    )
    assert "/: " not in str(report)


def test_a_mismatch_names_the_array_then_its_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _image((2, 64, 64))
    src = testing.write_array(
        tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16), name="img"
    )
    dst = tmp_path / "dst.zarr"
    _damage_writes(monkeypatch, "img/c/1/0/0", lambda d: d[: len(d) // 2])
    report = recompress(src, dst, chunks=(1, 32, 32), shards=(1, 64, 64), compressor="zstd:3")
    assert not report.ok and report.mismatches
    for m in report.mismatches:
        assert m.startswith(f"{report.destination}/img: c/1/0/0"), report.mismatches


def test_verify_refuses_a_frame_declaring_more_than_its_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame that declares 256 MiB in a 2 KiB chunk is reported without being decoded."""
    import tracemalloc

    import zstandard

    data = _image((2, 64, 64))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    dst = tmp_path / "dst.zarr"
    cobj = zstandard.ZstdCompressor(level=1).compressobj(size=256 << 20)
    zeros = bytes(1 << 20)
    bomb = b"".join([*(cobj.compress(zeros) for _ in range(256)), cobj.flush()])

    def plant(shard: bytes) -> bytes:
        import crc32c

        index = (
            np.frombuffer(shard[-(N_INNER * 16 + 4) : -4], dtype="<u8").reshape(N_INNER, 2).copy()
        )
        body = shard[: int(index[-1].sum())] + bomb
        index[0] = (len(body) - len(bomb), len(bomb))
        idx = index.astype("<u8").tobytes()
        return body + idx + np.uint32(crc32c.crc32c(idx)).astype("<u4").tobytes()

    _damage_writes(monkeypatch, "c/0/0/0", plant)
    tracemalloc.start()
    try:
        report = recompress(
            src, dst, chunks=(1, 32, 32), shards=(2, 64, 64), compressor="zstd:3", threads=1
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not report.ok
    assert len(report.mismatches) == 1 and "c/0/0/0 (inner chunk 0)" in report.mismatches[0]
    assert peak < 64 << 20


def test_damaged_index_of_a_source_shard_names_the_shard(tmp_path: Path) -> None:
    data = _image((4, 32, 32))
    src = testing.write_array(
        tmp_path / "src.zarr", data, zarr_format=3, chunks=(1, 16, 16), shards=(2, 32, 32)
    )
    shard = src / "c" / "1" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF  # inside the index: its checksum no longer matches
    shard.write_bytes(bytes(raw))
    dst = tmp_path / "dst.zarr"
    with pytest.raises(ExplorerError) as info:
        recompress(src, dst, chunks=(1, 16, 16), shards=(2, 32, 32), threads=1)
    err = info.value
    assert "c/1/0/0" in err.message
    assert "index" in err.message
    assert "checksum" in err.message
    assert err.hint is not None and "chunks --verify" in err.hint
    assert "ValueError" not in str(err)
    assert _attrs(dst)[MARKER_KEY]["incomplete"] is True


def test_shard_index_parse_checks_length_checksum_and_bounds() -> None:
    import crc32c

    chunks = [b"abc", None, b"defgh"]
    shard = _io.build_shard(chunks)
    assert shard is not None
    index = chunkio.parse_shard_index(shard, 3, where="k")
    assert index.tolist() == [[0, 3], [2**64 - 1, 2**64 - 1], [3, 5]]
    with pytest.raises(ExplorerError, match=r"k: .*too short"):
        chunkio.parse_shard_index(shard[:20], 3, where="k")
    bad = bytearray(shard)
    bad[-1] ^= 1
    with pytest.raises(ExplorerError, match=r"k: .*checksum"):
        chunkio.parse_shard_index(bytes(bad), 3, where="k")
    idx = np.array([[0, 3], [0, 1000], [3, 5]], dtype="<u8").tobytes()
    outside = b"abcdefgh" + idx + np.uint32(crc32c.crc32c(idx)).astype("<u4").tobytes()
    with pytest.raises(ExplorerError, match=r"k: .*outside"):
        chunkio.parse_shard_index(outside, 3, where="k")


def test_exact_zstd_decoder_bounds_and_falls_back() -> None:
    import zstandard

    raw = np.arange(512, dtype="<u2").tobytes()
    dec = chunkio.ExactZstdDecoder(len(raw))
    frame = zstandard.ZstdCompressor(level=3).compress(raw)
    got = dec(frame)
    assert got is not None and bytes(got) == raw
    # a frame without a content size, or declaring another size: not decoded here (None)
    assert dec(zstandard.ZstdCompressor(write_content_size=False).compress(raw)) is None
    assert dec(zstandard.ZstdCompressor().compress(raw[:100])) is None
    assert dec(zstandard.ZstdCompressor().compress(bytes(1 << 24))) is None
    assert dec(b"not zstd at all") is None


def test_local_object_reader_is_confined_like_read_bytes(tmp_path: Path) -> None:
    """Every kind of key reads the same through LocalObjectReader as through read_bytes."""
    from zarr.storage import LocalStore

    from napari_zarr_explorer.store import read_bytes

    root = tmp_path / "store"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x").write_bytes(b"inside")
    (tmp_path / "secret").write_bytes(b"outside")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "y").write_bytes(b"outside too")
    os.symlink(root / "a" / "x", root / "a" / "link-in")
    os.symlink(tmp_path / "secret", root / "a" / "link-out")
    os.symlink(tmp_path / "elsewhere", root / "b")
    os.mkfifo(root / "a" / "fifo")
    store = LocalStore(root, read_only=True)
    reader = chunkio.LocalObjectReader(store)
    keys = [
        "a/x", "a/link-in", "a/link-out", "b/y", "a/fifo", "a/missing", "missing/x",
        "a/../a/x", "a/../../secret", "a/x/z",
    ]  # fmt: skip
    got = {k: reader.read(k) for k in keys}
    assert got == {k: read_bytes(store, k) for k in keys}
    assert reader.read("a") is None  # a folder is not an object
    assert got["a/x"] == got["a/link-in"] == b"inside"
    assert got["a/link-out"] is None and got["b/y"] is None and got["a/fifo"] is None
    assert got["a/../../secret"] is None


def test_a_source_chunk_linked_outside_the_store_reads_as_missing(tmp_path: Path) -> None:
    data = _image((2, 32, 32))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    (tmp_path / "outside").write_bytes((src / "1.1.1").read_bytes())
    (src / "0.0.0").unlink()
    os.symlink(tmp_path / "outside", src / "0.0.0")
    dst = tmp_path / "dst.zarr"
    report = recompress(src, dst, chunks=(1, 16, 16), shards=(2, 32, 32))
    assert report.ok, str(report)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = zarr.open_array(dst, mode="r")[...]
    expect = data.copy()
    expect[0, :16, :16] = 0
    np.testing.assert_array_equal(out, expect)


def test_resume_without_verify_still_checks_what_the_journal_lists(tmp_path: Path) -> None:
    """The journal is not fsynced, so a listed shard may never have reached the disk."""
    import threading

    from napari_zarr_explorer.recompress import JOURNAL_NAME, ProgressEvent

    data = _image((6, 32, 32))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    dst = tmp_path / "dst.zarr"
    cancel = threading.Event()

    def stop_after_two(ev: ProgressEvent) -> None:
        if ev.phase == "write" and ev.objects_done >= 2:
            cancel.set()

    kw: dict[str, Any] = {"chunks": (1, 16, 16), "shards": (1, 32, 32), "task_bytes": 1}
    first = recompress(src, dst, threads=1, progress=stop_after_two, cancel=cancel, **kw)
    assert first.cancelled
    listed = [line for line in (dst / JOURNAL_NAME).read_text().splitlines() if "units" in line]
    assert len(listed) >= 2
    # as after a machine crash: the journal lists the shard, the disk lost it
    (dst / "c" / "0" / "0" / "0").write_bytes(b"")
    (dst / "c" / "1" / "0" / "0").unlink()
    again = recompress(src, dst, resume=True, verify=False, **kw)
    assert again.ok, str(again)
    assert again.tasks_rewritten == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(zarr.open_array(dst, mode="r")[...], data)


def test_verify_without_the_zstandard_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zstandard is optional: without it recompress writes and verifies the same, and still
    finds a damaged frame."""
    import sys

    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard -> ImportError
    data = _image((4, 64, 64))
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    dst = tmp_path / "dst.zarr"
    report = recompress(src, dst, chunks=(1, 32, 32), shards=(2, 64, 64), compressor="zstd:3")
    assert report.ok and report.verified, str(report)
    assert report.chunks_verified == 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(zarr.open_array(dst, mode="r")[...], data)
    damaged = tmp_path / "dst2.zarr"
    _damage_writes(monkeypatch, "c/1/0/0", _second_frame_header)
    report = recompress(src, damaged, chunks=(1, 32, 32), shards=(2, 64, 64))
    assert not report.ok and all("c/1/0/0" in m for m in report.mismatches)
