"""The source's stored bytes in a recompress report: where the figure comes from, and its label.

A run measures the stored bytes of local source arrays (a stat of every file) on a thread of its
own while its tasks run. It does not wait for that scan at the end: an array the scan did not
reach is counted from the stored chunks the run read (every one of them, when the run finished),
and the report says so. These tests hold the scan at a gate (the real scan runs once released),
so which figure the report uses does not depend on timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer._html import human_bytes
from napari_zarr_explorer.recompress import ProgressEvent, _engine, recompress

META = (".zarray", ".zattrs", ".zgroup", "zarr.json")


class HeldScan:
    """The source size scan held before the arrays in *paths* (every array when empty)."""

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.reached = threading.Event()  # the scan got to a held array
        self.release = threading.Event()


@pytest.fixture
def held_scan(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldScan]:
    held = HeldScan()
    real = _engine.local_size

    def gated(loc: Any, path: str, *, stop: threading.Event | None = None) -> int | None:
        if not held.paths or path in held.paths:
            held.reached.set()
            # Released when the test ends; a run that waited for the scan would wait here
            # (then fail its assertions), not hang.
            held.release.wait(timeout=60)
        return real(loc, path, stop=stop)

    monkeypatch.setattr(_engine, "local_size", gated)
    try:
        yield held
    finally:
        held.release.set()


def _files(folder: Path, *, chunks_only: bool) -> int:
    """Stored bytes under *folder* but metadata; *chunks_only* leaves out the notes files."""
    return sum(
        p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and p.name not in META and not (chunks_only and p.suffix == ".txt")
    )


def _stored_line(report: Any) -> str:
    return next(line for line in str(report).splitlines() if "stored" in line)


def _cancelled_after_the_first_task(src: Path, dst: Path) -> Any:
    """Recompress *src* one task at a time, cancelled once the first task is written."""
    cancel = threading.Event()

    def stop_after_first(ev: ProgressEvent) -> None:
        if ev.phase == "write" and ev.objects_done >= 1:
            cancel.set()

    report = recompress(
        src,
        dst,
        chunks=(1, 8, 8),
        shards=(1, 32, 32),
        threads=1,
        task_bytes=1,
        progress=stop_after_first,
        cancel=cancel,
    )
    assert report.cancelled and not report.complete
    return report


def test_a_finished_run_does_not_wait_for_the_size_scan(
    tmp_path: Path, held_scan: HeldScan
) -> None:
    src = testing.write_array(
        tmp_path / "src.zarr",
        testing.blobs((4, 32, 32), seed=1, dtype="uint16"),
        zarr_format=2,
        chunks=(1, 8, 8),
    )
    (src / "notes.txt").write_bytes(b"n" * 5000)  # a file the scan counts and no task reads
    report = recompress(src, tmp_path / "dst.zarr", chunks=(1, 16, 16))
    assert report.ok, str(report)
    chunks = _files(src, chunks_only=True)
    # every source chunk was read: their stored bytes are known without the scan
    assert [a.bytes_before for a in report.arrays] == [chunks]
    assert [a.bytes_before_basis for a in report.arrays] == ["chunks"]
    assert report.bytes_before == chunks
    assert report.bytes_before_basis == "chunks"
    assert report.ratio == chunks / report.bytes_after
    line = _stored_line(report)
    assert f"stored {human_bytes(chunks)} (source chunks read) ->" in line, line
    # the one-line summary of the docks and the notebook names the figure the same way
    share = f"{report.bytes_after / chunks:.0%}"
    assert report.done_line() == (
        f"Done: {human_bytes(chunks)} (source chunks read) -> "
        f"{human_bytes(report.bytes_after)} ({share} of the original)"
    )
    d = report.to_dict()
    assert d["bytes_before"] == chunks and d["bytes_before_basis"] == "chunks"
    assert d["arrays"][0]["bytes_before_basis"] == "chunks"


def test_arrays_the_scan_reached_keep_the_size_of_their_files(
    tmp_path: Path, held_scan: HeldScan
) -> None:
    group = tmp_path / "src.zarr"
    root = zarr.open_group(group, mode="w", zarr_format=2)
    for name, seed in (("a", 1), ("b", 2)):
        arr = root.create_array(name, shape=(3, 40, 40), chunks=(1, 16, 16), dtype="uint16")
        arr[:] = testing.blobs((3, 40, 40), seed=seed, dtype="uint16")
        (group / name / "notes.txt").write_bytes(b"n" * 1000)
    held_scan.paths = {"b"}  # the scan measures "a", then waits before "b"

    def at_the_end(ev: ProgressEvent) -> None:
        if ev.phase == "write" and ev.objects_done == ev.objects_total:
            assert held_scan.reached.wait(timeout=60)  # "a" is measured by now

    report = recompress(group, tmp_path / "dst.zarr", chunks=(1, 32, 32), progress=at_the_end)
    assert report.ok, str(report)
    a_files = _files(group / "a", chunks_only=False)
    b_chunks = _files(group / "b", chunks_only=True)
    got = {a.path: (a.bytes_before, a.bytes_before_basis) for a in report.arrays}
    assert got == {"a": (a_files, "files"), "b": (b_chunks, "chunks")}
    assert report.bytes_before == a_files + b_chunks
    assert report.bytes_before_basis == "mixed"
    assert "(in part source chunks read) ->" in _stored_line(report)


def test_a_cancelled_run_says_what_it_read_of_the_source(
    tmp_path: Path, held_scan: HeldScan
) -> None:
    src = testing.write_array(
        tmp_path / "src.zarr",
        testing.blobs((8, 32, 32), seed=1, dtype="uint16"),
        zarr_format=2,
        chunks=(1, 8, 8),
    )
    report = _cancelled_after_the_first_task(src, tmp_path / "dst.zarr")
    read = report.bytes_before
    # a few of the eight planes were read: their chunks, not the source's stored bytes
    assert read is not None and 0 < read < _files(src, chunks_only=True)
    assert report.bytes_before_basis == "partial"
    assert [a.bytes_before_basis for a in report.arrays] == ["partial"]
    line = _stored_line(report)
    assert f"{human_bytes(read)} ->" not in line, line  # not "the source held this much"
    assert f"source at least {human_bytes(read)}, not all read" in line, line
    assert report.to_dict()["bytes_before_basis"] == "partial"
    assert "at least" in report._repr_html_()


def test_a_cancelled_run_keeps_its_lower_bound_with_an_array_not_started(
    tmp_path: Path, held_scan: HeldScan
) -> None:
    """An array no task reached adds 0 to "at least", not "unknown" for the whole source."""
    src = tmp_path / "src.zarr"
    group = zarr.open_group(src, mode="w", zarr_format=2)
    for name in ("a", "b"):
        arr = group.create_array(name, shape=(8, 32, 32), chunks=(1, 8, 8), dtype="uint16")
        arr[:] = testing.blobs((8, 32, 32), seed=1, dtype="uint16")
    report = _cancelled_after_the_first_task(src, tmp_path / "dst.zarr")
    bases = {a.path: (a.bytes_before, a.bytes_before_basis) for a in report.arrays}
    assert bases["b"] == (0, "partial"), bases  # no task of b ran: nothing of it was read
    assert bases["a"][1] == "partial" and (bases["a"][0] or 0) > 0, bases
    assert report.bytes_before == bases["a"][0]
    assert report.bytes_before_basis == "partial"
    line = _stored_line(report)
    assert f"source at least {human_bytes(bases['a'][0])}, not all read" in line, line


@pytest.mark.parametrize("shards", [(1, 32, 32), (2, 32, 32)])
def test_a_sharded_source_is_counted_from_its_shard_files(
    tmp_path: Path, held_scan: HeldScan, shards: tuple[int, ...]
) -> None:
    """zarr-python decodes the shards; the tasks count each shard file once, by its size."""
    src = testing.write_array(
        tmp_path / "src.zarr",
        testing.blobs((4, 32, 32), seed=1, dtype="uint16"),
        zarr_format=3,
        chunks=(1, 16, 16),
        shards=shards,
    )
    (src / "notes.txt").write_bytes(b"n" * 5000)  # counted by the scan only
    # output shards of one plane: a source shard of two planes is read by two tasks
    report = recompress(src, tmp_path / "dst.zarr", shards=(1, 32, 32), task_bytes=1)
    assert report.ok, str(report)
    stored = _files(src, chunks_only=True)
    assert [a.bytes_before for a in report.arrays] == [stored]
    assert report.bytes_before == stored and report.bytes_before_basis == "chunks"
    line = _stored_line(report)
    assert f"stored {human_bytes(stored)} (source shards read) ->" in line, line
    assert report.done_line().startswith(f"Done: {human_bytes(stored)} (source shards read) -> ")
    assert f"{human_bytes(stored)} (shards read)" in report._repr_html_()


def test_a_remote_sharded_source_is_counted_from_its_shard_sizes(
    tmp_path: Path, http_server: Any
) -> None:
    """A remote source is not scanned: its shards' sizes come from one HEAD request each."""
    www = Path(http_server.root)
    data = testing.blobs((4, 32, 32), seed=1, dtype="uint16")
    data[2] = 0  # only the fill value: that shard is not stored
    src = testing.write_array(
        www / "src.zarr", data, zarr_format=3, chunks=(1, 16, 16), shards=(1, 32, 32)
    )
    assert not (src / "c" / "2").exists()
    report = recompress(f"{http_server.url}/src.zarr", tmp_path / "dst.zarr", shards="none")
    assert report.ok, str(report)
    assert report.bytes_before == _files(src, chunks_only=True)
    assert report.bytes_before_basis == "chunks"
    assert http_server.count("src.zarr/c/*", method="HEAD") <= 4  # one per shard at most
    assert "(source shards read) ->" in _stored_line(report)


