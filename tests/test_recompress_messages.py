"""What a recompression says while it runs and when a task fails: the array and the part of it.

Progress lines name the array (the root array of a store by the output store's name) and the
output objects a task finished (``0: shard 3 of 4 written and verified``); a failure names the
array, the region of it in index ranges and the objects, and says how to continue (--resume).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.recompress import ProgressEvent, recompress


def _run(src: Path, dst: Path, **kwargs: Any) -> list[str]:
    """Recompress on one thread; return the progress lines of the finished tasks."""
    events: list[ProgressEvent] = []
    report = recompress(src, dst, progress=events.append, threads=1, **kwargs)
    assert report.ok, str(report)
    # the first event announces the run ("Writing 4 tasks with threads")
    return [ev.message for ev in events if ev.phase in ("write", "check")][1:]


def test_progress_names_the_array_and_the_shard(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "src.zarr", mode="w", zarr_format=3)
    arr = group.create_array("image/0", shape=(2, 32, 32), chunks=(1, 16, 16), dtype="uint16")
    arr[:] = testing.blobs((2, 32, 32), seed=1, dtype="uint16")
    lines = _run(tmp_path / "src.zarr", tmp_path / "dst.zarr", shards=(1, 32, 32), task_bytes=1)
    assert lines == [
        "image/0: shard 1 of 2 written and verified",
        "image/0: shard 2 of 2 written and verified",
    ]
    assert not any("task" in line for line in lines)


def test_progress_names_the_store_for_its_root_array(tmp_path: Path) -> None:
    src = testing.write_array(
        tmp_path / "src.zarr",
        testing.blobs((4, 16, 16), seed=1, dtype="uint16"),
        zarr_format=2,
        chunks=(1, 16, 16),
    )
    lines = _run(src, tmp_path / "dst.zarr", task_bytes=1, verify=False)
    assert lines == [f"dst.zarr: chunk {i} of 4 written" for i in range(1, 5)]
    assert not any(line.startswith("/") for line in lines)


def test_progress_of_a_task_of_several_chunks_gives_their_range(tmp_path: Path) -> None:
    src = testing.write_array(
        tmp_path / "src.zarr",
        testing.blobs((8, 16, 16), seed=1, dtype="uint16"),
        zarr_format=2,
        chunks=(1, 16, 16),
    )
    # four chunks of 512 bytes per task
    lines = _run(src, tmp_path / "dst.zarr", task_bytes=4 * 512)
    assert lines == [
        "dst.zarr: chunks 1-4 of 8 written and verified",
        "dst.zarr: chunks 5-8 of 8 written and verified",
    ]


def test_progress_of_a_resumed_run_says_what_was_checked(tmp_path: Path) -> None:
    src = testing.write_array(
        tmp_path / "src.zarr",
        testing.blobs((4, 16, 16), seed=1, dtype="uint16"),
        zarr_format=2,
        chunks=(1, 16, 16),
    )
    dst = tmp_path / "dst.zarr"
    cancel = threading.Event()

    def first_only(ev: ProgressEvent) -> None:
        if ev.phase == "write" and ev.objects_done >= 1:
            cancel.set()

    # one thread, two tasks queued at a time: the cancel comes after the first two chunks
    report = recompress(src, dst, task_bytes=1, threads=1, progress=first_only, cancel=cancel)
    assert report.cancelled and report.objects_written == 2
    lines = _run(src, dst, task_bytes=1, resume=True)
    assert lines == [
        "dst.zarr: chunk 1 of 4 already written, verified again",
        "dst.zarr: chunk 2 of 4 already written, verified again",
        "dst.zarr: chunk 3 of 4 written and verified",
        "dst.zarr: chunk 4 of 4 written and verified",
    ]


def test_progress_says_when_a_shard_holds_only_the_fill_value(tmp_path: Path) -> None:
    import numpy as np

    data = np.zeros((2, 16, 16), dtype="uint16")
    data[1] = 7
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    lines = _run(src, tmp_path / "dst.zarr", task_bytes=1)
    assert lines == [
        "dst.zarr: chunk 1 of 2 holds only the fill value: nothing to store",
        "dst.zarr: chunk 2 of 2 written and verified",
    ]


def test_progress_of_a_resumed_run_says_when_a_checked_chunk_holds_only_the_fill_value(
    tmp_path: Path,
) -> None:
    """A task done before the cancel whose objects hold only the fill value wrote nothing: on
    resume it is checked again (nothing stored there), not "already written"."""
    import numpy as np

    data = testing.blobs((4, 16, 16), seed=1, dtype="uint16") + 1
    data[0] = 0  # the fill value only
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    dst = tmp_path / "dst.zarr"
    cancel = threading.Event()

    def first_only(ev: ProgressEvent) -> None:
        if ev.phase == "write" and ev.objects_done >= 1:
            cancel.set()

    report = recompress(src, dst, task_bytes=1, threads=1, progress=first_only, cancel=cancel)
    assert report.cancelled and (report.objects_empty, report.objects_written) == (1, 1)
    lines = _run(src, dst, task_bytes=1, resume=True)
    assert lines == [
        "dst.zarr: chunk 1 of 4 holds only the fill value: nothing stored, checked again",
        "dst.zarr: chunk 2 of 4 already written, verified again",
        "dst.zarr: chunk 3 of 4 written and verified",
        "dst.zarr: chunk 4 of 4 written and verified",
    ]
    assert not (dst / "0.0.0").exists()
    np.testing.assert_array_equal(zarr.open_array(dst, mode="r")[...], data)
    # a finished output resumed is checked whole: two chunks of the fill value in one task
    data[1] = 0
    src = testing.write_array(tmp_path / "src2.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    done = tmp_path / "done.zarr"
    _run(src, done, task_bytes=2 * 512)
    assert _run(src, done, task_bytes=2 * 512, resume=True) == [
        "done.zarr: chunks 1-2 of 4 hold only the fill value: nothing stored, checked again",
        "done.zarr: chunks 3-4 of 4 already written, verified again",
    ]


def test_a_failure_names_the_array_region_and_chunk(tmp_path: Path) -> None:
    src = testing.write_array(
        tmp_path / "src.zarr",
        testing.blobs((4, 16, 16), seed=1, dtype="uint16"),
        zarr_format=2,
        chunks=(1, 16, 16),
    )
    (src / "2.0.0").write_bytes(b"definitely not blosc")
    with pytest.raises(ExplorerError) as info:
        recompress(src, tmp_path / "dst.zarr", task_bytes=1, threads=1)
    err = info.value
    assert err.message.startswith(
        f"Recompressing {src} failed at {src} [2:3, 0:16, 0:16] (chunk 3 of 4): "
        "the source chunk 2.0.0 cannot be decoded"
    ), err.message
    assert " task " not in err.message and "/:" not in err.message
    assert err.hint is not None and "continue with --resume" in err.hint
    assert "chunks --verify" in err.hint  # the cause's own hint is kept


def test_a_failure_in_a_group_names_the_array_and_shards(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "src.zarr", mode="w", zarr_format=2)
    arr = group.create_array("labels/0", shape=(4, 16, 16), chunks=(1, 16, 16), dtype="uint16")
    arr[:] = testing.blobs((4, 16, 16), seed=1, dtype="uint16")
    (tmp_path / "src.zarr" / "labels" / "0" / "3.0.0").write_bytes(b"definitely not blosc")
    src = tmp_path / "src.zarr"
    with pytest.raises(ExplorerError) as info:
        # two output shards of two planes, in one task
        recompress(src, tmp_path / "dst.zarr", shards=(2, 16, 16), threads=1)
    message = info.value.message
    assert message.startswith(
        f"Recompressing {src} failed at {src}/labels/0 [0:4, 0:16, 0:16] (shards 1-2 of 2): "
        "the source chunk labels/0/3.0.0 cannot be decoded"
    ), message


def _lines(report: Any) -> tuple[str, str]:
    """The report's "written" and "verified" lines, as printed."""
    text = str(report).splitlines()
    written = next(line for line in text if line.rstrip().endswith("written") or "written," in line)
    verified = next(line for line in text if line.strip().startswith("verified"))
    return written.strip(), verified.strip()


