"""Estimates of candidate encodings on sampled chunks (nothing written)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_zarr_explorer import estimate
from napari_zarr_explorer.codec_spec import parse_compressor
from napari_zarr_explorer.errors import CodecError, ExplorerError
from napari_zarr_explorer.estimate import Candidate, EstimateReport, parse_shape
from napari_zarr_explorer.testing import blobs, write_array, write_ome_image


def _snapshot(path):
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*"))


@pytest.fixture
def image(tmp_path):
    data = blobs((4, 64, 64), dtype="uint16", seed=3)
    return write_array(tmp_path / "img.zarr", data, chunks=(1, 32, 32), compressor="zstd:1")


def test_candidates_of_every_form(image):
    before = _snapshot(image)
    report = estimate(
        image,
        "",
        [
            "zstd:5",
            parse_compressor("blosc-lz4"),
            Candidate(parse_compressor("gzip:6"), chunks=(2, 64, 64)),
            {
                "compressor": "blosc-zstd:5",
                "shuffle": "bit",
                "chunks": "1,32,32",
                "shards": "2,64,64",
            },
            "none",
        ],
        sample=4,
    )
    assert _snapshot(image) == before  # nothing written
    assert isinstance(report, EstimateReport)
    assert report.shape == (4, 64, 64) and report.chunk_shape == (1, 32, 32)
    assert report.objects_stored == 16 and report.bytes_stored
    labels = [c.label for c in report.candidates]
    assert labels[0] == "zstd:5"
    assert "chunks 2x64x64" in labels[2]
    for c in report.candidates:
        assert not c.problems
        assert c.ratio and c.ratio > 0
        assert c.encode_mbps and c.decode_mbps
        assert c.projected_bytes and c.projected_objects
        assert c.sampled in (2, 4) and c.sampled_empty == 0
    none = report.candidates[-1]
    assert none.ratio == pytest.approx(1.0)
    assert none.projected_bytes == 4 * 64 * 64 * 2
    assert report.candidates[0].projected_objects == 16
    assert report.candidates[2].projected_objects == 2
    sharded = report.candidates[3]
    assert sharded.shard_shape == (2, 64, 64) and sharded.projected_objects == 2
    assert report.best is not None
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["candidates"][0]["compressor"] == "zstd:5"
    assert {"ratio", "encode_mbps", "decode_mbps", "projected_bytes", "projected_objects"} <= set(
        d["candidates"][0]
    )
    assert "zstd:5" in str(report)
    assert "<table" in report._repr_html_()


def test_empty_chunks_are_not_projected(tmp_path):
    data = np.zeros((8, 32), dtype="uint8")
    data[:4] = 7
    path = write_array(tmp_path / "a.zarr", data, chunks=(1, 32), fill_value=0)
    report = estimate(path, "", "zstd:3", sample=8)
    (c,) = report.candidates
    assert c.sampled == 8 and c.sampled_empty == 4
    assert c.projected_objects == 4


def test_bad_candidates_are_reported(image):
    report = estimate(image, "", [{"compressor": "zstd", "chunks": "1,2"}, "zfp:rate=8"])
    assert all(c.problems for c in report.candidates)
    assert report.best is None
    with pytest.raises(CodecError):
        estimate(image, "", "nonsense-codec")
    with pytest.raises(ExplorerError):
        parse_shape("1,a")
    with pytest.raises(ExplorerError):
        estimate(image, "", [])


def test_lossy_error_reported(tmp_path):
    data = blobs((32, 32), dtype="float32")
    path = write_array(tmp_path / "f.zarr", data, chunks=(16, 16))
    report = estimate(path, "", ["bitround:keepbits=4+zstd:3", "zstd:3"], sample=2)
    lossy, lossless = report.candidates
    assert lossy.error is not None and lossy.error.max_abs > 0
    assert lossless.error is None
    assert math.isfinite(lossy.ratio or 0)


def test_ome_level_and_v2(tmp_path):
    path = write_ome_image(tmp_path / "i.ome.zarr", version="0.4", shape=(1, 2, 32, 32), levels=2)
    report = estimate(path, "", "zstd:3", level=1)
    assert report.path == "1" and report.shape == (1, 2, 16, 16)


def test_corrupt_sampled_chunk_is_skipped(image):
    chunk = image / "c" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:10])
    report = estimate(image, "", "zstd:3", sample=16)
    assert any("could not be read" in w for w in report.warnings)
    assert report.candidates[0].sampled == 15


def test_sharded_source_keeps_sharding_by_default(tmp_path):
    data = blobs((4, 64, 64), dtype="uint16")
    path = write_array(tmp_path / "s.zarr", data, chunks=(1, 32, 32), shards=(2, 64, 64))
    report = estimate(path, "", ["zstd:3", {"compressor": "zstd:3", "shards": "none"}], sample=4)
    kept, unsharded = report.candidates
    assert report.shard_shape == (2, 64, 64) and report.objects_stored == 2
    assert kept.shard_shape == (2, 64, 64) and kept.projected_objects == 2
    assert unsharded.shard_shape is None and unsharded.projected_objects == 16
    assert "unsharded" in unsharded.label
    big = estimate(path, "", {"compressor": "zstd:3", "chunks": "8,100,100"}, sample=1)
    assert big.candidates[0].chunk_shape == (4, 64, 64)


def test_image_codec_chunk_shapes_are_reported_before_encoding(tmp_path):
    data = blobs((4, 64, 64), dtype="uint8", seed=1)
    path = write_array(tmp_path / "u8.zarr", data, chunks=(2, 64, 64))
    report = estimate(
        path,
        "",
        [
            "jpeg:quality=90",  # the array's own chunks: 2 planes each
            {"compressor": "webp", "chunks": "1,64,64"},  # not RGB
            {"compressor": "png", "chunks": "1,64,64"},
            "zstd:5",
        ],
        sample=2,
    )
    jpeg, webp, png, zstd = report.candidates
    (problem,) = jpeg.problems
    assert problem.startswith("jpeg encodes 2-D images") and "(2, 64, 64)" in problem
    assert "1,64,64" in problem  # the chunks to choose instead
    assert jpeg.ratio is None
    assert webp.problems and "webp encodes RGB or RGBA" in webp.problems[0]
    assert not png.problems and png.ratio and not zstd.problems
    assert "jpeg encodes 2-D images" in str(report)


def test_recompress_refuses_an_image_too_large_for_the_codec_before_writing(tmp_path):
    from napari_zarr_explorer.recompress import recompress

    data = np.zeros((2, 70_000), dtype="uint8")
    path = write_array(tmp_path / "wide.zarr", data, chunks=(2, 70_000))
    report = estimate(path, "", ["jpeg:quality=90"], sample=1)
    assert "65535 pixels" in report.candidates[0].problems[0]
    out = tmp_path / "out.zarr"
    with pytest.raises(CodecError, match=r"wide\.zarr.*jpeg encodes images up to 65535 pixels"):
        recompress(path, out, compressor="jpeg:quality=90")
    assert not out.exists()


def test_candidate_ratio_compares_with_the_ratio_now(tmp_path):
    """Edge chunks are stored whole: the ratio shown for a candidate is logical bytes over its
    projected size, as the ratio of what is stored now is, not the ratio of the sampled chunks."""
    data = blobs((50, 50), dtype="uint16", seed=1)  # chunks 32x32: most of each edge chunk pads
    path = write_array(tmp_path / "edges.zarr", data, chunks=(32, 32), compressor=None)
    report = estimate(path, "", ["zstd:3", "none"], sample=4)
    assert report.ratio is not None and report.ratio < 0.7  # 4 whole chunks store 50x50 values
    by_label = {c.label: c for c in report.candidates}
    raw = by_label["none"]
    # the same encoding as now projects the same size and the same ratio as now
    assert raw.projected_bytes == report.bytes_stored
    assert raw.projected_ratio == pytest.approx(report.ratio)
    assert raw.ratio == pytest.approx(1.0)  # the sampled chunks themselves
    for c in report.candidates:
        assert c.projected_ratio == pytest.approx(report.logical_bytes / c.projected_bytes)
        assert c.to_dict()["projected_ratio"] == pytest.approx(c.projected_ratio, abs=1e-3)
        shown = f"{c.projected_ratio:.2f}"
        assert f"{c.label}: compression ratio {shown}x" in str(report)
        assert f"<td>{shown}x</td>" in report._repr_html_()


def test_a_small_array_says_how_many_chunks_were_sampled(tmp_path):
    """Asking for 16 chunks of an array of one chunk samples one, and the report says one."""
    data = blobs((32, 32), dtype="uint16", seed=2)
    path = write_array(tmp_path / "one.zarr", data, chunks=(32, 32))
    report = estimate(path, "", "zstd:3", sample=16)
    assert report.sample == 16 and report.chunks_sampled == 1
    text = str(report)
    assert "1 object," in text and "1 objects" not in text
    assert report.to_dict()["chunks_sampled"] == 1


@pytest.mark.parametrize("over", ["local", "http"])
def test_skipped_chunk_of_a_root_array_names_the_store(image, over, request):
    """A root-level array is the store itself: '<store>: sampled region...', not '<store>/:'."""
    chunk = image / "c" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:10])
    url = str(image)
    if over == "http":
        url = request.getfixturevalue("http_server").publish(image)
    report = estimate(url, "", "zstd:3", sample=16)
    (warning,) = [w for w in report.warnings if "could not be read" in w]
    assert warning.startswith(f"{url}: sampled region "), warning


def test_an_array_with_no_stored_chunks_has_nothing_to_sample(tmp_path, capsys):
    """Every chunk reads as the fill value: nothing is sampled, and the report says so."""
    from napari_zarr_explorer.cli import main

    path = write_array(tmp_path / "empty.zarr", np.zeros((64, 64), "uint16"), chunks=(32, 32))
    report = estimate(path, "", ["zstd:3", "none"])
    assert report.objects_stored == 0
    assert report.chunks_sampled == 0
    assert any("no stored chunks: nothing to sample" in w for w in report.warnings)
    for c in report.candidates:
        assert c.sampled == 0 and c.projected_ratio is None and not c.problems
        assert c.projected_bytes is None and c.projected_objects is None
    assert report.best is None  # no smallest candidate chosen on nothing
    text = str(report)
    assert "ratio 0.00" not in text and "projected 0 B" not in text
    assert "zstd:3: nothing projected" in text
    assert main(["estimate", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["chunks_sampled"] == 0 and doc["candidates"][0]["sampled"] == 0
    assert doc["candidates"][0]["projected_bytes"] is None
    assert main(["estimate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no stored chunks: nothing to sample" in out
    assert "sample of" not in out  # no table of numbers measured on nothing


def test_no_readable_sampled_chunk_projects_nothing_and_says_why(image, capsys):
    """Every sampled chunk unreadable: no projection (not 0 B), and the reason names a key."""
    from napari_zarr_explorer.cli import main

    for chunk in (image / "c").rglob("*"):
        if chunk.is_file():
            chunk.write_bytes(chunk.read_bytes()[:10])
    report = estimate(image, "", ["zstd:3", "none"], sample=16)
    assert report.chunks_sampled == 0
    for c in report.candidates:
        assert c.projected_bytes is None and c.projected_objects is None
        assert c.projected_ratio is None and not c.problems
    (summary,) = [w for w in report.warnings if "nothing to project" in w]
    assert "none of the 16 sampled chunks could be read: nothing to project" in summary
    assert "c/0/0/0" in summary and "Zstd" in summary, summary
    text = str(report)
    assert "projected 0 B" not in text and " 0 objects" not in text and "ratio 0.00" not in text
    assert "none of the 16 sampled chunks could be read" in text
    html = report._repr_html_()
    assert "<td>0 B</td>" not in html and "<td>?</td>" not in html  # nothing, not unknown

    assert main(["estimate", str(image), "--compressor", "zstd:3", "--json"]) == 0
    (cand,) = json.loads(capsys.readouterr().out)["candidates"]
    assert cand["projected_bytes"] is None and cand["projected_objects"] is None
    assert main(["estimate", str(image)]) == 0
    out = capsys.readouterr().out
    assert "none of the 16 sampled chunks could be read: nothing to project" in out
    assert "c/0/0/0" in out
    assert "sample of" not in out and " 0 B" not in out  # no table of numbers measured on nothing


def test_no_possible_candidate_samples_nothing_and_says_so(image, capsys):
    """Every candidate 'not possible': no 'sample of 0 chunks' title over nothing measured."""
    from napari_zarr_explorer.cli import main

    report = estimate(image, "", {"compressor": "zstd:3", "chunks": "32,32"})
    assert report.chunks_sampled == 0 and report.best is None
    assert report.to_dict()["candidates"][0]["projected_bytes"] is None
    assert main(["estimate", str(image), "--chunks", "32,32"]) == 0
    out = capsys.readouterr().out
    assert "sample of" not in out
    assert "no candidate is possible: nothing sampled" in out
    assert "do not match the array's 3 axes" in out


@pytest.mark.parametrize(
    "filters", [[{"id": "pickle"}], [{"id": "vlen-utf8"}]], ids=["pickle", "vlen"]
)
def test_object_dtype_array_is_refused_naming_the_array(tmp_path, capsys, filters):
    """A v2 array of Python objects is refused before any candidate is tried, naming the array
    (in a group: its path below the store), by ``estimate()`` and the command alike; nothing
    of it is decoded."""
    from napari_zarr_explorer.cli import main
    from napari_zarr_explorer.errors import UnsafeDataError

    store = tmp_path / "group.zarr"
    (store / "obj").mkdir(parents=True)
    (store / ".zgroup").write_text('{"zarr_format": 2}')
    zarray = {
        "zarr_format": 2,
        "shape": [4],
        "chunks": [2],
        "dtype": "|O",
        "compressor": None,
        "filters": filters,
        "fill_value": 0,
        "order": "C",
    }
    (store / "obj" / ".zarray").write_text(json.dumps(zarray))
    (store / "obj" / "0").write_bytes(b"\x80\x04 never decoded")
    where = f"{store}/obj: the dtype '|O' holds Python objects"
    with pytest.raises(UnsafeDataError) as info:
        estimate(store, "obj", ["zstd:3", "delta+zstd:3"])
    assert str(info.value).startswith(where)
    assert main(["estimate", str(store), "--array", "obj", "--compressor", "delta+zstd:3"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert " ".join(captured.err.split()).startswith(f"error: {where}")


def test_estimate_run_totals_every_level_a_recompression_writes(tmp_path) -> None:
    """The estimate of a whole run: every level sampled at its output layout, and summed."""
    from napari_zarr_explorer.estimate import estimate_run
    from napari_zarr_explorer.recompress import plan_recompress

    src = write_ome_image(
        tmp_path / "img.ome.zarr", shape=(64, 64), axes="yx", levels=3, chunks=(16, 16)
    )
    kwargs = {"compressor": "zstd:3", "chunks": (32, 32)}
    candidates = [{"compressor": "zstd:3"}, {"compressor": "none"}]
    run = estimate_run(str(src), "", str(src), candidates, kwargs, sample=100)
    plan = plan_recompress(src, **kwargs)
    assert [a.path for a in run.arrays] == [a.target.path for a in plan.arrays] == ["0", "1", "2"]
    assert [a.bytes_now for a in run.arrays] == [a.bytes_before for a in plan.arrays]
    assert run.bytes_now == sum(a.bytes_now or 0 for a in run.arrays) > 0
    assert run.nbytes == 2 * (64 * 64 + 32 * 32 + 16 * 16)
    # every chunk is sampled, so the projection without compression is the logical size
    assert run.projected(1) == run.nbytes
    assert run.projected(0) == sum(run.projected_of(a, 0) or 0 for a in run.arrays)
    assert run.compressors == ("zstd:3", "none") and run.best == 0 and run.unsampled == 0


def test_an_estimate_of_a_run_that_cannot_be_planned_says_so(tmp_path) -> None:
    """Zarr v2 with shards: the run refuses, the estimate of the first array says it is alone."""
    from napari_zarr_explorer.estimate import estimate_run, growth_warning

    smooth = np.tile(np.arange(128, dtype="uint16"), (128, 1))
    src = write_array(tmp_path / "smooth.zarr", smooth, chunks=(32, 32))
    kwargs = {"compressor": "none", "zarr_format": 2, "shards": (64, 64)}
    run = estimate_run(str(src), "", str(src), [{"compressor": "none"}], kwargs, sample=4)
    assert run.plan_error is not None and run.plan_error.startswith("Zarr v2 has no shards")
    assert run.to_dict()["plan_error"] == run.plan_error
    said = f"The run as set cannot be planned: {run.plan_error}"
    warning = growth_warning(run)
    assert warning is not None and said in warning and "first array only" in warning
    html = run._repr_html_()
    assert "The run as set cannot be planned: Zarr v2 has no shards" in html
    assert "first array only" in html
    # a run that can be planned has none
    kwargs = {"compressor": "none", "zarr_format": 3}
    planned = estimate_run(str(src), "", str(src), [{"compressor": "none"}], kwargs, sample=4)
    assert planned.plan_error is None and planned.to_dict()["plan_error"] is None
    assert "cannot be planned" not in planned._repr_html_()


def test_sampled_arrays_storing_nothing_still_project_the_arrays_not_sampled(tmp_path) -> None:
    """A run whose sampled arrays are all empty projects 0 bytes, not an unknown."""
    import zarr

    from napari_zarr_explorer.estimate import ArrayEstimate, RunEstimate, estimate

    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("empty", shape=(64, 64), chunks=(16, 16), dtype="uint16", fill_value=0)
    report = estimate(str(tmp_path / "g.zarr"), "empty", [{"compressor": "zstd:3"}], sample=4)
    run = RunEstimate(
        str(tmp_path / "g.zarr"),
        (ArrayEstimate("empty", report, report.bytes_stored),),
        ("zstd:3",),
        unsampled=1,
        unsampled_nbytes=64 * 64 * 2,
        unsampled_now=1000,
    )
    assert run.projected(0) == 0
    assert run.total_text(0) == "0 B (0% of now)"


def test_the_warnings_of_a_run_name_their_arrays(tmp_path) -> None:
    import zarr

    from napari_zarr_explorer.estimate import estimate_run

    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("data", shape=(64, 64), chunks=(16, 16), dtype="uint16")[:] = 1
    for name in ("empty", "other"):
        group.create_array(name, shape=(64, 64), chunks=(16, 16), dtype="uint16", fill_value=0)
    src = str(tmp_path / "g.zarr")
    run = estimate_run(src, "", src, [{"compressor": "zstd:3"}], {"compressor": "zstd:3"}, 4)
    warnings = [w for w in run.warnings() if "nothing to sample" in w]
    assert sorted(w.split(":")[0] for w in warnings) == ["empty", "other"]
    html = run._repr_html_()
    assert "warning: empty: no stored chunks" in html and "warning: other: no stored" in html