def test_a_remote_source_zarr_decodes_is_measured_from_what_it_read(
    tmp_path: Path, http_server: Any
) -> None:
    """An unsharded remote array read through zarr-python is sized from the chunks it fetched.

    They are in the chunk cache: no request per chunk is made to learn their sizes.
    """
    import zarr
    from zarr.codecs import BytesCodec, TransposeCodec

    www = Path(http_server.root)
    data = testing.blobs((32, 32), seed=4, dtype="uint16")
    arr = zarr.create_array(
        www / "src.zarr",
        shape=data.shape,
        dtype=data.dtype,
        chunks=(16, 16),
        filters=[TransposeCodec(order=(1, 0))],  # no direct decoder: zarr-python decodes
        serializer=BytesCodec(),
        compressors=None,
    )
    arr[...] = data
    report = recompress(f"{http_server.url}/src.zarr", tmp_path / "dst.zarr", shards="none")
    assert report.ok, str(report)
    assert http_server.count("src.zarr/c/*", method="HEAD") == 0
    assert report.bytes_before == _files(www / "src.zarr", chunks_only=True)
    assert report.bytes_before_basis == "chunks"


def _bucket_source(tmp_path: Path, s3_server: Any, bucket: str) -> tuple[str, Path]:
    """A sharded array with a shard that is not stored, uploaded to *bucket*: URL, original."""
    import uuid

    data = testing.blobs((4, 32, 32), seed=2, dtype="uint16")
    data[1] = 0  # only the fill value: that shard is not stored
    local = testing.write_array(
        tmp_path / "src.zarr", data, zarr_format=3, chunks=(1, 16, 16), shards=(2, 32, 32)
    )
    prefix = f"sizes-{uuid.uuid4().hex[:8]}/src.zarr"
    return s3_server.upload(local, bucket, prefix), local