def _html_rows(report: Any) -> list[dict[str, str]]:
    """The per-array rows of the report's HTML table, by column, as the browser shows them."""
    import html
    import re

    markup = report._repr_html_()
    table = markup[markup.index("<table>") : markup.index("</table>")]
    rows = [
        [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells]
        for cells in (re.findall(r"<t[hd]>(.*?)</t[hd]>", r) for r in table.split("<tr>")[1:])
    ]
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_the_report_says_which_verified_objects_hold_only_the_fill_value(tmp_path: Path) -> None:
    """Objects holding only the fill value are verified (nothing stored for them) but not
    written: the report says so, so that more objects verified than written adds up."""
    import html
    import re

    import numpy as np

    data = np.zeros((4, 32, 32), dtype="uint16")  # plane 0: only the fill value
    data[1, :16, :16] = 5  # plane 1: one inner chunk of four holds data
    data[2:] = np.arange(32 * 32, dtype="uint16").reshape(32, 32)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 16, 16))
    report = recompress(src, tmp_path / "dst.zarr", chunks=(1, 16, 16), shards=(1, 32, 32))
    assert report.ok, str(report)
    # one shard a plane: plane 0's holds only the fill value, so it is not stored
    assert not (tmp_path / "dst.zarr" / "c" / "0").exists()
    assert (report.objects_written, report.objects_empty, report.objects_verified) == (3, 1, 4)
    assert (report.chunks_written, report.chunks_verified) == (9, 9)
    written, verified = _lines(report)
    assert written.endswith("3 objects (9 chunks) written"), written
    assert verified == (
        "verified 4 objects (3 read back, 1 only the fill value: not stored) / 9 chunks, "
        "0 mismatches"
    )
    shown = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", report._repr_html_())).split())
    assert written in shown and verified in shown, shown
    # the array's row says it too, in the same words
    (row,) = _html_rows(report)
    assert row["only the fill value (not stored)"] == "1"
    assert (
        row["verified"] == "4 objects (3 read back, 1 only the fill value: not stored) / 9 chunks"
    )
    assert f"verified {row['verified']}, 0 mismatches" == verified
    doc = report.to_dict()
    assert doc["objects_empty"] == 1 and doc["objects_verified"] == 4
    assert doc["objects_written"] == 3  # the keys it had keep their meaning
    assert [a["objects_empty"] for a in doc["arrays"]] == [1]

    # unverified: nothing verified, and the line claims nothing about those objects
    quick = recompress(
        src, tmp_path / "quick.zarr", chunks=(1, 16, 16), shards=(1, 32, 32), verify=False
    )
    assert quick.objects_empty == 1 and quick.objects_verified == 0
    written, verified = _lines(quick)
    assert written.endswith("3 objects (9 chunks) written, 1 only the fill value: not stored")
    assert verified == "verified 0 objects / 0 chunks, 0 mismatches"
    (row,) = _html_rows(quick)
    assert row["only the fill value (not stored)"] == "1"
    assert row["verified"] == "0 objects / 0 chunks"


