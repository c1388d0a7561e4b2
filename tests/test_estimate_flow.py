"""What an estimate says a user can rely on: how much it sampled, what to do when data grows,
and what each ratio is, the same in the text, the command line and the notebook."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer.cli import main
from napari_zarr_explorer.estimate import estimate, estimate_run, growth_warning
from napari_zarr_explorer.testing import blobs, write_array, write_ome_image
from servers import LoopbackHTTPServer

CANDIDATES = [{"compressor": c} for c in ("zstd:3", "blosc-lz4:5", "gzip:6")]


def _run(src: str, cancel: threading.Event | None = None, sample: int = 16):
    return estimate_run(src, "", src, CANDIDATES, {"compressor": "zstd:3"}, sample, cancel)


# ---------------------------------------------------------------- a cancelled estimate


def test_an_estimate_cancelled_before_it_read_a_chunk_says_so(tmp_path: Path) -> None:
    src = str(write_array(tmp_path / "a.zarr", blobs((64, 64), dtype="uint16"), chunks=(16, 16)))
    cancel = threading.Event()
    cancel.set()
    run = _run(src, cancel)
    assert run.cancelled and run.chunks_sampled == 0
    said = "Estimate cancelled before any chunk was sampled: nothing is projected."
    assert run.sampled_text() == said
    assert run.projected(0) is None and run.bytes_now  # the size now is still known
    assert said in run._repr_html_() and "Sampled up to" not in run._repr_html_()
    # not cancelled: the same words say what was sampled
    whole = _run(src)
    assert not whole.cancelled and whole.sampled_text() == "Sampled 16 chunks (seed 0)."


def test_an_estimate_cancelled_while_sampling_says_how_many_chunks_it_read(
    http_server: LoopbackHTTPServer,
) -> None:
    """A cancel in the middle of an array stops at the chunk being read, and says so."""
    write_array(http_server.root / "a.zarr", blobs((128, 128), dtype="uint16"), chunks=(16, 16))
    url = f"{http_server.url}/a.zarr"
    http_server.hold("a.zarr/c/*")  # every chunk waits until released
    cancel = threading.Event()
    result: list = []
    worker = threading.Thread(target=lambda: result.append(_run(url, cancel)))
    worker.start()
    while worker.is_alive() and not any("/c/" in p for p in http_server.arrived):
        worker.join(0.01)
    cancel.set()  # a chunk is being read
    http_server.release()
    worker.join(60)
    (run,) = result
    n = run.chunks_sampled
    assert run.cancelled and 1 <= n < 16
    said = (
        f"Estimate cancelled after sampling {n} of 16 chunks (seed 0): the figures are projected "
        "from those alone."
    )
    assert run.sampled_text() == said
    assert run.projected(0) is not None  # from the chunks read
    html = run._repr_html_()
    assert said in html and "Sampled up to" not in html
    # the array's own estimate says it too
    report = run.arrays[0].report
    alone = f"Estimate cancelled after sampling {n} of 16 chunks: the figures are projected"
    assert report.cancelled and alone in str(report) and alone in report._repr_html_()


def test_a_cancel_in_a_later_array_says_how_many_arrays_were_sampled(
    http_server: LoopbackHTTPServer,
) -> None:
    """Arrays not reached are projected at the compression ratio of those sampled, and said."""
    write_ome_image(
        http_server.root / "img.ome.zarr", shape=(128, 128), axes="yx", levels=3, chunks=(16, 16)
    )
    url = f"{http_server.url}/img.ome.zarr"
    http_server.hold("img.ome.zarr/1/c/*")  # the second level waits until released
    cancel = threading.Event()
    result: list = []
    worker = threading.Thread(target=lambda: result.append(_run(url, cancel)))
    worker.start()
    while worker.is_alive() and not any("/1/c/" in p for p in http_server.arrived):
        worker.join(0.01)
    cancel.set()  # the first level is sampled, a chunk of the second is being read
    http_server.release()
    worker.join(60)
    (run,) = result
    assert run.cancelled and [a.path for a in run.arrays] == ["0", "1"] and run.unsampled == 1
    first, second = (a.report.chunks_sampled for a in run.arrays)
    assert first == 16 and 1 <= second < 16
    assert run.sampled_text() == (
        f"Estimate cancelled after sampling {first + second} chunks in 2 of 3 arrays (seed 0): "
        "the figures are projected from those alone."
    )
    assert run.unsampled_text == (
        "1 array was not sampled: it is projected at the compression ratio of those sampled."
    )
    assert run.projected(0) is not None


def test_the_command_line_and_the_notebook_say_what_was_sampled_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = str(write_array(tmp_path / "a.zarr", blobs((64, 64), dtype="uint16"), chunks=(16, 16)))
    assert main(["estimate", src, "--all-arrays", "--compressor", "zstd:3"]) == 0
    out = capsys.readouterr().out
    run = _run(src)
    assert run.sampled_text() in " ".join(out.split())
    assert run.sampled_text() in run._repr_html_()


# ---------------------------------------------------------------- growth: advice that fits


def _noise_group(root: Path) -> str:
    """Two arrays of noise stored raw: every codec writes more than is stored now."""
    import zarr

    group = zarr.open_group(str(root), mode="w")
    rng = np.random.default_rng(0)
    for name in ("noise", "more"):
        array = group.create_array(
            name, shape=(64, 64), chunks=(16, 16), dtype="uint16", compressors=None
        )
        array[:] = rng.integers(0, 2**16, (64, 64), dtype="uint16")
    return str(root)


def test_when_every_encoding_grows_the_data_the_warning_does_not_advise_a_stronger_codec(
    tmp_path: Path,
) -> None:
    src = _noise_group(tmp_path / "noise.zarr")
    run = _run(src, sample=100)  # every chunk: the projection is exact
    assert all(run.projected(i) > run.bytes_now for i in range(len(run.compressors)))
    warning = growth_warning(run, 0)
    assert warning is not None
    assert warning.startswith("Warning: the estimate predicts the output will be")
    assert "stronger codec" not in warning
    assert "No encoding estimated is projected smaller than now" in warning
    assert "every array grows: more, noise" in warning
    assert "Keep the source as it is, or keep its encoding" in warning
    assert "no compression (none) or larger chunks" in warning
    # the notebook and the command line give the same advice
    assert "stronger codec" not in run._repr_html_()
    assert "every array grows: more, noise" in run._repr_html_()


def test_when_another_encoding_is_smaller_the_warning_advises_it(tmp_path: Path) -> None:
    smooth = np.tile(np.arange(128, dtype="uint16"), (128, 1))
    src = str(write_array(tmp_path / "smooth.zarr", smooth, chunks=(32, 32)))
    candidates = [{"compressor": "none"}, {"compressor": "zstd:3"}]
    run = estimate_run(src, "", src, candidates, {"compressor": "none"}, 16)
    warning = growth_warning(run, 0, pick="a smaller row of the table")
    assert warning is not None
    assert warning.endswith(
        "choose a stronger codec (a smaller row of the table) or keep the source."
    )


def test_the_command_line_warns_when_the_run_grows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _noise_group(tmp_path / "noise.zarr")
    args = ["estimate", src, "--all-arrays", "--sample", "100"]
    for c in ("zstd:3", "blosc-lz4:5", "gzip:6"):
        args += ["--compressor", c]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "No encoding estimated is projected smaller than now" in out
    assert "stronger codec" not in out


# ---------------------------------------------------------------- ratio: one meaning, named


def _bare_ratios(text: str) -> list[str]:
    """Each 'ratio' that is not called a compression ratio."""
    return [
        m.group(0) for m in re.finditer(r"(\w+\s+)?ratio", text) if m.group(1) != "compression "
    ]


def test_every_figure_of_compression_is_named_for_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = blobs((4, 64, 64), dtype="uint16", seed=3)
    src = str(write_array(tmp_path / "img.zarr", data, chunks=(1, 32, 32), compressor="zstd:1"))
    report = estimate(src, "", ["zstd:3", "gzip:6"], sample=4)
    text = str(report)
    assert f"compression ratio {report.ratio:.2f}x" in text
    for c in report.candidates:
        assert f"{c.label}: compression ratio {c.projected_ratio:.2f}x" in text
        assert f"<td>{c.projected_ratio:.2f}x</td>" in report._repr_html_()
    assert not _bare_ratios(text) and not _bare_ratios(report._repr_html_())
    assert "<th>compression ratio</th>" in report._repr_html_()
    assert main(["estimate", src, "--compressor", "gzip:6"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "compression ratio" in out and not _bare_ratios(out)
    assert f"compression ratio {report.ratio:.2f}x" in out
    # the estimate of a run (a group with arrays not sampled) names it the same way
    run = _run(src)
    assert not _bare_ratios(run._repr_html_())


def test_a_cancelled_estimate_draws_no_advice_from_part_of_its_sample(tmp_path: Path) -> None:
    """A cancelled estimate projects the arrays it did not sample from the ones it did: it says
    what it sampled, and gives no growth warning or advice drawn from those partial figures."""
    import dataclasses

    src = _noise_group(tmp_path / "noise.zarr")
    run = _run(src, sample=100)
    assert growth_warning(run, 0) is not None  # the whole sample: the warning stands
    cancelled = dataclasses.replace(run, cancelled=True)
    assert growth_warning(cancelled, 0) is None
    assert "Keep the source" not in cancelled._repr_html_()