def test_a_sharded_source_in_a_bucket_is_counted_from_its_objects(
    tmp_path: Path, s3_server: Any
) -> None:
    from servers import FAKE_KEY_ID, FAKE_SECRET

    url, local = _bucket_source(tmp_path, s3_server, s3_server.private_bucket)
    options = {
        "key": FAKE_KEY_ID,
        "secret": FAKE_SECRET,
        "client_kwargs": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
    }
    # output shards of one plane: each source shard of two planes is read by two tasks
    report = recompress(
        url, tmp_path / "dst.zarr", shards=(1, 32, 32), task_bytes=1, storage_options=options
    )
    assert report.ok, str(report)
    assert report.bytes_before == _files(local, chunks_only=True)
    assert report.bytes_before_basis == "chunks"
    assert "(source shards read) ->" in _stored_line(report)


def test_a_sharded_source_on_gcs_is_counted_from_its_objects(
    tmp_path: Path, gcs_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    data = testing.blobs((4, 32, 32), seed=3, dtype="uint16")
    data[3] = 0  # only the fill value: that shard is not stored
    local = testing.write_array(
        tmp_path / "src.zarr", data, zarr_format=3, chunks=(1, 16, 16), shards=(1, 32, 32)
    )
    url = gcs_server.upload(local, f"sizes-{uuid.uuid4().hex[:8]}/src.zarr")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint_url)
    report = recompress(url, tmp_path / "dst.zarr", shards="none")
    assert report.ok, str(report)
    assert report.bytes_before == _files(local, chunks_only=True)
    assert report.bytes_before_basis == "chunks"


def test_a_bucket_that_refuses_to_tell_sizes_leaves_the_size_unknown(
    tmp_path: Path, s3_server: Any
) -> None:
    """Read anonymously, the emulator refuses HEAD requests: no size, rather than a wrong one."""
    url, local = _bucket_source(tmp_path, s3_server, s3_server.public_bucket)
    options = {
        "anon": True,
        "client_kwargs": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
    }
    # two tasks per source shard: neither reads it whole, so its size is asked of the bucket
    report = recompress(
        url, tmp_path / "dst.zarr", shards=(1, 32, 32), task_bytes=1, storage_options=options
    )
    assert report.ok, str(report)
    assert report.bytes_before in (None, _files(local, chunks_only=True))
    if report.bytes_before is None:
        assert "source size unknown" in _stored_line(report)


def test_a_source_that_is_neither_measured_nor_counted_is_unknown() -> None:
    """A report whose source size is unknown says so (a store that cannot tell object sizes)."""
    from napari_zarr_explorer.recompress import ArrayResult, RecompressReport

    array = ArrayResult(
        path="",
        shape=(2, 32, 32),
        dtype="uint16",
        chunks=(1, 16, 16),
        shards=None,
        source_chunks=(1, 16, 16),
        source_shards=(1, 32, 32),
        nbytes=4096,
        bytes_before=None,
        bytes_after=1000,
        objects_total=8,
        objects_written=8,
        objects_empty=0,
        chunks_written=8,
        objects_verified=8,
        chunks_verified=8,
    )
    report = RecompressReport(
        source="src.zarr",
        destination="dst.zarr",
        compressor="zstd:3",
        zarr_format=3,
        arrays=(array,),
        bytes_before=None,
        bytes_after=1000,
        nbytes=4096,
        complete=True,
        verified=True,
    )
    assert report.bytes_before_basis is None
    line = _stored_line(report)
    assert "source size unknown" in line, line
    assert report.to_dict()["bytes_before"] is None
    assert report.done_line() == "Done: 1000 B written (source size unknown)"