@pytest.mark.parametrize("verify", [True, False])
def test_a_resumed_run_counts_the_objects_holding_only_the_fill_value_as_a_fresh_run(
    tmp_path: Path, verify: bool
) -> None:
    """Objects the interrupted run found holding only the fill value are counted as such on
    resume (not as read back): the resumed run's counts are those of a run never interrupted."""
    import numpy as np

    data = np.arange(8 * 32 * 32, dtype="uint16").reshape(8, 32, 32) % 251 + 1
    data[0] = data[1] = 0  # fill only, done before the cancel
    data[2, 16:] = 0  # half of the plane: two of its four inner chunks stored
    data[6] = 0  # fill only, done after the cancel
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 16, 16))
    layout: dict[str, Any] = {"chunks": (1, 16, 16), "shards": (1, 32, 32), "task_bytes": 1}
    fresh = recompress(src, tmp_path / "fresh.zarr", threads=1, verify=verify, **layout)
    assert fresh.ok, str(fresh)
    assert (fresh.objects_written, fresh.objects_empty) == (5, 3)

    dst = tmp_path / "dst.zarr"
    cancel = threading.Event()

    def stop_after_four(ev: ProgressEvent) -> None:
        if ev.phase == "write" and ev.objects_done >= 4:
            cancel.set()

    first = recompress(
        src, dst, threads=1, progress=stop_after_four, cancel=cancel, verify=verify, **layout
    )
    assert first.cancelled and first.objects_empty == 2, str(first)
    resumed = recompress(src, dst, threads=1, resume=True, verify=verify, **layout)
    assert resumed.ok and resumed.resumed and resumed.tasks_skipped >= 4, str(resumed)
    # everything verified, read back or known to be only the fill value, as in the fresh run
    assert resumed.objects_empty == fresh.objects_empty == 3
    assert [a.objects_empty for a in resumed.arrays] == [a.objects_empty for a in fresh.arrays]
    if verify:
        assert (resumed.objects_verified, resumed.chunks_verified) == (
            fresh.objects_verified,
            fresh.chunks_verified,
        )
        said = "verified 8 objects (5 read back, 3 only the fill value: not stored) / 18 chunks"
        assert _lines(resumed)[1] == _lines(fresh)[1] == f"{said}, 0 mismatches"
        assert resumed.objects_empty_verified == fresh.objects_empty_verified == 3
    else:
        # only the tasks done before the cancel are checked again: what the first run wrote is
        # read back, what it found holding only the fill value is verified as not stored
        read, empty = first.objects_written, first.objects_empty
        assert read and empty == 2
        assert resumed.objects_verified == read + empty
        assert resumed.chunks_verified == first.chunks_written
        said = (
            f"verified {read + empty} objects ({read} read back, {empty} only the fill value: "
            f"not stored) / {first.chunks_written} chunks, 0 mismatches"
        )
        assert _lines(resumed)[1] == said, str(resumed)
        # the array's row of the HTML splits its verified objects as the line does
        (row,) = _html_rows(resumed)
        assert row["verified"] == (
            f"{read + empty} objects ({read} read back, {empty} only the fill value: "
            f"not stored) / {first.chunks_written} chunks"
        )
        assert row["only the fill value (not stored)"] == "3"
        assert resumed.objects_empty_verified == empty and fresh.objects_empty_verified == 0
        # the written line counts every object holding only the fill value, as the fresh run's
        assert _lines(fresh)[0].endswith("3 only the fill value: not stored")
        assert "3 only the fill value: not stored, " in _lines(resumed)[0], _lines(resumed)
    assert [a.objects_empty_verified for a in resumed.arrays] == [resumed.objects_empty_verified]
    assert resumed.to_dict()["objects_empty"] == 3
    assert resumed.to_dict()["objects_empty_verified"] == resumed.objects_empty_verified
    # the output holds exactly the data, and the fill-only shards are not stored
    np.testing.assert_array_equal(zarr.open_array(dst, mode="r")[...], data)
    for z in (0, 1, 6):
        assert not (dst / "c" / str(z)).exists()

    # an output resumed without a journal (a finished one) is checked whole: the same counts
    again = recompress(src, dst, threads=1, resume=True, verify=verify, **layout)
    assert again.ok and again.tasks_skipped == 8, str(again)
    assert again.objects_empty == 3 and again.objects_written == 0
    if verify:
        assert _lines(again)[1] == _lines(fresh)[1]


def test_an_existing_output_says_whether_resume_continues_it(tmp_path: Path) -> None:
    """Resume is named for an interrupted run's output only; a finished one gets Overwrite."""
    import numpy as np

    from napari_zarr_explorer.errors import OutputExistsError, RunFailedError

    src = testing.write_array(tmp_path / "src.zarr", np.ones((8, 8), "uint8"), chunks=(4, 4))
    cancel = threading.Event()
    cancel.set()
    assert recompress(src, tmp_path / "unfinished.zarr", cancel=cancel).cancelled
    with pytest.raises(OutputExistsError) as info:
        recompress(src, tmp_path / "unfinished.zarr")
    assert info.value.incomplete and "--resume" in str(info.value), info.value
    recompress(src, tmp_path / "done.zarr")
    with pytest.raises(OutputExistsError) as info:
        recompress(src, tmp_path / "done.zarr")
    assert not info.value.incomplete and "--resume" not in str(info.value), info.value
    assert "--overwrite" in str(info.value)
    # a settings error is neither: nothing written, nothing to resume
    with pytest.raises(ExplorerError) as other:
        recompress(src, tmp_path / "x.zarr", chunks=(4, 4), shards=(6, 6))
    assert not isinstance(other.value, OutputExistsError | RunFailedError)
    assert "--resume" not in str(other.value)
